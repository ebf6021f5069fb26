"""The audit log: the domain (filters, paging, CSV, retention) on SQLite and PostgreSQL,
and the events real API calls leave through a real JupyterHub."""

from __future__ import annotations

import csv
import io
from datetime import datetime, timedelta, timezone

import pytest

from datapilot_hub.catalog import AuditEvent
from datapilot_hub.domain.audit import AuditLog, AuditQuery, csv_safe
from datapilot_hub.errors import DatapilotError
from datapilot_hub.service.handlers import default_handlers
from datapilot_hub.service.handlers.base import APIHandler

from .test_api import CSV

# -- every mutating call declares its audit action ------------------------------------


def test_every_mutating_handler_method_declares_an_audit_action():
    """One mechanism: a POST, PUT, PATCH or DELETE without an action would go unrecorded."""
    missing = []
    for path, handler in default_handlers:
        if not issubclass(handler, APIHandler):
            continue
        for method in ("post", "put", "patch", "delete"):
            if getattr(handler, method) is not getattr(APIHandler, method) and (
                method.upper() not in handler.audit_actions
            ):
                missing.append(f"{method.upper()} {path} ({handler.__name__})")
    assert not missing, f"no audit_actions entry for: {missing}"


# -- domain ---------------------------------------------------------------------------


def _backdate(catalog, org_id, action, when):
    with catalog.session(org_id) as db:
        for e in db.query(AuditEvent).filter_by(organization_id=org_id, action=action):
            e.time = when


async def test_record_and_filter(catalog, two_orgs):
    ctx = two_orgs
    log = AuditLog(catalog)
    alpha, beta = ctx["alpha", "ada"].org_id, ctx["beta", "bea"].org_id
    log.record(alpha, "alice", "dataset.import", "sales", "ok", "10.0.0.1", {"status": 202})
    log.record(alpha, "alice", "dataset.read", "sales", "ok", "10.0.0.1", {"status": 200})
    log.record(alpha, "vera", "dataset.import", None, "forbidden", "10.0.0.2", {"status": 403})
    log.record(beta, "bob", "dataset.read", "secret", "ok", "10.9.9.9", {"status": 200})
    old = datetime.now(timezone.utc) - timedelta(days=3)
    _backdate(catalog, alpha, "dataset.read", old)

    manager = ctx["alpha", "mona"]
    events = log.events(manager, AuditQuery())
    assert [e["action"] for e in events] == ["dataset.import", "dataset.read", "dataset.import"]
    newest = events[0]
    assert newest["user"] == "vera" and newest["outcome"] == "forbidden"
    assert newest["status"] == 403 and newest["client"] == "10.0.0.2"
    assert newest["details"] == {}
    # beta's event is not visible from alpha, whatever the filter
    assert all(e["target"] != "secret" for e in log.events(manager, AuditQuery(limit=None)))

    def actions(**kw):
        return [(e["user"], e["action"]) for e in log.events(manager, AuditQuery(**kw))]

    assert actions(user="alice") == [("alice", "dataset.read"), ("alice", "dataset.import")]
    assert actions(action="dataset.read") == [("alice", "dataset.read")]
    day_ago = datetime.now(timezone.utc) - timedelta(days=1)
    assert ("alice", "dataset.read") not in actions(since=day_ago)
    assert actions(until=day_ago) == [("alice", "dataset.read")]
    assert actions(limit=1) == [("vera", "dataset.import")]
    assert actions(limit=1, offset=1) == [("alice", "dataset.read")]

    # reading the log takes audit:read: an analyst and a viewer are refused
    for user in ("alice", "vera"):
        with pytest.raises(DatapilotError) as e:
            log.events(ctx["alpha", user], AuditQuery())
        assert e.value.status == 403
        assert e.value.details["permission"] == "audit:read"
    assert len(log.events(ctx["alpha", "ada"], AuditQuery())) == 3


async def test_csv_export_is_formula_safe(catalog, two_orgs):
    ctx = two_orgs["alpha", "ada"]
    log = AuditLog(catalog)
    log.record(ctx.org_id, "=cmd|' /C calc'!A0", "member.set", "+1+2", "invalid_role", None)
    log.record(ctx.org_id, "ada", "member.set", "@SUM(A1)", "ok", "-1", {"role": "=x"})
    for i in range(7):
        log.record(ctx.org_id, "ada", "dataset.read", f"t{i}", "ok", "127.0.0.1")

    text = "".join(log.iter_csv(ctx, AuditQuery(limit=None), batch=3))
    rows = list(csv.DictReader(io.StringIO(text)))
    assert len(rows) == 9
    assert list(rows[0]) == [
        "time",
        "user",
        "action",
        "target",
        "outcome",
        "status",
        "client",
        "details",
    ]
    first, second = rows[-1], rows[-2]
    assert first["user"] == "'=cmd|' /C calc'!A0"
    assert first["target"] == "'+1+2"
    assert second["target"] == "'@SUM(A1)" and second["client"] == "'-1"
    assert second["details"] == '{"role": "=x"}'
    for row in rows:
        for cell in row.values():
            assert not cell.startswith(("=", "+", "-", "@")), row
    # paging and filters apply to exports too, across batches
    text = "".join(log.iter_csv(ctx, AuditQuery(action="dataset.read", limit=5, offset=1), 2))
    targets = [r["target"] for r in csv.DictReader(io.StringIO(text))]
    assert targets == ["t5", "t4", "t3", "t2", "t1"]
    assert csv_safe(None) == "" and csv_safe(12) == "12" and csv_safe("\tx") == "'\tx"


async def test_retention_purges_old_events(catalog, two_orgs):
    alpha, beta = two_orgs["alpha", "ada"].org_id, two_orgs["beta", "bea"].org_id
    log = AuditLog(catalog, retention_days=30)
    for org in (alpha, beta):
        log.record(org, "u", "old.event")
        log.record(org, "u", "new.event")
        _backdate(catalog, org, "old.event", datetime.now(timezone.utc) - timedelta(days=31))
    assert log.purge() == 2
    left = [e["action"] for e in log.events(two_orgs["alpha", "ada"], AuditQuery())]
    assert left == ["new.event"]
    # a year later, with retention 0 (keep all), nothing goes
    keep = AuditLog(catalog, retention_days=0)
    assert keep.purge(datetime.now(timezone.utc) + timedelta(days=365)) == 0
    assert log.purge(datetime.now(timezone.utc) + timedelta(days=365)) == 2


@pytest.mark.parametrize(
    "args, field",
    [
        ({"since": "yesterday"}, "since"),
        ({"until": "2026-13-01"}, "until"),
        ({"since": "2026-11-25T10:00:00Z", "until": "2026-11-24T10:00:00Z"}, "until"),
        ({"limit": "0"}, "limit"),
        ({"limit": "1001"}, "limit"),
        ({"limit": "ten"}, "limit"),
        ({"offset": "-1"}, "offset"),
        ({"user": ""}, "user"),
        ({"action": "x" * 61}, "action"),
    ],
)
def test_query_arguments_are_checked(args, field):
    with pytest.raises(DatapilotError) as e:
        AuditQuery.from_arguments(args)
    assert e.value.status == 400
    assert e.value.details["field"] == field


def test_query_arguments_parse():
    q = AuditQuery.from_arguments({"since": "2026-11-25T10:00:00 01:00", "until": "2026-11-26"})
    assert q.since == datetime(2026, 11, 25, 9, tzinfo=timezone.utc)
    assert q.until == datetime(2026, 11, 26, tzinfo=timezone.utc)  # no zone: UTC
    assert (q.limit, q.offset) == (100, 0)
    assert AuditQuery.from_arguments({}, export=True).limit is None
    assert AuditQuery.from_arguments({"limit": "5000"}, export=True).limit == 5000


# -- through a real JupyterHub --------------------------------------------------------


@pytest.fixture(scope="module")
def world(hub):
    """acme: ada (admin), mona (manager), alice (analyst), vera (viewer); globex: gary."""
    tokens = hub.populate(
        {"acme": "Acme Corp", "globex": "Globex"},
        [
            ("acme", "ada", "admin"),
            ("acme", "mona", "manager"),
            ("acme", "alice", "analyst"),
            ("acme", "vera", "viewer"),
            ("globex", "gary", "analyst"),
        ],
    )
    return {"tokens": tokens}


def _events(hub, token, query=""):
    r = hub.api("GET", f"/orgs/acme/audit{query}", token)
    assert r.status_code == 200, r.text
    return r.json()["events"]


def test_api_calls_leave_one_event_each(hub, world):
    t = world["tokens"]
    r = hub.upload("acme", t["alice"], "sales", CSV, "sales.csv")
    assert r.status_code == 202, r.text
    job = r.json()["job"]["id"]
    assert hub.wait_job("acme", job, t["alice"])["state"] == "succeeded"
    r = hub.api("GET", "/orgs/acme/datasets/sales/data?format=csv", t["alice"])
    assert r.status_code == 200
    # refused in the organization (403): recorded
    assert hub.upload("acme", t["vera"], "nope", CSV).status_code == 403
    assert hub.api("DELETE", "/orgs/acme/datasets/sales", t["alice"]).status_code == 403
    # a stranger (404): not recorded in acme
    assert hub.upload("acme", t["gary"], "spam", CSV).status_code == 404
    assert hub.api("GET", "/orgs/acme/datasets/sales/data", t["gary"]).status_code == 404
    # GETs other than data reads are not audited
    assert hub.api("GET", "/orgs/acme/datasets/sales", t["alice"]).status_code == 200

    events = _events(hub, t["mona"], "?limit=1000")
    by_action: dict[str, list] = {}
    for e in events:
        by_action.setdefault(e["action"], []).append(e)

    imports = by_action["dataset.import"]
    assert [(e["user"], e["outcome"], e["status"]) for e in imports] == [
        ("vera", "forbidden", 403),
        ("alice", "ok", 202),
    ]
    ok_import = imports[1]
    assert ok_import["target"] == "sales"
    assert ok_import["details"] == {"mode": "create", "job": job}
    assert ok_import["client"]  # the address tornado saw through the proxy
    datetime.fromisoformat(ok_import["time"])

    (read,) = by_action["dataset.read"]
    assert (read["user"], read["target"], read["outcome"]) == ("alice", "sales", "ok")
    assert read["details"] == {"version": 1, "format": "csv"}

    (delete,) = by_action["dataset.delete"]
    assert (delete["user"], delete["outcome"], delete["status"]) == ("alice", "forbidden", 403)

    # the members added by the fixture: one member.set each (no double records)
    sets = [e for e in by_action["member.set"] if e["outcome"] == "ok"]
    assert sorted(e["target"] for e in sets) == ["ada", "alice", "mona", "vera"]
    assert all(e["details"]["role"] for e in sets)
    # the organization's creation, by the hub admin's service token
    (created,) = by_action["org.create"]
    assert created["target"] == "acme" and created["status"] == 201

    assert "gary" not in {e["user"] for e in events}
    assert "spam" not in {e["target"] for e in events}
    # nothing about globex leaks into acme's log
    assert "globex" not in {e["target"] for e in events}


def test_audit_filters_through_the_api(hub, world):
    t = world["tokens"]
    assert hub.api("DELETE", "/orgs/acme/members/nobody", t["ada"]).status_code == 404
    events = _events(hub, t["ada"], "?action=member.remove")
    assert [(e["user"], e["target"], e["outcome"]) for e in events][0] == (
        "ada",
        "nobody",
        "not_found",
    )
    assert {e["user"] for e in _events(hub, t["ada"], "?user=vera")} == {"vera"}
    future = (datetime.now(timezone.utc) + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert _events(hub, t["ada"], f"?since={future}") == []
    assert len(_events(hub, t["ada"], f"?until={future}&limit=2")) == 2
    page = hub.api("GET", "/orgs/acme/audit?limit=2&offset=1", t["ada"]).json()
    assert (page["limit"], page["offset"]) == (2, 1)
    for query, field in (
        ("?since=soon", "since"),
        ("?limit=0", "limit"),
        ("?offset=x", "offset"),
        ("?format=xml", "format"),
    ):
        r = hub.api("GET", f"/orgs/acme/audit{query}", t["ada"])
        assert r.status_code == 400, (query, r.text)
        assert r.json()["details"]["field"] == field


def test_audit_csv_export(hub, world):
    t = world["tokens"]
    # a hostile member name and an unknown role: refused (400), recorded, exported inert
    r = hub.api("PUT", "/orgs/acme/members/=hyperlink(1)", t["ada"], json={"role": "boss"})
    assert r.status_code == 400
    r = hub.api("GET", "/orgs/acme/audit?format=csv", t["ada"], check=False)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/csv")
    assert 'filename="acme-audit.csv"' in r.headers["content-disposition"]
    rows = list(csv.DictReader(io.StringIO(r.text)))
    assert len(rows) == len(_events(hub, t["ada"], "?limit=1000"))
    hostile = [row for row in rows if "hyperlink" in row["target"]]
    assert hostile and hostile[0]["target"] == "'=hyperlink(1)"
    assert hostile[0]["outcome"] == "invalid_role" and hostile[0]["status"] == "400"
    # filters apply to the export
    r = hub.api("GET", "/orgs/acme/audit?format=csv&user=vera", t["ada"], check=False)
    assert {row["user"] for row in csv.DictReader(io.StringIO(r.text))} == {"vera"}


def test_audit_isolation_and_permission(hub, world):
    t = world["tokens"]
    # another organization's member: 404, as for an organization that does not exist
    for fmt in ("", "?format=csv"):
        r = hub.api("GET", f"/orgs/acme/audit{fmt}", t["gary"])
        assert r.status_code == 404, r.text
        assert r.json()["error"] == "not_found"
    assert hub.api("GET", "/orgs/nosuch/audit", t["gary"]).status_code == 404
    # members without audit:read: 403
    for user in ("alice", "vera"):
        r = hub.api("GET", "/orgs/acme/audit", t[user])
        assert r.status_code == 403, r.text
        assert r.json()["details"]["permission"] == "audit:read"
    # Manager and Admin have it, and so does the hub administrator
    for token in (t["mona"], t["ada"], hub.admin_token):
        assert hub.api("GET", "/orgs/acme/audit", token).status_code == 200
    # gary's own organization's log shows his calls and nothing of acme
    hub.add_member("globex", "gia", "manager")
    gia = hub.user_token("gia")
    users = {e["user"] for e in hub.api("GET", "/orgs/globex/audit", gia).json()["events"]}
    assert users <= {"service:datapilot-admin", "gary"}
    assert hub.api("GET", "/orgs/acme/audit", t["mona"]).status_code == 200
    assert hub.api("GET", "/orgs/acme/audit", None).status_code == 401


def test_the_client_address_is_the_one_the_proxy_saw(hub, world):
    """X-Real-Ip and the X-Forwarded-For a client sends are its own word: the audit log
    records the last X-Forwarded-For entry, the one configurable-http-proxy appended."""
    t = world["tokens"]
    forged = {"X-Real-Ip": "6.6.6.6", "X-Forwarded-For": "6.6.6.6"}
    for headers in (forged, {"X-Forwarded-For": "6.6.6.6, 7.7.7.7"}, {"X-Real-Ip": "6.6.6.6"}):
        r = hub.api("DELETE", "/orgs/acme/members/forger", t["ada"], headers=headers)
        assert r.status_code == 404, r.text
        [event] = _events(hub, t["ada"], "?action=member.remove&limit=1")
        assert (event["target"], event["client"]) == ("forger", "127.0.0.1"), (headers, event)


def _request(headers: dict[str, str], peer: str | None = "127.0.0.1"):
    """A request as tornado's HTTP server makes it, from a TCP peer or a Unix socket."""
    from tornado.httputil import HTTPHeaders, HTTPServerRequest

    request = HTTPServerRequest("GET", "/", headers=HTTPHeaders(headers))
    # what tornado sets from the connection: the peer's address, "0.0.0.0" for a Unix socket
    request.remote_ip = peer or "0.0.0.0"
    return request


@pytest.mark.parametrize(
    "headers, peer, client",
    [
        # through the proxy: its own entry is the last one
        ({"X-Forwarded-For": "127.0.0.1"}, "127.0.0.1", "127.0.0.1"),
        ({"X-Forwarded-For": "6.6.6.6,10.1.2.3", "X-Real-Ip": "6.6.6.6"}, "127.0.0.1", "10.1.2.3"),
        ({"X-Forwarded-For": "6.6.6.6, 2001:db8::1"}, "127.0.0.1", "2001:db8::1"),
        ({"X-Forwarded-For": "::ffff:192.0.2.7"}, "127.0.0.1", "192.0.2.7"),
        ({"X-Forwarded-For": "6.6.6.6,not-an-address"}, "127.0.0.1", None),
        # straight from the hub (no proxy): the peer, and none over a Unix socket
        ({"X-Real-Ip": "6.6.6.6"}, "127.0.0.1", "127.0.0.1"),
        ({}, None, None),
    ],
)
def test_client_address(headers, peer, client):
    from datapilot_hub.service.handlers.base import client_address

    assert client_address(_request(headers, peer)) == client
