"""The storage gateway: job-scoped file reads and writes for an external scheduler's workers.

See :mod:`datapilot_hub.domain.transform._gateway` for why it exists. The caller is no
JupyterHub user: the capability in ``X-Datapilot-Capability`` is the whole authorization,
and every refusal is the same 404 (the gateway is not there at all when the service
runs its own LocalCluster).
"""

from __future__ import annotations

import asyncio
import os
import re
import threading
from typing import Any

from tornado import web

from ...domain.transform._gateway import Grant
from ...errors import DatapilotError
from .base import APIHandler, declared_size, too_large

HEADER = "X-Datapilot-Capability"
_RANGE = re.compile(r"bytes=(\d+)-(\d*)")


@web.stream_request_body
class GatewayFilesAPIHandler(APIHandler):
    """GET/HEAD ``/gateway/files?path=`` reads a granted file (byte ranges allowed); PUT
    writes one under the granted output directory (streamed, then renamed: a file is
    there whole or not at all), DELETE removes one there.

    Not audited per file: the job that issued the capability is the organization's
    audited call (``dataset.transform``), and a capability belongs to no user.
    """

    own_body_limit = True
    audit_actions = {"PUT": "gateway.write", "DELETE": "gateway.remove"}
    _grant: Grant | None = None
    _sink: Any = None
    _tmp: str | None = None
    _written = 0
    _body_error: DatapilotError | None = None

    def _authorize(self, write: bool) -> tuple[Grant, str]:
        gateway = self.app.storage_gateway
        if gateway is None:
            raise DatapilotError(404, "not_found", "No storage gateway: Dask runs embedded.")
        return gateway.authorize(self.request.headers.get(HEADER), self.query("path"), write)

    async def prepare(self) -> None:
        if self.request.method != "PUT":
            if (declared_size(self.request.headers) or 0) > self.app.max_body_size:
                raise too_large(self.app.max_body_size)
            return
        try:
            _, path = self._authorize(write=True)
            limit = self.app.max_upload_size
            if (declared_size(self.request.headers) or 0) > limit:
                raise too_large(limit)
        except DatapilotError as e:
            self._body_error = e
            self.request.connection.set_max_body_size(self.app.max_upload_size + 65536)
            return
        self.request.connection.set_max_body_size(limit)
        self._path = path
        self._tmp = f"{path}.{os.getpid()}-{threading.get_ident()}-{id(self)}.upload"
        self._sink = self.app.storage.open(self._tmp, "wb")

    def data_received(self, chunk: bytes) -> None:
        if self._sink is not None:
            self._sink.write(chunk)
            self._written += len(chunk)

    def _discard(self) -> None:
        if self._sink is not None:
            self._sink.close()
            self._sink = None
            self.app.storage.remove(self._tmp)

    def on_connection_close(self) -> None:
        # a worker killed mid-write leaves no file, not even a temporary one
        self._discard()
        super().on_connection_close()

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        self._discard()
        super().write_error(status_code, **kwargs)

    async def put(self) -> None:
        if self._body_error is not None:
            raise self._body_error
        sink, self._sink = self._sink, None
        loop = asyncio.get_running_loop()
        try:
            await loop.run_in_executor(None, sink.close)
            storage = self.app.storage
            await loop.run_in_executor(
                None, storage.fs.mv, storage.full_path(self._tmp), storage.full_path(self._path)
            )
        except BaseException:
            self.app.storage.remove(self._tmp)
            raise
        self.write_json({"path": self._path, "bytes": self._written}, 201)

    async def delete(self) -> None:
        _, path = self._authorize(write=True)
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(None, self.app.storage.remove, path)
        self.set_status(204)
        self.finish()

    async def head(self) -> None:
        _, path = self._authorize(write=False)
        size = await self._size(path)
        self.set_header("Content-Type", "application/octet-stream")
        self.set_header("Content-Length", str(size))
        self.set_header("Accept-Ranges", "bytes")
        self.finish()

    async def get(self) -> None:
        _, path = self._authorize(write=False)
        size = await self._size(path)
        start, end = 0, size - 1
        found = _RANGE.fullmatch(self.request.headers.get("Range", "").strip())
        if found:
            start = int(found.group(1))
            end = min(int(found.group(2)) if found.group(2) else size - 1, size - 1)
            if start > end:
                raise DatapilotError(
                    400, "invalid_input", "The range is past the file's end.", field="Range"
                )
            self.set_status(206)
            self.set_header("Content-Range", f"bytes {start}-{end}/{size}")
        self.set_header("Content-Type", "application/octet-stream")
        self.set_header("Accept-Ranges", "bytes")
        loop = asyncio.get_running_loop()
        left = end - start + 1
        with self.app.storage.open(path, "rb") as f:
            await loop.run_in_executor(None, f.seek, start)
            while left > 0:
                chunk = await loop.run_in_executor(None, f.read, min(left, 1 << 20))
                if not chunk:
                    break
                left -= len(chunk)
                self.write(chunk)
                await self.flush()
        self.finish()

    async def _size(self, path: str) -> int:
        storage = self.app.storage
        loop = asyncio.get_running_loop()
        try:
            return int(await loop.run_in_executor(None, storage.fs.size, storage.full_path(path)))
        except FileNotFoundError:
            raise DatapilotError(404, "not_found", "No such file.", path=path) from None


default_handlers = [
    (r"/gateway/files", GatewayFilesAPIHandler),
]
