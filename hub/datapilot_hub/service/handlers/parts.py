"""Parts of a dataset version (its Parquet row groups), read one at a time by dp.load_dask."""

from __future__ import annotations

import asyncio

from ...domain._args import MAX_WHOLE, whole_number
from ...domain.dataset_parts import list_parts, read_part
from ...domain.datasets import FORMATS
from .base import APIHandler
from .datasets import NAME
from .orgs import ORG

# any text: the handler says why it is no part number (a 400), not the router (a 404)
PART = r"(?P<part>[^/]+)"


class DatasetPartsAPIHandler(APIHandler):
    """GET /orgs/{org}/datasets/{name}/parts (``data:read``): the version's parts and schema."""

    async def get(self, org: str, name: str) -> None:
        ctx = self.org(org)
        version = whole_number(self.query("version"), "version", None, -MAX_WHOLE)
        loop = asyncio.get_running_loop()
        # (the Parquet footers are read from storage: not on the IOLoop)
        model = await loop.run_in_executor(None, list_parts, self.app.datasets, ctx, name, version)
        self.write_json(model)


class DatasetPartAPIHandler(APIHandler):
    """GET /orgs/{org}/datasets/{name}/parts/{part} (``data:read``): one part as Parquet.

    A read of the data like ``/data``: audited (``dataset.read_part``, with the version
    and the part) and charged to the ``download`` rate limit.
    """

    audit_actions = {"GET": "dataset.read_part"}

    async def get(self, org: str, name: str, part: str) -> None:
        ctx = self.org(org)
        number = whole_number(part, "part", None, 0)
        version = whole_number(self.query("version"), "version", None, -MAX_WHOLE)
        columns = self.query("columns")
        wanted = [c for c in columns.split(",") if c] if columns else None
        ctx.require("data:read")
        self.audit_details = {"version": version, "part": number}
        await self.check_rate_limit("download", ctx)
        loop = asyncio.get_running_loop()
        version, data = await loop.run_in_executor(
            None, read_part, self.app.datasets, ctx, name, version, number, wanted
        )
        self.audit_details["version"] = version
        self.set_header("Content-Type", FORMATS["parquet"])
        self.set_header(
            "Content-Disposition", f'attachment; filename="{name}-v{version}-part{number}.parquet"'
        )
        self.set_status(200)
        self.finish(data)


default_handlers = [
    (rf"/orgs/{ORG}/datasets/{NAME}/parts", DatasetPartsAPIHandler),
    (rf"/orgs/{ORG}/datasets/{NAME}/parts/{PART}", DatasetPartAPIHandler),
]
