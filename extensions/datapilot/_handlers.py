"""HTTP handlers: forward ``datapilot/api/v1/*`` to the data service; ingest and publish
workspace files.

The handlers hold no data credentials: every call goes to the data service with this server's
JupyterHub token, and the service decides what the server's owner may do.
"""

from __future__ import annotations

import asyncio
import json
import mimetypes
import os
import stat
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import aclosing
from dataclasses import dataclass
from http.client import responses
from pathlib import PurePosixPath
from typing import Any, cast
from urllib.parse import parse_qsl, quote, urlencode

import httpx
from jupyter_server.auth.decorator import authorized
from jupyter_server.auth.utils import HTTP_METHOD_TO_AUTH_ACTION
from jupyter_server.base.handlers import APIHandler
from tornado import web
from tornado.iostream import StreamClosedError

from datapilot_contract import (
    ERROR_CODES,
    ContractError,
    check_dataset_name,
    check_mode,
    check_org_slug,
    publication_body,
)

from ._multipart import FileChangedError, multipart_body

AUTH_RESOURCE = "datapilot"

# The contract's machine codes for the errors this extension raises itself (the data
# service's own errors are passed through untouched), and this extension's own for the
# service being out of reach.
_ERROR_CODES = {
    **ERROR_CODES,
    502: "service_unavailable",
    503: "not_configured",
    504: "service_timeout",
}

# Allow-lists, so cookies and this server's own auth never reach the service (and the
# service's never reach the browser).
_REQUEST_HEADERS = ("Content-Type", "Content-Length", "Accept", "Accept-Encoding")
_RESPONSE_HEADERS = ("Content-Type", "Content-Disposition", "Location", "Retry-After")
# Only where the body is relayed as raw bytes do its encoding and length still hold.
_RAW_BODY_HEADERS = ("Content-Encoding", "Content-Length")

_FORWARDED_METHODS = ("GET", "POST", "PUT", "DELETE")
# Chunks of a streamed upload held while the service reads; waiting for room is the
# back-pressure that keeps memory flat whatever the upload size.
_QUEUED_CHUNKS = 8


class DatapilotAPIError(web.HTTPError):
    """An HTTP error with the API contract's machine code and details.

    Parameters
    ----------
    status_code : int
        HTTP status.
    error : str
        Machine code, e.g. ``"invalid_input"``.
    message : str
        A sentence for a person.
    **details
        What helps the caller fix it, e.g. ``field="name"``.
    """

    def __init__(self, status_code: int, error: str, message: str, **details: Any) -> None:
        # log_message is a %-format for tornado's logger, and messages may quote user input.
        super().__init__(status_code, "%s", message)
        self.error = error
        self.message = message
        self.details = details


def _bad_field(field: str, message: str) -> DatapilotAPIError:
    return DatapilotAPIError(400, "invalid_input", message, field=field)


def _checked(check: Callable[[Any, str], str], value: Any, field: str) -> str:
    """Run one of :mod:`datapilot_contract`'s checks; its refusal becomes a 400."""
    try:
        return check(value, field)
    except ContractError as e:
        raise DatapilotAPIError(400, e.code, e.message, field=e.field) from None


class DatapilotAPIHandler(APIHandler):
    """Base for the Datapilot handlers: settings access, upstream helpers, JSON errors."""

    auth_resource = AUTH_RESOURCE

    @property
    def http_client(self) -> httpx.AsyncClient:
        """The extension's shared HTTP client."""
        client: httpx.AsyncClient = self.settings["datapilot_http_client"]
        return client

    def service_url(self, path: str) -> str:
        """The data service URL of ``api/v1/<path>``.

        Parameters
        ----------
        path : str
            Path under ``api/v1/``, already URL-quoted.

        Raises
        ------
        DatapilotAPIError
            503 when the service URL or the token is not configured.
        """
        base = self.settings.get("datapilot_service_url")
        if not base or not self.settings.get("datapilot_api_token"):
            raise DatapilotAPIError(
                503,
                "not_configured",
                "The Datapilot data service is not configured for this server: set"
                " DATAPILOT_URL and JUPYTERHUB_API_TOKEN (c.DatapilotExtension.service_url"
                " and api_token).",
            )
        return f"{base}api/v1/{path}"

    def service_headers(self) -> dict[str, str]:
        """Headers that authenticate this server to the data service."""
        return {"Authorization": f"token {self.settings['datapilot_api_token']}"}

    def service_failed(self, exc: httpx.TransportError) -> DatapilotAPIError:
        """The error to answer when the data service could not be reached or did not answer.

        Parameters
        ----------
        exc : httpx.TransportError
            What httpx raised.
        """
        where = self.settings.get("datapilot_service_url")
        if isinstance(exc, httpx.TimeoutException):
            return DatapilotAPIError(
                504, "service_timeout", f"The Datapilot data service at {where} timed out."
            )
        return DatapilotAPIError(
            502,
            "service_unavailable",
            f"Could not get an answer from the Datapilot data service at {where}:"
            f" {str(exc) or repr(exc)}",
        )

    def start_response(self, response: httpx.Response, *extra_headers: str) -> str:
        """Copy the service's status and the allow-listed headers; return the content type.

        Parameters
        ----------
        response : httpx.Response
            The data service's response.
        *extra_headers : str
            More header names to copy.
        """
        self.set_status(response.status_code, response.reason_phrase or None)
        for name in _RESPONSE_HEADERS + extra_headers:
            if name in response.headers:
                self.set_header(name, response.headers[name])
        content_type: str = response.headers.get("Content-Type", "application/octet-stream")
        self.set_header("Content-Type", content_type)
        return content_type

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        """Write ``{"error", "message", "details"}``, as the API contract has it.

        ``APIHandler.write_error`` writes ``message`` but no machine code, so this is the
        one place that adds ``error``.
        """
        exc = kwargs.get("exc_info", (None, None, None))[1]
        reply: dict[str, Any] = {
            "error": _ERROR_CODES.get(status_code, "error"),
            "message": responses.get(status_code, "Unknown HTTP Error"),
            "details": {},
        }
        if isinstance(exc, DatapilotAPIError):
            reply.update(error=exc.error, message=exc.message, details=exc.details)
        elif isinstance(exc, web.HTTPError):
            if exc.log_message:
                reply["message"] = exc.log_message % exc.args if exc.args else exc.log_message
        elif exc is not None:
            reply["message"] = "Unhandled error"
        self.log.warning("wrote error: %r", reply["message"])
        self.finish(json.dumps(reply))


def _service_path(path: str) -> str:
    """Quote the decoded API path again for the upstream URL, refusing dot segments."""
    segments = path.split("/")
    if any(segment in (".", "..") for segment in segments):
        raise _bad_field("path", "The API path may not contain '.' or '..' segments.")
    return "/".join(quote(segment, safe="") for segment in segments)


@web.stream_request_body
class ForwardAPIHandler(DatapilotAPIHandler):
    """Forward GET, POST, PUT and DELETE on ``datapilot/api/v1/<path>`` to the data service.

    The request goes to ``<service_url>api/v1/<path>?<query>`` with this server's token
    (a ``token`` query parameter, which would authenticate the caller to this server, is
    dropped). Request and response bodies are streamed in chunks, both ways, so a large
    upload or Parquet download never sits in memory; the service's status, content headers
    and JSON errors come back unchanged.

    The upstream request is opened in :meth:`prepare`, after authentication and
    authorization, because with a streamed body the verb methods only run once the whole
    body has arrived.

    Calls carry the server owner's token: anyone this server lets in (for example a user it
    is shared with) acts with the owner's Datapilot permissions.

    WebSocket: ``orgs/{org}/jobs/{id}/events`` is not forwarded yet. A WebSocket upgrade
    reaching this handler is sent on as a plain GET, and the service's refusal comes back.
    Relaying it needs its own ``WebSocketHandler`` route registered before this catch-all,
    authenticated with ``ws_authenticated`` and opening the upstream socket with
    ``tornado.websocket.websocket_connect`` and the same token.
    """

    _chunks: asyncio.Queue[bytes | None] | None = None
    _upstream: asyncio.Future[httpx.Response] | None = None

    async def prepare(self) -> None:  # type: ignore[override]
        """Authenticate, authorize and open the upstream request before the body arrives."""
        await super().prepare()
        if self.request.method in _FORWARDED_METHODS:
            # Decorated per request with an explicit action: a bare @authorized remembers the
            # action of its first call, so one helper shared by all verbs would check every
            # request as if it were the first one's verb.
            action = HTTP_METHOD_TO_AUTH_ACTION[self.request.method]
            open_upstream = web.authenticated(authorized(action)(type(self)._open_upstream))
            await cast("Awaitable[None]", open_upstream(self, *self.path_args))

    async def _open_upstream(self, path: str) -> None:
        url = self.service_url(_service_path(path))
        segments = path.split("/")
        own = self.settings.get("datapilot_org", "")
        if own and segments[0] == "orgs" and len(segments) > 1 and segments[1] != own:
            # this server's token acts for its organization alone (the service refuses it
            # too): another organization is as invisible here as there
            raise DatapilotAPIError(
                404,
                "not_found",
                f"No organization named {segments[1]!r} is visible to you.",
                organization=segments[1],
            )
        query = [
            (k, v) for k, v in parse_qsl(self.request.query, keep_blank_values=True) if k != "token"
        ]
        if query:
            url += "?" + urlencode(query)

        headers = self.service_headers()
        for name in _REQUEST_HEADERS:
            if name in self.request.headers:
                headers[name] = self.request.headers[name]

        content: AsyncIterator[bytes] | None = None
        length = self.request.headers.get("Content-Length", "")
        if length not in ("", "0") or "Transfer-Encoding" in self.request.headers:
            limit: int = self.settings["datapilot_max_upload_size"]
            if length.isdigit() and int(length) > limit:
                raise DatapilotAPIError(
                    413,
                    "too_large",
                    f"The request body is {int(length)} bytes; the limit is {limit}.",
                    limit=limit,
                )
            # The server-wide max_body_size is sized for buffered requests; this body streams.
            self.request.connection.set_max_body_size(limit)  # type: ignore[union-attr]
            self._chunks = asyncio.Queue(maxsize=_QUEUED_CHUNKS)
            content = self._request_body(self._chunks)

        request = self.http_client.build_request(
            self.request.method or "GET", url, headers=headers, content=content
        )
        self._upstream = asyncio.ensure_future(self.http_client.send(request, stream=True))
        self._upstream.add_done_callback(self._upstream_done)

    @staticmethod
    async def _request_body(chunks: asyncio.Queue[bytes | None]) -> AsyncIterator[bytes]:
        while (chunk := await chunks.get()) is not None:
            yield chunk

    async def data_received(self, chunk: bytes) -> None:
        """Queue a chunk of the request body for the upstream request."""
        if self._chunks is not None and self._upstream is not None and not self._upstream.done():
            await self._chunks.put(chunk)

    def _upstream_done(self, future: asyncio.Future[httpx.Response]) -> None:
        # The service may answer (an error) before reading the whole body. Then nobody reads
        # the queue any more: empty it so a waiting data_received goes on, and later chunks
        # are dropped.
        if self._chunks is not None:
            while not self._chunks.empty():
                self._chunks.get_nowait()

    async def _relay(self) -> None:
        assert self._upstream is not None
        if self._chunks is not None and not self._upstream.done():
            await self._chunks.put(None)
        try:
            response = await self._upstream
        except httpx.TransportError as e:
            raise self.service_failed(e) from e
        try:
            content_type = self.start_response(response, *_RAW_BODY_HEADERS)
            async with aclosing(response.aiter_raw()) as chunks:  # type: ignore[type-var]
                async for chunk in chunks:
                    self.write(chunk)
                    await self.flush()
        except httpx.TransportError as e:
            # The status line is out; only cutting the connection still tells the client
            # that the body is incomplete (finishing would end a chunked body cleanly).
            self.log.warning("Datapilot: %s %s broke off: %r", self.request.method, response.url, e)
            self.request.connection.close()  # type: ignore[union-attr]
            return
        except StreamClosedError:
            return  # the client went away
        finally:
            await response.aclose()
        self.finish(set_content_type=content_type)

    def on_connection_close(self) -> None:
        """Abort the upstream request, so a cut-off upload is not taken as complete."""
        super().on_connection_close()
        self._discard_upstream()

    def on_finish(self) -> None:
        """Release the upstream request if the response did not consume it."""
        self._discard_upstream()

    def _discard_upstream(self) -> None:
        future = self._upstream
        if future is None:
            return
        if not future.done():
            future.cancel()
        elif not future.cancelled() and future.exception() is None:
            # (calling exception() also marks a failure as seen, for asyncio's logging)
            response = future.result()
            if not response.is_closed:
                asyncio.ensure_future(response.aclose())

    @web.authenticated
    @authorized
    async def get(self, path: str) -> None:
        """Forward a GET."""
        await self._relay()

    @web.authenticated
    @authorized
    async def post(self, path: str) -> None:
        """Forward a POST."""
        await self._relay()

    @web.authenticated
    @authorized
    async def put(self, path: str) -> None:
        """Forward a PUT."""
        await self._relay()

    @web.authenticated
    @authorized
    async def delete(self, path: str) -> None:
        """Forward a DELETE."""
        await self._relay()


@dataclass(frozen=True)
class IngestRequest:
    """A validated ``POST datapilot/api/v1/ingest`` body."""

    path: str
    name: str
    mode: str
    options: dict[str, Any] | None
    org: str

    @classmethod
    def from_json(cls, body: Any, default_org: str) -> IngestRequest:
        """Check the fields of a request body.

        Parameters
        ----------
        body : Any
            The decoded JSON body.
        default_org : str
            The organization to use when the body names none.

        Raises
        ------
        DatapilotAPIError
            400 naming the first bad field.
        """
        if not isinstance(body, dict):
            raise _bad_field("body", "The request body must be a JSON object.")
        unknown = sorted(set(body) - {"path", "name", "mode", "options", "org"})
        if unknown:
            raise _bad_field(unknown[0], f"Unknown field {unknown[0]!r}.")

        path = body.get("path")
        if not isinstance(path, str) or not path:
            raise _bad_field("path", "'path' is required: a file path relative to the server root.")
        name = _checked(check_dataset_name, body.get("name"), "name")
        mode = _checked(check_mode, body.get("mode", "create"), "mode")
        options = body.get("options")
        if options is not None and not isinstance(options, dict):
            raise _bad_field("options", "'options' must be a JSON object.")
        org = body.get("org") or default_org
        if not org:
            raise _bad_field("org", "'org' is required: this server has no DATAPILOT_ORG.")
        org = _checked(check_org_slug, org, "org")
        return cls(path=path, name=name, mode=mode, options=options, org=org)


class IngestAPIHandler(DatapilotAPIHandler):
    """``POST datapilot/api/v1/ingest``: send a file of this server's workspace to the service.

    The body is ``{"path", "name", "mode"?, "options"?, "org"?}``; the file is streamed as the
    multipart upload of ``POST orgs/{org}/datasets``, and the service's answer (202 with the
    job) is returned as it is.
    """

    def _root_dir(self) -> str:
        # the contents manager's root is what the file browser shows, so paths match it
        root: str = getattr(self.contents_manager, "root_dir", None) or self.settings.get(
            "server_root_dir", os.getcwd()
        )
        return os.path.abspath(os.path.expanduser(root))

    def json_body(self) -> Any:
        """The request's JSON body (400 when it is not UTF-8 JSON)."""
        try:
            return self.get_json_body()
        except UnicodeDecodeError as e:
            raise _bad_field("body", "The request body must be UTF-8 JSON.") from e

    def _workspace_file(self, path: str) -> tuple[str, os.stat_result]:
        """Resolve a path relative to the server root, like the contents API does.

        Symlinks are followed, as in the file browser; ``..`` and absolute paths are refused.
        """
        pure = PurePosixPath(path)
        if pure.is_absolute() or os.path.isabs(path):
            raise _bad_field("path", "'path' must be relative to the server root.")
        if ".." in pure.parts:
            raise _bad_field("path", "'path' may not contain '..'.")
        root = self._root_dir()
        os_path = os.path.abspath(os.path.join(root, *pure.parts))
        if os.path.commonpath([root, os_path]) != root:
            raise _bad_field("path", "'path' must stay inside the server root.")
        try:
            st = os.stat(os_path)
        except (FileNotFoundError, NotADirectoryError) as e:
            raise DatapilotAPIError(
                404, "not_found", f"No file {path!r} in the workspace.", path=path
            ) from e
        if not stat.S_ISREG(st.st_mode):
            raise _bad_field("path", f"{path!r} is not a file.")
        return os_path, st

    @web.authenticated
    @authorized
    async def post(self) -> None:
        """Validate the request, then stream the file to the data service."""
        body = self.json_body()
        ingest = IngestRequest.from_json(body, default_org=self.settings.get("datapilot_org", ""))
        url = self.service_url(f"orgs/{ingest.org}/datasets")
        os_path, st = self._workspace_file(ingest.path)
        limit: int = self.settings["datapilot_max_upload_size"]
        if st.st_size > limit:
            raise DatapilotAPIError(
                413,
                "too_large",
                f"{ingest.path!r} is {st.st_size} bytes; the limit is {limit}.",
                limit=limit,
            )

        fields = {"name": ingest.name, "mode": ingest.mode}
        if ingest.options is not None:
            fields["options"] = json.dumps(ingest.options)
        filename = os.path.basename(os_path)
        with open(os_path, "rb") as file:
            content_type, length, content = multipart_body(
                fields,
                file_field="file",
                filename=filename,
                content_type=mimetypes.guess_type(filename)[0] or "application/octet-stream",
                file=file,
                size=st.st_size,
            )
            headers = self.service_headers()
            headers.update({"Content-Type": content_type, "Content-Length": str(length)})
            try:
                response = await self.http_client.post(url, content=content, headers=headers)
            except httpx.TransportError as e:
                raise self.service_failed(e) from e
            except FileChangedError as e:
                raise DatapilotAPIError(409, "file_changed", str(e), path=ingest.path) from e
        self.finish(response.content, set_content_type=self.start_response(response))


# the contract's codes of a publication's refusals that are not a 400
_PUBLISH_STATUS = {"not_found": 404, "too_large": 413, "too_many_files": 413}


class PublishAPIHandler(IngestAPIHandler):
    """``POST datapilot/api/v1/publish``: publish a notebook of this server's workspace.

    The body is ``{"path", "kind", "title"?, "slug"?, "description"?, "files"?, "pins"?,
    "org"?}``: the notebook at ``path`` (relative to the server root), the files named in
    ``files`` (relative to the notebook's folder) and the files its code quotes that exist
    next to it are sent as ``POST orgs/{org}/dashboards`` with this server's token; the
    service's answer (201 with the dashboard) is returned as it is.
    """

    @web.authenticated
    @authorized
    async def post(self) -> None:
        """Read the notebook and its files, then send them to the data service."""
        body = self.json_body()
        if not isinstance(body, dict):
            raise _bad_field("body", "The request body must be a JSON object.")
        known = {"path", "kind", "title", "slug", "description", "files", "pins", "org"}
        unknown = sorted(set(body) - known)
        if unknown:
            raise _bad_field(unknown[0], f"Unknown field {unknown[0]!r}.")
        org = body.get("org") or self.settings.get("datapilot_org", "")
        if not org:
            raise _bad_field("org", "'org' is required: this server has no DATAPILOT_ORG.")
        org = _checked(check_org_slug, org, "org")
        path = body.get("path")
        if not isinstance(path, str) or not path:
            raise _bad_field("path", "'path' is required: a notebook relative to the server root.")
        # the same checks as the ingestion's: relative, no '..', inside the root
        self._workspace_file(path)
        url = self.service_url(f"orgs/{org}/dashboards")
        loop = asyncio.get_running_loop()
        try:
            payload = await loop.run_in_executor(
                None,
                lambda: publication_body(
                    self._root_dir(),
                    path,
                    kind=body.get("kind"),
                    title=body.get("title"),
                    slug=body.get("slug"),
                    description=body.get("description", ""),
                    files=body.get("files"),
                    pins=body.get("pins"),
                    max_bytes=self.settings["datapilot_max_publish_size"],
                ),
            )
        except ContractError as e:
            raise DatapilotAPIError(
                _PUBLISH_STATUS.get(e.code, 400), e.code, e.message, field=e.field
            ) from None
        headers = self.service_headers()
        try:
            response = await self.http_client.post(url, json=payload, headers=headers)
        except httpx.TransportError as e:
            raise self.service_failed(e) from e
        self.finish(response.content, set_content_type=self.start_response(response))


default_handlers = [
    (r"/datapilot/api/v1/ingest", IngestAPIHandler),
    (r"/datapilot/api/v1/publish", PublishAPIHandler),
    (r"/datapilot/api/v1/(.*)", ForwardAPIHandler),
]
