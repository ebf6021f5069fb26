"""JupyterLab's side, against a real hub: the server extension relays the job-events
WebSocket (the sidebar's live progress), and the Datapilot sidebar in a real browser
(Debian's chromium driven by playwright-core, ``browser/journeys/lab_sidebar.js``).

One hub and one analyst server for the module. The journey's screenshots are kept under
``test-artifacts/lab/``.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil

import httpx
import pytest
from tornado.httpclient import HTTPClientError, HTTPRequest
from tornado.websocket import websocket_connect

from .test_browser import _browser_missing, journey
from .utils import REPO, hub_signup

pytestmark = pytest.mark.e2e

ORG = "acme"
PASSWORD = "alice-lab-correct-horse"
SCREENSHOTS = REPO / "test-artifacts" / "lab"


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


def _upload_file(path):
    """A CSV large enough for the progress bar to move: three amounts that are no
    amounts (bad cells), codes with leading zeros."""
    lines = ["id,amount,code,city"]
    cities = ["Paris", "Lyon", "Nantes", "Lille"]
    bad = {1000: "viel", 2000: "n.v.", 3000: "zwölf"}
    for i in range(1, 600_001):
        lines.append(f"{i},{bad.get(i, f'{i * 0.25:.2f}')},{i % 1000:05d},{cities[i % 4]}")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_an_analyst_uses_the_sidebar_in_jupyterlab(lab, tmp_path):
    """Log in, open Lab and the panel, upload a CSV from it and watch it finish, read its
    report, insert the code and run it, import a workspace file from the context menu."""
    missing = _browser_missing()
    if missing:
        if os.environ.get("DATAPILOT_TEST_REQUIRE_BROWSER") == "1":
            pytest.fail(missing)
        pytest.skip(missing)
    hub, token = lab["hub"], lab["tokens"]["alice"]
    assert "alert-success" in hub_signup(hub, "alice", PASSWORD)
    for mode, body in (
        ("create", b"id,city\n1,Paris\n2,Lyon\n"),
        ("replace", b"id,city\n3,Nice\n"),
    ):
        r = hub.upload(ORG, token, "cities", body, mode=mode)
        assert r.status_code == 202, r.text
        assert hub.wait_job(ORG, r.json()["job"]["id"], token)["state"] == "succeeded"
    notebook = {
        "cells": [
            {
                "cell_type": "code",
                "metadata": {},
                "source": "",
                "outputs": [],
                "execution_count": None,
            }
        ],
        "metadata": {
            "kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}
        },
        "nbformat": 4,
        "nbformat_minor": 5,
    }
    with httpx.Client(
        base_url=lab["server"], headers={"Authorization": f"token {token}"}, timeout=60
    ) as c:
        r = c.put("api/contents/analysis.ipynb", json={"type": "notebook", "content": notebook})
        assert r.status_code in (200, 201), r.text
        r = c.put(
            "api/contents/stations.csv",
            json={"type": "file", "format": "text", "content": "station,temp\nA,1.5\nB,2.5\n"},
        )
        assert r.status_code in (200, 201), r.text

    shutil.rmtree(SCREENSHOTS, ignore_errors=True)
    SCREENSHOTS.mkdir(parents=True)
    inputs = {
        "user": "alice",
        "password": PASSWORD,
        "org": ORG,
        "orgName": "Acme Corp",
        "seeded": "cities",
        "file": str(_upload_file(tmp_path / "orders.csv")),
        "dataset": "orders",
        "notebook": "analysis.ipynb",
        "workspaceFile": "stations.csv",
        "dashboard": "Orders review",
    }
    result = journey(hub, "lab_sidebar", shots=SCREENSHOTS, **inputs)
    print(json.dumps(result, indent=1))
    assert "Acme Corp" in result["org"] and "analyst" in result["org"]
    # the bar moved with the job's events, relayed by the server extension
    assert any(0 < int(p) < 100 for p in result["progress"]), result["progress"]
    assert result["badCells"] == "3"
    assert result["badRows"] == "1000, 2000, 3000"
    assert result["types"]["amount"] == "number" and result["types"]["code"] == "string"
    assert result["previewRows"] == 20
    assert "600000 rows × 4 columns" in result["shape"]
    # the service has what the panel showed: the upload, and the context menu's import
    info = hub.api("GET", f"/orgs/{ORG}/datasets/orders", token).json()
    assert info["rows"] == 600_000
    assert info["report"]["columns"]["amount"]["invalid"]["count"] == 3
    assert hub.api("GET", f"/orgs/{ORG}/datasets/stations", token).json()["rows"] == 2
    # the refused append: the service's own message, and what to do
    assert result["failure"].startswith("Appended columns differ from the dataset's"), result
    assert "import it again" in result["advice"]
    # rolled back from the panel: version 1 is current again
    assert hub.api("GET", f"/orgs/{ORG}/datasets/cities", token).json()["version"] == 1
    assert result["rolledBack"].startswith("Version 1 · 2 rows")
    assert any("orders" in label for label in result["jobs"]), result["jobs"]
    (dashboard,) = hub.api("GET", f"/orgs/{ORG}/dashboards", token).json()["dashboards"]
    assert (dashboard["title"], dashboard["notebook"]) == ("Orders review", "analysis.ipynb")
    assert result["dashboardUrl"] == dashboard["url"]


def test_the_organizations_jobs_are_listed_for_its_members(lab):
    """GET /orgs/{org}/jobs, the sidebar's Jobs tab: members only, newest first."""
    hub, alice, gary = lab["hub"], lab["tokens"]["alice"], lab["tokens"]["gary"]
    r = hub.upload(ORG, alice, "listed", b"a,b\n1,2\n")
    assert r.status_code == 202, r.text
    newest = r.json()["job"]["id"]
    hub.wait_job(ORG, newest, alice)
    jobs = hub.api("GET", f"/orgs/{ORG}/jobs?limit=100", alice).json()["jobs"]
    assert jobs[0]["id"] == newest and jobs[0]["dataset"] == "listed"
    created = [j["created"] for j in jobs]
    assert created == sorted(created, reverse=True)
    assert hub.api("GET", f"/orgs/{ORG}/jobs?limit=1", alice).json()["jobs"] == [jobs[0]]
    assert hub.api("GET", f"/orgs/{ORG}/jobs?state=active", alice).json()["jobs"] == []
    # through the server extension, as the sidebar calls it
    with httpx.Client(headers={"Authorization": f"token {alice}"}, timeout=30) as c:
        r = c.get(lab["server"] + f"datapilot/api/v1/orgs/{ORG}/jobs")
        assert r.status_code == 200 and r.json()["jobs"][0]["id"] == newest
    # another organization's member: not even the organization is visible
    r = hub.api("GET", f"/orgs/{ORG}/jobs", gary)
    assert (r.status_code, r.json()["error"]) == (404, "not_found")
    assert newest not in {j["id"] for j in hub.api("GET", "/orgs/globex/jobs", gary).json()["jobs"]}
    for bad in ("limit=0", "limit=101", "limit=x", "state=done"):
        r = hub.api("GET", f"/orgs/{ORG}/jobs?{bad}", alice)
        assert (r.status_code, r.json()["error"]) == (400, "invalid_input"), bad
