"""A dashboard's page: what it is, which dataset versions it shows, its versions; its
publisher (or ``dashboards:manage``) may roll it back or unpublish it here.

The gallery itself is on the organization's home (:mod:`.datasets`). The forms do what
the API's ``POST .../rollback`` and ``DELETE`` do, audited as ``dashboard.rollback`` and
``dashboard.unpublish``; the buttons show only to those the domain would let act.
"""

from __future__ import annotations

from typing import Any

from ...domain._identity import OrgContext
from ...errors import bad_request
from ._base import FormPageHandler

ORG = r"orgs/(?P<org>[^/]+)"
SLUG = r"(?P<slug>[^/]+)"


class DashboardPageHandler(FormPageHandler):
    """``orgs/<slug>/dashboards/<slug>``: a dashboard's details; rollback, unpublish."""

    tab = "datasets"
    template = "dashboard.html"
    # who may act is the publisher or dashboards:manage: the domain decides (403 otherwise)
    actions = {
        "rollback": ("rollback", "dashboard.rollback", "dashboards:view"),
        "unpublish": ("unpublish", "dashboard.unpublish", "dashboards:view"),
    }

    def page_model(self, ctx: OrgContext) -> dict[str, Any]:
        dashboard = self.app.dashboards.get(ctx, self.path_kwargs["slug"])
        may_manage = "dashboards:manage" in ctx.permissions or (
            dashboard["publisher"] == ctx.caller.name and "dashboards:publish" in ctx.permissions
        )
        return {"dashboard": dashboard, "may_manage": may_manage}

    async def rollback(self, ctx: OrgContext) -> None:
        slug = self.path_kwargs["slug"]
        raw = self.field("version")
        self.audit_target = slug
        self.audit_details["version"] = str(raw)[:20]
        try:
            version = int(raw or "")
        except ValueError:
            raise bad_request("version", "version must be a version number.") from None
        self.app.dashboards.rollback(ctx, slug, version)
        self.flash_redirect(
            self.request.path, "success", f"Version {version} of {slug} is current again."
        )

    async def unpublish(self, ctx: OrgContext) -> None:
        slug = self.path_kwargs["slug"]
        self.audit_target = slug
        self.app.dashboards.unpublish(ctx, slug)
        self.flash_redirect(
            self.org_url(ctx.slug), "success", f"Unpublished {slug}: it is off the gallery."
        )


default_handlers = [(rf"{ORG}/dashboards/{SLUG}", DashboardPageHandler)]
