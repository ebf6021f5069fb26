"""Organization settings, plan, usage, and the policy for a new notebook server."""

from __future__ import annotations

from datetime import datetime

from ...domain.plans import METRICS
from ...errors import DatapilotError, bad_request
from .base import APIHandler
from .orgs import ORG


class OrgSettingsAPIHandler(APIHandler):
    """GET /orgs/{org}/settings (members); PATCH (``org:manage``)."""

    audit_actions = {"PATCH": "org.settings"}

    def get(self, org: str) -> None:
        self.write_json(self.app.org_settings.get(self.org(org)))

    async def patch(self, org: str) -> None:
        ctx = self.org(org)
        ctx.require("org:manage")
        body = self.json_body()
        self.audit_target = ctx.slug
        self.audit_details = {k: body[k] for k in sorted(body)[:10]}
        settings = self.app.org_settings.update(ctx, body)
        if "name" in body:
            await self.app.orgs.publish_group(ctx.slug)
        self.write_json(settings)


class OrgPlanAPIHandler(APIHandler):
    """PUT /orgs/{org}/plan ``{plan}``: change the plan (hub administrators only)."""

    audit_actions = {"PUT": "org.plan"}

    def put(self, org: str) -> None:
        ctx = self.org(org)
        # set_plan checks the caller before the value: a member gets 403 whatever they send
        plan = self.json_body().get("plan")
        self.audit_target = ctx.slug
        self.audit_details = {"plan": str(plan)[:50]}
        self.write_json(self.app.org_settings.set_plan(ctx, plan))


class OrgUsageAPIHandler(APIHandler):
    """GET /orgs/{org}/usage: levels, metered sums, limits and recent records (members)."""

    def get(self, org: str) -> None:
        ctx = self.org(org)
        since_arg = self.query("since")
        since = None
        if since_arg:
            try:
                since = datetime.fromisoformat(since_arg.replace("Z", "+00:00"))
            except ValueError:
                raise bad_request("since", "since must be an ISO 8601 time.") from None
            if since.tzinfo is None:
                raise bad_request("since", "since must carry a time zone (e.g. ...Z).")
        metric = self.query("metric")
        if metric is not None and metric not in METRICS:
            raise bad_request("metric", f"metric must be one of {', '.join(METRICS)}.")
        self.write_json(
            {
                **self.app.quotas.usage(ctx.org_id, since),
                "records": self.app.quotas.history(ctx.org_id, metric),
            }
        )


class ServerPolicyAPIHandler(APIHandler):
    """GET /orgs/{org}/server-policy: the limits the caller's new notebook server gets.

    Asked by the spawner (with the server's token) before it starts a server:
    ``notebooks:run`` is required, and the plan's ``servers`` limit is checked against
    the organization's servers that run now (403 ``quota_exceeded``).
    """

    async def get(self, org: str) -> None:
        ctx = self.org(org)
        ctx.require("notebooks:run")
        if self.app.hub.configured:
            running = await self.app.servers.count_running(ctx.slug, except_user=ctx.caller.name)
            self.app.quotas.check_servers(ctx.org_id, running)
        else:
            raise DatapilotError(503, "no_hub", "The data service runs without a hub.")
        settings = self.app.org_settings.get(ctx)
        self.write_json(
            {
                "org": ctx.slug,
                "role": ctx.role,
                "mem_limit": settings["mem_limit"],
                "cpu_limit": settings["cpu_limit"],
                "idle_timeout": settings["idle_timeout"],
                "running": running,
            }
        )


default_handlers = [
    (rf"/orgs/{ORG}/settings", OrgSettingsAPIHandler),
    (rf"/orgs/{ORG}/plan", OrgPlanAPIHandler),
    (rf"/orgs/{ORG}/usage", OrgUsageAPIHandler),
    (rf"/orgs/{ORG}/server-policy", ServerPolicyAPIHandler),
]
