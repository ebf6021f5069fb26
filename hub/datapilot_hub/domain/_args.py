"""Whole numbers from query arguments, as the API documents them."""

from __future__ import annotations

import re

from ..errors import bad_request

# ASCII digits only: int() would also take " 7", "1_000" and Arabic-Indic digits
_WHOLE = re.compile(r"-?[0-9]{1,19}")

#: the largest whole number an argument may hold: the catalogs' 64-bit integers
MAX_WHOLE = 2**63 - 1


def whole_number(
    value: str | None, field: str, default: int | None, low: int, high: int | None = None
) -> int | None:
    """A query argument as a whole number between ``low`` and ``high``, or a 400 naming it.

    Parameters
    ----------
    value : str or None
        The argument; missing (None) gives ``default``. An empty one is no number.
    field : str
        Its name, for the error.
    default : int or None
        What a missing argument means.
    low, high : int
        The bounds (``high`` None: :data:`MAX_WHOLE`, past which no catalog can count).
    """
    if value is None:
        return default
    if not _WHOLE.fullmatch(value):
        raise bad_request(field, f"{field} must be a whole number, not {value[:40]!r}.")
    number = int(value)
    top = MAX_WHOLE if high is None else high
    if not low <= number <= top:
        raise bad_request(field, f"{field} must be between {low} and {top}.")
    return number
