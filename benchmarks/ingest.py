"""Ingestion speed and memory: Datapilot against the pyarrow floor and the read_csv + to_sql path.

    .venv/bin/python benchmarks/ingest.py --rows 2000000 --excel-rows 200000

For one generated file (mixed types, thousands separators, ISO and US dates, timestamps,
yes/no, 5% empty cells) it measures, in this run and on this machine:

1. floor: pyarrow's streaming CSV reader straight to Parquet, no inference;
2. pandas.read_csv then DataFrame.to_sql into PostgreSQL (the common web-app path);
3. Datapilot end to end through the API of a real hub: upload, job, catalog commit;

and prints wall time, rows/s, MB/s, peak memory (RSS high-water mark of the process doing
the work) and the ratios. With --excel-rows it does the same for a workbook against
python-calamine's raw read of every cell.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "hub"))

from _data import write_csv, write_xlsx  # noqa: E402

FLOOR = """
import sys, time, resource, pyarrow.csv as c, pyarrow.parquet as pq
t = time.perf_counter()
r = c.open_csv(sys.argv[1]); w = pq.ParquetWriter(sys.argv[2], r.schema)
n = 0
for b in r:
    w.write_batch(b); n += b.num_rows
w.close()
print(time.perf_counter() - t, n, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024)
"""

TO_SQL = """
import sys, time, resource, pandas as pd, sqlalchemy as sa
t = time.perf_counter()
df = pd.read_csv(sys.argv[1])
engine = sa.create_engine(sys.argv[2])
df.to_sql("bench", engine, if_exists="replace", index=False, chunksize=50_000)
print(time.perf_counter() - t, len(df), resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024)
"""

CALAMINE = """
import sys, time, resource
from python_calamine import load_workbook
t = time.perf_counter()
wb = load_workbook(sys.argv[1]); n = 0
for name in wb.sheet_names:
    for row in wb.get_sheet_by_name(name).iter_rows():
        n += 1
print(time.perf_counter() - t, n - 1, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024)
"""


def run_child(code: str, *args: str) -> tuple[float, int, int]:
    out = subprocess.run(
        [sys.executable, "-c", code, *args], check=True, capture_output=True, text=True
    )
    seconds, rows, peak = out.stdout.split()
    return float(seconds), int(rows), int(peak)


def service_peak(hub) -> int:
    import psutil

    for child in psutil.Process(hub.proc.pid).children(recursive=True):
        if "datapilot_hub.service" in " ".join(child.cmdline()):
            for line in Path(f"/proc/{child.pid}/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    raise RuntimeError("data service not found")


def datapilot(path: str, filename: str, work: Path) -> tuple[float, int, int, int]:
    """(seconds, rows, peak bytes, baseline bytes) for one upload through a fresh hub."""
    import httpx
    from datapilot_hub.tests.utils import HubProcess

    hub = HubProcess(work / f"hub-{time.monotonic_ns()}")
    hub.start()
    try:
        hub.create_org("bench")
        # the default plan caps rows per dataset; the benchmark measures, it does not meter
        r = hub.api("PUT", "/orgs/bench/plan", hub.admin_token, json={"plan": "business"})
        r.raise_for_status()
        hub.add_member("bench", "ana", "analyst")
        token = hub.user_token("ana")
        baseline = service_peak(hub)
        t = time.perf_counter()
        with open(path, "rb") as f, httpx.Client(timeout=600) as c:
            r = c.post(
                f"{hub.url}/services/datapilot/api/v1/orgs/bench/datasets",
                headers={"Authorization": f"token {token}"},
                data={"name": "bench"},
                files={"file": (filename, f)},
            )
        r.raise_for_status()
        job = hub.wait_job("bench", r.json()["job"]["id"], token, timeout=3600)
        seconds = time.perf_counter() - t
        if job["state"] != "succeeded":
            raise RuntimeError(job)
        return seconds, job["result"]["rows"], service_peak(hub), baseline
    finally:
        hub.stop()


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
    parser.add_argument("--json", help="also write the figures to this file")
    args = parser.parse_args()
    results = []
    with tempfile.TemporaryDirectory(prefix="dp-bench-") as tmp:
        work = Path(tmp)
        for rows in args.rows:
            csv_path = str(work / f"mixed-{rows}.csv")
            size = write_csv(csv_path, rows)
            print(f"\nCSV: {rows:,} rows, {size / 1e6:.0f} MB, {os.cpu_count()} cores")
            floor_s, n, floor_peak = run_child(FLOOR, csv_path, str(work / "floor.parquet"))
            results.append(
                line("pyarrow stream -> Parquet (floor)", floor_s, n, size, floor_peak, None)
            )
            if not args.skip_to_sql:
                s, n, peak = run_child(TO_SQL, csv_path, args.pg_url)
                results.append(
                    line("pandas read_csv + to_sql (PostgreSQL)", s, n, size, peak, floor_s)
                )
            s, n, peak, base = datapilot(csv_path, "mixed.csv", work)
            results.append(line("Datapilot API (infer+validate+report)", s, n, size, peak, floor_s))
            print(f"  {'':<34} data service at rest: {base / 1e6:.0f} MB")
            os.unlink(csv_path)
        if args.excel_rows:
            xlsx = str(work / "book.xlsx")
            size = write_xlsx(xlsx, args.excel_rows)
            print(f"\nExcel: {args.excel_rows:,} rows, {size / 1e6:.0f} MB")
            raw_s, n, raw_peak = run_child(CALAMINE, xlsx)
            results.append(line("python-calamine raw read", raw_s, n, size, raw_peak, None))
            s, n, peak, _ = datapilot(xlsx, "book.xlsx", work)
            results.append(line("Datapilot API (xlsx)", s, n, size, peak, raw_s))
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
