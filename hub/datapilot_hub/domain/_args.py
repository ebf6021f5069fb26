"""Request arguments checked as the API documents them: query arguments and JSON bodies."""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

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


def json_whole(value: object, field: str, low: int, high: int | None) -> int | None:
    """A JSON body field as a whole number between ``low`` and ``high``, or a 400 naming it.

    Parameters
    ----------
    value : object
        The field's value; None (missing or null) stays None. ``true`` is no number.
    field : str
        Its name, for the error.
    low, high : int
        The bounds (``high`` None: no upper bound).
    """
    if value is None:
        return None
    if (
        isinstance(value, bool)
        or not isinstance(value, int)
        or value < low
        or (high is not None and value > high)
    ):
        bound = f" and at most {high}" if high is not None else ""
        raise bad_request(field, f"{field} must be a whole number of at least {low}{bound}.")
    return value


def json_object(body: Any, fields: Iterable[str], where: str = "body") -> dict[str, Any]:
    """A JSON object holding only the documented ``fields``, or a 400 naming the first other.

    Parameters
    ----------
    body : object
        The parsed JSON.
    fields : iterable of str
        The fields it may hold, in the order the error lists them.
    where : str
        What the object is, for the errors (``"body"`` for a request body).
    """
    fields = tuple(fields)
    if not isinstance(body, dict):
        what = "The request body" if where == "body" else where
        raise bad_request(where, f"{what} must be a JSON object.")
    unknown = [k for k in body if k not in fields]
    if unknown:
        raise bad_request(
            unknown[0], f"Unknown field {unknown[0]!r}; the fields are: {', '.join(fields)}."
        )
    return body
