"""The ingestion pipeline: sniff, profile the whole file, decide types, convert, publish.

Text formats (CSV and friends, Excel, JSON Lines) go through two passes. Pass one reads
the file once as text, cleans it (trim, null tokens), profiles every column and spools
the cleaned batches to a local Arrow file. The types are decided from the whole file.
Pass two reads the spool (memory-mapped) and converts and writes Parquet batch by
batch, so memory stays flat whatever the size. Parquet uploads are typed already and
are copied batch by batch.

The version becomes visible only by the catalog commit at the end; a failure removes
what was written (the job runner does), and a crash is swept at the next start.
"""

from __future__ import annotations

import logging
import os
import queue
import re
import threading
import time
import unicodedata
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError

from ...catalog import Catalog, Dataset, DatasetVersion, utcnow
from ...errors import DatapilotError
from ...storage import Storage, parquet_writer
from ..jobs import JobHandle
from ._infer import TYPES, ColumnProfile, Locale, clean_text, convert, logical_type
from ._sniff import EXCEL_FORMATS, Limits, Sniffed, sniff, text_encoding
from ._sources import open_source
from ._workbook import workbook_sheets

log = logging.getLogger(__name__)

# options.sheet: every sheet of the workbook, each its own dataset
ALL_SHEETS = "*"
OPTION_KEYS = {
    "sheet",
    "header",
    "delimiter",
    "encoding",
    "decimal",
    "thousands",
    "dayfirst",
    "types",
    "dedupe",
    "allow_schema_change",
    "tolerance",
}
_EXAMPLES = 5
_ROW_NUMBERS = 10


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


def validate_options(options: Any) -> dict[str, Any]:
    """Check an upload's ``options`` object; 400 naming the first bad option."""
    if not isinstance(options, dict):
        raise DatapilotError(
            400, "invalid_input", "options must be a JSON object.", field="options"
        )

    def bad(key: str, message: str) -> DatapilotError:
        return DatapilotError(
            400, "invalid_input", f"options.{key} {message}", field=f"options.{key}"
        )

    unknown = set(options) - OPTION_KEYS
    if unknown:
        key = sorted(unknown)[0]
        raise bad(key, f"is not an option; known: {', '.join(sorted(OPTION_KEYS))}.")
    for key in ("header", "dayfirst", "dedupe", "allow_schema_change"):
        if key in options and not isinstance(options[key], bool):
            raise bad(key, "must be true or false.")
    # (null or empty: sniffed, as when left out)
    if options.get("encoding") not in (None, "") and text_encoding(options["encoding"]) is None:
        raise bad(
            "encoding",
            f"must name a text encoding (utf-8, cp1252, latin-1, utf-16...), not"
            f" {options['encoding']!r}.",
        )
    if options.get("delimiter") not in (None, "") and not (
        isinstance(options["delimiter"], str)
        and len(options["delimiter"]) == 1
        and options["delimiter"] not in '"\r\n'
    ):
        raise bad("delimiter", "must be one character (not a quote or a line break).")
    if "decimal" in options and options["decimal"] not in (".", ","):
        raise bad("decimal", "must be '.' or ','.")
    if "thousands" in options and options["thousands"] not in (",", ".", " ", "'", "", None):
        raise bad("thousands", "must be one of ',', '.', ' ', \"'\" or empty.")
    # (true and false are ints to Python, not to JSON)
    if "sheet" in options and (
        isinstance(options["sheet"], bool) or not isinstance(options["sheet"], (str, int))
    ):
        raise bad("sheet", "must be a sheet name or index.")
    tolerance = options.get("tolerance", 1)
    if isinstance(tolerance, bool) or not (
        isinstance(tolerance, (int, float)) and 0.5 <= tolerance <= 1
    ):
        raise bad("tolerance", "must be a number between 0.5 and 1.")
    types = options.get("types", {})
    if not isinstance(types, dict) or not all(
        isinstance(k, str) and v in TYPES for k, v in types.items()
    ):
        raise bad("types", f"must map column names to one of {', '.join(TYPES)}.")
    return options


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
    sniffed: dict[str, Any] | None = None
    spool_dir: str | None = None
    # called with a dataset's name, gives the check of its rows written so far (raises when
    # the plan's rows_per_dataset is passed)
    row_checker: Any = None
    # with options.sheet "*": the dataset of each sheet (as the upload's answer named them)
    sheet_datasets: dict[str, str] | None = None

    def rows_check(self):
        """The check of this dataset's rows so far (one that never refuses without a plan)."""
        if self.row_checker is None:
            return lambda rows: None
        return self.row_checker(self.dataset)


@dataclass
class _ColumnStats:
    nulls: int = 0
    min: Any = None
    max: Any = None

    def update(self, array: pa.Array | pa.ChunkedArray) -> None:
        self.nulls += array.null_count
        if logical_type(array.type) in ("integer", "number", "date", "datetime"):
            mm = pc.min_max(array)
            lo, hi = mm["min"].as_py(), mm["max"].as_py()
            if lo is not None:
                self.min = lo if self.min is None else min(self.min, lo)
                self.max = hi if self.max is None else max(self.max, hi)

    def to_json(self) -> dict[str, Any]:
        def plain(v):
            if isinstance(v, float) and not np.isfinite(v):
                return None
            return v.isoformat() if hasattr(v, "isoformat") else v

        return {"nulls": self.nulls, "min": plain(self.min), "max": plain(self.max)}


@dataclass
class _Invalid:
    count: int = 0
    rows: list[int] = field(default_factory=list)
    examples: list[str] = field(default_factory=list)

    def update(self, before: pa.Array, after: pa.Array, first_row: int) -> None:
        bad = pc.and_(pc.is_valid(before), pc.is_null(after))
        n = pc.sum(bad).as_py() or 0
        if not n:
            return
        self.count += n
        if len(self.rows) < _ROW_NUMBERS or len(self.examples) < _EXAMPLES:
            idx = np.flatnonzero(bad.to_numpy(zero_copy_only=False))
            self.rows.extend(int(first_row + i + 1) for i in idx[: _ROW_NUMBERS - len(self.rows)])
            for v in before.take(pa.array(idx[:50])).to_pylist():
                if len(self.examples) >= _EXAMPLES:
                    break
                if v not in self.examples:
                    self.examples.append(v)

    def to_json(self) -> dict[str, Any]:
        return {"count": self.count, "rows": self.rows, "examples": self.examples}


def _storable(arrow_type: pa.DataType) -> pa.DataType:
    """How a Parquet upload's column is stored: dictionaries decoded, exotic types as text."""
    if pa.types.is_dictionary(arrow_type):
        return _storable(arrow_type.value_type)
    if logical_type(arrow_type) != "string":
        return arrow_type
    if pa.types.is_string(arrow_type) or pa.types.is_large_string(arrow_type):
        return arrow_type
    return pa.string()


class Ingestor:
    """Turns an uploaded file into a new dataset version.

    Parameters
    ----------
    catalog : Catalog
        Where versions are published.
    storage : Storage
        Where Parquet files are written.
    limits : Limits, optional
        Bounds on archives, columns, cells and lines.
    spool_dir : str, optional
        Local directory for the pass-one spool (default: next to the upload).
    """

    def __init__(
        self,
        catalog: Catalog,
        storage: Storage,
        limits: Limits | None = None,
        spool_dir: str | None = None,
    ) -> None:
        self.catalog = catalog
        self.storage = storage
        self.limits = limits or Limits()
        self.spool_dir = spool_dir
        self._write_pool = ThreadPoolExecutor(1, "datapilot-parquet")
        # called after each commit that publishes versions: (org id, dataset names, job id)
        self.on_publish: Callable[[int, list[str], str], None] | None = None
        self._pool = ThreadPoolExecutor(max(2, min(8, os.cpu_count() or 2)), "datapilot-ingest")

    def run(self, req: IngestRequest, handle: JobHandle) -> dict[str, Any]:
        """Do the whole ingestion; returns the job result (dataset, version, rows).

        With ``options.sheet`` ``"*"`` every sheet of a workbook becomes its own dataset,
        all published together or none: the result lists them.
        """
        options = validate_options(req.options or {})
        sniffed = (
            Sniffed.from_json(req.sniffed)
            if req.sniffed
            else sniff(req.source_path, req.source_name, options, self.limits)
        )
        if options.get("sheet") == ALL_SHEETS:
            return self._run_every_sheet(req, sniffed, options, handle)
        staged = self._stage(req, sniffed, options, handle)
        handle.progress(0.999, force=True)
        self._publish([staged], handle.id)
        return staged.result()

    def _run_every_sheet(self, req, sniffed: Sniffed, options, handle) -> dict[str, Any]:
        if sniffed.format not in EXCEL_FORMATS:
            raise DatapilotError(
                400,
                "invalid_input",
                f"options.sheet '*' reads every sheet of a workbook; {req.source_name} is"
                f" {sniffed.format}.",
                field="options.sheet",
            )
        targets = req.sheet_datasets or sheet_datasets(
            req.dataset, workbook_sheets(req.source_path, req.source_name)
        )
        staged: list[StagedVersion] = []
        skipped: list[dict[str, str]] = []
        for i, (sheet, dataset) in enumerate(targets.items()):
            part = _PartHandle(handle, i / len(targets), 1 / len(targets))
            sheet_req = replace(
                req, dataset=dataset, options={**options, "sheet": sheet}, sheet_datasets=None
            )
            try:
                staged.append(self._stage(sheet_req, replace(sniffed), sheet_req.options, part))
            except DatapilotError as e:
                if e.code in ("no_columns", "no_rows"):
                    skipped.append({"sheet": sheet, "reason": e.message})
                    continue
                raise DatapilotError(
                    e.status,
                    e.code,
                    f"Sheet {sheet!r}: {e.message}",
                    **{**e.details, "sheet": sheet},
                ) from None
        if not staged:
            raise DatapilotError(422, "no_rows", f"No sheet of {req.source_name} has data.")
        handle.progress(0.999, force=True)
        self._publish(staged, handle.id)
        return {
            "datasets": [{**s.result(), "sheet": s.req.options["sheet"]} for s in staged],
            "skipped": skipped,
        }

    def _stage(self, req: IngestRequest, sniffed: Sniffed, options, handle) -> StagedVersion:
        """Write a new version's files; it is published later (with the job's others)."""
        source = None
        if sniffed.format != "parquet":
            # opened first: a file (or sheet) without a table fails before taking a version
            source = open_source(req.source_path, sniffed, self.limits, req.source_name, options)
            if not source.labels:
                source.close()
                raise DatapilotError(422, "no_columns", f"{req.source_name} has no columns.")
        try:
            reserved = self._reserve_version(req)
        except BaseException:
            if source is not None:
                source.close()
            raise
        version, parent = reserved.version, reserved.parent
        types = {**reserved.options.get("types", {}), **options.get("types", {})}
        out_dir = self.storage.dataset_version_dir(req.org_id, req.dataset, version)
        handle.set_output(out_dir)
        path = f"{out_dir}/part-0.parquet"
        if source is None:
            columns, rows, report = self._copy_parquet(req, parent, path, handle)
        else:
            columns, rows, report = self._ingest_text(
                req, source, sniffed, options, types, parent, path, handle
            )
        return StagedVersion(
            req, reserved.dataset_id, version, parent, out_dir, columns, rows, report, types
        )

    # ---- pass one and two for text ---------------------------------------------------

    def _ingest_text(self, req, source, sniffed: Sniffed, options, types, parent, path, handle):
        """Pass one and two over a text source (which this closes)."""
        spool = os.path.join(
            self.spool_dir or os.path.dirname(req.source_path), f"spool-{handle.id}.arrow"
        )
        started = time.perf_counter()
        try:
            labels = source.labels
            names = normalize_names(labels)
            locale = Locale(sniffed.decimal, sniffed.thousands or None, sniffed.dayfirst)
            tolerance = float(options.get("tolerance", 0.95))
            profiles = [ColumnProfile(label, locale, tolerance) for label in labels]
            trimmed = [0] * len(labels)
            spool_names = [f"c{i}" for i in range(len(labels))]
            spool_schema = pa.schema([(n, pa.string()) for n in spool_names])
            with pa.OSFile(spool, "wb") as sink, pa.ipc.new_file(sink, spool_schema) as writer:
                seen = 0
                for batch in _prefetched(source.batches()):
                    seen += batch.num_rows
                    expected = seen / max(source.fraction(), 1e-6)

                    def profile(i: int, col: pa.Array, expected=expected) -> pa.Array:
                        values, n = clean_text(col, source.nulls_read)
                        trimmed[i] += n
                        profiles[i].update(values, expected)
                        return values

                    # pyarrow's kernels release the GIL: columns are profiled in parallel
                    cleaned = list(self._pool.map(profile, range(batch.num_columns), batch.columns))
                    for i, p in enumerate(profiles):
                        if p.max_bytes > self.limits.max_cell_bytes:
                            raise DatapilotError(
                                422,
                                "cell_too_large",
                                f"A cell of column {labels[i]!r} is larger than"
                                f" {self.limits.max_cell_bytes} bytes.",
                                column=labels[i],
                                limit=self.limits.max_cell_bytes,
                            )
                    writer.write_batch(pa.RecordBatch.from_arrays(cleaned, schema=spool_schema))
                    handle.progress(0.5 * source.fraction())
            rows_read = profiles[0].rows if profiles else 0
            if rows_read == 0:
                raise DatapilotError(422, "no_rows", f"{req.source_name} has a header but no rows.")
            day_order = _file_day_order(profiles, sniffed, options)
            plan = self._plan_columns(
                req, names, labels, profiles, types, options, parent, day_order
            )
            handle.progress(0.5, force=True)
            profiled = time.perf_counter()
            columns, rows, conversion = self._convert(
                req, spool, plan, locale, options, parent, path, handle, rows_read
            )
            log.info(
                "Job %s: %d rows of %s profiled in %.2f s, converted and written in %.2f s",
                handle.id,
                rows_read,
                req.source_name,
                profiled - started,
                time.perf_counter() - profiled,
            )
        finally:
            source.close()
            if os.path.exists(spool):
                os.unlink(spool)
        report = {
            "source": req.source_name,
            "format": sniffed.format,
            "compression": sniffed.compression,
            "encoding": sniffed.encoding,
            "delimiter": sniffed.delimiter,
            "decimal": sniffed.decimal,
            "thousands": sniffed.thousands,
            "dayfirst": day_order[0],
            "day_order": day_order[1] if any(p.dmy for p in profiles) else None,
            "header": sniffed.header,
            # 1-based row of the sheet (or record of the file) holding the header, and why
            "header_row": getattr(source, "header_row", None),
            "header_reason": getattr(source, "header_reason", None),
            "skipped_lines": sniffed.skip_rows,
            # what the skipped rows above the table said (titles, notes)
            "above_header": getattr(source, "above_header", []),
            "sheet": getattr(source, "sheet", None),
            "sheet_reason": getattr(source, "sheet_reason", None),
            "sheets": sniffed.sheets or None,
            "rows_read": rows_read + source.rows_rejected,
            "rows_rejected": source.rows_rejected,
            "rejected": source.rejected,
            "rows_written": rows - (parent["rows"] if parent and req.mode == "append" else 0),
            **conversion["file"],
            "columns": {
                p["name"]: {
                    "label": p["label"],
                    "type": p["decision"].type,
                    "reason": p["decision"].reason,
                    "unit": p["decision"].unit,
                    # the empty rows dropped were null in every column
                    "nulls": profiles[p["index"]].nulls - conversion["file"]["rows_empty_dropped"],
                    "trimmed": trimmed[p["index"]],
                    "invalid": conversion["invalid"][p["name"]].to_json(),
                }
                for p in plan["columns"]
            },
            "columns_dropped": plan["dropped"],
            "warnings": sniffed.notes
            + getattr(source, "notes", [])
            + plan["warnings"]
            + conversion["warnings"],
        }
        if source.rows_rejected:
            report["warnings"].append(
                f"{source.rows_rejected} row(s) had the wrong number of fields and were rejected"
            )
        return columns, rows, report

    def _plan_columns(self, req, names, labels, profiles, types, options, parent, day_order):
        """Decide each column's type (overrides first) and which columns are kept."""
        tolerance = float(options.get("tolerance", 0.95))
        by_key = {**{lbl: i for i, lbl in enumerate(labels)}, **{n: i for i, n in enumerate(names)}}
        unknown = [
            k
            for k in types
            if k not in by_key and not (parent and k in {c["name"] for c in parent["columns"]})
        ]
        warnings = [f"options.types names no column {k!r}" for k in unknown]
        forced: dict[int, str] = {by_key[k]: v for k, v in types.items() if k in by_key}
        parent_types: dict[str, str] = {}
        if parent is not None and req.mode == "append":
            parent_types = {c["name"]: c["type"] for c in parent["columns"]}
            self._check_append_names(names, list(parent_types), options)
        columns, dropped = [], []
        for i, (name, label, profile) in enumerate(zip(names, labels, profiles, strict=True)):
            if profile.non_null == 0 and name not in parent_types and i not in forced:
                dropped.append(label)
                continue
            override = parent_types.get(name) or forced.get(i)
            decision = profile.decide(tolerance, override, day_order)
            if name in parent_types:
                decision.reason = f"the dataset's type ({parent_types[name]}), appending"
            if (
                decision.type in ("date", "datetime")
                and profile.dmy
                and profile.day_evidence() is None
                and day_order[0] is None
            ):
                warnings.append(
                    f"dates in {label!r} are ambiguous (no day above 12) and nothing else in"
                    " the file says the order; read as month first, set options.dayfirst"
                    " to change"
                )
            columns.append({"index": i, "name": name, "label": label, "decision": decision})
        if len(columns) == 0:
            raise DatapilotError(422, "no_columns", f"{req.source_name} has only empty columns.")
        return {
            "columns": columns,
            "dropped": dropped,
            "warnings": warnings,
            "tolerance": tolerance,
        }

    @staticmethod
    def _check_append_names(names: list[str], parent_names: list[str], options) -> None:
        missing = [n for n in parent_names if n not in names]
        extra = [n for n in names if n not in parent_names]
        if (missing or extra) and not options.get("allow_schema_change"):
            problems = [f"column {c!r} is missing" for c in missing]
            problems += [f"column {c!r} is new" for c in extra]
            raise DatapilotError(
                409,
                "schema_mismatch",
                "Appended columns differ from the dataset's: "
                + "; ".join(problems)
                + ". Set options.allow_schema_change, or use mode replace.",
                column=(missing or extra)[0],
                missing=missing,
                new=extra,
            )

    def _convert(self, req, spool, plan, locale, options, parent, path, handle, rows_read):
        """Pass two: convert the spooled text and write Parquet."""
        check_rows = req.rows_check()
        append = parent is not None and req.mode == "append"
        new_fields = {
            p["name"]: pa.field(p["name"], p["decision"].arrow_type()) for p in plan["columns"]
        }
        if append:
            with self.storage.open(self._first_file(parent), "rb") as f:
                old_schema = pq.read_schema(f)
            # parent columns keep their order; new ones (allowed by option) go after
            order = list(old_schema.names) + [n for n in new_fields if n not in old_schema.names]
            schema = pa.schema(
                [old_schema.field(n) if n in old_schema.names else new_fields[n] for n in order]
            )
        else:
            schema = pa.schema(list(new_fields.values()))
        invalid = {p["name"]: _Invalid() for p in plan["columns"]}
        stats = {n: _ColumnStats() for n in schema.names}
        empty_rows = duplicates = rows = 0
        seen_hashes: set[int] = set()
        dedupe = bool(options.get("dedupe"))
        with (
            self.storage.open(path, "wb") as out,
            parquet_writer(out, schema) as writer,
        ):
            if append:
                rows += self._copy_parent(parent, writer, stats, schema)
            # read, not memory-mapped: mapped pages would count as the service's memory
            pending = None
            with pa.OSFile(spool, "rb") as source:
                try:
                    reader = pa.ipc.open_file(source)
                    first_row = 0
                    for b in range(reader.num_record_batches):
                        batch = reader.get_batch(b)

                        def convert_one(
                            p: dict[str, Any], first_row=first_row, batch=batch
                        ) -> pa.Array:
                            text = batch.column(p["index"])
                            value = convert(text, p["decision"], locale)
                            invalid[p["name"]].update(text, value, first_row)
                            return value

                        converted = self._pool.map(convert_one, plan["columns"])
                        arrays = {
                            p["name"]: v for p, v in zip(plan["columns"], converted, strict=True)
                        }
                        first_row += batch.num_rows
                        table = pa.table(
                            [
                                arrays[n]
                                if n in arrays
                                else pa.nulls(batch.num_rows, schema.field(n).type)
                                for n in schema.names
                            ],
                            schema=schema,
                        )
                        keep = _not_all_null(batch)
                        if keep is not None:
                            empty_rows += table.num_rows - (pc.sum(keep).as_py() or 0)
                            table = table.filter(keep)
                        if dedupe and table.num_rows:
                            table, removed = _drop_seen(table, seen_hashes)
                            duplicates += removed
                        # the write of this batch overlaps the conversion of the next one;
                        # one write at a time keeps memory bounded
                        if pending is not None:
                            pending.result()
                        pending = self._write_pool.submit(_write_counted, writer, table, stats)
                        rows += table.num_rows
                        check_rows(rows)
                        handle.progress(0.5 + 0.49 * (b + 1) / max(reader.num_record_batches, 1))
                finally:
                    # never close the writer under a write still running
                    if pending is not None:
                        pending.result()
        if append:
            self._check_append_types(plan, invalid, rows_read)
        labels = {p["name"]: p["label"] for p in plan["columns"]}
        units = {p["name"]: p["decision"].unit for p in plan["columns"]}
        columns = _column_models(schema, stats, labels, units, parent if append else None)
        warnings = [
            f"{inv.count} cell(s) of {labels[name]!r} did not fit its type and were set to null"
            for name, inv in invalid.items()
            if inv.count
        ]
        file_report = {"rows_empty_dropped": empty_rows, "duplicates_removed": duplicates}
        return columns, rows, {"invalid": invalid, "warnings": warnings, "file": file_report}

    def _copy_parent(self, parent, writer, stats, schema) -> int:
        """Write the parent version's rows first (an append makes a new, whole version)."""
        rows = 0
        for path in self._files(parent):
            with self.storage.open(path, "rb") as f:
                old = pq.ParquetFile(f)
                for i in range(old.num_row_groups):
                    table = _widen(old.read_row_group(i), schema)
                    rows += _write_counted(writer, table, stats)
        return rows

    def _files(self, parent) -> list[str]:
        """The Parquet files of a version, in order (a transform's output has several)."""
        return [f for f in self.storage.files(parent["path"]) if f.endswith(".parquet")]

    def _first_file(self, parent) -> str:
        return self._files(parent)[0]

    @staticmethod
    def _check_append_types(plan, invalid, rows_read) -> None:
        tolerance = plan["tolerance"]
        for p in plan["columns"]:
            inv = invalid[p["name"]]
            if inv.count and inv.count > (1 - tolerance) * max(rows_read, 1):
                raise DatapilotError(
                    409,
                    "schema_mismatch",
                    f"Column {p['name']!r} holds values that are not {p['decision'].type}"
                    f" ({inv.count} of {rows_read}, e.g. {inv.examples[:3]}); the dataset's type"
                    " cannot change on append. Use mode replace.",
                    column=p["name"],
                    type=p["decision"].type,
                    examples=inv.examples[:3],
                )

    # ---- Parquet as is ---------------------------------------------------------------

    def _copy_parquet(self, req, parent, path, handle):
        check_rows = req.rows_check()
        try:
            pf = pq.ParquetFile(req.source_path)
        except pa.ArrowInvalid as e:
            raise DatapilotError(
                422, "corrupt_file", f"{req.source_name} is not readable Parquet: {e}"
            ) from None
        labels = [n for n in pf.schema_arrow.names if not n.startswith("__index_level_")]
        names = normalize_names(labels)
        schema = pa.schema(
            [
                pa.field(n, _storable(pf.schema_arrow.field(label).type))
                for n, label in zip(names, labels, strict=True)
            ]
        )
        append = parent is not None and req.mode == "append"
        if append:
            self._check_append_names(
                names, [c["name"] for c in parent["columns"]], req.options or {}
            )
            with self.storage.open(self._first_file(parent), "rb") as f:
                parent_schema = pq.read_schema(f)
            schema = pa.schema(
                list(parent_schema) + [f for f in schema if f.name not in parent_schema.names]
            )
        stats = {n: _ColumnStats() for n in schema.names}
        rows = 0
        with (
            self.storage.open(path, "wb") as out,
            parquet_writer(out, schema) as writer,
        ):
            if append:
                rows += self._copy_parent(parent, writer, stats, schema)
            for i in range(pf.num_row_groups):
                table = pf.read_row_group(i, columns=labels).rename_columns(names)
                table = _conform(_widen(table, schema), schema)
                rows += _write_counted(writer, table, stats)
                check_rows(rows)
                handle.progress(0.95 * (i + 1) / max(pf.num_row_groups, 1))
        columns = _column_models(
            schema, stats, dict(zip(names, labels, strict=True)), {}, parent if append else None
        )
        report = {
            "source": req.source_name,
            "format": "parquet",
            "rows_read": pf.metadata.num_rows,
            "rows_rejected": 0,
            "rows_written": pf.metadata.num_rows,
            "columns": {
                c["name"]: {
                    "label": c["label"],
                    "type": c["type"],
                    "reason": "typed in the Parquet file",
                    "nulls": c["stats"]["nulls"],
                    "invalid": {"count": 0, "rows": [], "examples": []},
                }
                for c in columns
            },
            "warnings": [],
        }
        return columns, rows, report

    # ---- catalog ---------------------------------------------------------------------

    def reserve(self, req: IngestRequest) -> _Reservation:
        """Hand out the next version number of ``req.dataset`` (see :meth:`_reserve_version`).

        For other writers of versions (a transformation): they stage their files under
        the version's directory and end with :meth:`publish`.
        """
        return self._reserve_version(req)

    def publish(self, staged: list[StagedVersion], job_id: str) -> None:
        """Make staged versions current in one catalog commit, or none (see :meth:`_publish`)."""
        self._publish(staged, job_id)

    def _reserve_version(self, req: IngestRequest) -> _Reservation:
        """Hand out the next version number and note the version it builds on.

        The number comes from one atomic increment of ``next_version``, so two jobs never
        share a directory; the parent is the current version at that moment, which
        :meth:`_publish` checks is still current.
        """
        try:
            with self.catalog.session(req.org_id) as db:
                return self._reserve_in(db, req)
        except IntegrityError:
            # another job inserted the dataset's row between our look and our insert:
            # once more, now finding that row
            with self.catalog.session(req.org_id) as db:
                return self._reserve_in(db, req)

    @staticmethod
    def _reserve_in(db, req: IngestRequest) -> _Reservation:
        ds = Dataset.find(db, req.org_id, req.dataset)
        if ds is None and req.mode == "create":
            ds = Dataset(organization_id=req.org_id, name=req.dataset, created_by=req.user)
            db.add(ds)
            db.flush()
        if ds is not None:
            # the increment is the first write of the transaction: it takes the row's lock
            # (SQLite: the database's) before anything is read back, so what follows is
            # what the other writers left, and no two jobs get one number
            db.execute(
                update(Dataset)
                .where(Dataset.id == ds.id)
                .values(next_version=Dataset.next_version + 1)
                .execution_options(synchronize_session=False)
            )
            db.refresh(ds)
        visible = ds is not None and ds.current_version is not None
        if req.mode == "create" and visible:
            raise _exists(req.dataset)
        if req.mode != "create" and not visible:
            raise DatapilotError(
                404,
                "not_found",
                f"No dataset named {req.dataset!r} is visible to you.",
                dataset=req.dataset,
            )
        parent = None
        if visible:
            cur = db.scalar(
                select(DatasetVersion).where(
                    DatasetVersion.dataset_id == ds.id,
                    DatasetVersion.version == ds.current_version,
                )
            )
            parent = {
                "version": cur.version,
                "path": cur.path,
                "rows": cur.rows,
                "columns": cur.columns,
            }
        return _Reservation(ds.id, ds.next_version - 1, parent, dict(ds.options or {}))

    def _publish(self, staged: list[StagedVersion], job_id: str) -> None:
        """Make the staged versions current, in one catalog transaction, or none of them.

        Each version becomes current only if the version it was built on still is (a
        compare-and-set on ``current_version``): a job that another writer of the dataset
        overtook fails with a 409 and publishes nothing, so no version is lost and
        ``current_version`` never goes back.
        """
        sizes = [self.storage.size(v.out_dir) for v in staged]
        with self.catalog.session(staged[0].req.org_id) as db:
            for v, nbytes in zip(staged, sizes, strict=True):
                req = v.req
                now = utcnow()
                base = v.parent["version"] if v.parent else None
                values: dict[str, Any] = {"current_version": v.version, "updated": now}
                if base is None:
                    # the first version's author creates the dataset, whoever made the row
                    values.update(created_by=req.user, created=now)
                moved = db.execute(
                    update(Dataset)
                    .where(
                        Dataset.id == v.dataset_id,
                        Dataset.organization_id == req.org_id,
                        Dataset.current_version.is_(None)
                        if base is None
                        else Dataset.current_version == base,
                    )
                    .values(**values)
                    .execution_options(synchronize_session=False)
                )
                if moved.rowcount != 1:
                    raise _overtaken(db, v)
                if v.types:
                    # type overrides stay with the dataset: every later append and replace
                    ds = db.get(Dataset, v.dataset_id)
                    ds.options = {**(ds.options or {}), "types": v.types}
                db.add(
                    DatasetVersion(
                        organization_id=req.org_id,
                        dataset_id=v.dataset_id,
                        version=v.version,
                        columns=v.columns,
                        rows=v.rows,
                        bytes=nbytes,
                        path=v.out_dir,
                        parent_version=base,
                        lineage=v.lineage
                        or {"operation": req.mode, "source": req.source_name, "job": job_id},
                        report=v.report,
                        source_name=req.source_name,
                        created_by=req.user,
                        created=now,
                    )
                )
        if self.on_publish is not None:
            # after the commit: what follows a new version (recipes that refresh) must
            # never undo or fail the publication itself
            try:
                self.on_publish(staged[0].req.org_id, [v.req.dataset for v in staged], job_id)
            except Exception:
                log.exception("After publishing job %s", job_id)


def _exists(name: str) -> DatapilotError:
    return DatapilotError(
        409,
        "dataset_exists",
        f"A dataset named {name!r} already exists; use mode replace or append.",
        dataset=name,
    )


def _overtaken(db, v: StagedVersion) -> DatapilotError:
    """Why a staged version cannot be published: its dataset moved on, or went away."""
    name = v.req.dataset
    ds = db.get(Dataset, v.dataset_id, populate_existing=True)
    if ds is None:
        return DatapilotError(
            409,
            "dataset_deleted",
            f"{name!r} was deleted while this job ran; nothing was published.",
            dataset=name,
        )
    if v.parent is None:
        return DatapilotError(
            409,
            "dataset_exists",
            f"Another job created {name!r} while this one ran; nothing was published."
            " Use mode replace or append.",
            dataset=name,
            current_version=ds.current_version,
        )
    base = v.parent["version"]
    done = "appended to" if v.req.mode == "append" else "replaced"
    return DatapilotError(
        409,
        "version_conflict",
        f"Another job changed {name!r} (version {base} -> {ds.current_version}) while this"
        f" one {done} version {base}; nothing was published, so no rows are lost. Run it"
        " again to build on the current version.",
        dataset=name,
        base_version=base,
        current_version=ds.current_version,
    )


@dataclass
class _Reservation:
    """A version number handed out to a job, and what the job builds on."""

    dataset_id: int
    version: int
    parent: dict[str, Any] | None
    options: dict[str, Any]


@dataclass
class StagedVersion:
    """A version whose files are written, waiting for the catalog commit."""

    req: IngestRequest
    dataset_id: int
    version: int
    parent: dict[str, Any] | None
    out_dir: str
    columns: list[dict[str, Any]]
    rows: int
    report: dict[str, Any]
    types: dict[str, str]
    lineage: dict[str, Any] | None = None

    def result(self) -> dict[str, Any]:
        return {"dataset": self.req.dataset, "version": self.version, "rows": self.rows}


class _PartHandle:
    """A job handle for one part of a job: its progress is a slice of the job's."""

    def __init__(self, handle: JobHandle, start: float, span: float) -> None:
        self._handle, self._start, self._span = handle, start, span
        self.id = handle.id

    def progress(self, fraction: float, force: bool = False) -> None:
        self._handle.progress(self._start + self._span * fraction, force)

    def set_output(self, path: str) -> None:
        self._handle.set_output(path)

    def check_cancelled(self) -> None:
        self._handle.check_cancelled()


def sheet_datasets(dataset: str, sheets: list[str]) -> dict[str, str]:
    """The dataset each sheet of a workbook becomes: ``<dataset>_<sheet>``, unique."""
    taken: set[str] = set()
    out: dict[str, str] = {}
    for sheet, slug in zip(sheets, normalize_names(sheets), strict=True):
        base = f"{dataset}_{slug}"[:63].rstrip("_")
        name, n = base, 2
        while name in taken:
            name = f"{base[: 63 - len(str(n)) - 1]}_{n}"
            n += 1
        taken.add(name)
        out[sheet] = name
    return out


def _file_day_order(profiles, sniffed: Sniffed, options) -> tuple[bool | None, str]:
    """The day order of the file's dates that do not say it themselves, and why.

    A column where every day is 12 or less follows the columns of the same file whose
    values prove their order (a day above 12), then the file's locale: fields separated
    by ``;`` and decimal commas are written where days come first.
    """
    if options.get("dayfirst") is not None:
        first = bool(options["dayfirst"])
        return first, f"{'day' if first else 'month'} first, set by options.dayfirst"
    proven: dict[bool, list[str]] = {True: [], False: []}
    for p in profiles:
        if p.dmy and (own := p.day_evidence()) is not None:
            proven[own].append(p.label)
    if len(proven[True]) != len(proven[False]):
        first = len(proven[True]) > len(proven[False])
        columns = ", ".join(map(repr, proven[first][:3]))
        return first, f"{'day' if first else 'month'} first, as column(s) {columns} of this file"
    hints = []
    if sniffed.delimiter == ";":
        hints.append("';' between fields")
    if sniffed.decimal == ",":
        hints.append("decimal commas")
    if hints:
        return True, f"day first: the file's {' and '.join(hints)} are a day-first locale's"
    return None, "month first: nothing in the file says the order (options.dayfirst sets it)"


def _prefetched(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
    """The same batches, the next one read in another thread while this one is used.

    Arrow's readers release the GIL while they parse: reading overlaps profiling.
    One batch ahead keeps memory bounded.
    """
    ahead: queue.Queue = queue.Queue(maxsize=1)
    stop = threading.Event()
    done = object()

    def put(item) -> bool:
        # never blocks for good: a consumer that stopped takes nothing more
        while not stop.is_set():
            try:
                ahead.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        try:
            for batch in batches:
                if not put((batch, None)):
                    return
            put((done, None))
        except BaseException as e:  # handed to the consumer, raised there
            put((done, e))

    thread = threading.Thread(target=produce, name="datapilot-read", daemon=True)
    thread.start()
    try:
        while True:
            batch, error = ahead.get()
            if error is not None:
                raise error
            if batch is done:
                return
            yield batch
    finally:
        stop.set()
        thread.join()


def _write_counted(writer: pq.ParquetWriter, table: pa.Table, stats: dict) -> int:
    """Write a table and fold it into the column statistics; returns its rows."""
    writer.write_table(table)
    for name, col in zip(table.column_names, table.columns, strict=True):
        stats[name].update(col)
    return table.num_rows


def _column_models(schema, stats, labels, units, parent) -> list[dict[str, Any]]:
    parent_cols = {c["name"]: c for c in (parent["columns"] if parent else [])}
    return [
        {
            "name": f.name,
            "label": labels.get(f.name) or parent_cols.get(f.name, {}).get("label", f.name),
            "type": logical_type(f.type),
            "arrow_type": str(f.type),
            "nullable": True,
            "unit": units.get(f.name) or parent_cols.get(f.name, {}).get("unit"),
            "stats": stats[f.name].to_json(),
        }
        for f in schema
    ]


def _drop_seen(table: pa.Table, seen: set[int]) -> tuple[pa.Table, int]:
    """Remove rows already seen (in this batch or an earlier one)."""
    hashes = pd.util.hash_pandas_object(table.to_pandas(), index=False).to_numpy()
    keep = np.zeros(len(hashes), dtype=bool)
    for j, h in enumerate(hashes.tolist()):
        if h not in seen:
            seen.add(h)
            keep[j] = True
    return table.filter(pa.array(keep)), int(len(hashes) - keep.sum())


def _not_all_null(batch: pa.RecordBatch) -> pa.Array | None:
    """A mask of the rows with at least one value; None when every row has one."""
    if batch.num_columns == 0:
        return None
    any_valid = pc.is_valid(batch.column(0))
    for col in batch.columns[1:]:
        any_valid = pc.or_(any_valid, pc.is_valid(col))
    if pc.all(any_valid).as_py():
        return None
    return any_valid


def _widen(table: pa.Table, schema: pa.Schema) -> pa.Table:
    """Rows in a schema with more columns: the missing columns are null there."""
    if table.schema.names == schema.names:
        return table
    return pa.table(
        [
            table.column(n)
            if n in table.column_names
            else pa.nulls(table.num_rows, schema.field(n).type)
            for n in schema.names
        ],
        names=schema.names,
    )


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
