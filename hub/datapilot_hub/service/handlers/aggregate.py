"""Aggregations: POST /orgs/{org}/datasets/{name}/aggregate."""

from __future__ import annotations

import asyncio

from ...domain.aggregate import FORMATS, encode
from ...errors import bad_request
from .._download import send_chunks
from .base import APIHandler
from .datasets import NAME
from .orgs import ORG

_EXTENSIONS = {"csv": "csv", "arrow": "arrows", "parquet": "parquet"}


class DatasetAggregateAPIHandler(APIHandler):
    """POST /orgs/{org}/datasets/{name}/aggregate (``data:read``): group-by, time
    buckets, metrics, filters and top-N over a version; ``?format=json|csv|arrow|parquet``.

    A read of the data: audited (``dataset.aggregate``) and charged to the ``download``
    rate limit, like ``/data``.
    """

    audit_actions = {"POST": "dataset.aggregate"}

    async def post(self, org: str, name: str) -> None:
        ctx = self.org(org)
        fmt = self.query("format", "json")
        if fmt not in FORMATS:
            raise bad_request("format", f"format must be one of {', '.join(FORMATS)}.")
        target = self.app.aggregates.prepare(ctx, name, self.json_body())
        self.audit_details = {"version": target.info["version"], "format": fmt}
        await self.check_rate_limit("download", ctx)
        loop = asyncio.get_running_loop()
        result = await loop.run_in_executor(None, self.app.aggregates.run, target)
        self.audit_details["rows"] = result.table.num_rows
        self.set_header("Content-Type", FORMATS[fmt])
        if fmt != "json":
            filename = f"{name}-v{result.version}-aggregate.{_EXTENSIONS[fmt]}"
            self.set_header("Content-Disposition", f'attachment; filename="{filename}"')
        await send_chunks(self, encode(result, fmt))


default_handlers = [
    (rf"/orgs/{ORG}/datasets/{NAME}/aggregate", DatasetAggregateAPIHandler),
]
