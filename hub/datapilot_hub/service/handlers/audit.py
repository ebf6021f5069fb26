"""The audit log of an organization: read with filters, or export as CSV."""

from __future__ import annotations

from ...domain.audit import AuditQuery
from ...errors import bad_request
from .._download import send_chunks
from .base import APIHandler
from .orgs import ORG

_ARGS = ("user", "action", "since", "until", "limit", "offset")


class AuditAPIHandler(APIHandler):
    """GET /orgs/{org}/audit (``audit:read``): events, newest first; ``?format=csv`` exports."""

    async def get(self, org: str) -> None:
        ctx = self.org(org)
        ctx.require("audit:read")
        fmt = self.query("format", "json")
        if fmt not in ("json", "csv"):
            raise bad_request("format", "format must be json or csv.")
        args = {name: self.query(name) for name in _ARGS}
        query = AuditQuery.from_arguments(args, export=fmt == "csv")
        if fmt == "json":
            self.write_json({"events": self.app.audit.events(ctx, query), **_paging(query)})
            return
        self.set_header("Content-Type", "text/csv; charset=utf-8")
        self.set_header("Content-Disposition", f'attachment; filename="{ctx.slug}-audit.csv"')
        # each piece is one short catalog read
        pieces = self.app.audit.iter_csv(ctx, query)
        await send_chunks(self, (piece.encode() for piece in pieces))


def _paging(query: AuditQuery) -> dict[str, int | None]:
    return {"limit": query.limit, "offset": query.offset}


default_handlers = [
    (rf"/orgs/{ORG}/audit", AuditAPIHandler),
]
