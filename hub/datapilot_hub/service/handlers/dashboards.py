"""Dashboards: list, publish, describe, versions, roll back, unpublish, thumbnail."""

from __future__ import annotations

import asyncio

from ...domain.dashboards import request_from_json
from .base import APIHandler
from .orgs import ORG

SLUG = r"(?P<slug>[^/]+)"


class DashboardsAPIHandler(APIHandler):
    """GET /orgs/{org}/dashboards (``dashboards:view``, ``?q=`` filters); POST publishes a
    notebook (``dashboards:publish``).

    The body (a notebook with its files in base64) may be as large as the service's
    ``max_publish_size``, not only ``max_body_size``.
    """

    body_limit_setting = "max_publish_size"
    audit_actions = {"POST": "dashboard.publish"}

    def get(self, org: str) -> None:
        ctx = self.org(org)
        self.write_json({"dashboards": self.app.dashboards.list(ctx, self.query("q"))})

    async def post(self, org: str) -> None:
        ctx = self.org(org)
        ctx.require("dashboards:publish")
        body = self.json_body()
        self.audit_target = body.get("slug") if isinstance(body.get("slug"), str) else None
        req = request_from_json(body, self.app.max_publish_size)
        self.audit_details = {"kind": req.kind, "files": len(req.files), "bytes": req.size}
        loop = asyncio.get_running_loop()
        model = await loop.run_in_executor(None, self.app.dashboards.publish, ctx, req)
        self.audit_details["version"] = model["version"]
        self.set_header("Location", f"{self.app.api_prefix}orgs/{org}/dashboards/{req.slug}")
        self.write_json(model, 201)


class DashboardAPIHandler(APIHandler):
    """GET /orgs/{org}/dashboards/{slug} (``dashboards:view``); DELETE unpublishes it (its
    publisher, or ``dashboards:manage``)."""

    audit_actions = {"DELETE": "dashboard.unpublish"}

    def get(self, org: str, slug: str) -> None:
        self.write_json(self.app.dashboards.get(self.org(org), slug))

    def delete(self, org: str, slug: str) -> None:
        self.app.dashboards.unpublish(self.org(org), slug)
        self.set_status(204)
        self.finish()


class DashboardVersionsAPIHandler(APIHandler):
    """GET /orgs/{org}/dashboards/{slug}/versions (``dashboards:view``)."""

    def get(self, org: str, slug: str) -> None:
        self.write_json({"versions": self.app.dashboards.versions(self.org(org), slug)})


class DashboardRollbackAPIHandler(APIHandler):
    """POST /orgs/{org}/dashboards/{slug}/rollback ``{"version": n}`` (its publisher, or
    ``dashboards:manage``)."""

    audit_actions = {"POST": "dashboard.rollback"}

    def post(self, org: str, slug: str) -> None:
        ctx = self.org(org)
        body = self.json_body()
        self.audit_details = {"version": body.get("version")}
        self.write_json(self.app.dashboards.rollback(ctx, slug, body.get("version")))


class DashboardThumbnailAPIHandler(APIHandler):
    """GET /orgs/{org}/dashboards/{slug}/thumbnail (``dashboards:view``): the gallery's
    picture, a PNG chart from the notebook or a drawn SVG card."""

    def get(self, org: str, slug: str) -> None:
        content_type, data = self.app.dashboards.thumbnail(self.org(org), slug)
        self.set_header("Content-Type", content_type)
        self.set_header("X-Content-Type-Options", "nosniff")
        # the address carries the version (?v=): a new version is a new address
        self.set_header("Cache-Control", "private, max-age=3600")
        self.finish(data)


default_handlers = [
    (rf"/orgs/{ORG}/dashboards", DashboardsAPIHandler),
    (rf"/orgs/{ORG}/dashboards/{SLUG}", DashboardAPIHandler),
    (rf"/orgs/{ORG}/dashboards/{SLUG}/versions", DashboardVersionsAPIHandler),
    (rf"/orgs/{ORG}/dashboards/{SLUG}/rollback", DashboardRollbackAPIHandler),
    (rf"/orgs/{ORG}/dashboards/{SLUG}/thumbnail", DashboardThumbnailAPIHandler),
]
