"""Charts through a real hub, on both catalogs: recommendations, every chart type with its
numbers checked against pandas, the 400s that name the problem, Bokeh and PNG answers,
and isolation."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from datapilot_charts import CHART_TYPES, check_spec

from .planted import plant

GENERATE = "/orgs/{org}/visualizations/generate"


@pytest.fixture(scope="module")
def world(hub):
    """acme: alice (analyst), vera (viewer); globex: gary (analyst). acme has ``sales``."""
    tokens = hub.populate(
        {"acme": "Acme", "globex": "Globex"},
        [("acme", "alice", "analyst"), ("acme", "vera", "viewer"), ("globex", "gary", "analyst")],
    )
    df, _ = plant(["trend", "majority", "correlation", "category_outlier"], rows=2000, seed=21)
    df["store"] = [f"s{i % 12:02d}" for i in range(len(df))]
    csv = df.assign(day=df["day"].dt.strftime("%Y-%m-%d")).to_csv(index=False).encode()
    r = hub.upload("acme", tokens["alice"], "sales", csv, "sales.csv")
    assert r.status_code == 202, r.text
    job = hub.wait_job("acme", r.json()["job"]["id"], tokens["alice"])
    assert job["state"] == "succeeded", job
    return {"tokens": tokens, "df": df}


def generate(hub, token, body, org="acme", check=True, **params):
    return hub.api("POST", GENERATE.format(org=org), token, json=body, params=params, check=check)


def chart_of(hub, token, body, **params) -> dict:
    r = generate(hub, token, body, **params)
    assert r.status_code == 200, r.text
    return r.json()


def test_without_a_type_or_columns_a_line_over_time_is_recommended(hub, world):
    r = generate(hub, world["tokens"]["alice"], {"dataset": "sales"})
    assert r.status_code == 200, r.text
    answer = r.json()
    chart, why = answer["chart"], answer["recommendation"]
    check_spec(chart)
    assert chart["type"] == "line" and chart["x"]["field"] == "day"
    assert why["chart_type"] == "line" and why["time_bucket"] == "day"
    assert "A date along x and a measure give a line" in why["reason"]
    # the identifier is not the measure
    assert why["y"] != "order_id"
    assert chart["palette"]["name"] == "Okabe-Ito"
    assert chart["source"]["version"] == 1


def test_bars_of_a_mean_match_pandas_and_leave_the_rest_as_other(hub, world):
    df = world["df"]
    body = {
        "dataset": "sales",
        "chart_type": "bar",
        "x": "store",
        "y": "score",
        "aggregation": "mean",
        "limit": 5,
    }
    answer = chart_of(hub, world["tokens"]["vera"], body)
    assert answer["recommendation"] is None
    [series] = answer["chart"]["series"]
    expected = df.groupby("store")["score"].mean().sort_values(ascending=False)
    assert series["x"][:5] == list(expected.index[:5]) and series["x"][5] == "other"
    assert np.allclose(series["y"][:5], expected.iloc[:5].to_numpy(), rtol=1e-5)
    rest = df[~df["store"].isin(expected.index[:5])]["score"].mean()
    assert series["y"][5] == pytest.approx(rest, rel=1e-5)
    assert answer["chart"]["y"]["label"] == "Mean of score"


def test_a_filter_and_a_group_make_series(hub, world):
    df = world["df"]
    body = {
        "dataset": "sales",
        "x": "day",
        "y": "revenue",
        "group": "channel",
        "time_bucket": "month",
        "filter": "region != 'north'",
    }
    chart = chart_of(hub, world["tokens"]["alice"], body)["chart"]
    assert chart["type"] == "line" and chart["x"]["label"] == "day (month)"
    names = [s["name"] for s in chart["series"]]
    assert names[0] == "web" and set(names) == set(df["channel"].unique())
    kept = df[df["region"] != "north"]
    web = kept[kept["channel"] == "web"].groupby(kept["day"].dt.to_period("M"))["revenue"].sum()
    assert np.allclose(chart["series"][0]["y"], web.to_numpy(), rtol=1e-5)
    assert chart["series"][0]["x"][0] == "2024-01-01"


def test_grouped_bars_have_every_category_in_every_series(hub, world):
    df = world["df"]
    body = {
        "dataset": "sales",
        "chart_type": "bar",
        "x": "region",
        "y": "score",
        "group": "channel",
        "aggregation": "mean",
    }
    chart = chart_of(hub, world["tokens"]["alice"], body)["chart"]
    expected = df.groupby(["region", "channel"])["score"].mean()
    assert {s["name"] for s in chart["series"]} == set(df["channel"])
    for s in chart["series"]:
        assert s["x"] == chart["series"][0]["x"] and set(s["x"]) == set(df["region"])
        for region, value in zip(s["x"], s["y"], strict=True):
            assert value == pytest.approx(expected[region, s["name"]], rel=1e-5)
    r = generate(hub, world["tokens"]["alice"], {**body, "group": "store"})
    assert r.status_code == 400 and r.json()["error"] == "too_many_categories", r.text


def test_histogram_scatter_box_heatmap_and_pie(hub, world):
    t, df = world["tokens"]["alice"], world["df"]
    hist = chart_of(hub, t, {"dataset": "sales", "columns": ["score"]})
    assert hist["chart"]["type"] == "histogram"
    assert "One measure gives a histogram" in hist["recommendation"]["reason"]
    assert sum(hist["chart"]["series"][0]["counts"]) == len(df)
    assert len(hist["chart"]["series"][0]["edges"]) == 31
    scatter = chart_of(hub, t, {"dataset": "sales", "columns": ["price", "cost"]})
    s = scatter["chart"]["series"][0]
    assert scatter["chart"]["type"] == "scatter" and len(s["x"]) == len(df)
    # (the spec keeps six significant digits)
    assert sorted(s["x"]) == pytest.approx(sorted(df["price"]), rel=1e-5)
    box = chart_of(hub, t, {"dataset": "sales", "chart_type": "box", "x": "team", "y": "score"})[
        "chart"
    ]
    amber = next(b for b in box["series"] if b["name"] == "amber")
    assert amber["median"] == pytest.approx(df[df.team == "amber"]["score"].median(), rel=1e-6)
    assert box["series"][0]["name"] == "amber"  # the highest median first
    heat = chart_of(hub, t, {"dataset": "sales", "columns": ["region", "channel"]})
    assert heat["chart"]["type"] == "heatmap"
    assert sum(heat["chart"]["series"][0]["value"]) == len(df)
    pie = chart_of(hub, t, {"dataset": "sales", "chart_type": "pie", "x": "channel"})
    assert pie["chart"]["series"][0]["labels"][0] == "web"
    assert sum(pie["chart"]["series"][0]["values"]) == len(df)
    assert {check_spec(c["chart"])["type"] for c in (hist, scatter, heat, pie)} | {
        box["type"]
    } == set(CHART_TYPES) - {"bar", "line", "area"}


@pytest.mark.parametrize(
    "body, status, code, field",
    [
        ({"dataset": "sales", "x": "regio"}, 400, "unknown_column", "x"),
        ({"dataset": "sales", "x": "region", "y": "channel"}, 400, "not_numeric", "y"),
        ({"dataset": "sales", "chart_type": "pie", "x": "store"}, 400, "too_many_categories", "x"),
        (
            {"dataset": "sales", "chart_type": "line", "x": "region", "y": "score"},
            400,
            "wrong_column",
            "x",
        ),
        (
            {"dataset": "sales", "x": "region", "filter": "score >> 2"},
            400,
            "invalid_expression",
            "filter",
        ),
        ({"dataset": "sales", "chart_type": "donut"}, 400, "invalid_input", "chart_type"),
        ({"x": "region"}, 400, "invalid_input", "dataset"),
        ({"dataset": "nope"}, 404, "not_found", None),
        ({"dataset": "sales", "version": 7}, 404, "not_found", None),
    ],
)
def test_bad_requests_name_the_problem(hub, world, body, status, code, field):
    r = generate(hub, world["tokens"]["alice"], body)
    assert r.status_code == status, r.text
    error = r.json()
    assert error["error"] == code, error
    if field:
        assert error["details"]["field"] == field
    if code == "too_many_categories":
        assert "12 values" in error["message"]
    if field == "filter":
        assert "position" in error["details"]


def test_the_same_spec_as_a_bokeh_item_and_as_a_png(hub, world):
    t = world["tokens"]["alice"]
    body = {"dataset": "sales", "x": "region", "y": "revenue"}
    item = generate(hub, t, body, format="bokeh", theme="dark").json()
    assert set(item) >= {"target_id", "root_id", "doc"}
    assert "Sum of revenue by region" in str(item["doc"])
    r = generate(hub, t, body, check=False, format="png", width=400, height=240)
    assert r.status_code == 200 and r.headers["content-type"] == "image/png"
    assert Image.open(io.BytesIO(r.content)).size == (400, 240)
    r = generate(hub, t, body, format="svg")
    assert r.status_code == 400 and r.json()["details"]["field"] == "format"
    r = generate(hub, t, body, format="png", width="99999")
    assert r.status_code == 400 and r.json()["details"]["field"] == "width"


def test_another_organizations_dataset_is_404_and_anonymous_401(hub, world):
    r = generate(hub, world["tokens"]["gary"], {"dataset": "sales"})
    assert r.status_code == 404 and r.json()["error"] == "not_found", r.text
    r = generate(hub, world["tokens"]["gary"], {"dataset": "sales"}, org="globex")
    assert r.status_code == 404 and r.json()["error"] == "not_found", r.text
    assert generate(hub, None, {"dataset": "sales"}).status_code == 401


def test_a_chart_is_a_read_of_the_data_in_the_audit_log(hub, world):
    generate(hub, world["tokens"]["vera"], {"dataset": "sales", "columns": ["region"]})
    r = hub.api("GET", "/orgs/acme/audit", hub.admin_token, params={"action": "dataset.chart"})
    events = [e for e in r.json()["events"] if e["user"] == "vera"]
    assert events and events[0]["target"] == "sales" and events[0]["outcome"] == "ok"
    assert events[0]["details"]["type"] == "bar"
