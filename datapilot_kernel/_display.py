"""What the client shows in a notebook: progress bars, datasets, errors."""

from __future__ import annotations

import os
from typing import IO, TYPE_CHECKING, Any

if TYPE_CHECKING:
    from tqdm import tqdm

    from ._client import DatapilotClient


def byte_bar(client: DatapilotClient, total: int | None, label: str) -> tqdm | None:
    """A bar over bytes, or None if progress is off or the transfer is small.

    Parameters
    ----------
    client : DatapilotClient
        Whose ``progress`` and ``progress_threshold`` apply.
    total : int or None
        Bytes to transfer, when known.
    label : str
        The bar's description.
    """
    if not client.progress or total is None or total <= client.progress_threshold:
        return None
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=label, unit="B", unit_scale=True, unit_divisor=1024, leave=False)


def job_bar(client: DatapilotClient, label: str) -> tqdm | None:
    """A 0..1 bar for a job, shown only once the job has taken half a second.

    Parameters
    ----------
    client : DatapilotClient
        Whose ``progress`` applies.
    label : str
        The bar's description.
    """
    if not client.progress:
        return None
    from tqdm.auto import tqdm

    return tqdm(
        total=1.0,
        desc=label,
        delay=0.5,
        leave=False,
        bar_format="{desc}: {percentage:3.0f}%|{bar}| {elapsed}{postfix}",
    )


class ProgressReader:
    """A file object for httpx's multipart body that advances a progress bar as it is read.

    Parameters
    ----------
    f : file object
        The file being uploaded.
    bar : tqdm
        The bar to advance.
    """

    def __init__(self, f: IO[bytes], bar: tqdm) -> None:
        self._f = f
        self._bar = bar

    def read(self, size: int = -1) -> bytes:
        chunk = self._f.read(size)
        self._bar.update(len(chunk))
        return chunk

    def seek(self, offset: int, whence: int = os.SEEK_SET) -> int:
        # httpx rewinds before sending the body (again on a retried request)
        position = self._f.seek(offset, whence)
        if position == 0 and self._bar.n:
            self._bar.reset(self._bar.total)
        return position

    def tell(self) -> int:
        return self._f.tell()

    def fileno(self) -> int:
        return self._f.fileno()


# -- datasets and errors in a notebook ----------------------------------------------

_SIZE_UNITS = ("B", "KiB", "MiB", "GiB", "TiB")


def human_size(n: Any) -> str:
    """``1536`` → ``"1.5 KiB"``; anything not a number as it is.

    Parameters
    ----------
    n : int
        Bytes.
    """
    if not isinstance(n, (int, float)) or isinstance(n, bool):
        return "" if n is None else str(n)
    size, unit = float(n), 0
    while size >= 1024 and unit < len(_SIZE_UNITS) - 1:
        size, unit = size / 1024, unit + 1
    return f"{int(size)} B" if unit == 0 else f"{size:.1f} {_SIZE_UNITS[unit]}"


def _count(n: Any, what: str) -> str:
    if not isinstance(n, int):
        return f"? {what}s"
    return f"{n:,} {what}{'' if n == 1 else 's'}"


def _short(value: Any, width: int = 24) -> str:
    text = "" if value is None else str(value)
    return text if len(text) <= width else text[: width - 1] + "…"


class DatasetInfo(dict):  # type: ignore[type-arg]
    """A dataset as the service describes it, shown as a summary in a notebook.

    It is the service's JSON object (a dict: ``info["rows"]``, ``info["columns"]``), so
    code that indexes it keeps working; Jupyter shows it as a table of its columns and
    the import report instead of the raw dict.
    """

    def headline(self) -> str:
        """One line: name, version, rows, columns, size."""
        columns = self.get("columns") or []
        return (
            f"Dataset {self.get('name')!r}, version {self.get('version')}:"
            f" {_count(self.get('rows'), 'row')}, {_count(len(columns), 'column')},"
            f" {human_size(self.get('bytes'))}"
        ).rstrip(", ")

    def _column_rows(self) -> list[list[str]]:
        report = (self.get("report") or {}).get("columns") or {}
        rows = []
        for column in self.get("columns") or []:
            stats = column.get("stats") or {}
            why = report.get(column.get("name"), {})
            invalid = (why.get("invalid") or {}).get("count") or 0
            notes = [why.get("reason") or ""]
            if invalid:
                notes.append(f"{invalid:,} invalid value{'s' if invalid != 1 else ''} emptied")
            label = column.get("label")
            rows.append(
                [
                    str(column.get("name")),
                    str(column.get("type"))
                    + (f" ({column['unit']})" if column.get("unit") else ""),
                    f"{stats['nulls']:,}" if isinstance(stats.get("nulls"), int) else "",
                    _short(stats.get("min")),
                    _short(stats.get("max")),
                    "" if label in (None, column.get("name")) else str(label),
                    "; ".join(n for n in notes if n),
                ]
            )
        return rows

    def _report_lines(self) -> list[str]:
        report = self.get("report") or {}
        lines = []
        if "rows_read" in report:
            line = f"Read {_count(report.get('rows_read'), 'row')} from {report.get('source')}"
            if report.get("rows_rejected"):
                line += f", {report['rows_rejected']:,} rejected"
            lines.append(line + ".")
        lines += [str(w) for w in report.get("warnings") or []]
        return lines

    _HEADERS = ["column", "type", "nulls", "min", "max", "label", "how it was read"]

    def _repr_pretty_(self, p: Any, cycle: bool) -> None:
        if cycle:
            p.text("DatasetInfo(...)")
            return
        rows = [self._HEADERS] + self._column_rows()
        widths = [max(len(r[i]) for r in rows) for i in range(len(self._HEADERS) - 1)]
        lines = [self.headline()]
        for row in rows:
            cells = [cell.ljust(w) for cell, w in zip(row, widths, strict=False)]
            lines.append("  " + "  ".join(cells + [row[-1]]).rstrip())
        lines += self._report_lines()
        p.text("\n".join(lines))

    def _repr_html_(self) -> str:
        from html import escape

        head = "".join(f"<th style='text-align:left'>{escape(h)}</th>" for h in self._HEADERS)
        body = "".join(
            "<tr>" + "".join(f"<td style='text-align:left'>{escape(c)}</td>" for c in row) + "</tr>"
            for row in self._column_rows()
        )
        notes = "".join(f"<li>{escape(line)}</li>" for line in self._report_lines())
        return (
            f"<div class='datapilot-dataset'><strong>{escape(self.headline())}</strong>"
            f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"
            + (f"<ul>{notes}</ul>" if notes else "")
            + "</div>"
        )


def render_error(error: BaseException, code: str | None, status: int | None) -> list[str]:
    """The one line IPython shows for a Datapilot error, instead of a traceback.

    The line says what the service said, its code and status, and the line of the
    notebook cell (or file) that made the call, the one frame of the traceback an
    analyst can act on.

    Parameters
    ----------
    error : BaseException
        The error, with its traceback.
    code : str or None
        Its machine code.
    status : int or None
        Its HTTP status.
    """
    where = ""
    tb = error.__traceback__
    package = os.path.dirname(__file__)
    while tb is not None:
        filename = tb.tb_frame.f_code.co_filename
        if os.path.dirname(filename) != package:
            where = f"line {tb.tb_lineno}"
        else:
            break
        tb = tb.tb_next
    facts = ", ".join(str(f) for f in (code, f"HTTP {status}" if status else None, where) if f)
    red, reset = "\x1b[0;31m", "\x1b[0m"
    return [f"{red}DatapilotError{reset}: {error}" + (f" ({facts})" if facts else "")]
