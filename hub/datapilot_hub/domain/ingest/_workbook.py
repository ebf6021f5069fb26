"""Worksheets as batches of text columns: which sheet, where its table starts, its cells.

fastexcel reads a sheet with the calamine engine straight into Arrow, each column typed
from all of its cells, with no Python object per cell. Most sheets hold one table from
their first row: one read, its first row the header. The others (titles, notes and
merged group headers above the table, a header row with a number or an empty cell, a
read-me sheet first) are looked at with python-calamine, which gives the first rows'
cells with their types, the merged cells and where the used area starts; the table is
then read from its first data row. A column whose cells mix kinds fastexcel cannot put
in one Arrow type (durations with numbers and text) is read as text, its values written
exactly from python-calamine's cells, and the rest of the sheet comes in typed.
"""

from __future__ import annotations

import datetime as dt
import math
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from ...errors import DatapilotError
from ._header import Table, cell_text, find_table
from ._sniff import Limits, Sniffed

BATCH_ROWS = 32768
# rows looked at to find a sheet's table
HEAD_ROWS = 200
# a number fastexcel wrote with its nine decimals: it may have had more
_ROUNDED = r"^-?[0-9]+\.[0-9]{9}$"
_ODD_COLUMN = re.compile(r"could not determine dtype for column __UNNAMED__(\d+)")


def _typed_text(column: pa.Array) -> pa.Array:
    """A typed worksheet column as the text inference reads.

    Numbers without formatting (whole numbers as integers, not ``1.2e+11``), booleans
    as true/false, dates at midnight as dates, other moments in ISO form, times of day
    (Excel keeps them as moments of 31 December 1899) and durations as ``h:mm:ss``.
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
        if (pc.max(column).as_py() or dt.datetime(1900, 1, 1)) < dt.datetime(1900, 1, 1):
            return _no_zero_fraction(pc.strftime(column, format="%H:%M:%S"))
        if pc.all(pc.equal(pc.floor_temporal(column, unit="day"), column)).as_py() is not False:
            return column.cast(pa.date32()).cast(pa.string())
        return _no_zero_fraction(pc.strftime(column, format="%Y-%m-%d %H:%M:%S"))
    if pa.types.is_duration(kind):
        return pa.array(
            [None if v is None else _duration_text(v) for v in column.to_pylist()], pa.string()
        )
    if pa.types.is_boolean(kind):
        return pc.if_else(column, "true", "false")
    return column.cast(pa.string())


def _no_zero_fraction(text: pa.Array) -> pa.Array:
    """``10:30:00`` for Arrow's ``10:30:00.000`` (its ``%S`` writes the unit's fraction)."""
    return pc.replace_substring_regex(text, r"\.0+$", "")


def _duration_text(value: dt.timedelta) -> str:
    seconds = value.total_seconds()
    sign, seconds = ("-" if seconds < 0 else ""), abs(seconds)
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    text = f"{sign}{int(hours)}:{int(minutes):02d}:{int(secs):02d}"
    fraction = round(secs - int(secs), 6)
    return text + f"{fraction:.6f}"[1:].rstrip("0") if fraction else text


def exact_text(value: Any) -> str | None:
    """A cell as python-calamine gives it, as text that loses nothing."""
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        if math.isfinite(value) and value.is_integer() and abs(value) < 2**53:
            return str(int(value))
        return repr(value)
    if isinstance(value, dt.timedelta):
        return _duration_text(value)
    if isinstance(value, dt.datetime):
        return value.isoformat(sep=" ")
    if isinstance(value, (dt.date, dt.time)):
        return value.isoformat()
    return str(value)


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


@dataclass
class _Read:
    """One sheet read: its table's cells and where they came from."""

    sheet: str
    table: pa.Table
    labels: list[str]
    # 0-based row of the sheet holding the header (None: no header) and of the first value
    header_row: int | None
    start_row: int
    reason: str
    # the table has columns of values under a header: what "looks like a table" means
    tabular: bool
    above: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


class ExcelSource:
    """A worksheet of .xlsx, .xlsm, .xlsb, .xls or .ods, as batches of text columns.

    Without ``options.sheet`` the sheet read is the first that looks like a table;
    ``sheet``, ``sheet_reason``, ``header_row`` and ``header_reason`` say what was read
    and why (the report shows them).
    """

    rows_rejected = 0
    nulls_read = False

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
        import python_calamine

        self.rejected: list[dict[str, Any]] = []
        self.source_name = source_name
        self._path = path
        self._calamine = None
        try:
            self._reader = fastexcel.read_excel(path)
            names = list(self._reader.sheet_names)
            sniffed.sheets = names
            if sheet is None:
                read, self.sheet_reason = self._first_table(names, header)
            else:
                if isinstance(sheet, int) and 0 <= sheet < len(names):
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
                read = self._read(chosen, header)
                self.sheet_reason = "set by options.sheet"
        except (fastexcel.FastExcelError, python_calamine.CalamineError) as e:
            raise DatapilotError(
                422, "corrupt_file", f"{source_name} is not a readable workbook: {e}"
            ) from None
        finally:
            self._calamine = None
        if read.table.num_columns > limits.max_columns:
            raise DatapilotError(
                422,
                "too_many_columns",
                f"{source_name} has {read.table.num_columns} columns; the limit is"
                f" {limits.max_columns}.",
                limit=limits.max_columns,
            )
        self.sheet = read.sheet
        self.header_row = None if read.header_row is None else read.header_row + 1
        self.header_reason = read.reason
        self.above_header = read.above
        self.notes = read.notes
        sniffed.header = read.header_row is not None
        sniffed.skip_rows = read.header_row if read.header_row is not None else read.start_row
        self.labels = [label or f"column_{i + 1}" for i, label in enumerate(read.labels)]
        self._table = read.table
        self._done = 0

    # ---- which sheet, which rows --------------------------------------------------------

    def _first_table(self, names: list[str], header: bool | None) -> tuple[_Read, str]:
        """The first sheet that looks like a table, else the first with data."""
        first = None
        passed = []
        for name in names:
            read = self._read(name, header)
            if read.tabular:
                why = "the first sheet that looks like a table"
                if passed:
                    why += f" ({', '.join(map(repr, passed))} before it hold none)"
                return read, why
            if first is None and read.table.num_columns:
                first = read
            passed.append(name)
        if first is None:
            return self._read(names[0], header), "the workbook's sheets are empty"
        return first, "no sheet looks like a table: the first sheet with data"

    def _read(self, sheet: str, declared: bool | None) -> _Read:
        """Read a sheet's table: at once when it starts in its first row, else after a
        look at its first rows' cells."""
        import fastexcel

        if declared is not False:
            try:
                loaded = self._reader.load_sheet(
                    sheet, header_row=0, skip_rows=0, schema_sample_rows=None
                )
            except (
                fastexcel.UnsupportedColumnTypeCombinationError,
                fastexcel.CalamineCellError,
            ):
                loaded = None
            if loaded is not None:
                if loaded.width == 0:
                    return _Read(sheet, pa.table({}), [], None, 0, "the sheet is empty", False)
                table = loaded.to_arrow()
                names = _header_labels(table.schema.names)
                head = table.slice(0, HEAD_ROWS)
                rows = [names, *zip(*(c.to_pylist() for c in head.columns), strict=True)]
                # (this read's first row is the sheet's first row: indices are the sheet's)
                found = find_table([list(r) for r in rows], declared)
                if found.header == 0:
                    tabular = _tabular(found, table)
                    table = self._unrounded(sheet, table, 1, None)
                    return _Read(sheet, table, found.labels, 0, 1, found.reason, tabular)
                if found.header is None and found.start == 0:
                    table, notes = self._typed_rows(sheet, 0, None)
                    tabular = _tabular(found, table)
                    return _Read(
                        sheet,
                        table,
                        [""] * table.num_columns,
                        None,
                        0,
                        found.reason,
                        tabular,
                        [],
                        notes,
                    )
        return self._read_from_cells(sheet, declared)

    def _cells(self, sheet: str):
        """python-calamine's sheet: its cells typed, its merges, where its used area starts."""
        import python_calamine

        if self._calamine is None:
            self._calamine = python_calamine.CalamineWorkbook.from_path(self._path)
        return self._calamine.get_sheet_by_name(sheet)

    def _read_from_cells(self, sheet: str, declared: bool | None) -> _Read:
        """Find the table from the first rows' typed cells and merges, then read it."""
        cells = self._cells(sheet)
        top, left = cells.start or (0, 0)
        rows = [[None if v == "" else v for v in r] for r in cells.to_python(nrows=HEAD_ROWS)]
        merged = [
            (r0 - top, c0 - left, r1 - top, c1 - left)
            for (r0, c0), (r1, c1) in (cells.merged_cell_ranges or [])
        ]
        found = find_table(rows, declared, merged)
        start = top + found.start
        table, notes = self._typed_rows(sheet, start, cells)
        width = table.num_columns
        labels = (found.labels + [""] * width)[:width] if found.header is not None else [""] * width
        header = None if found.header is None else top + found.header
        above_end = found.header if found.header is not None else found.start
        above = [
            " | ".join(cell_text(v) for v in r if v is not None)[:200]
            for r in rows[:above_end]
            if any(v is not None for v in r)
        ][:20]
        return _Read(
            sheet,
            table,
            labels,
            header,
            start,
            found.reason,
            _tabular(found, table),
            above,
            notes,
        )

    def _typed_rows(self, sheet: str, start: int, cells) -> tuple[pa.Table, list[str]]:
        """The sheet's rows from row ``start`` on, and notes on the columns read as text.

        A column of cells no one Arrow type holds is read as text, each cell written
        exactly from python-calamine's (fastexcel's text of a number keeps 9 decimals).
        """
        table, odd = self._load_rows(sheet, start)
        notes = []
        for i in odd:
            if cells is None:
                cells = self._cells(sheet)
            top = (cells.start or (0, 0))[0]
            exact = self._exact_column(cells, i, start - top, table.num_rows)
            table = table.set_column(i, table.field(i).name, exact)
            notes.append(
                f"column {i + 1} of sheet {sheet!r} mixes kinds of cells (e.g. numbers,"
                " durations and text): read as text"
            )
        return self._unrounded(sheet, table, start, cells, odd), notes

    def _unrounded(self, sheet: str, table: pa.Table, start: int, cells, done=()) -> pa.Table:
        """The table with its numbers exact in columns fastexcel made text.

        A column of numbers and text (``..`` where a value is not available) comes from
        fastexcel as text, its numbers written with nine decimals at most, as Excel shows
        them; where one may have been rounded so, the column's cells are written again
        exactly from python-calamine's.
        """
        for i, column in enumerate(table.columns):
            if i in done or not pa.types.is_string(column.type):
                continue
            if not pc.any(pc.match_substring_regex(column, _ROUNDED)).as_py():
                continue
            if cells is None:
                cells = self._cells(sheet)
            top = (cells.start or (0, 0))[0]
            exact = self._exact_column(cells, i, start - top, table.num_rows)
            table = table.set_column(i, table.field(i).name, exact)
        return table

    def _load_rows(self, sheet: str, start: int) -> tuple[pa.Table, list[int]]:
        """The sheet's rows from ``start`` on, typed; columns of cells no Arrow type holds
        are read as text (their indices returned)."""
        import fastexcel

        odd: list[int] = []
        while True:
            try:
                loaded = self._reader.load_sheet(
                    sheet,
                    header_row=None,
                    skip_rows=start,
                    schema_sample_rows=None,
                    dtypes={i: "string" for i in odd} or None,
                )
                return loaded.to_arrow(), odd
            except (
                fastexcel.UnsupportedColumnTypeCombinationError,
                fastexcel.CalamineCellError,
            ) as e:
                m = _ODD_COLUMN.search(str(e))
                if m is None or int(m.group(1)) in odd:
                    raise
                odd.append(int(m.group(1)))

    @staticmethod
    def _exact_column(cells, column: int, first: int, rows: int) -> pa.Array:
        """One column's cells from row ``first`` (of the used area) on, as exact text."""
        values = []
        for i, row in enumerate(cells.iter_rows()):
            if i >= first:
                values.append(exact_text(row[column]) if column < len(row) else None)
        values = (values + [None] * rows)[:rows]
        return pa.array(values, pa.string())

    # ---- the batches ----------------------------------------------------------------

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


def _tabular(found: Table, table: pa.Table) -> bool:
    return found.header is not None and found.typed > 0 and found.columns >= 2


def workbook_sheets(path: str, source_name: str) -> list[str]:
    """The sheet names of a workbook (no sheet is read)."""
    import fastexcel

    try:
        return list(fastexcel.read_excel(path).sheet_names)
    except fastexcel.FastExcelError as e:
        raise DatapilotError(
            422, "corrupt_file", f"{source_name} is not a readable workbook: {e}"
        ) from None
