"""Thumbnails of the gallery: a chart the notebook already drew, or a drawn card."""

from __future__ import annotations

import base64
import binascii
import hashlib
from html import escape
from typing import Any

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
#: the largest picture taken from a notebook's outputs as a thumbnail
MAX_THUMBNAIL_BYTES = 1024**2


def first_png(notebook: dict[str, Any]) -> bytes | None:
    """The first PNG image among the notebook's outputs (a chart it drew), or None.

    Parameters
    ----------
    notebook : dict
        nbformat 4 JSON.
    """
    for cell in notebook.get("cells") or ():
        for output in cell.get("outputs") or () if isinstance(cell, dict) else ():
            data = output.get("data") if isinstance(output, dict) else None
            png = data.get("image/png") if isinstance(data, dict) else None
            if isinstance(png, list):
                png = "".join(p for p in png if isinstance(p, str))
            if not isinstance(png, str):
                continue
            try:
                raw = base64.b64decode(png.replace("\n", ""), validate=True)
            except (binascii.Error, ValueError):
                continue
            if raw.startswith(PNG_MAGIC) and len(raw) <= MAX_THUMBNAIL_BYTES:
                return raw
    return None


# a calm hue per dashboard, so cards of the gallery are told apart at a glance
_HUES = (210, 160, 260, 30, 340, 190, 120, 290)


def drawn_thumbnail(title: str, kind: str) -> str:
    """An SVG card with the dashboard's title and kind, for a notebook with no picture.

    Parameters
    ----------
    title : str
        The dashboard's title.
    kind : str
        ``voila`` or ``panel``.
    """
    hue = _HUES[hashlib.sha256(title.encode()).digest()[0] % len(_HUES)]
    words, lines, line = title.split(), [], ""
    for word in words:
        if len(line) + len(word) + 1 > 22 and line:
            lines.append(line)
            line = word
        else:
            line = f"{line} {word}".strip()
    if line:
        lines.append(line)
    if len(lines) > 3:
        lines = lines[:3]
        lines[-1] = lines[-1][:19] + "..."
    text = "".join(
        f'<text x="20" y="{70 + 30 * i}" font-size="22" font-weight="600">{escape(ln)}</text>'
        for i, ln in enumerate(lines)
    )
    label = "Voilà" if kind == "voila" else "Panel"
    # three bars: it reads as "a dashboard" without pretending to be its real chart
    bars = "".join(
        f'<rect x="{220 + 22 * i}" y="{170 - h}" width="14" height="{h}" rx="2"'
        f' fill="hsl({hue},45%,{55 + 8 * i}%)"/>'
        for i, h in enumerate((40, 70, 55))
    )
    return (
        '<svg xmlns="http://www.w3.org/2000/svg" width="320" height="180" viewBox="0 0 320 180"'
        ' font-family="system-ui, sans-serif">'
        f'<rect width="320" height="180" rx="8" fill="hsl({hue},40%,95%)"/>'
        f'<rect width="320" height="36" rx="8" fill="hsl({hue},40%,35%)"/>'
        f'<text x="20" y="24" font-size="14" fill="#fff">{label} dashboard</text>'
        f'<g fill="hsl({hue},40%,20%)">{text}</g>{bars}</svg>'
    )
