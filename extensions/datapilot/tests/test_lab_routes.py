"""The routes JupyterLab's sidebar adds: ``context``, and the job-events socket's own
answers before anything reaches a service (authentication, another organization, a plain
GET, an unreachable service). The relaying itself is tested against a real hub in
``hub/datapilot_hub/tests/test_lab.py``."""

from __future__ import annotations

import json

import pytest
from tornado.httpclient import HTTPClientError

from .utils import api_request, assert_error

JOB = "0123456789abcdef0123456789abcdef"


async def _ws_refusal(jp_ws_fetch, *path: str, **kwargs) -> tuple[int, dict]:
    with pytest.raises(HTTPClientError) as refused:
        await jp_ws_fetch("datapilot", "api", "v1", *path, **kwargs)
    response = refused.value.response
    assert response is not None
    assert response.headers["Content-Type"] == "application/json"
    return refused.value.code, json.loads(response.body)


async def test_unauthenticated_socket_refused(jp_ws_fetch) -> None:
    reply = await _ws_refusal(
        jp_ws_fetch,
        *("orgs", "acme", "jobs", JOB, "events"),
        headers={"Authorization": "token wrong"},
    )
    assert_error(reply, 403, "forbidden")


async def test_another_organization_is_not_forwarded(jp_ws_fetch) -> None:
    reply = await _ws_refusal(jp_ws_fetch, "orgs", "globex", "jobs", JOB, "events")
    assert_error(reply, 404, "not_found", organization="globex")


async def test_plain_get_is_refused(jp_fetch) -> None:
    reply = await api_request(jp_fetch, "orgs", "acme", "jobs", JOB, "events")
    assert_error(reply, 400, "websocket_required")


async def test_unreachable_service(jp_ws_fetch, closed_port_url) -> None:
    reply = await _ws_refusal(jp_ws_fetch, "orgs", "acme", "jobs", JOB, "events")
    body = assert_error(reply, 502, "service_unavailable")
    assert closed_port_url in body["message"]


async def test_context_names_the_servers_organization(jp_fetch) -> None:
    assert await api_request(jp_fetch, "context") == (200, {"org": "acme"})


async def test_context_needs_authentication(jp_fetch) -> None:
    reply = await api_request(jp_fetch, "context", headers={"Authorization": "token wrong"})
    assert_error(reply, 403, "forbidden")
