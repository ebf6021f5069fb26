"""Generated datasets with known patterns planted in them, for the insight accuracy
tests and ``benchmarks/insights.py``.

:func:`plant` builds an ordinary table (a date, a region of uneven but undominated
shares, noise measures) and plants the patterns asked for, each in a column of its own,
returning the table and what an insight finder should report.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

START = pd.Timestamp("2024-01-01")
REGIONS = np.array(["north", "south", "east", "west", "central"])
REGION_SHARES = np.array([0.3, 0.25, 0.2, 0.15, 0.1])

#: every pattern :func:`plant` knows
PATTERNS = (
    "trend",
    "change_point",
    "seasonality",
    "outlier",
    "correlation",
    "majority",
    "missing",
    "category_outlier",
    "duplicates",
    "spike",
    "low_variance",
    "missing_together",
)


@dataclass(frozen=True)
class Planted:
    """A pattern planted in a table: the insight type and the column(s) it is in.

    Parameters
    ----------
    type : str
        The insight type that should report it.
    columns : tuple of str
        The columns an insight must name (all of them).
    detail : dict
        What else is known (the date of a level shift, the dominant value...).
    """

    type: str
    columns: tuple[str, ...]
    detail: tuple = ()


def base_frame(rows: int, days: int, rng: np.random.Generator) -> pd.DataFrame:
    """An ordinary table: rows spread evenly over ``days`` days, in order, a region of
    uneven shares (none dominant), an order number, and three noise measures."""
    day = START + pd.to_timedelta(np.sort(rng.integers(0, days, rows)), unit="D")
    return pd.DataFrame(
        {
            "order_id": np.arange(1, rows + 1),
            "day": day.to_numpy().astype("datetime64[ms]"),
            "region": rng.choice(REGIONS, rows, p=REGION_SHARES),
            "units": rng.poisson(20, rows).astype("int64"),
            "noise_a": rng.normal(100, 15, rows),
            "noise_b": rng.normal(0, 1, rows),
        }
    )


def plant(
    patterns: tuple[str, ...] | list[str],
    rows: int = 3000,
    days: int = 365,
    seed: int = 0,
    strength: float = 1.0,
) -> tuple[pd.DataFrame, list[Planted]]:
    """A table with ``patterns`` planted, and what was planted.

    Parameters
    ----------
    patterns : sequence of str
        Names from :data:`PATTERNS`.
    rows, days : int
        Rows of the table, spread over this many days from 2024-01-01.
    seed : int
        Seed of the generator: the same arguments give the same table.
    strength : float
        Multiplies the size of each effect (1: clear; 0.5: harder).
    """
    rng = np.random.default_rng(seed)
    df = base_frame(rows, days, rng)
    t = ((df["day"] - START) / pd.Timedelta(days=1)).to_numpy()
    planted: list[Planted] = []
    # rows are copied last, once every column is there
    for name in sorted(patterns, key=lambda p: p == "duplicates"):
        if name == "trend":
            # rises 3 standard deviations of the daily noise over the year
            df["revenue"] = 200 + strength * 60 * t / days + rng.normal(0, 20, rows)
            planted.append(Planted("trend", ("revenue", "day")))
        elif name == "change_point":
            at = int(days * rng.uniform(0.3, 0.7))
            when = START + pd.Timedelta(days=at)
            df["latency"] = 50 + strength * 15 * (t >= at) + rng.normal(0, 10, rows)
            planted.append(Planted("change_point", ("latency", "day"), (("date", when),)))
        elif name == "seasonality":
            weekday = (START + pd.to_timedelta(t, unit="D")).day_of_week.to_numpy()
            effect = np.array([0, -5, -8, -3, 4, 25, 30])[weekday]
            df["visits"] = 300 + strength * effect + rng.normal(0, 8, rows)
            planted.append(Planted("seasonality", ("visits", "day")))
        elif name == "outlier":
            amount = rng.normal(500, 50, rows)
            where = rng.choice(rows, 4, replace=False)
            amount[where] = 500 + strength * rng.choice([-1, 1], 4) * rng.uniform(600, 900, 4)
            df["amount"] = amount
            planted.append(Planted("outlier", ("amount",), (("rows", tuple(sorted(where))),)))
        elif name == "correlation":
            price = rng.lognormal(3, 0.4, rows)
            df["price"] = price
            noise = rng.normal(0, price.std() * 0.5 / max(strength, 1e-6), rows)
            df["cost"] = 0.6 * price + noise
            planted.append(Planted("correlation", ("price", "cost")))
        elif name == "majority":
            share = min(0.95, 0.55 + 0.3 * strength)
            others = rng.choice(["store", "phone", "partner"], rows)
            df["channel"] = np.where(rng.random(rows) < share, "web", others)
            planted.append(Planted("majority", ("channel",), (("value", "web"),)))
        elif name == "missing":
            coupon = rng.integers(1, 50, rows).astype(float)
            coupon[rng.random(rows) < min(0.95, 0.6 + 0.3 * strength)] = np.nan
            df["coupon"] = coupon
            planted.append(Planted("missing", ("coupon",)))
        elif name == "category_outlier":
            team = rng.choice(["red", "blue", "green", "amber", "violet", "teal"], rows)
            score = rng.normal(70, 8, rows)
            score[team == "amber"] += strength * 24
            df["team"] = team
            df["score"] = score
            planted.append(Planted("category_outlier", ("team", "score"), (("value", "amber"),)))
        elif name == "duplicates":
            copies = df.sample(n=max(1, int(0.03 * rows * strength)), random_state=seed)
            df = pd.concat([df, copies]).sort_values("order_id", kind="stable")
            df = df.reset_index(drop=True)
            planted.append(Planted("duplicates", ()))
        elif name == "spike":
            # a steady climb with three days far above their neighbours, yet inside the
            # range of the whole series: outliers in time, not among all values
            level = 100 + 400 * t / days + rng.normal(0, 4, rows)
            spikes = rng.choice(np.arange(10, days - 10), 3, replace=False)
            when = START + pd.to_timedelta(np.sort(spikes), unit="D")
            level[np.isin(t, spikes)] += strength * 60
            df["load"] = level
            planted.append(Planted("outlier", ("load", "day"), (("dates", tuple(when)),)))
        elif name == "low_variance":
            status = np.full(rows, 200, dtype="int64")
            rare = rng.random(rows) < 0.02
            status[rare] = rng.choice([404, 500], int(rare.sum()))
            df["status"] = status
            planted.append(Planted("low_variance", ("status",)))
        elif name == "missing_together":
            gone = rng.random(rows) < 0.3
            df["street"] = np.where(gone, None, rng.choice(["high st", "low rd", "mill ln"], rows))
            df["zip"] = np.where(gone, np.nan, rng.integers(10000, 99999, rows).astype(float))
            planted.append(Planted("missing", ("street", "zip")))
        else:
            raise ValueError(f"unknown pattern {name!r}")
    return df, planted


#: patterns that change a measure over time (two of them make the measures correlated)
_IN_TIME = ("trend", "change_point", "spike")


def implied(planted: list[Planted]) -> list[Planted]:
    """Findings that are true of a table because of what was planted, besides the
    patterns themselves: the climb under the spikes is a trend; columns missing together
    are each missing; two measures that both move over time are correlated."""
    out = []
    moving = []
    for p in planted:
        if p.columns[:1] == ("load",):
            out.append(Planted("trend", ("load", "day")))
        if p.type == "missing" and len(p.columns) > 1:
            out.extend(Planted("missing", (c,)) for c in p.columns)
        if p.type in ("trend", "change_point") or p.columns[:1] == ("load",):
            moving.append(p.columns[0])
    for i, a in enumerate(moving):
        out.extend(Planted("correlation", (a, b)) for b in moving[i + 1 :])
    return out


def matches(insight: dict, planted: Planted) -> bool:
    """Whether an insight (its JSON model) reports a planted pattern."""
    return insight["type"] == planted.type and set(planted.columns) <= set(insight["columns"])
