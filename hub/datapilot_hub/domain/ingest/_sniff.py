"""What an uploaded file is: format, compression, encoding, delimiter, header, locale.

Everything here looks at the first bytes (or an archive's directory) only, so it runs
in the request that receives the upload: a wrong or hostile file is refused with a
clear status before a job is created. Workbooks are the exception: their parts are
inflated (and dropped) once, counted, because their reader trusts the archive.

Every compressed stream is counted while it inflates (:func:`open_text_source`,
:func:`check_workbook`): a compression bomb is stopped at ``max_uncompressed`` bytes or
``max_ratio`` times its compressed bytes, whatever the archive's directory says.
"""

from __future__ import annotations

import codecs
import csv
import gzip
import io
import re
import struct
import zipfile
import zlib
from collections import Counter
from dataclasses import asdict, dataclass, field
from typing import Any

from ...errors import DatapilotError
from ._header import find_table

SAMPLE_BYTES = 256 * 1024
# a stream's ratio is judged once it has given this much: the first bytes of a real file
# (a header, a run of empty cells) can compress far better than the whole
RATIO_FLOOR = 1024**2
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


def _bomb(source: str, message: str, **details: Any) -> DatapilotError:
    return DatapilotError(413, "compression_bomb", f"{source} {message}", **details)


def check_expansion(
    inflated: int, compressed: int, source: str, limits: Limits, member: str | None = None
) -> None:
    """Refuse (413 ``compression_bomb``) a stream that gave ``inflated`` bytes out of
    ``compressed`` ones, when that passes the limits.

    Parameters
    ----------
    inflated : int
        Bytes the stream (or the archive) has given so far.
    compressed : int
        Compressed bytes it has read to give them.
    source : str
        The upload's name, for the message.
    limits : Limits
        ``max_uncompressed`` and ``max_ratio``.
    member : str, optional
        The archive's member the stream is.
    """
    where = f" ({member})" if member else ""
    _check_total(inflated, source, limits, where)
    if inflated > RATIO_FLOOR and inflated > limits.max_ratio * max(compressed, 1):
        ratio = inflated / max(compressed, 1)
        raise _bomb(
            source,
            f"expands {ratio:.0f} times{where}; the limit is {limits.max_ratio:.0f}.",
            ratio=round(ratio),
            limit=limits.max_ratio,
        )


def _check_total(inflated: int, source: str, limits: Limits, where: str = "") -> None:
    if inflated > limits.max_uncompressed:
        raise _bomb(
            source,
            f"expands to more than {limits.max_uncompressed} bytes{where}, the limit.",
            limit=limits.max_uncompressed,
        )


def _check_zip(zf: zipfile.ZipFile, source: str, limits: Limits) -> None:
    """Refuse a zip (or a workbook, which is one) whose directory says its expansion is
    out of bounds: a cheap first look (the directory can lie; the streams are counted
    as they inflate too)."""
    total = 0
    for info in zf.infolist():
        total += info.file_size
        if info.file_size > RATIO_FLOOR:
            check_expansion(info.file_size, info.compress_size, source, limits, info.filename)
    _check_total(total, source, limits)


class _CountedFile(io.RawIOBase):
    """A file that counts the bytes read from it: the compressed side of a stream."""

    def __init__(self, f) -> None:
        self._f = f
        self.count = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        return self._f.seek(offset, whence)

    def tell(self) -> int:
        return self._f.tell()

    def readinto(self, buffer) -> int:
        n = self._f.readinto(buffer)
        self.count += n or 0
        return n

    def close(self) -> None:
        self._f.close()
        super().close()


class _Inflating(io.RawIOBase):
    """The inflated bytes of a .gz or a zip member, stopped when they pass the limits."""

    def __init__(self, inner, counted: _CountedFile, source: str, limits: Limits, member=None):
        self._inner = inner
        self._counted = counted
        self._start = counted.count
        self._source, self._limits, self._member = source, limits, member
        self.inflated = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        try:
            data = self._inner.read(len(buffer))
        except (EOFError, gzip.BadGzipFile, zlib.error, zipfile.BadZipFile) as e:
            # (a truncated or damaged stream shows only here, well into its ingestion)
            raise DatapilotError(
                422, "corrupt_file", f"{self._source} is a damaged archive: {e}"
            ) from None
        n = len(data)
        buffer[:n] = data
        self.inflated += n
        check_expansion(
            self.inflated,
            self._counted.count - self._start,
            self._source,
            self._limits,
            self._member,
        )
        return n

    def close(self) -> None:
        self._inner.close()
        self._counted.close()
        super().close()


def check_workbook(path: str, source: str, limits: Limits) -> None:
    """Inflate every part of a zipped workbook (.xlsx, .xlsm, .ods), count and drop it.

    The workbook's reader (calamine, in Rust) inflates a part as far as its compressed
    stream goes, whatever the archive's directory says it holds: so each part is
    inflated here first, from where its local header says its data starts, and counted
    against ``max_uncompressed`` (all parts together) and ``max_ratio`` (each part).
    Memory stays flat (1 MiB at a time). A part stored with another method than stored
    or deflate, which no spreadsheet program writes, is refused (422).
    """
    total = 0
    with open(path, "rb") as f, zipfile.ZipFile(f) as zf:
        for info in zf.infolist():
            f.seek(info.header_offset)
            header = f.read(30)
            if len(header) < 30 or header[:4] != b"PK\x03\x04":
                raise DatapilotError(
                    422, "corrupt_file", f"{source} is a damaged workbook ({info.filename})."
                )
            name_length, extra_length = struct.unpack("<HH", header[26:30])
            f.seek(info.header_offset + 30 + name_length + extra_length)
            if info.compress_type == zipfile.ZIP_STORED:
                total += info.compress_size
                _check_total(total, source, limits)
                continue
            if info.compress_type != zipfile.ZIP_DEFLATED:
                raise DatapilotError(
                    422,
                    "unsupported_archive",
                    f"{source} holds {info.filename} compressed with method"
                    f" {info.compress_type}; workbooks use deflate.",
                )
            total += _inflate_counted(f, info, source, limits, total)


def _inflate_counted(f, info: zipfile.ZipInfo, source: str, limits: Limits, before: int) -> int:
    """Inflate one deflated part from ``f``'s position; return how many bytes it gave."""
    inflater = zlib.decompressobj(-zlib.MAX_WBITS)
    left = info.compress_size
    consumed = inflated = 0
    while left > 0 and not inflater.eof:
        data = f.read(min(left, 64 * 1024))
        if not data:
            break
        left -= len(data)
        while data and not inflater.eof:
            try:
                out = inflater.decompress(data, 1024**2)
            except zlib.error:
                raise DatapilotError(
                    422, "corrupt_file", f"{source} is a damaged workbook ({info.filename})."
                ) from None
            consumed += len(data) - len(inflater.unconsumed_tail)
            data = inflater.unconsumed_tail
            inflated += len(out)
            check_expansion(inflated, consumed, source, limits, info.filename)
            _check_total(before + inflated, source, limits)
    return inflated


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


def text_encoding(name: Any) -> str | None:
    """The codec's name when ``name`` is a text encoding Python knows, else None.

    ``rot13``, ``hex`` or ``base64`` are codecs too, but not from bytes to text.
    """
    if not isinstance(name, str):
        return None
    try:
        codec = codecs.lookup(name)
        # (an empty input is not checked)
        b"a".decode(codec.name, "replace")
    except (LookupError, ValueError):
        # ValueError: a NUL or a lone surrogate in the name, or a codec that refuses
        # "replace" (idna) or every input (undefined)
        return None
    return codec.name


def detect_encoding(sample: bytes, declared: str | None = None) -> str:
    """The codec of a text sample: BOMs, then UTF-8, then Windows-1252, then Latin-1."""
    if declared:
        name = text_encoding(declared)
        if name is None:
            raise DatapilotError(
                400,
                "invalid_input",
                f"options.encoding {declared!r} is not a text encoding; e.g. utf-8, cp1252,"
                " latin-1, utf-16.",
                field="options.encoding",
            )
        return name
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
        Bounds for archives and lines.
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
                members = [
                    i
                    for i in zf.infolist()
                    if not i.is_dir() and not i.filename.startswith("__MACOSX/")
                ]
            if kind:
                check_workbook(path, source, limits)
                return Sniffed(format=kind)
            if len(members) != 1:
                raise DatapilotError(
                    422,
                    "unsupported_archive",
                    f"{source} holds {len(members)} files; a .zip upload must hold exactly one.",
                )
            member = members[0].filename
            sniffed = Sniffed(format="csv", compression="zip", member=member)
            with open_text_source(path, sniffed, limits, source) as inner:
                found = _sniff_text(inner, member, options, limits)
        except zipfile.BadZipFile:
            raise DatapilotError(422, "corrupt_file", f"{source} is a damaged zip file.") from None
        found.compression, found.member = "zip", member
        return found
    if head.startswith(b"\x1f\x8b"):
        inner_name = source[:-3] if source.lower().endswith(".gz") else source
        try:
            with open_text_source(
                path, Sniffed(format="csv", compression="gzip"), limits, source
            ) as gz:
                found = _sniff_text(gz, inner_name, options, limits)
        except (OSError, EOFError, zlib.error):
            raise DatapilotError(422, "corrupt_file", f"{source} is a damaged gzip file.") from None
        found.compression = "gzip"
        return found
    with open(path, "rb") as f:
        return _sniff_text(f, source, options, limits)


def line_too_long(source: str, limit: int) -> DatapilotError:
    """422 ``line_too_long``: a line (or a quoted value spanning lines) over the limit."""
    return DatapilotError(
        422,
        "line_too_long",
        f"{source} has a line (or quoted value) longer than the limit of {limit} bytes.",
        limit=limit,
    )


_LINE_END = re.compile(rb"[\r\n]")


def read_sample(stream, source: str, limits: Limits) -> tuple[bytes, bool]:
    """The first bytes of a text stream, to sniff: (sample, whether the stream goes on).

    :data:`SAMPLE_BYTES` of it, or more when its first line is longer (see
    :func:`read_first_line`).
    """
    head = stream.read(SAMPLE_BYTES)
    return read_first_line(stream, head, len(head) == SAMPLE_BYTES, source, limits)


def read_first_line(
    stream, head: bytes, more: bool, source: str, limits: Limits
) -> tuple[bytes, bool]:
    """``head`` (read from ``stream``, which ``more`` says goes on) read on to the end of
    its first line when it holds none; (sample, whether the stream goes on).

    A first line longer than ``max_line_bytes`` is 422 ``line_too_long``.
    """
    if not more or _LINE_END.search(head):
        return head, more
    wanted = max(limits.max_line_bytes + 1 - len(head), 1)
    rest = stream.read(wanted)
    head += rest
    end = _LINE_END.search(head)
    if (end.start() if end else len(head)) > limits.max_line_bytes:
        raise line_too_long(source, limits.max_line_bytes)
    return head, len(rest) == wanted


def allow_long_csv_fields(limits: Limits) -> None:
    """Let the csv module read a field as long as a line may be.

    Its own limit is 128 KiB and raises ``csv.Error`` beyond; the setting is the
    process's, so it is only ever raised.
    """
    if csv.field_size_limit() < limits.max_line_bytes:
        csv.field_size_limit(limits.max_line_bytes)


def _sniff_text(stream, source: str, options: dict[str, Any], limits: Limits) -> Sniffed:
    head = stream.read(SAMPLE_BYTES)
    if head.startswith(b"PAR1"):
        return Sniffed(format="parquet")
    for magic, what in _EXECUTABLES:
        if head.startswith(magic):
            raise _unsupported(source, what)
    encoding = detect_encoding(head, options.get("encoding"))
    if _looks_binary(head, encoding):
        raise _unsupported(source, "binary content of an unknown kind")
    head, more = read_first_line(stream, head, len(head) == SAMPLE_BYTES, source, limits)
    allow_long_csv_fields(limits)
    text = head.decode(encoding, errors="replace")
    lines = text.splitlines()
    if more and len(lines) > 1:
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


def open_text_source(path: str, sniffed: Sniffed, limits: Limits, source: str):
    """The (decompressed) bytes of a text upload, as a binary stream.

    A .gz or a zip's member is counted as it inflates: reading past ``max_uncompressed``
    bytes or ``max_ratio`` times the compressed bytes raises 413 ``compression_bomb``.
    """
    if sniffed.compression is None:
        return open(path, "rb")  # noqa: SIM115 - the caller closes it
    counted = _CountedFile(open(path, "rb"))  # noqa: SIM115 - closed with the stream
    try:
        if sniffed.compression == "gzip":
            inner = gzip.GzipFile(fileobj=counted, mode="rb")
        else:
            inner = zipfile.ZipFile(counted).open(sniffed.member)
    except BaseException:
        counted.close()
        raise
    return io.BufferedReader(_Inflating(inner, counted, source, limits, sniffed.member))
