"""An insight, how its numbers are written, and how strong findings become scores."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

#: every kind of insight, in the order a tie in score is broken
INSIGHT_TYPES = (
    "trend",
    "change_point",
    "seasonality",
    "correlation",
    "category_outlier",
    "outlier",
    "majority",
    "missing",
    "duplicates",
    "low_variance",
)


@dataclass
class Insight:
    """One finding, with the test that supports it and a chart that shows it.

    Parameters
    ----------
    type : str
        One of :data:`INSIGHT_TYPES`.
    columns : list of str
        The columns it is about (a measure, a pair, a category and a measure...).
    score : float
        Strength from 0 to 1, comparable across types (see each finder for its formula).
    test : str
        The statistical test or method, by name.
    sentence : str
        What was found, in plain language, quoting the numbers.
    chart : dict
        A chart spec (:mod:`datapilot_charts`) that shows it.
    statistic : dict, optional
        ``{"name", "value"}`` of the test statistic.
    p_value : float, optional
        The test's p-value (after the multiple-testing correction when one applies).
    effect_size : dict, optional
        ``{"name", "value"}``: how large the effect is (Cohen's d, Spearman's rho...).
    sample_rows : int
        Rows the finding was computed on.
    details : dict
        Anything else a reader may want (dates, values, row numbers).
    """

    type: str
    columns: list[str]
    score: float
    test: str
    sentence: str
    chart: dict[str, Any]
    statistic: dict[str, Any] | None = None
    p_value: float | None = None
    effect_size: dict[str, Any] | None = None
    sample_rows: int = 0
    details: dict[str, Any] = field(default_factory=dict)

    def to_json(self, total_rows: int) -> dict[str, Any]:
        """The API's model of the insight; ``total_rows`` is the dataset's row count."""
        return {
            "type": self.type,
            "columns": list(self.columns),
            "score": round(float(self.score), 3),
            "test": self.test,
            "statistic": _plain(self.statistic),
            "p_value": None if self.p_value is None else float(f"{self.p_value:.3g}"),
            "effect_size": _plain(self.effect_size),
            "sentence": self.sentence,
            "sample": {"rows": int(self.sample_rows), "of": int(total_rows)},
            "details": _plain(self.details),
            "chart": self.chart,
        }


def _plain(value: Any) -> Any:
    """JSON-ready: numpy numbers as Python numbers (6 significant digits), NaN as None."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        v = float(value)
        return None if not math.isfinite(v) else float(f"{v:.6g}")
    if isinstance(value, (pd.Timestamp, np.datetime64)):
        return iso(value)
    return value


def saturate(x: float, scale: float) -> float:
    """``1 - exp(-x / scale)``: 0 at 0, 0.63 at ``scale``, near 1 well beyond it."""
    return float(1 - math.exp(-max(0.0, x) / scale))


def num(x: float) -> str:
    """A number as the sentences write it: three significant digits, thousands separated.

    Integers up to a billion are written whole (``12,345``); others with three
    significant digits (``0.521``, ``1.23e-05``), never in a form a reader must decode.
    """
    x = float(x)
    if not math.isfinite(x):
        return str(x)
    if x == int(x) and abs(x) < 1e9:
        return f"{int(x):,}"
    if abs(x) >= 1000:
        return f"{x:,.0f}"
    if abs(x) >= 0.001:
        digits = max(0, 2 - int(math.floor(math.log10(abs(x)))))
        text = f"{x:,.{digits}f}"
        return text.rstrip("0").rstrip(".") if "." in text else text
    return f"{x:.2e}"


def signed(x: float) -> str:
    """A number with its sign: ``+12.3``, ``-4``."""
    return ("+" if x >= 0 else "") + num(x)


def pct(fraction: float) -> str:
    """A fraction as a percentage with up to one decimal (``12.5%``, ``0.4%``)."""
    value = 100 * float(fraction)
    if value >= 10 or value == int(value):
        return f"{value:.0f}%"
    return f"{value:.1f}%" if value >= 0.1 else f"{value:.2f}%"


def p_text(p: float | None) -> str:
    """A p-value as written in a sentence: ``p < 0.001`` or ``p = 0.004``."""
    if p is None:
        return ""
    return "p < 0.001" if p < 0.001 else f"p = {p:.2g}"


def iso(value: Any) -> str:
    """A date as ``YYYY-MM-DD``, a time as ``YYYY-MM-DDTHH:MM:SS``."""
    ts = pd.Timestamp(value)
    if ts.tzinfo is not None:
        ts = ts.tz_convert("UTC").tz_localize(None)
    if ts == ts.normalize():
        return ts.strftime("%Y-%m-%d")
    return ts.strftime("%Y-%m-%dT%H:%M:%S")
