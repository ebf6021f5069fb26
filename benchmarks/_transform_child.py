"""The hand-written baselines of benchmarks/transform.py, in a fresh process each.

    python _transform_child.py pandas|dask <sales dir> <customers dir> <memory limit bytes>

prints one JSON line: seconds (from after the imports and, for dask, the cluster's start),
the result's groups, and the peak memory. pandas runs under a peak-RSS watchdog: past the
limit it stops and says so (exit code 3), as an out-of-memory kill would, without a
cgroup. dask runs a LocalCluster of one worker with two threads and that memory limit,
like the data service's embedded cluster in the benchmark.
"""

from __future__ import annotations

import json
import os
import sys
import threading
import time

import psutil


def watchdog(limit: int, peak: dict) -> None:
    me = psutil.Process()
    while True:
        rss = me.memory_info().rss
        peak["rss"] = max(peak["rss"], rss)
        if rss > limit:
            print(json.dumps({"error": "memory", "peak_rss": rss, "limit": limit}), flush=True)
            os._exit(3)
        time.sleep(0.01)


def by_hand(df, cust):
    """The benchmark's recipe, written once for pandas and dask.dataframe (same API)."""
    df = df.dropna(subset=["amount"])
    region = df["region"].str.strip().str.replace(r"\s+", " ", regex=True).str.lower()
    df = df.assign(region=region)
    df = df[(df["amount"] > 5) & (df["region"] != "x")]
    df = df.assign(net=df["amount"] * (1 - df["discount"] / 100))
    df = df.merge(cust, on="customer_id", how="left")
    return df.groupby(["region", "segment"], dropna=False).agg(
        net_sum=("net", "sum"), net_mean=("net", "mean"), count=("net", "size")
    )


def run_pandas(sales: str, customers: str, limit: int) -> dict:
    import pandas as pd

    peak = {"rss": 0}
    threading.Thread(target=watchdog, args=(limit, peak), daemon=True).start()
    t = time.perf_counter()
    out = by_hand(pd.read_parquet(sales), pd.read_parquet(customers))
    out = out.reset_index().sort_values(["region", "segment"])
    seconds = time.perf_counter() - t
    return {"seconds": seconds, "groups": len(out), "peak_rss": peak["rss"]}


def run_dask(sales: str, customers: str, limit: int) -> dict:
    import dask.dataframe as dd
    from distributed import Client, LocalCluster

    with (
        LocalCluster(
            n_workers=1,
            threads_per_worker=2,
            memory_limit=limit,
            processes=True,
            dashboard_address=None,
        ) as cluster,
        Client(cluster) as client,
    ):
        worker = psutil.Process(next(iter(client.run(os.getpid).values())))
        peak = {"rss": 0}
        stop = threading.Event()

        def watch():
            while not stop.is_set():
                peak["rss"] = max(peak["rss"], worker.memory_info().rss)
                time.sleep(0.02)

        watcher = threading.Thread(target=watch)
        watcher.start()
        t = time.perf_counter()
        sales_df = dd.read_parquet(sales, split_row_groups=True)
        out = by_hand(sales_df, dd.read_parquet(customers)).compute()
        out = out.reset_index().sort_values(["region", "segment"])
        seconds = time.perf_counter() - t
        stop.set()
        watcher.join()
    return {"seconds": seconds, "groups": len(out), "peak_rss": peak["rss"]}


if __name__ == "__main__":
    which, sales, customers, limit = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
    result = (run_pandas if which == "pandas" else run_dask)(sales, customers, limit)
    print(json.dumps(result), flush=True)
