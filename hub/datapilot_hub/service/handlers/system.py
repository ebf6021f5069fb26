"""Health, identity and the OpenAPI document."""

from __future__ import annotations

from ..openapi import openapi_document
from .base import APIHandler


class HealthAPIHandler(APIHandler):
    """GET /health: catalog, storage and compute checks; no login needed."""

    async def get(self) -> None:
        checks = await self.app.health_checks()
        ok = all(c["status"] == "ok" for c in checks.values())
        self.write_json({"status": "ok" if ok else "degraded", **checks}, 200 if ok else 503)


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
        self.write_json(openapi_document(self.app.service_prefix))


default_handlers = [
    (r"/health", HealthAPIHandler),
    (r"/me", MeAPIHandler),
    (r"/openapi.json", OpenAPIHandler),
]
