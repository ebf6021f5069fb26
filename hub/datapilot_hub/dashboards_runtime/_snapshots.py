"""The published snapshots on the runtime's disk, fetched from the data service."""

from __future__ import annotations

import base64
import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx

from datapilot_contract import check_dashboard_slug, check_snapshot_path


class DashboardMissing(Exception):
    """The data service has no published dashboard of that slug (or refused to say)."""


@dataclass(frozen=True)
class LocalSnapshot:
    """A dashboard version on disk.

    Parameters
    ----------
    slug : str
        The dashboard.
    version : int
        Its version.
    kind : str
        ``voila`` or ``panel``.
    title : str
        Its title.
    directory : Path
        Where its files are.
    notebook : str
        The notebook's path inside ``directory``.
    environment : dict
        What its kernel (or app) gets: ``DATAPILOT_DASHBOARD``, ``DATAPILOT_DASHBOARD_PINS``.
    """

    slug: str
    version: int
    kind: str
    title: str
    directory: Path
    notebook: str
    environment: dict[str, str]

    @property
    def relative(self) -> str:
        """The notebook's path below the snapshots' root (``<slug>/v<n>/<notebook>``)."""
        return f"{self.slug}/v{self.version}/{self.notebook}"


class SnapshotStore:
    """Fetches the current version of a dashboard when it changed, and keeps it on disk.

    Parameters
    ----------
    root : path
        ``~/snapshots``: one folder per dashboard and version.
    api_url : str
        The data service's API (``.../services/datapilot/api/v1/``).
    token : str
        This server's own token (the data service gives snapshots to it alone).
    org : str
        The organization.
    """

    def __init__(self, root: str | os.PathLike[str], api_url: str, token: str, org: str) -> None:
        self.root = Path(root)
        self.root.mkdir(mode=0o700, parents=True, exist_ok=True)
        self.org = org
        self.api_url = api_url.rstrip("/") + "/"
        self.client = httpx.AsyncClient(headers={"Authorization": f"token {token}"}, timeout=60)

    async def current(self, slug: str) -> LocalSnapshot:
        """The current version of ``slug``, fetched first when it is not on disk yet.

        Raises
        ------
        DashboardMissing
            No such published dashboard.
        """
        check_dashboard_slug(slug)
        have = self._latest_local(slug)
        params = {"have": str(have)} if have is not None else {}
        url = f"{self.api_url}orgs/{quote(self.org)}/dashboards/{quote(slug)}/runtime-bundle"
        resp = await self.client.get(url, params=params)
        if resp.status_code == 404:
            raise DashboardMissing(slug)
        resp.raise_for_status()
        model = resp.json()
        directory = self.root / slug / f"v{int(model['version'])}"
        if model.get("files") is not None and not directory.is_dir():
            self._write(directory, model["files"])
        meta = {k: model[k] for k in ("version", "kind", "title", "notebook", "environment")}
        (self.root / slug / "current.json").write_text(json.dumps(meta))
        return self._local(slug, meta)

    def _latest_local(self, slug: str) -> int | None:
        try:
            meta = json.loads((self.root / slug / "current.json").read_text())
        except (OSError, ValueError):
            return None
        version = int(meta["version"])
        return version if (self.root / slug / f"v{version}").is_dir() else None

    def _local(self, slug: str, meta: dict[str, Any]) -> LocalSnapshot:
        version = int(meta["version"])
        return LocalSnapshot(
            slug=slug,
            version=version,
            kind=meta["kind"],
            title=meta["title"],
            directory=self.root / slug / f"v{version}",
            notebook=meta["notebook"],
            environment=dict(meta.get("environment") or {}),
        )

    @staticmethod
    def _write(directory: Path, files: dict[str, str]) -> None:
        """All files or none: written into a sibling, renamed into place."""
        directory.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{directory.name}-", dir=directory.parent))
        try:
            for rel, data in files.items():
                # checked at publication; again here, as it becomes a path on this disk
                check_snapshot_path(rel)
                dest = tmp / rel
                dest.parent.mkdir(parents=True, exist_ok=True)
                dest.write_bytes(base64.b64decode(data))
            try:
                os.rename(tmp, directory)
            except OSError:
                if not directory.is_dir():
                    raise
                shutil.rmtree(tmp, ignore_errors=True)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise

    async def close(self) -> None:
        """Close the connection pool."""
        await self.client.aclose()
