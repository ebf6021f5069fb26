"""Saved recipes: /orgs/{org}/recipes[/{recipe}[/run|/refresh]]."""

from __future__ import annotations

from ...errors import bad_request
from .base import APIHandler
from .orgs import ORG

RECIPE = r"(?P<recipe>[^/]+)"


class RecipesAPIHandler(APIHandler):
    """GET /orgs/{org}/recipes (``data:read``): the saved recipes."""

    def get(self, org: str) -> None:
        self.write_json({"recipes": self.app.recipes.list(self.org(org))})


class RecipeAPIHandler(APIHandler):
    """GET /orgs/{org}/recipes/{recipe} (``data:read``); PUT saves it (``data:transform``:
    201 when new, 200 when replaced); DELETE removes it (``data:transform``)."""

    audit_actions = {"PUT": "recipe.save", "DELETE": "recipe.delete"}

    def get(self, org: str, recipe: str) -> None:
        self.write_json(self.app.recipes.get(self.org(org), recipe))

    def put(self, org: str, recipe: str) -> None:
        ctx = self.org(org)
        ctx.require("data:transform")
        body = self.json_body()
        self.audit_target = recipe
        model, created = self.app.recipes.save(ctx, recipe, body)
        self.audit_details = {"source": model["source"], "output": model["output"]}
        if created:
            self.set_header("Location", f"{self.app.api_prefix}orgs/{org}/recipes/{recipe}")
        self.write_json(model, 201 if created else 200)

    def delete(self, org: str, recipe: str) -> None:
        self.audit_target = recipe
        self.app.recipes.delete(self.org(org), recipe)
        self.set_status(204)
        self.finish()


class _RecipeRunHandler(APIHandler):
    async def start(self, org: str, recipe: str, refresh: bool) -> None:
        """Check the call and start the run; 202 with the job."""
        ctx = self.org(org)
        ctx.require("data:transform")
        if self.json_body():
            raise bad_request("body", "A run takes no options: send no body, or {}.")
        self.audit_target = recipe
        await self.check_rate_limit("transform", ctx)
        started = self.app.recipes.run(ctx, recipe, refresh=refresh)
        self.audit_details = {"job": started["job"]["id"], "output": started["dataset"]}
        self.set_header("Location", f"{self.app.api_prefix}orgs/{org}/jobs/{started['job']['id']}")
        self.write_json(started, 202)


class RecipeRunAPIHandler(_RecipeRunHandler):
    """POST /orgs/{org}/recipes/{recipe}/run (``data:transform``): run it again on the
    versions it was saved (or last refreshed) on; 202 with the job."""

    audit_actions = {"POST": "recipe.run"}

    async def post(self, org: str, recipe: str) -> None:
        await self.start(org, recipe, refresh=False)


class RecipeRefreshAPIHandler(_RecipeRunHandler):
    """POST /orgs/{org}/recipes/{recipe}/refresh (``data:transform``): run it on the
    latest versions of its sources, which it keeps; 202 with the job."""

    audit_actions = {"POST": "recipe.refresh"}

    async def post(self, org: str, recipe: str) -> None:
        await self.start(org, recipe, refresh=True)


default_handlers = [
    (rf"/orgs/{ORG}/recipes", RecipesAPIHandler),
    (rf"/orgs/{ORG}/recipes/{RECIPE}", RecipeAPIHandler),
    (rf"/orgs/{ORG}/recipes/{RECIPE}/run", RecipeRunAPIHandler),
    (rf"/orgs/{ORG}/recipes/{RECIPE}/refresh", RecipeRefreshAPIHandler),
]
