"""Invitations: make, list and revoke them (``members:manage``); accept one (logged in)."""

from __future__ import annotations

import asyncio
import smtplib

from jupyterhub.utils import get_browser_protocol

from ..._human import when
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


def public_link(handler, link: str) -> str:
    """An invitation's link as the person invited opens it (scheme and host of the request)."""
    return f"{get_browser_protocol(handler.request)}://{handler.request.host}{link}"


async def mail_invitation(app, ctx, model: dict, url: str) -> dict:
    """E-mail a new invitation when an SMTP server is configured and it names an address.

    Returns what the answer says about it: ``{"emailed": True}``, or ``False`` with
    ``email_error`` (the invitation stands either way: its link is in the answer).
    """
    if not (app.mailer.enabled and model.get("email")):
        return {"emailed": False}
    msg = app.mailer.invitation(
        model["email"], ctx.org_name, model["role"], ctx.caller.name, url, when(model["expires"])
    )
    try:
        await asyncio.get_running_loop().run_in_executor(None, app.mailer.send, msg)
    except (OSError, smtplib.SMTPException) as e:
        app.log.warning("Could not e-mail the invitation to %s: %s", model["email"], e)
        return {"emailed": False, "email_error": f"{type(e).__name__}: {e}"[:300]}
    return {"emailed": True}


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

    async def post(self, org: str) -> None:
        ctx = self.org(org)
        ctx.require("members:manage")
        body = self.json_body()
        model = self.app.invitations.create(
            ctx, body.get("role"), body.get("email"), body.get("expires_in")
        )
        model.update(invitation_links(self.app, model["code"]))
        model.update(await mail_invitation(self.app, ctx, model, public_link(self, model["link"])))
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
