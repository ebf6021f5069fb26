"""Datasets: list, upload (streamed multipart), describe, read, versions, delete."""

from __future__ import annotations

import asyncio
import functools
import os
from typing import Any

from tornado import web

from ...domain._args import MAX_WHOLE, whole_number
from ...domain.datasets import FORMATS, ReadRequest, validate_mode, validate_name
from ...domain.ingest import (
    ALL_SHEETS,
    EXCEL_FORMATS,
    IngestRequest,
    sheet_datasets,
    sniff,
    validate_options,
    workbook_sheets,
)
from ...errors import DatapilotError, bad_request
from .._download import send_chunks
from .._upload import MultipartReceiver, multipart_boundary
from .base import APIHandler, declared_size, loads_strict, too_large
from .orgs import ORG

NAME = r"(?P<name>[^/]+)"
_EXTENSIONS = {
    "csv": "csv",
    "arrow": "arrows",
    "parquet": "parquet",
    "json": "json",
    "xlsx": "xlsx",
}


@web.stream_request_body
class DatasetsAPIHandler(APIHandler):
    """GET /orgs/{org}/datasets (``data:read``); POST uploads a file (``data:import``).

    The upload is parsed while it streams in: the file goes to a temporary file under
    the state directory and never sits in memory. Its body may be as large as
    ``max_upload_size`` only once the caller is authenticated, allowed to import and
    within the rate limit (every other body has the service's small ``max_body_size``).
    A refused upload's body is read and dropped (up to the upload limit) before the
    refusal is answered: closing the connection while the body still arrives would
    make the proxy answer its own HTML 503 instead. A declared Content-Length over the
    upload limit is answered at once (and its connection closed: nothing else avoids
    reading it).
    """

    # the service's body limit does not apply: this handler bounds its body itself
    own_body_limit = True
    receiver: MultipartReceiver | None = None
    _body_error: web.HTTPError | None = None
    audit_actions = {"POST": "dataset.import"}

    async def prepare(self) -> None:
        try:
            if self.request.method != "POST":
                # (a listing takes no body: the service's small limit)
                if (declared_size(self.request.headers) or 0) > self.app.max_body_size:
                    raise too_large(self.app.max_body_size)
                return
            self.ctx = self.org(self.path_kwargs["org"])
            self.ctx.require("data:import")
            await self.check_rate_limit("ingest", self.ctx)
            boundary = multipart_boundary(self.request.headers.get("Content-Type", ""))
            limit = self.app.max_upload_size
            declared = declared_size(self.request.headers)
            if declared is not None and declared > limit + 65536:
                raise DatapilotError(
                    413,
                    "too_large",
                    f"The upload ({declared} bytes) is larger than the limit of {limit} bytes.",
                    limit=limit,
                )
        except web.HTTPError as e:
            self._refuse(e)
            return
        self.request.connection.set_max_body_size(limit + 65536)
        self.request.connection.set_body_timeout(self.app.upload_timeout)
        self.receiver = MultipartReceiver(boundary, str(self.app.dp_config.tmp_dir), limit)

    def _refuse(self, error: web.HTTPError) -> None:
        """Answer ``error`` after the body has been read and dropped, or at once when the
        body is declared larger than the upload limit."""
        bound = self.app.max_upload_size + 65536
        declared = declared_size(self.request.headers)
        if declared is not None and declared > bound:
            self.refuse_unread(error, bound)
            return
        self.request.connection.set_max_body_size(bound)
        self._body_error = error

    def data_received(self, chunk: bytes) -> None:
        if self.receiver is None or self._body_error is not None:
            return  # a refused body, or the rest after a bad part, is read and dropped
        try:
            self.receiver.feed(chunk)
        except DatapilotError as e:
            # raised from here it would drop the connection: the client would get the
            # proxy's error page instead of this JSON error, which post() answers
            self._body_error = e

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        # before the refusal leaves (on_finish runs after): whoever reads it finds no
        # upload left behind
        if self.receiver is not None:
            self.receiver.cleanup()
        super().write_error(status_code, **kwargs)

    def on_finish(self) -> None:
        if self.receiver is not None:
            self.receiver.cleanup()
        super().on_finish()

    def on_connection_close(self) -> None:
        if self.receiver is not None:
            self.receiver.cleanup()
        super().on_connection_close()

    def get(self, org: str) -> None:
        if self._body_error is not None:
            raise self._body_error
        self.write_json({"datasets": self.app.datasets.list(self.org(org))})

    async def post(self, org: str) -> None:
        if self._body_error is not None:
            raise self._body_error
        self.receiver.finish()
        fields = self.receiver.fields
        name = validate_name(fields.get("name"))
        mode = validate_mode(fields.get("mode", "create"))
        self.audit_target, self.audit_details = name, {"mode": mode}
        try:
            options = loads_strict(fields.get("options") or "{}")
        except ValueError as e:
            raise bad_request("options", f"options {e}.") from None
        options = validate_options(options)
        upload = self.receiver.files.get("file")
        if upload is None:
            raise bad_request("file", "The upload has no 'file' part.", code="missing_file")
        every_sheet = options.get("sheet") == ALL_SHEETS
        if not every_sheet:
            self.app.datasets.check_write(self.ctx, name, mode)
            self.app.quotas.check_upload(self.ctx, name, mode)
        source_name = upload["filename"] or f"{name}.upload"
        # the content decides what the file is, not its name: a wrong or hostile file is
        # refused here, before any job exists
        loop = asyncio.get_running_loop()
        sniffed = await loop.run_in_executor(
            None, sniff, upload["path"], source_name, options, self.app.limits
        )
        targets = None
        if every_sheet:
            if sniffed.format not in EXCEL_FORMATS:
                raise bad_request(
                    "options.sheet",
                    f"options.sheet '*' reads every sheet of a workbook; {source_name} is"
                    f" {sniffed.format}.",
                )
            sheets = await loop.run_in_executor(None, workbook_sheets, upload["path"], source_name)
            targets = sheet_datasets(name, sheets)
            if mode == "create":
                for dataset in targets.values():
                    self.app.datasets.check_write(self.ctx, dataset, mode)
            # (replace and append: which sheets have data, and so need their dataset, the
            # job sees; a sheet with data and no dataset fails it, naming the dataset)
            self.app.quotas.check_upload(self.ctx, list(targets.values()), mode)
        upload = self.receiver.take_file("file")
        try:
            job = self.app.jobs.create(
                self.ctx,
                "ingest",
                name,
                {
                    "mode": mode,
                    "source": source_name,
                    "bytes": upload["size"],
                    "options": options,
                    "format": sniffed.format,
                },
            )
        except BaseException:
            os.unlink(upload["path"])
            raise
        request = IngestRequest(
            org_id=self.ctx.org_id,
            dataset=name,
            mode=mode,
            source_path=upload["path"],
            source_name=source_name,
            user=self.ctx.caller.name,
            options=options,
            sniffed=sniffed.to_json(),
            row_checker=functools.partial(self.app.quotas.row_checker, self.ctx.org_id),
            sheet_datasets=targets,
        )
        self.audit_details["job"] = job["id"]
        self.app.submit_ingest(job["id"], request)
        self.set_header("Location", f"{self.app.api_prefix}orgs/{org}/jobs/{job['id']}")
        answer: dict[str, Any] = {"job": job, "dataset": name}
        if targets is not None:
            answer["datasets"] = targets
        self.write_json(answer, 202)


class DatasetAPIHandler(APIHandler):
    """GET /orgs/{org}/datasets/{name} (``data:read``); DELETE (``data:delete``)."""

    audit_actions = {"DELETE": "dataset.delete"}

    def get(self, org: str, name: str) -> None:
        self.write_json(self.app.datasets.describe(self.org(org), name))

    def delete(self, org: str, name: str) -> None:
        ctx = self.org(org)
        self.app.datasets.delete(ctx, name)
        self.app.quotas.record_storage(ctx.org_id, ctx.caller.name, deleted=name)
        self.set_status(204)
        self.finish()


class DatasetVersionsAPIHandler(APIHandler):
    """GET /orgs/{org}/datasets/{name}/versions (``data:read``)."""

    def get(self, org: str, name: str) -> None:
        self.write_json({"versions": self.app.datasets.versions(self.org(org), name)})


class DatasetRollbackAPIHandler(APIHandler):
    """POST /orgs/{org}/datasets/{name}/rollback ``{"version": n}`` (``data:import``)."""

    audit_actions = {"POST": "dataset.rollback"}

    def post(self, org: str, name: str) -> None:
        body = self.json_body()
        self.audit_target, self.audit_details = name, {"version": body.get("version")}
        self.write_json(self.app.datasets.rollback(self.org(org), name, body.get("version")))


class DatasetDataAPIHandler(APIHandler):
    """GET /orgs/{org}/datasets/{name}/data: rows as json, csv, arrow or parquet.

    Every read is an audit event (``dataset.read``; ``dp.load`` in a kernel reads here)
    and counts against the ``download`` rate limit.
    """

    audit_actions = {"GET": "dataset.read"}

    async def get(self, org: str, name: str) -> None:
        ctx = self.org(org)
        columns = self.query("columns")
        req = ReadRequest(
            version=whole_number(self.query("version"), "version", None, -MAX_WHOLE),
            columns=[c for c in columns.split(",") if c] if columns else None,
            limit=whole_number(self.query("limit"), "limit", None, 0),
            offset=whole_number(self.query("offset"), "offset", 0, 0),
            format=self.query("format", "json"),
        )
        target = self.app.datasets.resolve_read(ctx, name, req)
        self.audit_details = {"version": target["version"], "format": req.format}
        await self.check_rate_limit("download", ctx)
        self.set_header("Content-Type", FORMATS[req.format])
        if req.format != "json":
            filename = f"{name}-v{target['version']}.{_EXTENSIONS[req.format]}"
            self.set_header("Content-Disposition", f'attachment; filename="{filename}"')
        await send_chunks(self, self.app.datasets.iter_data(target, req))


default_handlers = [
    (rf"/orgs/{ORG}/datasets", DatasetsAPIHandler),
    (rf"/orgs/{ORG}/datasets/{NAME}", DatasetAPIHandler),
    (rf"/orgs/{ORG}/datasets/{NAME}/versions", DatasetVersionsAPIHandler),
    (rf"/orgs/{ORG}/datasets/{NAME}/rollback", DatasetRollbackAPIHandler),
    (rf"/orgs/{ORG}/datasets/{NAME}/data", DatasetDataAPIHandler),
]
