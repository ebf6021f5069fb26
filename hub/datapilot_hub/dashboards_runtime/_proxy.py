"""Passing a visitor's requests on to a dashboard process on loopback, and back.

Only inside this hub-spawned server: JupyterHub's proxy routes the server's prefix here,
the visitor is authenticated here, and each request goes on to the Voilà or Panel
process of this organization with that process's secret. Headers the visitor sent that
could speak for someone (``Authorization``, cookies, ``Datapilot-*``) are dropped.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from tornado import httpclient, web, websocket
from tornado.httputil import HTTPHeaders

#: request headers never passed on (hop-by-hop, or the visitor's credentials)
_DROP_REQUEST = {
    "host",
    "cookie",
    "authorization",
    "connection",
    "keep-alive",
    "proxy-authorization",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "content-length",
    "sec-websocket-key",
    "sec-websocket-version",
    "sec-websocket-extensions",
    "sec-websocket-protocol",
}
#: response headers not passed back (hop-by-hop, or cookies of the process behind)
_DROP_RESPONSE = {
    "connection",
    "keep-alive",
    "transfer-encoding",
    "content-length",
    "set-cookie",
    "server",
    "content-security-policy",
}


def forward_headers(headers: HTTPHeaders, extra: dict[str, str]) -> HTTPHeaders:
    """The visitor's request headers fit to pass on, plus ``extra`` (which win)."""
    out = HTTPHeaders()
    for name, value in headers.get_all():
        lower = name.lower()
        if lower in _DROP_REQUEST or lower.startswith("datapilot-"):
            continue
        out.add(name, value)
    for name, value in extra.items():
        out[name] = value
    return out


async def proxy_http(
    handler: web.RequestHandler, upstream: str, extra_headers: dict[str, str]
) -> None:
    """Send ``handler``'s request to ``upstream`` and stream the answer back.

    Parameters
    ----------
    handler : RequestHandler
        The visitor's request (already authenticated and allowed).
    upstream : str
        The full URL on loopback.
    extra_headers : dict
        Headers to add (the process's secret, the viewer's token for a render).
    """
    headers_sent = False

    def on_header(line: str) -> None:
        nonlocal headers_sent
        line = line.rstrip("\r\n")
        if line.startswith("HTTP/"):
            parts = line.split(" ", 2)
            handler.set_status(int(parts[1]), parts[2] if len(parts) > 2 else None)
            return
        if not line or ":" not in line:
            return
        name, value = line.split(":", 1)
        if name.strip().lower() in _DROP_RESPONSE:
            return
        # set, not added: the handler's defaults (Content-Type text/html) are replaced
        handler.set_header(name.strip(), value.strip())

    def on_chunk(chunk: bytes) -> None:
        nonlocal headers_sent
        headers_sent = True
        handler.write(chunk)
        handler.flush()

    body = handler.request.body if handler.request.method not in ("GET", "HEAD") else None
    request = httpclient.HTTPRequest(
        upstream,
        method=handler.request.method,
        headers=forward_headers(handler.request.headers, extra_headers),
        body=body,
        allow_nonstandard_methods=True,
        follow_redirects=False,
        header_callback=on_header,
        streaming_callback=on_chunk,
        decompress_response=False,
        request_timeout=600,
        connect_timeout=10,
    )
    try:
        await httpclient.AsyncHTTPClient().fetch(request, raise_error=False)
    except OSError as e:
        if headers_sent:
            return
        raise web.HTTPError(502, f"The dashboard process did not answer: {e}") from None
    # frame-ancestors: a dashboard is not to be framed by other sites
    handler.set_header("Content-Security-Policy", "frame-ancestors 'self'")
    handler.finish()


class WebSocketProxy(websocket.WebSocketHandler):
    """A visitor's WebSocket (widgets' kernel channel, Bokeh's session) to the process.

    The connection behind is opened before the handshake is answered, so the visitor gets
    the subprotocol the process chose (Bokeh's ``bokeh``, or none for Jupyter's legacy
    kernel protocol).
    """

    upstream: websocket.WebSocketClientConnection | None = None

    async def get(self, *args: Any, **kwargs: Any) -> None:
        target = await self.upstream_target()
        if target is None:
            return
        url, extra = target
        headers = forward_headers(self.request.headers, extra)
        # the visitor's origin was checked here (check_origin); the process behind sees a
        # connection from this server, which it would take for a cross-origin one
        headers.pop("Origin", None)
        request = httpclient.HTTPRequest(url, headers=headers, connect_timeout=10)
        requested = self.request.headers.get("Sec-WebSocket-Protocol", "")
        protocols = [p.strip() for p in requested.split(",") if p.strip()]
        try:
            self.upstream = await websocket.websocket_connect(
                request,
                on_message_callback=self._from_upstream,
                subprotocols=self.pick_subprotocols(protocols),
                max_message_size=256 * 1024 * 1024,
            )
        except (OSError, httpclient.HTTPClientError) as e:
            raise web.HTTPError(502, f"The dashboard process refused the connection: {e}") from None
        await super().get(*args, **kwargs)

    async def upstream_target(self) -> tuple[str, dict[str, str]] | None:
        """The loopback URL and extra headers for this connection (the subclass decides)."""
        raise NotImplementedError

    def pick_subprotocols(self, requested: list[str]) -> list[str] | None:
        """Which of the visitor's subprotocols to ask the process for (all by default)."""
        return requested or None

    def select_subprotocol(self, subprotocols: Iterable[str]) -> str | None:
        chosen = self.upstream.selected_subprotocol if self.upstream else None
        # only one the visitor offered (else their browser drops the connection)
        return chosen if chosen in list(subprotocols) else None

    _opened = False
    _early: list[str | bytes | None] | None = None

    def open(self, *args: Any, **kwargs: Any) -> None:
        self._opened = True
        # what the process sent while the visitor's handshake was being answered
        for message in self._early or ():
            self._from_upstream(message)
        self._early = None

    def _from_upstream(self, message: str | bytes | None) -> None:
        if not self._opened:
            self._early = [*(self._early or ()), message]
            return
        if message is None:
            self.close()
            return
        try:
            self.write_message(message, binary=isinstance(message, bytes))
        except websocket.WebSocketClosedError:
            if self.upstream is not None:
                self.upstream.close()

    async def on_message(self, message: str | bytes) -> None:
        if self.upstream is not None and self.allow_message(message):
            await self.upstream.write_message(message, binary=isinstance(message, bytes))

    def allow_message(self, message: str | bytes) -> bool:
        """Whether a visitor's message goes on (a subclass may refuse kinds of messages)."""
        return True

    def on_close(self) -> None:
        if self.upstream is not None:
            self.upstream.close()
            self.upstream = None

    def check_origin(self, origin: str) -> bool:
        # same origin as the page (the hub's public address); the hub's proxy in between
        # keeps the Host header
        return super().check_origin(origin)
