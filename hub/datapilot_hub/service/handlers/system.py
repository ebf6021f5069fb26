"""Health, identity and the OpenAPI document."""

from __future__ import annotations

from typing import Any

from ...domain._identity import Caller
from .base import APIHandler


class HealthAPIHandler(APIHandler):
    """GET /health: whether the service is up; no login needed.

    Everyone gets ``{"status": "ok"}`` (200) or ``{"status": "degraded"}`` (503). The
    checks behind it (catalog dialect and revision, storage location, compute kind) say
    how the deployment is built, so only hub administrators (an admin's token or cookie,
    the admin service's token) get them.
    """

    async def get(self) -> None:
        checks = await self.app.health_checks()
        ok = all(c["status"] == "ok" for c in checks.values())
        model: dict[str, Any] = {"status": "ok" if ok else "degraded"}
        if self._hub_admin():
            model.update(checks)
        self.write_json(model, 200 if ok else 503)

    def _hub_admin(self) -> bool:
        try:
            user = self.current_user
        except Exception:
            # a health check answers even when the hub cannot identify the caller
            return False
        return bool(user) and Caller.from_hub_model(user).hub_admin


class MeAPIHandler(APIHandler):
    """GET /me: the caller and their organizations."""

    def get(self) -> None:
        caller = self.caller()
        self.write_json(
            {
                "name": caller.name,
                "kind": caller.kind,
                "hub_admin": caller.hub_admin,
                "organizations": [
                    o
                    for o in self.app.orgs.memberships_of(caller.name)
                    if caller.may_act_in(o["slug"])
                ],
            }
        )


class OpenAPIHandler(APIHandler):
    """GET /openapi.json: this API's OpenAPI 3 document; no login needed."""

    def get(self) -> None:
        # (the document reads the handlers' argument lists: imported when asked for)
        from ..openapi import openapi_document

        self.write_json(openapi_document(self.app.service_prefix, list(self.app.quotas.plans)))


default_handlers = [
    (r"/health", HealthAPIHandler),
    (r"/me", MeAPIHandler),
    (r"/openapi.json", OpenAPIHandler),
]
