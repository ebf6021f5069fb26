"""Ingestion speed and memory: Datapilot against the pyarrow floor and the read_csv + to_sql path.

    .venv/bin/python benchmarks/ingest.py --rows 2000000 --excel-rows 200000

For one generated file (mixed types, thousands separators, ISO and US dates, timestamps,
yes/no, 5% empty cells) it measures, in this run and on this machine:

1. floor: pyarrow's streaming CSV reader straight to Parquet, no inference;
2. pandas.read_csv then DataFrame.to_sql into PostgreSQL (the common web-app path);
3. Datapilot end to end through the API of a real hub: upload, job, catalog commit, the
   end of the job seen on its WebSocket as a client would;

and prints wall time (the median of --repeat runs), rows/s, MB/s, peak memory (RSS
high-water mark of the process doing the work) and the ratios. With --excel-rows it does
the same for a workbook against python-calamine's raw read of every cell.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "hub"))

from _data import write_csv, write_xlsx  # noqa: E402

# a child's peak is read from /proc/self/status: getrusage's ru_maxrss survives exec and
# would report this (bigger) parent's size at fork
PEAK = "int(open('/proc/self/status').read().split('VmHWM:')[1].split()[0]) * 1024"

FLOOR = """
import sys, time, pyarrow.csv as c, pyarrow.parquet as pq
t = time.perf_counter()
r = c.open_csv(sys.argv[1]); w = pq.ParquetWriter(sys.argv[2], r.schema)
n = 0
for b in r:
    w.write_batch(b); n += b.num_rows
w.close()
print(time.perf_counter() - t, n, PEAK)
"""

TO_SQL = """
import sys, time, pandas as pd, sqlalchemy as sa
t = time.perf_counter()
df = pd.read_csv(sys.argv[1])
engine = sa.create_engine(sys.argv[2])
df.to_sql("bench", engine, if_exists="replace", index=False, chunksize=50_000)
print(time.perf_counter() - t, len(df), PEAK)
"""

CALAMINE = """
import sys, time
from python_calamine import load_workbook
t = time.perf_counter()
wb = load_workbook(sys.argv[1]); n = 0
for name in wb.sheet_names:
    for row in wb.get_sheet_by_name(name).iter_rows():
        n += 1
print(time.perf_counter() - t, n - 1, PEAK)
"""


def run_child(code: str, *args: str, repeat: int = 1) -> tuple[float, int, int]:
    """(median seconds, rows, highest peak bytes) of ``repeat`` runs in a new process each."""
    runs = []
    for _ in range(repeat):
        out = subprocess.run(
            [sys.executable, "-c", code.replace("PEAK", PEAK), *args],
            check=True,
            capture_output=True,
            text=True,
        )
        seconds, rows, peak = out.stdout.split()
        runs.append((float(seconds), int(rows), int(peak)))
    return statistics.median(r[0] for r in runs), runs[0][1], max(r[2] for r in runs)


def service_peak(hub) -> int:
    import psutil

    for child in psutil.Process(hub.proc.pid).children(recursive=True):
        if "datapilot_hub.service" in " ".join(child.cmdline()):
            for line in Path(f"/proc/{child.pid}/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    raise RuntimeError("data service not found")


async def job_events(url: str, job_id: str, token: str) -> None:
    """Wait for the job's end on its WebSocket (what a client does instead of polling)."""
    from tornado.httpclient import HTTPRequest
    from tornado.websocket import websocket_connect

    ws_url = (
        url.replace("http", "ws") + f"/services/datapilot/api/v1/orgs/bench/jobs/{job_id}/events"
    )
    ws = await websocket_connect(HTTPRequest(ws_url, headers={"Authorization": f"token {token}"}))
    while await ws.read_message() is not None:
        pass


def datapilot(path: str, filename: str, work: Path, repeat: int = 1) -> tuple[float, int, int, int]:
    """(median seconds, rows, peak bytes, baseline bytes) of uploads through a fresh hub."""
    import httpx
    from datapilot_hub.tests.utils import HubProcess, new_home

    # (a home the data service's account can reach when the benchmark runs as root)
    hub = HubProcess(new_home("bench"))
    hub.start()
    try:
        hub.create_org("bench")
        # the default plan caps rows per dataset; the benchmark measures, it does not meter
        r = hub.api("PUT", "/orgs/bench/plan", hub.admin_token, json={"plan": "business"})
        r.raise_for_status()
        hub.add_member("bench", "ana", "analyst")
        token = hub.user_token("ana")
        baseline = service_peak(hub)
        times = []
        for i in range(repeat):
            t = time.perf_counter()
            with open(path, "rb") as f, httpx.Client(timeout=600) as c:
                r = c.post(
                    f"{hub.url}/services/datapilot/api/v1/orgs/bench/datasets",
                    headers={"Authorization": f"token {token}"},
                    data={"name": f"bench{i}"},
                    files={"file": (filename, f)},
                )
            r.raise_for_status()
            job_id = r.json()["job"]["id"]
            asyncio.run(job_events(hub.url, job_id, token))
            times.append(time.perf_counter() - t)
            job = hub.wait_job("bench", job_id, token)
            if job["state"] != "succeeded":
                raise RuntimeError(job)
        return statistics.median(times), job["result"]["rows"], service_peak(hub), baseline
    finally:
        hub.stop()
        hub.remove_accounts()
        shutil.rmtree(hub.home, ignore_errors=True)


def line(name: str, seconds: float, rows: int, size: int, peak: int, base: float | None) -> dict:
    ratio = f"{seconds / base:6.2f}x" if base else "  1.00x"
    print(
        f"  {name:<34} {seconds:8.2f} s {rows / seconds:>12,.0f} rows/s"
        f" {size / seconds / 1e6:8.1f} MB/s {peak / 1e6:8.0f} MB peak  {ratio}"
    )
    return {"name": name, "seconds": round(seconds, 3), "rows": rows, "peak_bytes": peak}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, nargs="+", default=[200_000], help="CSV sizes in rows")
    parser.add_argument("--excel-rows", type=int, default=0, help="workbook size in rows (0: skip)")
    parser.add_argument(
        "--skip-to-sql", action="store_true", help="skip the read_csv + to_sql path"
    )
    parser.add_argument("--pg-url", default="postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
    parser.add_argument(
        "--repeat",
        type=int,
        default=3,
        help="runs of the floor, calamine and Datapilot measurements; the median is shown",
    )
    parser.add_argument("--json", help="also write the figures to this file")
    args = parser.parse_args()
    results = []
    with tempfile.TemporaryDirectory(prefix="dp-bench-") as tmp:
        work = Path(tmp)
        for rows in args.rows:
            csv_path = str(work / f"mixed-{rows}.csv")
            size = write_csv(csv_path, rows)
            print(f"\nCSV: {rows:,} rows, {size / 1e6:.0f} MB, {os.cpu_count()} cores")
            floor_s, n, floor_peak = run_child(
                FLOOR, csv_path, str(work / "floor.parquet"), repeat=args.repeat
            )
            results.append(
                line("pyarrow stream -> Parquet (floor)", floor_s, n, size, floor_peak, None)
            )
            if not args.skip_to_sql:
                s, n, peak = run_child(TO_SQL, csv_path, args.pg_url)
                results.append(
                    line("pandas read_csv + to_sql (PostgreSQL)", s, n, size, peak, floor_s)
                )
            s, n, peak, base = datapilot(csv_path, "mixed.csv", work, args.repeat)
            results.append(line("Datapilot API (infer+validate+report)", s, n, size, peak, floor_s))
            print(f"  {'':<34} data service at rest: {base / 1e6:.0f} MB")
            os.unlink(csv_path)
        if args.excel_rows:
            xlsx = str(work / "book.xlsx")
            size = write_xlsx(xlsx, args.excel_rows)
            print(f"\nExcel: {args.excel_rows:,} rows, {size / 1e6:.0f} MB")
            raw_s, n, raw_peak = run_child(CALAMINE, xlsx, repeat=args.repeat)
            results.append(line("python-calamine raw read", raw_s, n, size, raw_peak, None))
            s, n, peak, _ = datapilot(xlsx, "book.xlsx", work, args.repeat)
            results.append(line("Datapilot API (xlsx)", s, n, size, peak, raw_s))
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
