"""What a chart spec holds, and a check that a spec is one."""

from __future__ import annotations

from typing import Any

SPEC_VERSION = 1

CHART_TYPES = ("bar", "line", "area", "scatter", "histogram", "box", "heatmap", "pie")

#: what an axis shows: dates and times, numbers, or categories
AXIS_KINDS = ("temporal", "quantitative", "nominal")

#: chart type -> the lists every series of that type holds (all of one length per series,
#: but for a histogram's ``edges``, one longer than its ``counts``); a bar or pie series
#: may also hold ``colors``, one per bar or slice
SERIES_FIELDS: dict[str, tuple[str, ...]] = {
    "bar": ("x", "y"),
    "line": ("x", "y"),
    "area": ("x", "y"),
    "scatter": ("x", "y"),
    "histogram": ("edges", "counts"),
    # one series per box: five numbers, not lists
    "box": (),
    # one series, long form: a cell per (x, y) with its value
    "heatmap": ("x", "y", "value"),
    "pie": ("labels", "values"),
}
BOX_FIELDS = ("low", "q1", "median", "q3", "high")

#: what an annotation marks: a date or value on x (vline), a value on y (hline), some
#: points, or a line through points (a fitted slope, segment means)
ANNOTATION_KINDS = ("vline", "hline", "points", "line")


class SpecError(ValueError):
    """A chart spec that is not one: says which part is wrong."""


def check_spec(spec: Any) -> dict[str, Any]:
    """Return ``spec`` when it is a chart spec this package renders, else raise.

    Parameters
    ----------
    spec : dict
        A chart spec (see :mod:`datapilot_charts`).

    Raises
    ------
    SpecError
        Naming the first part that is wrong.
    """
    if not isinstance(spec, dict):
        raise SpecError("a chart spec is a JSON object")
    if spec.get("spec_version") != SPEC_VERSION:
        raise SpecError(f"spec_version must be {SPEC_VERSION}")
    kind = spec.get("type")
    if kind not in CHART_TYPES:
        raise SpecError(f"type must be one of {', '.join(CHART_TYPES)}, not {kind!r}")
    for axis in ("x", "y"):
        model = spec.get(axis)
        if model is not None and model.get("kind") not in AXIS_KINDS:
            raise SpecError(f"{axis}.kind must be one of {', '.join(AXIS_KINDS)}")
    series = spec.get("series")
    if not isinstance(series, list) or not series:
        raise SpecError("series must be a non-empty list")
    for i, s in enumerate(series):
        if not isinstance(s, dict):
            raise SpecError(f"series[{i}] must be an object")
        fields = BOX_FIELDS if kind == "box" else SERIES_FIELDS[kind]
        missing = [f for f in fields if f not in s]
        if missing:
            raise SpecError(f"series[{i}] of a {kind} chart has no {', '.join(missing)}")
        if kind == "box":
            continue
        lengths = {f: len(s[f]) for f in fields}
        if kind == "histogram":
            if lengths["edges"] != lengths["counts"] + 1:
                raise SpecError(f"series[{i}]: a histogram has one more edge than counts")
        elif len(set(lengths.values())) > 1:
            raise SpecError(f"series[{i}]: {', '.join(fields)} differ in length")
    for i, a in enumerate(spec.get("annotations") or []):
        if a.get("kind") not in ANNOTATION_KINDS:
            raise SpecError(f"annotations[{i}].kind must be one of {', '.join(ANNOTATION_KINDS)}")
    return spec
