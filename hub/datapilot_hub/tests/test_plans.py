"""Plans, quotas and usage metering: in the domain layer and through a real hub."""

from __future__ import annotations

import json
import time
from datetime import timedelta

import pytest

from datapilot_hub.catalog import Dataset, DatasetVersion, utcnow
from datapilot_hub.domain._identity import Caller, org_context
from datapilot_hub.domain.orgs import OrgService
from datapilot_hub.domain.plans import DEFAULT_PLANS, LIMITS, Plans, validate_plans
from datapilot_hub.errors import DatapilotError
from datapilot_hub.hubapi import HubClient

from .conftest import BACKENDS
from .utils import running_hub

CSV = b"id,amount\n1,2.5\n2,3.5\n3,4.5\n"

TINY = {
    "free": {
        "members": 3,
        "datasets": 1,
        "storage_bytes": 10**9,
        "rows_per_dataset": 6,
        "servers": 1,
        "dask_workers": 1,
    },
    "team": {"members": 10, "datasets": 5, "servers": 5, "dask_workers": 2},
}


# ---- domain ---------------------------------------------------------------------------


def test_default_plans_are_valid_and_cover_every_limit():
    plans = validate_plans(DEFAULT_PLANS)
    assert set(plans) == {"free", "team", "business"}
    for limits in plans.values():
        assert set(limits) == set(LIMITS)


@pytest.mark.parametrize(
    "bad, word",
    [
        ({}, "non-empty"),
        ({"x": {"seats": 3}}, "unknown limits"),
        ({"x": {"members": -1}}, "members"),
        ({"x": {"members": True}}, "members"),
        ({"x": []}, "dict"),
    ],
)
def test_bad_plans_are_refused(bad, word):
    with pytest.raises(ValueError, match=word):
        validate_plans(bad)


def test_a_limit_left_out_is_unlimited():
    assert validate_plans({"x": {"members": 2}})["x"]["datasets"] is None


def _add_dataset(catalog, org_id: int, name: str, rows: int, size: int) -> None:
    with catalog.session(org_id) as db:
        ds = Dataset(organization_id=org_id, name=name, current_version=1, created_by="t")
        db.add(ds)
        db.flush()
        db.add(
            DatasetVersion(
                organization_id=org_id,
                dataset_id=ds.id,
                version=1,
                columns=[],
                rows=rows,
                bytes=size,
                path=f"org-{org_id}/datasets/{name}/v1",
                created_by="t",
                report={"rows_read": rows},
            )
        )


async def test_member_quota_is_checked_before_the_member_is_added(catalog):
    plans = Plans(catalog, TINY)
    orgs = OrgService(catalog, HubClient(api_url="", token=""), plans)
    await orgs.create(Caller("ada"), "alpha", "Alpha")
    ctx = org_context(catalog, Caller("ada"), "alpha")
    await orgs.set_member(ctx, "u1", "analyst")
    await orgs.set_member(ctx, "u2", "analyst")
    with pytest.raises(DatapilotError) as e:
        await orgs.set_member(ctx, "u3", "viewer")
    err = e.value.to_json()
    assert e.value.status == 403 and err["error"] == "quota_exceeded"
    assert err["details"] == {"limit": "members", "plan": "free", "allowed": 3, "usage": 4}
    assert "members" in err["message"] and "3" in err["message"] and "4" in err["message"]
    assert [m["name"] for m in orgs.members(ctx)] == ["ada", "u1", "u2"]
    # a role change is not a new member
    await orgs.set_member(ctx, "u2", "manager")


async def test_upload_quotas(catalog, two_orgs):
    plans = Plans(catalog, {**TINY, "free": {**TINY["free"], "storage_bytes": 1000}})
    ctx = two_orgs["alpha", "alice"]
    plans.check_upload(ctx, "first", "create")
    # every sheet of a workbook is a dataset: they all count
    with pytest.raises(DatapilotError) as e:
        plans.check_upload(ctx, ["first", "second"], "create")
    assert e.value.details["limit"] == "datasets" and e.value.details["usage"] == 2
    _add_dataset(catalog, ctx.org_id, "first", rows=6, size=600)
    # the one dataset allowed exists: another is refused, writing into it is not
    with pytest.raises(DatapilotError) as e:
        plans.check_upload(ctx, "second", "create")
    assert e.value.details["limit"] == "datasets" and e.value.details["usage"] == 2
    plans.check_upload(ctx, "first", "replace")
    # the dataset holds the rows allowed: an append is refused
    with pytest.raises(DatapilotError) as e:
        plans.check_upload(ctx, "first", "append")
    assert e.value.details["limit"] == "rows_per_dataset"
    # other organizations are not counted
    plans.check_upload(two_orgs["beta", "bob"], "first", "create")
    _add_dataset(catalog, ctx.org_id, "hidden", rows=1, size=500)
    with pytest.raises(DatapilotError) as e:
        plans.check_upload(ctx, "first", "replace")
    assert e.value.details == {
        "limit": "storage_bytes",
        "plan": "free",
        "allowed": 1000,
        "usage": 1100,
    }


async def test_usage_sums_levels_and_since(catalog, two_orgs):
    plans = Plans(catalog)
    ctx = two_orgs["alpha", "alice"]
    other = two_orgs["beta", "bob"]
    _add_dataset(catalog, ctx.org_id, "sales", rows=3, size=1234)
    plans.record_job(
        ctx.org_id,
        "alice",
        {"id": "j1", "seconds": 1.5, "result": {"dataset": "sales", "version": 1, "rows": 3}},
    )
    plans.record(ctx.org_id, "server_seconds", 1800, "alice")
    plans.record(other.org_id, "server_seconds", 99, "bob")
    usage = plans.usage(ctx.org_id)
    assert usage["rows_ingested"] == 3
    assert usage["compute_seconds"] == 1.5
    assert usage["server_seconds"] == 1800 and usage["server_hours"] == 0.5
    assert usage["storage_bytes"] == 1234 and usage["datasets"] == 1
    assert usage["plan"] == "free" and usage["limits"]["members"] == 5
    history = plans.history(ctx.org_id)
    assert {r["metric"] for r in history} == {
        "storage_bytes",
        "rows_ingested",
        "compute_seconds",
        "server_seconds",
    }
    assert plans.usage(ctx.org_id, since=utcnow() + timedelta(seconds=5))["server_seconds"] == 0
    with pytest.raises(KeyError):
        plans.record(ctx.org_id, "coffee", 1)


# ---- through the hub --------------------------------------------------------------------


@pytest.fixture(scope="module", params=BACKENDS)
def plan_hub(request, tmp_path_factory):
    """A hub whose plans are tiny, with the server watcher polling every 2 seconds."""
    with running_hub(
        request,
        tmp_path_factory,
        request.param,
        env={"DATAPILOT_PLANS": json.dumps(TINY), "DATAPILOT_SERVER_POLL_INTERVAL": "2"},
        label="plans",
    ) as hub:
        yield hub


@pytest.fixture(scope="module")
def tenants(plan_hub):
    return plan_hub.populate(
        {"small": "Small Co", "other": "Other Co"},
        [("small", "sam", "admin"), ("small", "ana", "analyst"), ("other", "otto", "admin")],
    )


def test_self_service_is_off_by_default(plan_hub, tenants):
    r = plan_hub.api("POST", "/orgs", tenants["ana"], json={"slug": "mine"})
    assert r.status_code == 403 and r.json()["error"] == "forbidden"


def test_ingestion_is_metered_and_shown(plan_hub, tenants):
    hub, t = plan_hub, tenants["ana"]
    r = hub.upload("small", t, "sales", CSV)
    assert r.status_code == 202, r.text
    assert hub.wait_job("small", r.json()["job"]["id"], t)["state"] == "succeeded"
    usage = hub.api("GET", "/orgs/small/usage", t).json()
    assert usage["rows_ingested"] == 3 and usage["compute_seconds"] > 0
    assert usage["storage_bytes"] > 0 and usage["datasets"] == 1
    assert usage["plan"] == "free" and usage["limits"]["datasets"] == 1
    levels = [r for r in usage["records"] if r["metric"] == "storage_bytes"]
    assert levels and levels[0]["amount"] == usage["storage_bytes"]
    info = hub.api("GET", "/orgs/small", t).json()
    assert info["plan"] == "free" and info["limits"]["members"] == 3
    assert info["usage"]["rows_ingested"] == 3 and info["usage"]["members"] == 2


def test_going_over_a_limit_is_403_before_any_job(plan_hub, tenants):
    hub, t = plan_hub, tenants["ana"]
    r = hub.upload("small", t, "second", CSV)
    assert r.status_code == 403, r.text
    body = r.json()
    assert body["error"] == "quota_exceeded"
    assert body["details"]["limit"] == "datasets" and body["details"]["allowed"] == 1
    assert body["details"]["usage"] == 2 and "datasets" in body["message"]
    # no job and no dataset were made
    assert [d["name"] for d in hub.api("GET", "/orgs/small/datasets", t).json()["datasets"]] == [
        "sales"
    ]
    # appending: 3 + 3 rows fills the 6 allowed, then an append is refused at once
    r = hub.upload("small", t, "sales", CSV, mode="append")
    assert r.status_code == 202, r.text
    assert hub.wait_job("small", r.json()["job"]["id"], t)["state"] == "succeeded"
    r = hub.upload("small", t, "sales", CSV, mode="append")
    assert r.status_code == 403 and r.json()["details"]["limit"] == "rows_per_dataset"
    usage = hub.api("GET", "/orgs/small/usage?metric=rows_ingested", t).json()
    # the append counts the rows it read, not the whole new version
    assert usage["rows_ingested"] == 6
    assert {r["metric"] for r in usage["records"]} == {"rows_ingested"}


def test_rows_over_the_limit_fail_the_job_before_its_version(plan_hub, tenants):
    hub, t = plan_hub, tenants["ana"]
    before = hub.api("GET", "/orgs/small/datasets/sales", t).json()["version"]
    seven = b"id,amount\n" + b"".join(b"%d,1.5\n" % i for i in range(7))
    r = hub.upload("small", t, "sales", seven, mode="replace")
    assert r.status_code == 202, r.text
    job = hub.wait_job("small", r.json()["job"]["id"], t)
    assert job["state"] == "failed" and "rows_per_dataset" in job["error"], job
    assert hub.api("GET", "/orgs/small/datasets/sales", t).json()["version"] == before


def test_member_quota_and_plan_change(plan_hub, tenants):
    hub = plan_hub
    sam = tenants["sam"]
    r = hub.api("PUT", "/orgs/small/members/third", sam, json={"role": "viewer"})
    assert r.status_code == 201, r.text
    r = hub.api("PUT", "/orgs/small/members/fourth", sam, json={"role": "viewer"})
    assert r.status_code == 403 and r.json()["details"]["limit"] == "members"
    # the org's own Admin may not change the plan; another org does not see it
    r = hub.api("PUT", "/orgs/small/plan", sam, json={"plan": "team"})
    assert r.status_code == 403
    r = hub.api("PUT", "/orgs/small/plan", tenants["otto"], json={"plan": "team"})
    assert r.status_code == 404
    r = hub.api("PUT", "/orgs/small/plan", hub.admin_token, json={"plan": "platinum"})
    assert r.status_code == 400 and r.json()["details"]["field"] == "plan"
    r = hub.api("PUT", "/orgs/small/plan", hub.admin_token, json={"plan": "team"})
    assert r.status_code == 200 and r.json()["plan"] == "team"
    assert r.json()["limits"]["members"] == 10
    r = hub.api("PUT", "/orgs/small/members/fourth", sam, json={"role": "viewer"})
    assert r.status_code == 201, r.text
    hub.api("PUT", "/orgs/small/plan", hub.admin_token, json={"plan": "free"})


def test_usage_isolation_and_bad_input(plan_hub, tenants):
    hub = plan_hub
    assert hub.api("GET", "/orgs/small/usage", tenants["otto"]).status_code == 404
    r = hub.api("GET", "/orgs/small/usage?since=yesterday", tenants["ana"])
    assert r.status_code == 400 and r.json()["details"]["field"] == "since"
    r = hub.api("GET", "/orgs/small/usage?metric=coffee", tenants["ana"])
    assert r.status_code == 400 and r.json()["details"]["field"] == "metric"
    r = hub.api("GET", "/orgs/small/usage?since=2020-01-01T00:00:00Z", tenants["ana"])
    assert r.status_code == 200 and r.json()["since"].startswith("2020-01-01")


def test_server_policy_needs_notebooks_run(plan_hub, tenants):
    hub = plan_hub
    hub.add_member("other", "vic", "viewer")
    r = hub.api("GET", "/orgs/other/server-policy", hub.user_token("vic"))
    assert r.status_code == 403 and r.json()["details"]["permission"] == "notebooks:run"
    assert hub.api("GET", "/orgs/small/server-policy", tenants["otto"]).status_code == 404
    body = hub.api("GET", "/orgs/small/server-policy", tenants["ana"]).json()
    assert body["running"] == 0 and body["mem_limit"] is None


def test_concurrent_server_quota_and_server_hours(plan_hub, tenants):
    """The plan allows one server: a second member's start is refused by the spawner."""
    hub = plan_hub
    if hub.backend != "sqlite":
        pytest.skip("spawning is the same on both catalogs; once is enough")
    hub.start_server("ana", "small", tenants["ana"])
    try:
        r = hub.api("GET", "/orgs/small/server-policy", tenants["sam"])
        assert r.status_code == 403 and r.json()["details"]["limit"] == "servers"
        # the spawner asks the data service first: the hub answers with its refusal
        r = hub.hub_api("POST", "/users/sam/servers/small", tenants["sam"])
        assert r.status_code == 403, r.text
        assert "allows 1 notebook servers" in r.json()["message"]
        assert not hub.hub_api("GET", "/users/sam").json()["servers"].get("small")
        # the watcher polls every 2 s: server time is metered while it runs
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            usage = hub.api("GET", "/orgs/small/usage", tenants["ana"]).json()
            if usage["server_seconds"] > 0:
                break
            time.sleep(1)
        assert usage["server_seconds"] > 0 and usage["server_hours"] > 0
    finally:
        hub.hub_api("DELETE", "/users/ana/servers/small")


def test_service_traits_read_the_environment(monkeypatch):
    from datapilot_hub.service.app import DataService

    assert DataService().plans == validate_plans(DEFAULT_PLANS)
    assert DataService().allow_self_service_orgs is False
    monkeypatch.setenv("DATAPILOT_PLANS", json.dumps(TINY))
    monkeypatch.setenv("DATAPILOT_SELF_SERVICE_ORGS", "yes")
    monkeypatch.setenv("DATAPILOT_DEFAULT_PLAN", "team")
    monkeypatch.setenv("DATAPILOT_SERVER_POLL_INTERVAL", "7")
    app = DataService()
    assert app.plans["free"]["members"] == 3 and app.plans["team"]["storage_bytes"] is None
    assert app.allow_self_service_orgs is True
    assert app.default_plan == "team" and app.server_poll_interval == 7
    with pytest.raises(ValueError, match="unknown limits"):
        DataService(plans={"x": {"seats": 1}})
