"""Building chart specs (:mod:`datapilot_charts`) from pandas data."""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

import numpy as np
import pandas as pd

from datapilot_charts import PALETTE, SPEC_VERSION, check_spec, palette_model


def axis(field: str | None, label: str, kind: str) -> dict[str, Any]:
    """An axis: the column it shows, its label, and ``temporal``, ``quantitative`` or
    ``nominal``."""
    return {"field": field, "label": label, "kind": kind}


def values(data: Iterable[Any]) -> list[Any]:
    """JSON values for a series: dates as ISO strings, NaN as None, numpy as Python."""
    out: list[Any] = []
    for v in data:
        if v is None or (isinstance(v, float) and math.isnan(v)):
            out.append(None)
        elif isinstance(v, (pd.Timestamp, np.datetime64)) or hasattr(v, "isoformat"):
            if v is pd.NaT or pd.isna(v):
                out.append(None)
                continue
            ts = pd.Timestamp(v)
            out.append(ts.strftime("%Y-%m-%d") if ts == ts.normalize() else ts.isoformat())
        elif isinstance(v, (np.integer,)):
            out.append(int(v))
        elif isinstance(v, (float, np.floating)):
            out.append(None if not math.isfinite(float(v)) else float(f"{float(v):.6g}"))
        elif isinstance(v, (bool, np.bool_)):
            out.append(bool(v))
        else:
            out.append(v if isinstance(v, (int, str)) else str(v))
    return out


def chart(
    kind: str,
    title: str,
    series: list[dict[str, Any]],
    x: dict[str, Any] | None = None,
    y: dict[str, Any] | None = None,
    annotations: list[dict[str, Any]] | None = None,
    **more: Any,
) -> dict[str, Any]:
    """A checked chart spec; series without a colour take the palette's in order."""
    for i, s in enumerate(series):
        if kind not in ("pie", "heatmap"):
            s.setdefault("color", PALETTE[i % len(PALETTE)])
    spec: dict[str, Any] = {"spec_version": SPEC_VERSION, "type": kind, "title": title}
    if x is not None:
        spec["x"] = x
    if y is not None:
        spec["y"] = y
    spec["series"] = series
    if annotations:
        spec["annotations"] = annotations
    spec["palette"] = palette_model()
    spec.update(more)
    return check_spec(spec)
