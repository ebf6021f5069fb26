"""Request bodies: a small limit on every handler, and refusals that reach the client.

Tornado holds a request's whole body in memory before the handler runs (before the caller
is authenticated), and answers a body over the server's ``max_body_size`` by closing the
connection. Closing a connection whose body is still arriving makes the kernel reset it,
and the proxy then answers the client with its own HTML 503 instead of ours.

So here every handler gets a small limit (``max_body_size``): a body over it is read and
dropped, never kept, and answered with the API's JSON 413 once it has arrived, on a
connection that stays usable. What is read and dropped is bounded too
(``max_drain_size``, the upload limit): a body declared larger is answered at once and
its connection closed, which is the only way not to read it. That close lingers
(:func:`~.handlers.base.answer_and_close`): what still arrives after the answer is read
and dropped until the proxy, done with the answer, closes, so that no reset overtakes
the answer.

A handler that streams its body (the upload) sets ``own_body_limit`` and bounds its body
itself, after authenticating the caller. A handler whose JSON bodies are larger by nature
(publishing a notebook) names another setting in ``body_limit_setting``.
"""

from __future__ import annotations

import logging
from typing import Any

from tornado import httputil, web

from .handlers.base import APIHandler, answer_and_close, declared_size, too_large

log = logging.getLogger(__name__)


class BodyTooLargeAPIHandler(APIHandler):
    """Answers 413 ``too_large`` for a request whose body was over the limit (and dropped)."""

    def prepare(self) -> None:
        raise too_large(getattr(self.request, "body_limit", self.settings["max_body_size"]))


class _LimitedBody(httputil.HTTPMessageDelegate):
    """A handler's delegate that passes the body on only while it is within the limit."""

    def __init__(
        self,
        app: web.Application,
        request: httputil.HTTPServerRequest,
        delegate,
        setting: str = "max_body_size",
    ):
        self.app = app
        self.request = request
        self.delegate = delegate
        self.limit: int = app.settings[setting]
        # what the 413 names as the limit
        request.body_limit = self.limit  # type: ignore[attr-defined]
        self.received = 0
        self.refused = False

    def headers_received(self, start_line, headers) -> Any:
        connection = self.request.connection
        size = declared_size(headers)
        drain = max(self.app.settings["max_drain_size"], self.limit)
        if size is not None and size > drain:
            # too much to read and drop: answer now, and close
            self.refused = True
            log.warning(
                "413 %s %s: a body of %d bytes, not read",
                self.request.method,
                self.request.uri,
                size,
            )
            timeout = self.app.settings["body_timeout"]
            answer_and_close(connection.detach(), too_large(self.limit), drain, timeout)
            return None
        # this delegate counts: the connection only bounds what is read and dropped
        connection.set_max_body_size(drain)
        if size is not None and size > self.limit:
            self.refused = True
            return None
        return self.delegate.headers_received(start_line, headers)

    def data_received(self, chunk: bytes) -> Any:
        if self.refused:
            return None
        self.received += len(chunk)
        if self.received > self.limit:
            # (a chunked body declares no size): drop what the handler's delegate holds
            self.refused = True
            self.delegate.on_connection_close()
            return None
        return self.delegate.data_received(chunk)

    def finish(self) -> None:
        if self.refused:
            self._answer()
        else:
            self.delegate.finish()

    def on_connection_close(self) -> None:
        if not self.refused:
            self.delegate.on_connection_close()

    def _answer(self) -> None:
        self.request.body = b""
        # a handler of its own answers, so the 413 is the API's JSON error like any other
        answer = web.Application.get_handler_delegate(
            self.app, self.request, BodyTooLargeAPIHandler
        )
        answer.finish()


class BodyLimitedApplication(web.Application):
    """The service's tornado application: every handler's body is bounded.

    Settings: ``max_body_size`` (every handler but those with ``own_body_limit`` or a
    ``body_limit_setting`` of their own),
    ``max_drain_size`` (the most of a refused body that is read and dropped) and
    ``body_timeout`` (how long a lingering close reads, see
    :func:`~.handlers.base.answer_and_close`).
    """

    def get_handler_delegate(
        self,
        request: httputil.HTTPServerRequest,
        target_class: type[web.RequestHandler],
        target_kwargs: dict[str, Any] | None = None,
        path_args: list[bytes] | None = None,
        path_kwargs: dict[str, bytes] | None = None,
    ) -> httputil.HTTPMessageDelegate:
        delegate = super().get_handler_delegate(
            request, target_class, target_kwargs, path_args, path_kwargs
        )
        if getattr(target_class, "own_body_limit", False):
            return delegate
        setting = getattr(target_class, "body_limit_setting", "max_body_size")
        return _LimitedBody(self, request, delegate, setting)
