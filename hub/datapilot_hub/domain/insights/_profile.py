"""What each column is for: the time axis, the measures, the categories; and the series.

The finders look at a table through a :class:`Profile`: which column is the time axis,
which numeric columns are measures (identifiers are not), which columns are categories,
and each measure as a regular time series (its mean per time bucket).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import numpy as np
import pandas as pd

#: a column with more distinct values is not a category
MAX_CATEGORIES = 50
#: a time series has at most this many buckets: a finer grain is coarsened
MAX_POINTS = 1500
#: time bucket -> (pandas period alias, name of one bucket, adjective)
BUCKETS = {
    "hour": ("h", "hour", "hourly"),
    "day": ("D", "day", "daily"),
    "week": ("W", "week", "weekly"),
    "month": ("M", "month", "monthly"),
    "quarter": ("Q", "quarter", "quarterly"),
    "year": ("Y", "year", "yearly"),
}
_STEPS = list(BUCKETS)
_NUMERIC = ("integer", "number")
_TEMPORAL = ("date", "datetime")


@dataclass
class Series:
    """A measure as a regular time series: its mean per bucket.

    Parameters
    ----------
    values : pandas.Series
        Mean per bucket, indexed by the bucket's start (a regular index: an empty bucket
        is NaN).
    unit : str
        The bucket, a key of :data:`BUCKETS`.
    counts : pandas.Series
        Rows per bucket.
    """

    values: pd.Series
    unit: str
    counts: pd.Series

    @property
    def adjective(self) -> str:
        """``daily``, ``monthly``..."""
        return BUCKETS[self.unit][2]

    @property
    def bucket(self) -> str:
        """``day``, ``month``..."""
        return BUCKETS[self.unit][1]


@dataclass
class Profile:
    """A table and the roles of its columns.

    Parameters
    ----------
    df : pandas.DataFrame
        The rows looked at (a sample of the dataset, or all of it), indexed by their
        0-based row number in the dataset.
    types : dict
        Column -> Datapilot type (``integer``, ``number``, ``boolean``, ``date``,
        ``datetime``, ``string``).
    total_rows : int
        Rows of the whole dataset.
    nulls : dict, optional
        Column -> exact count of missing values in the whole dataset (the catalog's
        statistics); counted in ``df`` when not given.
    labels : dict, optional
        Column -> the header as uploaded, for sentences and axes.
    duplicates : dict, optional
        ``{"rows", "checked"}``: rows repeating an earlier row, among ``checked`` rows
        (counted over the whole dataset by the caller); counted in ``df`` when not given.
    """

    df: pd.DataFrame
    types: dict[str, str]
    total_rows: int
    nulls: dict[str, int] | None = None
    labels: dict[str, str] = field(default_factory=dict)
    duplicates: dict[str, int] | None = None

    def __post_init__(self) -> None:
        # an infinite number is no measurement: the tests see it as missing
        floats = [c for c in self.df.columns if pd.api.types.is_float_dtype(self.df[c].dtype)]
        if floats and np.isinf(self.df[floats].to_numpy()).any():
            self.df = self.df.copy()
            self.df[floats] = self.df[floats].replace([np.inf, -np.inf], np.nan)

    @property
    def rows(self) -> int:
        """Rows looked at."""
        return len(self.df)

    @property
    def sampled(self) -> bool:
        """Whether the rows are a sample of the dataset."""
        return self.rows < self.total_rows

    def label(self, column: str) -> str:
        """How a column is named in sentences and on axes."""
        return self.labels.get(column) or column

    def sample_note(self, rows: int | None = None) -> str:
        """`` in a random sample of 200,000 of 10,000,000 rows`` when sampled, else ``""``."""
        from ._model import num

        if not self.sampled:
            return ""
        return f" (in a random sample of {num(rows or self.rows)} of {num(self.total_rows)} rows)"

    @cached_property
    def distinct(self) -> dict[str, int]:
        """Distinct non-missing values per column, in the rows looked at."""
        return {c: int(self.df[c].nunique(dropna=True)) for c in self.df.columns}

    @cached_property
    def time(self) -> str | None:
        """The time axis: the date or time column with the most distinct values."""
        candidates = [c for c in self.df.columns if self.types.get(c) in _TEMPORAL]
        candidates = [c for c in candidates if self.distinct[c] >= 3]
        if not candidates:
            return None
        return max(candidates, key=lambda c: (self.distinct[c], -list(self.df.columns).index(c)))

    def is_identifier(self, column: str) -> bool:
        """An integer column of (nearly) all distinct values that never falls along the
        rows, or named like an identifier: a row number, not a measure."""
        if self.types.get(column) != "integer":
            return False
        values = self.df[column].dropna()
        if len(values) < 3 or self.distinct[column] < 0.9 * len(values):
            return False
        name = column.lower()
        named = name == "id" or name.endswith(("_id", "_no", "_number", "_key", "_code"))
        return named or values.is_monotonic_increasing

    @cached_property
    def measures(self) -> list[str]:
        """Numeric columns that measure something: not identifiers, 3 or more values."""
        return [
            c
            for c in self.df.columns
            if self.types.get(c) in _NUMERIC and not self.is_identifier(c) and self.distinct[c] >= 3
        ]

    @cached_property
    def categories(self) -> list[str]:
        """Text and yes/no columns of 2 to :data:`MAX_CATEGORIES` distinct values."""
        return [
            c
            for c in self.df.columns
            if self.types.get(c) in ("string", "boolean")
            and 2 <= self.distinct[c] <= MAX_CATEGORIES
        ]

    def null_count(self, column: str) -> tuple[int, int]:
        """(missing values, rows) of a column: exact for the dataset when known."""
        if self.nulls is not None and column in self.nulls:
            return int(self.nulls[column]), self.total_rows
        return int(self.df[column].isna().sum()), self.rows

    @cached_property
    def unit(self) -> str | None:
        """The time bucket of the series: the data's own grain, coarsened to fit
        :data:`MAX_POINTS`."""
        if self.time is None:
            return None
        times = pd.to_datetime(self.df[self.time].dropna())
        distinct = np.sort(times.unique())
        if len(distinct) < 3:
            return None
        step = pd.Series(np.diff(distinct)).median()
        if step < pd.Timedelta(hours=1):
            unit = "hour"
        elif step < pd.Timedelta(days=1):
            unit = "hour"
        elif step < pd.Timedelta(days=7):
            unit = "day"
        elif step < pd.Timedelta(days=28):
            unit = "week"
        elif step < pd.Timedelta(days=90):
            unit = "month"
        elif step < pd.Timedelta(days=365):
            unit = "quarter"
        else:
            unit = "year"
        span = pd.Timestamp(distinct[-1]) - pd.Timestamp(distinct[0])
        while unit != "year" and _buckets(span, unit) > MAX_POINTS:
            unit = _STEPS[_STEPS.index(unit) + 1]
        return unit

    @cached_property
    def _periods(self) -> pd.Series:
        times = pd.to_datetime(self.df[self.time])
        if times.dt.tz is not None:
            times = times.dt.tz_convert("UTC").dt.tz_localize(None)
        return times.dt.to_period(BUCKETS[self.unit][0])

    @cached_property
    def _series(self) -> dict[str | None, Series | None]:
        return {}

    def series(self, measure: str | None) -> Series | None:
        """A measure's mean per time bucket (``None``: rows per bucket); None without a
        time axis. Computed once per measure."""
        if self.unit is None:
            return None
        if measure not in self._series:
            self._series[measure] = self._make_series(measure)
        return self._series[measure]

    def _make_series(self, measure: str | None) -> Series | None:
        periods = self._periods
        if measure is None:
            counts = periods.value_counts()
            full = pd.period_range(counts.index.min(), counts.index.max(), freq=counts.index.freq)
            counts = counts.reindex(full, fill_value=0).astype(float)
            return Series(_starts(counts), self.unit, _starts(counts))
        frame = pd.DataFrame({"p": periods, "v": self.df[measure].astype(float)}).dropna()
        if frame.empty:
            return None
        grouped = frame.groupby("p")["v"]
        means, counts = grouped.mean(), grouped.size()
        full = pd.period_range(means.index.min(), means.index.max(), freq=means.index.freq)
        return Series(
            _starts(means.reindex(full)), self.unit, _starts(counts.reindex(full, fill_value=0))
        )


def _starts(s: pd.Series) -> pd.Series:
    out = s.copy()
    out.index = s.index.to_timestamp(how="start")
    return out


def _buckets(span: pd.Timedelta, unit: str) -> float:
    days = span / pd.Timedelta(days=1)
    per = {"hour": 1 / 24, "day": 1, "week": 7, "month": 30.4, "quarter": 91.3, "year": 365.2}
    return days / per[unit]


def frame_types(df: pd.DataFrame) -> dict[str, Any]:
    """Datapilot types of a DataFrame's columns, from their dtypes (for callers without
    the catalog's schema, such as tests and benchmarks)."""
    out = {}
    for c in df.columns:
        dtype = df[c].dtype
        if pd.api.types.is_bool_dtype(dtype):
            out[c] = "boolean"
        elif pd.api.types.is_integer_dtype(dtype):
            out[c] = "integer"
        elif pd.api.types.is_float_dtype(dtype):
            out[c] = "number"
        elif pd.api.types.is_datetime64_any_dtype(dtype):
            out[c] = "datetime"
        else:
            out[c] = "string"
    return out
