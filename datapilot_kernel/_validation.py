"""What the client checks before it sends anything: names, modes, files, filters.

The name and mode rules are :mod:`datapilot_contract`'s, the same the service applies, so
a refusal here is the refusal the service would give, without the round trip.
"""

from __future__ import annotations

import os
import re
import unicodedata
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from datapilot_contract import ContractError, check_dataset_name, check_mode, check_org_slug

from ._errors import DatapilotError

PARQUET_CONTENT_TYPE = "application/vnd.apache.parquet"
CONTENT_TYPES = {
    ".csv": "text/csv",
    ".tsv": "text/tab-separated-values",
    ".txt": "text/plain",
    ".parquet": PARQUET_CONTENT_TYPE,
    ".pq": PARQUET_CONTENT_TYPE,
    ".xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    ".xls": "application/vnd.ms-excel",
}


def checked(check: Callable[[Any, str], str], value: Any, field: str) -> str:
    """Run one of :mod:`datapilot_contract`'s checks; its refusal becomes a DatapilotError.

    Parameters
    ----------
    check : callable
        ``check_dataset_name``, ``check_mode`` or ``check_org_slug``.
    value : Any
        What the caller gave.
    field : str
        The argument's name, for the error's ``details["field"]``.
    """
    try:
        return check(value, field)
    except ContractError as e:
        raise DatapilotError(e.message, code=e.code, details={"field": e.field}) from None


def validate_name(name: Any) -> str:
    """Return ``name`` if it is a valid dataset name, else raise :class:`DatapilotError`.

    Parameters
    ----------
    name : str
        A lowercase letter, then up to 62 lowercase letters, digits or underscores.
    """
    return checked(check_dataset_name, name, "name")


def validate_mode(mode: Any) -> str:
    """Return ``mode`` if it is a valid upload mode, else raise :class:`DatapilotError`.

    Parameters
    ----------
    mode : str
        ``"create"`` (fails if the dataset exists), ``"replace"`` (a new version with
        these rows only) or ``"append"`` (a new version with these rows added).
    """
    return checked(check_mode, mode, "mode")


def validate_org(org: Any) -> str:
    """Return ``org`` if it is a valid organization slug, else raise :class:`DatapilotError`.

    Parameters
    ----------
    org : str
        2 to 30 lowercase letters, digits and single inner hyphens.
    """
    return checked(check_org_slug, org, "org")


def name_from_path(path: str | os.PathLike[str]) -> str:
    """The dataset name a file uploads to by default: its stem, normalised.

    The stem is turned into lower snake_case ASCII the way the service normalises column
    names, so ``"Sales Report 2024.csv"`` becomes ``sales_report_2024``; a stem that
    does not start with a letter gets a ``d_`` prefix.

    Parameters
    ----------
    path : str or os.PathLike
        The local file.
    """
    stem = Path(path).name.split(".")[0]
    text = unicodedata.normalize("NFKD", stem).encode("ascii", "ignore").decode()
    name = re.sub(r"[^0-9a-zA-Z]+", "_", text).strip("_").lower() or "dataset"
    if not name[0].isalpha():
        name = f"d_{name}"
    return name[:63].rstrip("_")


def content_type_for(path: str | os.PathLike[str]) -> str:
    """The content type an upload of ``path`` is sent with, from its extension.

    Parameters
    ----------
    path : str or os.PathLike
        The local file; unknown extensions are sent as ``application/octet-stream`` and
        the service decides from the content.
    """
    return CONTENT_TYPES.get(Path(path).suffix.lower(), "application/octet-stream")


def filter_columns(filters: Any) -> list[str]:
    """The column names a pyarrow DNF filter refers to, in order of appearance.

    Parameters
    ----------
    filters : list of tuple, list of list of tuple, or None
        ``[("col", op, value), ...]`` (all must hold) or a list of such lists (any
        must hold). A :class:`pyarrow.compute.Expression` names no columns here.
    """
    if not isinstance(filters, (list, tuple)):
        return []
    clauses: Iterable[Any] = filters
    if (
        filters
        and isinstance(filters[0], (list, tuple))
        and filters[0]
        and not isinstance(filters[0][0], str)
    ):
        clauses = [clause for conjunction in filters for clause in conjunction]
    names: list[str] = []
    for clause in clauses:
        if isinstance(clause, (list, tuple)) and clause and isinstance(clause[0], str):
            if clause[0] not in names:
                names.append(clause[0])
    return names
