"""The organizations' dashboard servers, as the data service drives them through the hub.

Each organization's published dashboards are served by one named server, ``dashboards``,
of a hub user of its own (``dashboards-<org>``, :func:`datapilot_contract.runtime_user`):
JupyterHub spawns it (under the organization's dashboard account,
:class:`~datapilot_hub.spawner.DatapilotSpawner`), routes it through its proxy and
authenticates its visitors with OAuth; it runs the dashboards on demand
(:mod:`datapilot_hub.dashboards_runtime`). Members reach it through a share each
(:meth:`~datapilot_hub.hubapi.HubClient.share_dashboards`), kept in step with membership.

Here: starting that server when a member first opens a dashboard, and the snapshot the
server asks for (the files of a dashboard's current version, never to anyone else).
"""

from __future__ import annotations

import asyncio
import base64
import logging
import posixpath
import time
from typing import Any

from sqlalchemy import select

from datapilot_contract import RUNTIME_SERVER, runtime_user

from ..catalog import Catalog, Membership, Organization
from ..errors import DatapilotError, not_found
from ..hubapi import HubAPIError, HubClient
from ..storage import Storage
from .dashboards import current_snapshot

log = logging.getLogger(__name__)


class RuntimeServers:
    """Starts organizations' dashboard servers and keeps their shares equal to membership.

    Parameters
    ----------
    catalog : Catalog
        Who the members are.
    hub : HubClient
        The hub, with the service's token (``admin:servers``, ``shares``).
    start_timeout : float
        How long an opening waits for a server to start.
    """

    def __init__(self, catalog: Catalog, hub: HubClient, start_timeout: float = 90) -> None:
        self.catalog = catalog
        self.hub = hub
        self.start_timeout = start_timeout
        self._starting: dict[str, asyncio.Task] = {}

    async def ensure_running(self, org: str) -> dict[str, Any]:
        """Start ``org``'s dashboard server unless it runs; return its hub model when ready.

        Concurrent openings share one start. After a start, the server's shares are made
        equal to the organization's members (a share needs the server to exist).

        Raises
        ------
        DatapilotError
            503 when the server did not start (the hub's message in the details).
        """
        model = await self.hub.server_model(runtime_user(org), RUNTIME_SERVER)
        if model and model.get("ready"):
            return model
        task = self._starting.get(org)
        if task is None or task.done():
            task = asyncio.ensure_future(self._start(org))
            self._starting[org] = task
        return await asyncio.shield(task)

    async def _start(self, org: str) -> dict[str, Any]:
        user = runtime_user(org)
        try:
            await self.hub.ensure_user(user)
            await self.hub.start_named_server(user, RUNTIME_SERVER)
            deadline = time.monotonic() + self.start_timeout
            while time.monotonic() < deadline:
                model = await self.hub.server_model(user, RUNTIME_SERVER)
                if model and model.get("ready"):
                    await self.sync_shares(org)
                    return model
                if not model or not model.get("pending"):
                    break  # the start failed: the hub dropped it
                await asyncio.sleep(0.25)
        except HubAPIError as e:
            log.error("Dashboard server of %s: %s", org, e)
        raise DatapilotError(
            503,
            "dashboards_unavailable",
            f"The dashboard server of {org!r} did not start. Try again in a minute; if it"
            " goes on, tell your administrator (the hub's log says why).",
            org=org,
        )

    def members(self, org: str) -> set[str]:
        """The organization's members, from the catalog."""
        with self.catalog.session(system=True) as db:
            organization = Organization.find(db, org)
            if organization is None:
                return set()
            rows = db.scalars(
                select(Membership.user_name).where(Membership.organization_id == organization.id)
            )
            return set(rows)

    async def sync_shares(self, org: str) -> None:
        """Share the dashboard server with exactly the organization's members."""
        current = await self.hub.dashboard_shares(org)
        if current is None:
            return
        wanted = self.members(org)
        for user in sorted(wanted - current):
            await self.hub.share_dashboards(org, user)
        for user in sorted(current - wanted):
            await self.hub.unshare_dashboards(org, user)


def runtime_bundle(
    catalog: Catalog, storage: Storage, org: str, slug: str, have: int | None = None
) -> dict[str, Any]:
    """The current version of a dashboard as its organization's dashboard server gets it.

    The notebook and its files in base64 (``files``), unless the server already has
    version ``have``; the kernel's environment (pins); kind and title.

    Parameters
    ----------
    catalog, storage
        Where the dashboard is.
    org : str
        The organization (the caller, its dashboard server, was checked to serve it).
    slug : str
        The dashboard.
    have : int, optional
        The version the server has on disk.

    Raises
    ------
    DatapilotError
        404 when there is no such published dashboard.
    """
    snap = current_snapshot(catalog, org, slug)
    if snap is None:
        raise not_found("dashboard", slug)
    model: dict[str, Any] = {
        "org": org,
        "slug": snap.slug,
        "version": snap.version,
        "kind": snap.kind,
        "title": snap.title,
        "notebook": snap.notebook,
        "environment": snap.environment(),
        "files": None,
    }
    if have != snap.version:
        files = {}
        for rel in (snap.notebook, *snap.files):
            with storage.open(posixpath.join(snap.path, rel), "rb") as f:
                files[rel] = base64.b64encode(f.read()).decode()
        model["files"] = files
    return model
