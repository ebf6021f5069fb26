"""Stream a file as a multipart/form-data body without holding it in memory."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator, Mapping
from typing import BinaryIO

CHUNK_SIZE = 1024 * 1024


def _quote(value: str) -> str:
    # The escaping browsers use for form-data names and filenames (WHATWG HTML).
    return value.replace('"', "%22").replace("\r", "%0D").replace("\n", "%0A")


def multipart_body(
    fields: Mapping[str, str],
    *,
    file_field: str,
    filename: str,
    content_type: str,
    file: BinaryIO,
    size: int,
) -> tuple[str, int, AsyncIterator[bytes]]:
    """Encode text fields and one file part as a streamed multipart/form-data body.

    Parameters
    ----------
    fields : Mapping[str, str]
        Text fields, sent before the file.
    file_field : str
        Name of the file's form field.
    filename : str
        File name announced in the file part.
    content_type : str
        Content type of the file part.
    file : BinaryIO
        An open binary file, read from its current position in chunks off the event loop.
    size : int
        Number of bytes of ``file`` to send; the body length is computed from it.

    Returns
    -------
    tuple[str, int, AsyncIterator[bytes]]
        The ``Content-Type`` header value (with its boundary), the ``Content-Length`` and
        the body chunks.
    """
    boundary = secrets.token_hex(16)
    head = b"".join(
        f'--{boundary}\r\nContent-Disposition: form-data; name="{_quote(name)}"\r\n\r\n'.encode()
        + value.encode()
        + b"\r\n"
        for name, value in fields.items()
    )
    head += (
        f"--{boundary}\r\n"
        f'Content-Disposition: form-data; name="{_quote(file_field)}";'
        f' filename="{_quote(filename)}"\r\n'
        f"Content-Type: {content_type}\r\n\r\n"
    ).encode()
    tail = f"\r\n--{boundary}--\r\n".encode()

    async def chunks() -> AsyncIterator[bytes]:
        yield head
        remaining = size
        while remaining > 0:
            chunk = await asyncio.to_thread(file.read, min(CHUNK_SIZE, remaining))
            if not chunk:
                raise FileChangedError(f"{filename} got shorter while it was being sent")
            remaining -= len(chunk)
            yield chunk
        yield tail

    return f"multipart/form-data; boundary={boundary}", len(head) + size + len(tail), chunks()


class FileChangedError(OSError):
    """The file ended before the announced number of bytes was sent."""
