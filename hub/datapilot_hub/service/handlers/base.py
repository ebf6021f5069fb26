"""The base of every data service handler: hub authentication and JSON errors."""

from __future__ import annotations

import asyncio
import json
from http.client import responses
from typing import Any

from sqlalchemy.exc import SQLAlchemyError
from tornado import gen, httputil, iostream, web
from tornado.ioloop import IOLoop

from datapilot_contract import ERROR_CODES

from ...errors import DatapilotError
from .._requests import AuditedHandler, client_address  # noqa: F401 - re-exported

API_CSP = "frame-ancestors 'none'; default-src 'none'"


def declared_size(headers: httputil.HTTPHeaders) -> int | None:
    """The body size a request's Content-Length declares (None: none, or not a number).

    Tornado refuses a malformed or contradictory Content-Length itself.
    """
    value = headers.get("Content-Length", "").split(",")[0].strip()
    return int(value) if value.isdigit() else None


# the lingering closes under way (a task nothing else holds could be collected)
_lingering: set[asyncio.Task] = set()


def answer_and_close(
    stream: iostream.IOStream, error: DatapilotError, drain: int, timeout: float
) -> None:
    """Answer ``error`` on a detached connection whose request body will not be read,
    then close it gently.

    Closing a socket that still has unread data makes the kernel reset the connection;
    the proxy, still sending the body, then loses the answer and sends its own HTML
    503. So the answer (``Connection: close``) is written and what still arrives is
    read and dropped until the proxy, done with the answer, closes its side, or up to
    ``drain`` bytes or ``timeout`` seconds. (Ending our side first would not do: the
    proxy's next write of the body would fail before it has passed the answer on.)

    Parameters
    ----------
    stream : IOStream
        The connection, detached from tornado's HTTP handling (``detach()``).
    error : DatapilotError
        The refusal.
    drain : int
        The most bytes read and dropped.
    timeout : float
        The most seconds spent reading them.
    """
    body = json.dumps(error.to_json()).encode()
    head = (
        f"HTTP/1.1 {error.status} {responses.get(error.status, 'Error')}\r\n"
        "Content-Type: application/json\r\n"
        f"Content-Security-Policy: {API_CSP}\r\n"
        "Cache-Control: no-store\r\n"
        f"Content-Length: {len(body)}\r\n"
        "Connection: close\r\n\r\n"
    )
    task = asyncio.ensure_future(_linger(stream, head.encode() + body, drain, timeout))
    _lingering.add(task)
    task.add_done_callback(_lingering.discard)


async def _linger(stream: iostream.IOStream, answer: bytes, drain: int, timeout: float) -> None:
    deadline = IOLoop.current().time() + timeout
    dropped = 0
    try:
        await stream.write(answer)
        while dropped < drain:
            chunk = await gen.with_timeout(
                deadline,
                stream.read_bytes(65536, partial=True),
                quiet_exceptions=iostream.StreamClosedError,
            )
            dropped += len(chunk)
    except (iostream.StreamClosedError, TimeoutError, OSError):
        pass
    finally:
        stream.close()


def too_large(limit: int) -> DatapilotError:
    """413 ``too_large``: a request body over ``limit`` bytes."""
    return DatapilotError(
        413,
        "too_large",
        f"The request body is larger than the limit of {limit} bytes.",
        limit=limit,
    )


class APIHandler(AuditedHandler):
    """JSON API handler authenticated by JupyterHub tokens or the login cookie.

    Unlike a page handler it never redirects to the login page: an anonymous call is a
    401 JSON error. The error body is the contract's ``{"error", "message", "details"}``,
    which JupyterHub's own ``APIHandler`` does not produce (and which cannot run
    outside the hub process anyway). Caller, organization and audit: see
    :class:`~datapilot_hub.service._requests.AuditedHandler`.
    """

    def set_default_headers(self) -> None:
        self.set_header("Content-Type", "application/json")
        self.set_header("Content-Security-Policy", API_CSP)
        self.set_header("Cache-Control", "no-store")

    def log_exception(self, typ, value, tb) -> None:
        if isinstance(value, DatapilotError) and value.status == 429:
            # refusals come in floods: the audit log counts them per caller and window,
            # not one warning each
            return
        super().log_exception(typ, value, tb)

    def refuse_unread(self, error: web.HTTPError, drain: int) -> None:
        """Answer ``error`` without reading the request's body, and close the connection.

        For a body too large to be read and dropped: see :func:`answer_and_close`. The
        call is logged and audited like any other.

        Parameters
        ----------
        error : HTTPError
            The refusal (a :class:`DatapilotError`, or tornado's, made into one).
        drain : int
            The most bytes read and dropped while the connection closes.
        """
        if not isinstance(error, DatapilotError):
            code = ERROR_CODES.get(error.status_code, "error")
            error = DatapilotError(error.status_code, code, error.log_message or code)
        self.set_status(error.status)
        self._error_code = error.code
        answer_and_close(self.detach(), error, drain, self.settings["body_timeout"])
        # tornado neither logs nor finishes a detached handler
        self.application.log_request(self)
        self.on_finish()

    def json_body(self) -> dict[str, Any]:
        """The request body as a JSON object, or a 400 saying what is wrong with it."""
        try:
            body = json.loads(self.request.body or b"{}")
        except ValueError:
            raise DatapilotError(
                400, "invalid_json", "The request body is not valid JSON."
            ) from None
        if not isinstance(body, dict):
            raise DatapilotError(400, "invalid_json", "The request body must be a JSON object.")
        return body

    def write_json(self, model: Any, status: int = 200) -> None:
        """Finish with ``model`` as JSON."""
        self.set_status(status)
        self.finish(json.dumps(model))

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        exc = kwargs.get("exc_info", (None, None, None))[1]
        if isinstance(exc, SQLAlchemyError):
            self.app.log.error("Catalog error", exc_info=kwargs["exc_info"])
        if isinstance(exc, DatapilotError):
            body = exc.to_json()
            if status_code == 429 and "retry_after" in exc.details:
                # set here: send_error clears the headers set before the error
                self.set_header("Retry-After", str(exc.details["retry_after"]))
        elif isinstance(exc, web.HTTPError) and exc.log_message:
            body = {
                "error": ERROR_CODES.get(status_code, "error"),
                "message": exc.log_message % exc.args if exc.args else exc.log_message,
                "details": {},
            }
        else:
            body = {
                "error": ERROR_CODES.get(status_code, "internal_error"),
                "message": responses.get(status_code, "Unknown error"),
                "details": {},
            }
        if status_code == 405:
            body["message"] = f"{self.request.method} is not allowed on this path."
        self._error_code = body["error"]
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps(body))


class NotFoundAPIHandler(APIHandler):
    """Any path under the API that no handler answers."""

    def prepare(self) -> None:
        raise DatapilotError(
            404,
            "no_such_endpoint",
            f"No API endpoint at {self.request.path}.",
            path=self.request.path,
        )
