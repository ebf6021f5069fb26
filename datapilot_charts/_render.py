"""A chart spec as a Bokeh JSON item (web pages) or as PNG bytes (thumbnails).

PNG comes from HoloViews' matplotlib backend drawing the same object as the Bokeh one,
not from Bokeh's ``export_png``: that needs a browser and its driver (Chromium and
chromedriver, some 400 MB, a browser process per picture, about a second each), in the
service's account on every deployment. matplotlib draws a thumbnail in a tenth of that
with no process of its own; the two pictures share elements, colours and labels (they
differ in fonts and in where ticks fall).

HoloViews keeps its current backend and options in process-wide state, so the service
renders from one thread at a time (:data:`RENDER_LOCK`).
"""

from __future__ import annotations

import io
import threading
import warnings
from typing import Any

from ._palette import BACKGROUND, FOREGROUND

#: held while a spec is turned into a picture (HoloViews' global state)
RENDER_LOCK = threading.Lock()


def render_bokeh(spec: dict[str, Any], theme: str = "light") -> dict[str, Any]:
    """The Bokeh JSON item of ``spec``, for ``Bokeh.embed.embed_item(item, "div-id")``.

    Parameters
    ----------
    spec : dict
        A chart spec.
    theme : str
        ``light`` or ``dark`` (Bokeh's ``dark_minimal`` theme).
    """
    import holoviews as hv
    from bokeh.embed import json_item
    from bokeh.themes import built_in_themes

    from ._holoviews import to_holoviews

    with RENDER_LOCK:
        model = hv.render(to_holoviews(spec, "bokeh", theme), backend="bokeh")
        bokeh_theme = built_in_themes["dark_minimal"] if theme == "dark" else None
        return json_item(model, theme=bokeh_theme)


def render_png(
    spec: dict[str, Any], theme: str = "light", width: int = 640, height: int = 360
) -> bytes:
    """``spec`` drawn as a PNG of ``width`` x ``height`` pixels.

    Parameters
    ----------
    spec : dict
        A chart spec.
    theme : str
        ``light`` or ``dark``.
    width, height : int
        Size in pixels.
    """
    import holoviews as hv

    # (no matplotlib.use: in a kernel it would replace the notebook's own backend; the
    # figure is drawn to bytes and closed, whatever the backend)
    import matplotlib.dates as mdates
    import matplotlib.pyplot as plt

    from ._holoviews import to_holoviews

    with RENDER_LOCK, warnings.catch_warnings():
        # HoloViews draws a Curve over dates with a "-" format and the dashes of a
        # dashed annotation as a linestyle; matplotlib warns that the second wins, as
        # meant
        warnings.filterwarnings("ignore", "linestyle is redundantly defined", UserWarning)
        fig = hv.render(to_holoviews(spec, "matplotlib", theme), backend="matplotlib")
        try:
            dpi = 100
            fig.set_size_inches(width / dpi, height / dpi)
            fig.patch.set_facecolor(BACKGROUND[theme])
            for ax in fig.axes:
                if (spec.get("x") or {}).get("kind") == "temporal":
                    # matplotlib's default date ticks print full timestamps that overlap
                    locator = mdates.AutoDateLocator()
                    ax.xaxis.set_major_locator(locator)
                    ax.xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator))
                ax.set_facecolor(BACKGROUND[theme])
                ax.title.set_color(FOREGROUND[theme])
                ax.xaxis.label.set_color(FOREGROUND[theme])
                ax.yaxis.label.set_color(FOREGROUND[theme])
                ax.tick_params(colors=FOREGROUND[theme])
                for spine in ax.spines.values():
                    spine.set_color(FOREGROUND[theme])
                legend = ax.get_legend()
                if legend is not None:
                    legend.get_frame().set_facecolor(BACKGROUND[theme])
                    for text in legend.get_texts():
                        text.set_color(FOREGROUND[theme])
            # the size asked for, with a legend beside the plot inside it (a heatmap's
            # colour bar is an axes tight_layout leaves where it is, and says so)
            with warnings.catch_warnings():
                warnings.filterwarnings("ignore", "This figure includes Axes", UserWarning)
                fig.tight_layout()
            out = io.BytesIO()
            fig.savefig(out, format="png", dpi=dpi, facecolor=BACKGROUND[theme])
            return out.getvalue()
        finally:
            plt.close(fig)
