"""What an uploaded file is: format, compression, encoding, delimiter, header, locale.

Everything here looks at the first bytes (or an archive's directory) only, so it runs
in the request that receives the upload: a wrong or hostile file is refused with a
clear status before a job is created.
"""

from __future__ import annotations

import codecs
import csv
import gzip
import io
import re
import zipfile
from collections import Counter
from dataclasses import asdict, dataclass, field
from typing import Any

from ...errors import DatapilotError
from ._header import find_table

SAMPLE_BYTES = 256 * 1024
DELIMITERS = (",", ";", "\t", "|")
EXCEL_FORMATS = {"xlsx", "xlsm", "xls", "ods"}

_EXECUTABLES = (
    (b"\x7fELF", "an ELF executable"),
    (b"MZ", "a Windows executable"),
    (b"\xfe\xed\xfa\xce", "a Mach-O executable"),
    (b"\xfe\xed\xfa\xcf", "a Mach-O executable"),
    (b"\xcf\xfa\xed\xfe", "a Mach-O executable"),
    (b"\xca\xfe\xba\xbe", "a Java class or Mach-O file"),
    (b"%PDF", "a PDF document"),
    (b"\x89PNG", "a PNG image"),
    (b"\xff\xd8\xff", "a JPEG image"),
    (b"GIF8", "a GIF image"),
    (b"7z\xbc\xaf", "a 7-Zip archive"),
    (b"Rar!", "a RAR archive"),
    (b"BZh", "a bzip2 archive"),
    (b"\xfd7zXZ", "an XZ archive"),
)
_OLE2 = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"


@dataclass
class Limits:
    """Bounds on what an upload may expand to or contain."""

    max_uncompressed: int = 8 * 1024**3
    max_ratio: float = 200.0
    max_columns: int = 2000
    max_cell_bytes: int = 1024**2
    max_line_bytes: int = 1024**2


@dataclass
class Sniffed:
    """What :func:`sniff` found; stored with the job and shown in the report."""

    format: str  # csv, jsonl, parquet, xlsx, xlsm, xls, ods
    compression: str | None = None  # gzip, zip
    member: str | None = None  # the file inside a zip
    encoding: str | None = None  # python codec name for text formats
    delimiter: str | None = None
    decimal: str = "."
    thousands: str | None = None
    dayfirst: bool | None = None
    header: bool = True
    skip_rows: int = 0
    sheets: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Sniffed:
        return cls(**data)


def _unsupported(source: str, what: str) -> DatapilotError:
    return DatapilotError(
        415,
        "unsupported_type",
        f"{source} is {what}; upload CSV/TSV, Excel (.xlsx, .xlsm, .xls, .ods), JSON Lines or"
        " Parquet, optionally in .gz or .zip.",
        detected=what,
    )


def _check_zip(zf: zipfile.ZipFile, source: str, limits: Limits) -> None:
    """Refuse a zip (or a workbook, which is one) whose expansion is out of bounds,
    reading only the central directory."""
    total = 0
    for info in zf.infolist():
        total += info.file_size
        ratio = info.file_size / max(info.compress_size, 1)
        if info.file_size > 1024**2 and ratio > limits.max_ratio:
            raise DatapilotError(
                413,
                "compression_bomb",
                f"{source} expands {ratio:.0f} times ({info.filename}); the limit is"
                f" {limits.max_ratio:.0f}.",
                ratio=round(ratio),
                limit=limits.max_ratio,
            )
    if total > limits.max_uncompressed:
        raise DatapilotError(
            413,
            "compression_bomb",
            f"{source} expands to {total} bytes; the limit is {limits.max_uncompressed}.",
            uncompressed=total,
            limit=limits.max_uncompressed,
        )


def _zip_kind(zf: zipfile.ZipFile) -> str | None:
    names = set(zf.namelist())
    if "xl/workbook.xml" in names or "xl/workbook.bin" in names:
        ct = zf.read("[Content_Types].xml") if "[Content_Types].xml" in names else b""
        return "xlsm" if b"macroEnabled" in ct else "xlsx"
    if "mimetype" in names and zf.read("mimetype").startswith(
        b"application/vnd.oasis.opendocument.spreadsheet"
    ):
        return "ods"
    return None


def detect_encoding(sample: bytes, declared: str | None = None) -> str:
    """The codec of a text sample: BOMs, then UTF-8, then Windows-1252, then Latin-1."""
    if declared:
        try:
            return codecs.lookup(declared).name
        except LookupError:
            raise DatapilotError(
                400, "invalid_input", f"Unknown encoding {declared!r}.", field="options.encoding"
            ) from None
    if sample.startswith(codecs.BOM_UTF8):
        return "utf-8-sig"
    if sample.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return "utf-16"
    try:
        sample.decode("utf-8")
        return "utf-8"
    except UnicodeDecodeError as e:
        # a multi-byte character cut at the end of the sample is still UTF-8
        if e.start >= len(sample) - 3 and e.reason == "unexpected end of data":
            return "utf-8"
    try:
        sample.decode("cp1252")
        return "cp1252"
    except UnicodeDecodeError:
        return "latin-1"


def _looks_binary(sample: bytes, encoding: str) -> bool:
    if encoding.startswith("utf-16"):
        return False
    head = sample[:8192]
    if b"\x00" in head:
        return True
    control = sum(1 for b in head if b < 9 or 13 < b < 32)
    return control > len(head) * 0.01


def sniff_delimiter(lines: list[str], declared: str | None = None) -> str:
    """The delimiter whose field count is the most consistent across the sample lines."""
    if declared:
        if len(declared) != 1:
            raise DatapilotError(
                400,
                "invalid_input",
                "options.delimiter must be one character.",
                field="options.delimiter",
            )
        return declared
    best, best_score = ",", -1.0
    for delim in DELIMITERS:
        counts = [len(row) for row in csv.reader(lines, delimiter=delim)][:200]
        counts = [c for c in counts if c > 0]
        if not counts:
            continue
        mode, freq = Counter(counts).most_common(1)[0]
        if mode < 2:
            continue
        score = freq / len(counts) + min(mode, 50) / 1000
        if score > best_score:
            best, best_score = delim, score
    return best


def find_header(rows: list[list[str]], declared: bool | None = None) -> tuple[int, bool]:
    """(rows to skip before the header, whether there is a header row).

    Title lines above a table are skipped; the header is a row of labels over the
    table's columns (see :func:`._header.find_table`, which workbooks use too).
    """
    table = find_table(rows, declared)
    return (table.start if table.header is None else table.header), table.header is not None


_EU_NUMBER = re.compile(r"^-?\d{1,3}(\.\d{3})+(,\d+)?$|^-?\d+,\d{1,2}$|^-?\d+,\d{4,}$")
_US_NUMBER = re.compile(r"^-?\d{1,3}(,\d{3})+(\.\d+)?$|^-?\d+\.\d{1,2}$|^-?\d+\.\d{4,}$")
_SLASH_DATE = re.compile(r"^(\d{1,2})[/.\-](\d{1,2})[/.\-](\d{4})")


def sniff_locale(rows: list[list[str]]) -> tuple[str, str | None, bool | None]:
    """(decimal separator, thousands separator, day first) from sample values."""
    eu = us = 0
    day_first = month_first = 0
    for row in rows:
        for cell in row:
            v = cell.strip().lstrip("$€£¥").rstrip("%€ ").strip()
            if _EU_NUMBER.match(v):
                eu += 1
            elif _US_NUMBER.match(v):
                us += 1
            m = _SLASH_DATE.match(cell.strip())
            if m:
                a, b = int(m.group(1)), int(m.group(2))
                day_first += a > 12
                month_first += b > 12
    decimal = "," if eu > us else "."
    thousands = "." if decimal == "," else ","
    dayfirst = True if day_first > month_first else False if month_first else None
    if dayfirst is None and decimal == ",":
        dayfirst = True  # decimal-comma locales write dates day first
    return decimal, thousands, dayfirst


def sniff(path: str, source: str, options: dict[str, Any], limits: Limits) -> Sniffed:
    """Identify an uploaded file; raise 413/415/422 for what cannot be ingested.

    Parameters
    ----------
    path : str
        The uploaded file on local disk.
    source : str
        Its name as uploaded (for messages and the extension hint).
    options : dict
        The upload's options (``encoding``, ``delimiter``, ``header``, ``decimal``,
        ``thousands``, ``dayfirst``, ``sheet``).
    limits : Limits
        Bounds for archives.
    """
    with open(path, "rb") as f:
        head = f.read(SAMPLE_BYTES)
    if not head:
        raise DatapilotError(422, "empty_file", f"{source} is empty.")
    if head.startswith(b"PAR1"):
        return Sniffed(format="parquet")
    if head.startswith(_OLE2):
        return Sniffed(format="xls")
    if head.startswith(b"PK\x03\x04") or head.startswith(b"PK\x05\x06"):
        try:
            with zipfile.ZipFile(path) as zf:
                _check_zip(zf, source, limits)
                kind = _zip_kind(zf)
                if kind:
                    return Sniffed(format=kind)
                members = [
                    i
                    for i in zf.infolist()
                    if not i.is_dir() and not i.filename.startswith("__MACOSX/")
                ]
                if len(members) != 1:
                    raise DatapilotError(
                        422,
                        "unsupported_archive",
                        f"{source} holds {len(members)} files; a .zip upload must hold exactly"
                        " one.",
                    )
                member = members[0].filename
                with zf.open(member) as inner:
                    inner_head = inner.read(SAMPLE_BYTES)
        except zipfile.BadZipFile:
            raise DatapilotError(422, "corrupt_file", f"{source} is a damaged zip file.") from None
        sniffed = _sniff_bytes(inner_head, member, options)
        sniffed.compression, sniffed.member = "zip", member
        return sniffed
    if head.startswith(b"\x1f\x8b"):
        try:
            with gzip.open(path, "rb") as gz:
                inner_head = gz.read(SAMPLE_BYTES)
        except (OSError, EOFError):
            raise DatapilotError(422, "corrupt_file", f"{source} is a damaged gzip file.") from None
        inner_name = source[:-3] if source.lower().endswith(".gz") else source
        sniffed = _sniff_bytes(inner_head, inner_name, options)
        sniffed.compression = "gzip"
        return sniffed
    return _sniff_bytes(head, source, options)


def _sniff_bytes(head: bytes, source: str, options: dict[str, Any]) -> Sniffed:
    if head.startswith(b"PAR1"):
        return Sniffed(format="parquet")
    for magic, what in _EXECUTABLES:
        if head.startswith(magic):
            raise _unsupported(source, what)
    encoding = detect_encoding(head, options.get("encoding"))
    if _looks_binary(head, encoding):
        raise _unsupported(source, "binary content of an unknown kind")
    text = head.decode(encoding, errors="replace")
    lines = text.splitlines()
    if len(head) == SAMPLE_BYTES and len(lines) > 1:
        lines = lines[:-1]  # the last line may be cut
    stripped = text.lstrip("\ufeff \t\r\n")
    if stripped.startswith("{") and source.lower().endswith((".jsonl", ".ndjson", ".json")):
        return Sniffed(format="jsonl", encoding=encoding)
    delimiter = sniff_delimiter(lines, options.get("delimiter"))
    rows = list(csv.reader(lines[:500], delimiter=delimiter))
    skip, header = find_header(rows[:100], options.get("header"))
    decimal, thousands, dayfirst = sniff_locale(rows[skip + 1 : 500])
    notes = []
    if options.get("decimal"):
        decimal = options["decimal"]
        thousands = options.get("thousands", "." if decimal == "," else ",")
    elif options.get("thousands"):
        thousands = options["thousands"]
    if options.get("dayfirst") is not None:
        dayfirst = bool(options["dayfirst"])
    if skip:
        notes.append(f"skipped {skip} line(s) above the header")
    return Sniffed(
        format="csv",
        encoding=encoding,
        delimiter=delimiter,
        decimal=decimal,
        thousands=thousands,
        dayfirst=dayfirst,
        header=header,
        skip_rows=skip,
        notes=notes,
    )


def open_text_source(path: str, sniffed: Sniffed) -> io.BufferedReader:
    """The (decompressed) bytes of a text upload, as a binary stream."""
    if sniffed.compression == "gzip":
        return gzip.open(path, "rb")  # type: ignore[return-value]
    if sniffed.compression == "zip":
        zf = zipfile.ZipFile(path)
        return zf.open(sniffed.member)  # type: ignore[return-value]
    return open(path, "rb")  # noqa: SIM115 - the caller closes it
