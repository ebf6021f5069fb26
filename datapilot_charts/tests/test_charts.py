"""The chart spec: its palette, its check, and one spec drawn by both backends."""

from __future__ import annotations

import io

import pytest

import datapilot_charts as dc

AXES = {
    "x": {"field": "day", "label": "Day", "kind": "temporal"},
    "y": {"field": "amount", "label": "Mean of amount", "kind": "quantitative"},
}
NOMINAL = {
    "x": {"field": "region", "label": "Region", "kind": "nominal"},
    "y": {"field": "amount", "label": "Sum of amount", "kind": "quantitative"},
}
NUMBERS = {
    "x": {"field": "a", "label": "a", "kind": "quantitative"},
    "y": {"field": "b", "label": "b", "kind": "quantitative"},
}
DAYS = ["2024-01-01", "2024-01-02", "2024-01-03", "2024-01-04"]


def spec(kind: str, series: list, axes: dict | None = None, **more) -> dict:
    return {
        "spec_version": 1,
        "type": kind,
        "title": f"A {kind} chart",
        **(axes or {}),
        "series": series,
        "palette": dc.palette_model(),
        **more,
    }


SPECS = {
    "line": spec(
        "line",
        [{"name": "amount", "x": DAYS, "y": [1, 2, 5, 3]}],
        AXES,
        annotations=[
            {"kind": "vline", "x": "2024-01-03", "label": "level shift"},
            {"kind": "points", "x": ["2024-01-03"], "y": [5], "label": "outlier"},
            {"kind": "line", "x": DAYS[::3], "y": [1, 4], "label": "Sen's slope"},
            {"kind": "hline", "y": 2.5, "label": "mean"},
        ],
    ),
    "area": spec("area", [{"name": "amount", "x": DAYS, "y": [1, 2, 5, 3]}], AXES),
    "scatter": spec("scatter", [{"name": "b", "x": [1, 2, 3], "y": [3, 1, 2]}], NUMBERS),
    "bar": spec("bar", [{"name": "amount", "x": ["n", "s"], "y": [3, 1]}], NOMINAL),
    "grouped bar": spec(
        "bar",
        [
            {"name": "2024", "x": ["n", "s"], "y": [3, 1]},
            {"name": "2025", "x": ["n", "s"], "y": [2, 2]},
        ],
        NOMINAL,
    ),
    "histogram": spec("histogram", [{"name": "a", "edges": [0, 1, 2], "counts": [4, 1]}], NUMBERS),
    "box": spec(
        "box",
        [
            {"name": "n", "low": 0, "q1": 1, "median": 2, "q3": 3, "high": 5},
            {"name": "s", "low": 1, "q1": 2, "median": 2.5, "q3": 4, "high": 6},
        ],
        NOMINAL,
    ),
    "heatmap": spec(
        "heatmap",
        [{"name": "rows", "x": ["p", "p", "q"], "y": ["u", "v", "u"], "value": [1, 2, 3]}],
        {"x": {**NOMINAL["x"]}, "y": {"field": "kind", "label": "Kind", "kind": "nominal"}},
    ),
    "pie": spec("pie", [{"name": "rows", "labels": ["a", "b", "c"], "values": [5, 3, 2]}]),
}


def test_the_palette_is_okabe_ito_and_its_first_colours_read_on_both_themes():
    model = dc.palette_model()
    assert model["name"] == "Okabe-Ito" and model["sequential"] == "cividis"
    assert "#000000" not in model["colors"]  # black vanishes on a dark theme
    for color in model["colors"][:4]:
        assert dc.contrast_ratio(color, dc.LIGHT_BACKGROUND) >= 3, color
        assert dc.contrast_ratio(color, dc.DARK_BACKGROUND) >= 3, color
    for color in model["colors"][4:]:
        assert dc.contrast_ratio(color, dc.DARK_BACKGROUND) >= 3, color


@pytest.mark.parametrize(
    "bad, message",
    [
        ({"spec_version": 2}, "spec_version"),
        ({**SPECS["bar"], "type": "donut"}, "type must be one of"),
        ({**SPECS["bar"], "series": []}, "non-empty"),
        ({**SPECS["bar"], "series": [{"x": ["a"], "y": [1, 2]}]}, "differ in length"),
        ({**SPECS["histogram"], "series": [{"edges": [0, 1], "counts": [1, 2]}]}, "one more"),
        ({**SPECS["box"], "series": [{"low": 1, "q1": 2}]}, "has no median, q3, high"),
        ({**SPECS["line"], "annotations": [{"kind": "arrow"}]}, "annotations[0].kind"),
        ({**SPECS["line"], "x": {"kind": "time"}}, "x.kind"),
    ],
)
def test_a_spec_that_is_not_one_is_refused_naming_the_part(bad, message):
    with pytest.raises(dc.SpecError, match=message.replace("[", r"\[")):
        dc.check_spec(bad)


@pytest.mark.parametrize("name", SPECS)
@pytest.mark.parametrize("theme", ["light", "dark"])
def test_every_chart_type_draws_in_both_backends(name, theme):
    """The Bokeh item embeds with BokehJS; the PNG is the same HoloViews object drawn by
    matplotlib, the size asked for."""
    from PIL import Image

    item = dc.render_bokeh(SPECS[name], theme)
    assert set(item) >= {"target_id", "root_id", "doc"}
    references = str(item["doc"])
    assert SPECS[name]["title"] in references
    png = dc.render_png(SPECS[name], theme, width=400, height=240)
    assert png.startswith(b"\x89PNG\r\n\x1a\n")
    assert Image.open(io.BytesIO(png)).size == (400, 240)


def test_the_holoviews_object_carries_the_specs_labels_and_colours():
    import holoviews as hv

    obj = dc.to_holoviews(SPECS["line"])
    assert isinstance(obj, hv.Overlay)
    curve = obj.get(0)
    assert isinstance(curve, hv.Curve)
    assert curve.kdims[0].label == "Day" and curve.vdims[0].label == "Mean of amount"
    options = hv.Store.lookup_options("bokeh", curve, "style").kwargs
    assert options["color"] == dc.PALETTE[0]
    assert list(curve.dimension_values(1)) == [1, 2, 5, 3]
