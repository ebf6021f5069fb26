"""The colours of every chart: Okabe-Ito, ordered for light and dark themes alike.

Okabe and Ito's eight colours stay distinct under the common colour-vision deficiencies
(protanopia, deuteranopia, tritanopia). Black is left out: it vanishes on a dark theme.
The order puts first the four colours whose contrast is at least 3:1 (what WCAG 2.1
asks of graphical objects, 1.4.11) against both a white page and JupyterLab's dark
background (#111111): a chart of up to four series reads on either theme. The next
three (orange, sky blue, yellow) are lighter: they keep 3:1 on dark but not on white,
so the renderers outline bars, areas and wedges in the theme's foreground colour, and
charts keep at most seven series (the rest are grouped as "other").

Heatmaps use cividis, a sequential map made to read the same with or without
colour-vision deficiencies.
"""

from __future__ import annotations

from typing import Any

PALETTE_NAME = "Okabe-Ito"

#: (name, hex) in the order series take them
_COLORS = (
    ("blue", "#0072B2"),
    ("vermillion", "#D55E00"),
    ("bluish green", "#009E73"),
    ("reddish purple", "#CC79A7"),
    ("orange", "#E69F00"),
    ("sky blue", "#56B4E9"),
    ("yellow", "#F0E442"),
)
PALETTE: tuple[str, ...] = tuple(hex_ for _, hex_ in _COLORS)
#: how many of :data:`PALETTE`'s first colours read on both backgrounds
BOTH_THEMES = 4
SEQUENTIAL = "cividis"
LIGHT_BACKGROUND = "#FFFFFF"
DARK_BACKGROUND = "#111111"
#: text, axes and outlines per theme
FOREGROUND = {"light": "#222222", "dark": "#E0E0E0"}
BACKGROUND = {"light": LIGHT_BACKGROUND, "dark": DARK_BACKGROUND}


def palette_model() -> dict[str, Any]:
    """The ``palette`` of a spec: the colours, their names and what they are made for."""
    return {
        "name": PALETTE_NAME,
        "colors": list(PALETTE),
        "color_names": [name for name, _ in _COLORS],
        "sequential": SEQUENTIAL,
        "note": (
            f"colour-blind safe; the first {BOTH_THEMES} colours have a contrast of 3:1 or"
            f" more on both {LIGHT_BACKGROUND} and {DARK_BACKGROUND}"
        ),
    }


def _luminance(color: str) -> float:
    value = color.lstrip("#")
    channels = [int(value[i : i + 2], 16) / 255 for i in (0, 2, 4)]
    linear = [c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
    return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]


def contrast_ratio(a: str, b: str) -> float:
    """WCAG 2.1 contrast ratio of two ``#rrggbb`` colours (1 to 21).

    Parameters
    ----------
    a, b : str
        Colours as ``#rrggbb``.
    """
    high, low = sorted((_luminance(a), _luminance(b)), reverse=True)
    return (high + 0.05) / (low + 0.05)
