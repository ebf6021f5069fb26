"""A chart spec as a HoloViews object: the one renderer behind every picture of a spec.

The Bokeh backend draws it in notebooks and in web pages (a JSON item), the matplotlib
backend as PNG thumbnails; both get the same elements, colours and labels from here, and
differ only by the options each backend names differently (:func:`_style`).
"""

from __future__ import annotations

import math
from typing import Any

import holoviews as hv
import numpy as np
import pandas as pd

from ._palette import BACKGROUND, FOREGROUND, PALETTE, SEQUENTIAL
from ._spec import check_spec

BACKENDS = ("bokeh", "matplotlib")
WIDTH, HEIGHT = 720, 380
# the annotations' colours: a neutral grey that keeps 3:1 on both themes' backgrounds
# would be too faint on white, so marks use the palette's second colour and rules grey
_RULE = "#888888"


def _load(backend: str) -> None:
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {', '.join(BACKENDS)}")
    if backend not in hv.Store.loaded_backends():
        # (in a notebook hv.extension has usually run already; this loads quietly)
        hv.extension(backend, logo=False)


# option names of the Bokeh backend -> the matplotlib backend's
_MATPLOTLIB_NAMES = {
    "line_color": "edgecolor",
    "line_width": "linewidth",
    "text_color": "color",
    "fill_alpha": "alpha",
    "text_align": "horizontalalignment",
    "text_baseline": "verticalalignment",
}
_MATPLOTLIB_DASHES = {"dashed": "--", "dotted": ":"}


def _style(backend: str, **options: Any) -> dict[str, Any]:
    """Options in the Bokeh backend's names, translated for matplotlib when drawn there."""
    if backend == "bokeh":
        return options
    out: dict[str, Any] = {}
    for key, value in options.items():
        if key == "size":
            out["s"] = value * value  # (an area in points², not a diameter)
        elif key == "line_dash":
            out["linestyle"] = _MATPLOTLIB_DASHES[value]
        elif key == "text_baseline":
            out["verticalalignment"] = {"middle": "center"}.get(value, value)
        else:
            out[_MATPLOTLIB_NAMES.get(key, key)] = value
    return out


def _values(axis: dict[str, Any] | None, values: list[Any]) -> Any:
    if axis is not None and axis.get("kind") == "temporal":
        return pd.to_datetime(pd.Series(values), format="ISO8601").to_numpy()
    return np.asarray(values, dtype=object if axis and axis.get("kind") == "nominal" else None)


def _dims(spec: dict[str, Any]) -> tuple[hv.Dimension, hv.Dimension]:
    x = spec.get("x") or {}
    y = spec.get("y") or {}
    return (
        hv.Dimension("x", label=x.get("label") or x.get("field") or "x"),
        hv.Dimension("y", label=y.get("label") or y.get("field") or "y"),
    )


def to_holoviews(spec: dict[str, Any], backend: str = "bokeh", theme: str = "light") -> Any:
    """The HoloViews object that draws ``spec``.

    Parameters
    ----------
    spec : dict
        A chart spec (checked with :func:`datapilot_charts.check_spec`).
    backend : str
        ``bokeh`` (notebooks, web pages) or ``matplotlib`` (PNG).
    theme : str
        ``light`` or ``dark``: the colour of outlines and labels drawn on the chart.
    """
    check_spec(spec)
    _load(backend)
    if theme not in FOREGROUND:
        raise ValueError("theme must be light or dark")
    kind = spec["type"]
    xdim, ydim = _dims(spec)
    layers = _DRAW[kind](spec, backend, theme, xdim, ydim)
    layers.extend(_annotations(spec, backend, theme, xdim, ydim))
    overlay = hv.Overlay(layers) if len(layers) > 1 else layers[0]
    opts: dict[str, Any] = {"title": spec.get("title", "")}
    if kind not in ("pie",):
        opts.update(xlabel=xdim.label, ylabel=ydim.label)
    if backend == "bokeh":
        opts.update(width=WIDTH, height=HEIGHT, toolbar="above")
        if kind not in ("pie", "box", "heatmap"):
            opts["show_legend"] = len(spec["series"]) > 1 or bool(spec.get("annotations"))
    else:
        opts.update(fig_inches=(WIDTH / 100, HEIGHT / 100), aspect=WIDTH / HEIGHT)
    if kind == "pie":
        opts.update(xaxis=None, yaxis=None)
        if backend == "bokeh":
            # a square plot: the wedges' ranges are square (see _pie)
            opts.update(width=HEIGHT, height=HEIGHT)
        else:
            opts["aspect"] = "equal"
    if kind in ("bar", "box", "heatmap") and _crowded(spec):
        opts["xrotation"] = 30
    if isinstance(overlay, hv.Overlay):
        # beside the plot in a picture, where it hides no data; over it in a page, where
        # it can be hidden by a click
        opts["legend_position"] = "top_left" if backend == "bokeh" else "right"
    return overlay.opts(backend=backend, **opts)


def _crowded(spec: dict[str, Any]) -> bool:
    """Whether the categories' names along x would run into each other."""
    s = spec["series"][0]
    names = [str(v) for v in s.get("x", [])] or [str(b.get("name", "")) for b in spec["series"]]
    return len(set(names)) > 4 and sum(len(n) for n in set(names)) > 40


def _color(series: dict[str, Any], i: int) -> str:
    return series.get("color") or PALETTE[i % len(PALETTE)]


def _lines(spec, backend, theme, xdim, ydim) -> list[Any]:
    element = {"line": hv.Curve, "area": hv.Area, "scatter": hv.Scatter}[spec["type"]]
    out = []
    for i, s in enumerate(spec["series"]):
        data = (_values(spec.get("x"), s["x"]), np.asarray(s["y"], dtype=float))
        style: dict[str, Any] = {"color": _color(s, i)}
        if spec["type"] == "area":
            style.update(fill_alpha=0.45, line_color=_color(s, i))
        elif spec["type"] == "scatter":
            style.update(size=5, alpha=0.7)
        else:
            style["line_width"] = 2
        out.append(
            element(data, xdim, ydim, label=str(s.get("name", ""))).opts(
                backend=backend, **_style(backend, **style)
            )
        )
    return out


def _bars(spec, backend, theme, xdim, ydim) -> list[Any]:
    fg = FOREGROUND[theme]
    series = spec["series"]
    if len(series) == 1:
        s = series[0]
        data = pd.DataFrame({"x": [str(v) for v in s["x"]], "y": s["y"]})
        color: Any = _color(s, 0)
        if s.get("colors"):
            # one colour per bar: a highlighted category
            color = hv.dim("x").categorize(dict(zip(data["x"], s["colors"], strict=True)))
        bars = hv.Bars(data, xdim, ydim).opts(
            backend=backend, **_style(backend, color=color, line_color=fg)
        )
        return [bars]
    rows = [
        (str(x), str(s.get("name", i)), y)
        for i, s in enumerate(series)
        for x, y in zip(s["x"], s["y"], strict=True)
    ]
    group = hv.Dimension("series", label="series")
    colors = {str(s.get("name", i)): _color(s, i) for i, s in enumerate(series)}
    data = pd.DataFrame(rows, columns=["x", "series", "y"])
    bars = hv.Bars(data, [xdim, group], ydim).opts(
        backend=backend, **_style(backend, color=hv.dim("series").categorize(colors), line_color=fg)
    )
    if backend == "bokeh":
        bars = bars.opts(backend=backend, multi_level=False, show_legend=True)
    return [bars]


def _histograms(spec, backend, theme, xdim, ydim) -> list[Any]:
    fg = FOREGROUND[theme]
    out = []
    alpha = 1.0 if len(spec["series"]) == 1 else 0.55
    for i, s in enumerate(spec["series"]):
        edges = np.asarray(s["edges"], dtype=float)
        counts = np.asarray(s["counts"], dtype=float)
        out.append(
            hv.Histogram(
                (edges, counts), kdims=[xdim], vdims=[ydim], label=str(s.get("name", ""))
            ).opts(
                backend=backend, **_style(backend, color=_color(s, i), line_color=fg, alpha=alpha)
            )
        )
    return out


def _boxes(spec, backend, theme, xdim, ydim) -> list[Any]:
    fg = FOREGROUND[theme]
    # drawn from the five numbers of each box (the data service computes them over all
    # rows), not from raw values as hv.BoxWhisker would need
    boxes, whiskers, medians, ticks = [], [], [], []
    for i, s in enumerate(spec["series"]):
        boxes.append((i - 0.3, s["q1"], i + 0.3, s["q3"], _color(s, i)))
        whiskers += [(i, s["low"], i, s["q1"]), (i, s["q3"], i, s["high"])]
        whiskers += [(i - 0.12, s["low"], i + 0.12, s["low"])]
        whiskers += [(i - 0.12, s["high"], i + 0.12, s["high"])]
        medians.append((i - 0.3, s["median"], i + 0.3, s["median"]))
        ticks.append((i, str(s.get("name", i))))
    x0 = hv.Dimension("x0", label=xdim.label)
    y0 = hv.Dimension("y0", label=ydim.label)
    kdims = [x0, y0, "x1", "y1"]
    rects = hv.Rectangles(boxes, kdims, vdims=["color"]).opts(
        backend=backend, **_style(backend, color="color", line_color=fg)
    )
    lines = hv.Segments(whiskers, kdims).opts(
        backend=backend, **_style(backend, color=fg, line_width=1.5)
    )
    mids = hv.Segments(medians, kdims).opts(
        backend=backend, **_style(backend, color=fg, line_width=3)
    )
    limits = (-0.7, len(spec["series"]) - 0.3)
    return [
        lines.opts(backend=backend, xticks=ticks, xlim=limits),
        rects.opts(backend=backend, xticks=ticks, xlim=limits),
        mids.opts(backend=backend, xticks=ticks, xlim=limits),
    ]


def _heatmap(spec, backend, theme, xdim, ydim) -> list[Any]:
    s = spec["series"][0]
    value = hv.Dimension("value", label=s.get("name") or "value")
    data = pd.DataFrame(
        {
            "x": [str(v) for v in s["x"]],
            "y": [str(v) for v in s["y"]],
            "value": np.asarray(s["value"], dtype=float),
        }
    )
    heat = hv.HeatMap(data, [xdim, ydim], value).opts(
        backend=backend, cmap=SEQUENTIAL, colorbar=True
    )
    if backend == "bokeh":
        heat = heat.opts(backend=backend, tools=["hover"])
    return [heat]


def _pie(spec, backend, theme, xdim, ydim) -> list[Any]:
    fg = FOREGROUND[theme]
    # HoloViews has no pie: wedges are polygons, so both backends draw the same shapes
    s = spec["series"][0]
    values = np.asarray(s["values"], dtype=float)
    total = values.sum() or 1.0
    colors = s.get("colors") or [PALETTE[i % len(PALETTE)] for i in range(len(values))]
    wedges, labels = [], {"left": [], "right": []}
    start = math.pi / 2
    for label, value, color in zip(s["labels"], values, colors, strict=True):
        sweep = 2 * math.pi * value / total
        steps = max(2, int(64 * value / total))
        angles = np.linspace(start, start - sweep, steps)
        xs = np.concatenate([[0.0], np.cos(angles), [0.0]])
        ys = np.concatenate([[0.0], np.sin(angles), [0.0]])
        wedges.append({"x": xs, "y": ys, "color": color, "label": str(label)})
        middle = start - sweep / 2
        x, y = 1.12 * math.cos(middle), 1.12 * math.sin(middle)
        labels["right" if x >= 0 else "left"].append((x, y, f"{label} {100 * value / total:.0f}%"))
        start -= sweep
    polys = hv.Polygons(wedges, vdims=["color", "label"]).opts(
        backend=backend, **_style(backend, color="color", line_color=BACKGROUND[theme])
    )
    limits = dict(xlim=(-1.8, 1.8), ylim=(-1.8, 1.8))
    out = [polys.opts(backend=backend, **limits)]
    for side, points in labels.items():
        if not points:
            continue
        align = "left" if side == "right" else "right"
        text = hv.Labels(points, ["x", "y"], "text").opts(
            backend=backend,
            **_style(backend, text_color=fg, text_align=align, text_baseline="middle"),
            **limits,
        )
        out.append(text)
    return out


_DRAW = {
    "line": _lines,
    "area": _lines,
    "scatter": _lines,
    "bar": _bars,
    "histogram": _histograms,
    "box": _boxes,
    "heatmap": _heatmap,
    "pie": _pie,
}


def _annotations(spec, backend, theme, xdim, ydim) -> list[Any]:
    out = []
    x_axis = spec.get("x")
    for a in spec.get("annotations") or []:
        label = str(a.get("label", ""))
        color = a.get("color") or PALETTE[1]
        if a["kind"] == "vline":
            x = _values(x_axis, [a["x"]])[0]
            out.append(
                hv.VLine(x, label=label).opts(
                    backend=backend,
                    **_style(backend, color=_RULE, line_dash="dashed", line_width=2),
                )
            )
        elif a["kind"] == "hline":
            out.append(
                hv.HLine(float(a["y"]), label=label).opts(
                    backend=backend,
                    **_style(backend, color=_RULE, line_dash="dashed", line_width=2),
                )
            )
        elif a["kind"] == "points":
            data = (_values(x_axis, a["x"]), np.asarray(a["y"], dtype=float))
            out.append(
                hv.Scatter(data, xdim, ydim, label=label).opts(
                    backend=backend, **_style(backend, color=color, size=9)
                )
            )
        else:
            data = (_values(x_axis, a["x"]), np.asarray(a["y"], dtype=float))
            out.append(
                hv.Curve(data, xdim, ydim, label=label).opts(
                    backend=backend,
                    **_style(backend, color=color, line_dash="dashed", line_width=2),
                )
            )
    return out
