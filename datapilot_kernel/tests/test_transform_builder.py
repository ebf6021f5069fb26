"""The recipe builder makes the JSON the service takes, without any request."""

from __future__ import annotations

import pytest

import datapilot_kernel as dp


@pytest.fixture
def sales():
    client = dp.DatapilotClient(url="http://127.0.0.1:9/", token="t", org="acme")
    return client.transform("sales")


def test_each_method_adds_its_step(sales):
    t = (
        sales.select(["id", "region", "amount", "day", "qty", "customer_id"])
        .drop("qty")
        .rename(amount="revenue")
        .cast({"id": "string"})
        .fillna(revenue=0)
        .dropna(["region"])
        .trim("region")
        .case("region", to="upper")
        .standardize(["region"], case="lower")
        .map_values("region", {"n": "north"}, default="other")
        .parse_dates("day", format="%d/%m/%Y")
        .deduplicate(["id"])
        .filter("revenue > 5")
        .derive("net", "revenue * 2")
        .join("customers", on="customer_id", how="left", version=3)
        .group_by("region", {"net": ["sum"], "*": ["count"]})
        .sort("region", descending=True)
        .sample(0.5, seed=7)
    )
    assert t.steps == [
        {"op": "select", "columns": ["id", "region", "amount", "day", "qty", "customer_id"]},
        {"op": "drop", "columns": ["qty"]},
        {"op": "rename", "columns": {"amount": "revenue"}},
        {"op": "cast", "columns": {"id": "string"}},
        {"op": "fill_null", "columns": {"revenue": 0}},
        {"op": "drop_null", "how": "any", "columns": ["region"]},
        {"op": "trim", "columns": ["region"]},
        {"op": "case", "columns": ["region"], "to": "upper"},
        {"op": "standardize", "columns": ["region"], "case": "lower"},
        {"op": "map_values", "column": "region", "mapping": {"n": "north"}, "default": "other"},
        {"op": "parse_dates", "columns": ["day"], "to": "date", "format": "%d/%m/%Y"},
        {"op": "deduplicate", "keys": ["id"]},
        {"op": "filter", "expr": "revenue > 5"},
        {"op": "derive", "name": "net", "expr": "revenue * 2"},
        {"op": "join", "with": "customers", "on": ["customer_id"], "how": "left", "version": 3},
        {"op": "group_by", "by": ["region"], "aggs": {"net": ["sum"], "*": ["count"]}},
        {"op": "sort", "by": ["region"], "descending": True},
        {"op": "sample", "fraction": 0.5, "seed": 7},
    ]
    assert len(t) == 18
    assert repr(t).splitlines()[0] == "dp.transform('sales')"
    assert repr(t).splitlines()[13] == '  12. filter {"expr": "revenue > 5"}'


def test_a_builder_is_never_changed_by_its_children(sales):
    base = sales.filter("amount > 0")
    one, two = base.derive("a", "1"), base.derive("b", "2")
    assert len(base) == 1 and one.steps[-1]["name"] == "a" and two.steps[-1]["name"] == "b"
    pivoted = base.pivot("region", "quarter", "amount", [1, 2]).unpivot("region", ["c_1", "c_2"])
    assert [s["op"] for s in pivoted.steps] == ["filter", "pivot", "unpivot"]
    assert base.step("explode", column="x").steps[-1] == {"op": "explode", "column": "x"}


def test_bad_names_and_modes_fail_before_any_request(sales):
    with pytest.raises(dp.DatapilotError) as e:
        sales.save("sales_clean", mode="append")
    assert e.value.code == "invalid_mode"
    with pytest.raises(dp.DatapilotError) as e:
        sales.save("Sales Clean")
    assert e.value.code == "invalid_name"
    with pytest.raises(dp.DatapilotError):
        sales.join("../other", on="id")
    with pytest.raises(dp.DatapilotError):
        dp.DatapilotClient(url="http://127.0.0.1:9/", token="t", org="acme").transform("Bad")
