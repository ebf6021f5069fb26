"""Datasets of an organization: list, describe, read in several formats, delete."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
from sqlalchemy import select

from datapilot_contract import check_dataset_name, check_mode

from ..catalog import Catalog, Dataset, DatasetVersion, Job
from ..errors import DatapilotError, bad_request, checked, not_found
from ..storage import Storage, parquet_writer
from ._identity import OrgContext

FORMATS = {
    "json": "application/json",
    "csv": "text/csv; charset=utf-8",
    "arrow": "application/vnd.apache.arrow.stream",
    "parquet": "application/vnd.apache.parquet",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
}
#: rows of one Excel sheet, the header row included
XLSX_MAX_ROWS = 1_048_576
JSON_DEFAULT_LIMIT = 1000
JSON_MAX_LIMIT = 100_000


def validate_name(name: Any, field_name: str = "name") -> str:
    """Return ``name`` or raise 400 when it is not a valid dataset name."""
    return checked(check_dataset_name, name, field_name)


def validate_mode(mode: Any) -> str:
    """Return ``mode`` or raise 400 when it is not an upload mode."""
    return checked(check_mode, mode, "mode")


def version_model(v: DatasetVersion, current: int | None) -> dict[str, Any]:
    """The JSON model of a dataset version."""
    return {
        "version": v.version,
        "current": v.version == current,
        "rows": v.rows,
        "columns": len(v.columns),
        "bytes": v.bytes,
        "created": v.created.isoformat(),
        "created_by": v.created_by,
        "source": v.source_name,
        "parent_version": v.parent_version,
        "lineage": v.lineage,
        "report": v.report,
    }


@dataclass
class ReadRequest:
    """What rows of which version to read, in which format."""

    version: int | None = None
    columns: list[str] | None = None
    limit: int | None = None
    offset: int = 0
    format: str = "json"


class DatasetService:
    """Read side of the datasets, plus the write checks that run before a job starts.

    Parameters
    ----------
    catalog : Catalog
        The catalog.
    storage : Storage
        Where the Parquet files are.
    """

    def __init__(self, catalog: Catalog, storage: Storage) -> None:
        self.catalog = catalog
        self.storage = storage

    def list(self, ctx: OrgContext) -> list[dict[str, Any]]:
        """Visible datasets with their current version."""
        ctx.require("data:read")
        with self.catalog.session(ctx.org_id) as db:
            rows = db.execute(
                select(Dataset, DatasetVersion)
                .join(
                    DatasetVersion,
                    (DatasetVersion.dataset_id == Dataset.id)
                    & (DatasetVersion.version == Dataset.current_version),
                )
                .where(Dataset.organization_id == ctx.org_id)
                .order_by(Dataset.name)
            ).all()
            return [
                {
                    "name": ds.name,
                    "version": v.version,
                    "rows": v.rows,
                    "columns": len(v.columns),
                    "bytes": v.bytes,
                    "updated": ds.updated.isoformat(),
                    "created_by": ds.created_by,
                }
                for ds, v in rows
            ]

    def _visible(self, db, ctx: OrgContext, name: str) -> Dataset:
        validate_name(name)
        ds = Dataset.find(db, ctx.org_id, name)
        if ds is None or ds.current_version is None:
            raise not_found("dataset", name)
        return ds

    def describe(self, ctx: OrgContext, name: str) -> dict[str, Any]:
        """Schema, report and versions of a dataset."""
        ctx.require("data:read")
        with self.catalog.session(ctx.org_id) as db:
            ds = self._visible(db, ctx, name)
            cur = ds.current
            return {
                "name": ds.name,
                "version": cur.version,
                "rows": cur.rows,
                "bytes": cur.bytes,
                "columns": [
                    {k: c.get(k) for k in ("name", "label", "type", "nullable", "unit", "stats")}
                    for c in cur.columns
                ],
                "report": cur.report,
                "created": ds.created.isoformat(),
                "updated": ds.updated.isoformat(),
                "versions": [version_model(v, ds.current_version) for v in ds.versions],
            }

    def versions(self, ctx: OrgContext, name: str) -> list[dict[str, Any]]:
        """Every version, oldest first."""
        ctx.require("data:read")
        with self.catalog.session(ctx.org_id) as db:
            ds = self._visible(db, ctx, name)
            return [version_model(v, ds.current_version) for v in ds.versions]

    def rollback(self, ctx: OrgContext, name: str, version: Any) -> dict[str, Any]:
        """Make an older version current again (versions themselves never change)."""
        ctx.require("data:import")
        if not isinstance(version, int) or isinstance(version, bool):
            raise bad_request("version", "version must be a version number.")
        with self.catalog.session(ctx.org_id) as db:
            ds = self._visible(db, ctx, name)
            if not any(v.version == version for v in ds.versions):
                raise DatapilotError(
                    404, "not_found", f"{name!r} has no version {version}.", version=version
                )
            ds.current_version = version
        return self.describe(ctx, name)

    def check_write(self, ctx: OrgContext, name: str, mode: str) -> None:
        """Refuse an import before its job starts: bad names, conflicts, missing targets."""
        ctx.require("data:import")
        validate_name(name)
        validate_mode(mode)
        self.check_target(ctx, name, mode)

    def check_target(
        self, ctx: OrgContext, name: str, mode: str, others: str = "replace or append"
    ) -> None:
        """409 when ``mode`` is ``create`` and the dataset is visible, 404 when it is not
        and the mode needs it; ``others`` names the modes the 409 suggests."""
        with self.catalog.session(ctx.org_id) as db:
            ds = Dataset.find(db, ctx.org_id, name)
            visible = ds is not None and ds.current_version is not None
            if mode == "create" and visible:
                raise DatapilotError(
                    409,
                    "dataset_exists",
                    f"A dataset named {name!r} already exists; use mode {others}.",
                    dataset=name,
                )
            if mode != "create" and not visible:
                raise not_found("dataset", name)

    def delete(self, ctx: OrgContext, name: str) -> None:
        """Delete a dataset, its versions and its stored files."""
        ctx.require("data:delete")
        with self.catalog.session(ctx.org_id) as db:
            ds = self._visible(db, ctx, name)
            running = db.scalar(
                select(Job.id).where(
                    Job.organization_id == ctx.org_id,
                    Job.dataset_name == name,
                    Job.state.in_(("queued", "running")),
                )
            )
            if running:
                raise DatapilotError(
                    409,
                    "job_running",
                    f"Job {running} is writing {name!r}; cancel it first.",
                    job=running,
                )
            db.delete(ds)
        self.storage.remove(self.storage.dataset_dir(ctx.org_id, name))

    def version_info(
        self, ctx: OrgContext, name: str, version: int | None, permission: str = "data:read"
    ) -> dict[str, Any]:
        """A version to read: its number, rows, storage path and columns with their types.

        Parameters
        ----------
        ctx : OrgContext
            The caller in the organization.
        name : str
            The dataset.
        version : int, optional
            A version number; by default the current one.
        permission : str
            What the caller must be allowed: ``data:read``, or ``insights:run`` for the
            insights.

        Returns
        -------
        dict
            ``{"name", "version", "rows", "path", "schema": {column: logical type},
            "columns"}``: ``columns`` as the catalog has them (name, label, type, stats).
        """
        ctx.require(permission)
        if version is not None and (not isinstance(version, int) or isinstance(version, bool)):
            raise bad_request("version", "version must be a version number.")
        with self.catalog.session(ctx.org_id) as db:
            ds = self._visible(db, ctx, name)
            number = version if version is not None else ds.current_version
            v = next((v for v in ds.versions if v.version == number), None)
            if v is None:
                raise DatapilotError(
                    404, "not_found", f"{name!r} has no version {number}.", version=number
                )
            return {
                "name": name,
                "version": v.version,
                "rows": v.rows,
                "path": v.path,
                "schema": {c["name"]: c["type"] for c in v.columns},
                "columns": [dict(c) for c in v.columns],
            }

    def resolve_read(self, ctx: OrgContext, name: str, req: ReadRequest) -> dict[str, Any]:
        """Check a read and return what :meth:`iter_data` needs."""
        ctx.require("data:read")
        if req.format not in FORMATS:
            raise bad_request("format", f"format must be one of {', '.join(FORMATS)}.")
        if req.offset < 0:
            raise bad_request("offset", "offset must be 0 or more.")
        if req.limit is not None and req.limit < 0:
            raise bad_request("limit", "limit must be 0 or more.")
        if req.format == "json":
            req.limit = JSON_DEFAULT_LIMIT if req.limit is None else req.limit
            if req.limit > JSON_MAX_LIMIT:
                raise bad_request(
                    "limit",
                    f"JSON reads return at most {JSON_MAX_LIMIT} rows; use arrow or parquet.",
                )
        with self.catalog.session(ctx.org_id) as db:
            ds = self._visible(db, ctx, name)
            version = req.version if req.version is not None else ds.current_version
            v = next((v for v in ds.versions if v.version == version), None)
            if v is None:
                raise DatapilotError(
                    404, "not_found", f"{name!r} has no version {version}.", version=version
                )
            names = [c["name"] for c in v.columns]
            if req.columns:
                unknown = [c for c in req.columns if c not in names]
                if unknown:
                    raise bad_request(
                        "columns",
                        f"Unknown column(s): {', '.join(unknown)}.",
                        code="unknown_column",
                    )
            wanted = v.rows - req.offset if req.limit is None else min(req.limit, v.rows)
            if req.format == "xlsx" and wanted >= XLSX_MAX_ROWS:
                raise bad_request(
                    "format",
                    f"An Excel sheet holds at most {XLSX_MAX_ROWS - 1:,} rows; {name!r} has"
                    f" {v.rows:,}. Download CSV or Parquet, or read fewer rows (limit).",
                )
            return {
                "name": name,
                "version": version,
                "rows": v.rows,
                "path": v.path,
                "columns": req.columns or names,
                "all_columns": req.columns is None,
            }

    def iter_data(self, target: dict[str, Any], req: ReadRequest) -> Iterator[bytes]:
        """The requested rows, encoded, as a sequence of byte chunks (blocking I/O)."""
        files = [f for f in self.storage.files(target["path"]) if f.endswith(".parquet")]
        whole = target["all_columns"] and req.offset == 0 and req.limit is None
        if req.format == "parquet" and whole and len(files) == 1:
            with self.storage.open(files[0], "rb") as f:
                while chunk := f.read(1 << 20):
                    yield chunk
            return
        with self.storage.open(files[0], "rb") as f:
            schema = pq.read_schema(f)
        schema = pa.schema([schema.field(c) for c in target["columns"]])
        batches = self._batches(files, target["columns"], req.offset, req.limit)
        if req.format == "json":
            yield from _json_chunks(target, req, batches)
        elif req.format == "csv":
            yield from _stream_chunks(batches, _csv_writer, schema)
        elif req.format == "arrow":
            yield from _stream_chunks(batches, pa.ipc.new_stream, schema)
        elif req.format == "xlsx":
            yield from _xlsx_chunks(batches, schema, target["name"])
        else:
            yield from _stream_chunks(batches, parquet_writer, schema)

    def _batches(self, files, columns, offset, limit) -> Iterator[pa.RecordBatch]:
        skip, left = offset, limit
        for path in files:
            with self.storage.open(path, "rb") as f:
                for batch in pq.ParquetFile(f).iter_batches(batch_size=65536, columns=columns):
                    if skip >= batch.num_rows:
                        skip -= batch.num_rows
                        continue
                    batch = batch.slice(skip)
                    skip = 0
                    if left is not None:
                        if left <= 0:
                            return
                        batch = batch.slice(0, left)
                        left -= batch.num_rows
                    yield batch


def _json_chunks(target, req, batches) -> Iterator[bytes]:
    head = {
        "dataset": target["name"],
        "version": target["version"],
        "total_rows": target["rows"],
        "offset": req.offset,
        "limit": req.limit,
        "columns": target["columns"],
    }
    yield json.dumps(head)[:-1].encode() + b', "rows": ['
    first = True
    for batch in batches:
        # dates as "2024-01-02", not as midnight timestamps
        arrays = [c.cast(pa.string()) if pa.types.is_date(c.type) else c for c in batch.columns]
        df = pa.RecordBatch.from_arrays(arrays, names=batch.schema.names).to_pandas()
        text = df.to_json(orient="records", date_format="iso", date_unit="s")[1:-1]
        if text:
            yield (b"" if first else b",") + text.encode()
            first = False
    yield b"]}"


class _ChunkSink(io.RawIOBase):
    """A write-only file that hands out what was written since the last call.

    ``tell()`` counts every byte ever written: Parquet records file offsets in its
    footer, so the position must not go back when the buffer is emptied.
    """

    def __init__(self) -> None:
        self._parts: list[bytes] = []
        self._pos = 0

    def writable(self) -> bool:
        return True

    def write(self, data) -> int:
        data = bytes(data)
        self._parts.append(data)
        self._pos += len(data)
        return len(data)

    def tell(self) -> int:
        return self._pos

    def take(self) -> bytes:
        out = b"".join(self._parts)
        self._parts.clear()
        return out


class _SafeCSVWriter:
    """CSV with spreadsheet formulas neutralized: a text cell starting with = + - @ (or a
    tab or carriage return) gets a leading ' so that Excel shows it instead of running it."""

    def __init__(self, sink, schema: pa.Schema) -> None:
        self._writer = pacsv.CSVWriter(sink, schema)
        self._text = [
            pa.types.is_string(f.type) or pa.types.is_large_string(f.type) for f in schema
        ]

    def write_batch(self, batch: pa.RecordBatch) -> None:
        columns = [
            _neutralize(col) if is_text else col
            for col, is_text in zip(batch.columns, self._text, strict=True)
        ]
        self._writer.write_batch(pa.RecordBatch.from_arrays(columns, schema=batch.schema))

    def close(self) -> None:
        self._writer.close()


def _neutralize(col: pa.Array) -> pa.Array:
    risky = pc.match_substring_regex(col, r"^[=+\-@\t\r]")
    return pc.if_else(
        risky,
        pc.binary_join_element_wise(pa.scalar("'", col.type), col, pa.scalar("", col.type)),
        col,
    )


def _csv_writer(sink, schema: pa.Schema) -> _SafeCSVWriter:
    return _SafeCSVWriter(sink, schema)


def _stream_chunks(batches, open_writer, schema: pa.Schema) -> Iterator[bytes]:
    """Encode batches with a CSV, Arrow IPC or Parquet writer, handing out bytes as they come."""
    sink = _ChunkSink()
    writer = open_writer(sink, schema)
    for batch in batches:
        writer.write_batch(batch)
        if chunk := sink.take():
            yield chunk
    writer.close()
    yield sink.take()


def _xlsx_chunks(batches, schema: pa.Schema, title: str) -> Iterator[bytes]:
    """One sheet of the rows (openpyxl's write-only mode), with formulas neutralized as in
    CSV and times in UTC (Excel has no time zones). A zip is written whole before it can
    be read, so the workbook is spooled to a temporary file, then handed out in pieces."""
    import tempfile

    from openpyxl import Workbook

    text = [pa.types.is_string(f.type) or pa.types.is_large_string(f.type) for f in schema]
    stamps = [pa.types.is_timestamp(f.type) and f.type.tz is not None for f in schema]
    wb = Workbook(write_only=True)
    sheet = wb.create_sheet(title[:31])
    sheet.append(schema.names)
    for batch in batches:
        columns = []
        for col, is_text, is_stamp in zip(batch.columns, text, stamps, strict=True):
            if is_text:
                col = _neutralize(col)
            elif is_stamp:
                col = col.cast(pa.timestamp(col.type.unit))
            columns.append(col.to_pylist())
        for row in zip(*columns, strict=True):
            sheet.append(row)
    with tempfile.TemporaryFile() as spool:
        wb.save(spool)
        spool.seek(0)
        while chunk := spool.read(1 << 20):
            yield chunk


def table_chunks(table: pa.Table, fmt: str) -> Iterator[bytes]:
    """A table encoded as ``/data`` encodes rows: ``csv`` (formulas neutralized), ``arrow``
    (an IPC stream) or ``parquet``.

    Parameters
    ----------
    table : pyarrow.Table
        The rows.
    fmt : str
        ``csv``, ``arrow`` or ``parquet``.
    """
    writers = {"csv": _csv_writer, "arrow": pa.ipc.new_stream, "parquet": parquet_writer}
    yield from _stream_chunks(table.to_batches(), writers[fmt], table.schema)
