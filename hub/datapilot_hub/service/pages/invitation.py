"""The page an invitation link opens: who invites you to what; sign up, log in, join.

The link works for people without an account: the page shows the invitation to anyone
holding it (the code is the secret) with "Create an account" and "Log in" buttons that
carry the link through the hub's sign-up (where an invitation is proof enough: no
administrator's approval, see ``datapilot_hub.auth``) and login, back here. A logged-in
user presses "Join"; the join is audited exactly like the API's accept, and they land on
the organization's home.
"""

from __future__ import annotations

from urllib.parse import urlencode

from ...errors import DatapilotError
from ..handlers.invitations import CODE, accept_details
from ._base import PageHandler


class InvitationHandler(PageHandler):
    """GET shows the invitation (to anyone holding the link); POST (logged in) joins.

    ``invitations/<code>/join`` is the same page behind the login: where the hub's sign-up
    and login send the invitee back to (the service learns who they are through the
    hub's OAuth on the way).
    """

    login_required = False
    audit_actions = {"POST": "invitation.accept"}

    def prepare(self) -> None:
        self.login_required = self.request.path.endswith("/join")
        return super().prepare()

    def _links(self, code: str) -> dict[str, str]:
        join = f"{self.app.service_prefix}invitations/{code}/join"
        return {
            "signup_url": f"{self.hub_prefix}signup?{urlencode({'next': join})}",
            "login_url": f"{self.hub_prefix}login?{urlencode({'next': join})}",
        }

    def get(self, code: str) -> None:
        try:
            inv = self.app.invitations.lookup(code)
        except DatapilotError as e:
            self.render_error(e.status, e.message, title="This invitation link does not work")
            return
        status = 200 if inv["state"] == "pending" else 409
        member = None
        if self.current_user and inv["state"] == "pending":
            slug = inv["organization"]["slug"]
            member = any(
                o["slug"] == slug for o in self.app.orgs.memberships_of(self.current_user["name"])
            )
        self.render_page(
            "invitation.html", status, invitation=inv, already_member=member, **self._links(code)
        )

    async def post(self, code: str) -> None:
        caller = self.unbound_caller()
        try:
            joined = await self.app.invitations.accept(caller, code)
        except DatapilotError as e:
            self._error_code = e.code
            self.render_error(e.status, e.message, title="You could not join")
            return
        # audited as the API's accept is: in the organization joined, same target and details
        ctx = self.org(joined["organization"])
        self.audit_target = caller.name
        self.audit_details = {**accept_details(joined), "via": "page"}
        self.flash_redirect(
            self.org_url(ctx.slug),
            "success",
            f"Welcome to {ctx.org_name}: you joined as {joined['role']}.",
        )


default_handlers = [(rf"invitations/{CODE}(?:/join)?", InvitationHandler)]
