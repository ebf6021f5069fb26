"""The base of every data service handler: hub authentication and JSON errors."""

from __future__ import annotations

import asyncio
import ipaddress
import json
from http.client import responses
from typing import Any

from sqlalchemy.exc import SQLAlchemyError
from tornado import gen, httputil, iostream, web
from tornado.ioloop import IOLoop

from datapilot_contract import ERROR_CODES

from ...domain._identity import Caller, OrgContext, org_context
from ...errors import DatapilotError
from ...ratelimit import LIMITED_CALLS
from .._auth import ServiceAuthenticated

# the path parameters that name an audit event's target when the handler sets none
# (never a secret such as an invitation code)
_AUDIT_TARGETS = ("name", "user", "job_id", "invitation_id", "slug")

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


def client_address(request: httputil.HTTPServerRequest) -> str | None:
    """The client's address as configurable-http-proxy saw it: the audit log's ``client``.

    Only the proxy and the hub may connect to the service (``proxy_only``). The proxy
    appends the address of its own peer to ``X-Forwarded-For``, so only that last entry is
    the proxy's word; earlier entries and ``X-Real-Ip`` are whatever the client sent, and
    are ignored (the server runs without tornado's ``xheaders``, which would believe them).
    A call without the header came from the hub itself: its peer address is recorded.

    Parameters
    ----------
    request : tornado.httputil.HTTPServerRequest
        The request.
    """
    forwarded = ",".join(request.headers.get_list("X-Forwarded-For"))
    if not forwarded:
        # over a Unix socket tornado says "0.0.0.0": no address to record then
        return request.remote_ip if request.remote_ip not in ("", "0.0.0.0") else None
    last = forwarded.rsplit(",", 1)[-1].strip()
    try:
        address = ipaddress.ip_address(last)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        # a proxy listening on IPv6 sees IPv4 clients as ::ffff:a.b.c.d
        address = address.ipv4_mapped
    return str(address)


class APIHandler(ServiceAuthenticated, web.RequestHandler):
    """JSON API handler authenticated by JupyterHub tokens or the login cookie.

    Unlike a page handler it never redirects to the login page: an anonymous call is a
    401 JSON error. The error body is the contract's ``{"error", "message", "details"}``,
    which JupyterHub's own ``APIHandler`` does not produce (and which cannot run
    outside the hub process anyway).

    Audit: a handler declares what each mutating method (and each data read) does in
    :attr:`audit_actions`; :meth:`on_finish` records it once, with the caller, the
    organization, the client address and how the call ended (``ok`` or the error code),
    so refused (403) and failed calls are in the log too. The organization is the one
    :meth:`org` resolved: a caller who is not a member (404), not logged in (401) or who
    named no valid organization leaves no event, so strangers cannot fill another
    organization's log. Handlers refine the event with :attr:`audit_target` and
    :attr:`audit_details`.
    """

    #: HTTP method -> audit action (``{"POST": "dataset.import"}``); every POST, PUT,
    #: PATCH and DELETE has one (a test checks it).
    audit_actions: dict[str, str] = {}
    #: the object of the call (default: the ``name``, ``user``, ... path parameter)
    audit_target: str | None = None
    #: more to record (version, format, role...), set by the handler as it learns them
    audit_details: dict[str, Any] | None = None

    _audit_ctx: OrgContext | None = None
    _audited = False
    _error_code: str | None = None

    @property
    def app(self) -> Any:
        """The :class:`~datapilot_hub.service.app.DataService` this handler serves."""
        return self.settings["datapilot"]

    def set_default_headers(self) -> None:
        self.set_header("Content-Type", "application/json")
        self.set_header("Content-Security-Policy", API_CSP)
        self.set_header("Cache-Control", "no-store")

    def caller(self) -> Caller:
        """The authenticated caller, or a 401."""
        model = self.current_user
        if not model:
            raise DatapilotError(
                401,
                "not_authenticated",
                "Log in to JupyterHub, or send 'Authorization: token <JupyterHub API token>'.",
            )
        return Caller.from_hub_model(model)

    def unbound_caller(self) -> Caller:
        """The caller, for calls that belong to no one organization (create one, join one).

        A notebook server's token acts only for its own organization, so it is refused
        here (403).
        """
        caller = self.caller()
        if caller.orgs is not None:
            raise DatapilotError(
                403,
                "server_token",
                "A notebook server's token acts only for its own organization; use a personal"
                " API token (/hub/token) or the browser for this.",
            )
        return caller

    def org(self, slug: str) -> OrgContext:
        """The caller in organization ``slug`` (404 when not a member)."""
        ctx = org_context(self.app.catalog, self.caller(), slug)
        # the organization this call's audit event belongs to
        self._audit_ctx = ctx
        return ctx

    async def check_rate_limit(self, call: str, ctx: OrgContext) -> None:
        """Charge an expensive call to the caller and the organization, or raise 429.

        Call it after the permission check, before any work. A 429 carries
        ``Retry-After`` (seconds) and names the limit in its details.

        Parameters
        ----------
        call : str
            ``ingest``, ``transform``, ``insights`` or ``download``
            (:data:`~datapilot_hub.ratelimit.LIMITED_CALLS`).
        ctx : OrgContext
            The caller in the organization.
        """
        if call not in LIMITED_CALLS:
            raise KeyError(call)
        await self.app.rate_limiter.check(call, ctx.caller.name, ctx.org_id, ctx.slug)

    def on_finish(self) -> None:
        self._record_audit()

    def on_connection_close(self) -> None:
        # a client that goes away mid-download has still read part of the data; the
        # request's log line says so (DataService._log_request), once and quietly
        self.aborted = True
        self._record_audit(aborted=True)

    def _record_audit(self, aborted: bool = False) -> None:
        action = self.audit_actions.get(self.request.method or "")
        ctx = self._audit_ctx
        if action is None or ctx is None or self._audited:
            return
        self._audited = True
        status = self.get_status()
        if aborted:
            outcome = "aborted"
        elif status < 400:
            outcome = "ok"
        else:
            outcome = self._error_code or ERROR_CODES.get(status, "error")
        target = self.audit_target
        if target is None:
            kwargs = self.path_kwargs
            target = next((kwargs[k] for k in _AUDIT_TARGETS if k in kwargs), None)
        record = self.app.audit.record
        if status == 429:
            # refusals come in floods: counted per caller, action and window, not one
            # row each
            record = self.app.audit.count_refusal
        try:
            record(
                ctx.org_id,
                ctx.caller.name,
                action,
                target,
                outcome,
                client_address(self.request),
                {"status": status, **(self.audit_details or {})},
            )
        except Exception:
            # the answer is already sent; losing an event must at least be loud
            self.app.log.exception("Could not record audit event %s in %s", action, ctx.slug)

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
