"""Aggregations through a real hub (both catalogs), checked against pandas on the same rows;
and the engine itself: row groups skipped, columns read, S3 storage, the row cap."""

from __future__ import annotations

import io

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from datapilot_hub.domain.aggregate import (
    MAX_ROWS,
    AggregateService,
    Engine,
    _Target,
    parse_aggregation,
    plan,
)
from datapilot_hub.errors import DatapilotError
from datapilot_hub.storage import parquet_writer

ROWS = 3000
REGIONS = ["north", "south", "east", "west", "x"]


def frame(rows: int = ROWS, seed: int = 3) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    ts = pd.Timestamp("2024-11-01") + pd.to_timedelta(rng.integers(0, 200 * 86400, rows), "s")
    region = np.array(REGIONS, dtype=object)[rng.choice(5, rows, p=[0.4, 0.25, 0.15, 0.15, 0.05])]
    region[rng.random(rows) < 0.02] = None
    amount = rng.gamma(2.0, 40.0, rows).round(2)
    amount[rng.random(rows) < 0.05] = np.nan
    return pd.DataFrame(
        {
            "id": np.arange(1, rows + 1),
            "day": ts.normalize(),
            "ts": ts,
            "region": region,
            "customer": [f"c{i}" for i in rng.integers(0, 300, rows)],
            "amount": amount,
            "units": rng.integers(1, 20, rows),
        }
    )


def csv_bytes(df: pd.DataFrame) -> bytes:
    out = df.copy()
    out["day"] = out["day"].dt.strftime("%Y-%m-%d")
    out["ts"] = out["ts"].dt.strftime("%Y-%m-%d %H:%M:%S")
    return out.to_csv(index=False).encode()


@pytest.fixture(scope="module")
def world(hub):
    """acme: alice (analyst), vera (viewer); globex: gary. acme's ``sales`` has two versions:
    v1 the first 1000 rows, v2 all of them."""
    tokens = hub.populate(
        {"acme": "Acme", "globex": "Globex"},
        [("acme", "alice", "analyst"), ("acme", "vera", "viewer"), ("globex", "gary", "analyst")],
    )
    df = frame()
    for mode, rows in (("create", df.head(1000)), ("replace", df)):
        r = hub.upload("acme", tokens["alice"], "sales", csv_bytes(rows), "sales.csv", mode=mode)
        assert r.status_code == 202, r.text
        job = hub.wait_job("acme", r.json()["job"]["id"], tokens["alice"])
        assert job["state"] == "succeeded", job
    types = {
        c["name"]: c["type"]
        for c in hub.api("GET", "/orgs/acme/datasets/sales", tokens["alice"]).json()["columns"]
    }
    assert types == {
        "id": "integer",
        "day": "date",
        "ts": "datetime",
        "region": "string",
        "customer": "string",
        "amount": "number",
        "units": "integer",
    }
    return {"tokens": tokens, "df": df}


def aggregate(hub, token, body, fmt=None, org="acme", name="sales", **kw):
    query = f"?format={fmt}" if fmt else ""
    return hub.api("POST", f"/orgs/{org}/datasets/{name}/aggregate{query}", token, json=body, **kw)


def rows(r) -> pd.DataFrame:
    assert r.status_code == 200, r.text
    return pd.DataFrame(r.json()["rows"])


def column(r, name: str) -> list:
    """One column of a JSON answer as sent (nulls as None)."""
    return [row[name] for row in r.json()["rows"]]


def test_the_issues_example(hub, world):
    body = {
        "group_by": ["region"],
        "time_bucket": {"column": "day", "unit": "month"},
        "metrics": {"amount": ["sum", "mean"], "*": ["count"]},
        "filter": "day >= '2025-03-01' and region != 'x'",
    }
    r = aggregate(hub, world["tokens"]["vera"], body)
    answer = r.json()
    assert answer["dataset"] == "sales" and answer["version"] == 2
    assert answer["columns"] == [
        {"name": "day", "type": "date"},
        {"name": "region", "type": "string"},
        {"name": "amount_sum", "type": "number"},
        {"name": "amount_mean", "type": "number"},
        {"name": "count", "type": "integer"},
    ]
    got = rows(r)
    df = world["df"]
    df = df[(df.day >= "2025-03-01") & (df.region != "x") & df.region.notna()]
    want = (
        df.groupby([df.day.dt.to_period("M").dt.start_time.dt.strftime("%Y-%m-%d"), "region"])
        .agg(amount_sum=("amount", "sum"), amount_mean=("amount", "mean"), count=("id", "size"))
        .reset_index()
    )
    assert got[["day", "region"]].values.tolist() == want[["day", "region"]].values.tolist()
    assert got["count"].tolist() == want["count"].tolist()
    np.testing.assert_allclose(got["amount_sum"], want["amount_sum"])
    np.testing.assert_allclose(got["amount_mean"], want["amount_mean"])


def test_every_metric_matches_pandas(hub, world):
    body = {
        "group_by": ["region"],
        "metrics": {
            "amount": ["count", "sum", "mean", "median", "min", "max", "p90", {"percentile": 0.25}],
            "customer": ["count_distinct", "min"],
            "units": ["sum"],
            "day": ["max"],
            "*": ["count"],
        },
    }
    r = aggregate(hub, world["tokens"]["alice"], body)
    got = rows(r)
    df = world["df"]
    g = df.groupby("region", dropna=False)
    want = pd.DataFrame(
        {
            "amount_count": g["amount"].count(),
            "amount_sum": g["amount"].sum(),
            "amount_mean": g["amount"].mean(),
            "amount_median": g["amount"].median(),
            "amount_min": g["amount"].min(),
            "amount_max": g["amount"].max(),
            "amount_p90": g["amount"].quantile(0.9),
            "amount_p25": g["amount"].quantile(0.25),
            "customer_count_distinct": g["customer"].nunique(),
            "customer_min": g["customer"].min(),
            "units_sum": g["units"].sum(),
            "day_max": g["day"].max().dt.strftime("%Y-%m-%d"),
            "count": g.size(),
        }
    ).reset_index()
    # keys ascending, null last
    want = want.sort_values("region", na_position="last").reset_index(drop=True)
    assert column(r, "region") == sorted(REGIONS) + [None]
    for name in want.columns.drop("region"):
        if want[name].dtype.kind in "fi":
            np.testing.assert_allclose(got[name], want[name], err_msg=name)
        else:
            assert got[name].tolist() == want[name].tolist(), name
    assert all(isinstance(v, int) for v in got["units_sum"])


@pytest.mark.parametrize(
    "unit, freq",
    [
        ("hour", "h"),
        ("day", "D"),
        ("week", "W-MON"),
        ("month", "MS"),
        ("quarter", "QS"),
        ("year", "YS"),
    ],
)
def test_time_buckets(hub, world, unit, freq):
    body = {
        "time_bucket": {"column": "ts", "unit": unit},
        "metrics": {"*": ["count"], "units": ["sum"]},
    }
    got = rows(aggregate(hub, world["tokens"]["alice"], body))
    df = world["df"]
    if unit == "week":
        start = df.ts.dt.to_period("W-SUN").dt.start_time  # weeks start on Monday
    elif unit in ("hour", "day"):
        start = df.ts.dt.floor(freq)
    else:
        start = df.ts.dt.to_period({"month": "M", "quarter": "Q", "year": "Y"}[unit]).dt.start_time
    want = df.groupby(start).agg(count=("id", "size"), units_sum=("units", "sum")).reset_index()
    assert pd.to_datetime(got["ts"]).tolist() == want["ts"].tolist()
    assert got["count"].tolist() == want["count"].tolist()
    assert got["units_sum"].tolist() == want["units_sum"].tolist()
    assert sum(got["count"]) == ROWS


def test_top_n_with_other(hub, world):
    body = {
        "group_by": ["region"],
        "metrics": {"amount": ["sum", "median"], "*": ["count"]},
        "limit": 2,
        "other": True,
    }
    r = aggregate(hub, world["tokens"]["alice"], body)
    got = rows(r)
    df = world["df"]
    sums = df.groupby("region", dropna=False)["amount"].sum().sort_values(ascending=False)
    top = list(sums.index[:2])
    assert column(r, "region") == top + [None]
    assert got["other"].tolist() == [False, False, True]
    rest = df[~df.region.isin(top)]
    assert got["count"].tolist()[-1] == len(rest)
    assert sum(got["count"]) == ROWS
    # the other group's median is the median of its rows, not of the groups' medians
    assert got["amount_median"].iloc[-1] == pytest.approx(rest["amount"].median())


def test_top_series_per_time_bucket(hub, world):
    body = {
        "group_by": ["region"],
        "time_bucket": {"column": "day", "unit": "month"},
        "metrics": {"*": ["count"]},
        "sort": ["count"],  # the two smallest regions over the whole range
        "limit": 2,
        "other": True,
    }
    got = rows(aggregate(hub, world["tokens"]["alice"], body))
    df = world["df"]
    sizes = df.groupby("region", dropna=False).size().sort_values(kind="stable")
    top = list(sizes.index[:2])
    months = sorted(df.day.dt.strftime("%Y-%m-01").unique())
    assert got["day"].unique().tolist() == months
    for _, part in got.groupby("day", sort=False):
        assert set(part["region"].dropna()) <= set(top)
        assert part["other"].tolist()[-1] is True or not part["other"].any()
    assert got["count"].sum() == ROWS
    # without other: the two series only
    body.pop("other")
    got = rows(aggregate(hub, world["tokens"]["alice"], body))
    assert set(got["region"]) == set(top) and "other" not in got


def test_sort_limit_derive_and_filter(hub, world):
    body = {
        "derive": {"revenue": "amount * units", "big": "amount > 100"},
        "group_by": ["big"],
        "metrics": {"revenue": ["sum"], "*": ["count"]},
        "filter": "region in ('north', 'south') and amount is not null and month(day) in (1, 2)",
        "sort": [{"column": "big", "desc": True}],
    }
    got = rows(aggregate(hub, world["tokens"]["alice"], body))
    df = world["df"]
    df = df[df.region.isin(["north", "south"]) & df.amount.notna() & df.day.dt.month.isin([1, 2])]
    want = (
        df.assign(revenue=df.amount * df.units, big=df.amount > 100)
        .groupby("big")
        .agg(revenue_sum=("revenue", "sum"), count=("id", "size"))
    )
    assert got["big"].tolist() == [True, False]
    assert got["count"].tolist() == [want.loc[True, "count"], want.loc[False, "count"]]
    np.testing.assert_allclose(
        got["revenue_sum"], [want.loc[True, "revenue_sum"], want.loc[False, "revenue_sum"]]
    )
    # a limit without a sort keeps the largest groups of the first metric
    got = rows(
        aggregate(
            hub,
            world["tokens"]["alice"],
            {"group_by": ["customer"], "metrics": {"*": ["count"]}, "limit": 3},
        )
    )
    counts = world["df"].groupby("customer").size()
    assert got["count"].tolist() == sorted(counts, reverse=True)[:3]
    # no group: one row
    got = rows(
        aggregate(
            hub,
            world["tokens"]["alice"],
            {
                "metrics": {"*": ["count"], "amount": ["max"]},
                "filter": "ts >= '2025-05-01T00:00:00Z'",
            },
        )
    )
    assert got["count"].tolist() == [int((world["df"].ts >= "2025-05-01").sum())]


def test_an_older_version(hub, world):
    body = {"metrics": {"*": ["count"]}, "version": 1}
    assert rows(aggregate(hub, world["tokens"]["alice"], body))["count"].tolist() == [1000]
    r = aggregate(hub, world["tokens"]["alice"], {**body, "version": 9})
    assert r.status_code == 404 and r.json()["details"]["version"] == 9


def test_formats(hub, world):
    body = {"group_by": ["region"], "metrics": {"units": ["sum"]}, "filter": "region is not null"}
    want = rows(aggregate(hub, world["tokens"]["alice"], body))
    csv = aggregate(hub, world["tokens"]["alice"], body, "csv")
    assert csv.status_code == 200 and csv.headers["content-type"].startswith("text/csv")
    assert 'filename="sales-v2-aggregate.csv"' in csv.headers["content-disposition"]
    pd.testing.assert_frame_equal(pd.read_csv(io.BytesIO(csv.content)), want)
    arrow = aggregate(hub, world["tokens"]["alice"], body, "arrow")
    table = pa.ipc.open_stream(arrow.content).read_all()
    assert table.column("units_sum").to_pylist() == want["units_sum"].tolist()
    assert pa.types.is_integer(table.schema.field("units_sum").type)
    parquet = aggregate(hub, world["tokens"]["alice"], body, "parquet")
    assert (
        pq.read_table(io.BytesIO(parquet.content)).column("region").to_pylist()
        == want["region"].tolist()
    )
    r = aggregate(hub, world["tokens"]["alice"], body, "xml")
    assert r.status_code == 400 and r.json()["details"]["field"] == "format"


@pytest.mark.parametrize(
    "body, code, details",
    [
        (
            {"metrics": {"*": ["count"]}, "filter": "amount >"},
            "invalid_expression",
            {"field": "filter", "position": 8},
        ),
        (
            {"metrics": {"*": ["count"]}, "filter": "amount > 1 and regoin = 'x'"},
            "unknown_column",
            {"field": "filter", "position": 15, "column": "regoin"},
        ),
        (
            {"metrics": {"*": ["count"]}, "filter": "__import__('os')"},
            "invalid_expression",
            {"field": "filter", "position": 0},
        ),
        (
            {"metrics": {"*": ["count"]}, "filter": "region > 3"},
            "invalid_expression",
            {"field": "filter", "position": 9},
        ),
        (
            {"metrics": {"*": ["count"]}, "derive": {"r": "amount * "}},
            "invalid_expression",
            {"field": "derive.r", "position": 9},
        ),
        (
            {"metrics": {"*": ["count"]}, "group_by": ["nope"]},
            "unknown_column",
            {"field": "group_by[0]", "column": "nope"},
        ),
        (
            {"metrics": {"nope": ["sum"]}},
            "unknown_column",
            {"field": "metrics.nope", "column": "nope"},
        ),
        ({"metrics": {"region": ["sum"]}}, "invalid_input", {"field": "metrics.region"}),
        ({"metrics": {"amount": ["average"]}}, "invalid_input", {"field": "metrics.amount"}),
        (
            {"metrics": {"amount": [{"percentile": 1.5}]}},
            "invalid_input",
            {"field": "metrics.amount"},
        ),
        ({"metrics": {"*": ["sum"]}}, "invalid_input", {"field": "metrics.*"}),
        ({"metrics": {}}, "invalid_input", {"field": "metrics"}),
        ({}, "invalid_input", {"field": "metrics"}),
        (
            {"metrics": {"*": ["count"]}, "groupby": ["region"]},
            "invalid_input",
            {"field": "groupby"},
        ),
        (
            {"metrics": {"*": ["count"]}, "group_by": "region,day"},
            "unknown_column",
            {"field": "group_by[0]", "column": "region,day"},
        ),
        ({"metrics": {"*": ["count"]}, "group_by": [1]}, "invalid_input", {"field": "group_by"}),
        (
            {"metrics": {"*": ["count"]}, "time_bucket": {"column": "day", "unit": "fortnight"}},
            "invalid_input",
            {"field": "time_bucket.unit"},
        ),
        (
            {"metrics": {"*": ["count"]}, "time_bucket": {"column": "day", "unit": "hour"}},
            "invalid_input",
            {"field": "time_bucket.unit"},
        ),
        (
            {"metrics": {"*": ["count"]}, "time_bucket": {"column": "region", "unit": "day"}},
            "invalid_input",
            {"field": "time_bucket.column"},
        ),
        ({"metrics": {"*": ["count"]}, "sort": ["nope"]}, "invalid_input", {"field": "sort[0]"}),
        ({"metrics": {"*": ["count"]}, "limit": 0}, "invalid_input", {"field": "limit"}),
        ({"metrics": {"*": ["count"]}, "limit": "10"}, "invalid_input", {"field": "limit"}),
        ({"metrics": {"*": ["count"]}, "other": True}, "invalid_input", {"field": "other"}),
        ({"metrics": {"*": ["count"]}, "version": 0}, "invalid_input", {"field": "version"}),
        (
            {"metrics": {"*": ["count"]}, "derive": {"amount": "units"}},
            "invalid_input",
            {"field": "derive.amount"},
        ),
        (
            {"metrics": {"*": ["count"]}, "derive": {"Bad Name": "units"}},
            "invalid_input",
            {"field": "derive.Bad Name"},
        ),
    ],
)
def test_bad_requests_are_400_naming_the_field(hub, world, body, code, details):
    r = aggregate(hub, world["tokens"]["alice"], body)
    assert r.status_code == 400, r.text
    error = r.json()
    assert error["error"] == code, error
    assert {k: error["details"].get(k) for k in details} == details, error


def test_a_body_that_is_not_json(hub, world):
    for content in (b"not json", b"[1, 2]"):
        r = hub.api(
            "POST", "/orgs/acme/datasets/sales/aggregate", world["tokens"]["alice"], content=content
        )
        assert r.status_code == 400 and r.json()["error"] == "invalid_json"


def test_isolation(hub, world):
    body = {"metrics": {"*": ["count"]}}
    t = world["tokens"]
    # another organization's member, an unknown organization, an unknown dataset: 404
    assert aggregate(hub, t["gary"], body).status_code == 404
    assert aggregate(hub, t["gary"], body, org="nosuch").status_code == 404
    assert aggregate(hub, t["alice"], body, name="nosuch").status_code == 404
    # gary's own organization has no such dataset either: nothing leaks from acme
    r = aggregate(hub, t["gary"], body, org="globex")
    assert r.status_code == 404 and "sales" in r.json()["message"]
    # anonymous: 401; a bad dataset name: 400
    assert aggregate(hub, None, body).status_code == 401
    assert aggregate(hub, t["alice"], body, name="Bad-Name").status_code == 400
    # every role reads (viewers too): no member lacks data:read to be refused with 403


def test_aggregations_are_audited_like_data_reads(hub, world):
    t = world["tokens"]
    aggregate(hub, t["vera"], {"metrics": {"*": ["count"]}}, "csv")
    aggregate(hub, t["vera"], {"metrics": {"*": ["count"]}, "filter": "nope = 1"})
    aggregate(hub, t["gary"], {"metrics": {"*": ["count"]}})
    hub.add_member("acme", "mona", "manager")
    events = hub.api(
        "GET", "/orgs/acme/audit?action=dataset.aggregate&user=vera&limit=2", hub.user_token("mona")
    ).json()["events"]
    assert [(e["outcome"], e["status"]) for e in events] == [("unknown_column", 400), ("ok", 200)]
    assert events[1]["target"] == "sales" and events[1]["details"]["format"] == "csv"
    assert events[1]["details"]["version"] == 2 and events[1]["details"]["rows"] == 1
    # gary is no member of acme: his call leaves no event in acme's log
    events = hub.api(
        "GET", "/orgs/acme/audit?action=dataset.aggregate&user=gary", hub.user_token("mona")
    ).json()["events"]
    assert events == []


# -- the engine itself ------------------------------------------------------------------

SCHEMA = {"id": "integer", "day": "date", "region": "string", "amount": "number"}


def write_version(storage, rows: int, group_rows: int) -> str:
    """A sorted version of ``rows`` rows in row groups of ``group_rows``; its file path."""
    table = pa.table(
        {
            "id": np.arange(rows),
            "day": pa.array(np.datetime64("2025-01-01") + np.arange(rows) // 100, pa.date32()),
            "region": pa.array(np.array(REGIONS)[np.arange(rows) % 5]),
            "amount": np.arange(rows, dtype=float),
        }
    )
    path = "org-1/datasets/t/v1/part-0.parquet"
    with storage.open(path, "wb") as f, parquet_writer(f, table.schema) as writer:
        for batch in table.to_batches(max_chunksize=group_rows):
            writer.write_batch(batch)
    return path


def test_filters_skip_row_groups_and_only_needed_columns_are_read(storage):
    path = write_version(storage, 10_000, 1000)  # 100 days, ten row groups
    engine = Engine(storage, threads=1)
    agg = parse_aggregation({"metrics": {"amount": ["sum"]}, "filter": "day >= '2025-04-01'"})
    query = plan(agg, SCHEMA)
    assert query.reads == ["day", "amount"]
    explained = engine.explain(query, [path])
    assert "Row Groups Scanned: 1 / 10" in explained, explained
    scan = explained[explained.index("READ_PARQUET") :]
    assert "Projections: amount" in scan and "region" not in scan
    result = engine.run(query, [path])
    assert result.column("amount_sum").to_pylist() == [float(sum(range(9000, 10_000)))]


def test_the_engine_reads_s3_storage(s3_storage):
    path = write_version(s3_storage, 5000, 1000)
    engine = Engine(s3_storage, threads=1)
    agg = parse_aggregation(
        {"group_by": ["region"], "metrics": {"*": ["count"]}, "filter": "id < 100"}
    )
    table = engine.run(plan(agg, SCHEMA), [path])
    assert table.column("region").to_pylist() == sorted(REGIONS)
    assert table.column("count").to_pylist() == [20] * 5


def test_the_engine_cannot_touch_other_files(storage, tmp_path):
    """The connection reads the version's directory and nothing else, whatever the SQL."""
    path = write_version(storage, 10, 10)
    other = "org-2/datasets/t/v1/part-0.parquet"  # another organization's version
    with storage.open(other, "wb") as f:
        pq.write_table(pa.table({"a": [1]}), f)
    secret = tmp_path / "secret.csv"
    secret.write_text("a\n1\n")
    con = Engine(storage, threads=1).connect([path])
    assert con.execute(
        f"SELECT count(*) FROM read_parquet('{storage.full_path(path)}')"
    ).fetchone() == (10,)
    for sql in (
        f"SELECT * FROM read_parquet('{storage.full_path(other)}')",
        f"SELECT * FROM read_csv('{secret}')",
        "SET enable_external_access = true",
        "SET allowed_directories = ['/']",
        "INSTALL httpfs",
        f"COPY (SELECT 1) TO '{tmp_path}/out.csv'",
    ):
        with pytest.raises(Exception, match="Permission|Cannot change|configuration"):
            con.execute(sql)
    con.close()


def test_too_many_groups_is_refused(storage):
    path = write_version(storage, MAX_ROWS + 10, 50_000)
    service = AggregateService(None, storage, Engine(storage, threads=1))
    info = {"name": "t", "version": 1, "schema": SCHEMA}
    too_many = _Target(
        info,
        plan(parse_aggregation({"group_by": ["id"], "metrics": {"*": ["count"]}}), SCHEMA),
        [path],
    )
    with pytest.raises(DatapilotError) as e:
        service.run(too_many)
    assert (e.value.status, e.value.code, e.value.details["field"]) == (
        400,
        "too_many_groups",
        "limit",
    )
    limited = _Target(
        info,
        plan(
            parse_aggregation({"group_by": ["id"], "metrics": {"*": ["count"]}, "limit": MAX_ROWS}),
            SCHEMA,
        ),
        [path],
    )
    assert service.run(limited).table.num_rows == MAX_ROWS


def test_a_sum_past_64_bits_is_422_not_500(storage):
    path = "org-1/datasets/big/v1/part-0.parquet"
    with storage.open(path, "wb") as f:
        pq.write_table(pa.table({"n": pa.array([2**62, 2**62, 2**62], pa.int64())}), f)
    query = plan(parse_aggregation({"metrics": {"n": ["sum", "mean"]}}), {"n": "integer"})
    with pytest.raises(DatapilotError) as e:
        Engine(storage, threads=1).run(query, [path])
    assert (e.value.status, e.value.code) == (422, "unprocessable")
    assert "cannot be aggregated" in e.value.message
