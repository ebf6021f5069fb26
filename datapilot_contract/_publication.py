"""The body of ``POST /orgs/{org}/dashboards``, built from a notebook in a workspace.

The server extension (``POST /publish``) and ``dp.publish`` in a kernel both read a
notebook and the files it names from disk and send them to the data service; both build
the body here, so they send the same snapshot. Standard library only.
"""

from __future__ import annotations

import base64
import json
import os
import posixpath
import re
import stat
from pathlib import PurePosixPath
from typing import Any

from ._dashboards import (
    DASHBOARD_DESCRIPTION,
    DASHBOARD_TITLE,
    MAX_SNAPSHOT_FILES,
    check_dashboard_kind,
    check_dashboard_slug,
    check_pins,
    check_snapshot_path,
    referenced_paths,
)
from ._rules import ContractError

#: The data service's default limit of a publication (``DataService.max_publish_size``).
DEFAULT_MAX_PUBLISH_BYTES = 16 * 1024**2


def slug_from_path(path: str) -> str:
    """A dashboard slug from a notebook's file name: ``Sales Report.ipynb`` -> ``sales-report``.

    Parameters
    ----------
    path : str
        The notebook's path.
    """
    stem = posixpath.splitext(posixpath.basename(str(path).replace(os.sep, "/")))[0]
    slug = re.sub(r"[^a-z0-9]+", "-", stem.lower()).strip("-")[:60].strip("-")
    return slug if len(slug) >= 2 else f"dashboard-{slug}".strip("-")


def _resolve(root: str, rel: str, field: str) -> str:
    """The path of ``rel`` inside ``root``, refusing what leaves it."""
    pure = PurePosixPath(rel)
    if pure.is_absolute() or os.path.isabs(rel) or ".." in pure.parts:
        raise ContractError(field, "invalid_path", f"{rel!r} must be relative, without '..'.")
    full = os.path.abspath(os.path.join(root, *pure.parts))
    if os.path.commonpath([root, full]) != root:
        raise ContractError(field, "invalid_path", f"{rel!r} must stay inside {root}.")
    return full


def _regular_file(full: str) -> os.stat_result | None:
    try:
        st = os.stat(full)
    except OSError:
        return None
    return st if stat.S_ISREG(st.st_mode) else None


def publication_body(
    root: str | os.PathLike[str],
    path: str,
    *,
    kind: Any,
    title: Any = None,
    slug: Any = None,
    description: Any = "",
    files: Any = None,
    pins: Any = None,
    max_bytes: int = DEFAULT_MAX_PUBLISH_BYTES,
) -> dict[str, Any]:
    """Read a notebook and its files and return the API's publication body.

    The snapshot holds the notebook, the files named in ``files`` (relative to the
    notebook's folder; each must exist) and the files the notebook's code quotes that
    exist next to it (:func:`referenced_paths`: ``pd.read_csv("data/x.csv")``).

    Parameters
    ----------
    root : path
        The workspace root (the server's root, or a kernel's working directory).
    path : str
        The notebook, relative to ``root``.
    kind : str
        ``voila`` or ``panel``.
    title : str, optional
        Default: the notebook's file name without ``.ipynb``.
    slug : str, optional
        Default: :func:`slug_from_path`.
    description : str, optional
        A few sentences for the gallery.
    files : list of str, optional
        More files to include, relative to the notebook's folder.
    pins : dict, optional
        ``{dataset: version}`` to pin, ``{dataset: None}`` to follow the latest.
    max_bytes : int
        The most bytes of notebook and files together.

    Raises
    ------
    ContractError
        With ``code`` ``invalid_path``/``not_found`` (a path), ``invalid_notebook``,
        ``too_large``, ``too_many_files``, or a name rule's code.
    """
    root = os.path.abspath(os.path.expanduser(os.fspath(root)))
    if not isinstance(path, str) or not path.endswith(".ipynb"):
        raise ContractError("path", "invalid_input", "path must name a notebook (a .ipynb file).")
    rel_path = check_snapshot_path(path[2:] if path.startswith("./") else path, "path")
    full = _resolve(root, rel_path, "path")
    if _regular_file(full) is None:
        raise ContractError("path", "not_found", f"No notebook {rel_path!r} in {root}.")
    with open(full, "rb") as f:
        raw = f.read(max_bytes + 1)
    if len(raw) > max_bytes:
        raise ContractError("path", "too_large", f"{rel_path!r} is larger than {max_bytes} bytes.")
    try:
        notebook = json.loads(raw)
    except ValueError:
        raise ContractError("path", "invalid_notebook", f"{rel_path!r} is not JSON.") from None
    kind = check_dashboard_kind(kind)
    stem = posixpath.splitext(posixpath.basename(rel_path))[0]
    title = DASHBOARD_TITLE.check(stem if title is None else title, "title")
    slug = check_dashboard_slug(slug_from_path(rel_path) if slug is None else slug)
    description = DASHBOARD_DESCRIPTION.check(
        "" if description is None else description, "description"
    )
    pins = check_pins(pins)
    if files is None:
        files = []
    if isinstance(files, str) or not isinstance(files, (list, tuple)):
        raise ContractError("files", "invalid_input", "files must be a list of relative paths.")
    folder = os.path.dirname(full)
    chosen: dict[str, str] = {}
    for i, name in enumerate(files):
        name = check_snapshot_path(name, f"files[{i}]")
        target = _resolve(folder, name, f"files[{i}]")
        if _regular_file(target) is None:
            raise ContractError(
                f"files[{i}]", "not_found", f"No file {name!r} next to {rel_path!r}."
            )
        chosen[name] = target
    for name in referenced_paths(notebook):
        if name in chosen or name == posixpath.basename(rel_path):
            continue
        try:
            target = _resolve(folder, name, "files")
        except ContractError:
            continue
        if _regular_file(target) is not None:
            chosen[name] = target
    if len(chosen) > MAX_SNAPSHOT_FILES:
        raise ContractError(
            "files",
            "too_many_files",
            f"A dashboard may hold at most {MAX_SNAPSHOT_FILES} files besides the notebook.",
        )
    total = len(raw)
    encoded = []
    for name, target in sorted(chosen.items()):
        size = os.stat(target).st_size
        total += size
        if total > max_bytes:
            raise ContractError(
                "files",
                "too_large",
                f"The notebook and its files are larger than {max_bytes} bytes (at {name!r}).",
            )
        with open(target, "rb") as f:
            encoded.append({"path": name, "content": base64.b64encode(f.read()).decode()})
    body: dict[str, Any] = {
        "notebook": notebook,
        "path": rel_path,
        "kind": kind,
        "title": title,
        "slug": slug,
        "description": description,
        "files": encoded,
    }
    if pins:
        body["pins"] = pins
    return body
