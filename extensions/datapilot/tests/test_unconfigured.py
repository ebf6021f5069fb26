"""Without DATAPILOT_URL or a token every route answers 503, naming what to set."""

from __future__ import annotations

import json
from typing import Any

import pytest

from .utils import api_request, assert_error


@pytest.fixture(params=["service_url", "api_token"])
def datapilot_config(request: pytest.FixtureRequest, closed_port_url: str) -> dict[str, Any]:
    config = {"service_url": closed_port_url, "api_token": "test-server-token", "org": "acme"}
    config[request.param] = ""
    return config


@pytest.mark.parametrize("method, body", [("GET", None), ("POST", b"{}")])
async def test_forward_unconfigured(jp_fetch, method, body) -> None:
    reply = await api_request(jp_fetch, "orgs", "acme", "datasets", method=method, body=body)
    assert "DATAPILOT_URL" in assert_error(reply, 503, "not_configured")["message"]


async def test_ingest_unconfigured(jp_fetch, jp_root_dir) -> None:
    (jp_root_dir / "sales.csv").write_text("a,b\n1,2\n")
    body = json.dumps({"path": "sales.csv", "name": "sales"})
    reply = await api_request(jp_fetch, "ingest", method="POST", body=body)
    assert "DATAPILOT_URL" in assert_error(reply, 503, "not_configured")["message"]
