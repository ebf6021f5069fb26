"""The serving side's view of a dashboard: its current snapshot, and its files on disk."""

from __future__ import annotations

import json
import os
import posixpath
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import select

from datapilot_contract import DASHBOARD_ENV, DASHBOARD_PINS_ENV, check_snapshot_path

from ...catalog import Catalog, Dashboard, Organization
from ...storage import Storage


@dataclass(frozen=True)
class Snapshot:
    """One immutable version of a dashboard, as the runtime serves it.

    Attributes
    ----------
    org_id : int
        The organization's catalog id.
    org : str
        The organization's slug.
    slug : str
        The dashboard's slug.
    version : int
        The version number (it never changes once published).
    kind : str
        ``voila`` or ``panel``.
    title : str
        The title.
    notebook : str
        The notebook's path inside the snapshot (``sales.ipynb``).
    files : tuple of str
        The other files' paths inside the snapshot.
    pins : dict
        Dataset name -> pinned version, or None for the latest.
    path : str
        The snapshot's storage directory (relative to the storage root).
    publisher : str
        Who published this version.
    """

    org_id: int
    org: str
    slug: str
    version: int
    kind: str
    title: str
    notebook: str
    files: tuple[str, ...]
    pins: dict[str, int | None] = field(default_factory=dict)
    path: str = ""
    publisher: str = ""

    @property
    def key(self) -> str:
        """``<org>/<slug>/v<version>``: names this snapshot uniquely, e.g. as a folder."""
        return f"{self.org}/{self.slug}/v{self.version}"

    def environment(self) -> dict[str, str]:
        """The variables a kernel of this dashboard gets, so ``dp.load`` honours the pins."""
        pinned = {name: v for name, v in self.pins.items() if v is not None}
        return {
            DASHBOARD_ENV: f"{self.org}/{self.slug}",
            DASHBOARD_PINS_ENV: json.dumps(pinned, sort_keys=True),
        }


def current_snapshot(catalog: Catalog, org: str, slug: str) -> Snapshot | None:
    """The current snapshot of dashboard ``slug`` of organization ``org``, or None.

    None when the organization or the dashboard does not exist, is not published yet or
    was unpublished. No permission is checked here: the caller (the dashboard runtime)
    checks the viewer's ``dashboards:view`` in the organization first.

    Parameters
    ----------
    catalog : Catalog
        The catalog.
    org : str
        The organization's slug.
    slug : str
        The dashboard's slug.
    """
    with catalog.session(system=True) as db:
        organization = Organization.find(db, org)
        if organization is None:
            return None
        org_id = organization.id
    with catalog.session(org_id) as db:
        dash = db.scalar(
            select(Dashboard).where(Dashboard.organization_id == org_id, Dashboard.slug == slug)
        )
        if dash is None or not dash.visible or dash.current is None:
            return None
        v = dash.current
        return Snapshot(
            org_id=org_id,
            org=org,
            slug=dash.slug,
            version=v.version,
            kind=v.kind,
            title=v.title,
            notebook=v.notebook,
            files=tuple(f["path"] for f in v.files),
            pins=dict(v.pins or {}),
            path=v.path,
            publisher=v.publisher,
        )


def materialize(
    storage: Storage,
    snapshot: Snapshot,
    directory: str | os.PathLike,
    *,
    file_mode: int = 0o644,
    dir_mode: int = 0o755,
) -> Path:
    """Write a snapshot's notebook and files into ``directory``; return the notebook's path.

    The files are written into a temporary sibling first and renamed into place, so a
    reader sees the whole snapshot or none of it. Snapshots never change, so a
    ``directory`` that already exists is taken as done and left as it is: name it after
    :attr:`Snapshot.key` (``<root>/<org>/<slug>/v<n>``) and a new version lands in a new
    folder.

    Parameters
    ----------
    storage : Storage
        Where the snapshot is stored.
    snapshot : Snapshot
        From :func:`current_snapshot`.
    directory : path
        The folder to create (its parent must exist or be creatable).
    file_mode, dir_mode : int
        Permissions of what is written (the runtime may chown it to the organization's
        account afterwards).
    """
    target = Path(directory)
    notebook = target / snapshot.notebook
    if target.is_dir():
        return notebook
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=target.parent))
    try:
        for rel in (snapshot.notebook, *snapshot.files):
            # checked at publication; checked again, as this writes to a local disk
            check_snapshot_path(rel)
            dest = tmp / rel
            dest.parent.mkdir(parents=True, exist_ok=True, mode=dir_mode)
            with (
                storage.open(posixpath.join(snapshot.path, rel), "rb") as src,
                open(dest, "wb") as out,
            ):
                shutil.copyfileobj(src, out)
            os.chmod(dest, file_mode)
        for folder in (tmp, *(p for p in tmp.rglob("*") if p.is_dir())):
            os.chmod(folder, dir_mode)
        try:
            os.rename(tmp, target)
        except OSError:
            # another caller materialized it meanwhile: theirs is the same snapshot
            if not target.is_dir():
                raise
            shutil.rmtree(tmp, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return notebook


def snapshot_json(snapshot: Snapshot) -> dict[str, Any]:
    """A snapshot as JSON (for logs and the runtime's own records)."""
    return {
        "org": snapshot.org,
        "slug": snapshot.slug,
        "version": snapshot.version,
        "kind": snapshot.kind,
        "title": snapshot.title,
        "notebook": snapshot.notebook,
        "files": list(snapshot.files),
        "pins": snapshot.pins,
        "publisher": snapshot.publisher,
    }
