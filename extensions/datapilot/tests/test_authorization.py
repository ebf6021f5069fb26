"""Every verb is authorized on the ``datapilot`` resource before anything is forwarded."""

from __future__ import annotations

import json
from typing import Any

import pytest

from datapilot import AUTH_RESOURCE, default_handlers

from .utils import api_request, assert_error


@pytest.fixture
def jp_server_auth_resources(jp_server_auth_core_resources: dict[str, str]) -> dict[str, str]:
    for url_regex, _ in default_handlers:
        jp_server_auth_core_resources[url_regex] = AUTH_RESOURCE
    return jp_server_auth_core_resources


@pytest.fixture
def jp_server_config(jp_server_config: dict[str, Any], jp_server_authorizer) -> dict[str, Any]:
    jp_server_config["ServerApp"]["authorizer_class"] = jp_server_authorizer
    return jp_server_config


@pytest.fixture
def read_only(jp_serverapp) -> None:
    jp_serverapp.authorizer.permissions = {"actions": ["read"], "resources": [AUTH_RESOURCE]}


async def test_read_allowed(jp_fetch, read_only) -> None:
    # authorized, so it goes on to the (unreachable) service
    assert_error(await api_request(jp_fetch, "me"), 502, "service_unavailable")


@pytest.mark.parametrize(
    "method, path, body",
    [
        ("POST", ("orgs", "acme", "datasets"), b"a,b\n1,2\n"),
        ("PUT", ("orgs", "acme", "members", "ann"), b'{"role": "analyst"}'),
        ("DELETE", ("orgs", "acme", "datasets", "sales"), None),
        ("POST", ("ingest",), json.dumps({"path": "x.csv", "name": "x"}).encode()),
    ],
)
async def test_write_refused(jp_fetch, read_only, method, path, body) -> None:
    reply = await api_request(jp_fetch, *path, method=method, body=body)
    assert_error(reply, 403, "forbidden")


async def test_other_resource_refused(jp_fetch, jp_serverapp) -> None:
    jp_serverapp.authorizer.permissions = {"actions": ["read", "write"], "resources": ["contents"]}
    assert_error(await api_request(jp_fetch, "me"), 403, "forbidden")


async def test_each_request_checked_for_its_own_verb(jp_fetch, read_only) -> None:
    # @authorized remembers the action of its first call; a read first must not let the
    # write after it through
    assert_error(await api_request(jp_fetch, "me"), 502, "service_unavailable")
    reply = await api_request(jp_fetch, "orgs", "acme", "datasets", method="POST", body=b"a")
    assert_error(reply, 403, "forbidden")
