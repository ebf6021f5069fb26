"""Insight accuracy: patterns planted in generated tables are found, named and ranked; pure
noise yields no trend, correlation or change point. Pure functions, no hub."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest

from datapilot_charts import check_spec
from datapilot_hub.domain.insights import (
    INSIGHT_TYPES,
    Profile,
    find_insights,
    frame_types,
    insights_of_frame,
)

from .planted import PATTERNS, plant

SEEDS = (0, 1, 2)


def found(df: pd.DataFrame, **profile) -> list[dict]:
    return [i.to_json(profile.get("total_rows", len(df))) for i in insights_of_frame(df, **profile)]


def rank_of(insights: list[dict], planted) -> int | None:
    for rank, insight in enumerate(insights):
        if insight["type"] == planted.type and set(planted.columns) <= set(insight["columns"]):
            return rank
    return None


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("pattern", PATTERNS)
def test_a_planted_pattern_is_found_with_its_columns_in_the_top_3(pattern, seed):
    df, [planted] = plant([pattern], seed=seed)
    insights = found(df)
    rank = rank_of(insights, planted)
    summary = [(i["type"], i["columns"], i["score"]) for i in insights[:5]]
    assert rank is not None and rank < 3, (pattern, seed, summary)
    insight = insights[rank]
    detail = dict(planted.detail)
    if pattern == "change_point":
        # the sentence names the date; the shift is found within two days of where it is
        when = pd.Timestamp(insight["details"]["date"])
        assert abs((when - detail["date"]).days) <= 2, (when, detail["date"])
        assert insight["details"]["date"] in insight["sentence"]
    elif pattern == "outlier":
        # the rows named are the rows planted (1-based row numbers)
        assert sorted(insight["details"]["rows"]) == [r + 1 for r in detail["rows"]]
    elif pattern == "spike":
        assert sorted(insight["details"]["dates"]) == [
            d.strftime("%Y-%m-%d") for d in detail["dates"]
        ]
        assert insight["details"]["kind"] == "time_series"
    elif pattern in ("majority", "category_outlier"):
        assert detail["value"] in insight["sentence"]


def test_a_table_with_every_pattern_reports_each_of_them():
    df, planted = plant(list(PATTERNS), seed=4)
    insights = found(df)
    for p in planted:
        assert rank_of(insights, p) is not None, (p, [(i["type"], i["columns"]) for i in insights])


@pytest.mark.parametrize("seed", range(10))
@pytest.mark.parametrize("rows, days", [(3000, 365), (400, 90)])
def test_pure_noise_yields_no_trend_correlation_or_change_point(seed, rows, days):
    df, _ = plant([], rows=rows, days=days, seed=seed)
    kinds = {i["type"] for i in found(df)}
    assert not kinds & {"trend", "correlation", "change_point"}, kinds


@pytest.mark.parametrize("pattern", ["trend", "change_point", "correlation"])
def test_a_weaker_pattern_is_still_found(pattern):
    df, [planted] = plant([pattern], seed=5, strength=0.7)
    assert rank_of(found(df), planted) is not None


def test_every_insight_names_its_test_quotes_its_numbers_and_carries_a_chart():
    df, _ = plant(list(PATTERNS), seed=6)
    insights = found(df)
    assert {i["type"] for i in insights} == set(INSIGHT_TYPES)
    assert [i["score"] for i in insights] == sorted((i["score"] for i in insights), reverse=True)
    for i in insights:
        assert i["type"] in INSIGHT_TYPES
        assert i["columns"] and set(i["columns"]) <= set(df.columns)
        assert 0 <= i["score"] <= 1
        assert i["test"] and i["sentence"].endswith(".")
        assert re.search(r"\d", i["sentence"]), i["sentence"]
        if i["p_value"] is not None:
            assert 0 <= i["p_value"] <= 1
            assert "p " in i["sentence"] or "p <" in i["sentence"], i["sentence"]
        assert i["statistic"] is None or {"name", "value"} <= set(i["statistic"])
        assert i["sample"] == {"rows": i["sample"]["rows"], "of": len(df)}
        check_spec(i["chart"])
        assert i["chart"]["palette"]["name"] == "Okabe-Ito"


def test_a_sampled_table_says_so_in_its_sentences():
    """The sample size is stated: the rows looked at and the rows of the dataset."""
    df, [planted] = plant(["trend"], rows=20_000, seed=7)
    sample = df.sample(5_000, random_state=1).sort_index()
    insights = found(sample, total_rows=len(df))
    insight = insights[rank_of(insights, planted)]
    assert "in a random sample of 5,000 of 20,000 rows" in insight["sentence"]
    assert insight["sample"] == {"rows": 5_000, "of": 20_000}


def test_exact_counts_from_the_catalog_are_used_for_missing_values():
    df, _ = plant([], rows=1000, seed=8)
    df["note"] = np.where(np.arange(1000) % 3 == 0, "x", None)
    profile = Profile(
        df=df.iloc[:100], types=frame_types(df), total_rows=50_000, nulls={"note": 40_000}
    )
    [insight] = [i for i in find_insights(profile) if i.type == "missing"]
    assert "80% of the rows (40,000 of 50,000)" in insight.sentence
    assert "exact" in insight.test


def test_an_identifier_column_is_not_a_measure():
    df, _ = plant(["duplicates"], seed=2)
    profile = Profile(df=df, types=frame_types(df), total_rows=len(df))
    assert profile.is_identifier("order_id")
    assert "order_id" not in profile.measures and "units" in profile.measures
    assert profile.time == "day" and profile.unit == "day"
    assert profile.categories == ["region"]


def test_a_finer_grain_is_coarsened_to_fit_the_series():
    times = pd.date_range("2020-01-01", periods=5000, freq="h")
    df = pd.DataFrame({"when": times, "v": np.random.default_rng(0).normal(size=5000)})
    profile = Profile(df=df, types=frame_types(df), total_rows=5000)
    assert profile.unit == "day"  # 5,000 hours is more than 1,500 points
    assert len(profile.series("v").values) == 209


ODD = {
    "no rows": pd.DataFrame({"a": pd.Series([], dtype=float)}),
    "one row": pd.DataFrame({"a": [1.0], "d": pd.to_datetime(["2024-01-01"])}),
    "only missing values": pd.DataFrame({"a": [np.nan] * 50, "s": [None] * 50}),
    "time zones": pd.DataFrame(
        {
            "t": pd.date_range("2024-01-01", periods=300, freq="h", tz="Europe/Paris"),
            "v": np.random.default_rng(0).normal(size=300),
        }
    ),
    "one date": pd.DataFrame({"d": pd.to_datetime(["2024-01-01"] * 100), "v": np.arange(100.0)}),
    "infinities": pd.DataFrame({"v": [1.0, np.inf, -np.inf, *range(50)]}),
    "all distinct text": pd.DataFrame({"s": [f"k{i}" for i in range(1000)]}),
}


@pytest.mark.parametrize("name", ODD)
def test_odd_tables_get_an_answer_not_an_error(name):
    for insight in found(ODD[name]):
        check_spec(insight["chart"])
