"""Team pages: an organization's members, invitations, settings, plan and usage, audit log.

Server-rendered from the Jinja2 templates in ``templates/datapilot/`` (repository root),
in the JupyterHub look: they link the hub's own stylesheet (Bootstrap 5 with the hub's
theme) and need no JavaScript. Every page is under
``/services/datapilot/orgs/<slug>/`` and every action on it is a form that POSTs to the
page's own URL with the ``_xsrf`` token.

Actions call the same domain services as the API (:mod:`..handlers.orgs`,
``invitations``, ``settings``) and are audited like the API calls, under the same action
names (the handlers here are :class:`~.handlers.base.APIHandler` subclasses for that
reason, answering HTML instead of JSON). A done action redirects back to the page
(303) with a flash message; a refused one (:class:`~datapilot_hub.errors.DatapilotError`)
shows the page again with the message and the error's status. Permissions are the
API's: a non-member gets 404, a member without the permission sees the page read-only
(members, settings) or a 403 (invitations, audit), and a 403 for any action.
"""

from __future__ import annotations

import json
import sys
from functools import lru_cache
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from jinja2 import Environment, FileSystemLoader, StrictUndefined
from jupyterhub.utils import get_browser_protocol
from markupsafe import Markup
from sqlalchemy.exc import SQLAlchemyError
from tornado import web

from ..domain._identity import OrgContext
from ..domain.audit import AuditQuery
from ..domain.invitations import DEFAULT_EXPIRES_IN
from ..domain.plans import LIMITS
from ..errors import DatapilotError, bad_request
from ..permissions import ROLES
from .handlers.base import APIHandler
from .handlers.invitations import invitation_links

ORG = r"orgs/(?P<org>[^/]+)"

# the hub's stylesheet, scripts and logo are same-origin (through the proxy); no inline code
PAGE_CSP = (
    "frame-ancestors 'none'; default-src 'none'; style-src 'self'; script-src 'self';"
    " img-src 'self' data:; font-src 'self'; form-action 'self'; base-uri 'none'"
)

FLASH_COOKIE = "datapilot-flash"

#: (page, title, permission needed to see it or None) in the order of the tabs
PAGES = (
    ("members", "Members", None),
    ("invitations", "Invitations", "members:manage"),
    ("settings", "Settings", None),
    ("plan", "Plan and usage", None),
    ("audit", "Audit log", "audit:read"),
)

#: the expiry choices of the invitation form, in seconds
EXPIRY_CHOICES = (
    (3600, "1 hour"),
    (24 * 3600, "1 day"),
    (DEFAULT_EXPIRES_IN, "7 days"),
    (30 * 24 * 3600, "30 days"),
    (90 * 24 * 3600, "90 days"),
)

_AUDIT_ARGS = ("user", "action", "since", "until", "limit", "offset")


def template_dir() -> Path:
    """The directory of the team pages' templates, ``templates/datapilot``.

    Looked up from this package's location upwards (a repository checkout or an
    editable install: ``<repo>/hub/datapilot_hub/service/`` -> ``<repo>/templates``), then
    under ``<sys.prefix>/share/datapilot/templates`` (where a wheel may install them).
    """
    here = Path(__file__).resolve()
    candidates = [parent / "templates" / "datapilot" for parent in here.parents]
    candidates.append(Path(sys.prefix) / "share" / "datapilot" / "templates" / "datapilot")
    for path in candidates:
        if (path / "team_base.html").is_file():
            return path
    raise RuntimeError(
        "Datapilot's page templates (templates/datapilot/team_base.html) were not found"
        f" above {here.parent} or in {sys.prefix}/share/datapilot/templates."
    )


@lru_cache(maxsize=1)
def environment() -> Environment:
    """The Jinja2 environment of the team pages (autoescaped, strict about names)."""
    env = Environment(
        loader=FileSystemLoader(str(template_dir())),
        autoescape=True,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["bytes"] = human_bytes
    return env


def human_bytes(value: Any) -> str:
    """``1073741824`` -> ``"1 GiB"``; ``None`` -> ``"unlimited"``."""
    if value is None:
        return "unlimited"
    n = float(value)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(n) < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "B" or n == int(n) else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n} TiB"  # pragma: no cover - the loop returns


def size_field(value: int | None) -> str:
    """A byte count as the settings form shows it (``2G``, ``512M``, or bytes)."""
    if value is None:
        return ""
    for unit, size in (("T", 1024**4), ("G", 1024**3), ("M", 1024**2), ("K", 1024)):
        if value % size == 0:
            return f"{value // size}{unit}"
    return str(value)


class TeamPageHandler(APIHandler):
    """The base of the team pages: an HTML page of one organization, and its form actions.

    A subclass names its :attr:`page` and :attr:`template`, builds the template's data in
    :meth:`page_model`, and maps the form's ``action`` field to methods in :attr:`actions`
    (``{action: (method name, audit action, permission)}``).
    """

    page = ""
    template = ""
    #: form action -> (handler method, audit action, permission it needs)
    actions: dict[str, tuple[str, str, str]] = {}

    def set_default_headers(self) -> None:
        self.set_header("Content-Type", "text/html; charset=utf-8")
        self.set_header("Content-Security-Policy", PAGE_CSP)
        self.set_header("Cache-Control", "no-store")
        self.set_header("X-Content-Type-Options", "nosniff")

    # -- rendering -----------------------------------------------------------------------

    def page_model(self, ctx: OrgContext) -> dict[str, Any]:
        """What the template shows (may raise DatapilotError, e.g. a 403).

        Parameters
        ----------
        ctx : OrgContext
            The caller in the organization.
        """
        return {}

    def page_url(self, slug: str, page: str | None = None) -> str:
        """The URL path of a team page of an organization.

        Parameters
        ----------
        slug : str
            The organization.
        page : str, optional
            ``members``, ``invitations``, ...; this handler's page by default.
        """
        return f"{self.app.service_prefix}orgs/{slug}/{page or self.page}"

    def render_html(self, template: str, status: int = 200, **ns: Any) -> None:
        """Render a template with the names every page uses, and finish.

        Parameters
        ----------
        template : str
            A file of ``templates/datapilot/``.
        status : int
            The HTTP status of the answer.
        **ns
            More names for the template; ``ctx`` (the OrgContext) gives the organization's
            heading and tabs, ``flash`` a message (else the one a redirect left, if any).
        """
        hub_prefix = self.hub_auth.hub_prefix
        user = self.current_user or {}
        ctx: OrgContext | None = ns.pop("ctx", None)
        tabs = []
        if ctx is not None:
            tabs = [
                {"page": p, "title": t, "url": self.page_url(ctx.slug, p)}
                for p, t, perm in PAGES
                if perm is None or perm in ctx.permissions
            ]
        names = {
            "user_name": user.get("name"),
            "hub_prefix": hub_prefix,
            "static_prefix": f"{hub_prefix}static/",
            "service_prefix": self.app.service_prefix,
            "api_prefix": self.app.api_prefix,
            "xsrf_form_html": Markup(self.xsrf_form_html()) if user else "",
            "org": ctx,
            "can": lambda perm: ctx is not None and perm in ctx.permissions,
            "tabs": tabs,
            "current_page": self.page,
            "error": None,
            "roles": ROLES,
            **ns,
        }
        if "flash" not in ns:
            names["flash"] = self._take_flash()
        html = environment().get_template(template).render(**names)
        self.set_status(status)
        self.finish(html)

    def show(
        self, ctx: OrgContext, status: int = 200, error: DatapilotError | None = None, **extra: Any
    ) -> None:
        """Render this page, with an error message and status when given.

        Parameters
        ----------
        ctx : OrgContext
            The caller in the organization.
        status : int
            The HTTP status (the error's status when an action was refused).
        error : DatapilotError, optional
            Why the action was refused, shown above the page.
        **extra
            More names for the template (they override :meth:`page_model`'s).
        """
        try:
            model = self.page_model(ctx)
        except DatapilotError as e:
            # the page itself is refused (a 403 for invitations or audit): say why
            shown = error or e
            self.render_html(
                "team_error.html",
                shown.status,
                ctx=ctx,
                message=shown.message,
                error_status=shown.status,
            )
            return
        names = {**model, **extra, "error": error.message if error else None}
        self.render_html(self.template, status, ctx=ctx, **names)

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        exc = kwargs.get("exc_info", (None, None, None))[1]
        if isinstance(exc, SQLAlchemyError):
            self.log.error("Catalog error", exc_info=kwargs["exc_info"])
        if isinstance(exc, DatapilotError):
            message, self._error_code = exc.message, exc.code
        elif isinstance(exc, web.HTTPError) and status_code < 500:
            message = exc.log_message % exc.args if exc.args else (exc.log_message or "")
            message = message or f"The request was refused ({status_code})."
        else:
            message = "Something went wrong on our side; the error is in the service's log."
        # the organization's navigation only when the caller is known to be a member
        ctx = self._audit_ctx if status_code != 404 else None
        self.render_html(
            "team_error.html",
            status_code,
            ctx=ctx,
            message=message,
            error_status=status_code,
            flash=None,
        )

    # -- flash messages (POST, redirect, GET) ----------------------------------------------

    def flash_redirect(
        self, ctx: OrgContext, level: str, text: str, url: str | None = None
    ) -> None:
        """Redirect (303) to this page (or ``url``) with a message shown there once.

        The message travels in a signed, HTTP-only cookie of the service's path, removed
        when the page shows it.

        Parameters
        ----------
        ctx : OrgContext
            The caller in the organization.
        level : str
            ``success``, ``info`` or ``warning`` (a Bootstrap alert class).
        text : str
            The message.
        url : str, optional
            Where to go instead of this page.
        """
        self.set_signed_cookie(
            FLASH_COOKIE,
            json.dumps([level, text]),
            expires_days=None,
            path=self.app.service_prefix,
            httponly=True,
            # the browser's protocol, as the proxy forwards it (the service itself is plain http)
            secure=get_browser_protocol(self.request) == "https",
            samesite="Lax",
        )
        self.redirect(url or self.page_url(ctx.slug), status=303)

    def _take_flash(self) -> dict[str, str] | None:
        raw = self.get_signed_cookie(FLASH_COOKIE, max_age_days=1)
        if raw is None:
            return None
        self.clear_cookie(FLASH_COOKIE, path=self.app.service_prefix)
        try:
            level, text = json.loads(raw)
        except (ValueError, TypeError):
            return None
        return {"level": level if level in ("success", "info", "warning") else "info", "text": text}

    # -- requests --------------------------------------------------------------------------

    def field(self, name: str) -> str | None:
        """A form field, stripped; ``None`` when missing or empty.

        Parameters
        ----------
        name : str
            The field's name.
        """
        value = self.get_body_argument(name, None)
        if value is None:
            return None
        value = value.strip()
        return value or None

    @web.authenticated
    def get(self, org: str) -> None:
        self.show(self.org(org))

    @web.authenticated
    async def post(self, org: str) -> None:
        if not self.actions:
            raise web.HTTPError(405)
        ctx = self.org(org)
        action = self.get_body_argument("action", "")
        if action not in self.actions:
            raise bad_request("action", f"action must be one of {', '.join(sorted(self.actions))}.")
        method, audit_action, permission = self.actions[action]
        # audited like the API call that does the same (outcome and status in on_finish)
        self.audit_actions = {"POST": audit_action}
        self.audit_details = {"via": "team page"}
        try:
            ctx.require(permission)
            await getattr(self, method)(ctx)
        except DatapilotError as e:
            self._error_code = e.code
            self.show(ctx, e.status, error=e)


class MembersPageHandler(TeamPageHandler):
    """``orgs/<slug>/members``: members and roles; add, change role, remove (members:manage)."""

    page = "members"
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
        self.flash_redirect(ctx, "success", f"{verb} {model['name']}: {model['role']}.")

    async def remove_member(self, ctx: OrgContext) -> None:
        user = self.field("user") or ""
        self.audit_target = user
        await self.app.orgs.remove_member(ctx, user)
        if user == ctx.caller.name:
            # you left: the organization's pages are no longer yours
            self.redirect(f"{self.hub_auth.hub_prefix}home", status=303)
            return
        self.flash_redirect(ctx, "success", f"Removed {user} from {ctx.org_name}.")


class InvitationsPageHandler(TeamPageHandler):
    """``orgs/<slug>/invitations`` (members:manage): list, create (the link shown once), revoke.

    Creating answers with the page itself (201) rather than a redirect: the invitation
    code is shown this once and is never stored, so it must not travel in a cookie or
    a URL to a later page.
    """

    page = "invitations"
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
        self.audit_target = model["id"]
        self.audit_details.update(role=model["role"], email=model["email"])
        link = invitation_links(self.app, model.pop("code"))["link"]
        model["url"] = f"{get_browser_protocol(self.request)}://{self.request.host}{link}"
        self.show(
            ctx,
            201,
            flash={
                "level": "success",
                "text": "Invitation created. Copy the link now: it is shown only this once.",
            },
            new_invitation=model,
        )

    async def revoke_invitation(self, ctx: OrgContext) -> None:
        invitation_id = self.field("invitation") or ""
        self.audit_target = invitation_id
        self.app.invitations.revoke(ctx, invitation_id)
        self.flash_redirect(ctx, "success", "Invitation revoked: its link no longer works.")


class SettingsPageHandler(TeamPageHandler):
    """``orgs/<slug>/settings``: any member reads them; org:manage changes them."""

    page = "settings"
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
        self.flash_redirect(ctx, "success", "Settings saved.")


class PlanPageHandler(TeamPageHandler):
    """``orgs/<slug>/plan``: the plan, its limits and the usage (any member).

    A hub administrator also gets a form to change the plan (``PUT /orgs/{org}/plan``).
    """

    page = "plan"
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
        self.flash_redirect(ctx, "success", f"The plan is now {model['plan']}.")


class AuditPageHandler(TeamPageHandler):
    """``orgs/<slug>/audit`` (audit:read): filter form, events table, CSV export link."""

    page = "audit"
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
        base = self.page_url(ctx.slug)
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
            self.render_html(
                "team_error.html", e.status, ctx=ctx, message=e.message, error_status=e.status
            )
            return
        # a bad filter is a 400 that still shows the form, to be corrected
        status = model.pop("_status")
        self.render_html(self.template, status, ctx=ctx, error=model["query_error"], **model)


class OrgPagesHandler(TeamPageHandler):
    """``orgs/<slug>``: the first team page (members)."""

    @web.authenticated
    def get(self, org: str) -> None:
        ctx = self.org(org)
        self.redirect(self.page_url(ctx.slug, "members"))


def _number(value: str | None, field: str, kind: type) -> Any:
    """A form field as ``kind`` (``None`` when empty), or a 400 naming the field."""
    if value is None:
        return None
    try:
        return kind(value)
    except ValueError:
        raise bad_request(field, f"{field} must be a number, not {value!r}.") from None


default_handlers = [
    (rf"{ORG}/?", OrgPagesHandler),
    (rf"{ORG}/members", MembersPageHandler),
    (rf"{ORG}/invitations", InvitationsPageHandler),
    (rf"{ORG}/settings", SettingsPageHandler),
    (rf"{ORG}/plan", PlanPageHandler),
    (rf"{ORG}/audit", AuditPageHandler),
]
