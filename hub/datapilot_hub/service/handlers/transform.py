"""Transformations: POST /orgs/{org}/datasets/{name}/transform."""

from __future__ import annotations

import asyncio

from .base import APIHandler
from .datasets import NAME
from .orgs import ORG


class DatasetTransformAPIHandler(APIHandler):
    """POST /orgs/{org}/datasets/{name}/transform (``data:transform``).

    ``{"steps": [...], "output": {"name", "mode"}}`` answers 202 with the job that runs
    the recipe on Dask; ``{"steps": [...], "preview": true, "limit": n}`` answers 200 with
    the recipe's first rows on a sample of the source, nothing written. Either is checked
    whole first: a bad step is a 400 naming it.
    """

    audit_actions = {"POST": "dataset.transform"}

    async def post(self, org: str, name: str) -> None:
        ctx = self.org(org)
        ctx.require("data:transform")
        body = self.json_body()
        self.audit_target = name
        await self.check_rate_limit("transform", ctx)
        transforms = self.app.transforms
        if body.get("preview") is True:
            self.audit_details = {"preview": True}
            loop = asyncio.get_running_loop()
            answer = await loop.run_in_executor(None, transforms.preview, ctx, name, body)
            self.write_json(answer)
            return
        plan = transforms.prepare(ctx, name, body)
        self.app.quotas.check_upload(ctx, plan.output, plan.mode)
        job = transforms.submit(ctx, plan)
        self.audit_details = {"output": plan.output, "mode": plan.mode, "job": job["id"]}
        self.set_header("Location", f"{self.app.api_prefix}orgs/{org}/jobs/{job['id']}")
        self.write_json({"job": job, "dataset": plan.output}, 202)


default_handlers = [
    (rf"/orgs/{ORG}/datasets/{NAME}/transform", DatasetTransformAPIHandler),
]
