"""Ingestion, first version: well-formed UTF-8 CSV and Parquet, streamed batch by batch.

The file is read in blocks (pyarrow's streaming CSV reader, or Parquet row groups)
and written as Parquet under the new version's directory; the version becomes
visible only by the catalog commit at the end.
"""

from __future__ import annotations

import io
import os
import re
import unicodedata
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from ..catalog import Catalog, Dataset, DatasetVersion, utcnow
from ..errors import DatapilotError
from ..storage import Storage
from .jobs import JobHandle

NULL_TOKENS = ["", "NA", "N/A", "n/a", "null", "NULL", "None", "-", "#N/A", "NaN", "nan"]
# large blocks: the streaming reader infers column types from the first block
CSV_BLOCK_SIZE = 16 << 20
PARQUET_MAGIC = b"PAR1"
MODES = ("create", "replace", "append")


def logical_type(arrow_type: pa.DataType) -> str:
    """The API's logical type of an Arrow type."""
    if pa.types.is_boolean(arrow_type):
        return "boolean"
    if pa.types.is_integer(arrow_type):
        return "integer"
    if pa.types.is_floating(arrow_type) or pa.types.is_decimal(arrow_type):
        return "number"
    if pa.types.is_date(arrow_type):
        return "date"
    if pa.types.is_timestamp(arrow_type):
        return "datetime"
    return "string"


def normalize_names(labels: list[str]) -> list[str]:
    """Lower snake_case column names, unique and never empty.

    Parameters
    ----------
    labels : list of str
        Headers as uploaded.
    """
    names: list[str] = []
    seen: set[str] = set()
    for i, label in enumerate(labels, start=1):
        text = unicodedata.normalize("NFKD", str(label)).encode("ascii", "ignore").decode()
        name = re.sub(r"[^0-9a-zA-Z]+", "_", text).strip("_").lower() or f"column_{i}"
        if name[0].isdigit():
            name = f"c_{name}"
        base, n = name[:60], 2
        name = base
        while name in seen:
            name = f"{base}_{n}"
            n += 1
        seen.add(name)
        names.append(name)
    return names


def _storable(arrow_type: pa.DataType) -> pa.DataType:
    """The type a column is stored as: dictionaries decoded, time-of-day and nested as text."""
    if pa.types.is_dictionary(arrow_type):
        return _storable(arrow_type.value_type)
    if logical_type(arrow_type) != "string":
        return arrow_type
    if pa.types.is_string(arrow_type) or pa.types.is_large_string(arrow_type):
        return arrow_type
    return pa.string()


class _CountingFile(io.RawIOBase):
    """A read-only file that counts the bytes handed to the reader, for progress."""

    def __init__(self, path: str) -> None:
        self._f = open(path, "rb")  # noqa: SIM115 - closed by close()
        self.bytes_read = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        n = self._f.readinto(buffer)
        self.bytes_read += n
        return n

    def close(self) -> None:
        self._f.close()
        super().close()


@dataclass
class _ColumnStats:
    nulls: int = 0
    min: Any = None
    max: Any = None

    def update(self, array: pa.ChunkedArray | pa.Array) -> None:
        self.nulls += array.null_count
        if logical_type(array.type) in ("integer", "number", "date", "datetime"):
            mm = pc.min_max(array)
            lo, hi = mm["min"].as_py(), mm["max"].as_py()
            if lo is not None:
                self.min = lo if self.min is None else min(self.min, lo)
                self.max = hi if self.max is None else max(self.max, hi)

    def to_json(self) -> dict[str, Any]:
        def plain(v):
            return v.isoformat() if hasattr(v, "isoformat") else v

        return {"nulls": self.nulls, "min": plain(self.min), "max": plain(self.max)}


@dataclass
class IngestRequest:
    """One ingestion: what to read, into which dataset, how."""

    org_id: int
    dataset: str
    mode: str
    source_path: str
    source_name: str
    user: str
    options: dict[str, Any] = field(default_factory=dict)


def sniff_format(path: str, source_name: str) -> str:
    """``"parquet"`` or ``"csv"`` from the content; anything else is 415."""
    with open(path, "rb") as f:
        head = f.read(4096)
    if head.startswith(PARQUET_MAGIC):
        return "parquet"
    if not head:
        raise DatapilotError(422, "empty_file", f"{source_name} is empty.")
    if b"\x00" in head:
        raise DatapilotError(
            415,
            "unsupported_type",
            f"{source_name} is neither UTF-8 CSV nor Parquet (binary content).",
        )
    try:
        head.decode("utf-8")
    except UnicodeDecodeError as e:
        # a multi-byte character cut at the end of the sample is fine
        if e.start < len(head) - 4:
            raise DatapilotError(
                415, "unsupported_type", f"{source_name} is not UTF-8 text."
            ) from None
    return "csv"


class _Source:
    """Record batches of an uploaded file, with labels and progress."""

    def __init__(self, path: str, fmt: str) -> None:
        self.path = path
        self.format = fmt
        self.total = max(os.path.getsize(path), 1)
        if fmt == "parquet":
            self._pf = pq.ParquetFile(path)
            schema = self._pf.schema_arrow
            keep = [n for n in schema.names if not n.startswith("__index_level_")]
            self._columns = keep
            self.labels = keep
            self._done_groups = 0
        else:
            self._file = _CountingFile(path)
            self._reader = pacsv.open_csv(
                self._file,
                read_options=pacsv.ReadOptions(block_size=CSV_BLOCK_SIZE),
                convert_options=pacsv.ConvertOptions(
                    null_values=NULL_TOKENS,
                    strings_can_be_null=True,
                    quoted_strings_can_be_null=True,
                ),
            )
            self.labels = self._reader.schema.names

    def batches(self):
        if self.format == "parquet":
            for i in range(self._pf.num_row_groups):
                table = self._pf.read_row_group(i, columns=self._columns)
                self._done_groups = i + 1
                yield from table.to_batches()
        else:
            try:
                yield from self._reader
            except pa.ArrowInvalid as e:
                raise DatapilotError(
                    422, "unreadable_csv", f"The CSV could not be read: {e}"
                ) from None

    def fraction(self) -> float:
        if self.format == "parquet":
            return self._done_groups / max(self._pf.num_row_groups, 1)
        return self._file.bytes_read / self.total

    def close(self) -> None:
        if self.format == "csv":
            self._file.close()


class Ingestor:
    """Turns an uploaded file into a new dataset version.

    Parameters
    ----------
    catalog : Catalog
        Where versions are published.
    storage : Storage
        Where Parquet files are written.
    """

    def __init__(self, catalog: Catalog, storage: Storage) -> None:
        self.catalog = catalog
        self.storage = storage

    def run(self, req: IngestRequest, handle: JobHandle) -> dict[str, Any]:
        """Do the whole ingestion; returns the job result (dataset, version, rows)."""
        fmt = sniff_format(req.source_path, req.source_name)
        version, parent = self._reserve_version(req)
        out_dir = self.storage.dataset_version_dir(req.org_id, req.dataset, version)
        handle.set_output(out_dir)
        source = _Source(req.source_path, fmt)
        try:
            columns, rows = self._write(req, source, parent, out_dir, handle)
        finally:
            source.close()
        handle.progress(0.999, force=True)
        report = {
            "source": req.source_name,
            "format": fmt,
            "encoding": "utf-8" if fmt == "csv" else None,
            "rows_read": rows - (parent["rows"] if parent else 0),
            "rows_rejected": 0,
            "columns": {
                c["name"]: {"type": c["type"], "nulls": c["stats"]["nulls"]} for c in columns
            },
            "warnings": [],
        }
        self._publish(req, version, parent, out_dir, columns, rows, report, handle.id)
        return {"dataset": req.dataset, "version": version, "rows": rows}

    def _reserve_version(self, req: IngestRequest) -> tuple[int, dict[str, Any] | None]:
        with self.catalog.session(req.org_id) as db:
            ds = Dataset.find(db, req.org_id, req.dataset)
            visible = ds is not None and ds.current_version is not None
            if req.mode == "create" and visible:
                raise DatapilotError(
                    409,
                    "dataset_exists",
                    f"A dataset named {req.dataset!r} already exists; use mode replace or append.",
                    dataset=req.dataset,
                )
            if req.mode != "create" and not visible:
                raise DatapilotError(
                    404,
                    "not_found",
                    f"No dataset named {req.dataset!r} is visible to you.",
                    dataset=req.dataset,
                )
            if ds is None:
                ds = Dataset(
                    organization_id=req.org_id,
                    name=req.dataset,
                    next_version=1,
                    created_by=req.user,
                    options=req.options or None,
                )
                db.add(ds)
                db.flush()
            version = ds.next_version
            ds.next_version = version + 1
            parent = None
            if visible:
                cur = ds.current
                parent = {
                    "version": cur.version,
                    "path": cur.path,
                    "rows": cur.rows,
                    "columns": cur.columns,
                }
            return version, parent

    def _write(self, req, source: _Source, parent, out_dir: str, handle: JobHandle):
        labels = source.labels
        names = normalize_names(labels)
        schema: pa.Schema | None = None
        stats: list[_ColumnStats] = []
        rows = 0
        path = f"{out_dir}/part-0.parquet"
        if req.mode == "append":
            parent_names = [c["name"] for c in parent["columns"]]
            if names != parent_names:
                missing = [n for n in parent_names if n not in names]
                extra = [n for n in names if n not in parent_names]
                column = (missing or extra or [names[0]])[0]
                problems = [f"column {c!r} is missing" for c in missing]
                problems += [f"column {c!r} is new" for c in extra]
                raise DatapilotError(
                    409,
                    "schema_mismatch",
                    "Appended columns differ from the dataset's: "
                    + ("; ".join(problems) or "the columns are in another order")
                    + ". Use mode replace to change the columns.",
                    column=column,
                    missing=missing,
                    new=extra,
                )
            labels = [c["label"] for c in parent["columns"]]
        with self.storage.open(path, "wb") as out:
            writer = None
            try:
                if parent is not None and req.mode == "append":
                    with self.storage.open(f"{parent['path']}/part-0.parquet", "rb") as f:
                        old = pq.ParquetFile(f)
                        schema = old.schema_arrow
                        stats = [_ColumnStats() for _ in names]
                        writer = pq.ParquetWriter(out, schema, compression="zstd")
                        for i in range(old.num_row_groups):
                            table = old.read_row_group(i)
                            writer.write_table(table)
                            rows += table.num_rows
                            for s, col in zip(stats, table.columns, strict=True):
                                s.update(col)
                for batch in source.batches():
                    batch = pa.RecordBatch.from_arrays(batch.columns, names=names)
                    if schema is None:
                        schema = pa.schema(
                            [
                                pa.field(n, _storable(t))
                                for n, t in zip(names, batch.schema.types, strict=True)
                            ]
                        )
                        stats = [_ColumnStats() for _ in names]
                        writer = pq.ParquetWriter(out, schema, compression="zstd")
                    table = self._conform(pa.Table.from_batches([batch]), schema)
                    writer.write_table(table)
                    rows += table.num_rows
                    for s, col in zip(stats, table.columns, strict=True):
                        s.update(col)
                    handle.progress(0.95 * source.fraction())
                if schema is None:
                    raise DatapilotError(
                        422, "no_rows", f"{req.source_name} has a header but no columns."
                    )
                if writer is None:
                    writer = pq.ParquetWriter(out, schema, compression="zstd")
            finally:
                if writer is not None:
                    writer.close()
        columns = [
            {
                "name": f.name,
                "label": str(label),
                "type": logical_type(f.type),
                "arrow_type": str(f.type),
                "nullable": True,
                "stats": s.to_json(),
            }
            for f, label, s in zip(schema, labels, stats, strict=True)
        ]
        return columns, rows

    @staticmethod
    def _conform(table: pa.Table, schema: pa.Schema) -> pa.Table:
        if table.schema.equals(schema):
            return table
        arrays = []
        for field_, column in zip(schema, table.columns, strict=True):
            if column.type == field_.type:
                arrays.append(column)
                continue
            if pa.types.is_null(column.type):
                arrays.append(pa.nulls(len(column), field_.type))
                continue
            try:
                arrays.append(column.cast(field_.type))
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
                raise DatapilotError(
                    409,
                    "schema_mismatch",
                    f"Column {field_.name!r} holds {logical_type(column.type)} values where the"
                    f" dataset has {logical_type(field_.type)}.",
                    column=field_.name,
                ) from None
        return pa.Table.from_arrays(arrays, schema=schema)

    def _publish(self, req, version, parent, out_dir, columns, rows, report, job_id) -> None:
        nbytes = self.storage.size(out_dir)
        with self.catalog.session(req.org_id) as db:
            ds = Dataset.find(db, req.org_id, req.dataset)
            if ds is None:
                raise DatapilotError(
                    409, "dataset_deleted", f"{req.dataset!r} was deleted meanwhile."
                )
            db.add(
                DatasetVersion(
                    organization_id=req.org_id,
                    dataset_id=ds.id,
                    version=version,
                    columns=columns,
                    rows=rows,
                    bytes=nbytes,
                    path=out_dir,
                    parent_version=parent["version"] if parent else None,
                    lineage={"operation": req.mode, "source": req.source_name, "job": job_id},
                    report=report,
                    source_name=req.source_name,
                    created_by=req.user,
                    created=utcnow(),
                )
            )
            ds.current_version = version
            ds.updated = utcnow()
