"""The page an invitation link opens: who invites you to what, and a button to join."""

from __future__ import annotations

from html import escape

from tornado import web

from ..domain._identity import Caller
from ..errors import DatapilotError
from ._auth import ServiceAuthenticated

_CSP = "frame-ancestors 'none'; default-src 'none'; style-src 'unsafe-inline'; form-action 'self'"


class InvitationHandler(ServiceAuthenticated, web.RequestHandler):
    """GET shows the invitation to a logged-in user; POST (the form) accepts it.

    A person without an account signs up on the hub first; the login brings them
    back here (JupyterHub OAuth keeps the page they came from).
    """

    def set_default_headers(self) -> None:
        self.set_header("Content-Security-Policy", _CSP)
        self.set_header("Cache-Control", "no-store")

    def _page(self, title: str, body: str, status: int = 200) -> None:
        self.set_status(status)
        self.set_header("Content-Type", "text/html; charset=utf-8")
        self.finish(
            "<!doctype html><html><head><meta charset='utf-8'>"
            f"<title>{escape(title)} - Datapilot</title></head>"
            "<body style='font-family:sans-serif;max-width:40em;margin:3em auto'>"
            f"<h1>{escape(title)}</h1>{body}</body></html>"
        )

    @web.authenticated
    def get(self, code: str) -> None:
        app = self.settings["datapilot"]
        try:
            inv = app.invitations.lookup(code)
        except DatapilotError as e:
            self._page("Invitation", f"<p class='error'>{escape(e.message)}</p>", e.status)
            return
        org = inv["organization"]
        who = escape(self.current_user["name"])
        if inv["state"] != "pending":
            self._page(
                "Invitation",
                f"<p class='error'>This invitation to {escape(org['name'])} is"
                f" {escape(inv['state'])}; ask for a new one.</p>",
                409,
            )
            return
        self._page(
            f"Join {org['name']}",
            f"<p>You are invited to join <b>{escape(org['name'])}</b>"
            f" ({escape(org['slug'])}) as <b>{escape(inv['role'])}</b>.</p>"
            f"<p>Signed in as {who}. The invitation expires {escape(inv['expires'])}.</p>"
            f"<form method='post'>{self.xsrf_form_html()}"
            "<button type='submit' id='accept'>Join the organization</button></form>",
        )

    @web.authenticated
    async def post(self, code: str) -> None:
        app = self.settings["datapilot"]
        try:
            joined = await app.invitations.accept(Caller.from_hub_model(self.current_user), code)
        except DatapilotError as e:
            self._page("Invitation", f"<p class='error'>{escape(e.message)}</p>", e.status)
            return
        hub_home = self.hub_auth.hub_prefix + "home"
        self._page(
            "Welcome",
            f"<p id='joined'>You joined <b>{escape(joined['organization'])}</b> as"
            f" {escape(joined['role'])}.</p>"
            f"<p><a href='{escape(hub_home)}'>Go to your notebook servers</a></p>",
        )


default_handlers = [(r"invitations/(?P<code>[^/]+)", InvitationHandler)]
