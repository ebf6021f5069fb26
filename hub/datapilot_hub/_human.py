"""Values as a person reads them: times without microseconds, sizes, rounded amounts."""

from __future__ import annotations

from datetime import datetime
from typing import Any


def human_bytes(value: Any) -> str:
    """``1073741824`` -> ``"1 GiB"``; ``None`` -> ``"unlimited"``."""
    if value is None:
        return "unlimited"
    n = float(value)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(n) < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "B" or n == int(n) else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n} TiB"  # pragma: no cover - the loop returns


def when(value: Any, precision: str = "minutes") -> str:
    """An ISO 8601 time (UTC) as a person reads it: ``2026-11-27 18:03 UTC``.

    ``precision="seconds"`` keeps the seconds (the audit log); never microseconds.
    """
    if not value:
        return ""
    try:
        t = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return str(value)
    return t.strftime("%Y-%m-%d %H:%M:%S UTC" if precision == "seconds" else "%Y-%m-%d %H:%M UTC")


def number(value: Any, digits: int = 0) -> str:
    """A count or an amount rounded for reading: ``60.05793532`` -> ``"60"``, with separators."""
    if value is None:
        return ""
    try:
        n = float(value)
    except (TypeError, ValueError):
        return str(value)
    if digits == 0 or n == int(n):
        return f"{round(n):,}"
    return f"{n:,.{digits}f}"
