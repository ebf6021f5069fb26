"""Every recipe step on dask.dataframe, checked against pandas on small data; and the
checks that refuse a bad step before anything runs, naming the step."""

from __future__ import annotations

import datetime as dt

import dask
import dask.dataframe as dd
import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from datapilot_hub.domain.transform import apply_recipe, check_recipe
from datapilot_hub.errors import DatapilotError

SCHEMA = {
    "id": "integer",
    "region": "string",
    "amount": "number",
    "units": "integer",
    "day": "date",
    "ts": "datetime",
    "paid": "boolean",
    "note": "string",
}
CUSTOMERS = {"region": "string", "manager": "string", "target": "number"}


def source() -> pd.DataFrame:
    table = pa.table(
        {
            "id": pa.array([1, 2, 3, 4, 5, 6, 7, 8], pa.int64()),
            "region": ["north", "South ", None, "north", "east", "x", "south", "north"],
            "amount": [10.0, 20.5, None, 40.0, 5.0, 1.0, 7.5, 10.0],
            "units": pa.array([1, 2, 3, None, 5, 6, 7, 1], pa.int64()),
            "day": pa.array([dt.date(2025, 1, d) for d in (1, 2, 3, 4, 5, 6, 7, 1)], pa.date32()),
            "ts": pa.array(
                [dt.datetime(2025, 1, d, d) for d in (1, 2, 3, 4, 5, 6, 7, 1)],
                pa.timestamp("us"),
            ),
            "paid": [True, False, None, True, True, False, True, True],
            "note": ["  a  b ", "Ｃ", "", None, "12", "x", "3.5", "  a  b "],
        }
    )
    return table.to_pandas(types_mapper=pd.ArrowDtype)


def customers() -> pd.DataFrame:
    return pa.table(
        {
            "region": ["north", "south", "east", None],
            "manager": ["ann", "bob", "cy", "nobody"],
            "target": [100.0, 200.0, 300.0, 0.0],
        }
    ).to_pandas(types_mapper=pd.ArrowDtype)


def resolve(name, version):
    if name != "customers":
        raise DatapilotError(404, "not_found", f"No dataset named {name!r} is visible to you.")
    return {"name": name, "version": 1, "schema": CUSTOMERS}


def run(steps, frame=None, npartitions=3) -> pd.DataFrame:
    frame = source() if frame is None else frame
    recipe = check_recipe(steps, SCHEMA, resolve)
    ddf = dd.from_pandas(frame, npartitions=npartitions, sort=False)
    others = {
        s.index: dd.from_pandas(customers(), npartitions=2, sort=False)
        for s in recipe.steps
        if s.op == "join"
    }
    out = apply_recipe(ddf, recipe, others)
    with dask.config.set(scheduler="sync"):
        result = out.compute()
    assert list(result.columns) == list(recipe.schema)
    return result.reset_index(drop=True)


def plain(frame: pd.DataFrame) -> list[dict]:
    """Rows as Python values, nulls as None (for comparisons across dtypes)."""
    return [
        {
            k: (None if v is None or v is pd.NA or (isinstance(v, float) and np.isnan(v)) else v)
            for k, v in row.items()
        }
        for row in frame.astype(object).to_dict("records")
    ]


def test_select_drop_rename():
    df = source()
    assert run([{"op": "select", "columns": ["region", "id"]}]).equals(
        df[["region", "id"]].reset_index(drop=True)
    )
    got = run([{"op": "drop", "columns": ["note", "ts"]}])
    assert list(got.columns) == [c for c in SCHEMA if c not in ("note", "ts")]
    got = run([{"op": "rename", "columns": {"amount": "revenue"}}])
    assert "revenue" in got and "amount" not in got
    assert got["revenue"].tolist()[:2] == [10.0, 20.5]


def test_cast():
    got = run(
        [
            {
                "op": "cast",
                "columns": {
                    "note": "number",
                    "amount": "integer",
                    "units": "string",
                    "ts": "date",
                    "paid": "integer",
                },
            }
        ]
    )
    notes = [None if pd.isna(v) else v for v in got["note"]]
    assert notes == [None, None, None, None, 12.0, None, 3.5, None]
    # 20.5 is no whole number: null, as an ingestion would make it
    assert [None if pd.isna(v) else v for v in got["amount"]] == [
        10,
        None,
        None,
        40,
        5,
        1,
        None,
        10,
    ]
    assert str(got["amount"].dtype) == "int64[pyarrow]"
    assert got["units"].tolist()[:3] == ["1", "2", "3"]
    assert got["ts"].tolist()[0] == dt.date(2025, 1, 1)
    assert got["paid"].tolist()[:2] == [1, 0]
    text = run([{"op": "cast", "columns": {"region": "boolean"}}])
    assert text["region"].isna().all()


def test_fill_and_drop_nulls():
    got = run([{"op": "fill_null", "columns": {"amount": 0, "region": "unknown"}}])
    assert got["amount"].tolist()[2] == 0.0 and got["region"].tolist()[2] == "unknown"
    df = source()
    got = run([{"op": "drop_null", "columns": ["amount", "units"]}])
    assert got["id"].tolist() == df.dropna(subset=["amount", "units"])["id"].tolist()
    got = run([{"op": "drop_null"}])
    assert got["id"].tolist() == df.dropna()["id"].tolist()
    got = run([{"op": "drop_null", "columns": ["amount", "units"], "how": "all"}])
    assert len(got) == 8


def test_text_steps():
    got = run([{"op": "trim", "columns": ["region", "note"]}])
    assert got["region"].tolist()[1] == "South" and got["note"].tolist()[0] == "a  b"
    got = run([{"op": "case", "columns": ["region"], "to": "upper"}])
    assert got["region"].tolist()[0] == "NORTH" and pd.isna(got["region"].tolist()[2])
    got = run([{"op": "standardize", "columns": ["note", "region"], "case": "lower"}])
    notes = [None if pd.isna(v) else v for v in got["note"]]
    # NFKC makes the full-width letter plain; empty text is null
    assert notes[:4] == ["a b", "c", None, None]
    assert got["region"].tolist()[1] == "south"


def test_map_values():
    steps = [
        {"op": "standardize", "columns": ["region"], "case": "lower"},
        {"op": "map_values", "column": "region", "mapping": {"north": "N", "south": "S"}},
    ]
    got = run(steps)
    assert [None if pd.isna(v) else v for v in got["region"]] == [
        "N",
        "S",
        None,
        "N",
        "east",
        "x",
        "S",
        "N",
    ]
    steps[1]["default"] = "other"
    got = run(steps)
    assert [None if pd.isna(v) else v for v in got["region"]] == [
        "N",
        "S",
        None,
        "N",
        "other",
        "other",
        "S",
        "N",
    ]


def test_parse_dates():
    frame = source()
    frame["note"] = pd.Series(
        ["03/01/2025", "31/12/2024", "nope", None, "01/02/2025", "x", "", "05/05/2025"],
        dtype=pd.ArrowDtype(pa.string()),
    )
    got = run([{"op": "parse_dates", "columns": ["note"], "format": "%d/%m/%Y"}], frame)
    values = [None if pd.isna(v) else v for v in got["note"]]
    assert values[:5] == [
        dt.date(2025, 1, 3),
        dt.date(2024, 12, 31),
        None,
        None,
        dt.date(2025, 2, 1),
    ]
    got = run(
        [{"op": "parse_dates", "columns": ["note"], "dayfirst": True, "to": "datetime"}], frame
    )
    assert got["note"].tolist()[0] == pd.Timestamp("2025-01-03")


def test_deduplicate():
    got = run([{"op": "deduplicate"}])
    assert len(got) == 8  # ids differ
    got = run([{"op": "select", "columns": ["note", "day"]}, {"op": "deduplicate"}])
    assert len(got) == 7
    got = run([{"op": "deduplicate", "keys": ["region"]}])
    assert sorted(map(str, got["region"].tolist())) == sorted(
        map(str, source()["region"].drop_duplicates().tolist())
    )


def test_filter_follows_sql_nulls():
    df = source()
    got = run([{"op": "filter", "expr": "amount > 5 and region != 'x'"}])
    want = df[(df.amount > 5) & (df.region != "x") & df.region.notna() & df.amount.notna()]
    assert got["id"].tolist() == want["id"].tolist()
    got = run([{"op": "filter", "expr": "region in ('north', 'east') or units is null"}])
    assert got["id"].tolist() == [1, 4, 5, 8]
    got = run([{"op": "filter", "expr": "day >= '2025-01-04' and month(day) = 1"}])
    assert got["id"].tolist() == [4, 5, 6, 7]


def test_derive():
    got = run([{"op": "derive", "name": "net", "expr": "amount * (1 - units / 100)"}])
    df = source()
    want = (df.amount * (1 - df.units / 100)).astype(object).tolist()
    assert [None if pd.isna(v) else pytest.approx(v) for v in got["net"]] == [
        None if pd.isna(v) else v for v in want
    ]
    got = run([{"op": "derive", "name": "per", "expr": "units / 0"}])
    assert got["per"].isna().all()  # a division by zero is null, as in SQL
    got = run([{"op": "derive", "name": "y", "expr": "year(day) * 100 + day(day)"}])
    assert got["y"].tolist()[:2] == [202501, 202502]
    assert str(got["y"].dtype) == "int64[pyarrow]"
    got = run([{"op": "derive", "name": "one", "expr": "1"}])
    assert got["one"].tolist() == [1] * 8


def test_group_by_matches_pandas():
    steps = [
        {
            "op": "group_by",
            "by": ["region"],
            "aggs": {
                "amount": ["sum", "mean", "min", "max", "count"],
                "units": ["count_distinct"],
                "*": ["count"],
            },
        },
        {"op": "sort", "by": ["region"]},
    ]
    got = run(steps)
    assert pd.isna(got["amount_sum"].iloc[-1])
    df = source()
    g = df.groupby("region", dropna=False)
    want = (
        pd.DataFrame(
            {
                # SQL's sum: null for a group without a value (region null here)
                "amount_sum": g.amount.sum(min_count=1),
                "amount_mean": g.amount.mean(),
                "amount_min": g.amount.min(),
                "amount_max": g.amount.max(),
                "amount_count": g.amount.count(),
                "units_count_distinct": g.units.nunique(),
                "count": g.size(),
            }
        )
        .reset_index()
        .sort_values("region", na_position="last")
        .reset_index(drop=True)
    )
    assert plain(got) == plain(want)


def test_join_with_another_dataset():
    steps = [
        {"op": "trim", "columns": ["region"]},
        {"op": "case", "columns": ["region"], "to": "lower"},
        {"op": "join", "with": "customers", "on": ["region"], "how": "left"},
        {"op": "sort", "by": ["id"]},
    ]
    got = run(steps)
    assert got["manager"].tolist()[:2] == ["ann", "bob"]
    # a null key matches nothing, not the other side's null key
    assert pd.isna(got["manager"].tolist()[2])
    assert len(got) == 8
    inner = run([{"op": "join", "with": "customers", "on": "region"}, {"op": "sort", "by": "id"}])
    assert inner["id"].tolist() == [1, 4, 5, 7, 8]


def test_pivot_and_unpivot():
    got = run(
        [
            {
                "op": "pivot",
                "index": ["region"],
                "columns": "paid",
                "values": "amount",
                "keys": [True, False],
                "agg": "sum",
            },
            {"op": "sort", "by": ["region"]},
        ]
    )
    assert list(got.columns) == ["region", "true", "false"]
    north = got[got.region == "north"].iloc[0]
    assert north["true"] == 60.0
    # north has no unpaid row: null, as SQL's PIVOT has it
    assert pd.isna(north["false"])
    assert got[got.region == "x"].iloc[0]["false"] == 1.0
    got = run(
        [
            {"op": "select", "columns": ["id", "amount", "units"]},
            {"op": "unpivot", "index": ["id"], "columns": ["amount", "units"]},
            {"op": "sort", "by": ["id", "variable"]},
        ]
    )
    assert list(got.columns) == ["id", "variable", "value"]
    assert got.head(2)["value"].tolist() == [10.0, 1.0]
    assert len(got) == 16


def test_sort_and_sample():
    got = run([{"op": "sort", "by": ["amount", "id"], "descending": [True, False]}])
    df = source().sort_values(["amount", "id"], ascending=[False, True], na_position="last")
    assert got["id"].tolist() == df["id"].tolist()
    one = run([{"op": "sample", "fraction": 0.5, "seed": 7}])
    two = run([{"op": "sample", "fraction": 0.5, "seed": 7}])
    assert one["id"].tolist() == two["id"].tolist() and 0 < len(one) < 8


@pytest.mark.parametrize(
    "steps, step, field, code",
    [
        ([{"op": "explode"}], 0, "op", "unknown_op"),
        ([{"op": "select", "columns": ["nope"]}], 0, "columns", "unknown_column"),
        (
            [{"op": "drop", "columns": ["id"]}, {"op": "filter", "expr": "id > 1"}],
            1,
            "expr",
            "unknown_column",
        ),
        ([{"op": "filter", "expr": "amount +"}], 0, "expr", "invalid_expression"),
        ([{"op": "filter", "expr": "amount"}], 0, "expr", "invalid_expression"),
        ([{"op": "derive", "name": "Bad Name", "expr": "1"}], 0, "name", "invalid_step"),
        ([{"op": "cast", "columns": {"day": "number"}}], 0, "columns.day", "invalid_step"),
        (
            [{"op": "group_by", "by": ["region"], "aggs": {"region": ["sum"]}}],
            0,
            "aggs.region",
            "invalid_step",
        ),
        ([{"op": "join", "with": "secret", "on": ["region"]}], 0, "with", "not_found"),
        ([{"op": "join", "with": "customers", "on": ["id"]}], 0, "on", "unknown_column"),
        ([{"op": "sample", "fraction": 2}], 0, "fraction", "invalid_step"),
        ([{"op": "trim", "columns": ["amount"]}], 0, "columns", "invalid_step"),
        ([{"op": "sort", "by": ["id"], "extra": 1}], 0, "extra", "invalid_step"),
        ([{"op": "fill_null", "columns": {"day": "yesterday"}}], 0, "columns.day", "invalid_step"),
    ],
)
def test_a_bad_step_names_itself(steps, step, field, code):
    with pytest.raises(DatapilotError) as e:
        check_recipe(steps, SCHEMA, resolve)
    assert e.value.status == (404 if code == "not_found" else 400)
    assert e.value.code == code, e.value.message
    assert e.value.details["step"] == step
    assert e.value.details["field"] == field
    assert e.value.message.startswith(f"Step {step}")


def test_steps_must_be_a_list():
    for steps in (None, [], "x", {"op": "select"}):
        with pytest.raises(DatapilotError) as e:
            check_recipe(steps, SCHEMA, resolve)
        assert e.value.details == {"field": "steps"}
    with pytest.raises(DatapilotError) as e:
        check_recipe(["select"], SCHEMA, resolve)
    assert e.value.details["step"] == 0


def test_schema_flows_through_steps():
    recipe = check_recipe(
        [
            {"op": "derive", "name": "net", "expr": "amount * units"},
            {"op": "group_by", "by": ["region"], "aggs": {"net": ["sum"], "*": ["count"]}},
            {"op": "filter", "expr": "net_sum > 10 and count >= 1"},
        ],
        SCHEMA,
        resolve,
    )
    assert recipe.schema == {"region": "string", "net_sum": "number", "count": "integer"}


@pytest.mark.parametrize("kind", ["local", "s3"])
def test_io_reads_row_groups_and_writes_only_under_the_lease(request, kind):
    """The one module where tasks touch storage, on local files and on S3."""
    from datapilot_hub.domain.transform._io import (
        close_output,
        open_output,
        read_source,
        write_output,
    )
    from datapilot_hub.domain.transform._service import output_schema
    from datapilot_hub.storage import parquet_writer

    storage = request.getfixturevalue("storage" if kind == "local" else "s3_storage")
    table = pa.Table.from_pandas(source(), preserve_index=False)
    with storage.open("org-1/datasets/sales/v1/part-0.parquet", "wb") as f:
        with parquet_writer(f, table.schema) as writer:
            for start in (0, 3, 6):
                writer.write_table(table.slice(start, 3))
    ddf = read_source(storage, {"path": "org-1/datasets/sales/v1", "schema": SCHEMA})
    assert ddf.npartitions == 3
    recipe = check_recipe([{"op": "filter", "expr": "amount > 5"}], SCHEMA)
    out = apply_recipe(ddf, recipe)
    schema = output_schema(out._meta, recipe.schema)
    with dask.config.set(scheduler="sync"):
        # no lease: a write of a cancelled job leaves nothing
        parts = dask.compute(*write_output(out, storage, "o/v1", schema))
        assert [p["rows"] for p in parts] == [2, 1, 2]
        assert not storage.files("o/v1")
        open_output(storage, "o/v2")
        parts = dask.compute(*write_output(out, storage, "o/v2", schema))
        close_output(storage, "o/v2")
    files = storage.files("o/v2")
    assert [f.rsplit("/", 1)[1] for f in files] == [
        "part-00000.parquet",
        "part-00001.parquet",
        "part-00002.parquet",
    ]
    assert sum(p["rows"] for p in parts) == 5
    assert parts[0]["stats"]["amount"] == {"nulls": 0, "min": 10.0, "max": 20.5}
    again = read_source(storage, {"path": "o/v2", "schema": recipe.schema})
    with dask.config.set(scheduler="sync"):
        assert again.compute()["id"].tolist() == [1, 2, 4, 7, 8]
