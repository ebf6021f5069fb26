"""The body of an aggregation, checked field by field: every refusal names its field.

The shapes are checked here, without the dataset; :mod:`._plan` checks the names and
types against the version's schema.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Any

from ...errors import bad_request
from .._args import json_object, json_whole

UNITS = ("hour", "day", "week", "month", "quarter", "year")
FUNCTIONS = ("count", "count_distinct", "sum", "mean", "median", "min", "max")
FIELDS = (
    "group_by",
    "time_bucket",
    "derive",
    "metrics",
    "filter",
    "sort",
    "limit",
    "other",
    "version",
)
#: The most rows an answer holds; more groups are refused (400 ``too_many_groups``).
MAX_ROWS = 100_000
MAX_GROUP_BY = 10
MAX_METRICS = 100
MAX_DERIVED = 20
_PERCENTILE = re.compile(r"p(\d{1,2})(?:_(\d{1,3}))?")
_NAME = re.compile(r"[a-z][a-z0-9_]{0,62}")


@dataclass(frozen=True)
class Metric:
    """One aggregate: ``func`` of ``column`` (None for ``*``), named ``name`` in the answer.

    Parameters
    ----------
    column : str or None
        The column (or derived column); None for ``"*"`` (rows).
    func : str
        One of :data:`FUNCTIONS`, or ``"percentile"``.
    q : float, optional
        The percentile's fraction, 0 < q < 1.
    name : str
        The answer's column: ``count`` for rows, else ``<column>_<func>`` (``amount_p90``).
    field : str
        Where it was asked for, for errors (``metrics.amount``).
    """

    column: str | None
    func: str
    q: float | None
    name: str
    field: str


@dataclass(frozen=True)
class SortKey:
    """Order by an answer's column, descending when ``desc``."""

    column: str
    desc: bool
    field: str


@dataclass(frozen=True)
class TimeBucket:
    """Truncate ``column`` (a date or timestamp) to ``unit``; the answer's column keeps
    the column's name."""

    column: str
    unit: str


@dataclass
class Aggregation:
    """What to compute; made by :func:`parse_aggregation` from a request body.

    Parameters
    ----------
    group_by : list of str
        Columns (or derived columns) whose values make the groups.
    time_bucket : TimeBucket, optional
        A date or timestamp column truncated to hours, days, ISO weeks, months, quarters
        or years; the buckets come first in the answer.
    derive : dict of str to str
        New columns from expressions (``{"revenue": "amount * units"}``), usable in
        ``group_by``, ``metrics``, ``filter`` and ``time_bucket``.
    metrics : list of Metric
        The aggregates, in the order asked.
    filter : str, optional
        An expression (:mod:`datapilot_hub.domain.expressions`) rows must satisfy.
    sort : list of SortKey
        Explicit order; empty for the default.
    limit : int, optional
        The most rows, or with a time bucket and ``group_by`` the most series.
    other : bool
        Sum up what ``limit`` leaves out into one more group, marked ``other``.
    version : int, optional
        A version of the dataset; by default the current one.
    """

    group_by: list[str] = field(default_factory=list)
    time_bucket: TimeBucket | None = None
    derive: dict[str, str] = field(default_factory=dict)
    metrics: list[Metric] = field(default_factory=list)
    filter: str | None = None
    sort: list[SortKey] = field(default_factory=list)
    limit: int | None = None
    other: bool = False
    version: int | None = None

    @property
    def keys(self) -> list[str]:
        """The answer's key columns: the bucket first, then ``group_by``."""
        bucket = [self.time_bucket.column] if self.time_bucket else []
        return bucket + self.group_by


def parse_aggregation(body: Any) -> Aggregation:
    """Check an aggregation body's shape and return what it asks for.

    Parameters
    ----------
    body : dict
        The request's JSON object.

    Raises
    ------
    DatapilotError
        400 naming the field that is wrong.
    """
    body = json_object(body, FIELDS)
    agg = Aggregation(
        group_by=_group_by(body.get("group_by")),
        time_bucket=_time_bucket(body.get("time_bucket")),
        derive=_derive(body.get("derive")),
        metrics=_metrics(body.get("metrics")),
        filter=_filter(body.get("filter")),
        sort=_sort(body.get("sort")),
        limit=json_whole(body.get("limit"), "limit", 1, MAX_ROWS),
        other=_bool(body.get("other", False), "other"),
        version=json_whole(body.get("version"), "version", 1, None),
    )
    if agg.other and (not agg.group_by or agg.limit is None):
        raise bad_request(
            "other", "other needs group_by and a limit: it sums up the groups past the limit."
        )
    names = agg.keys + [m.name for m in agg.metrics]
    seen: set[str] = set()
    for name in names:
        if name in seen:
            raise bad_request(
                "metrics" if name in {m.name for m in agg.metrics} else "group_by",
                f"The answer would have two columns named {name!r}.",
            )
        seen.add(name)
    if "other" in seen and agg.other:
        raise bad_request("other", "A column named 'other' clashes with the 'other' marker.")
    return agg


def _names(value: Any, field_name: str) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise bad_request(field_name, f"{field_name} must be a list of column names.")
    return list(value)


def _group_by(value: Any) -> list[str]:
    names = _names(value, "group_by")
    if len(names) > MAX_GROUP_BY:
        raise bad_request("group_by", f"group_by takes at most {MAX_GROUP_BY} columns.")
    if len(set(names)) != len(names):
        raise bad_request("group_by", "group_by names a column twice.")
    return names


def _time_bucket(value: Any) -> TimeBucket | None:
    if value is None:
        return None
    if not isinstance(value, dict) or set(value) - {"column", "unit"}:
        raise bad_request(
            "time_bucket", 'time_bucket must be {"column": <date or timestamp>, "unit": ...}.'
        )
    column, unit = value.get("column"), value.get("unit")
    if not isinstance(column, str) or not column:
        raise bad_request("time_bucket.column", "time_bucket.column must be a column name.")
    if unit not in UNITS:
        raise bad_request(
            "time_bucket.unit", f"time_bucket.unit must be one of {', '.join(UNITS)}."
        )
    return TimeBucket(column, unit)


def _derive(value: Any) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, dict) or len(value) > MAX_DERIVED:
        raise bad_request(
            "derive", f"derive must be an object of at most {MAX_DERIVED} name: expression pairs."
        )
    for name, text in value.items():
        if not _NAME.fullmatch(name):
            raise bad_request(
                f"derive.{name}",
                f"{name!r} is not a valid column name: a lowercase letter, then lowercase"
                " letters, digits or underscores.",
            )
        if not isinstance(text, str):
            raise bad_request(f"derive.{name}", f"derive.{name} must be an expression (a string).")
    return dict(value)


def _metrics(value: Any) -> list[Metric]:
    if not isinstance(value, dict) or not value:
        raise bad_request(
            "metrics",
            'metrics must be an object of column: [functions], e.g. {"amount": ["sum"],'
            ' "*": ["count"]}.',
        )
    out: list[Metric] = []
    for column, funcs in value.items():
        where = f"metrics.{column}"
        if isinstance(funcs, (str, dict)):
            funcs = [funcs]
        if not isinstance(funcs, list) or not funcs:
            raise bad_request(where, f"{where} must be a list of functions.")
        for func in funcs:
            out.append(_metric(column, func, where))
    if len(out) > MAX_METRICS:
        raise bad_request("metrics", f"At most {MAX_METRICS} metrics.")
    return out


def _metric(column: str, func: Any, where: str) -> Metric:
    q: float | None = None
    if isinstance(func, dict):
        raw = func.get("percentile")
        if set(func) != {"percentile"} or not _fraction(raw):
            raise bad_request(
                where, f'{where}: a percentile is {{"percentile": q}} with 0 < q < 1.'
            )
        q = float(raw)
        func, label = "percentile", _percentile_label(q)
    elif isinstance(func, str) and (m := _PERCENTILE.fullmatch(func)):
        q = float(f"{m.group(1)}.{m.group(2) or 0}") / 100
        if not 0 < q < 1:
            raise bad_request(where, f"{where}: {func} is not a percentile between p1 and p99.")
        func, label = "percentile", _percentile_label(q)
    elif func in FUNCTIONS:
        label = func
    else:
        raise bad_request(
            where,
            f"{where}: {func!r} is not a metric; the metrics are {', '.join(FUNCTIONS)} and"
            ' percentiles (p50, p90, p99_9 or {"percentile": 0.9}).',
        )
    if column == "*":
        if func != "count":
            raise bad_request(where, f'"*" counts rows: only "count" applies to it, not {func!r}.')
        return Metric(None, "count", None, "count", where)
    return Metric(column, func, q, f"{column}_{label}", where)


def _fraction(value: Any) -> bool:
    return (
        isinstance(value, (int, float))
        and not isinstance(value, bool)
        and math.isfinite(value)
        and 0 < value < 1
    )


def _percentile_label(q: float) -> str:
    """``p90`` for 0.9, ``p99_9`` for 0.999."""
    text = f"{q * 100:.4f}".rstrip("0").rstrip(".")
    return "p" + text.replace(".", "_")


def _filter(value: Any) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise bad_request("filter", "filter must be an expression (a string).")
    return value


def _sort(value: Any) -> list[SortKey]:
    if value is None:
        return []
    if isinstance(value, (str, dict)):
        value = [value]
    if not isinstance(value, list):
        raise bad_request(
            "sort", 'sort must be a list of "column", "-column" or {"column", "desc"}.'
        )
    keys = []
    for i, item in enumerate(value):
        where = f"sort[{i}]"
        if isinstance(item, str) and item.lstrip("-"):
            keys.append(SortKey(item.lstrip("-"), item.startswith("-"), where))
        elif (
            isinstance(item, dict)
            and isinstance(item.get("column"), str)
            and set(item) <= {"column", "desc"}
            and isinstance(item.get("desc", False), bool)
        ):
            keys.append(SortKey(item["column"], item.get("desc", False), where))
        else:
            raise bad_request(
                where, f'{where} must be "column", "-column" or {{"column": ..., "desc": true}}.'
            )
    return keys


def _bool(value: Any, name: str) -> bool:
    if not isinstance(value, bool):
        raise bad_request(name, f"{name} must be true or false.")
    return value
