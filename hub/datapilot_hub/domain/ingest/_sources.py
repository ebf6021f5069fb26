"""Readers that turn an upload into batches of text columns, whatever its format.

Every reader yields ``pyarrow.RecordBatch`` objects whose columns are all strings, in
bounded memory, and knows the column labels and how far through the file it is.
Parquet is the exception: it is typed already and goes through as is.
"""

from __future__ import annotations

import datetime as dt
import io
import os
from collections.abc import Iterator
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from ...errors import DatapilotError
from ._sniff import Limits, Sniffed, open_text_source

BATCH_ROWS = 65536


class TextSource:
    """Base class: ``labels``, ``batches()``, ``fraction()``, ``notes``, ``rejected``."""

    labels: list[str]
    rejected: list[dict[str, Any]]
    rows_rejected: int = 0

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

    def __init__(self, path: str, sniffed: Sniffed, limits: Limits, source_name: str) -> None:
        self.source_name = source_name
        self.total = max(os.path.getsize(path), 1)
        self.rejected = []
        self.rows_rejected = 0
        with open_text_source(path, sniffed) as f:
            head = f.read(256 * 1024)
        text = head.decode(sniffed.encoding or "utf-8", errors="replace").lstrip("\ufeff")
        import csv

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
        raw = open_text_source(path, sniffed) if sniffed.compression else open(path, "rb")  # noqa: SIM115
        self._stream = _Counting(raw)
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
                strings_can_be_null=False,
                quoted_strings_can_be_null=False,
            ),
        )

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
            yield from self._reader
        except pa.ArrowInvalid as e:
            message = str(e)
            if "straddling" in message or "block size" in message:
                raise DatapilotError(
                    422,
                    "line_too_long",
                    f"{self.source_name} has a line (or quoted value) longer than the limit.",
                ) from None
            if "UTF8" in message or "UTF-8" in message:
                raise DatapilotError(
                    422,
                    "bad_encoding",
                    f"{self.source_name} is not valid in its detected encoding;"
                    " set options.encoding.",
                ) from None
            raise DatapilotError(422, "unreadable_csv", f"The CSV could not be read: {e}") from None

    def fraction(self) -> float:
        return min(self._stream.bytes_read / self.total, 1.0)

    def close(self) -> None:
        self._stream.close()


def _arrow_encoding(encoding: str | None) -> str:
    if encoding in (None, "utf-8", "utf-8-sig"):
        return "utf8"
    return encoding


def _cell_text(v: Any) -> str | None:
    if v is None or v == "":
        return None
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float):
        return str(int(v)) if v.is_integer() and abs(v) < 2**53 else repr(v)
    if isinstance(v, dt.datetime):
        return v.isoformat(sep=" ")
    if isinstance(v, (dt.date, dt.time)):
        return v.isoformat()
    if isinstance(v, dt.timedelta):
        return str(v)
    return str(v)


def _column_text(values: tuple) -> pa.Array:
    """A worksheet column as text, converted by Arrow when its cells share one type."""
    cells = [None if v == "" else v for v in values]
    try:
        arr = pa.array(cells)
    except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError):
        # mixed cell types: one at a time
        return pa.array([_cell_text(v) for v in cells], pa.string())
    if pa.types.is_timestamp(arr.type):
        return pc.strftime(arr, format="%Y-%m-%d %H:%M:%S")
    if pa.types.is_date(arr.type) and any(isinstance(v, dt.datetime) for v in cells):
        # Arrow would read dates and datetimes together as dates, dropping the times
        return pa.array([_cell_text(v) for v in cells], pa.string())
    if pa.types.is_floating(arr.type) and len(arr) and (pc.max(pc.abs(arr)).as_py() or 0) >= 2**53:
        return pa.array([_cell_text(v) for v in cells], pa.string())
    return arr.cast(pa.string())


class ExcelSource(TextSource):
    """A worksheet of .xlsx, .xlsm, .xls or .ods, read with python-calamine.

    Cells keep their real types in the text handed on: numbers without formatting,
    booleans as true/false, dates and datetimes in ISO form.
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
        from python_calamine import CalamineError, load_workbook

        self.rejected = []
        try:
            self._wb = load_workbook(path)
            names = self._wb.sheet_names
            sniffed.sheets = list(names)
            if sheet is None:
                # the first sheet with data; each sheet is parsed once
                chosen, ws = names[0], None
                for n in names:
                    candidate = self._wb.get_sheet_by_name(n)
                    if candidate.height > 0:
                        chosen, ws = n, candidate
                        break
            elif isinstance(sheet, int) and 0 <= sheet < len(names):
                chosen, ws = names[sheet], None
            elif sheet in names:
                chosen, ws = sheet, None
            else:
                raise DatapilotError(
                    400,
                    "invalid_input",
                    f"{source_name} has no sheet {sheet!r}; its sheets are {', '.join(names)}.",
                    field="options.sheet",
                    sheets=names,
                )
            self.sheet = chosen
            ws = ws or self._wb.get_sheet_by_name(chosen)
        except CalamineError as e:
            raise DatapilotError(
                422, "corrupt_file", f"{source_name} is not a readable workbook: {e}"
            ) from None
        except Exception as e:
            if isinstance(e, DatapilotError):
                raise
            raise DatapilotError(
                422, "corrupt_file", f"{source_name} is not a readable workbook: {e}"
            ) from None
        self._height = max(ws.height, 1)
        self._rows = ws.iter_rows()
        head: list[list[Any]] = []
        for row in self._rows:
            head.append(row)
            if len(head) >= 100:
                break
        from ._sniff import find_header

        text_head = [[_cell_text(c) or "" for c in r] for r in head]
        skip, header = find_header(text_head, header)
        sniffed.header, sniffed.skip_rows = header, skip
        width = max((len(r) for r in head), default=0)
        if width > limits.max_columns:
            raise DatapilotError(
                422,
                "too_many_columns",
                f"{source_name} has {width} columns; the limit is {limits.max_columns}.",
            )
        self.width = width
        first = text_head[skip] if head else []
        self.labels = (
            (
                [c or f"column_{i + 1}" for i, c in enumerate(first)]
                + [f"column_{i + 1}" for i in range(len(first), width)]
            )
            if header
            else [f"column_{i + 1}" for i in range(width)]
        )
        self._pending = head[skip + (1 if header else 0) :]
        self._done = skip + (1 if header else 0)

    def batches(self) -> Iterator[pa.RecordBatch]:
        names = [f"c{i}" for i in range(self.width)]

        def flush(rows: list[list[Any]]) -> pa.RecordBatch:
            width = self.width
            padded = (r if len(r) == width else (list(r) + [""] * width)[:width] for r in rows)
            columns = list(zip(*padded, strict=True)) or [()] * width
            return pa.RecordBatch.from_arrays([_column_text(c) for c in columns], names)

        rows = self._pending
        self._pending = []
        for row in self._rows:
            rows.append(row)
            if len(rows) >= BATCH_ROWS:
                self._done += len(rows)
                yield flush(rows)
                rows = []
        if rows:
            self._done += len(rows)
            yield flush(rows)

    def fraction(self) -> float:
        return min(self._done / self._height, 1.0)

    def close(self) -> None:
        self._wb.close()


class JSONLinesSource(TextSource):
    """JSON Lines: one object per line; values handed on as text for inference."""

    def __init__(self, path: str, sniffed: Sniffed, limits: Limits, source_name: str) -> None:
        import pyarrow.json as pajson

        self.rejected = []
        self.total = max(os.path.getsize(path), 1)
        raw = open_text_source(path, sniffed)
        self._stream = _Counting(raw)
        try:
            self._reader = pajson.open_json(
                self._stream, read_options=pajson.ReadOptions(block_size=limits.max_line_bytes)
            )
        except pa.ArrowInvalid as e:
            raise DatapilotError(422, "unreadable_json", f"{source_name}: {e}") from None
        self.source_name = source_name
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
            raise DatapilotError(422, "unreadable_json", f"{self.source_name}: {e}") from None

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
