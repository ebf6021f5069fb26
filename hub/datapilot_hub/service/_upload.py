"""Receive a multipart/form-data upload as it streams in: files to disk, fields to memory."""

from __future__ import annotations

import os
import tempfile
from typing import Any

from python_multipart.exceptions import MultipartParseError
from python_multipart.multipart import MAX_BOUNDARY_LENGTH, MultipartParser, parse_options_header

from ..errors import DatapilotError, bad_request

#: bytes of one text field (``name``, ``mode``, ``options``)
MAX_FIELD_SIZE = 64 * 1024
#: bytes of all the text fields of one upload together: fields are held in memory
MAX_FIELDS_SIZE = 256 * 1024
#: parts of one upload: ``file``, ``name``, ``mode``, ``options``, and room for a client's
#: extras (python-multipart bounds each part's headers: 8 of at most 4 KiB)
MAX_PARTS = 16


def multipart_boundary(content_type: str) -> bytes:
    """The boundary of a ``multipart/form-data`` Content-Type; 415 for any other type."""
    ctype, params = parse_options_header(content_type)
    if ctype != b"multipart/form-data":
        raise DatapilotError(
            415,
            "unsupported_media_type",
            "Upload with Content-Type multipart/form-data (a 'file' part plus 'name' and 'mode').",
            content_type=content_type,
        )
    boundary = params.get(b"boundary")
    if not boundary:
        raise bad_request("Content-Type", "The multipart Content-Type has no boundary.")
    if len(boundary) > MAX_BOUNDARY_LENGTH:
        raise bad_request(
            "Content-Type", f"The multipart boundary is longer than {MAX_BOUNDARY_LENGTH} bytes."
        )
    return boundary


class MultipartReceiver:
    """Parse a multipart body fed chunk by chunk.

    File parts go to temporary files in ``tmpdir`` (never to memory); other parts are
    small text fields, held in memory: their number (:data:`MAX_PARTS`), each one's size
    (:data:`MAX_FIELD_SIZE`) and their total (:data:`MAX_FIELDS_SIZE`) are bounded. A
    malformed body or a part over a bound raises :class:`DatapilotError` (400 or 413)
    from :meth:`feed`.

    Parameters
    ----------
    boundary : bytes
        The multipart boundary.
    tmpdir : str
        Where uploaded files are written.
    max_file_size : int
        Bytes one file part may have before the upload is refused with 413.
    """

    def __init__(self, boundary: bytes, tmpdir: str, max_file_size: int) -> None:
        self.tmpdir = tmpdir
        self.max_file_size = max_file_size
        self.fields: dict[str, str] = {}
        self.files: dict[str, dict[str, Any]] = {}
        self.parts = 0
        self.fields_size = 0
        self._headers: dict[bytes, bytes] = {}
        self._header_field = b""
        self._header_value = b""
        self._part: dict[str, Any] | None = None
        self._parser = MultipartParser(
            boundary,
            {
                "on_part_begin": self._on_part_begin,
                "on_header_field": self._on_header_field,
                "on_header_value": self._on_header_value,
                "on_header_end": self._on_header_end,
                "on_headers_finished": self._on_headers_finished,
                "on_part_data": self._on_part_data,
                "on_part_end": self._on_part_end,
            },
        )

    def _on_part_begin(self) -> None:
        self._headers = {}

    def _on_header_field(self, data: bytes, start: int, end: int) -> None:
        self._header_field += data[start:end]

    def _on_header_value(self, data: bytes, start: int, end: int) -> None:
        self._header_value += data[start:end]

    def _on_header_end(self) -> None:
        self._headers[self._header_field.lower()] = self._header_value
        self._header_field = self._header_value = b""

    def _on_headers_finished(self) -> None:
        self.parts += 1
        if self.parts > MAX_PARTS:
            raise DatapilotError(
                413,
                "too_many_parts",
                f"The upload has more than {MAX_PARTS} parts; send 'file', 'name', 'mode'"
                " and 'options'.",
                limit=MAX_PARTS,
            )
        _, params = parse_options_header(self._headers.get(b"content-disposition", b""))
        name = params.get(b"name", b"").decode("utf-8", "replace")
        filename = params.get(b"filename")
        part: dict[str, Any] = {"name": name, "size": 0}
        if filename is not None:
            fd, path = tempfile.mkstemp(prefix="upload-", dir=self.tmpdir)
            part.update(
                filename=os.path.basename(filename.decode("utf-8", "replace").replace("\\", "/")),
                content_type=self._headers.get(b"content-type", b"").decode("latin-1"),
                path=path,
                fh=os.fdopen(fd, "wb"),
            )
        else:
            part["value"] = bytearray()
        self._part = part

    def _on_part_data(self, data: bytes, start: int, end: int) -> None:
        part = self._part
        part["size"] += end - start
        if "fh" in part:
            if part["size"] > self.max_file_size:
                raise DatapilotError(
                    413,
                    "too_large",
                    f"The file is larger than the limit of {self.max_file_size} bytes.",
                    limit=self.max_file_size,
                )
            part["fh"].write(memoryview(data)[start:end])
        else:
            if part["size"] > MAX_FIELD_SIZE:
                raise bad_request(part["name"], f"Field {part['name']!r} is too long.")
            self.fields_size += end - start
            if self.fields_size > MAX_FIELDS_SIZE:
                raise DatapilotError(
                    413,
                    "fields_too_large",
                    f"The upload's fields are larger than {MAX_FIELDS_SIZE} bytes together.",
                    limit=MAX_FIELDS_SIZE,
                )
            part["value"] += data[start:end]

    def _on_part_end(self) -> None:
        part, self._part = self._part, None
        if "fh" in part:
            part.pop("fh").close()
            if part["name"] in self.files:
                os.unlink(part["path"])
                raise bad_request(part["name"], f"Only one {part['name']!r} file per upload.")
            self.files[part["name"]] = part
        else:
            try:
                self.fields[part["name"]] = part["value"].decode("utf-8")
            except UnicodeDecodeError:
                raise bad_request(part["name"], f"Field {part['name']!r} is not UTF-8.") from None

    def feed(self, chunk: bytes) -> None:
        """Parse the next chunk of the body."""
        try:
            self._parser.write(chunk)
        except MultipartParseError as e:
            raise _malformed(e) from None

    def finish(self) -> None:
        """The body is complete; a truncated body is a 400."""
        try:
            self._parser.finalize()
        except MultipartParseError as e:
            raise _malformed(e) from None
        if self._part is not None:
            raise bad_request("file", "The multipart body ended in the middle of a part.")

    def take_file(self, name: str) -> dict[str, Any] | None:
        """Hand the file part ``name`` over to the caller (who must delete it)."""
        return self.files.pop(name, None)

    def cleanup(self) -> None:
        """Delete every temporary file not taken."""
        if self._part is not None and "fh" in self._part:
            self._part["fh"].close()
            self.files[self._part["name"] + "#partial"] = self._part
        for part in self.files.values():
            try:
                os.unlink(part["path"])
            except FileNotFoundError:
                pass
        self.files.clear()


def _malformed(error: MultipartParseError) -> DatapilotError:
    return DatapilotError(
        400,
        "invalid_multipart",
        f"The multipart body is malformed: {error}.",
    )
