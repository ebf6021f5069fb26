"""What every handler of the data service shares, API and pages alike: who calls, in which
organization, and the audit event the call leaves."""

from __future__ import annotations

import ipaddress
from typing import Any

from tornado import httputil, web

from datapilot_contract import ERROR_CODES

from ..domain._identity import Caller, OrgContext, org_context
from ..errors import DatapilotError
from ..ratelimit import LIMITED_CALLS
from ._auth import ServiceAuthenticated

# the path parameters that name an audit event's target when the handler sets none
# (never a secret such as an invitation code)
_AUDIT_TARGETS = ("name", "user", "job_id", "invitation_id", "slug")


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


class AuditedHandler(ServiceAuthenticated, web.RequestHandler):
    """A request of a JupyterHub user or token, in an organization, audited once.

    The base of the JSON API (:class:`~.handlers.base.APIHandler`) and of the HTML pages
    (:class:`~.pages._base.PageHandler`): both resolve the caller and the organization the
    same way, and a page's form does what the API call does under the same audit action.

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
                {
                    "status": status,
                    # a viewer's read through a dashboard says which one
                    **({"dashboard": ctx.caller.dashboard} if ctx.caller.dashboard else {}),
                    **(self.audit_details or {}),
                },
            )
        except Exception:
            # the answer is already sent; losing an event must at least be loud
            self.app.log.exception("Could not record audit event %s in %s", action, ctx.slug)
