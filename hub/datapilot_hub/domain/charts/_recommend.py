"""Which chart, of which columns: the caller's choice checked, or a recommendation.

A recommendation follows the columns' types and cardinalities, the way an analyst
would pick: a date and a measure give a line (the measure over time); a category and a
measure give bars; two measures a scatter; one measure a histogram; one category bars
of its counts; two categories a heatmap of their counts. Whatever was recommended is
said, with the reason, in the answer.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from ...errors import DatapilotError
from ._request import ChartRequest

#: a text column with more distinct values is not a category
MAX_CATEGORIES = 50
#: slices a pie shows at most
MAX_SLICES = 7
#: series of a line, area or grouped bar chart at most (the rest: "other")
MAX_SERIES = 7
#: bars shown when the caller sets no limit
DEFAULT_BARS = 20
DEFAULT_BINS = 30
#: a time axis is bucketed to the finest unit giving at most this many points
MAX_POINTS = 400
_TIME = ("date", "datetime")
_NUMERIC = ("integer", "number")
_UNIT_DAYS = {"hour": 1 / 24, "day": 1, "week": 7, "month": 30.44, "quarter": 91.3, "year": 365.25}


@dataclass
class DatasetFacts:
    """What the recommendation knows of a dataset version.

    Parameters
    ----------
    name : str
        The dataset.
    version : int
        The version.
    rows : int
        Its rows.
    types : dict
        Column -> Datapilot type.
    labels : dict
        Column -> the header as uploaded.
    stats : dict
        Column -> the catalog's statistics (``min``, ``max``, ``nulls``).
    distinct : dict
        Column -> distinct values, for the text, yes/no and integer columns.
    """

    name: str
    version: int
    rows: int
    types: dict[str, str]
    labels: dict[str, str] = field(default_factory=dict)
    stats: dict[str, dict[str, Any]] = field(default_factory=dict)
    distinct: dict[str, int] = field(default_factory=dict)

    def label(self, column: str | None) -> str:
        """A column's label (``Rows`` for None, the row count)."""
        return "Rows" if column is None else self.labels.get(column) or column

    def is_time(self, column: str) -> bool:
        """A date or timestamp column."""
        return self.types.get(column) in _TIME

    def is_numeric(self, column: str) -> bool:
        """An integer or number column."""
        return self.types.get(column) in _NUMERIC

    def is_identifier(self, column: str) -> bool:
        """An integer column of (nearly) all distinct values, or named like an id."""
        if self.types.get(column) != "integer":
            return False
        name = column.lower()
        if name == "id" or name.endswith(("_id", "_no", "_number", "_key")):
            return True
        return self.rows > 20 and self.distinct.get(column, 0) >= 0.99 * self.rows

    def is_measure(self, column: str) -> bool:
        """A numeric column that is not an identifier."""
        return self.is_numeric(column) and not self.is_identifier(column)

    def is_category(self, column: str) -> bool:
        """A text or yes/no column of at most :data:`MAX_CATEGORIES` values."""
        return (
            self.types.get(column) in ("string", "boolean")
            and 0 < self.distinct.get(column, MAX_CATEGORIES + 1) <= MAX_CATEGORIES
        )

    def unit_for(self, column: str) -> str:
        """The finest time bucket giving at most :data:`MAX_POINTS` points."""
        stats = self.stats.get(column) or {}
        try:
            span = pd.Timestamp(stats["max"]) - pd.Timestamp(stats["min"])
        except (KeyError, TypeError, ValueError):
            return "day" if self.types.get(column) == "date" else "hour"
        days = span / pd.Timedelta(days=1)
        units = list(_UNIT_DAYS) if self.types.get(column) == "datetime" else list(_UNIT_DAYS)[1:]
        for unit in units:
            if days / _UNIT_DAYS[unit] <= MAX_POINTS:
                return unit
        return "year"


@dataclass
class ChartPlan:
    """The chart to draw: its type and columns, how they are summed up, and why.

    ``y`` None means rows are counted; ``reason`` is None when the caller chose it all.
    For a heatmap, ``x`` and ``group`` are its two axes and ``y`` the measure of its
    cells.
    """

    type: str
    x: str | None
    y: str | None
    group: str | None
    func: str
    unit: str | None = None
    time: str | None = None  # the column bucketed by ``unit``
    limit: int | None = None
    bins: int | None = None
    reason: str | None = None

    def recommendation(self) -> dict[str, Any]:
        """The answer's ``recommendation``: what was chosen and why."""
        return {
            "chart_type": self.type,
            "x": self.x,
            "y": self.y,
            "group": self.group,
            "aggregation": self.func if self.type not in ("scatter", "histogram") else None,
            "time_bucket": self.unit,
            "reason": self.reason,
        }


def _bad(code: str, message: str, field: str, **details: Any) -> DatapilotError:
    return DatapilotError(400, code, message, field=field, **details)


def check_columns(req: ChartRequest, facts: DatasetFacts) -> None:
    """Every column the request names exists (400 ``unknown_column`` naming it)."""
    for where, column in req.named:
        if column not in facts.types:
            raise _bad(
                "unknown_column",
                f"{facts.name!r} has no column {column!r} (asked for as {where}); its columns"
                f" are: {', '.join(facts.types)}.",
                where,
                column=column,
            )


def plan_chart(req: ChartRequest, facts: DatasetFacts) -> ChartPlan:
    """The chart for ``req``: its own choices, checked, with the rest recommended.

    Raises
    ------
    DatapilotError
        400 naming the problem: an unknown column, a measure that is not numeric, a
        column of the wrong kind for the chart, too many categories for a pie.
    """
    check_columns(req, facts)
    x, y, group = req.x, req.y, req.group
    why: list[str] = []
    if req.columns:
        x, y, group, why = _roles(req.columns, facts, req.chart_type)
    elif x is None and y is None and group is None:
        x, y, group, why = _pick(facts, req.chart_type)
    kind = req.chart_type
    if kind is None:
        kind, reason = _recommend_type(x, y, group, facts)
        why.append(reason)
    elif x is None and y is not None and kind in ("histogram", "box"):
        x, y = (y, None) if kind == "histogram" else (None, y)
    plan = _checked(kind, x, y, group, req, facts)
    plan.reason = " ".join(why) if why else None
    return plan


def _first(columns, test) -> str | None:
    return next((c for c in columns if test(c)), None)


def _pick(facts: DatasetFacts, kind: str | None) -> tuple:
    """Columns for a chart of the whole dataset (nothing named)."""
    cols = list(facts.types)
    time = _first(cols, facts.is_time)
    measures = [c for c in cols if facts.is_measure(c)]
    category = _first(cols, facts.is_category)
    if kind in ("scatter",) and len(measures) >= 2:
        return (
            measures[0],
            measures[1],
            None,
            [
                f"{facts.label(measures[0])} and"
                f" {facts.label(measures[1])} are its first two"
                " measures."
            ],
        )
    if kind in ("histogram",) and measures:
        return measures[0], None, None, [f"{facts.label(measures[0])} is its first measure."]
    if kind in ("bar", "pie", "box") and category:
        y = measures[0] if measures else None
        return category, y, None, [f"{facts.label(category)} is its first category."]
    if kind == "heatmap":
        cats = [c for c in cols if facts.is_category(c)]
        if len(cats) >= 2:
            return cats[0], None, cats[1], ["Its first two categories."]
    if time and measures and kind in (None, "line", "area", "bar"):
        return (
            time,
            measures[0],
            None,
            [
                f"{facts.label(time)} is its time axis and {facts.label(measures[0])} its first"
                " measure."
            ],
        )
    if category and measures and kind is None:
        return (
            category,
            measures[0],
            None,
            [
                f"{facts.label(category)} is its first category and {facts.label(measures[0])} its"
                " first measure."
            ],
        )
    if len(measures) >= 2 and kind is None:
        return measures[0], measures[1], None, ["Its first two measures."]
    if measures and kind is None:
        return measures[0], None, None, [f"{facts.label(measures[0])} is its only measure."]
    if category:
        return category, None, None, [f"{facts.label(category)} is its first category."]
    if time:
        return time, None, None, [f"{facts.label(time)} is its time axis."]
    raise _bad(
        "nothing_to_chart",
        f"{facts.name!r} has no date, measure or category column that a chart could show.",
        "columns",
    )


def _roles(columns: list[str], facts: DatasetFacts, kind: str | None) -> tuple:
    """x, y and group of the named columns, from their types."""
    times = [c for c in columns if facts.is_time(c)]
    measures = [c for c in columns if facts.is_numeric(c) and c not in times]
    others = [c for c in columns if c not in times and c not in measures]
    if kind == "scatter" or (not times and not others and len(measures) >= 2):
        if len(measures) < 2:
            raise _bad("not_numeric", "A scatter plot needs two numeric columns.", "columns")
        return measures[0], measures[1], others[0] if others else None, []
    if kind == "histogram" or (len(columns) == 1 and measures):
        return measures[0] if measures else columns[0], None, None, []
    x = times[0] if times else (others[0] if others else None)
    rest = [c for c in others if c != x]
    if x is None and measures:
        x, measures = measures[0], measures[1:]
    y = measures[0] if measures else None
    group = rest[0] if rest else (measures[1] if len(measures) > 1 else None)
    return x, y, group, []


def _recommend_type(x, y, group, facts: DatasetFacts) -> tuple[str, str]:
    lx, ly = facts.label(x), facts.label(y)
    if x is not None and facts.is_time(x):
        what = f"{ly} over time" if y else "rows over time"
        return "line", f"A date along x and {'a measure' if y else 'a count'} give a line: {what}."
    if x is not None and y is not None and facts.is_numeric(x) and facts.is_numeric(y):
        return "scatter", f"Two measures give a scatter plot: {ly} against {lx}."
    if x is not None and y is None and group is not None and not facts.is_numeric(group):
        lg = facts.label(group)
        return "heatmap", f"Two categories give a heatmap of their rows: {lx} by {lg}."
    if x is not None and y is None and facts.is_numeric(x):
        return "histogram", f"One measure gives a histogram: how {lx} is distributed."
    if y is not None:
        return "bar", f"A category and a measure give bars: {ly} by {lx}."
    return "bar", f"One category gives bars of its rows: rows by {lx}."


def _require_numeric(facts: DatasetFacts, column: str | None, field: str, why: str) -> None:
    if column is not None and not facts.is_numeric(column):
        raise _bad(
            "not_numeric",
            f"{column!r} is {facts.types[column]}, not a number: {why}.",
            field,
            column=column,
            type=facts.types[column],
        )


def _checked(kind, x, y, group, req: ChartRequest, facts: DatasetFacts) -> ChartPlan:
    func = req.aggregation or ("sum" if y is not None else "count")
    if y is None and func not in ("count",):
        func = "count"
    if func not in ("count", "count_distinct"):
        _require_numeric(facts, y, "y", f"{func} needs numbers (count rows with aggregation count)")
    plan = ChartPlan(kind, x, y, group, func, limit=req.limit)
    if kind in ("line", "area"):
        if x is None or not (facts.is_time(x) or facts.is_numeric(x)):
            raise _bad(
                "wrong_column",
                f"A {kind} chart needs a date, time or number along x"
                + (f"; {x!r} is {facts.types[x]} (a bar chart shows categories)." if x else "."),
                "x",
            )
        if facts.is_time(x):
            plan.unit, plan.time = req.time_bucket or facts.unit_for(x), x
    elif kind == "bar":
        if x is None:
            raise _bad("wrong_column", "A bar chart needs a column along x.", "x")
        if facts.is_time(x):
            plan.unit, plan.time = req.time_bucket or facts.unit_for(x), x
        else:
            plan.limit = req.limit or DEFAULT_BARS
    elif kind == "scatter":
        _require_numeric(facts, x, "x", "a scatter plot puts numbers on both axes")
        _require_numeric(facts, y, "y", "a scatter plot puts numbers on both axes")
        if x is None or y is None:
            raise _bad("wrong_column", "A scatter plot needs x and y.", "y" if x else "x")
        plan.func = "none"
    elif kind == "histogram":
        if x is None:
            raise _bad("wrong_column", "A histogram needs a measure along x.", "x")
        _require_numeric(facts, x, "x", "a histogram counts numbers in bins")
        if group is not None:
            raise _bad("wrong_column", "A histogram shows one measure, without group.", "group")
        plan.y, plan.func, plan.bins = None, "count", req.bins or DEFAULT_BINS
    elif kind == "box":
        if y is None:
            raise _bad("wrong_column", "A box plot needs a measure as y.", "y")
        _require_numeric(facts, y, "y", "a box plot shows how numbers spread")
        plan.func, plan.limit = "quantiles", req.limit or DEFAULT_BARS
    elif kind == "heatmap":
        if x is None or group is None:
            raise _bad(
                "wrong_column",
                "A heatmap needs two columns for its axes: x and group (y is the measure of"
                " its cells).",
                "group" if x else "x",
            )
        for where, column in (("x", x), ("group", group)):
            if facts.is_numeric(column):
                raise _bad(
                    "wrong_column",
                    f"A heatmap's axes are categories or dates; {column!r} is a number.",
                    where,
                )
            if facts.is_time(column):
                if plan.time is not None:
                    raise _bad(
                        "wrong_column", "One axis of a heatmap may be a date, not both.", where
                    )
                plan.unit, plan.time = req.time_bucket or facts.unit_for(column), column
    elif kind == "pie":
        if x is None or facts.is_numeric(x) or facts.is_time(x):
            raise _bad("wrong_column", "A pie needs a category along x.", "x")
        if func not in ("sum", "count"):
            raise _bad(
                "wrong_aggregation",
                f"A pie shows parts of a whole: its slices are sums or counts, not {func}s.",
                "aggregation",
            )
        if group is not None:
            raise _bad("wrong_column", "A pie has no group.", "group")
        n = facts.distinct.get(x)
        if req.limit is None and (n is None or n > MAX_SLICES):
            raise _bad(
                "too_many_categories",
                f"{x!r} has {n if n is not None else 'too many'} values; a pie shows at most"
                f" {MAX_SLICES} slices. Set limit to group the rest as other, or use a bar"
                " chart.",
                "x",
                column=x,
                values=n,
                limit=MAX_SLICES,
            )
        if req.limit is not None and req.limit > MAX_SLICES - 1:
            raise _bad(
                "too_many_categories",
                f"A pie shows at most {MAX_SLICES} slices: a limit of {MAX_SLICES - 1} or less"
                " leaves room for other.",
                "limit",
            )
        plan.limit = req.limit
    if group is not None and kind in ("line", "area", "bar", "scatter"):
        if facts.is_numeric(group) and kind != "scatter":
            raise _bad(
                "wrong_column", f"group makes series of categories; {group!r} is a number.", "group"
            )
        if kind != "scatter":
            plan.limit = min(plan.limit or MAX_SERIES, MAX_SERIES) if kind != "bar" else plan.limit
    return plan
