"""Abuse stays cheap: a flood of refused calls is a few counted audit events and no log
line each; a client that closes mid-answer is logged once, quietly, and audited once.

The counting on both catalog backends; the rest through a real JupyterHub, proxy and
data service, reading the hub's log and, after it stops, its catalog.
"""

from __future__ import annotations

import asyncio
import json
import math
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from sqlalchemy import select

from datapilot_hub.catalog import AuditEvent, Catalog
from datapilot_hub.domain.audit import AuditLog, AuditQuery

from .utils import API, running_hub

T0 = 1_800_000_000.0  # a minute boundary


# -- counting refusals, on SQLite and PostgreSQL --------------------------------------


def _refused(log: AuditLog, org_id: int, user: str, n: int, start: float, step: float, **kw):
    for i in range(n):
        log.count_refusal(
            org_id,
            user,
            "dataset.read",
            kw.get("target", "sales"),
            "rate_limited",
            kw.get("client", "10.0.0.1"),
            {"status": 429, "format": "json"},
            now=start + i * step,
        )


async def test_refusals_are_counted_per_caller_action_and_window(catalog, two_orgs):
    log = AuditLog(catalog, refusal_window=60)
    alpha = two_orgs["alpha", "ada"].org_id
    _refused(log, alpha, "alice", 1000, T0, 0.05)  # 0 to 50 s: the first window
    _refused(log, alpha, "alice", 300, T0 + 60, 0.1)  # the next one
    _refused(log, alpha, "bob", 150, T0 + 1, 0.1, target="sales", client="10.0.0.2")
    _refused(log, alpha, "bob", 50, T0 + 30, 0.1, target="other", client="10.0.0.3")
    assert log.events(two_orgs["alpha", "mona"], AuditQuery()) == []  # nothing written yet

    # the first window has closed: its two callers' counts are written, the open one waits
    assert log.flush(now=T0 + 61) == 1200
    assert log.flush(now=T0 + 61) == 0
    events = log.events(two_orgs["alpha", "mona"], AuditQuery(limit=None))
    assert sorted((e["user"], e["details"]["count"]) for e in events) == [
        ("alice", 1000),
        ("bob", 200),
    ]
    by_user = {e["user"]: e for e in events}
    alice, bob = by_user["alice"], by_user["bob"]
    assert alice["outcome"] == "rate_limited" and alice["status"] == 429
    assert alice["action"] == "dataset.read" and alice["target"] == "sales"
    assert alice["client"] == "10.0.0.1" and alice["details"]["format"] == "json"
    assert alice["details"]["window_start"].startswith("2027-01-15T08:00:00")
    assert alice["details"]["window_end"].startswith("2027-01-15T08:01:00")
    # several targets and clients are listed, the first one kept in the columns
    assert bob["target"] is None and bob["details"]["targets"] == ["sales", "other"]
    assert bob["client"] == "10.0.0.2"
    assert bob["details"]["clients"] == ["10.0.0.2", "10.0.0.3"]

    # when the service stops, the open window is written too
    assert log.flush(now=T0 + 62, everything=True) == 300
    events = log.events(two_orgs["alpha", "mona"], AuditQuery(limit=None))
    assert sum(e["details"]["count"] for e in events) == 1500 and len(events) == 3


async def test_a_count_that_cannot_be_written_is_kept_once_then_dropped(catalog, two_orgs, caplog):
    """A failed write keeps its counts for the next flush, once: an organization deleted
    meanwhile cannot make them pile up, nor stop the other organizations' counts."""
    log = AuditLog(catalog, refusal_window=60)
    alpha = two_orgs["alpha", "ada"].org_id
    _refused(log, 999_999, "ghost", 5, T0, 1)
    _refused(log, alpha, "alice", 3, T0, 1)
    assert log.flush(now=T0 + 60) == 3
    assert "could not write 5 refused call(s); trying again" in caplog.text
    _refused(log, alpha, "alice", 2, T0 + 60, 1)
    assert log.flush(now=T0 + 120) == 2
    assert "dropping 5 refused call(s) of organization 999999" in caplog.text
    assert log.flush(now=T0 + 180, everything=True) == 0


async def test_pending_counts_are_bounded(catalog, two_orgs, caplog):
    log = AuditLog(catalog, refusal_window=60, max_pending=3)
    alpha = two_orgs["alpha", "ada"].org_id
    for user in ("u1", "u2", "u3", "u4", "u5"):
        _refused(log, alpha, user, 10, T0, 1)
    assert log.flush(now=T0 + 60) == 30
    assert "20 refused call(s) were not counted" in caplog.text


# -- through a real hub ---------------------------------------------------------------


@pytest.fixture(scope="module")
def abused_hub(request, tmp_path_factory):
    """Downloads limited to one a minute per user; refusals counted in 3 s windows."""
    env = {
        "DATAPILOT_RATE_LIMITS": json.dumps({"download": {"user": "1/minute", "org": None}}),
        "DATAPILOT_AUDIT_REFUSAL_WINDOW": "3",
    }
    with running_hub(request, tmp_path_factory, env=env, label="abused") as hub:
        hub.populate(
            {"acme": "Acme"},
            [
                ("acme", "alice", "analyst"),
                ("acme", "bob", "analyst"),
                ("acme", "abby", "analyst"),
                ("acme", "mona", "manager"),
            ],
        )
        yield hub


def _audit(hub, mona: str, **query) -> list[dict]:
    args = "&".join(f"{k}={v}" for k, v in {"limit": 1000, **query}.items())
    return hub.api("GET", f"/orgs/acme/audit?{args}", mona).json()["events"]


def test_an_aborted_download_is_logged_once_quietly(abused_hub):
    """A client that closes the connection while a CSV streams: no traceback, one log
    line that says so, one ``aborted`` audit event."""
    hub = abused_hub
    abby, mona = hub.user_token("abby"), hub.user_token("mona")
    rows = b"".join(f"{i},some words of text {i}\n".encode() for i in range(400_000))
    r = hub.upload("acme", abby, "big", b"id,note\n" + rows, "big.csv")
    assert hub.wait_job("acme", r.json()["job"]["id"], abby)["state"] == "succeeded"

    async def read_a_little() -> int:
        async with httpx.AsyncClient(base_url=hub.url, timeout=60) as client:
            async with client.stream(
                "GET",
                f"{API}/orgs/acme/datasets/big/data?format=csv",
                headers={"Authorization": f"token {abby}"},
            ) as r:
                async for _ in r.aiter_raw():
                    return r.status_code  # and close the connection after one piece
        raise AssertionError("no body")

    assert asyncio.run(read_a_little()) == 200
    deadline = time.monotonic() + 20
    while not (events := _audit(hub, mona, user="abby", action="dataset.read")):
        assert time.monotonic() < deadline, "no audit event for the aborted download"
        time.sleep(0.2)
    time.sleep(1)  # whatever else the service would log about it
    events = _audit(hub, mona, user="abby", action="dataset.read")
    assert [(e["outcome"], e["target"]) for e in events] == [("aborted", "big")]
    log = hub.log_path.read_text(errors="replace")
    assert "Traceback" not in log and "StreamClosedError" not in log, hub.log_tail()
    lines = [ln for ln in log.splitlines() if "/datasets/big/data" in ln]
    assert len(lines) == 1 and "closed by the client" in lines[0], lines


def test_a_flood_of_refusals_is_a_few_counted_events(abused_hub):
    """Hundreds of refused downloads: a few audit events per caller (one per window)
    whose counts add up to the 429 answers, and no log line each."""
    hub = abused_hub
    tokens = {u: hub.user_token(u) for u in ("alice", "bob", "mona")}
    r = hub.upload("acme", tokens["alice"], "sales", b"a,b\n1,2\n", "sales.csv")
    assert hub.wait_job("acme", r.json()["job"]["id"], tokens["alice"])["state"] == "succeeded"

    def read(user: str) -> int:
        return hub.api("GET", "/orgs/acme/datasets/sales/data", tokens[user]).status_code

    started = time.monotonic()
    with ThreadPoolExecutor(16) as pool:
        statuses = list(pool.map(read, ["alice", "bob"] * 150))
    elapsed = time.monotonic() - started
    refused = {u: statuses[i::2].count(429) for i, u in enumerate(("alice", "bob"))}
    # one download a minute each: the first is answered, the rest refused
    assert refused == {"alice": 149, "bob": 149}, statuses

    deadline = time.monotonic() + 30
    while True:
        events = _audit(hub, tokens["mona"], action="dataset.read")
        limited = [e for e in events if e["outcome"] == "rate_limited"]
        counted = {
            u: sum(e["details"]["count"] for e in limited if e["user"] == u) for u in refused
        }
        if counted == refused or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert counted == refused, limited
    windows = math.ceil(elapsed / 3) + 1
    for user in refused:
        assert 1 <= sum(e["user"] == user for e in limited) <= windows, limited
    assert all(e["status"] == 429 and e["target"] == "sales" for e in limited)
    log = hub.log_path.read_text(errors="replace")
    assert "429 GET" not in log  # neither the request log nor tornado's warning
    assert "refused call(s) recorded as" in log


def test_refusals_of_an_open_window_are_written_when_the_service_stops(request, tmp_path_factory):
    """With a window of an hour, only the service's stop can write the counts."""
    env = {
        "DATAPILOT_RATE_LIMITS": json.dumps({"download": {"user": "1/minute", "org": None}}),
        "DATAPILOT_AUDIT_REFUSAL_WINDOW": "3600",
    }
    with running_hub(request, tmp_path_factory, env=env, label="stopping") as hub:
        alice = hub.populate({"acme": "Acme"}, [("acme", "alice", "analyst")])["alice"]
        r = hub.upload("acme", alice, "sales", b"a,b\n1,2\n", "sales.csv")
        assert hub.wait_job("acme", r.json()["job"]["id"], alice)["state"] == "succeeded"
        statuses = [
            hub.api("GET", "/orgs/acme/datasets/sales/data", alice).status_code for _ in range(40)
        ]
        assert statuses == [200] + [429] * 39
        hub.stop()
        catalog = Catalog(hub.db_url)
        try:
            with catalog.session(system=True) as db:
                rows = db.scalars(
                    select(AuditEvent).where(AuditEvent.outcome == "rate_limited")
                ).all()
                counts = [(e.user_name, e.action, e.details["count"]) for e in rows]
        finally:
            catalog.dispose()
    # one event, unless the run straddled the turn of an hour
    assert sum(n for _, _, n in counts) == 39 and 1 <= len(counts) <= 2, counts
    assert {(user, action) for user, action, _ in counts} == {("alice", "dataset.read")}
