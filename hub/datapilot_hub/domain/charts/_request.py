"""The body of ``POST /orgs/{org}/visualizations/generate``, checked field by field."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from datapilot_charts import CHART_TYPES

from ...errors import bad_request
from .._args import json_object, json_whole
from ..datasets import validate_name

#: how a measure is summed up per x value (``count`` counts rows, or values of ``y``)
AGGREGATIONS = ("sum", "mean", "median", "min", "max", "count", "count_distinct")
UNITS = ("hour", "day", "week", "month", "quarter", "year")
FIELDS = (
    "dataset",
    "version",
    "chart_type",
    "x",
    "y",
    "group",
    "columns",
    "aggregation",
    "time_bucket",
    "filter",
    "limit",
    "bins",
    "title",
)
#: categories a bar chart shows at most (the rest are summed up as "other")
MAX_BARS = 50
MAX_BINS = 200


@dataclass
class ChartRequest:
    """What the caller asked for; every field but ``dataset`` may be left to the
    recommendation.

    Parameters
    ----------
    dataset : str
        The dataset.
    version : int, optional
        A version; the current one by default.
    chart_type : str, optional
        One of :data:`datapilot_charts.CHART_TYPES`.
    x, y, group : str, optional
        The column along x, the measure on y, the column whose values make series.
    columns : list of str
        Columns to chart, roles left to the recommendation (instead of x, y, group).
    aggregation : str, optional
        How ``y`` is summed up per x value: one of :data:`AGGREGATIONS`.
    time_bucket : str, optional
        The bucket of a date or time x: one of :data:`UNITS`.
    filter : str, optional
        An expression rows must satisfy (the aggregation's language).
    limit : int, optional
        The most categories (bars, slices, series) before the rest become "other".
    bins : int, optional
        Bins of a histogram.
    title : str, optional
        A title instead of the one made from the columns.
    """

    dataset: str
    version: int | None = None
    chart_type: str | None = None
    x: str | None = None
    y: str | None = None
    group: str | None = None
    columns: list[str] = field(default_factory=list)
    aggregation: str | None = None
    time_bucket: str | None = None
    filter: str | None = None
    limit: int | None = None
    bins: int | None = None
    title: str | None = None

    @property
    def named(self) -> list[tuple[str, str]]:
        """(field, column) of every column the caller named."""
        out = [(f, getattr(self, f)) for f in ("x", "y", "group") if getattr(self, f)]
        return out + [(f"columns[{i}]", c) for i, c in enumerate(self.columns)]


def parse_chart_request(body: Any) -> ChartRequest:
    """Check a request body's shape (the columns are checked against the dataset later).

    Raises
    ------
    DatapilotError
        400 naming the field that is wrong.
    """
    body = json_object(body, FIELDS)
    if "dataset" not in body:
        raise bad_request("dataset", "Name the dataset to chart.")
    req = ChartRequest(dataset=validate_name(body["dataset"], "dataset"))
    req.version = json_whole(body.get("version"), "version", 1, None)
    req.chart_type = _choice(body.get("chart_type"), "chart_type", CHART_TYPES)
    for name in ("x", "y", "group"):
        setattr(req, name, _column(body.get(name), name))
    columns = body.get("columns", [])
    if not isinstance(columns, list) or not all(isinstance(c, str) and c for c in columns):
        raise bad_request("columns", "columns must be a list of column names.")
    if len(columns) > 3:
        raise bad_request("columns", "A chart shows at most 3 columns (x, y and a group).")
    if columns and (req.x or req.y or req.group):
        raise bad_request("columns", "Give either columns, or x, y and group; not both.")
    req.columns = list(dict.fromkeys(columns))
    req.aggregation = _choice(body.get("aggregation"), "aggregation", AGGREGATIONS)
    req.time_bucket = _choice(body.get("time_bucket"), "time_bucket", UNITS)
    text = body.get("filter")
    if text is not None and not isinstance(text, str):
        raise bad_request("filter", "filter must be an expression (a string).")
    req.filter = text
    req.limit = json_whole(body.get("limit"), "limit", 1, MAX_BARS)
    req.bins = json_whole(body.get("bins"), "bins", 2, MAX_BINS)
    title = body.get("title")
    if title is not None and (not isinstance(title, str) or len(title) > 200):
        raise bad_request("title", "title must be a string of at most 200 characters.")
    req.title = title
    return req


def _column(value: Any, name: str) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not value:
        raise bad_request(name, f"{name} must be a column name.")
    return value


def _choice(value: Any, name: str, choices: tuple[str, ...]) -> str | None:
    if value is None:
        return None
    if value not in choices:
        raise bad_request(name, f"{name} must be one of {', '.join(choices)}, not {value!r}.")
    return value
