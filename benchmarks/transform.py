"""Transform speed and memory: a Datapilot recipe against the same work by hand.

    .venv/bin/python benchmarks/transform.py --rows 8000000 --memory-limit 1GiB

It writes a sales table (ids, 200,000 customers, a region written messily: spaces and
case, amounts with 5% missing, discounts) and a customers table, uploads both through
the API of a real hub (Parquet), then does one cleaning + join + group-by, in this run
and on this machine, three ways:

1. pandas in memory (``read_parquet``, the same steps, ``merge``, ``groupby``), in a
   fresh process stopped when its resident memory passes ``--memory-limit``;
2. dask.dataframe by hand on the stored Parquet files, on a LocalCluster of one worker
   with two threads and ``--memory-limit`` (the baseline);
3. Datapilot: ``POST .../transform`` with the recipe, until its job has published the
   new version, on the service's embedded LocalCluster sized the same way
   (``DATAPILOT_DASK_WORKERS=1``, ``DATAPILOT_DASK_THREADS=2``,
   ``DATAPILOT_DASK_MEMORY_LIMIT``).

It prints the seconds, the ratio to hand-written Dask and the peak resident memory of
the process doing the work (the pandas process; the Dask worker).
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "hub"))

RECIPE = [
    {"op": "drop_null", "columns": ["amount"]},
    {"op": "standardize", "columns": ["region"], "case": "lower"},
    {"op": "filter", "expr": "amount > 5 and region != 'x'"},
    {"op": "derive", "name": "net", "expr": "amount * (1 - discount / 100)"},
    {"op": "join", "with": "customers", "on": ["customer_id"], "how": "left"},
    {
        "op": "group_by",
        "by": ["region", "segment"],
        "aggs": {"net": ["sum", "mean"], "*": ["count"]},
    },
]


def write_tables(tmp: Path, rows: int) -> tuple[Path, Path]:
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    rng = np.random.default_rng(13)
    regions = pa.array(["North", " north", "SOUTH ", "East", "east  ", "West", "x", "Central"])
    amount = rng.gamma(2.0, 40.0, rows).round(2)
    missing = rng.random(rows) < 0.05
    sales = pa.table(
        {
            "id": np.arange(rows),
            "customer_id": rng.integers(0, 200_000, rows),
            "region": pa.DictionaryArray.from_arrays(
                pa.array(rng.integers(0, len(regions), rows).astype("int32")), regions
            ),
            "amount": pa.array(amount, mask=missing),
            "discount": rng.integers(0, 30, rows),
        }
    )
    customers = pa.table(
        {
            "customer_id": np.arange(200_000),
            "segment": pa.array([f"s{i % 7}" for i in range(200_000)]),
        }
    )
    paths = tmp / "sales.parquet", tmp / "customers.parquet"
    pq.write_table(sales, paths[0], row_group_size=500_000)
    pq.write_table(customers, paths[1])
    return paths


def child(which: str, sales: Path, customers: Path, limit: int) -> dict:
    out = subprocess.run(
        [
            sys.executable,
            str(HERE / "_transform_child.py"),
            which,
            str(sales),
            str(customers),
            str(limit),
        ],
        capture_output=True,
        text=True,
    )
    lines = [line for line in out.stdout.splitlines() if line.startswith("{")]
    if not lines:
        raise RuntimeError(out.stderr[-2000:])
    return json.loads(lines[-1])


def service_peak(hub, stop: threading.Event, peak: dict) -> None:
    """The largest resident memory of a Dask worker of the service, while ``stop`` is unset."""
    import psutil
    from datapilot_hub.tests.utils import service_process

    service = service_process(hub)
    while not stop.is_set():
        for p in service.children(recursive=True):
            try:
                if "spawn_main" in " ".join(p.cmdline()):
                    peak["rss"] = max(peak["rss"], p.memory_info().rss)
            except psutil.Error:
                continue
        time.sleep(0.02)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, default=8_000_000)
    parser.add_argument("--memory-limit", default="1GiB", help="for pandas and each worker")
    parser.add_argument("--json", help="also write the figures to this file")
    args = parser.parse_args()

    from dask.utils import parse_bytes
    from datapilot_hub.tests.utils import HubProcess, new_home

    limit = parse_bytes(args.memory_limit)
    figures: dict[str, dict] = {}
    with tempfile.TemporaryDirectory(prefix="dp-transform-bench-") as tmp:
        sales, customers = write_tables(Path(tmp), args.rows)
        print(
            f"{args.rows:,} rows, {sales.stat().st_size / 1e6:.0f} MB of Parquet;"
            f" memory limit {limit / 2**20:.0f} MiB"
        )
        env = {
            "DATAPILOT_DASK_WORKERS": "1",
            "DATAPILOT_DASK_THREADS": "2",
            "DATAPILOT_DASK_MEMORY_LIMIT": str(limit),
        }
        hub = HubProcess(new_home("bench-transform"), env=env)
        hub.start()
        try:
            hub.create_org("bench")
            # the default plan caps rows per dataset; the benchmark measures, it does not meter
            hub.api("PUT", "/orgs/bench/plan", hub.admin_token, json={"plan": "business"})
            hub.add_member("bench", "ana", "analyst")
            token = hub.user_token("ana")
            for name, path in (("sales", sales), ("customers", customers)):
                t = time.perf_counter()
                with open(path, "rb") as f:
                    r = hub.api(
                        "POST",
                        "/orgs/bench/datasets",
                        token,
                        data={"name": name},
                        files={"file": (path.name, f, "application/vnd.apache.parquet")},
                    )
                r.raise_for_status()
                job = hub.wait_job("bench", r.json()["job"]["id"], token, timeout=1800)
                assert job["state"] == "succeeded", job
                print(f"uploaded {name} in {time.perf_counter() - t:.1f} s")
            stored = {
                name: str(next((hub.service_home / "storage").glob(f"org-*/datasets/{name}/v1")))
                for name in ("sales", "customers")
            }
            figures["pandas"] = child("pandas", stored["sales"], stored["customers"], limit)
            figures["dask"] = child("dask", stored["sales"], stored["customers"], limit)
            body = {"steps": RECIPE, "output": {"name": "summary", "mode": "create"}}
            # a first, small run starts the embedded cluster: its start-up is not the recipe's
            warm = {"steps": [{"op": "sample", "fraction": 0.01}], "output": {"name": "warm"}}
            r = hub.api("POST", "/orgs/bench/datasets/customers/transform", token, json=warm)
            if r.status_code == 202:
                hub.wait_job("bench", r.json()["job"]["id"], token, timeout=600)
            peak = {"rss": 0}
            stop = threading.Event()
            watcher = threading.Thread(target=service_peak, args=(hub, stop, peak))
            watcher.start()
            t = time.perf_counter()
            r = hub.api("POST", "/orgs/bench/datasets/sales/transform", token, json=body)
            r.raise_for_status()
            job = hub.wait_job("bench", r.json()["job"]["id"], token, timeout=3600)
            seconds = time.perf_counter() - t
            stop.set()
            watcher.join()
            assert job["state"] == "succeeded", (job, hub.log_tail(80))
            rows = hub.api("GET", "/orgs/bench/datasets/summary", token).json()["rows"]
            figures["datapilot"] = {"seconds": seconds, "groups": rows, "peak_rss": peak["rss"]}
        finally:
            hub.stop()
            hub.remove_accounts()
            shutil.rmtree(hub.home, ignore_errors=True)
    base = figures["dask"]["seconds"]
    print(
        f"\ncleaning + join + group-by over {args.rows:,} rows, memory limit"
        f" {limit / 2**20:.0f} MiB"
    )
    for label, key in (
        ("pandas in memory", "pandas"),
        ("dask.dataframe by hand (baseline)", "dask"),
        ("Datapilot recipe (POST .../transform)", "datapilot"),
    ):
        f = figures[key]
        if f.get("error") == "memory":
            print(
                f"  {label:<40} stopped: resident memory passed the limit"
                f" ({f['peak_rss'] / 2**20:.0f} MiB)"
            )
            continue
        print(
            f"  {label:<40} {f['seconds']:8.2f} s  {f['seconds'] / base:5.2f}x"
            f"  peak {f['peak_rss'] / 2**20:6.0f} MiB  {f['groups']} groups"
        )
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
