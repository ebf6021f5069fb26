"""Readers that turn an upload into batches of text columns, whatever its format.

Every reader yields ``pyarrow.RecordBatch`` objects whose columns are all strings, in
bounded memory, and knows the column labels and how far through the file it is.
Parquet is the exception: it is typed already and goes through as is.
"""

from __future__ import annotations

import io
import os
from collections.abc import Iterator
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from ...errors import DatapilotError
from ._infer import NULL_TOKENS
from ._sniff import (
    Limits,
    Sniffed,
    allow_long_csv_fields,
    find_header,
    line_too_long,
    open_text_source,
    read_sample,
)

BATCH_ROWS = 32768


class TextSource:
    """Base class: ``labels``, ``batches()``, ``fraction()``, ``notes``, ``rejected``."""

    labels: list[str]
    rejected: list[dict[str, Any]]
    rows_rejected: int = 0
    # the reader itself turned the null tokens into nulls
    nulls_read: bool = False

    def batches(self) -> Iterator[pa.RecordBatch]:
        raise NotImplementedError

    def fraction(self) -> float:
        return 0.0

    def close(self) -> None:
        """Release the file."""


class _Counting(io.RawIOBase):
    """A read-only stream that counts the bytes read, for progress."""

    def __init__(self, raw) -> None:
        self._raw = raw
        self.bytes_read = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        data = self._raw.read(len(buffer))
        n = len(data)
        buffer[:n] = data
        self.bytes_read += n
        return n

    def close(self) -> None:
        self._raw.close()
        super().close()


class CSVSource(TextSource):
    """CSV and other delimited text, parsed by pyarrow's streaming reader as text."""

    nulls_read = True

    def __init__(self, path: str, sniffed: Sniffed, limits: Limits, source_name: str) -> None:
        self.source_name = source_name
        self.max_line_bytes = limits.max_line_bytes
        self.total = max(os.path.getsize(path), 1)
        self.rejected = []
        self.rows_rejected = 0
        with open_text_source(path, sniffed, limits, source_name) as f:
            head, _ = read_sample(f, source_name, limits)
        text = head.decode(sniffed.encoding or "utf-8", errors="replace").lstrip("\ufeff")
        import csv

        allow_long_csv_fields(limits)
        lines = text.splitlines()[: sniffed.skip_rows + 1]
        rows = list(csv.reader(lines, delimiter=sniffed.delimiter or ","))
        first = rows[sniffed.skip_rows] if len(rows) > sniffed.skip_rows else []
        width = len(first)
        if width > limits.max_columns:
            raise DatapilotError(
                422,
                "too_many_columns",
                f"{source_name} has {width} columns; the limit is {limits.max_columns}.",
                limit=limits.max_columns,
            )
        self.labels = (
            [c.strip() for c in first]
            if sniffed.header
            else [f"column_{i + 1}" for i in range(width)]
        )
        names = [f"c{i}" for i in range(width)]
        self._stream = _Counting(open_text_source(path, sniffed, limits, source_name))
        try:
            self._reader = pacsv.open_csv(
                self._stream,
                read_options=pacsv.ReadOptions(
                    column_names=names,
                    skip_rows=sniffed.skip_rows + (1 if sniffed.header else 0),
                    block_size=limits.max_line_bytes,
                    encoding=_arrow_encoding(sniffed.encoding),
                ),
                parse_options=pacsv.ParseOptions(
                    delimiter=sniffed.delimiter or ",",
                    newlines_in_values=True,
                    invalid_row_handler=self._invalid_row,
                ),
                convert_options=pacsv.ConvertOptions(
                    column_types={n: pa.string() for n in names},
                    null_values=NULL_TOKENS,
                    strings_can_be_null=True,
                ),
            )
        except pa.ArrowInvalid as e:
            # the reader reads its first block as it opens
            self._stream.close()
            raise self._read_error(e) from None
        except BaseException:
            self._stream.close()
            raise

    def _invalid_row(self, row) -> str:
        self.rows_rejected += 1
        if len(self.rejected) < 20:
            self.rejected.append(
                {
                    "line": row.number,
                    "expected_fields": row.expected_columns,
                    "fields": row.actual_columns,
                    "text": (row.text or "")[:200],
                }
            )
        return "skip"

    def batches(self) -> Iterator[pa.RecordBatch]:
        try:
            yield from _rebatched(self._reader)
        except pa.ArrowInvalid as e:
            raise self._read_error(e) from None

    def _read_error(self, e: pa.ArrowInvalid) -> DatapilotError:
        message = str(e)
        if _too_long(message):
            return line_too_long(self.source_name, self.max_line_bytes)
        if "UTF8" in message or "UTF-8" in message:
            return DatapilotError(
                422,
                "bad_encoding",
                f"{self.source_name} is not valid in its detected encoding; set options.encoding.",
            )
        return DatapilotError(422, "unreadable_csv", f"The CSV could not be read: {e}")

    def fraction(self) -> float:
        return min(self._stream.bytes_read / self.total, 1.0)

    def close(self) -> None:
        self._stream.close()


def _too_long(message: str) -> bool:
    """Whether an Arrow reader's error says a row did not fit its block (the line limit)."""
    return "straddling" in message or "block size" in message


def _rebatched(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
    """The reader's small batches joined into batches of about BATCH_ROWS rows.

    The reader's block (and so its batch) is small because Arrow reads up to 32 blocks
    ahead; the pipeline's work per batch is cheaper on bigger batches.
    """
    pending: list[pa.RecordBatch] = []
    rows = 0
    for batch in batches:
        pending.append(batch)
        rows += batch.num_rows
        if rows >= BATCH_ROWS:
            yield _joined(pending)
            pending, rows = [], 0
    if pending:
        yield _joined(pending)


def _joined(batches: list[pa.RecordBatch]) -> pa.RecordBatch:
    if len(batches) == 1:
        return batches[0]
    return pa.Table.from_batches(batches).combine_chunks().to_batches()[0]


def _arrow_encoding(encoding: str | None) -> str:
    if encoding in (None, "utf-8", "utf-8-sig"):
        return "utf8"
    return encoding


def _typed_text(column: pa.Array) -> pa.Array:
    """A typed worksheet column as the text inference reads.

    Numbers without formatting (whole numbers as integers, not ``1.2e+11``), booleans
    as true/false, dates at midnight as dates, other moments in ISO form.
    """
    kind = column.type
    if pa.types.is_string(kind) or pa.types.is_large_string(kind):
        return column
    if pa.types.is_null(kind):
        return pa.nulls(len(column), pa.string())
    if pa.types.is_floating(kind):
        finite = column.filter(pc.is_finite(column))
        whole = pc.all(pc.equal(pc.floor(finite), finite)).as_py() is not False
        if whole and (pc.max(pc.abs(finite)).as_py() or 0) < 2**53:
            return column.cast(pa.int64()).cast(pa.string())
        return column.cast(pa.string())
    if pa.types.is_timestamp(kind):
        if pc.all(pc.equal(pc.floor_temporal(column, unit="day"), column)).as_py() is not False:
            return column.cast(pa.date32()).cast(pa.string())
        return pc.strftime(column, format="%Y-%m-%d %H:%M:%S")
    if pa.types.is_boolean(kind):
        return pc.if_else(column, "true", "false")
    return column.cast(pa.string())


def _header_labels(names: list[str]) -> list[str]:
    """The header cells as written: the reader names empty ones ``__UNNAMED__<n>`` and
    repeated ones ``<label>_<n>``."""
    labels: list[str] = []
    for name in names:
        base, _, n = name.rpartition("_")
        if name.startswith("__UNNAMED__"):
            labels.append("")
        elif base and n.isdigit() and base in labels:
            labels.append(base)
        else:
            labels.append(name)
    return labels


class ExcelSource(TextSource):
    """A worksheet of .xlsx, .xlsm, .xlsb, .xls or .ods, read with fastexcel.

    fastexcel reads the sheet with the calamine engine straight into Arrow, each column
    typed from all of its cells (a column of mixed cells comes as text); no Python
    object per cell. The columns go on as text the inference reads (numbers without
    formatting, booleans as true/false, dates in ISO form).
    """

    def __init__(
        self,
        path: str,
        sniffed: Sniffed,
        limits: Limits,
        source_name: str,
        sheet: Any = None,
        header: bool | None = None,
    ) -> None:
        import fastexcel

        self.rejected = []
        self.source_name = source_name
        try:
            self._reader = fastexcel.read_excel(path)
            names = list(self._reader.sheet_names)
            sniffed.sheets = names
            loaded = None
            if sheet is None:
                # the first sheet with data; each sheet is parsed once
                chosen = names[0]
                for n in names:
                    candidate = self._load(n, 0)
                    if candidate.width > 0:
                        chosen, loaded = n, candidate
                        break
            elif isinstance(sheet, int) and 0 <= sheet < len(names):
                chosen = names[sheet]
            elif sheet in names:
                chosen = sheet
            else:
                raise DatapilotError(
                    400,
                    "invalid_input",
                    f"{source_name} has no sheet {sheet!r}; its sheets are {', '.join(names)}.",
                    field="options.sheet",
                    sheets=names,
                )
            self.sheet = chosen
            loaded = loaded or self._load(chosen, 0)
            if loaded.width > limits.max_columns:
                raise DatapilotError(
                    422,
                    "too_many_columns",
                    f"{source_name} has {loaded.width} columns; the limit is {limits.max_columns}.",
                    limit=limits.max_columns,
                )
            table = loaded.to_arrow()
            skip, has_header = find_header(self._head_text(table), header)
            if (skip, has_header) != (0, True):
                # title lines above the table, or no header: read again where it starts
                table = self._load(chosen, skip if has_header else None, skip).to_arrow()
        except fastexcel.FastExcelError as e:
            raise DatapilotError(
                422, "corrupt_file", f"{source_name} is not a readable workbook: {e}"
            ) from None
        sniffed.header, sniffed.skip_rows = has_header, skip
        labels = _header_labels(table.schema.names) if has_header else [""] * table.num_columns
        self.labels = [label or f"column_{i + 1}" for i, label in enumerate(labels)]
        self._table = table
        self._done = 0

    def _load(self, sheet: str, header_row: int | None, skip: int = 0):
        return self._reader.load_sheet(
            sheet,
            header_row=header_row,
            skip_rows=skip if header_row is None and skip else None,
            schema_sample_rows=None,
        )

    @staticmethod
    def _head_text(table: pa.RecordBatch) -> list[list[str]]:
        """The header and the first rows as text, for :func:`find_header`."""
        head = table.slice(0, 99)
        columns = [_typed_text(c).to_pylist() for c in head.columns]
        rows = [[v or "" for v in row] for row in zip(*columns, strict=True)]
        return [_header_labels(table.schema.names), *rows]

    def batches(self) -> Iterator[pa.RecordBatch]:
        names = [f"c{i}" for i in range(len(self.labels))]
        for start in range(0, self._table.num_rows, BATCH_ROWS):
            part = self._table.slice(start, BATCH_ROWS)
            self._done = start + part.num_rows
            yield pa.RecordBatch.from_arrays([_typed_text(c) for c in part.columns], names)

    def fraction(self) -> float:
        return min(self._done / max(self._table.num_rows, 1), 1.0)

    def close(self) -> None:
        self._table = None


def workbook_sheets(path: str, source_name: str) -> list[str]:
    """The sheet names of a workbook (no sheet is read)."""
    import fastexcel

    try:
        return list(fastexcel.read_excel(path).sheet_names)
    except fastexcel.FastExcelError as e:
        raise DatapilotError(
            422, "corrupt_file", f"{source_name} is not a readable workbook: {e}"
        ) from None


class JSONLinesSource(TextSource):
    """JSON Lines: one object per line; values handed on as text for inference."""

    def __init__(self, path: str, sniffed: Sniffed, limits: Limits, source_name: str) -> None:
        import pyarrow.json as pajson

        self.rejected = []
        self.total = max(os.path.getsize(path), 1)
        self.source_name = source_name
        self.max_line_bytes = limits.max_line_bytes
        self._stream = _Counting(open_text_source(path, sniffed, limits, source_name))
        try:
            self._reader = pajson.open_json(
                self._stream, read_options=pajson.ReadOptions(block_size=limits.max_line_bytes)
            )
        except pa.ArrowInvalid as e:
            self._stream.close()
            raise self._read_error(e) from None
        except BaseException:
            self._stream.close()
            raise
        self._schema = self._reader.schema
        self.labels = list(self._schema.names)

    def batches(self) -> Iterator[pa.RecordBatch]:
        names = [f"c{i}" for i in range(len(self.labels))]
        try:
            for batch in self._reader:
                arrays = []
                for col in batch.columns:
                    if pa.types.is_nested(col.type):
                        arrays.append(
                            pa.array(
                                [None if v is None else str(v) for v in col.to_pylist()],
                                pa.string(),
                            )
                        )
                    elif pa.types.is_timestamp(col.type):
                        arrays.append(pc_iso(col))
                    else:
                        arrays.append(col.cast(pa.string()))
                yield pa.RecordBatch.from_arrays(arrays, names)
        except pa.ArrowInvalid as e:
            raise self._read_error(e) from None

    def _read_error(self, e: pa.ArrowInvalid) -> DatapilotError:
        if _too_long(str(e)):
            return line_too_long(self.source_name, self.max_line_bytes)
        return DatapilotError(422, "unreadable_json", f"{self.source_name}: {e}")

    def fraction(self) -> float:
        return min(self._stream.bytes_read / self.total, 1.0)

    def close(self) -> None:
        self._stream.close()


def pc_iso(col: pa.Array) -> pa.Array:
    import pyarrow.compute as pc

    return pc.strftime(col, format="%Y-%m-%dT%H:%M:%S")


def open_source(
    path: str, sniffed: Sniffed, limits: Limits, source_name: str, options: dict[str, Any]
) -> TextSource:
    """The text source for a sniffed upload (not for Parquet)."""
    if sniffed.format == "csv":
        return CSVSource(path, sniffed, limits, source_name)
    if sniffed.format == "jsonl":
        return JSONLinesSource(path, sniffed, limits, source_name)
    return ExcelSource(
        path, sniffed, limits, source_name, options.get("sheet"), options.get("header")
    )
