"""The baselines of benchmarks/aggregate.py, run in a fresh process each.

    python _aggregate_child.py duckdb|pandas|pyarrow <parquet file> <repeat>

prints one JSON line per query: its times (from after the imports) and its rows.
"""

from __future__ import annotations

import datetime as dt
import json
import sys
import time

import duckdb
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds

# the benchmark's three queries, written by hand for each engine
DUCKDB_SQL = [
    "SELECT region, CAST(date_trunc('month', day) AS DATE) AS day, sum(amount), avg(amount),"
    " count(*) FROM read_parquet(?) WHERE day >= DATE '2025-03-01' AND region <> 'x'"
    " GROUP BY ALL ORDER BY 2, 1",
    "SELECT count(*), max(amount) FROM read_parquet(?) WHERE ts >= TIMESTAMP '2025-12-01'",
    "SELECT date_trunc('week', ts) AS ts, region, median(amount),"
    " quantile_cont(amount, 0.9), count(DISTINCT customer) FROM read_parquet(?)"
    " WHERE units > 5 GROUP BY ALL ORDER BY 1, 2",
]


def duck(path: str, i: int) -> int:
    con = duckdb.connect()
    try:
        return len(con.sql(DUCKDB_SQL[i], params=[path]).fetchall())
    finally:
        con.close()


def pandas_(path: str, i: int) -> int:
    if i == 0:
        df = pd.read_parquet(path, columns=["day", "region", "amount"])
        day = pd.to_datetime(df["day"])
        keep = (day >= "2025-03-01") & (df["region"] != "x")
        df, day = df[keep], day[keep]
        g = df.groupby([day.dt.to_period("M"), "region"])["amount"].agg(["sum", "mean", "count"])
    elif i == 1:
        df = pd.read_parquet(path, columns=["ts", "amount"])
        df = df[df["ts"] >= pd.Timestamp("2025-12-01")]
        g = pd.DataFrame({"count": [len(df)], "max": [df["amount"].max()]})
    else:
        df = pd.read_parquet(path, columns=["ts", "region", "amount", "customer", "units"])
        df = df[df["units"] > 5]
        g = df.groupby([df["ts"].dt.to_period("W-SUN"), "region"]).agg(
            median=("amount", "median"),
            p90=("amount", lambda s: s.quantile(0.9)),
            customers=("customer", "nunique"),
        )
    return len(g)


def arrow(path: str, i: int) -> int:
    d = ds.dataset(path)
    if i == 0:
        keep = (pc.field("day") >= dt.date(2025, 3, 1)) & (pc.field("region") != "x")
        t = d.to_table(columns=["day", "region", "amount"], filter=keep)
        t = t.set_column(0, "day", pc.floor_temporal(t["day"], unit="month"))
        g = t.group_by(["day", "region"]).aggregate(
            [("amount", "sum"), ("amount", "mean"), ("amount", "count")]
        )
    elif i == 1:
        t = d.to_table(columns=["amount"], filter=pc.field("ts") >= dt.datetime(2025, 12, 1))
        g = pa.table({"n": [t.num_rows], "max": [pc.max(t["amount"])]})
    else:
        t = d.to_table(columns=["ts", "region", "amount", "customer"], filter=pc.field("units") > 5)
        t = t.set_column(0, "ts", pc.floor_temporal(t["ts"], unit="week", week_starts_monday=True))
        # pyarrow's group_by has no exact median or percentile: t-digest approximations
        g = t.group_by(["ts", "region"]).aggregate(
            [
                ("amount", "approximate_median"),
                ("amount", "tdigest", pc.TDigestOptions(q=0.9)),
                ("customer", "count_distinct"),
            ]
        )
    return g.num_rows


def main() -> None:
    which, path, repeat = sys.argv[1], sys.argv[2], int(sys.argv[3])
    run = {"duckdb": duck, "pandas": pandas_, "pyarrow": arrow}[which]
    for i in range(len(DUCKDB_SQL)):
        times = []
        for _ in range(repeat):
            t = time.perf_counter()
            n = run(path, i)
            times.append(time.perf_counter() - t)
        print(json.dumps({"query": i, "times": times, "rows": n}))


if __name__ == "__main__":
    main()
