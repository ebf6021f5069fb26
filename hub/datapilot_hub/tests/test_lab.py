"""JupyterLab's side, against a real hub: the server extension relays the job-events
WebSocket (the sidebar's live progress).

One hub and one analyst server for the module.
"""

from __future__ import annotations

import asyncio
import json

import httpx
import pytest
from tornado.httpclient import HTTPClientError, HTTPRequest
from tornado.websocket import websocket_connect

pytestmark = pytest.mark.e2e

ORG = "acme"


@pytest.fixture(scope="module")
def lab(sqlite_hub):
    hub = sqlite_hub
    tokens = hub.populate(
        {ORG: "Acme Corp", "globex": "Globex"},
        [(ORG, "alice", "analyst"), ("globex", "gary", "analyst")],
    )
    r = hub.start_server("alice", ORG, tokens["alice"])
    assert r.status_code in (201, 202), r.text
    return {"hub": hub, "tokens": tokens, "server": f"{hub.url}/user/alice/{ORG}/"}


async def _events(url: str, headers: dict[str, str]) -> list[dict]:
    """Every message of a job-events socket, until the far end closes it."""
    ws = await websocket_connect(HTTPRequest(url, headers=headers))
    messages = []
    async with asyncio.timeout(60):
        while (raw := await ws.read_message()) is not None:
            messages.append(json.loads(raw))
    return messages


def _ws(lab, path: str) -> str:
    return lab["server"].replace("http", "ws", 1) + f"datapilot/api/v1/{path}"


def test_job_events_reach_lab_through_the_server_extension(lab):
    token = lab["tokens"]["alice"]
    auth = {"Authorization": f"token {token}"}
    rows = "\n".join(f"{i},{i * 0.5},city{i % 7}" for i in range(200_000))
    with httpx.Client(base_url=lab["server"], headers=auth, timeout=60) as c:
        r = c.put(
            "api/contents/big.csv",
            json={"type": "file", "format": "text", "content": "id,amount,city\n" + rows},
        )
        assert r.status_code in (200, 201), r.text
        r = c.post("datapilot/api/v1/ingest", json={"path": "big.csv", "name": "big"})
        assert r.status_code == 202, r.text
        job_id = r.json()["job"]["id"]

    messages = asyncio.run(_events(_ws(lab, f"orgs/{ORG}/jobs/{job_id}/events"), auth))
    assert messages, "no event before the socket closed"
    assert {m["id"] for m in messages} == {job_id}
    progress = [m["progress"] for m in messages]
    assert progress == sorted(progress)
    assert messages[-1]["state"] == "succeeded", messages[-1]
    assert all(m["state"] not in ("succeeded", "failed", "cancelled") for m in messages[:-1])
    # the service saw the same job end
    job = lab["hub"].api("GET", f"/orgs/{ORG}/jobs/{job_id}", token).json()
    assert job["state"] == "succeeded" and job["result"]["rows"] == 200_000


def _refusal(url: str, headers: dict[str, str]) -> tuple[int, dict]:
    async def connect():
        with pytest.raises(HTTPClientError) as refused:
            await websocket_connect(HTTPRequest(url, headers=headers))
        return refused.value

    error = asyncio.run(connect())
    return error.code, json.loads(error.response.body)


def test_the_services_refusal_comes_back_before_the_upgrade(lab):
    auth = {"Authorization": f"token {lab['tokens']['alice']}"}
    code, body = _refusal(_ws(lab, f"orgs/{ORG}/jobs/{'f' * 32}/events"), auth)
    assert (code, body["error"]) == (404, "not_found"), body


def test_another_organizations_job_is_invisible(lab):
    hub = lab["hub"]
    gary = lab["tokens"]["gary"]
    r = hub.upload("globex", gary, "secret", b"a,b\n1,2\n")
    assert r.status_code == 202, r.text
    job_id = r.json()["job"]["id"]
    auth = {"Authorization": f"token {lab['tokens']['alice']}"}
    code, body = _refusal(_ws(lab, f"orgs/globex/jobs/{job_id}/events"), auth)
    assert (code, body["error"]) == (404, "not_found"), body
    # nor through the acme path: the job id alone does not reach it
    code, body = _refusal(_ws(lab, f"orgs/{ORG}/jobs/{job_id}/events"), auth)
    assert (code, body["error"]) == (404, "not_found"), body


def test_someone_else_cannot_follow_alices_jobs(lab):
    # gary's token is no way into alice's server
    auth = {"Authorization": f"token {lab['tokens']['gary']}"}
    code, _ = _refusal(_ws(lab, f"orgs/{ORG}/jobs/{'f' * 32}/events"), auth)
    assert code == 403
