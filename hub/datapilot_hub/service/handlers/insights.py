"""Automatic insights of a dataset, and the narrator's summary of them."""

from __future__ import annotations

from ...domain._args import MAX_WHOLE, whole_number
from ...errors import bad_request
from .base import APIHandler
from .datasets import NAME
from .orgs import ORG

#: what ?summary= may say, exactly (the OpenAPI document lists them)
TRUE, FALSE = ("1", "true", "yes"), ("", "0", "false", "no")


class DatasetInsightsAPIHandler(APIHandler):
    """GET /orgs/{org}/datasets/{name}/insights (``insights:run``, ``insights`` rate limit).

    ``?version=`` for an older version; ``?summary=true`` adds the narrator's summary.
    Every call is audited (``dataset.insights``), with the narrator's prompt and answer
    when it was asked.
    """

    audit_actions = {"GET": "dataset.insights"}

    async def get(self, org: str, name: str) -> None:
        ctx = self.org(org)
        version = whole_number(self.query("version"), "version", None, -MAX_WHOLE)
        summary = self.query("summary", "")
        if summary not in TRUE + FALSE:
            raise bad_request("summary", "summary must be true or false.")
        ctx.require("insights:run")
        await self.check_rate_limit("insights", ctx)
        answer = await self.app.insights.insights(ctx, name, version)
        self.audit_details = {"version": answer["version"], "cached": answer["cached"]}
        if summary in TRUE:
            told = await self.app.insights.summarize(name, answer)
            answer["summary"] = told.to_json()
            self.audit_details["narrator"] = told.audit()
        self.write_json(answer)


default_handlers = [
    (rf"/orgs/{ORG}/datasets/{NAME}/insights", DatasetInsightsAPIHandler),
]
