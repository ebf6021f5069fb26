"""The base of every data service handler: hub authentication and JSON errors."""

from __future__ import annotations

import json
from http.client import responses
from typing import Any

from jupyterhub.services.auth import HubOAuthenticated
from sqlalchemy.exc import SQLAlchemyError
from tornado import web

from ...domain._identity import Caller, OrgContext, org_context
from ...errors import DatapilotError

API_CSP = "frame-ancestors 'none'; default-src 'none'"

_STATUS_CODES = {
    400: "invalid_input",
    401: "not_authenticated",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "too_large",
    415: "unsupported_media_type",
    422: "unprocessable",
    429: "rate_limited",
}


class APIHandler(HubOAuthenticated, web.RequestHandler):
    """JSON API handler authenticated by JupyterHub tokens or the login cookie.

    Unlike a page handler it never redirects to the login page: an anonymous call is a
    401 JSON error. The error body is the contract's ``{"error", "message", "details"}``,
    which JupyterHub's own ``APIHandler`` does not produce (and which cannot run
    outside the hub process anyway).
    """

    @property
    def app(self) -> Any:
        """The :class:`~datapilot_hub.service.app.DataService` this handler serves."""
        return self.settings["datapilot"]

    def set_default_headers(self) -> None:
        self.set_header("Content-Type", "application/json")
        self.set_header("Content-Security-Policy", API_CSP)
        self.set_header("Cache-Control", "no-store")

    def caller(self) -> Caller:
        """The authenticated caller, or a 401."""
        model = self.current_user
        if not model:
            raise DatapilotError(
                401,
                "not_authenticated",
                "Log in to JupyterHub, or send 'Authorization: token <JupyterHub API token>'.",
            )
        return Caller.from_hub_model(model)

    def org(self, slug: str) -> OrgContext:
        """The caller in organization ``slug`` (404 when not a member)."""
        return org_context(self.app.catalog, self.caller(), slug)

    def json_body(self) -> dict[str, Any]:
        """The request body as a JSON object, or a 400 saying what is wrong with it."""
        try:
            body = json.loads(self.request.body or b"{}")
        except ValueError:
            raise DatapilotError(
                400, "invalid_json", "The request body is not valid JSON."
            ) from None
        if not isinstance(body, dict):
            raise DatapilotError(400, "invalid_json", "The request body must be a JSON object.")
        return body

    def write_json(self, model: Any, status: int = 200) -> None:
        """Finish with ``model`` as JSON."""
        self.set_status(status)
        self.finish(json.dumps(model))

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        exc = kwargs.get("exc_info", (None, None, None))[1]
        if isinstance(exc, SQLAlchemyError):
            self.log.error("Catalog error", exc_info=kwargs["exc_info"])
        if isinstance(exc, DatapilotError):
            body = exc.to_json()
        elif isinstance(exc, web.HTTPError) and exc.log_message:
            body = {
                "error": _STATUS_CODES.get(status_code, "error"),
                "message": exc.log_message % exc.args if exc.args else exc.log_message,
                "details": {},
            }
        else:
            body = {
                "error": _STATUS_CODES.get(status_code, "internal_error"),
                "message": responses.get(status_code, "Unknown error"),
                "details": {},
            }
        if status_code == 405:
            body["message"] = f"{self.request.method} is not allowed on this path."
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps(body))


class NotFoundAPIHandler(APIHandler):
    """Any path under the API that no handler answers."""

    def prepare(self) -> None:
        raise DatapilotError(
            404,
            "no_such_endpoint",
            f"No API endpoint at {self.request.path}.",
            path=self.request.path,
        )
