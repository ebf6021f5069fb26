"""The base of the data service's HTML pages: one Jinja2 lookup, the hub's look, form errors.

Every page is rendered from ``templates/datapilot/`` (repository root, or where a wheel
installs it) by one autoescaped environment, in the hub's look (its stylesheet and
navigation, no inline code: the CSP allows same-origin scripts only). A page handler is
not a JSON API handler: refusals and unknown pages are the styled error page, and a
refused form action shows the form again with the message and the API's status. What a
page does it does through the same domain services as the API, under the same
permissions and audit actions (:class:`~datapilot_hub.service._requests.AuditedHandler`).
"""

from __future__ import annotations

import json
import sys
from functools import lru_cache
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined
from jupyterhub.utils import get_browser_protocol
from markupsafe import Markup
from sqlalchemy.exc import SQLAlchemyError
from tornado import web

from ..._human import human_bytes, number, when
from ...domain._identity import OrgContext
from ...errors import DatapilotError
from ...permissions import ROLES
from .._requests import AuditedHandler

# the hub's stylesheet, scripts and logo are same-origin (through the proxy); no inline code
PAGE_CSP = (
    "frame-ancestors 'none'; default-src 'none'; style-src 'self'; script-src 'self';"
    " img-src 'self' data:; font-src 'self'; form-action 'self'; base-uri 'none';"
    " connect-src 'self'"
)

FLASH_COOKIE = "datapilot-flash"

#: (page, title, permission needed to see it or None) in the order of an organization's tabs
TABS = (
    ("datasets", "Datasets", "data:read"),
    ("members", "Members", None),
    ("invitations", "Invitations", "members:manage"),
    ("settings", "Settings", None),
    ("plan", "Plan and usage", None),
    ("audit", "Audit log", "audit:read"),
)


def template_dir() -> Path:
    """The directory of the service's page templates, ``templates/datapilot``.

    Looked up from this package's location upwards (a repository checkout or an
    editable install: ``<repo>/hub/datapilot_hub/service/pages/`` -> ``<repo>/templates``),
    then under ``<sys.prefix>/share/datapilot/templates`` (where a wheel installs them).
    """
    here = Path(__file__).resolve()
    candidates = [parent / "templates" / "datapilot" for parent in here.parents]
    candidates.append(Path(sys.prefix) / "share" / "datapilot" / "templates" / "datapilot")
    for path in candidates:
        if (path / "base.html").is_file():
            return path
    raise RuntimeError(
        "Datapilot's page templates (templates/datapilot/base.html) were not found"
        f" above {here.parent} or in {sys.prefix}/share/datapilot/templates."
    )


@lru_cache(maxsize=1)
def environment() -> Environment:
    """The Jinja2 environment of every page (autoescaped, strict about names)."""
    env = Environment(
        loader=FileSystemLoader(str(template_dir())),
        autoescape=True,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["bytes"] = human_bytes
    env.filters["when"] = when
    env.filters["number"] = number
    return env


class PageHandler(AuditedHandler):
    """An HTML page of the data service (logged in through JupyterHub OAuth).

    A page handler renders a template with :meth:`render_page`; a refusal
    (:class:`~datapilot_hub.errors.DatapilotError`, or tornado's ``HTTPError``) anywhere
    becomes the styled error page with its status and message. Handlers that take form
    actions see :class:`FormPageHandler`.
    """

    #: the tab of an organization's pages this page belongs to
    tab = ""
    #: whether an anonymous visitor is sent to the login page (else the page shows itself)
    login_required = True

    def set_default_headers(self) -> None:
        self.set_header("Content-Type", "text/html; charset=utf-8")
        self.set_header("Content-Security-Policy", PAGE_CSP)
        self.set_header("Cache-Control", "no-store")
        self.set_header("X-Content-Type-Options", "nosniff")

    def prepare(self) -> Any:
        if self.login_required and not self.current_user:
            # JupyterHub's OAuth: the hub's login page, then back here
            return web.authenticated(lambda handler: None)(self)
        return None

    # -- URLs ------------------------------------------------------------------------------

    def org_url(self, slug: str, page: str = "datasets") -> str:
        """The URL path of an organization's page (its home is the datasets).

        Parameters
        ----------
        slug : str
            The organization.
        page : str
            ``datasets`` (the home), ``members``, ``invitations``, ``upload``, ...
        """
        base = f"{self.app.service_prefix}orgs/{slug}/"
        return base if page == "datasets" else f"{base}{page}"

    @property
    def hub_prefix(self) -> str:
        """The hub's URL prefix, ``/hub/``."""
        return self.hub_auth.hub_prefix

    # -- rendering -------------------------------------------------------------------------

    def render_page(self, template: str, status: int = 200, **ns: Any) -> None:
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
        user = self.current_user or {}
        ctx: OrgContext | None = ns.pop("ctx", None)
        tabs = []
        if ctx is not None:
            tabs = [
                {"page": p, "title": t, "url": self.org_url(ctx.slug, p)}
                for p, t, perm in TABS
                if perm is None or perm in ctx.permissions
            ]
        names = {
            "user_name": user.get("name"),
            "user_admin": bool(user.get("admin")),
            # a Viewer everywhere gets no link to the notebook servers, which they may not start
            "may_run_notebooks": self._may_run_notebooks(user),
            "native_auth": self.app.native_auth,
            "hub_prefix": self.hub_prefix,
            "static_prefix": f"{self.hub_prefix}static/",
            "service_prefix": self.app.service_prefix,
            "page_static": f"{self.app.service_prefix}static/",
            "api_prefix": self.app.api_prefix,
            "xsrf_form_html": Markup(self.xsrf_form_html()) if user else "",
            "xsrf_token": self.xsrf_token.decode() if user else "",
            "org": ctx,
            "org_home": self.org_url(ctx.slug) if ctx is not None else None,
            "can": lambda perm: ctx is not None and perm in ctx.permissions,
            "tabs": tabs,
            "current_page": self.tab,
            "error": None,
            "roles": ROLES,
            **ns,
        }
        if "flash" not in ns:
            names["flash"] = self._take_flash()
        html = environment().get_template(template).render(**names)
        self.set_status(status)
        self.finish(html)

    def _may_run_notebooks(self, user: dict[str, Any]) -> bool:
        if not user.get("name"):
            return False
        if user.get("admin"):
            return True
        return any(
            "notebooks:run" in m["permissions"] for m in self.app.orgs.memberships_of(user["name"])
        )

    def render_error(
        self, status: int, message: str, ctx: OrgContext | None = None, title: str | None = None
    ) -> None:
        """The styled error page: what went wrong, and where to go from here.

        Parameters
        ----------
        status : int
            The HTTP status.
        message : str
            A sentence for a person.
        ctx : OrgContext, optional
            The organization's navigation, when the caller is known to be a member.
        title : str, optional
            The page's heading (default from the status).
        """
        headings = {
            400: "That did not work",
            401: "Please log in",
            403: "Not allowed",
            404: "Page not found",
            409: "That conflicts with something",
            413: "Too large",
        }
        self.render_page(
            "error.html",
            status,
            ctx=ctx,
            message=message,
            error_status=status,
            heading=title or headings.get(status, "Something went wrong"),
            flash=None,
        )

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
            message = (
                "Something went wrong on our side; the error is in the data service's log."
                " Try again, and tell your administrator if it goes on."
            )
        # the organization's navigation only when the caller is known to be a member
        ctx = self._audit_ctx if status_code != 404 else None
        self.render_error(status_code, message, ctx)

    # -- flash messages (POST, redirect, GET) ----------------------------------------------

    def flash_redirect(self, url: str, level: str, text: str) -> None:
        """Redirect (303) to ``url`` with a message shown there once.

        The message travels in a signed, HTTP-only cookie of the service's path, removed
        when the page shows it.

        Parameters
        ----------
        url : str
            Where to go.
        level : str
            ``success``, ``info`` or ``warning`` (a Bootstrap alert class).
        text : str
            The message.
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
        self.redirect(url, status=303)

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

    # -- forms -----------------------------------------------------------------------------

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


class FormPageHandler(PageHandler):
    """A page of one organization whose forms POST actions to the page's own URL.

    A subclass names its :attr:`tab` and :attr:`template`, builds the template's data
    in :meth:`page_model`, and maps the form's ``action`` field to methods in
    :attr:`actions` (``{action: (method name, audit action, permission)}``). A done
    action redirects (303) with a message; a refused one shows the page again with the
    message, the API's status, and the audit event's outcome.
    """

    template = ""
    #: form action -> (handler method, audit action, permission it needs)
    actions: dict[str, tuple[str, str, str]] = {}

    def page_model(self, ctx: OrgContext) -> dict[str, Any]:
        """What the template shows (may raise DatapilotError, e.g. a 403).

        Parameters
        ----------
        ctx : OrgContext
            The caller in the organization.
        """
        return {}

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
            Why the action was refused, shown above the page (and next to its field).
        **extra
            More names for the template (they override :meth:`page_model`'s).
        """
        try:
            model = self.page_model(ctx)
        except DatapilotError as e:
            # the page itself is refused (a 403 for invitations or audit): say why
            shown = error or e
            self.render_error(shown.status, shown.message, ctx)
            return
        names = {
            **model,
            **extra,
            "error": error.message if error else None,
            "error_field": error.details.get("field") if error else None,
            "form": {k: self.get_body_argument(k, "") for k in self.request.body_arguments}
            if error
            else {},
        }
        self.render_page(self.template, status, ctx=ctx, **names)

    def get(self, org: str, **kwargs: str) -> None:
        self.show(self.org(org))

    async def post(self, org: str, **kwargs: str) -> None:
        if not self.actions:
            raise web.HTTPError(405)
        ctx = self.org(org)
        action = self.get_body_argument("action", "")
        if action not in self.actions:
            raise DatapilotError(
                400,
                "invalid_input",
                f"action must be one of {', '.join(sorted(self.actions))}.",
                field="action",
            )
        method, audit_action, permission = self.actions[action]
        # audited like the API call that does the same (outcome and status in on_finish)
        self.audit_actions = {"POST": audit_action}
        self.audit_details = {"via": "page"}
        try:
            ctx.require(permission)
            await getattr(self, method)(ctx)
        except DatapilotError as e:
            self._error_code = e.code
            self.show(ctx, e.status, error=e)


class NotFoundPageHandler(PageHandler):
    """Any path of the service that no page or API answers: the styled 404."""

    login_required = False

    def prepare(self) -> None:
        raise web.HTTPError(
            404,
            f"There is no page at {self.request.path}. It may have moved, or the link was"
            " mistyped.",
        )
