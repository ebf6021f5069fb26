"""Browser pages of the data service (logged in through JupyterHub OAuth)."""

from __future__ import annotations

from html import escape

from tornado import web

from ._auth import ServiceAuthenticated


class HomeHandler(ServiceAuthenticated, web.RequestHandler):
    """The service's landing page: your organizations and what you may do in them."""

    @web.authenticated
    def get(self) -> None:
        app = self.settings["datapilot"]
        user = self.current_user
        orgs = app.orgs.memberships_of(user["name"])
        items = (
            "".join(
                f"<li><b>{escape(o['name'])}</b> ({escape(o['slug'])})"
                f" &mdash; {escape(o['role'])}"
                f' &mdash; <a href="{escape(app.service_prefix)}orgs/{escape(o["slug"])}/members">'
                "team pages</a></li>"
                for o in orgs
            )
            or "<li>You are not a member of any organization yet.</li>"
        )
        self.finish(
            "<!doctype html><html><head><title>Datapilot</title></head><body>"
            f"<h1>Datapilot</h1><p>Signed in as {escape(user['name'])}.</p>"
            f"<h2>Your organizations</h2><ul>{items}</ul>"
            f'<p>API: <a href="{escape(app.api_prefix)}openapi.json">OpenAPI document</a></p>'
            "</body></html>"
        )


default_handlers = [(r"", HomeHandler)]
