"""The stable address of a dashboard: ``dashboards/<org>/<slug>`` reaches its current version.

A member who may view is sent on to the organization's dashboard server (started if it
was not running, and shared with them), which renders the current version; anyone else
gets the same 404 as for a dashboard that does not exist.
"""

from __future__ import annotations

import asyncio
from urllib.parse import quote

from datapilot_contract import RUNTIME_SERVER, check_dashboard_slug, runtime_user

from ...domain.dashboards import current_snapshot
from ...errors import checked, not_found
from ._base import PageHandler


class DashboardOpenHandler(PageHandler):
    """GET dashboards/{org}/{slug}: on to the dashboard server's page of that dashboard."""

    async def get(self, org: str, slug: str) -> None:
        ctx = self.org(org)
        checked(check_dashboard_slug, slug, "slug")
        # a member without the permission learns no more than a stranger
        if "dashboards:view" not in ctx.permissions:
            raise not_found("dashboard", slug)
        snap = await asyncio.to_thread(current_snapshot, self.app.catalog, ctx.slug, slug)
        if snap is None:
            raise not_found("dashboard", slug)
        runtime = self.app.runtime_servers
        await runtime.ensure_running(ctx.slug)
        # granted when they joined; again here, for a share lost while the hub was away
        await runtime.hub.share_dashboards(ctx.slug, ctx.caller.name)
        # the hub's base URL ("/" unless JupyterHub.base_url says otherwise)
        base = self.hub_prefix.rstrip("/").removesuffix("hub")
        self.redirect(
            f"{base}user/{quote(runtime_user(ctx.slug))}/{RUNTIME_SERVER}/d/{quote(slug)}/"
        )


default_handlers = [
    (r"dashboards/(?P<org>[^/]+)/(?P<slug>[^/]+)/?", DashboardOpenHandler),
]
