"""Invitations: make, list and revoke them (``members:manage``); accept one (logged in)."""

from __future__ import annotations

from .base import APIHandler
from .orgs import ORG

INVITATION = r"(?P<invitation_id>[^/]+)"
CODE = r"(?P<code>[^/]+)"


def invitation_links(app, code: str) -> dict[str, str]:
    """The page a person opens and the API path a client posts to, for one code."""
    return {
        "link": f"{app.service_prefix}invitations/{code}",
        "accept_url": f"{app.api_prefix}invitations/{code}/accept",
    }


def accept_details(joined: dict) -> dict:
    """The audit details of a join by invitation, the same through the API and the page."""
    return {"role": joined["role"], "invitation": joined["invitation"]}


class InvitationsAPIHandler(APIHandler):
    """GET /orgs/{org}/invitations: list; POST: make one (``members:manage``).

    The answer to POST is the only time the code is shown: only its hash is stored.
    """

    audit_actions = {"POST": "invitation.create"}

    def get(self, org: str) -> None:
        self.write_json({"invitations": self.app.invitations.list(self.org(org))})

    def post(self, org: str) -> None:
        ctx = self.org(org)
        ctx.require("members:manage")
        body = self.json_body()
        model = self.app.invitations.create(
            ctx, body.get("role"), body.get("email"), body.get("expires_in")
        )
        model.update(invitation_links(self.app, model["code"]))
        # the person invited, as the log's reader knows them; the id stays in the details
        self.audit_target = model["email"] or model["id"]
        self.audit_details = {
            "role": model["role"],
            "email": model["email"],
            "invitation": model["id"],
        }
        self.set_header("Location", f"{self.app.api_prefix}orgs/{org}/invitations/{model['id']}")
        self.write_json(model, 201)


class InvitationAPIHandler(APIHandler):
    """DELETE /orgs/{org}/invitations/{id}: revoke (``members:manage``)."""

    audit_actions = {"DELETE": "invitation.revoke"}

    def delete(self, org: str, invitation_id: str) -> None:
        self.audit_details = {"invitation": invitation_id[:64]}
        model = self.app.invitations.revoke(self.org(org), invitation_id)
        self.audit_target = model["email"] or model["id"]
        self.write_json(model)


class InvitationLookupAPIHandler(APIHandler):
    """GET /invitations/{code}: what an invitation is for (logged in, any caller).

    The code is the secret: whoever holds it may see the organization and role it
    admits to (the hub's sign-up page asks this to let an invitee in without an
    administrator's approval).
    """

    def get(self, code: str) -> None:
        self.caller()
        self.write_json(self.app.invitations.lookup(code))


class AcceptInvitationAPIHandler(APIHandler):
    """POST /invitations/{code}/accept: join the organization with the invitation's role.

    Recorded in the organization joined (a refused code names no organization).
    """

    audit_actions = {"POST": "invitation.accept"}

    async def post(self, code: str) -> None:
        caller = self.unbound_caller()
        joined = await self.app.invitations.accept(caller, code)
        self.org(joined["organization"])
        self.audit_target = caller.name
        self.audit_details = accept_details(joined)
        self.write_json(joined)


default_handlers = [
    (rf"/orgs/{ORG}/invitations", InvitationsAPIHandler),
    (rf"/orgs/{ORG}/invitations/{INVITATION}", InvitationAPIHandler),
    (rf"/invitations/{CODE}", InvitationLookupAPIHandler),
    (rf"/invitations/{CODE}/accept", AcceptInvitationAPIHandler),
]
