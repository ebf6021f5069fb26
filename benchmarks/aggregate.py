"""Aggregation speed: Datapilot's API against DuckDB and pandas on the same Parquet file.

    .venv/bin/python benchmarks/aggregate.py --rows 10000000

It writes a sales-like table (timestamps over two years in time order, a date, a region of
six values, 50,000 customers, amounts, units), uploads it through the API of a real hub
(as ``dp.save`` would: Parquet, typed, copied batch by batch into the version), then runs
the same aggregations, in this run and on this machine, three ways over the version's one
stored Parquet file:

1. DuckDB straight on the file (the baseline: connect, query, fetch);
2. pandas: ``read_parquet`` of the needed columns, filter, ``groupby``;
3. pyarrow: a dataset scan with the filter pushed down, then ``Table.group_by``
   (the other engine the service could have used);
4. Datapilot end to end: ``POST .../aggregate`` through the proxy (authentication,
   catalog, planning, the query, JSON encoding and transfer), as a client sees it.

The baselines run in a fresh process each, timed from after their imports. Times are the
median of ``--repeat`` runs; the ratio is to DuckDB.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "hub"))

QUERIES = {
    "the issue's: month x region, sum+mean+count, filter": {
        "group_by": ["region"],
        "time_bucket": {"column": "day", "unit": "month"},
        "metrics": {"amount": ["sum", "mean"], "*": ["count"]},
        "filter": "day >= '2025-03-01' and region != 'x'",
    },
    "one month: count and max (row groups skipped)": {
        "metrics": {"*": ["count"], "amount": ["max"]},
        "filter": "ts >= '2025-12-01'",
    },
    "week x region: median, p90, distinct customers": {
        "group_by": ["region"],
        "time_bucket": {"column": "ts", "unit": "week"},
        "metrics": {"amount": ["median", "p90"], "customer": ["count_distinct"]},
        "filter": "units > 5",
    },
}


def write_table(path: Path, rows: int) -> None:
    """The benchmark's table, in time order, as Datapilot writes Parquet."""
    import numpy as np
    import pyarrow as pa
    from datapilot_hub.storage import parquet_writer

    rng = np.random.default_rng(1)
    seconds = np.sort(rng.integers(0, 2 * 365 * 86400, rows))
    ts = np.datetime64("2024-01-01T00:00:00", "us") + seconds.astype("timedelta64[s]")
    regions = np.array(["north", "south", "east", "west", "central", "x"])
    table = pa.table(
        {
            "id": np.arange(rows),
            "ts": pa.array(ts, pa.timestamp("us")),
            "day": pa.array(ts.astype("datetime64[D]"), pa.date32()),
            "region": pa.array(regions[rng.integers(0, 6, rows)]),
            "customer": pa.array(np.char.add("c", rng.integers(0, 50_000, rows).astype(str))),
            "amount": rng.gamma(2.0, 50.0, rows).round(2),
            "units": rng.integers(1, 100, rows),
        }
    )
    with parquet_writer(str(path), table.schema) as writer:
        for batch in table.to_batches(max_chunksize=1 << 20):
            writer.write_batch(batch)


def baseline(which: str, path: str, repeat: int) -> list[dict]:
    out = subprocess.run(
        [sys.executable, str(HERE / "_aggregate_child.py"), which, path, str(repeat)],
        check=True,
        capture_output=True,
        text=True,
    )
    return [json.loads(line) for line in out.stdout.splitlines()]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--repeat", type=int, default=5, help="runs per query; the median shows")
    parser.add_argument("--json", help="also write the figures to this file")
    args = parser.parse_args()

    import httpx
    import pyarrow.parquet as pq
    from datapilot_hub.tests.utils import API, HubProcess, new_home

    results = []
    with tempfile.TemporaryDirectory(prefix="dp-agg-bench-") as tmp:
        source = Path(tmp) / "sales.parquet"
        write_table(source, args.rows)
        print(f"{args.rows:,} rows, {source.stat().st_size / 1e6:.0f} MB of Parquet")
        hub = HubProcess(new_home("bench-agg"))
        hub.start()
        try:
            hub.create_org("bench")
            # the default plan caps rows per dataset; the benchmark measures, it does not meter
            hub.api("PUT", "/orgs/bench/plan", hub.admin_token, json={"plan": "business"})
            hub.add_member("bench", "ana", "analyst")
            token = hub.user_token("ana")
            t = time.perf_counter()
            with open(source, "rb") as f:
                r = hub.api(
                    "POST",
                    "/orgs/bench/datasets",
                    token,
                    data={"name": "sales"},
                    files={"file": ("sales.parquet", f, "application/vnd.apache.parquet")},
                )
            r.raise_for_status()
            job = hub.wait_job("bench", r.json()["job"]["id"], token, timeout=1800)
            assert job["state"] == "succeeded", job
            print(f"uploaded through the API in {time.perf_counter() - t:.1f} s")
            info = hub.api("GET", "/orgs/bench/datasets/sales/versions", token).json()
            [stored] = [
                p
                for p in (hub.service_home / "storage").rglob("*.parquet")
                if "/sales/v1/" in str(p)
            ]
            meta = pq.ParquetFile(stored).metadata
            print(
                f"stored version: {meta.num_rows:,} rows in {meta.num_row_groups} row groups,"
                f" {stored.stat().st_size / 1e6:.0f} MB ({info['versions'][0]['bytes']:,} bytes)"
            )
            figures = {
                w: baseline(w, str(stored), args.repeat) for w in ("duckdb", "pandas", "pyarrow")
            }
            api_times: list[list[float]] = []
            with httpx.Client(base_url=hub.url, timeout=600) as c:
                headers = {"Authorization": f"token {token}"}
                for body in QUERIES.values():
                    times = []
                    for _ in range(args.repeat):
                        t = time.perf_counter()
                        r = c.post(
                            f"{API}/orgs/bench/datasets/sales/aggregate", json=body, headers=headers
                        )
                        r.raise_for_status()
                        assert r.json()["rows"]
                        times.append(time.perf_counter() - t)
                    api_times.append(times)
        finally:
            hub.stop()
            hub.remove_accounts()
            shutil.rmtree(hub.home, ignore_errors=True)
    for i, name in enumerate(QUERIES):
        duck = statistics.median(figures["duckdb"][i]["times"])
        print(f"\n{name}")
        for label, times in (
            ("DuckDB on the file (baseline)", figures["duckdb"][i]["times"]),
            ("pandas read_parquet + groupby", figures["pandas"][i]["times"]),
            ("pyarrow dataset + group_by", figures["pyarrow"][i]["times"]),
            ("Datapilot API, end to end", api_times[i]),
        ):
            median = statistics.median(times)
            print(f"  {label:<32} {median:8.3f} s  {median / duck:6.2f}x")
            results.append(
                {
                    "query": name,
                    "path": label,
                    "seconds": round(median, 4),
                    "ratio": round(median / duck, 2),
                }
            )
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
