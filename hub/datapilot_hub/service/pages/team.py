"""Team pages: an organization's members, invitations, settings, plan and usage, audit log.

Server-rendered (:mod:`._base`), no JavaScript; every action is a form that POSTs to the
page's own URL with the ``_xsrf`` token and calls the same domain services as the API
(:mod:`..handlers.orgs`, ``invitations``, ``settings``), audited under the same action
names. Permissions are the API's: a non-member gets 404, a member without the
permission sees the page read-only (members, settings) or a 403 (invitations, audit),
and a 403 for any action.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from ...domain._identity import OrgContext
from ...domain.audit import AuditQuery
from ...domain.invitations import DEFAULT_EXPIRES_IN
from ...domain.plans import LIMITS
from ...errors import DatapilotError, bad_request
from ..handlers.invitations import invitation_links, mail_invitation, public_link
from ._base import FormPageHandler

ORG = r"orgs/(?P<org>[^/]+)"

#: the expiry choices of the invitation form, in seconds
EXPIRY_CHOICES = (
    (3600, "1 hour"),
    (24 * 3600, "1 day"),
    (DEFAULT_EXPIRES_IN, "7 days"),
    (30 * 24 * 3600, "30 days"),
    (90 * 24 * 3600, "90 days"),
)

_AUDIT_ARGS = ("user", "action", "since", "until", "limit", "offset")


def size_field(value: int | None) -> str:
    """A byte count as the settings form shows it (``2G``, ``512M``, or bytes)."""
    if value is None:
        return ""
    for unit, size in (("T", 1024**4), ("G", 1024**3), ("M", 1024**2), ("K", 1024)):
        if value % size == 0:
            return f"{value // size}{unit}"
    return str(value)


class MembersPageHandler(FormPageHandler):
    """``orgs/<slug>/members``: members and roles; add, change role, remove (members:manage)."""

    tab = "members"
    template = "team_members.html"
    actions = {
        "add": ("add_member", "member.set", "members:manage"),
        "role": ("change_role", "member.set", "members:manage"),
        "remove": ("remove_member", "member.remove", "members:manage"),
    }

    def page_model(self, ctx: OrgContext) -> dict[str, Any]:
        return {"members": self.app.orgs.members(ctx)}

    async def add_member(self, ctx: OrgContext) -> None:
        await self._set_member(ctx)

    async def change_role(self, ctx: OrgContext) -> None:
        await self._set_member(ctx)

    async def _set_member(self, ctx: OrgContext) -> None:
        user, role = self.field("user") or "", self.field("role")
        self.audit_target = user
        self.audit_details["role"] = str(role)[:30]
        model, created = await self.app.orgs.set_member(ctx, user, role)
        verb = "Added" if created else "Changed the role of"
        self.flash_redirect(
            self.org_url(ctx.slug, self.tab), "success", f"{verb} {model['name']}: {model['role']}."
        )

    async def remove_member(self, ctx: OrgContext) -> None:
        user = self.field("user") or ""
        self.audit_target = user
        await self.app.orgs.remove_member(ctx, user)
        if user == ctx.caller.name:
            # you left: the organization's pages are no longer yours
            self.redirect(self.app.service_prefix, status=303)
            return
        self.flash_redirect(
            self.org_url(ctx.slug, self.tab), "success", f"Removed {user} from {ctx.org_name}."
        )


class InvitationsPageHandler(FormPageHandler):
    """``orgs/<slug>/invitations`` (members:manage): list, create (the link shown once), revoke.

    Creating answers with the page itself (201) rather than a redirect: the invitation
    code is shown this once and is never stored, so it must not travel in a cookie or
    a URL to a later page.
    """

    tab = "invitations"
    template = "team_invitations.html"
    actions = {
        "create": ("create_invitation", "invitation.create", "members:manage"),
        "revoke": ("revoke_invitation", "invitation.revoke", "members:manage"),
    }

    def page_model(self, ctx: OrgContext) -> dict[str, Any]:
        return {
            "invitations": self.app.invitations.list(ctx),
            "default_role": self.app.org_settings.get(ctx)["default_role"],
            "expiry_choices": EXPIRY_CHOICES,
            "default_expiry": DEFAULT_EXPIRES_IN,
            "new_invitation": None,
        }

    async def create_invitation(self, ctx: OrgContext) -> None:
        expires = self.field("expires_in")
        expires_in: int | None = None
        if expires is not None:
            try:
                expires_in = int(expires)
            except ValueError:
                raise bad_request("expires_in", "expires_in must be whole seconds.") from None
        model = self.app.invitations.create(
            ctx, self.field("role"), self.field("email"), expires_in
        )
        # the person invited, as the log's reader knows them; the id stays in the details
        self.audit_target = model["email"] or model["id"]
        self.audit_details.update(role=model["role"], email=model["email"], invitation=model["id"])
        link = invitation_links(self.app, model.pop("code"))["link"]
        model["url"] = public_link(self, link)
        mailed = await mail_invitation(self.app, ctx, model, model["url"])
        self.audit_details["emailed"] = mailed["emailed"]
        text = "Invitation created. Copy the link now: it is shown only this once."
        level = "success"
        if mailed["emailed"]:
            text = f"Invitation created and e-mailed to {model['email']}. {text}"
        elif "email_error" in mailed:
            level = "warning"
            text = (
                f"Invitation created, but the e-mail to {model['email']} could not be sent"
                f" ({mailed['email_error']}). Copy the link and send it yourself: it is shown"
                " only this once."
            )
        self.show(ctx, 201, flash={"level": level, "text": text}, new_invitation=model)

    async def revoke_invitation(self, ctx: OrgContext) -> None:
        invitation_id = self.field("invitation") or ""
        self.audit_target = invitation_id
        self.audit_details["invitation"] = invitation_id[:64]
        revoked = self.app.invitations.revoke(ctx, invitation_id)
        self.audit_target = revoked["email"] or revoked["id"]
        self.flash_redirect(
            self.org_url(ctx.slug, self.tab),
            "success",
            "Invitation revoked: its link no longer works.",
        )


class SettingsPageHandler(FormPageHandler):
    """``orgs/<slug>/settings``: any member reads them; org:manage changes them."""

    tab = "settings"
    template = "team_settings.html"
    actions = {"update": ("update_settings", "org.settings", "org:manage")}

    def page_model(self, ctx: OrgContext) -> dict[str, Any]:
        settings = self.app.org_settings.get(ctx)
        return {
            "settings": settings,
            "mem_field": size_field(settings["mem_limit"]),
        }

    async def update_settings(self, ctx: OrgContext) -> None:
        body: dict[str, Any] = {}
        if self.field("name") is not None:
            body["name"] = self.field("name")
        if self.field("default_role") is not None:
            body["default_role"] = self.field("default_role")
        # an empty limit field is the hub's default (null in the API)
        body["mem_limit"] = self.field("mem_limit")
        body["cpu_limit"] = _number(self.field("cpu_limit"), "cpu_limit", float)
        body["idle_timeout"] = _number(self.field("idle_timeout"), "idle_timeout", int)
        self.audit_target = ctx.slug
        self.audit_details.update({k: body[k] for k in sorted(body)})
        self.app.org_settings.update(ctx, body)
        if "name" in body:
            await self.app.orgs.publish_group(ctx.slug)
        self.flash_redirect(self.org_url(ctx.slug, self.tab), "success", "Settings saved.")


class PlanPageHandler(FormPageHandler):
    """``orgs/<slug>/plan``: the plan, its limits and the usage (any member).

    A hub administrator also gets a form to change the plan (``PUT /orgs/{org}/plan``).
    """

    tab = "plan"
    template = "team_plan.html"
    # the permission check of a plan change is the hub-admin check of set_plan
    actions = {"plan": ("change_plan", "org.plan", "data:read")}

    def page_model(self, ctx: OrgContext) -> dict[str, Any]:
        info = self.app.orgs.info(ctx)
        return {
            "info": info,
            "limit_names": LIMITS,
            "plans": sorted(self.app.quotas.plans),
            "records": self.app.quotas.history(ctx.org_id, limit=20),
            "is_hub_admin": ctx.caller.hub_admin,
        }

    async def change_plan(self, ctx: OrgContext) -> None:
        plan = self.field("plan")
        self.audit_target = ctx.slug
        self.audit_details["plan"] = str(plan)[:50]
        model = self.app.org_settings.set_plan(ctx, plan)
        self.flash_redirect(
            self.org_url(ctx.slug, self.tab), "success", f"The plan is now {model['plan']}."
        )


class AuditPageHandler(FormPageHandler):
    """``orgs/<slug>/audit`` (audit:read): filter form, events table, CSV export link."""

    tab = "audit"
    template = "team_audit.html"

    def page_model(self, ctx: OrgContext) -> dict[str, Any]:
        ctx.require("audit:read")
        args = {name: self.get_query_argument(name, None) or None for name in _AUDIT_ARGS}
        filters = {k: v for k, v in args.items() if v is not None and k not in ("offset",)}
        try:
            query = AuditQuery.from_arguments(args)
        except DatapilotError as e:
            return {
                "events": [],
                "filters": filters,
                "query_error": e.message,
                "pages": {},
                "csv_url": None,
                "_status": e.status,
            }
        events = self.app.audit.events(ctx, query)
        export = {k: v for k, v in filters.items() if k != "limit"}
        base = self.org_url(ctx.slug, self.tab)
        pages = {}
        if query.offset > 0:
            newer = {**filters, "offset": max(0, query.offset - (query.limit or 0))}
            pages["newer"] = f"{base}?{urlencode(newer)}"
        if query.limit is not None and len(events) == query.limit:
            pages["older"] = (
                f"{base}?{urlencode({**filters, 'offset': query.offset + query.limit})}"
            )
        return {
            "events": events,
            "filters": filters,
            "query_error": None,
            "pages": pages,
            "csv_url": f"{self.app.api_prefix}orgs/{ctx.slug}/audit?"
            + urlencode({"format": "csv", **export}),
            "_status": 200,
        }

    def show(self, ctx: OrgContext, status: int = 200, error=None, **extra: Any) -> None:
        try:
            model = self.page_model(ctx)
        except DatapilotError as e:
            self.render_error(e.status, e.message, ctx)
            return
        # a bad filter is a 400 that still shows the form, to be corrected
        status = model.pop("_status")
        self.render_page(self.template, status, ctx=ctx, error=model["query_error"], **model)


def _number(value: str | None, field: str, kind: type) -> Any:
    """A form field as ``kind`` (``None`` when empty), or a 400 naming the field."""
    if value is None:
        return None
    try:
        return kind(value)
    except ValueError:
        raise bad_request(field, f"{field} must be a number, not {value!r}.") from None


default_handlers = [
    (rf"{ORG}/members", MembersPageHandler),
    (rf"{ORG}/invitations", InvitationsPageHandler),
    (rf"{ORG}/settings", SettingsPageHandler),
    (rf"{ORG}/plan", PlanPageHandler),
    (rf"{ORG}/audit", AuditPageHandler),
]
