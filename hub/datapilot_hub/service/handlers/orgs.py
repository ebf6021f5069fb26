"""Organizations and their members."""

from __future__ import annotations

from ...errors import DatapilotError
from .base import APIHandler

ORG = r"(?P<org>[^/]+)"


class OrgsAPIHandler(APIHandler):
    """POST /orgs: create an organization (hub admins, or anyone with self-service)."""

    # recorded in the new organization; a refused or failed creation has none to go to
    audit_actions = {"POST": "org.create"}

    async def post(self) -> None:
        caller = self.unbound_caller()
        if not (caller.hub_admin or self.app.allow_self_service_orgs):
            raise DatapilotError(
                403, "forbidden", "Only hub administrators can create organizations here."
            )
        body = self.json_body()
        model = await self.app.orgs.create(caller, body.get("slug"), body.get("name"))
        self.org(model["slug"])
        self.audit_target = model["slug"]
        self.set_header("Location", f"{self.app.api_prefix}orgs/{model['slug']}")
        self.write_json(model, 201)


class OrgAPIHandler(APIHandler):
    """GET /orgs/{org}: the organization, plan and usage (members); DELETE (hub admins)."""

    audit_actions = {"DELETE": "org.delete"}

    def get(self, org: str) -> None:
        self.write_json(self.app.orgs.info(self.org(org)))

    async def delete(self, org: str) -> None:
        ctx = self.org(org)
        await self.app.orgs.delete(ctx.caller, org)
        # a refused deletion is in the organization's log; a done one went with the log
        # itself (the service log has it), so there is no organization to record it in
        self._audit_ctx = None
        self.set_status(204)
        self.finish()


class MembersAPIHandler(APIHandler):
    """GET /orgs/{org}/members: members and roles (members)."""

    def get(self, org: str) -> None:
        self.write_json({"members": self.app.orgs.members(self.org(org))})


class MemberAPIHandler(APIHandler):
    """PUT and DELETE /orgs/{org}/members/{user} (``members:manage``)."""

    audit_actions = {"PUT": "member.set", "DELETE": "member.remove"}

    async def put(self, org: str, user: str) -> None:
        ctx = self.org(org)
        body = self.json_body()
        self.audit_details = {"role": str(body.get("role"))[:30]}
        model, created = await self.app.orgs.set_member(ctx, user, body.get("role"))
        self.write_json(model, 201 if created else 200)

    async def delete(self, org: str, user: str) -> None:
        await self.app.orgs.remove_member(self.org(org), user)
        self.set_status(204)
        self.finish()


default_handlers = [
    (r"/orgs", OrgsAPIHandler),
    (rf"/orgs/{ORG}", OrgAPIHandler),
    (rf"/orgs/{ORG}/members", MembersAPIHandler),
    (rf"/orgs/{ORG}/members/(?P<user>[^/]+)", MemberAPIHandler),
]
