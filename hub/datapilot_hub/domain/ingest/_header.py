"""Where a table starts: its header row among the first rows of a worksheet or a CSV.

Exports and statistics workbooks put titles, notes and group headers (often merged
cells) above the table, and some header rows hold a number or an empty cell. The header
is found from what the cells hold, not from its position: the table's columns are those
the rows below fill; its first data row is the first row whose cells have the kinds of
those columns (numbers over numbers, dates over dates); its header is the row just above
that, when its cells are labels over those columns (text over numbers, a year over
amounts). A row of group labels above the header (``2020`` over ``Male``, ``Female``)
qualifies repeated labels.
"""

from __future__ import annotations

import datetime as dt
import math
import re
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

EMPTY, TEXT, NUMBER, DATE, BOOL = "empty", "text", "number", "date", "boolean"
_TYPED = (NUMBER, DATE, BOOL)
_NUMBER_TEXT = re.compile(r"^[\s$€£¥+\-(]*\d[\d.,'\s]*[%)]?\s*$")
_DATE_TEXT = re.compile(
    r"^(?:\d{4}[-/.]\d{1,2}[-/.]\d{1,2}|\d{1,2}[-/.]\d{1,2}[-/.](?:\d{4}|\d{2}))(?:[T ].*)?$"
)
# cells that say "no value" (a dash, "n/a", "..") are neither labels nor data
_NO_VALUE = re.compile(r"^(?:[^\w]*|n/?a|null|none|nan)$", re.IGNORECASE)
_WORD = re.compile(r"[^\W\d_]{2,}")
# rows the decision looks at below a candidate
_BODY = 50


def cell_kind(value: Any) -> str:
    """What a cell holds: ``empty``, ``text``, ``number``, ``date`` or ``boolean``.

    Typed cells (a workbook's) are what they are; text (a CSV's) is read by its look.
    """
    if value is None:
        return EMPTY
    if isinstance(value, bool):
        return BOOL
    if isinstance(value, (int, float)):
        return NUMBER if not (isinstance(value, float) and math.isnan(value)) else EMPTY
    if isinstance(value, (dt.date, dt.time, dt.timedelta)):
        return DATE
    text = str(value).strip()
    if _NO_VALUE.match(text):
        return EMPTY
    if _NUMBER_TEXT.match(text):
        return NUMBER
    if _DATE_TEXT.match(text):
        return DATE
    return TEXT


def cell_text(value: Any) -> str:
    """A cell as a column label: whole numbers without ``.0``, line breaks as spaces."""
    if value is None:
        return ""
    if isinstance(value, float):
        if math.isnan(value):
            return ""
        return str(int(value)) if value.is_integer() and abs(value) < 2**53 else repr(value)
    if isinstance(value, dt.datetime):
        return value.isoformat(sep=" ")
    if isinstance(value, (dt.date, dt.time)):
        return value.isoformat()
    return " ".join(str(value).split())


@dataclass
class Table:
    """Where the table of a sheet (or CSV) is."""

    # index of the header row in the rows looked at; None: no header
    header: int | None
    # index of the first data row
    start: int
    # one label per column (empty where the header has none); [] without a header
    labels: list[str] = field(default_factory=list)
    # why, in words, for the report
    reason: str = ""
    # the table's columns, and how many of them hold numbers, dates or booleans
    columns: int = 0
    typed: int = 0


def _is_year(value: Any) -> bool:
    try:
        number = float(str(value).strip()) if not isinstance(value, (int, float)) else value
    except ValueError:
        return False
    return float(number).is_integer() and 1800 <= number <= 2100


class _Grid:
    """The rows looked at, with each cell's kind and the vertical merges."""

    def __init__(self, rows: list[list[Any]], merged: list[tuple[int, int, int, int]]) -> None:
        self.rows = rows
        self.width = max((len(r) for r in rows), default=0)
        self.kinds = [[cell_kind(v) for v in r] for r in rows]
        self.filled = [{c for c, k in enumerate(r) if k != EMPTY} for r in self.kinds]
        self.merged = merged
        self.nonempty = [i for i, f in enumerate(self.filled) if f]
        # each merged cell among these rows, to its range (a sheet may merge hundreds)
        self._merge_at: dict[tuple[int, int], tuple[int, int, int, int]] = {}
        for m in merged:
            r0, c0, r1, c1 = m
            for i in range(max(r0, 0), min(r1, len(rows) - 1) + 1):
                for c in range(max(c0, 0), min(c1, self.width - 1) + 1):
                    self._merge_at[i, c] = m

    def value(self, i: int, c: int) -> Any:
        row = self.rows[i]
        return row[c] if c < len(row) else None

    def kind(self, i: int, c: int) -> str:
        row = self.kinds[i]
        return row[c] if c < len(row) else EMPTY

    def merged_into(self, i: int, c: int) -> tuple[int, int, int, int] | None:
        """The merged range that covers (i, c), if any."""
        return self._merge_at.get((i, c))

    def columns(self) -> tuple[list[int], dict[int, str], dict[int, float]]:
        """The table's columns, with each one's usual kind and its share.

        Read from the lower half of the rows looked at (below any title), rows of
        at least two cells (not notes).
        """
        lower = [i for i in self.nonempty[len(self.nonempty) // 2 :] if len(self.filled[i]) >= 2]
        lower = lower or self.nonempty
        count = Counter(c for i in lower for c in self.filled[i])
        cols = sorted(c for c, n in count.items() if n >= 0.5 * len(lower))
        dominant, share = {}, {}
        for c in cols:
            kinds = Counter(self.kind(i, c) for i in lower if c in self.filled[i])
            kind, n = kinds.most_common(1)[0]
            dominant[c], share[c] = kind, n / sum(kinds.values())
        return cols, dominant, share


def find_table(
    rows: list[list[Any]],
    declared: bool | None = None,
    merged: list[tuple[int, int, int, int]] | None = None,
) -> Table:
    """Find the header row and the first data row among the first rows of a table.

    Parameters
    ----------
    rows : list of list
        The first rows (a hundred or two), cells typed (a workbook's) or text (a CSV's).
    declared : bool, optional
        ``options.header``: True, there is a header row; False, there is none.
    merged : list of (first row, first column, last row, last column), optional
        Merged cells, as indices into ``rows``.
    """
    grid = _Grid(rows, list(merged or []))
    if not grid.nonempty:
        return Table(None, 0, [], "the sheet is empty")
    cols, dominant, share = grid.columns()
    typed = [c for c in cols if dominant[c] in _TYPED and share[c] >= 0.6]
    table = _find(grid, declared, cols, dominant, typed)
    table.columns, table.typed = len(cols), len(typed)
    return table


def _find(
    grid: _Grid, declared: bool | None, cols: list[int], dominant: dict[int, str], typed: list[int]
) -> Table:

    def covered(i: int) -> int:
        cells = grid.filled[i] | {
            c for c in cols if (m := grid.merged_into(i, c)) is not None and m[0] < i
        }
        return len(cells & set(cols))

    def wide(i: int) -> bool:
        return covered(i) >= max(1, min(2, len(cols)), math.ceil(0.5 * len(cols)))

    def data_like(i: int) -> bool:
        matches = sum(1 for c in typed if grid.kind(i, c) == dominant[c])
        return matches > 0 and matches >= len(set(typed) & grid.filled[i]) - matches

    def labels_over(i: int) -> list[int]:
        """The typed columns whose cell in row ``i`` is a label, not a value."""
        out = []
        for c in typed:
            kind = grid.kind(i, c)
            if kind == TEXT or (kind not in (EMPTY, dominant[c])):
                out.append(c)
            elif kind == NUMBER and _is_year(grid.value(i, c)) and not _years_below(grid, i, c):
                out.append(c)
        return out

    def header_like(i: int) -> bool:
        over = labels_over(i)
        filled = [c for c in typed if c in grid.filled[i]]
        if not over or 2 * len(over) < len(filled):
            return False
        if 2 * len(over) > len(filled):
            return True
        # as many labels as values: a header only if the labels are words ("Value"), not
        # markers a statistics table puts in place of a number
        return any(_WORD.search(str(grid.value(i, c))) for c in over)

    search = grid.nonempty[: max(1, len(grid.nonempty) - 1)] if len(grid.nonempty) > 1 else []
    first_wide = next((i for i in grid.nonempty if wide(i)), grid.nonempty[0])
    if typed and declared is None:
        for i in search:
            if not wide(i):
                continue
            if header_like(i):
                header = _lowest_header(grid, i, wide, header_like, data_like)
                return _with_labels(grid, header, cols, "cells of text over columns of values")
            if data_like(i):
                return Table(None, i, [], _skipped(i, "the first row holds values, not labels"))
    if declared is False:
        return Table(None, first_wide, [], _skipped(first_wide, "options.header is false"))
    if declared:
        return _with_labels(grid, first_wide, cols, "options.header is true")
    # a table of text only: a header when its cells are distinct labels, as CSV readers do
    cells = [cell_text(grid.value(first_wide, c)) for c in sorted(grid.filled[first_wide])]
    below = any(i > first_wide for i in grid.nonempty)
    if (len(set(cells)) == len(cells) and len(grid.filled[first_wide]) >= len(cols)) or not below:
        if all(grid.kind(first_wide, c) == TEXT for c in grid.filled[first_wide]):
            return _with_labels(grid, first_wide, cols, "distinct labels above rows of text")
    return Table(None, first_wide, [], _skipped(first_wide, "no row of labels"))


def _years_below(grid: _Grid, i: int, c: int) -> bool:
    below = [grid.value(j, c) for j in grid.nonempty if j > i and c in grid.filled[j]][:_BODY]
    return bool(below) and sum(map(_is_year, below)) >= 0.5 * len(below)


def _lowest_header(grid: _Grid, i: int, wide, header_like, data_like) -> int:
    """The last row of labels before the first row of values (a group row is above it)."""
    header = i
    for j in grid.nonempty:
        if j <= i:
            continue
        if wide(j) and data_like(j) and not header_like(j):
            break
        if wide(j) and header_like(j) and len(grid.filled[j]) >= len(grid.filled[header]):
            header = j
    return header


def _skipped(i: int, why: str) -> str:
    return f"{why}; {i} row(s) above it skipped" if i else why


def _with_labels(grid: _Grid, h: int, cols: list[int], why: str) -> Table:
    """The header row's labels; empty cells under a merged cell, and repeated labels under
    a row of group labels, take the text above them."""
    labels = [cell_text(grid.value(h, c)) for c in range(grid.width)]
    for c in range(grid.width):
        if not labels[c] and (m := grid.merged_into(h, c)) is not None and m[0] < h:
            labels[c] = cell_text(grid.value(m[0], m[1]))
    group_row = h - 1
    filled = [label for label in labels if label]
    repeated = len(set(filled)) < len(filled)
    # a row of group labels: each of its labels spans columns (merged, or sparser than the
    # header); a cell merged down into the header row is the header's own label
    spans = [m for m in grid.merged if m[0] <= group_row <= m[2] and m[3] > m[1]]
    groups_in = {
        c
        for c in (grid.filled[group_row] & set(cols) if group_row >= 0 else ())
        if (m := grid.merged_into(group_row, c)) is None or m[2] < h
    }
    if (
        len(groups_in) >= 2
        and (spans or len(groups_in) < len(grid.filled[h]))
        and all(grid.kind(group_row, c) in (TEXT, NUMBER) for c in groups_in)
    ):
        groups = _groups(grid, group_row)
        for c in range(grid.width):
            group = groups[c]
            if not labels[c] and group:
                labels[c] = group  # a two-row header: the label sits in the upper row
            elif repeated and group and group != labels[c]:
                labels[c] = f"{group} {labels[c]}"
    why = f"row {h + 1}: {why}"
    return Table(h, h + 1, labels, why if not h else f"{why}; {h} row(s) above it skipped")


def _groups(grid: _Grid, r: int) -> list[str]:
    """Each column's group label in row ``r``: its merged cell's text, else the nearest
    label to its left."""
    out, current = [], ""
    for c in range(grid.width):
        m = grid.merged_into(r, c)
        if m is not None:
            current = cell_text(grid.value(m[0], m[1]))
        elif c in grid.filled[r]:
            current = cell_text(grid.value(r, c))
        elif grid.merged:
            current = ""  # merges are known: an unmerged empty cell groups nothing
        out.append(current)
    return out
