"""Chart recommendations and specs, as pure functions: which chart for which columns, the
400s that name the problem, and the spec built from aggregated rows."""

from __future__ import annotations

import pandas as pd
import pytest

from datapilot_charts import check_spec
from datapilot_hub.domain.charts import (
    DatasetFacts,
    aggregation,
    build_spec,
    histogram_counts,
    parse_chart_request,
    plan_chart,
)
from datapilot_hub.errors import DatapilotError

FACTS = DatasetFacts(
    name="sales",
    version=1,
    rows=1000,
    types={
        "order_id": "integer",
        "day": "date",
        "region": "string",
        "channel": "string",
        "note": "string",
        "amount": "number",
        "units": "integer",
        "paid": "boolean",
    },
    labels={"amount": "Amount", "day": "Order date"},
    stats={"day": {"min": "2024-01-01", "max": "2024-12-31"}},
    distinct={"order_id": 1000, "region": 5, "channel": 9, "note": 800, "units": 40, "paid": 2},
)


def plan(**body):
    return plan_chart(parse_chart_request({"dataset": "sales", **body}), FACTS)


@pytest.mark.parametrize(
    "body, expected",
    [
        ({}, ("line", "day", "amount", None)),
        ({"columns": ["day", "amount"]}, ("line", "day", "amount", None)),
        ({"columns": ["region", "amount"]}, ("bar", "region", "amount", None)),
        ({"columns": ["amount", "units"]}, ("scatter", "amount", "units", None)),
        ({"columns": ["amount"]}, ("histogram", "amount", None, None)),
        ({"columns": ["region"]}, ("bar", "region", None, None)),
        ({"columns": ["region", "channel"]}, ("heatmap", "region", None, "channel")),
        ({"columns": ["day", "amount", "region"]}, ("line", "day", "amount", "region")),
        ({"x": "day"}, ("line", "day", None, None)),
        ({"x": "region", "y": "amount"}, ("bar", "region", "amount", None)),
        ({"chart_type": "scatter"}, ("scatter", "amount", "units", None)),
        ({"chart_type": "histogram"}, ("histogram", "amount", None, None)),
        ({"chart_type": "pie"}, ("pie", "region", "amount", None)),
        ({"chart_type": "box"}, ("box", "region", "amount", None)),
        ({"chart_type": "heatmap"}, ("heatmap", "region", None, "channel")),
    ],
)
def test_the_recommendation_follows_types_and_cardinalities(body, expected):
    p = plan(**body)
    assert (p.type, p.x, p.y, p.group) == expected
    assert p.reason, "a recommendation says why"


def test_the_reasons_say_what_the_rule_is():
    assert plan(columns=["day", "amount"]).reason.startswith("A date along x and a measure")
    assert "Two measures give a scatter plot" in plan(columns=["amount", "units"]).reason
    assert "One measure gives a histogram" in plan(columns=["amount"]).reason
    assert "A category and a measure give bars" in plan(columns=["region", "amount"]).reason


def test_a_fully_chosen_chart_has_no_reason_and_keeps_its_choices():
    p = plan(chart_type="area", x="day", y="units", aggregation="mean", time_bucket="week")
    assert (p.type, p.x, p.y, p.func, p.unit, p.reason) == (
        "area",
        "day",
        "units",
        "mean",
        "week",
        None,
    )


def test_identifiers_and_free_text_are_not_picked():
    assert plan(chart_type="scatter").x != "order_id"
    assert "note" not in (plan(chart_type="bar").x, plan(chart_type="heatmap").group)


def test_a_time_axis_is_bucketed_to_fit():
    assert plan(columns=["day", "amount"]).unit == "day"  # 365 days
    facts = DatasetFacts(
        "s",
        1,
        10,
        {"t": "datetime", "v": "number"},
        stats={"t": {"min": "2015-01-01", "max": "2024-12-31"}},
    )
    p = plan_chart(parse_chart_request({"dataset": "s", "columns": ["t", "v"]}), facts)
    assert p.unit == "month"


@pytest.mark.parametrize(
    "body, code, field",
    [
        ({"x": "regio"}, "unknown_column", "x"),
        ({"columns": ["amount", "nope"]}, "unknown_column", "columns[1]"),
        ({"x": "region", "y": "note"}, "not_numeric", "y"),
        ({"chart_type": "scatter", "x": "amount", "y": "region"}, "not_numeric", "y"),
        ({"chart_type": "histogram", "x": "region"}, "not_numeric", "x"),
        ({"chart_type": "pie", "x": "channel"}, "too_many_categories", "x"),
        ({"chart_type": "pie", "x": "region", "limit": 9}, "too_many_categories", "limit"),
        (
            {"chart_type": "pie", "x": "region", "y": "amount", "aggregation": "mean"},
            "wrong_aggregation",
            "aggregation",
        ),
        ({"chart_type": "line", "x": "region", "y": "amount"}, "wrong_column", "x"),
        ({"chart_type": "heatmap", "x": "region", "group": "amount"}, "wrong_column", "group"),
        ({"chart_type": "donut"}, "invalid_input", "chart_type"),
        ({"aggregation": "average"}, "invalid_input", "aggregation"),
        ({"colour": "red"}, "invalid_input", "colour"),
        ({"x": "day", "columns": ["day"]}, "invalid_input", "columns"),
    ],
)
def test_bad_requests_are_400s_naming_the_problem(body, code, field):
    with pytest.raises(DatapilotError) as e:
        plan(**body)
    assert e.value.status == 400
    assert (e.value.code, e.value.details["field"]) == (code, field), e.value.message


def test_too_many_categories_for_a_pie_says_how_many():
    with pytest.raises(DatapilotError) as e:
        plan(chart_type="pie", x="channel")
    assert "9 values" in e.value.message and e.value.details["values"] == 9


@pytest.mark.parametrize(
    "body, expected",
    [
        (
            {"columns": ["day", "amount"]},
            {"metrics": {"amount": ["sum"]}, "time_bucket": {"column": "day", "unit": "day"}},
        ),
        (
            {"x": "region", "y": "amount", "aggregation": "mean", "filter": "amount > 0"},
            {
                "metrics": {"amount": ["mean"]},
                "group_by": ["region"],
                "sort": ["-amount_mean"],
                "limit": 20,
                "other": True,
                "filter": "amount > 0",
            },
        ),
        (
            {"chart_type": "pie", "x": "region"},
            {"metrics": {"*": ["count"]}, "group_by": ["region"], "sort": ["-count"]},
        ),
        (
            {"chart_type": "box", "x": "region", "y": "amount", "version": 2},
            {
                "metrics": {"amount": ["p5", "p25", "p50", "p75", "p95"]},
                "group_by": ["region"],
                "sort": ["-amount_p50"],
                "limit": 20,
                "other": True,
                "version": 2,
            },
        ),
        (
            {"chart_type": "heatmap", "x": "day", "group": "region", "time_bucket": "month"},
            {
                "metrics": {"*": ["count"]},
                "time_bucket": {"column": "day", "unit": "month"},
                "group_by": ["region"],
            },
        ),
        (
            {"x": "day", "y": "amount", "group": "channel"},
            {
                "metrics": {"amount": ["sum"]},
                "time_bucket": {"column": "day", "unit": "day"},
                "group_by": ["channel"],
                "limit": 7,
                "other": True,
            },
        ),
    ],
)
def test_each_chart_asks_the_aggregation_for_its_rows(body, expected):
    req = parse_chart_request({"dataset": "sales", **body})
    assert aggregation(plan_chart(req, FACTS), req) == expected


def spec_of(frame, **body):
    req = parse_chart_request({"dataset": "sales", **body})
    return check_spec(build_spec(plan_chart(req, FACTS), FACTS, req, frame))


def test_a_line_has_one_series_per_group_largest_first_and_other_last():
    frame = pd.DataFrame(
        {
            "day": pd.to_datetime(["2024-01-01", "2024-01-02"] * 3),
            "channel": ["web", "web", "other", "other", "shop", "shop"],
            "value": [1.0, 2.0, 50.0, 60.0, 3.0, 4.0],
        }
    )
    spec = spec_of(frame, x="day", y="amount", group="channel")
    assert spec["type"] == "line" and spec["title"] == "Sum of Amount per day, by channel"
    assert [s["name"] for s in spec["series"]] == ["shop", "web", "other"]
    assert spec["series"][0]["x"] == ["2024-01-01", "2024-01-02"]
    assert spec["x"] == {"field": "day", "label": "Order date (day)", "kind": "temporal"}
    assert len({s["color"] for s in spec["series"]}) == 3


def test_bars_pie_box_heatmap_and_histogram_specs():
    bars = spec_of(pd.DataFrame({"region": ["n", "s"], "value": [5, 3]}), x="region")
    assert bars["series"][0]["x"] == ["n", "s"] and bars["y"]["label"] == "Rows"
    pie = spec_of(
        pd.DataFrame({"region": ["n", "other"], "value": [5.0, 3.0]}),
        chart_type="pie",
        x="region",
        limit=3,
    )
    assert pie["series"][0]["labels"] == ["n", "other"]
    box = spec_of(
        pd.DataFrame({"region": ["n"], "q05": [1], "q25": [2], "q50": [3], "q75": [4], "q95": [5]}),
        chart_type="box",
        x="region",
        y="amount",
    )
    assert box["series"][0]["median"] == 3 and box["whiskers"] == "5th and 95th percentiles"
    heat = spec_of(
        pd.DataFrame({"region": ["n", "s"], "channel": ["a", "b"], "value": [1, 2]}),
        chart_type="heatmap",
        x="region",
        group="channel",
    )
    assert heat["series"][0]["value"] == [1, 2] and heat["y"]["field"] == "channel"
    edges, counts = histogram_counts(pd.Series([0.0, 2.5, 9.9]), pd.Series([4, 1, 2]), 0.0, 2.5, 4)
    frame = pd.DataFrame()
    frame.attrs.update(edges=edges, counts=counts)
    hist = spec_of(frame, chart_type="histogram", x="amount")
    assert hist["series"][0]["counts"] == [4, 1, 0, 2] and hist["series"][0]["edges"][-1] == 10


def test_a_scatter_plot_of_sampled_points():
    frame = pd.DataFrame({"amount": [1.0, 2.0, 3.5], "units": [3, 1, 2]})
    spec = spec_of(frame, columns=["amount", "units"])
    assert spec["type"] == "scatter" and spec["title"] == "units against Amount"
    assert spec["series"][0]["x"] == [1.0, 2.0, 3.5] and spec["points_shown"] == 3
    assert spec["y"]["label"] == "units"
