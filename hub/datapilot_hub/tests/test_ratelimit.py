"""Rate limits: the rate parser, both backends (in-process and a real Redis), replicas
sharing one Redis, and a 429 with Retry-After from a real hub."""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import time

import pytest
import pytest_asyncio

from datapilot_hub.errors import DatapilotError
from datapilot_hub.ratelimit import (
    DEFAULT_RATE_LIMITS,
    MemoryBackend,
    Rate,
    RateLimiter,
    RedisBackend,
    parse_rate_limits,
    rate_limiter_from_config,
)

from .test_api import CSV
from .utils import running_hub

REDIS_URL = os.environ.get("DATAPILOT_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


def _redis_or_skip():
    import redis

    try:
        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2).ping()
    except redis.RedisError as e:
        if os.environ.get("DATAPILOT_TEST_REQUIRE_POSTGRES") == "1":
            pytest.fail(f"Redis is required (make test starts it) but unreachable: {e}")
        pytest.skip(f"Redis not reachable at {REDIS_URL}: {e}")


@pytest.fixture
def redis_prefix():
    """A key prefix of its own for one test; its keys are removed after."""
    _redis_or_skip()
    import redis

    prefix = f"datapilot-test:{secrets.token_hex(6)}:"
    yield prefix
    client = redis.Redis.from_url(REDIS_URL)
    keys = list(client.scan_iter(f"{prefix}*"))
    if keys:
        client.delete(*keys)
    client.close()


# on the test's own loop, which the limiters' Redis connections belong to
@pytest_asyncio.fixture(params=["memory", "redis"], loop_scope="function")
async def make_limiter(request):
    """Build limiters on one backend; Redis limiters share the test's prefix (replicas)."""
    made: list[RateLimiter] = []
    prefix = "datapilot:rl:"
    if request.param == "redis":
        prefix = request.getfixturevalue("redis_prefix")

    def make(limits):
        backend = RedisBackend(REDIS_URL) if request.param == "redis" else MemoryBackend()
        limiter = RateLimiter(limits, backend, prefix)
        made.append(limiter)
        return limiter

    make.backend = request.param
    yield make
    for limiter in made:
        await limiter.close()


def test_rates_parse():
    assert Rate.parse("30/minute") == Rate(30, 60, "30/minute")
    assert Rate.parse("5/10 seconds").period == 10
    assert Rate.parse(" 1000 / day ").count == 1000
    for bad in ("", "30", "0/minute", "3/fortnight", "-1/hour", "1/0 seconds", None, 5):
        with pytest.raises(ValueError):
            Rate.parse(bad)


def test_limits_setting_is_checked():
    assert parse_rate_limits(DEFAULT_RATE_LIMITS)["ingest"]["user"].count == 30
    assert parse_rate_limits({"download": {"user": None}}) == {"download": {}}
    with pytest.raises(ValueError, match="unknown call"):
        parse_rate_limits({"uploads": {"user": "1/minute"}})
    with pytest.raises(ValueError, match="unknown scope"):
        parse_rate_limits({"ingest": {"team": "1/minute"}})
    with pytest.raises(ValueError, match="must be a dict"):
        parse_rate_limits({"ingest": "30/minute"})
    # overrides replace the defaults of their call only
    limiter = rate_limiter_from_config({"ingest": {"user": "2/minute"}})
    assert set(limiter.limits["ingest"]) == {"user"}
    assert limiter.limits["download"]["org"].count == 1200


def test_service_traits(monkeypatch):
    """``DataService.rate_limits`` comes from $DATAPILOT_RATE_LIMITS and is checked."""
    from traitlets import TraitError

    from datapilot_hub.configuration import DatapilotConfig
    from datapilot_hub.service.app import DataService

    monkeypatch.setenv("DATAPILOT_RATE_LIMITS", '{"ingest": {"user": "2/minute"}}')
    monkeypatch.setenv("DATAPILOT_RATE_LIMIT_PREFIX", "x:")
    monkeypatch.setenv("DATAPILOT_REDIS_URL", "redis://127.0.0.1:6379/3")
    service = DataService()
    assert service.rate_limits == {"ingest": {"user": "2/minute"}}
    assert service.rate_limit_prefix == "x:"
    assert service.audit_retention_days == 365
    assert DatapilotConfig().redis_url == "redis://127.0.0.1:6379/3"
    with pytest.raises(TraitError, match="not a rate"):
        DataService(rate_limits={"download": {"user": "lots"}})
    with pytest.raises(TraitError, match="unknown call"):
        DataService(rate_limits={"uploads": {}})


async def test_user_limit_then_429_with_retry_after(make_limiter):
    limiter = make_limiter({"ingest": {"user": "3/minute"}})
    for _ in range(3):
        await limiter.check("ingest", "alice", 1, "acme")
    with pytest.raises(DatapilotError) as e:
        await limiter.check("ingest", "alice", 1, "acme")
    err = e.value
    assert err.status == 429 and err.code == "rate_limited"
    assert err.details["limit"] == "ingest.user"
    assert err.details["rate"] == "3/minute"
    # one call comes back every 20 s
    assert 15 <= err.details["retry_after"] <= 20
    assert "3/minute" in err.message
    # another user, and another call, have budgets of their own
    await limiter.check("ingest", "bob", 1, "acme")
    await limiter.check("download", "alice", 1, "acme")


async def test_org_limit_is_shared_by_members_and_refusals_cost_nothing(make_limiter):
    limiter = make_limiter({"transform": {"user": "2/minute", "org": "3/minute"}})
    await limiter.check("transform", "alice", 7, "acme")
    await limiter.check("transform", "alice", 7, "acme")
    with pytest.raises(DatapilotError) as e:
        await limiter.check("transform", "alice", 7, "acme")
    assert e.value.details["limit"] == "transform.user"
    # alice's refused call was charged to neither bucket: the org has one call left
    await limiter.check("transform", "bob", 7, "acme")
    with pytest.raises(DatapilotError) as e:
        await limiter.check("transform", "carol", 7, "acme")
    assert e.value.details["limit"] == "transform.org"
    assert e.value.details["scope"] == "org"
    assert "'acme'" in e.value.message
    # another organization is not affected
    await limiter.check("transform", "dave", 8, "globex")


async def test_budget_comes_back_with_time(make_limiter):
    limiter = make_limiter({"insights": {"user": "2/second"}})
    await limiter.check("insights", "alice", 1, "acme")
    await limiter.check("insights", "alice", 1, "acme")
    with pytest.raises(DatapilotError) as e:
        await limiter.check("insights", "alice", 1, "acme")
    assert e.value.details["retry_after"] == 1  # rounded up, never 0
    await asyncio.sleep(0.6)
    await limiter.check("insights", "alice", 1, "acme")


async def test_unlimited_call_and_unknown_call(make_limiter):
    limiter = make_limiter({"download": {"user": None, "org": None}})
    for _ in range(50):
        await limiter.check("download", "alice", 1, "acme")
    with pytest.raises(KeyError):
        await limiter.check("uploads", "alice", 1, "acme")


async def test_two_replicas_share_one_budget(redis_prefix):
    """Two limiters (two service replicas) on one Redis together allow the limit, no more."""
    limits = {"ingest": {"user": "10/minute", "org": "15/minute"}}
    replicas = [
        RateLimiter(limits, RedisBackend(REDIS_URL), redis_prefix),
        RateLimiter(limits, RedisBackend(REDIS_URL), redis_prefix),
    ]

    async def call(i: int, user: str) -> bool:
        try:
            await replicas[i % 2].check("ingest", user, 1, "acme")
            return True
        except DatapilotError as e:
            assert e.status == 429
            return False

    try:
        # concurrent calls from both replicas: the script is atomic, so exactly 10 pass
        results = await asyncio.gather(*(call(i, "alice") for i in range(30)))
        assert sum(results) == 10
        assert sum(results[0::2]) > 0 and sum(results[1::2]) > 0
        # the organization's budget (15) is shared too: 5 more for others, then none
        results = await asyncio.gather(*(call(i, f"user{i}") for i in range(12)))
        assert sum(results) == 5
    finally:
        for r in replicas:
            await r.close()


async def test_in_process_replicas_do_not_share():
    """Without Redis each replica limits on its own (why DATAPILOT_REDIS_URL exists)."""
    limits = {"ingest": {"user": "1/minute"}}
    a, b = RateLimiter(limits), RateLimiter(limits)
    await a.check("ingest", "alice", 1, "acme")
    await b.check("ingest", "alice", 1, "acme")
    with pytest.raises(DatapilotError):
        await a.check("ingest", "alice", 1, "acme")


async def test_redis_outage_falls_back_to_the_process(caplog):
    """An unreachable Redis degrades to per-process limits and says so in the log."""
    from datapilot_hub.ratelimit import RedisBackend as RB

    backend = RB("redis://127.0.0.1:1/0", fallback=MemoryBackend())
    limiter = RateLimiter({"ingest": {"user": "1/minute"}}, backend, "x:")
    try:
        await limiter.check("ingest", "alice", 1, "acme")
        with pytest.raises(DatapilotError):
            await limiter.check("ingest", "alice", 1, "acme")
    finally:
        await limiter.close()
    assert "Redis at redis://127.0.0.1:1/0 failed" in caplog.text


# -- through a real JupyterHub, proxy and data service --------------------------------


@pytest.fixture(scope="module", params=["memory", "redis"])
def limited_hub(request, tmp_path_factory):
    """A hub whose data service allows 2 downloads a minute per user and 1 ingest per org."""
    env = {
        "DATAPILOT_RATE_LIMITS": json.dumps(
            {"download": {"user": "2/minute"}, "ingest": {"user": None, "org": "1/hour"}}
        ),
        # refusals are counted per caller and window, written when it closes
        "DATAPILOT_AUDIT_REFUSAL_WINDOW": "1",
    }
    prefix = None
    if request.param == "redis":
        _redis_or_skip()
        prefix = f"datapilot-test:{secrets.token_hex(6)}:"
        env.update(DATAPILOT_REDIS_URL=REDIS_URL, DATAPILOT_RATE_LIMIT_PREFIX=prefix)
    try:
        with running_hub(request, tmp_path_factory, env=env, label="limited") as hub:
            yield hub
    finally:
        if prefix:
            import redis

            client = redis.Redis.from_url(REDIS_URL)
            keys = list(client.scan_iter(f"{prefix}*"))
            if keys:
                client.delete(*keys)
            client.close()


def test_hub_answers_429_with_retry_after(limited_hub):
    hub = limited_hub
    hub.create_org("acme", "Acme")
    hub.add_member("acme", "alice", "analyst")
    hub.add_member("acme", "mona", "manager")
    alice, mona = hub.user_token("alice"), hub.user_token("mona")

    r = hub.upload("acme", alice, "sales", CSV, "sales.csv")
    assert r.status_code == 202, r.text
    assert hub.wait_job("acme", r.json()["job"]["id"], alice)["state"] == "succeeded"

    # the organization's one ingest an hour is spent: mona (another member) is refused
    # before her upload is read, with the limit named and a wait of up to an hour
    r = hub.upload("acme", mona, "sales2", CSV, "sales2.csv")
    assert r.status_code == 429, r.text
    assert r.json()["error"] == "rate_limited"
    assert r.json()["details"]["limit"] == "ingest.org"
    assert 1 <= int(r.headers["Retry-After"]) <= 3600

    # downloads: two a minute per user
    for _ in range(2):
        r = hub.api("GET", "/orgs/acme/datasets/sales/data", alice)
        assert r.status_code == 200, r.text
    t0 = time.monotonic()
    r = hub.api("GET", "/orgs/acme/datasets/sales/data", alice)
    assert r.status_code == 429, r.text
    body = r.json()
    assert body["error"] == "rate_limited"
    assert body["details"]["limit"] == "download.user"
    assert body["details"]["rate"] == "2/minute"
    retry = int(r.headers["Retry-After"])
    assert 1 <= retry <= 30 + (time.monotonic() - t0) + 1
    assert body["details"]["retry_after"] == retry
    # mona's budget is her own
    assert hub.api("GET", "/orgs/acme/datasets/sales/data", mona).status_code == 200

    # the refusals are in the audit log, with their outcome, once their window closed
    deadline = time.monotonic() + 20
    while True:
        events = hub.api("GET", "/orgs/acme/audit?limit=20", mona).json()["events"]
        refused = [e for e in events if e["outcome"] == "rate_limited"]
        if len(refused) == 2 or time.monotonic() > deadline:
            break
        time.sleep(0.25)
    assert {(e["action"], e["user"], e["details"]["count"]) for e in refused} == {
        ("dataset.read", "alice", 1),
        ("dataset.import", "mona", 1),
    }
    assert all(e["status"] == 429 for e in refused)


def test_hub_aggregations_spend_the_download_budget(limited_hub):
    """An aggregation reads the data: it is charged to the same budget as /data."""
    hub = limited_hub
    hub.create_org("beta", "Beta")
    hub.add_member("beta", "bob", "analyst")
    bob = hub.user_token("bob")
    r = hub.upload("beta", bob, "sales", CSV, "sales.csv")
    assert r.status_code == 202, r.text
    assert hub.wait_job("beta", r.json()["job"]["id"], bob)["state"] == "succeeded"
    body = {"metrics": {"*": ["count"]}}
    answers = [
        hub.api("POST", "/orgs/beta/datasets/sales/aggregate", bob, json=body) for _ in range(2)
    ]
    assert [a.status_code for a in answers] == [200, 200], answers[-1].text
    r = hub.api("POST", "/orgs/beta/datasets/sales/aggregate", bob, json=body)
    assert r.status_code == 429, r.text
    assert r.json()["details"]["limit"] == "download.user" and int(r.headers["Retry-After"]) >= 1
    assert hub.api("GET", "/orgs/beta/datasets/sales/data", bob).status_code == 429
