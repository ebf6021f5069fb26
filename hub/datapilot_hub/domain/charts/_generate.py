"""From a chart plan to the aggregation it needs, and from its rows to the chart spec.

The rows come from the aggregation engine (:mod:`datapilot_hub.domain.aggregate`) as a
DataFrame whose measure column is named ``value`` (``q05`` ... ``q95`` for a box);
everything here is pure.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from datapilot_charts import PALETTE

from ._build import axis, chart, values
from ._recommend import ChartPlan, DatasetFacts
from ._request import ChartRequest

#: points a scatter plot shows at most (a uniform sample of the rows)
SCATTER_POINTS = 5_000
#: the quantiles of a box: whiskers at the 5th and 95th percentiles
BOX_QUANTILES = {"q05": "p5", "q25": "p25", "q50": "p50", "q75": "p75", "q95": "p95"}
_FUNC_LABELS = {
    "sum": "Sum of",
    "mean": "Mean of",
    "median": "Median of",
    "min": "Minimum of",
    "max": "Maximum of",
    "count": "Rows with",
    "count_distinct": "Distinct values of",
    "quantiles": "Quantiles of",
}


def measure_label(plan: ChartPlan, facts: DatasetFacts) -> str:
    """``Sum of amount``, ``Rows``..."""
    if plan.y is None:
        return "Rows"
    if plan.func == "none":  # raw values (a scatter plot's)
        return facts.label(plan.y)
    return f"{_FUNC_LABELS[plan.func]} {facts.label(plan.y)}"


def metrics(plan: ChartPlan) -> dict[str, list[Any]]:
    """The aggregation's metrics for the plan's measure."""
    if plan.y is None:
        return {"*": ["count"]}
    if plan.func == "quantiles":
        return {plan.y: list(BOX_QUANTILES.values())}
    return {plan.y: [plan.func]}


def aggregation(plan: ChartPlan, req: ChartRequest) -> dict[str, Any]:
    """The aggregation body that gives the rows of a bar, line, area, pie, box or heatmap.

    Keys come first in the answer (the time bucket, then the groups), then the metrics.
    """
    body: dict[str, Any] = {"metrics": metrics(plan)}
    keys = [c for c in (plan.x, plan.group) if c is not None]
    if plan.time is not None:
        body["time_bucket"] = {"column": plan.time, "unit": plan.unit}
        keys = [c for c in keys if c != plan.time]
    if keys:
        body["group_by"] = keys
    if plan.type in ("bar", "pie", "box") and plan.time is None:
        value = _metric_names(plan)[0 if plan.type != "box" else 2]
        body["sort"] = [f"-{value}"]
        # grouped bars show every (category, group) pair: their counts are checked before
        if plan.limit and plan.group is None:
            body["limit"] = plan.limit
            # (the engine computes the rest's metrics from its rows: a mean is a mean)
            body["other"] = True
    elif plan.type in ("line", "area", "bar") and plan.group is not None and plan.limit:
        body["limit"] = plan.limit
        body["other"] = True
    if req.filter is not None:
        body["filter"] = req.filter
    if req.version is not None:
        body["version"] = req.version
    return body


def _metric_names(plan: ChartPlan) -> list[str]:
    if plan.y is None:
        return ["count"]
    if plan.func == "quantiles":
        return [f"{plan.y}_{p}" for p in BOX_QUANTILES.values()]
    return [f"{plan.y}_{plan.func}"]


def value_columns(plan: ChartPlan) -> dict[str, str]:
    """The engine's metric column -> the name the spec builders read."""
    names = _metric_names(plan)
    if plan.func == "quantiles":
        return dict(zip(names, BOX_QUANTILES, strict=True))
    return {names[0]: "value"}


def title(plan: ChartPlan, facts: DatasetFacts, req: ChartRequest) -> str:
    """The chart's title (the caller's, or one made from the columns)."""
    if req.title:
        return req.title
    lx, lg = facts.label(plan.x), facts.label(plan.group)
    measure = measure_label(plan, facts)
    if plan.type == "scatter":
        return f"{facts.label(plan.y)} against {lx}"
    if plan.type == "histogram":
        return f"Distribution of {lx}"
    if plan.type == "box":
        return f"Spread of {facts.label(plan.y)}" + (f" by {lx}" if plan.x else "")
    if plan.type == "heatmap":
        return f"{measure} by {lx} and {lg}"
    if plan.time is not None:
        # a time axis: "Sum of revenue per week, by channel"
        return f"{measure} per {plan.unit}" + (f", by {lg}" if plan.group else "")
    return f"{measure} by {lx}" + (f" and {lg}" if plan.group else "")


def _kind(facts: DatasetFacts, column: str | None) -> str:
    if column is None:
        return "quantitative"
    if facts.is_time(column):
        return "temporal"
    return "quantitative" if facts.is_numeric(column) else "nominal"


def _series_by_group(plan: ChartPlan, frame: pd.DataFrame, x: str, y: str) -> list[dict]:
    if plan.group is None:
        return [{"name": y, "x": values(frame[x]), "y": values(frame[y])}]
    out = []
    totals = frame.groupby(plan.group, dropna=False, sort=False)[y].sum()
    order = sorted(totals.index, key=lambda k: (str(k) == "other", -totals[k]))
    for i, key in enumerate(order):
        part = (
            frame[frame[plan.group] == key] if not pd.isna(key) else frame[frame[plan.group].isna()]
        )
        out.append(
            {
                "name": "(missing)" if pd.isna(key) else str(key),
                "x": values(part[x]),
                "y": values(part[y]),
                "color": PALETTE[i % len(PALETTE)],
            }
        )
    return out


def build_spec(
    plan: ChartPlan, facts: DatasetFacts, req: ChartRequest, frame: pd.DataFrame
) -> dict[str, Any]:
    """The chart spec of ``plan`` over its rows.

    Parameters
    ----------
    plan : ChartPlan
        The chart.
    facts : DatasetFacts
        Types and labels of the dataset.
    req : ChartRequest
        The request (title, filter).
    frame : pandas.DataFrame
        Its rows: the keys (x, group) and ``value`` (or the box quantiles); for a scatter
        plot x, y (and group); for a histogram ``edges`` and ``counts`` in ``frame.attrs``.
    """
    name = title(plan, facts, req)
    x_axis = axis(plan.x, facts.label(plan.x), _kind(facts, plan.x))
    if plan.unit and plan.type != "heatmap":
        x_axis["label"] = f"{facts.label(plan.x)} ({plan.unit})"
    y_axis = axis(plan.y, measure_label(plan, facts), "quantitative")
    if plan.type in ("line", "area"):
        frame = frame.sort_values(plan.x)
        return chart(
            plan.type, name, _series_by_group(plan, frame, plan.x, "value"), x=x_axis, y=y_axis
        )
    if plan.type == "bar":
        if plan.group is None:
            if plan.unit:
                frame = frame.sort_values(plan.x)
            series = [
                {
                    "name": measure_label(plan, facts),
                    "x": [_text(v) for v in frame[plan.x]],
                    "y": values(frame["value"]),
                }
            ]
        else:
            categories = list(dict.fromkeys(_text(v) for v in frame[plan.x]))
            series = []
            for s in _series_by_group(
                plan, frame.assign(**{plan.x: frame[plan.x].map(_text)}), plan.x, "value"
            ):
                found = dict(zip(s["x"], s["y"], strict=True))
                s["x"], s["y"] = categories, [found.get(c, 0) for c in categories]
                series.append(s)
        x_axis["kind"] = "nominal"
        return chart("bar", name, series, x=x_axis, y=y_axis)
    if plan.type == "pie":
        labels = [_text(v) for v in frame[plan.x]]
        return chart(
            "pie",
            name,
            [
                {
                    "name": measure_label(plan, facts),
                    "labels": labels,
                    "values": values(frame["value"]),
                }
            ],
        )
    if plan.type == "heatmap":
        g_axis = axis(plan.group, facts.label(plan.group), _kind(facts, plan.group))
        return chart(
            "heatmap",
            name,
            [
                {
                    "name": measure_label(plan, facts),
                    "x": [_text(v) for v in frame[plan.x]],
                    "y": [_text(v) for v in frame[plan.group]],
                    "value": values(frame["value"]),
                }
            ],
            x={**x_axis, "kind": "nominal"},
            y={**g_axis, "kind": "nominal"},
        )
    if plan.type == "box":
        series = []
        for i, (_, row) in enumerate(frame.iterrows()):
            series.append(
                {
                    "name": _text(row[plan.x]) if plan.x else facts.label(plan.y),
                    "low": float(row["q05"]),
                    "q1": float(row["q25"]),
                    "median": float(row["q50"]),
                    "q3": float(row["q75"]),
                    "high": float(row["q95"]),
                    "color": PALETTE[i % len(PALETTE)],
                }
            )
        y_axis["label"] = facts.label(plan.y)
        return chart(
            "box",
            name,
            series,
            x={**x_axis, "kind": "nominal"},
            y=y_axis,
            whiskers="5th and 95th percentiles",
        )
    if plan.type == "histogram":
        edges, counts = frame.attrs["edges"], frame.attrs["counts"]
        return chart(
            "histogram",
            name,
            [{"name": facts.label(plan.x), "edges": values(edges), "counts": values(counts)}],
            x=x_axis,
            y=axis(None, "Rows", "quantitative"),
        )
    # scatter
    y_axis = axis(plan.y, facts.label(plan.y), "quantitative")
    series = (
        _series_by_group(plan, frame, plan.x, plan.y)
        if plan.group
        else [{"name": facts.label(plan.y), "x": values(frame[plan.x]), "y": values(frame[plan.y])}]
    )
    return chart("scatter", name, series, x=x_axis, y=y_axis, points_shown=int(len(frame)))


def _text(value: Any) -> str:
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return "(missing)"
    if isinstance(value, (pd.Timestamp,)) or hasattr(value, "isoformat"):
        return values([value])[0]
    return str(value)


def histogram_bins(low: float, high: float, bins: int) -> tuple[float, float]:
    """(start, width) of ``bins`` equal bins over [low, high]."""
    if not np.isfinite(low) or not np.isfinite(high):
        raise ValueError("no finite range")
    width = (high - low) / bins if high > low else 1.0
    return float(low), float(width)


def histogram_counts(
    bin_starts: pd.Series, counts: pd.Series, low: float, width: float, bins: int
) -> tuple[np.ndarray, np.ndarray]:
    """Edges and counts from the engine's (bin start, rows) pairs."""
    out = np.zeros(bins, dtype=np.int64)
    index = np.clip(np.round((bin_starts.to_numpy(dtype=float) - low) / width), 0, bins - 1)
    np.add.at(out, index.astype(int), counts.to_numpy(dtype=np.int64))
    edges = low + width * np.arange(bins + 1)
    return edges, out
