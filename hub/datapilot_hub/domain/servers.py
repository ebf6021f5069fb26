"""Notebook servers seen from the data service: counting, metering, per-org culling.

JupyterHub knows which servers run; the catalog knows which organization they belong
to (the server's name is the organization slug). One periodic task of the data service
(:meth:`ServerWatcher.tick`) asks the hub for the active servers and

- records ``server_seconds`` usage for every server that was up since the last tick,
- stops servers idle longer than their organization's ``idle_timeout`` setting,
  using the hub's ``last_activity``.

jupyterhub-idle-culler runs as a hub-managed service with one global timeout, as the
backstop for organizations that did not set one.
"""

from __future__ import annotations

import logging
import time
from datetime import datetime
from typing import Any

from sqlalchemy import select

from datapilot_contract import is_org_slug, runtime_org

from ..catalog import Catalog, Organization, utcnow
from ..hubapi import HubClient
from .org_settings import settings_of

log = logging.getLogger(__name__)


def _parse_time(value: str | None) -> datetime | None:
    if not value:
        return None
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


class ServerWatcher:
    """Counts, meters and culls the organizations' notebook servers.

    Parameters
    ----------
    catalog : Catalog
        The catalog (organizations and their settings).
    hub : HubClient
        The hub API, with a token that may read users and stop servers.
    plans : Plans
        Where usage is recorded.
    """

    def __init__(self, catalog: Catalog, hub: HubClient, plans: Any) -> None:
        self.catalog = catalog
        self.hub = hub
        self.plans = plans
        self._last_tick: float | None = None

    async def active_servers(self) -> list[dict[str, Any]]:
        """Every active (running or starting) named server whose name is an org slug.

        Each item: ``{"user", "org", "ready", "pending", "started", "last_activity"}``.
        """
        users: list[dict[str, Any]] = []
        # the hub caps a page (api_page_max_limit, 200 by default): read until it is empty
        while True:
            page = await self.hub.request(
                "GET", f"/users?state=active&offset={len(users)}&limit=200"
            )
            if isinstance(page, dict):  # a paginated answer
                page = page.get("items", [])
            if not page:
                break
            users.extend(page)
        out = []
        for user in users:
            for name, server in (user.get("servers") or {}).items():
                if not name or not is_org_slug(name) or runtime_org(user["name"]):
                    # (an organization's dashboard server is no member's notebook server)
                    continue
                out.append(
                    {
                        "user": user["name"],
                        "org": name,
                        "ready": bool(server.get("ready")),
                        "pending": server.get("pending"),
                        "started": _parse_time(server.get("started")),
                        "last_activity": _parse_time(server.get("last_activity")),
                    }
                )
        return out

    async def count_running(self, slug: str, except_user: str | None = None) -> int:
        """How many servers of organization ``slug`` are active, not counting one user's."""
        return sum(
            1
            for s in await self.active_servers()
            if s["org"] == slug and s["user"] != except_user and s["pending"] != "stop"
        )

    async def tick(self, now: datetime | None = None) -> dict[str, Any]:
        """Meter and cull once; returns what was done (for logs and tests).

        Parameters
        ----------
        now : datetime, optional
            The time idleness is measured at (default: now).
        """
        now_mono = time.monotonic()
        elapsed = None if self._last_tick is None else now_mono - self._last_tick
        self._last_tick = now_mono
        servers = await self.active_servers()
        with self.catalog.session(system=True) as db:
            orgs = {o.slug: (o.id, settings_of(o)) for o in db.scalars(select(Organization)).all()}
        now = now or utcnow()
        metered: dict[tuple[int, str], float] = {}
        culled = []
        for s in servers:
            if s["org"] not in orgs or not s["ready"]:
                continue
            org_id, settings = orgs[s["org"]]
            if elapsed is not None:
                up = elapsed
                if s["started"] is not None:
                    up = min(up, (now - s["started"]).total_seconds())
                key = (org_id, s["user"])
                metered[key] = metered.get(key, 0.0) + max(up, 0.0)
            idle_timeout = settings.get("idle_timeout")
            last = s["last_activity"] or s["started"]
            if idle_timeout and last is not None:
                idle = (now - last).total_seconds()
                if idle > idle_timeout:
                    log.info(
                        "Stopping %s/%s: idle %.0fs > %ss (organization setting)",
                        s["user"],
                        s["org"],
                        idle,
                        idle_timeout,
                    )
                    await self.hub.stop_server(s["user"], s["org"])
                    culled.append({"user": s["user"], "org": s["org"], "idle": idle})
        for (org_id, user), seconds in metered.items():
            if seconds > 0:
                self.plans.record(org_id, "server_seconds", seconds, user)
        return {"servers": len(servers), "metered": len(metered), "culled": culled}
