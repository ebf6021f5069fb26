"""Insights through a real hub, on both catalogs: found, cached per version, isolated,
rate limited; and the narrator against a chat completions server the tests start."""

from __future__ import annotations

import json

import pytest

from datapilot_charts import check_spec

from .conftest import BACKENDS
from .llm_server import ChatServer
from .planted import plant
from .utils import running_hub


def table_csv(patterns, rows=1500, seed=11) -> tuple[bytes, list]:
    df, planted = plant(patterns, rows=rows, seed=seed)
    df["day"] = df["day"].dt.strftime("%Y-%m-%d")
    return df.to_csv(index=False).encode(), planted


@pytest.fixture(scope="module")
def chat():
    server = ChatServer().start()
    yield server
    server.stop()


@pytest.fixture(scope="module", params=BACKENDS)
def ihub(request, tmp_path_factory, chat):
    """A hub whose narrator talks to ``chat``, with a small insights limit per user."""
    env = {
        "DATAPILOT_LLM_URL": chat.url,
        "DATAPILOT_LLM_MODEL": "test-model",
        "DATAPILOT_LLM_API_KEY": "sk-test-key",
        "DATAPILOT_RATE_LIMITS": json.dumps({"insights": {"user": "12/minute", "org": None}}),
    }
    with running_hub(request, tmp_path_factory, request.param, env=env, label="insights") as h:
        yield h


@pytest.fixture(scope="module")
def world(ihub):
    """acme: alice (analyst), vera (viewer), mona (manager), rita (analyst, for the rate
    limit); globex: gary (analyst). acme has ``sales`` with a trend, a dominant channel
    and a mostly missing coupon."""
    tokens = ihub.populate(
        {"acme": "Acme", "globex": "Globex"},
        [
            ("acme", "alice", "analyst"),
            ("acme", "vera", "viewer"),
            ("acme", "mona", "manager"),
            ("acme", "rita", "analyst"),
            ("globex", "gary", "analyst"),
        ],
    )
    body, planted = table_csv(["trend", "majority", "missing"])
    upload(ihub, tokens["alice"], "sales", body)
    return {"tokens": tokens, "planted": planted}


def upload(hub, token, name, body, mode="create"):
    r = hub.upload("acme", token, name, body, f"{name}.csv", mode=mode)
    assert r.status_code == 202, r.text
    job = hub.wait_job("acme", r.json()["job"]["id"], token)
    assert job["state"] == "succeeded", job


def get_insights(hub, token, name="sales", org="acme", **params):
    return hub.api("GET", f"/orgs/{org}/datasets/{name}/insights", token, params=params)


def test_insights_find_the_planted_patterns_and_are_cached_per_version(ihub, world):
    t = world["tokens"]["alice"]
    r = get_insights(ihub, t)
    assert r.status_code == 200, r.text
    answer = r.json()
    assert answer["dataset"] == "sales" and answer["version"] == 1 and answer["rows"] == 1500
    assert answer["cached"] is False
    assert answer["sample"]["rows"] == 1500 and answer["sample"]["method"] == "all rows"
    top = [(i["type"], i["columns"]) for i in answer["insights"]]
    for planted in world["planted"]:
        ranks = [
            k
            for k, (kind, cols) in enumerate(top)
            if kind == planted.type and set(planted.columns) <= set(cols)
        ]
        assert ranks and ranks[0] < 3, (planted, top)
    for insight in answer["insights"]:
        check_spec(insight["chart"])
        assert insight["sample"] == {"rows": insight["sample"]["rows"], "of": 1500}
    trend = next(i for i in answer["insights"] if i["type"] == "trend")
    assert trend["test"].startswith("Mann-Kendall") and trend["p_value"] < 0.001
    assert "Sen's slope" in trend["sentence"] and trend["statistic"]["name"] == "z"
    # the catalog's exact null counts are used for missing values
    coupon = next(i for i in answer["insights"] if i["type"] == "missing")
    assert coupon["details"]["exact"] is True

    again = get_insights(ihub, t).json()
    assert again["cached"] is True
    assert again["insights"] == answer["insights"] and again["computed"] == answer["computed"]
    cache = ihub.service_home / "storage"
    assert list(cache.glob("org-*/datasets/sales/insights/v1-*.json"))


def test_a_new_version_is_computed_again_and_an_older_one_stays_answered(ihub, world):
    t = world["tokens"]["mona"]
    body, _ = table_csv(["change_point"], rows=1200, seed=12)
    upload(ihub, world["tokens"]["alice"], "latency", body)
    first = get_insights(ihub, t, name="latency").json()
    assert first["version"] == 1
    assert first["insights"][0]["type"] == "change_point"
    assert first["insights"][0]["details"]["date"] in first["insights"][0]["sentence"]
    body, _ = table_csv(["seasonality"], rows=1200, seed=13)
    upload(ihub, world["tokens"]["alice"], "latency", body, mode="replace")
    second = get_insights(ihub, t, name="latency").json()
    assert second["version"] == 2 and second["cached"] is False
    assert second["insights"][0]["type"] == "seasonality"
    older = get_insights(ihub, t, name="latency", version=1).json()
    assert older["version"] == 1 and older["cached"] is True
    assert older["insights"] == first["insights"]


def test_another_organizations_member_gets_404_and_a_viewer_403(ihub, world):
    tokens = world["tokens"]
    r = get_insights(ihub, tokens["gary"])
    assert r.status_code == 404 and r.json()["error"] == "not_found", r.text
    # the same answer as for a dataset that does not exist
    r = get_insights(ihub, tokens["gary"], org="globex", name="sales")
    assert r.status_code == 404 and r.json()["error"] == "not_found", r.text
    r = get_insights(ihub, tokens["vera"])
    assert r.status_code == 403 and r.json()["error"] == "forbidden", r.text
    assert "insights:run" in r.json()["message"]
    assert get_insights(ihub, None).status_code == 401


@pytest.mark.parametrize(
    "params, field",
    [({"version": "two"}, "version"), ({"summary": "maybe"}, "summary")],
)
def test_bad_parameters_are_400s_naming_them(ihub, world, params, field):
    r = get_insights(ihub, world["tokens"]["alice"], **params)
    assert r.status_code == 400, r.text
    assert r.json()["details"]["field"] == field


def test_an_unknown_version_is_404(ihub, world):
    r = get_insights(ihub, world["tokens"]["alice"], version=9)
    assert r.status_code == 404 and r.json()["details"]["version"] == 9


def test_insights_are_rate_limited_with_the_insights_limit(ihub, world):
    t = world["tokens"]["rita"]
    answers = [get_insights(ihub, t).status_code for _ in range(13)]
    assert answers[:12] == [200] * 12 and answers[12] == 429, answers
    r = get_insights(ihub, t)
    assert r.status_code == 429 and int(r.headers["Retry-After"]) >= 1
    assert r.json()["details"]["call"] == "insights"


def test_the_narrator_summarises_with_the_insights_numbers_and_is_audited(ihub, world, chat):
    answer = get_insights(ihub, world["tokens"]["mona"]).json()
    top = answer["insights"][0]["sentence"]

    def faithful(body):
        return f"The strongest finding: {top}"

    chat.reply = faithful
    before = len(chat.requests)
    r = get_insights(ihub, world["tokens"]["mona"], summary="true")
    assert r.status_code == 200, r.text
    summary = r.json()["summary"]
    assert summary["status"] == "ok" and summary["text"] == faithful(None), summary
    assert summary["model"] == "test-model"
    [sent] = chat.requests[before:]
    assert sent["authorization"] == "Bearer sk-test-key"
    assert sent["body"]["model"] == "test-model"
    prompt = sent["body"]["messages"][-1]["content"]
    assert top in prompt
    events = audit_events(ihub, world)
    narrated = [e for e in events if (e["details"].get("narrator") or {}).get("status") == "ok"]
    assert narrated and narrated[0]["details"]["narrator"]["prompt"] == prompt
    assert faithful(None) in narrated[0]["details"]["narrator"]["response"]


def test_a_summary_citing_a_number_no_insight_states_is_dropped(ihub, world, chat):
    chat.reply = lambda body: "Revenue grew 42% last year, driven by the web channel."
    r = get_insights(ihub, world["tokens"]["mona"], summary="true")
    summary = r.json()["summary"]
    assert summary["status"] == "dropped" and summary["text"] is None
    assert "42" in summary["reason"]
    dropped = [
        e
        for e in audit_events(ihub, world)
        if (e["details"].get("narrator") or {}).get("status") == "dropped"
    ]
    assert "42%" in dropped[0]["details"]["narrator"]["response"]


def test_without_summary_the_narrator_is_not_asked(ihub, world, chat):
    before = len(chat.requests)
    r = get_insights(ihub, world["tokens"]["mona"])
    assert "summary" not in r.json()
    assert len(chat.requests) == before


def audit_events(hub, world) -> list[dict]:
    r = hub.api(
        "GET", "/orgs/acme/audit", world["tokens"]["mona"], params={"action": "dataset.insights"}
    )
    assert r.status_code == 200, r.text
    return r.json()["events"]
