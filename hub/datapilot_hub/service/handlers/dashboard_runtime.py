"""What an organization's dashboard server asks the data service: snapshots, viewer tokens."""

from __future__ import annotations

import asyncio
from typing import Any

from datapilot_contract import RUNTIME_SERVER, check_dashboard_slug, runtime_org, runtime_user

from ...domain._identity import Caller, org_context, validate_slug
from ...domain.dashboard_runtime import runtime_bundle
from ...domain.dashboards import current_snapshot
from ...errors import DatapilotError, bad_request, checked, not_found
from .base import APIHandler

ORG = r"(?P<org>[^/]+)"
SLUG = r"(?P<slug>[^/]+)"


class RuntimeBundleAPIHandler(APIHandler):
    """GET /orgs/{org}/dashboards/{slug}/runtime-bundle: the current snapshot's files.

    Only for the organization's own dashboard server (its server token): no person, not
    even the publisher, gets a dashboard's code this way (viewers see it rendered, sources
    stripped).
    """

    async def get(self, org: str, slug: str) -> None:
        validate_slug(org)
        checked(check_dashboard_slug, slug, "slug")
        caller = self.caller()
        if runtime_org(caller.name) != org or not caller.may_act_in(org):
            raise not_found("dashboard", slug)
        have: Any = self.get_query_argument("have", None)
        if have is not None:
            if not have.isdigit() or len(have) > 9:
                raise bad_request("have", "have must be a version number.")
            have = int(have)
        model = await asyncio.to_thread(
            runtime_bundle, self.app.catalog, self.app.storage, org, slug, have
        )
        self.write_json(model)


class ViewerTokenAPIHandler(APIHandler):
    """POST /orgs/{org}/dashboards/{slug}/viewer-token: a read-only token for the viewer.

    Called by the organization's dashboard server with the *viewer's* OAuth token for that
    server (``Authorization: token ...``), which the hub issued when the viewer logged in to
    it: so the server cannot ask on behalf of someone who did not open the dashboard. The
    answer is a viewer token (:mod:`~datapilot_hub.domain.viewer_tokens`): reads only, this
    organization only, expiring; the dashboard's kernel reads data with it, and the audit
    log names the viewer. The opening is recorded (``dashboard.open``).
    """

    audit_actions = {"POST": "dashboard.open"}

    def get_current_user(self) -> dict[str, Any] | None:
        # the viewer's token is for the dashboard server, not for this service: it is
        # checked in post() against that server's scope, never as a login here
        self._token_authenticated = True
        return None

    async def post(self, org: str, slug: str) -> None:
        validate_slug(org)
        checked(check_dashboard_slug, slug, "slug")
        scheme, _, token = self.request.headers.get("Authorization", "").partition(" ")
        model = None
        if scheme.lower() in ("token", "bearer") and token.strip():
            model = await self.hub_auth.user_for_token(token.strip(), use_cache=False, sync=False)
        if not model or model.get("kind") != "user":
            raise DatapilotError(
                401, "not_authenticated", "Send the viewer's token for the dashboard server."
            )
        scope = f"access:servers!server={runtime_user(org)}/{RUNTIME_SERVER}"
        if scope not in (model.get("scopes") or ()):
            # a token for something else (or another organization's server)
            raise not_found("organization", org)
        caller = Caller(name=model["name"], hub_admin=bool(model.get("admin")))
        ctx = org_context(self.app.catalog, caller, org)
        self._audit_ctx = ctx
        ctx.require("dashboards:view")
        snap = await asyncio.to_thread(current_snapshot, self.app.catalog, org, slug)
        if snap is None:
            raise not_found("dashboard", slug)
        minted, expires = self.app.viewer_tokens.mint(caller.name, org, slug)
        self.audit_details = {"version": snap.version}
        self.write_json(
            {
                "token": minted,
                "expires": expires,
                "viewer": caller.name,
                "version": snap.version,
                "permissions": sorted(ctx.permissions),
            },
            201,
        )


default_handlers = [
    (rf"/orgs/{ORG}/dashboards/{SLUG}/runtime-bundle", RuntimeBundleAPIHandler),
    (rf"/orgs/{ORG}/dashboards/{SLUG}/viewer-token", ViewerTokenAPIHandler),
]
