"""The base of every data service handler: hub authentication and JSON errors."""

from __future__ import annotations

import asyncio
import json
import logging
from http.client import responses
from typing import Any

from sqlalchemy.exc import SQLAlchemyError
from tornado import gen, httputil, iostream, web
from tornado.ioloop import IOLoop

from datapilot_contract import ERROR_CODES

from ...errors import DatapilotError
from .._requests import AuditedHandler, client_address  # noqa: F401 - re-exported

API_CSP = "frame-ancestors 'none'; default-src 'none'"

log = logging.getLogger(__name__)


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def loads_strict(raw: bytes | str) -> Any:
    """Parse JSON text as JSON says it, or raise :class:`ValueError` saying what is wrong.

    Python's parser also takes ``NaN`` and ``Infinity``, strings with a lone surrogate
    (``"\\ud800"``, which is no text: storing it fails), and recurses as deep as the
    nesting goes (a deep enough body raises :class:`RecursionError`): each is refused
    here, so that a handler answers a 400 instead of a 500.

    Parameters
    ----------
    raw : bytes or str
        The JSON text (bytes in UTF-8, UTF-16 or UTF-32).
    """
    try:
        value = json.loads(raw, parse_constant=_no_constant)
        # the lone surrogates show when the value is written out as UTF-8
        json.dumps(value, ensure_ascii=False).encode()
    except RecursionError:
        raise ValueError("is nested too deeply") from None
    except UnicodeEncodeError:
        raise ValueError("holds a string that is not Unicode text (a lone surrogate)") from None
    except ValueError:
        raise ValueError("is not valid JSON") from None
    return value


def allowed_methods(handler_class: type[web.RequestHandler]) -> list[str]:
    """The HTTP methods a handler class serves (what a 405 lists in ``Allow``).

    Parameters
    ----------
    handler_class : type
        A :class:`tornado.web.RequestHandler` subclass.
    """
    return [
        method
        for method in handler_class.SUPPORTED_METHODS
        if getattr(handler_class, method.lower()) is not getattr(web.RequestHandler, method.lower())
    ]


class JSONErrors:
    """``write_error`` for API handlers: the contract's JSON error body.

    A :class:`~datapilot_hub.errors.DatapilotError` gives its code, message and details;
    tornado's own errors (a method the path does not serve, bad Unicode in a path) get
    the code of their status. A 405 says in ``Allow`` which methods the path serves
    (RFC 9110), and a 429 when to try again (``Retry-After``).
    """

    _error_code: str | None = None

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        exc = kwargs.get("exc_info", (None, None, None))[1]
        if isinstance(exc, SQLAlchemyError):
            log.error("Catalog error", exc_info=kwargs["exc_info"])
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
            allowed = allowed_methods(type(self))
            body["message"] = f"{self.request.method} is not allowed on this path."
            body["details"] = {"allowed": allowed}
            self.set_header("Allow", ", ".join(allowed))
        self._error_code = body["error"]
        self.set_header("Content-Type", "application/json")
        self.set_header("Content-Security-Policy", API_CSP)
        self.finish(json.dumps(body))


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


class APIHandler(JSONErrors, AuditedHandler):
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

    def query(self, name: str, default: str | None = None) -> str | None:
        """A query argument as sent (tornado would strip its spaces: ``" 7"`` is no whole
        number to the OpenAPI document); tornado still blanks control characters.

        Parameters
        ----------
        name : str
            The argument.
        default : str, optional
            What a missing argument gives.
        """
        return self.get_query_argument(name, default, strip=False)

    def json_body(self) -> dict[str, Any]:
        """The request body as a JSON object, or a 400 saying what is wrong with it.

        An empty body reads as ``{}``.
        """
        try:
            body = loads_strict(self.request.body or b"{}")
        except ValueError as e:
            raise DatapilotError(400, "invalid_json", f"The request body {e}.") from None
        if not isinstance(body, dict):
            raise DatapilotError(400, "invalid_json", "The request body must be a JSON object.")
        return body

    def write_json(self, model: Any, status: int = 200) -> None:
        """Finish with ``model`` as JSON."""
        self.set_status(status)
        self.finish(json.dumps(model))


class NotFoundAPIHandler(APIHandler):
    """Any path under the API that no handler answers."""

    def prepare(self) -> None:
        raise DatapilotError(
            404,
            "no_such_endpoint",
            f"No API endpoint at {self.request.path}.",
            path=self.request.path,
        )
