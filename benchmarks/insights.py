"""Insight accuracy (precision and recall) and speed at 1M and 10M rows.

    .venv/bin/python benchmarks/insights.py --datasets 200 --rows 1000000 10000000

1. Accuracy: ``--datasets`` generated tables (hub/datapilot_hub/tests/planted.py), each
   with 1 to 4 patterns drawn at random from every kind the generator plants, at a
   random strength (0.6 to 1.5 times the accuracy tests' size) and a random size (500 to
   20,000 rows over 90 to 730 days). Every insight of a table is a true positive when it
   reports a planted pattern (its type and columns), a false positive otherwise; recall
   counts the planted patterns reported. Findings that are true because of what was
   planted (the climb under planted spikes is a trend, two measures that both move over
   time correlate: ``planted.implied``) count as neither. Per type and overall.
2. Speed: for each ``--rows``, a table with every pattern written as Parquet the way
   the ingestion writes it (zstd, row groups of 32,768 rows), then, each in a fresh process:
   the baseline, pandas reading the whole file (``pd.read_parquet``), against the data
   service's path, the one-pass sample and row hashes (``read_version``) then every
   finder on the sample (``find_insights``). Wall time and peak RSS (VmHWM).
"""

from __future__ import annotations

import argparse
import collections
import json
import multiprocessing
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "hub"))

CHUNK = 1_000_000


def peak_rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def accuracy(datasets: int, seed: int) -> dict:
    from datapilot_hub.domain.insights import insights_of_frame
    from datapilot_hub.tests.planted import PATTERNS, implied, matches, plant

    rng = np.random.default_rng(seed)
    tp = collections.Counter()
    fp = collections.Counter()
    planted_n = collections.Counter()
    found_n = collections.Counter()
    spurious: collections.Counter = collections.Counter()
    missed: list = []
    seconds = []
    for i in range(datasets):
        chosen = list(rng.choice(PATTERNS, size=int(rng.integers(1, 5)), replace=False))
        rows, days = int(rng.integers(500, 20_000)), int(rng.integers(90, 731))
        strength = float(rng.uniform(0.6, 1.5))
        df, planted = plant(chosen, rows=rows, days=days, seed=seed + i, strength=strength)
        started = time.perf_counter()
        insights = [x.to_json(len(df)) for x in insights_of_frame(df)]
        seconds.append(time.perf_counter() - started)
        also = implied(planted)
        hit = set()
        for insight in insights:
            match = next((k for k, p in enumerate(planted) if matches(insight, p)), None)
            if match is None:
                if not any(matches(insight, p) for p in also):
                    fp[insight["type"]] += 1
                    spurious[(insight["type"], tuple(insight["columns"]))] += 1
                # (a true finding that follows from what was planted is neither)
            elif match not in hit:
                hit.add(match)
                tp[insight["type"]] += 1
            # (a second insight on one planted pattern is neither: it is not new)
        for k, p in enumerate(planted):
            planted_n[p.type] += 1
            found_n[p.type] += k in hit
            if k not in hit:
                missed.append((p.type, p.columns, rows, round(strength, 2)))
    types = sorted(set(planted_n) | set(fp))
    table = {}
    for t in types:
        reported = tp[t] + fp[t]
        table[t] = {
            "planted": planted_n[t],
            "found": found_n[t],
            "false_positives": fp[t],
            "precision": tp[t] / reported if reported else None,
            "recall": found_n[t] / planted_n[t] if planted_n[t] else None,
        }
    all_tp, all_fp = sum(tp.values()), sum(fp.values())
    table["all"] = {
        "planted": sum(planted_n.values()),
        "found": sum(found_n.values()),
        "false_positives": all_fp,
        "precision": all_tp / (all_tp + all_fp),
        "recall": sum(found_n.values()) / sum(planted_n.values()),
    }
    return {
        "table": table,
        "median_seconds": float(np.median(seconds)),
        "spurious": spurious.most_common(8),
        "missed": missed,
    }


def write_parquet(path: Path, rows: int, seed: int) -> None:
    """Every pattern, ``rows`` rows, generated a million at a time (each million covers
    the same two years with the same patterns, so they hold for the whole)."""
    import pyarrow as pa
    from datapilot_hub.storage import parquet_writer
    from datapilot_hub.tests.planted import PATTERNS, plant

    patterns = [p for p in PATTERNS if p != "duplicates"]
    writer = None
    done = 0
    while done < rows:
        n = min(CHUNK, rows - done)
        df, _ = plant(patterns, rows=n, days=730, seed=seed)  # one seed: the same shapes
        df["order_id"] = np.arange(done + 1, done + n + 1)
        table = pa.Table.from_pandas(df, preserve_index=False)
        if writer is None:
            writer = parquet_writer(str(path), table.schema)
        # row groups the size the ingestion writes (its batches)
        writer.write_table(table, row_group_size=32_768)
        done += n
    writer.close()


def _memory_pool() -> None:
    # the data service's allocator (DataService: jemalloc, freed memory back after 100 ms)
    from datapilot_hub.service.app import _use_jemalloc

    _use_jemalloc()


def _baseline(path: str, queue) -> None:
    import pandas as pd

    _memory_pool()

    started = time.perf_counter()
    df = pd.read_parquet(path)
    queue.put({"seconds": time.perf_counter() - started, "rows": len(df), "rss": peak_rss_mb()})


def _datapilot(path: str, sample_rows: int, queue) -> None:
    from datapilot_hub.domain.insights import Profile, find_insights, frame_types, read_version
    from datapilot_hub.storage import Storage

    _memory_pool()
    storage = Storage(str(Path(path).parent))
    started = time.perf_counter()
    read = read_version(storage, [Path(path).name], sample_rows)
    read_s = time.perf_counter() - started
    profile = Profile(
        df=read.sample,
        types=frame_types(read.sample),
        total_rows=read.rows,
        duplicates=read.duplicates,
    )
    started = time.perf_counter()
    found = find_insights(profile)
    find_s = time.perf_counter() - started
    queue.put(
        {
            "read_seconds": read_s,
            "find_seconds": find_s,
            "seconds": read_s + find_s,
            "insights": len(found),
            "types": sorted({i.type for i in found}),
            "rss": peak_rss_mb(),
        }
    )


def in_process(target, *args) -> dict:
    ctx = multiprocessing.get_context("spawn")
    queue = ctx.Queue()
    proc = ctx.Process(target=target, args=(*args, queue))
    proc.start()
    result = queue.get()
    proc.join()
    return result


def speed(rows: int, sample_rows: int, seed: int) -> dict:
    with tempfile.TemporaryDirectory(prefix="insights-bench-") as tmp:
        path = Path(tmp) / "data.parquet"
        started = time.perf_counter()
        write_parquet(path, rows, seed)
        written = time.perf_counter() - started
        base = in_process(_baseline, str(path))
        ours = in_process(_datapilot, str(path), sample_rows)
        return {
            "rows": rows,
            "mb": path.stat().st_size / 1e6,
            "write_seconds": written,
            "baseline": base,
            "datapilot": ours,
        }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--datasets", type=int, default=200)
    parser.add_argument("--rows", type=int, nargs="*", default=[1_000_000, 10_000_000])
    parser.add_argument("--sample-rows", type=int, default=200_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    args = parser.parse_args()
    out: dict = {}
    if args.datasets:
        out["accuracy"] = accuracy(args.datasets, args.seed)
        acc = out["accuracy"]
        print(
            f"Accuracy over {args.datasets} generated tables"
            f" (median {acc['median_seconds']:.2f} s each):"
        )
        print("| type | planted | found | false positives | precision | recall |")
        print("|---|---|---|---|---|---|")
        for t, r in acc["table"].items():
            p = "-" if r["precision"] is None else f"{r['precision']:.2f}"
            rc = "-" if r["recall"] is None else f"{r['recall']:.2f}"
            print(f"| {t} | {r['planted']} | {r['found']} | {r['false_positives']} | {p} | {rc} |")
        print("most frequent false positives:", acc["spurious"])
        print("missed (type, columns, rows, strength):", acc["missed"])
    out["speed"] = []
    for rows in args.rows:
        result = speed(rows, args.sample_rows, args.seed)
        out["speed"].append(result)
        b, d = result["baseline"], result["datapilot"]
        print(
            f"{rows:,} rows ({result['mb']:.0f} MB Parquet): pandas read_parquet"
            f" {b['seconds']:.2f} s,"
            f" {b['rss']:.0f} MB peak | Datapilot {d['seconds']:.2f} s (read+sample+hashes"
            f" {d['read_seconds']:.2f} s, finders {d['find_seconds']:.2f} s), {d['rss']:.0f} MB"
            f" peak, {d['insights']} insights | ratio {d['seconds'] / b['seconds']:.2f}x time,"
            f" {d['rss'] / b['rss']:.2f}x memory"
        )
    if args.json:
        print(json.dumps(out, indent=1, default=str))


if __name__ == "__main__":
    main()
