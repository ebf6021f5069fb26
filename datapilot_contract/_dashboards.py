"""Dashboards: slug, kind, snapshot paths, pins and the dashboard kernel's environment.

The data service checks what a publisher sends, the server extension and ``dp.publish``
check it before sending, and the dashboard runtime and ``dp.load`` agree on the names
of the environment variables here; standard library only.
"""

from __future__ import annotations

import json
import re
import unicodedata
from collections.abc import Iterable
from typing import Any

from ._rules import DATASET_NAME, INVALID_NAME, ContractError, NameRule, _shown

#: What a dashboard is served with: Voilà (the notebook, sources stripped) or Panel
#: (``panel serve`` of the notebook's ``.servable()`` objects).
DASHBOARD_KINDS: tuple[str, ...] = ("voila", "panel")
#: The code of a refused dashboard kind.
INVALID_KIND = "invalid_kind"
#: The code of a refused snapshot file path or pin.
INVALID_PATH = "invalid_path"
INVALID_PINS = "invalid_pins"

#: Set by the dashboard runtime in a dashboard's kernel: ``<org>/<slug>``.
DASHBOARD_ENV = "DATAPILOT_DASHBOARD"
#: Set by the dashboard runtime in a dashboard's kernel: the pinned dataset versions as a
#: JSON object ``{"sales": 3}``; a dataset not named (or named with null) follows the
#: latest version. ``dp.load(name)`` without ``version=`` reads the pinned one.
DASHBOARD_PINS_ENV = "DATAPILOT_DASHBOARD_PINS"

#: The most files a snapshot holds besides the notebook, and the longest relative path.
MAX_SNAPSHOT_FILES = 100
MAX_PATH_LENGTH = 255

#: A dashboard's slug, the last part of its stable address
#: ``/services/datapilot/dashboards/<org>/<slug>``.
DASHBOARD_SLUG = NameRule(
    kind="dashboard slug",
    pattern=r"[a-z0-9]+(?:-[a-z0-9]+)*",
    min_length=2,
    max_length=60,
    rule="2 to 60 lowercase letters, digits and single inner hyphens (like 'sales-2024')",
)

_CONTROL = r"\x00-\x1f\x7f-\x9f"
_SPACES = r" \xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000"

#: A dashboard's title: one line of text.
DASHBOARD_TITLE = NameRule(
    kind="dashboard title",
    pattern=rf"[^{_CONTROL}]*[^{_CONTROL}{_SPACES}][^{_CONTROL}]*",
    min_length=1,
    max_length=200,
    rule="1 to 200 characters, not only spaces, no control characters",
)

#: A dashboard's description: text with line breaks and tabs, no other control characters.
DASHBOARD_DESCRIPTION = NameRule(
    kind="dashboard description",
    pattern=r"[^\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]*",
    min_length=0,
    max_length=2000,
    rule="at most 2000 characters; line breaks and tabs but no other control characters",
)


def check_dashboard_slug(value: Any, field: str = "slug") -> str:
    """Return ``value`` if it is a dashboard slug (:data:`DASHBOARD_SLUG`), else raise.

    Parameters
    ----------
    value : Any
        A candidate slug.
    field : str
        Where it came from, for the error.
    """
    return DASHBOARD_SLUG.check(value, field)


def is_dashboard_slug(value: Any) -> bool:
    """Whether ``value`` is a dashboard slug.

    Parameters
    ----------
    value : Any
        A candidate slug.
    """
    return DASHBOARD_SLUG.matches(value)


def check_dashboard_kind(value: Any, field: str = "kind") -> str:
    """Return ``value`` if it is one of :data:`DASHBOARD_KINDS`, else raise.

    Parameters
    ----------
    value : Any
        A candidate kind.
    field : str
        Where it came from, for the error.
    """
    if not isinstance(value, str) or value not in DASHBOARD_KINDS:
        raise ContractError(
            field,
            INVALID_KIND,
            f"kind must be one of {', '.join(DASHBOARD_KINDS)}, not {_shown(value)}.",
        )
    return value


def _path_problem(value: Any) -> str | None:
    if not isinstance(value, str) or not value:
        return "must be a non-empty string"
    if len(value) > MAX_PATH_LENGTH:
        return f"is longer than {MAX_PATH_LENGTH} characters"
    if "\\" in value or value.startswith("/") or re.match(r"[A-Za-z]:", value):
        return "must be a relative path with '/' between its parts"
    if any(unicodedata.category(c) in ("Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp") for c in value):
        return "contains a control or invisible character"
    parts = value.split("/")
    if any(p in ("", ".", "..") for p in parts):
        return "must not have empty, '.' or '..' parts"
    if any(p != p.strip() for p in parts):
        return "has a part that starts or ends with whitespace"
    if any(p.startswith(".") for p in parts):
        return "must not name hidden files or folders (starting with '.')"
    return None


def check_snapshot_path(value: Any, field: str = "path") -> str:
    """Return ``value`` if it is a relative file path a snapshot may hold, else raise.

    Relative, ``/``-separated, no empty, ``.`` or ``..`` part, no hidden part, no control
    character, at most :data:`MAX_PATH_LENGTH` characters: it cannot leave the snapshot's
    directory when materialized.

    Parameters
    ----------
    value : Any
        A candidate path.
    field : str
        Where it came from, for the error.
    """
    problem = _path_problem(value)
    if problem is not None:
        raise ContractError(field, INVALID_PATH, f"{_shown(value)} {problem}.")
    return value  # type: ignore[no-any-return]


def check_pins(value: Any, field: str = "pins") -> dict[str, int | None]:
    """Return ``value`` if it is ``{dataset name: version number or None}``, else raise.

    None (JSON null) means: follow the latest version.

    Parameters
    ----------
    value : Any
        Candidate pins.
    field : str
        Where they came from, for the error.
    """
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ContractError(
            field, INVALID_PINS, "pins must be an object {dataset name: version or null}."
        )
    if len(value) > 200:
        raise ContractError(field, INVALID_PINS, "pins may name at most 200 datasets.")
    for name, version in value.items():
        if not DATASET_NAME.matches(name):
            raise ContractError(
                f"{field}.{name}" if isinstance(name, str) else field,
                INVALID_NAME,
                f"{_shown(name)} is not a valid dataset name: {DATASET_NAME.rule}.",
            )
        ok = version is None or (
            isinstance(version, int) and not isinstance(version, bool) and 1 <= version < 2**31
        )
        if not ok:
            raise ContractError(
                f"{field}.{name}",
                INVALID_PINS,
                f"The pin of {name!r} must be a version number (1 or more) or null,"
                f" not {_shown(version)}.",
            )
    return dict(value)


def pins_from_environ(environ: dict[str, str]) -> dict[str, int]:
    """The pinned versions a dashboard kernel's environment names (none outside one).

    A malformed value pins nothing rather than failing every ``dp.load``: the runtime
    writes it from validated pins, so only a hand-made environment gets here.

    Parameters
    ----------
    environ : dict
        ``os.environ`` or a copy.
    """
    raw = environ.get(DASHBOARD_PINS_ENV)
    if not raw:
        return {}
    try:
        pins = check_pins(json.loads(raw))
    except (ValueError, ContractError):
        return {}
    return {name: version for name, version in pins.items() if version is not None}


# a quoted string in code that could name a file next to the notebook: "data/sales.csv"
_QUOTED = re.compile(r"""(?P<q>["'])(?P<s>[^"'\n\r\\]{1,255})(?P=q)""")
_FILE_LIKE = re.compile(r"[^\s]*\.[A-Za-z0-9]{1,8}")


def referenced_paths(notebook: dict[str, Any]) -> list[str]:
    """Relative paths that the code cells of a notebook quote and that could be files.

    A deliberately simple scan: every quoted string of a code cell that is a valid
    snapshot path with an extension (``"sales.csv"``, ``'img/logo.png'``). The caller
    keeps those that exist next to the notebook.

    Parameters
    ----------
    notebook : dict
        The notebook as nbformat JSON.
    """
    found: list[str] = []
    cells: Iterable[Any] = notebook.get("cells") or () if isinstance(notebook, dict) else ()
    for cell in cells:
        if not isinstance(cell, dict) or cell.get("cell_type") != "code":
            continue
        source = cell.get("source", "")
        if isinstance(source, list):
            source = "".join(s for s in source if isinstance(s, str))
        if not isinstance(source, str):
            continue
        for m in _QUOTED.finditer(source):
            s = m.group("s")
            if s.startswith("./"):
                s = s[2:]
            if _FILE_LIKE.fullmatch(s) and _path_problem(s) is None and s not in found:
                found.append(s)
    return found
