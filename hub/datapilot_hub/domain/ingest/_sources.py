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
import pyarrow.csv as pacsv

from ...errors import DatapilotError
from ._infer import NULL_TOKENS
from ._sniff import (
    Limits,
    Sniffed,
    allow_long_csv_fields,
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
        allow_long_csv_fields(limits)
        first, lines_above, lines_to_data = self._head_records(text, sniffed)
        width = len(first)
        if width > limits.max_columns:
            raise DatapilotError(
                422,
                "too_many_columns",
                f"{source_name} has {width} columns; the limit is {limits.max_columns}.",
                limit=limits.max_columns,
            )
        # (a header cell's line breaks are spaces in its label)
        self.labels = (
            [" ".join(c.split()) for c in first]
            if sniffed.header
            else [f"column_{i + 1}" for i in range(width)]
        )
        self.header_row = sniffed.skip_rows + 1 if sniffed.header else None
        self.above_header = lines_above
        names = [f"c{i}" for i in range(width)]
        self._stream = _Counting(open_text_source(path, sniffed, limits, source_name))
        try:
            self._reader = pacsv.open_csv(
                self._stream,
                read_options=pacsv.ReadOptions(
                    column_names=names,
                    skip_rows=lines_to_data,
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

    @staticmethod
    def _head_records(text: str, sniffed: Sniffed) -> tuple[list[str], list[str], int]:
        """(the header record or first data record, the records above it as text, the
        physical lines before the data).

        Records, not lines: a quoted header cell may hold line breaks, and the reader
        skips physical lines.
        """
        import csv

        reader = csv.reader(io.StringIO(text, newline=""), delimiter=sniffed.delimiter or ",")
        above: list[str] = []
        first: list[str] = []
        lines_to_data = 0
        for i, record in enumerate(reader):
            if i < sniffed.skip_rows:
                if any(c.strip() for c in record) and len(above) < 20:
                    above.append(" | ".join(c.strip() for c in record if c.strip())[:200])
                lines_to_data = reader.line_num
                continue
            first = record
            if sniffed.header:
                lines_to_data = reader.line_num
            break
        return first, above, lines_to_data

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
    from ._workbook import ExcelSource

    return ExcelSource(
        path, sniffed, limits, source_name, options.get("sheet"), options.get("header")
    )
