"""What a publication asks for, checked: the notebook, its files, kind, slug, title, pins."""

from __future__ import annotations

import base64
import binascii
import json
import posixpath
import warnings
from dataclasses import dataclass, field
from typing import Any

from datapilot_contract import (
    DASHBOARD_DESCRIPTION,
    DASHBOARD_TITLE,
    MAX_SNAPSHOT_FILES,
    check_dashboard_kind,
    check_dashboard_slug,
    check_pins,
    check_snapshot_path,
)

from ...errors import DatapilotError, bad_request, checked

#: The default limit of a whole snapshot (notebook and files), in bytes.
DEFAULT_MAX_SNAPSHOT_BYTES = 16 * 1024**2


@dataclass
class PublishRequest:
    """A checked publication: everything the snapshot will hold, in memory.

    Parameters
    ----------
    slug, kind, title, description : str
        As sent, checked against :mod:`datapilot_contract`.
    notebook : dict
        The notebook (nbformat 4 JSON), valid against its schema.
    notebook_name : str
        The notebook's file name inside the snapshot (``sales.ipynb``).
    files : dict
        Relative path (from the notebook's folder) -> content.
    pins : dict
        Dataset name -> version, or None to follow the latest.
    source_path : str, optional
        Where the notebook was in the publisher's workspace.
    """

    slug: str
    kind: str
    title: str
    description: str
    notebook: dict[str, Any]
    notebook_name: str
    files: dict[str, bytes] = field(default_factory=dict)
    pins: dict[str, int | None] = field(default_factory=dict)
    source_path: str | None = None

    def notebook_bytes(self) -> bytes:
        """The notebook as the snapshot stores it."""
        return json.dumps(self.notebook, indent=1, ensure_ascii=False).encode() + b"\n"

    @property
    def size(self) -> int:
        """Bytes of the whole snapshot."""
        return len(self.notebook_bytes()) + sum(len(b) for b in self.files.values())


def _text(rule, value: Any, field_name: str) -> str:
    return checked(rule.check, value, field_name)


def validate_notebook(notebook: Any, field_name: str = "notebook") -> dict[str, Any]:
    """Return ``notebook`` if it is a valid nbformat 4 notebook, else raise 400.

    Parameters
    ----------
    notebook : Any
        What a caller sent as the notebook.
    field_name : str
        The field, for the error.
    """
    import nbformat
    from nbformat.validator import ValidationError

    if not isinstance(notebook, dict):
        raise bad_request(field_name, "notebook must be a notebook's JSON object (nbformat 4).")
    if notebook.get("nbformat") != 4:
        raise bad_request(
            field_name,
            f"Only nbformat 4 notebooks can be published (this one says"
            f" nbformat={notebook.get('nbformat')!r}).",
            code="invalid_notebook",
        )
    try:
        with warnings.catch_warnings():
            # nbformat warns about (and repairs) cells without ids; what matters here is
            # whether the schema holds
            warnings.simplefilter("ignore")
            nbformat.validate(nbformat.from_dict(json.loads(json.dumps(notebook))))
    except ValidationError as e:
        raise DatapilotError(
            400,
            "invalid_notebook",
            f"The notebook is not valid nbformat 4: {e.message}.",
            field=field_name,
        ) from None
    except Exception as e:  # nbformat raises odd errors on odd JSON (a key of the wrong type)
        raise DatapilotError(
            400,
            "invalid_notebook",
            f"The notebook is not valid nbformat 4 ({e}).",
            field=field_name,
        ) from None
    return notebook


def _too_many_files() -> DatapilotError:
    return DatapilotError(
        413,
        "too_many_files",
        f"A dashboard may hold at most {MAX_SNAPSHOT_FILES} files besides the notebook.",
        limit=MAX_SNAPSHOT_FILES,
    )


def _decode_files(files: Any) -> dict[str, bytes]:
    """``[{"path", "content" (base64)}]`` from the API as ``{path: bytes}``."""
    if files is None:
        return {}
    if not isinstance(files, list):
        raise bad_request("files", 'files must be a list of {"path", "content" (base64)}.')
    if len(files) > MAX_SNAPSHOT_FILES:
        raise _too_many_files()
    decoded: dict[str, bytes] = {}
    for i, item in enumerate(files):
        if not isinstance(item, dict) or set(item) - {"path", "content"}:
            raise bad_request(f"files[{i}]", 'Each file is {"path", "content" (base64)}.')
        path = checked(check_snapshot_path, item.get("path"), f"files[{i}].path")
        content = item.get("content")
        if not isinstance(content, str):
            raise bad_request(f"files[{i}].content", "content must be the file in base64.")
        try:
            data = base64.b64decode(content, validate=True)
        except (binascii.Error, ValueError):
            raise bad_request(f"files[{i}].content", "content is not valid base64.") from None
        if path in decoded:
            raise bad_request(f"files[{i}].path", f"{path!r} is named twice.")
        decoded[path] = data
    return decoded


def build_request(
    *,
    slug: Any,
    kind: Any,
    title: Any,
    description: Any = "",
    notebook: Any,
    path: Any = None,
    files: dict[str, bytes] | None = None,
    pins: Any = None,
    max_bytes: int = DEFAULT_MAX_SNAPSHOT_BYTES,
) -> PublishRequest:
    """Check every part of a publication and return it, or raise the first 400/413.

    Parameters
    ----------
    slug, kind, title, description : Any
        As the caller sent them.
    notebook : Any
        The notebook's JSON.
    path : Any, optional
        Where the notebook is in the publisher's workspace (its file name names the
        notebook in the snapshot; default ``dashboard.ipynb``).
    files : dict, optional
        Relative path -> content of the other files.
    pins : Any, optional
        ``{dataset: version or None}``.
    max_bytes : int
        The largest snapshot accepted.
    """
    slug = checked(check_dashboard_slug, slug, "slug")
    kind = checked(check_dashboard_kind, kind, "kind")
    title = _text(DASHBOARD_TITLE, title, "title")
    description = _text(
        DASHBOARD_DESCRIPTION, "" if description is None else description, "description"
    )
    pins = checked(check_pins, pins, "pins")
    source_path = None
    notebook_name = "dashboard.ipynb"
    if path is not None:
        if not isinstance(path, str) or not path.endswith(".ipynb"):
            raise bad_request("path", "path must name a notebook (a .ipynb file).")
        source_path = checked(check_snapshot_path, path, "path")
        notebook_name = posixpath.basename(source_path)
    notebook = validate_notebook(notebook)
    files = dict(files or {})
    if len(files) > MAX_SNAPSHOT_FILES:
        raise _too_many_files()
    for name in files:
        checked(check_snapshot_path, name, "files")
        if name == notebook_name:
            raise bad_request("files", f"{name!r} is the notebook itself.")
    # a file and a folder of the same name cannot both be written
    folders = {posixpath.dirname(n) for n in files} | {posixpath.dirname(notebook_name)}
    parents = {
        "/".join(f.split("/")[: i + 1]) for f in folders if f for i in range(f.count("/") + 1)
    }
    clash = parents & (set(files) | {notebook_name})
    if clash:
        raise bad_request("files", f"{sorted(clash)[0]!r} is both a file and a folder.")
    req = PublishRequest(
        slug=slug,
        kind=kind,
        title=title,
        description=description,
        notebook=notebook,
        notebook_name=notebook_name,
        files=files,
        pins=pins,
        source_path=source_path,
    )
    if req.size > max_bytes:
        raise DatapilotError(
            413,
            "too_large",
            f"The dashboard ({req.size} bytes with its files) is larger than the limit of"
            f" {max_bytes} bytes.",
            limit=max_bytes,
        )
    return req


def request_from_json(
    body: dict[str, Any], max_bytes: int = DEFAULT_MAX_SNAPSHOT_BYTES
) -> PublishRequest:
    """A publication from the API's JSON body (files in base64), checked.

    Parameters
    ----------
    body : dict
        ``{notebook, path?, kind, title, slug, description?, files?, pins?}``.
    max_bytes : int
        The largest snapshot accepted.
    """
    known = {"notebook", "path", "kind", "title", "slug", "description", "files", "pins"}
    unknown = sorted(set(body) - known)
    if unknown:
        raise bad_request(
            unknown[0], f"Unknown field {unknown[0]!r}; known: {', '.join(sorted(known))}."
        )
    if "notebook" not in body:
        raise bad_request(
            "notebook",
            "Send the notebook's JSON as 'notebook': the data service cannot read a workspace"
            " path (the server extension's POST /publish and dp.publish read it for you).",
            code="missing_notebook",
        )
    for name in ("slug", "kind", "title"):
        if name not in body:
            raise bad_request(name, f"{name} is required.", code="missing_field")
    return build_request(
        slug=body["slug"],
        kind=body["kind"],
        title=body["title"],
        description=body.get("description", ""),
        notebook=body["notebook"],
        path=body.get("path"),
        files=_decode_files(body.get("files")),
        pins=body.get("pins"),
        max_bytes=max_bytes,
    )
