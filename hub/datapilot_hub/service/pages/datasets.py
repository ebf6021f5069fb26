"""An organization's home: its datasets, a dataset's page, and the upload form.

The pages read through :class:`~datapilot_hub.domain.datasets.DatasetService`, as the API
does, under the same permissions: a Viewer sees the datasets, their schema, report and
preview, and no upload, rollback or delete. The preview is a data read, audited as
``dataset.read`` like ``GET .../data``. Rollback and delete are forms audited as the
API's ``dataset.rollback`` and ``dataset.delete``. The upload form sends the file to the
API's own upload (``POST /orgs/{org}/datasets``, with the page's XSRF token) and follows
the job on its WebSocket (``templates/datapilot/static/upload.js``); the report is then
the dataset's page.
"""

from __future__ import annotations

import base64
import json
from typing import Any

from ...domain._identity import OrgContext
from ...domain.datasets import ReadRequest
from ...errors import DatapilotError, bad_request
from ._base import FormPageHandler, PageHandler

ORG = r"orgs/(?P<org>[^/]+)"
NAME = r"(?P<name>[^/]+)"

#: rows shown in a dataset's preview
PREVIEW_ROWS = 20


class OrgHomeHandler(PageHandler):
    """``orgs/<slug>/``: the organization's dashboard gallery and datasets (``?q=``
    searches the dashboards' titles, descriptions and publishers, and the datasets' names)."""

    tab = "datasets"

    def get(self, org: str) -> None:
        ctx = self.org(org)
        query = (self.get_query_argument("q", "") or "").strip().lower()
        datasets = self.app.datasets.list(ctx) if "data:read" in ctx.permissions else []
        shown = [d for d in datasets if query in d["name"]] if query else datasets
        dashboards = self.app.dashboards.list(ctx) if "dashboards:view" in ctx.permissions else []
        self.render_page(
            "datasets.html",
            ctx=ctx,
            datasets=shown,
            total=len(datasets),
            dashboards=self.app.dashboards.list(ctx, query) if query else dashboards,
            dashboards_total=len(dashboards),
            query=query,
            server_url=f"{self.hub_prefix}spawn/{self.caller().name}/{ctx.slug}",
        )


class DatasetPageHandler(FormPageHandler):
    """``orgs/<slug>/datasets/<name>``: schema, report, preview, versions; rollback, delete."""

    tab = "datasets"
    template = "dataset.html"
    audit_actions = {"GET": "dataset.read"}
    actions = {
        "rollback": ("rollback", "dataset.rollback", "data:import"),
        "delete": ("delete", "dataset.delete", "data:delete"),
    }

    def page_model(self, ctx: OrgContext) -> dict[str, Any]:
        name = self.path_kwargs["name"]
        dataset = self.app.datasets.describe(ctx, name)
        target = self.app.datasets.resolve_read(
            ctx, name, ReadRequest(limit=PREVIEW_ROWS, format="json")
        )
        if self.request.method == "GET":
            self.audit_details = {"version": target["version"], "format": "preview", "via": "page"}
        preview = json.loads(
            b"".join(
                self.app.datasets.iter_data(target, ReadRequest(limit=PREVIEW_ROWS, format="json"))
            )
        )
        report = dataset.get("report") or {}
        columns = []
        for column in dataset["columns"]:
            info = (report.get("columns") or {}).get(column["name"], {})
            columns.append({**column, "report": info})
        data_url = f"{self.app.api_prefix}orgs/{ctx.slug}/datasets/{name}/data"
        return {
            "dataset": dataset,
            "columns": columns,
            "report": report,
            "preview": preview,
            "preview_rows": PREVIEW_ROWS,
            "downloads": [
                ("CSV", f"{data_url}?format=csv"),
                ("Parquet", f"{data_url}?format=parquet"),
                ("Excel", f"{data_url}?format=xlsx"),
            ],
            "chart": self._chart(ctx, name),
        }

    def _chart(self, ctx: OrgContext, name: str) -> dict[str, Any] | None:
        """The chart the charts API recommends for the dataset, as a PNG data URI.

        Drawn here rather than fetched by the browser: the page's CSP allows data: images
        and no script is needed. A dataset no chart suits shows none.
        """
        from datapilot_charts import render_png

        try:
            answer = self.app.charts.generate(ctx, {"dataset": name})
            png = render_png(answer["chart"], "light", 720, 320)
        except DatapilotError as e:
            self.app.log.info("No chart for %s/%s: %s", ctx.slug, name, e.message)
            return None
        return {
            "src": "data:image/png;base64," + base64.b64encode(png).decode(),
            "title": answer["chart"].get("title") or name,
            "reason": (answer.get("recommendation") or {}).get("reason"),
        }

    async def rollback(self, ctx: OrgContext) -> None:
        name = self.path_kwargs["name"]
        raw = self.field("version")
        self.audit_target = name
        self.audit_details["version"] = str(raw)[:20]
        try:
            version = int(raw or "")
        except ValueError:
            raise bad_request("version", "version must be a version number.") from None
        self.app.datasets.rollback(ctx, name, version)
        self.flash_redirect(
            self.request.path, "success", f"Version {version} of {name} is current again."
        )

    async def delete(self, ctx: OrgContext) -> None:
        name = self.path_kwargs["name"]
        self.audit_target = name
        if self.field("confirm") != name:
            raise bad_request("confirm", f"Type the dataset's name, {name}, to delete it.")
        self.app.datasets.delete(ctx, name)
        self.app.quotas.record_storage(ctx.org_id, ctx.caller.name, deleted=name)
        self.flash_redirect(self.org_url(ctx.slug), "success", f"Deleted {name} and its files.")


class UploadPageHandler(PageHandler):
    """``orgs/<slug>/upload`` (``data:import``): the upload form, with progress."""

    tab = "datasets"

    def get(self, org: str) -> None:
        ctx = self.org(org)
        ctx.require("data:import")
        replace = self.get_query_argument("dataset", None)
        datasets = [d["name"] for d in self.app.datasets.list(ctx)]
        if replace is not None and replace not in datasets:
            raise DatapilotError(404, "not_found", f"No dataset named {replace!r} is visible.")
        self.render_page(
            "upload.html",
            ctx=ctx,
            datasets=datasets,
            replace=replace,
            upload_url=f"{self.app.api_prefix}orgs/{ctx.slug}/datasets",
            jobs_url=f"{self.app.api_prefix}orgs/{ctx.slug}/jobs/",
            max_upload_size=self.app.max_upload_size,
        )


default_handlers = [
    (rf"{ORG}/?", OrgHomeHandler),
    (rf"{ORG}/datasets/{NAME}", DatasetPageHandler),
    (rf"{ORG}/upload", UploadPageHandler),
]
