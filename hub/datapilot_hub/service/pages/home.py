"""The service's landing page (your organizations) and the form that creates one.

After login the hub sends everyone here (``c.JupyterHub.default_url``): a member of one
organization goes on to its home; others see their organizations, and hub
administrators (everyone, with self-service organizations) the form to create one.
"""

from __future__ import annotations

from ...errors import DatapilotError
from ._base import PageHandler


class HomeHandler(PageHandler):
    """``/services/datapilot/``: your organizations, and a new one."""

    def may_create(self) -> bool:
        """Whether the caller may create organizations (as ``POST /orgs`` decides)."""
        caller = self.caller()
        return caller.hub_admin or self.app.allow_self_service_orgs

    def get(self) -> None:
        orgs = self.app.orgs.memberships_of(self.caller().name)
        every = self.get_query_argument("all", None) is not None
        if len(orgs) == 1 and not self.may_create() and not every:
            # one organization: its home is yours
            self.redirect(self.org_url(orgs[0]["slug"]))
            return
        self.render_page("home.html", orgs=orgs, may_create=self.may_create(), form={})


class NewOrgHandler(PageHandler):
    """``/services/datapilot/new``: create an organization (hub admins, or self-service).

    The same domain call and audit as ``POST /orgs``; the creator lands on its members
    page, to invite people.
    """

    audit_actions = {"POST": "org.create"}

    def _refuse_unless_allowed(self) -> None:
        caller = self.unbound_caller()
        if not (caller.hub_admin or self.app.allow_self_service_orgs):
            raise DatapilotError(
                403,
                "forbidden",
                "Only hub administrators can create organizations here; ask one to create"
                " yours, or to invite you to an existing one.",
            )

    def get(self) -> None:
        self._refuse_unless_allowed()
        self.render_page("new_org.html", form={}, error_field=None)

    async def post(self) -> None:
        self._refuse_unless_allowed()
        slug, name = self.field("slug"), self.field("name")
        try:
            model = await self.app.orgs.create(self.caller(), slug, name)
        except DatapilotError as e:
            self._error_code = e.code
            self.render_page(
                "new_org.html",
                e.status,
                form={"slug": slug or "", "name": name or ""},
                error=e.message,
                error_field=e.details.get("field"),
            )
            return
        ctx = self.org(model["slug"])
        self.audit_target = model["slug"]
        self.audit_details = {"via": "page"}
        self.flash_redirect(
            self.org_url(ctx.slug, "members"),
            "success",
            f"{model['name']} is ready. Invite your colleagues, or add people who already"
            " have an account.",
        )


default_handlers = [(r"", HomeHandler), (r"new", NewOrgHandler)]
