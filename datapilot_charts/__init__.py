"""The chart spec: one declarative description of a chart, and its one renderer.

The data service builds a spec (``POST /orgs/{org}/visualizations/generate``, and the
``chart`` of every insight); the same spec becomes the same HoloViews object wherever it
is drawn: in a notebook (``dp.chart``), as a Bokeh JSON item a web page embeds with
BokehJS, and as a PNG thumbnail (HoloViews' matplotlib backend). Nothing here imports
HoloViews, Bokeh or matplotlib until a spec is rendered, so the kernel and the service
import this package cheaply.

A spec is plain JSON::

    {
      "spec_version": 1,
      "type": "line",                     # one of CHART_TYPES
      "title": "Mean of amount by day",
      "x": {"field": "day", "label": "Day", "kind": "temporal"},
      "y": {"field": "amount", "label": "Mean of amount", "kind": "quantitative"},
      "series": [{"name": "amount", "color": "#0072B2", "x": [...], "y": [...]}],
      "annotations": [{"kind": "vline", "x": "2024-05-01", "label": "level shift"}],
      "palette": {"name": "Okabe-Ito", "colors": [...], "sequential": "cividis"},
    }

What each type's series hold is in :data:`SERIES_FIELDS`.
"""

from ._palette import (
    DARK_BACKGROUND,
    LIGHT_BACKGROUND,
    PALETTE,
    PALETTE_NAME,
    SEQUENTIAL,
    contrast_ratio,
    palette_model,
)
from ._spec import (
    ANNOTATION_KINDS,
    AXIS_KINDS,
    CHART_TYPES,
    SERIES_FIELDS,
    SPEC_VERSION,
    SpecError,
    check_spec,
)

__all__ = [
    "ANNOTATION_KINDS",
    "AXIS_KINDS",
    "CHART_TYPES",
    "DARK_BACKGROUND",
    "LIGHT_BACKGROUND",
    "PALETTE",
    "PALETTE_NAME",
    "SEQUENTIAL",
    "SERIES_FIELDS",
    "SPEC_VERSION",
    "SpecError",
    "check_spec",
    "contrast_ratio",
    "palette_model",
    "to_holoviews",
    "render_bokeh",
    "render_png",
]


def to_holoviews(spec, backend="bokeh"):
    """The HoloViews object of a spec (see :func:`datapilot_charts._holoviews.to_holoviews`)."""
    from ._holoviews import to_holoviews as _to_holoviews

    return _to_holoviews(spec, backend)


def render_bokeh(spec, theme="light"):
    """A spec as a Bokeh JSON item (see :func:`datapilot_charts._render.render_bokeh`)."""
    from ._render import render_bokeh as _render_bokeh

    return _render_bokeh(spec, theme)


def render_png(spec, theme="light", width=640, height=360):
    """A spec as PNG bytes (see :func:`datapilot_charts._render.render_png`)."""
    from ._render import render_png as _render_png

    return _render_png(spec, theme, width, height)
