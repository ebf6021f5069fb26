"""Synthetic messy files for the benchmarks: what a sales or CRM export looks like."""

from __future__ import annotations

import numpy as np
import pandas as pd


def mixed_frame(rows: int, seed: int = 7) -> pd.DataFrame:
    """ids, decimals with thousands separators, categories, free text, ISO and US dates,
    timestamps, yes/no, and about 5% empty cells, as text the way exports write them."""
    rng = np.random.default_rng(seed)
    amount = rng.uniform(-5_000, 2_000_000, rows).round(2)
    base = np.datetime64("2020-01-01")
    days = rng.integers(0, 1500, rows)
    iso = (base + days).astype(str)
    us_dates = pd.to_datetime(iso).strftime("%m/%d/%Y")
    stamps = (
        base
        + days.astype("timedelta64[D]")
        + rng.integers(0, 86_400, rows).astype("timedelta64[s]")
    )
    words = np.array(
        ["alpha", "beta", "gamma", "delta", "omega", "north", "south", "review", "late", "ok"]
    )
    text = [" ".join(words[rng.integers(0, 10, 4)]) for _ in range(min(rows, 10_000))]
    frame = pd.DataFrame(
        {
            "Order ID": np.arange(1, rows + 1),
            "Amount": [f"{v:,.2f}" for v in amount],
            "Region": np.array(["North", "South", "East", "West", "Central"])[
                rng.integers(0, 5, rows)
            ],
            "Comment": np.resize(np.array(text, dtype=object), rows),
            "Order Date": iso,
            "Ship Date": np.asarray(us_dates),
            "Updated": pd.to_datetime(stamps).strftime("%Y-%m-%d %H:%M:%S"),
            "Paid": np.array(["yes", "no"])[rng.integers(0, 2, rows)],
            "Units": rng.integers(1, 500, rows),
        }
    ).astype(object)
    holes = rng.random(frame.shape) < 0.05
    holes[:, 0] = False  # ids are never empty
    return frame.mask(holes, "")


def write_csv(path: str, rows: int, chunk: int = 250_000) -> int:
    """Write a mixed CSV of ``rows`` rows in chunks; returns its size in bytes."""
    with open(path, "w", newline="") as f:
        for start in range(0, rows, chunk):
            n = min(chunk, rows - start)
            df = mixed_frame(n, seed=start)
            df["Order ID"] = np.arange(start + 1, start + n + 1)
            df.to_csv(f, index=False, header=start == 0)
    import os

    return os.path.getsize(path)


def write_xlsx(path: str, rows: int) -> int:
    """Write a workbook with typed cells (numbers, dates, booleans, text)."""
    import datetime as dt
    import os

    from openpyxl import Workbook

    rng = np.random.default_rng(11)
    wb = Workbook(write_only=True)
    ws = wb.create_sheet("Orders")
    ws.append(["Order ID", "Amount", "Region", "Order Date", "Paid", "Units", "Code"])
    regions = ["North", "South", "East", "West"]
    start = dt.date(2020, 1, 1)
    for i in range(rows):
        ws.append(
            [
                i + 1,
                float(rng.uniform(0, 10_000)),
                regions[i % 4],
                start + dt.timedelta(days=int(i % 1500)),
                bool(i % 2),
                int(i % 500),
                f"{i % 100000:05d}",
            ]
        )
    wb.save(path)
    return os.path.getsize(path)
