"""Saved recipes: by name, run again, refreshed on the latest versions of their sources,
and refreshed automatically when a source gets a new version.

A saved recipe keeps the versions of its sources it was saved (or last refreshed) on:
``run`` reproduces the output from those, ``refresh`` moves them to the current
versions and runs. Every run writes a new version of the output (the first creates it).
With ``auto_refresh`` the publication of a new version of any source (an upload, another
recipe's output) refreshes it, as its author; a chain of recipes that would come back to
one already in it stops there.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from sqlalchemy import select

from datapilot_contract import check_dataset_name

from ...catalog import Catalog, Dataset, Job, Organization, SavedRecipe, utcnow
from ...errors import DatapilotError, bad_request, checked, not_found
from .._args import json_object
from .._identity import Caller, OrgContext, org_context
from ._recipe import Recipe
from ._service import TransformPlan, TransformService

log = logging.getLogger(__name__)

SAVE_FIELDS = ("source", "steps", "output", "auto_refresh")


def recipe_model(r: SavedRecipe) -> dict[str, Any]:
    """The JSON model of a saved recipe."""
    return {
        "name": r.name,
        "source": r.source,
        "steps": r.steps,
        "output": r.output,
        "versions": r.versions,
        "auto_refresh": r.auto_refresh,
        "created_by": r.created_by,
        "created": r.created.isoformat(),
        "updated": r.updated.isoformat(),
        "last_job": r.last_job,
        "last_error": r.last_error,
    }


def _versions(info: dict[str, Any], recipe: Recipe) -> dict[str, int]:
    found = {info["name"]: info["version"]}
    for step in recipe.steps:
        if step.other is not None:
            found.setdefault(step.other["name"], step.other["version"])
    return found


class SavedRecipes:
    """Saved recipes of an organization, run through a :class:`TransformService`.

    Parameters
    ----------
    catalog : Catalog
        Where recipes are saved.
    transforms : TransformService
        Checks and runs them.
    check_write : callable, optional
        ``check_write(ctx, dataset, mode)`` before each run: the plan's limits
        (:meth:`Plans.check_upload`), which raise to refuse it.
    """

    def __init__(
        self,
        catalog: Catalog,
        transforms: TransformService,
        check_write: Callable[[OrgContext, str, str], None] | None = None,
    ) -> None:
        self.catalog = catalog
        self.transforms = transforms
        self.check_write = check_write

    def _find(self, db, ctx: OrgContext, name: str) -> SavedRecipe:
        checked(check_dataset_name, name, "recipe")
        recipe = SavedRecipe.find(db, ctx.org_id, name)
        if recipe is None:
            raise not_found("recipe", name)
        return recipe

    def list(self, ctx: OrgContext) -> list[dict[str, Any]]:
        """Every saved recipe of the organization, by name (``data:read``)."""
        ctx.require("data:read")
        with self.catalog.session(ctx.org_id) as db:
            rows = db.scalars(
                select(SavedRecipe)
                .where(SavedRecipe.organization_id == ctx.org_id)
                .order_by(SavedRecipe.name)
            ).all()
            return [recipe_model(r) for r in rows]

    def get(self, ctx: OrgContext, name: str) -> dict[str, Any]:
        """One saved recipe (``data:read``)."""
        ctx.require("data:read")
        with self.catalog.session(ctx.org_id) as db:
            return recipe_model(self._find(db, ctx, name))

    def save(self, ctx: OrgContext, name: str, body: dict[str, Any]) -> tuple[dict, bool]:
        """Save (or replace) recipe ``name``, checked as a run is; returns its model and
        whether it is new.

        Body: ``{"source", "steps", "output": name or {"name"}, "auto_refresh"}``; the
        versions it runs on are the current ones of its sources.
        """
        ctx.require("data:transform")
        checked(check_dataset_name, name, "recipe")
        json_object(body, SAVE_FIELDS)
        source = checked(check_dataset_name, body.get("source"), "source")
        output = body.get("output")
        if isinstance(output, dict):
            if set(output) - {"name", "mode"}:
                raise bad_request("output", 'output must be a name or {"name": ...}.')
            output = output.get("name")
        output = checked(check_dataset_name, output, "output")
        auto = body.get("auto_refresh", False)
        if not isinstance(auto, bool):
            raise bad_request("auto_refresh", "auto_refresh must be true or false.")
        info, recipe = self.transforms.check_steps(ctx, source, body.get("steps"))
        with self.catalog.session(ctx.org_id) as db:
            saved = SavedRecipe.find(db, ctx.org_id, name)
            created = saved is None
            if created:
                saved = SavedRecipe(
                    organization_id=ctx.org_id, name=name, created_by=ctx.caller.name
                )
                db.add(saved)
            saved.source, saved.steps, saved.output = source, recipe.to_json(), output
            saved.versions = _versions(info, recipe)
            saved.auto_refresh = auto
            saved.updated = utcnow()
            db.flush()
            return recipe_model(saved), created

    def delete(self, ctx: OrgContext, name: str) -> None:
        """Delete a saved recipe (its outputs stay)."""
        ctx.require("data:transform")
        with self.catalog.session(ctx.org_id) as db:
            db.delete(self._find(db, ctx, name))

    def run(
        self, ctx: OrgContext, name: str, refresh: bool = False, chain: list[str] | None = None
    ) -> dict[str, Any]:
        """Start a run of recipe ``name``: on its saved versions, or (``refresh``) on the
        latest ones, which it then keeps. Returns ``{"job", "dataset", "recipe"}``."""
        ctx.require("data:transform")
        with self.catalog.session(ctx.org_id) as db:
            saved = recipe_model(self._find(db, ctx, name))
        pins = None if refresh else saved["versions"]
        info, recipe = self.transforms.check_steps(ctx, saved["source"], saved["steps"], pins=pins)
        output = saved["output"]
        with self.catalog.session(ctx.org_id) as db:
            ds = Dataset.find(db, ctx.org_id, output)
            mode = "replace" if ds is not None and ds.current_version is not None else "create"
        if self.check_write is not None:
            self.check_write(ctx, output, mode)
        plan = TransformPlan(
            ctx.org_id, ctx.caller.name, info, recipe, output, mode, name, list(chain or [])
        )
        job = self.transforms.submit(ctx, plan)
        with self.catalog.session(ctx.org_id) as db:
            row = self._find(db, ctx, name)
            row.last_job, row.last_error = job["id"], None
            if refresh:
                row.versions = _versions(info, recipe)
        return {"job": job, "dataset": output, "recipe": self.get(ctx, name)}

    def on_publish(self, org_id: int, datasets: list[str], job_id: str) -> None:
        """Refresh the auto-refreshing recipes that read one of ``datasets`` (a hook of
        the ingestor: called after each commit that publishes versions)."""
        with self.catalog.session(org_id) as db:
            job = db.get(Job, job_id)
            params = (job.params or {}) if job is not None else {}
            chain = list(params.get("chain") or [])
            if params.get("recipe"):
                chain.append(params["recipe"])
            rows = db.scalars(
                select(SavedRecipe).where(
                    SavedRecipe.organization_id == org_id, SavedRecipe.auto_refresh.is_(True)
                )
            ).all()
            due = [
                (r.name, r.created_by)
                for r in rows
                if set(r.versions or {}) & set(datasets) and r.name not in chain
            ]
            slug = db.get(Organization, org_id).slug if due else None
        for name, author in due:
            try:
                ctx = org_context(self.catalog, Caller(author), slug)
                started = self.run(ctx, name, refresh=True, chain=chain)
                log.info("Auto-refresh of recipe %s: job %s", name, started["job"]["id"])
            except DatapilotError as e:
                log.warning("Auto-refresh of recipe %s did not start: %s", name, e.message)
                with self.catalog.session(org_id) as db:
                    row = SavedRecipe.find(db, org_id, name)
                    if row is not None:
                        row.last_error = e.message
