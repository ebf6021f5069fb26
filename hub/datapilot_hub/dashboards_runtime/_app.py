"""The runtime's tornado app: who may come in, which paths go where, starting and culling."""

from __future__ import annotations

import asyncio
import html
import json
import logging
import os
import re
import shutil
import signal
import struct
import sys
import time
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlparse

import httpx
from jupyterhub.services.auth import HubOAuth, HubOAuthCallbackHandler, HubOAuthenticated
from jupyterhub.utils import url_path_join
from tornado import httpclient, web
from tornado.ioloop import IOLoop, PeriodicCallback
from traitlets import Bool, Float, Integer, Unicode, default
from traitlets.config import Application

from datapilot_contract import DASHBOARD_ENV, DASHBOARD_PINS_ENV, VIEWER_TOKEN_HEADER

from ._private import make_undumpable
from ._processes import DashboardProcess, PanelProcess, VoilaProcess
from ._proxy import WebSocketProxy, proxy_http
from ._snapshots import DashboardMissing, LocalSnapshot, SnapshotStore

log = logging.getLogger("datapilot_hub.dashboards_runtime")

#: the kernel message types a viewer's browser may send (Voilà's own list; the proxy
#: checks them too, so an ``execute_request`` never even reaches Voilà)
ALLOWED_KERNEL_MESSAGES = frozenset(
    {
        "comm_open",
        "comm_close",
        "comm_msg",
        "comm_info_request",
        "kernel_info_request",
        "shutdown_request",
    }
)
_KERNEL_ID = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
#: Voilà paths a viewer's page needs besides the render itself (assets and widgets'
#: channel); everything else (contents, kernels, tree, the pre-started kernels' query
#: socket) is refused
_VOILA_ASSETS = re.compile(r"voila/(static|templates|api/themes|labextensions|files)/.*|static/.*")
#: the page reads its own kernel's model (name, state) before it connects: GET only, no
#: interrupt, restart or shutdown through it
_VOILA_KERNEL = re.compile(rf"api/kernels/{_KERNEL_ID}")
#: the first part of Panel's asset paths (Bokeh's and Panel's scripts and styles)
_PANEL_ASSETS = frozenset({"static", "panel_dist", "components"})
_VOILA_SHUTDOWN = re.compile(rf"voila/api/shutdown/{_KERNEL_ID}")


class DashboardRuntime(Application):
    """The dashboard server of one organization (see :mod:`datapilot_hub.dashboards_runtime`)."""

    name = "datapilot-dashboards"
    description = "Serve an organization's published dashboards (Voilà and Panel) for its members."

    org = Unicode(
        help="""The organization whose dashboards this server serves.

        Defaults to ``$DATAPILOT_ORG`` (set by the spawner).

        Example::

            c.DashboardRuntime.org = "acme"
        """,
    ).tag(config=True)

    @default("org")
    def _default_org(self) -> str:
        return os.environ.get("DATAPILOT_ORG", "")

    datapilot_url = Unicode(
        help="""The data service's URL (``.../services/datapilot/``).

        Defaults to ``$DATAPILOT_URL`` (set by the spawner).

        Example::

            c.DashboardRuntime.datapilot_url = "http://127.0.0.1:8000/services/datapilot/"
        """,
    ).tag(config=True)

    @default("datapilot_url")
    def _default_datapilot_url(self) -> str:
        return os.environ.get("DATAPILOT_URL", "")

    home = Unicode(
        help="""Where snapshots and logs are kept: the account's home.

        Defaults to ``$HOME``.

        Example::

            c.DashboardRuntime.home = "/srv/datapilot/homes/dp-acme__dash"
        """,
    ).tag(config=True)

    @default("home")
    def _default_home(self) -> str:
        return os.environ.get("HOME") or os.getcwd()

    pool_size = Integer(
        help="""Pre-started Voilà kernels per dashboard (0: a new kernel per opening).

        A pre-started kernel runs its notebook up to its first data call and waits there
        for its viewer, so an opening waits only for the data and the cells after it.
        Each costs a kernel's memory while nobody looks. Defaults to
        ``$DATAPILOT_DASHBOARD_POOL_SIZE``, else 1.

        Example::

            c.DashboardRuntime.pool_size = 2
        """,
    ).tag(config=True)

    @default("pool_size")
    def _default_pool_size(self) -> int:
        return int(os.environ.get("DATAPILOT_DASHBOARD_POOL_SIZE", "1"))

    cull_idle = Float(
        help="""Seconds without a visitor after which a dashboard process is stopped.

        It starts again at the next opening. Defaults to
        ``$DATAPILOT_DASHBOARD_CULL_IDLE``, else 1800; 0 keeps them running.

        Example::

            c.DashboardRuntime.cull_idle = 600
        """,
    ).tag(config=True)

    @default("cull_idle")
    def _default_cull_idle(self) -> float:
        return float(os.environ.get("DATAPILOT_DASHBOARD_CULL_IDLE", "1800"))

    max_requests = Integer(
        256,
        help="""Requests passed on to the dashboard processes at the same time.

        Each opening streams its page until the notebook's last cell ran; more wait.

        Example::

            c.DashboardRuntime.max_requests = 512
        """,
    ).tag(config=True)

    show_tracebacks = Bool(
        True,
        help="""Show a failing cell's error on the dashboard (else Voilà's generic notice).

        Example::

            c.DashboardRuntime.show_tracebacks = False
        """,
    ).tag(config=True)

    def initialize(self, argv: list[str] | None = None) -> None:
        """Parse the command line; set up the snapshots' store and the processes."""
        super().initialize(argv)
        logging.basicConfig(level=logging.INFO, format="[%(levelname)s %(asctime)s] %(message)s")
        self.prefix = os.environ["JUPYTERHUB_SERVICE_PREFIX"]
        self.bind = urlparse(os.environ["JUPYTERHUB_SERVICE_URL"])
        home = Path(self.home)
        self.root = home / "snapshots"
        self.logs = home / "logs"
        self.logs.mkdir(mode=0o700, exist_ok=True)
        # every dashboard kernel puts HoloViews' scripts in the page (no CDN)
        startup = home / ".ipython" / "profile_default" / "startup"
        startup.mkdir(mode=0o700, parents=True, exist_ok=True)
        (startup / "00-datapilot-dashboards.py").write_text(
            "import datapilot_kernel._inline_charts  # noqa: F401\n"
        )
        # every dashboard kernel starts not dumpable: no dashboard reads another's memory
        spec = home / ".local" / "share" / "jupyter" / "kernels" / "python3"
        spec.mkdir(mode=0o700, parents=True, exist_ok=True)
        argv = [sys.executable, "-m", "datapilot_hub.dashboards_runtime._private"]
        (spec / "kernel.json").write_text(
            json.dumps(
                {
                    "argv": [*argv, "-f", "{connection_file}"],
                    "display_name": "Python 3 (dashboard)",
                    "language": "python",
                    "metadata": {"debugger": False},
                }
            )
        )
        self.store = SnapshotStore(
            self.root,
            url_path_join(self.datapilot_url, "api/v1/"),
            os.environ["JUPYTERHUB_API_TOKEN"],
            self.org,
        )
        self.voila = VoilaProcess(
            self.root,
            url_path_join(self.prefix, "v/"),
            self.logs,
            pool_size=self.pool_size,
            show_tracebacks=self.show_tracebacks,
        )
        self.panel = PanelProcess(self.root, url_path_join(self.prefix, "p/"), self.logs)
        # slug -> the version its process serves (a newer one restarts the process)
        self.served: dict[str, LocalSnapshot] = {}
        self._lock = asyncio.Lock()

    def process(self, kind: str) -> DashboardProcess:
        """The process of a kind of dashboard."""
        return self.voila if kind == "voila" else self.panel

    async def open(self, slug: str) -> LocalSnapshot:
        """The current version of ``slug``, with its process running it.

        A version the process does not serve yet (a new dashboard for Panel, a new version
        for either) restarts the process first, with only current versions on disk.
        """
        snap = await self.store.current(slug)
        async with self._lock:
            served = self.served.get(slug)
            proc = self.process(snap.kind)
            if served is None or served.version != snap.version or served.kind != snap.kind:
                # a new version: Voilà pre-starts its kernels and stops those of the old
                # one (whose folder goes; pages open on it keep their kernels); Panel
                # learns its apps at start, so it restarts
                self.served[slug] = snap
                if snap.kind == "voila":
                    await self.voila.fill_pool(snap.relative)
                if served is not None and served.kind == "voila":
                    await self.voila.drain_pool(served.relative)
                self._prune(slug, snap)
                if snap.kind == "panel":
                    self.panel.apps = {
                        s.slug: s.relative for s in self.served.values() if s.kind == "panel"
                    }
                    await self.panel.stop()
            await proc.ensure()
        return snap

    def _prune(self, slug: str, snap: LocalSnapshot) -> None:
        """Remove the versions of ``slug`` older than ``snap`` (never read again)."""
        for folder in (self.root / slug).glob("v*"):
            if folder.is_dir() and folder.name != f"v{snap.version}":
                shutil.rmtree(folder, ignore_errors=True)

    async def mint(self, handler: web.RequestHandler, slug: str) -> dict[str, Any]:
        """A viewer token for the visitor of ``handler`` (their OAuth token proves who)."""
        token = handler.hub_auth.get_token(handler)
        url = url_path_join(
            self.datapilot_url, "api/v1/orgs", quote(self.org), "dashboards", slug, "viewer-token"
        )
        async with httpx.AsyncClient(timeout=30) as client:
            resp = await client.post(url, headers={"Authorization": f"token {token}"})
        if resp.status_code != 201:
            try:
                message = resp.json().get("message")
            except ValueError:
                message = None
            raise web.HTTPError(
                resp.status_code if resp.status_code in (401, 403, 404) else 502,
                message or f"The data service refused to open {slug!r} ({resp.status_code}).",
            )
        return resp.json()

    def cull(self) -> None:
        """Stop the processes nobody used for ``cull_idle`` seconds."""
        if self.cull_idle <= 0:
            return
        now = time.monotonic()
        for proc in (self.voila, self.panel):
            if proc.running and now - proc.last_used > self.cull_idle:
                log.info("Stopping idle %s", proc.kind)
                asyncio.ensure_future(proc.stop())

    def make_app(self) -> web.Application:
        """The tornado application under the server's prefix."""
        # the singleton: JupyterHub's OAuth callback handler uses HubOAuth.instance()
        hub_auth = HubOAuth.instance(
            api_token=os.environ["JUPYTERHUB_API_TOKEN"],
            # a revoked share (a member who left) stops working within seconds
            cache_max_age=10,
        )
        p = self.prefix
        handlers = [
            (url_path_join(p, "oauth_callback"), HubOAuthCallbackHandler),
            (url_path_join(p, r"d/(?P<slug>[^/]+)/?"), DashboardHandler),
            (url_path_join(p, r"d/(?P<slug>[^/]+)/log"), DashboardLogHandler),
            (url_path_join(p, r"v/api/kernels/(?P<kernel>[^/]+)/channels"), VoilaChannelHandler),
            (url_path_join(p, r"v/(?P<path>.*)"), VoilaHandler),
            (url_path_join(p, r"p/(?P<path>.*)/ws"), PanelSocketHandler),
            (url_path_join(p, r"p/(?P<path>.*)"), PanelHandler),
            (p.rstrip("/") + r"/?", RootHandler),
        ]
        return web.Application(
            handlers,
            hub_auth=hub_auth,
            runtime=self,
            cookie_secret=os.urandom(32),
            websocket_max_message_size=256 * 1024 * 1024,
        )

    def start(self) -> None:
        """Listen on the address JupyterHub gave, until stopped."""
        # every opening streams its page through one client: tornado's default of 10 at
        # a time would queue the eleventh viewer behind the others' pages
        httpclient.AsyncHTTPClient.configure(None, max_clients=self.max_requests)
        app = self.make_app()
        app.listen(self.bind.port, self.bind.hostname or "127.0.0.1", xheaders=False)
        PeriodicCallback(self.cull, 30_000).start()
        log.info("Dashboards of %s at %s", self.org, self.prefix)
        loop = IOLoop.current()

        # JupyterHub stops the server with SIGTERM: the Voilà and Panel processes (sessions
        # of their own) and their kernels go with it
        loop.asyncio_loop.add_signal_handler(signal.SIGTERM, loop.stop)
        try:
            loop.start()
        finally:
            for proc in (self.voila, self.panel):
                loop.run_sync(proc.stop)


class RuntimeHandler(HubOAuthenticated, web.RequestHandler):
    """A visitor's request: only those the server is shared with get past the login."""

    @property
    def hub_auth(self) -> HubOAuth:
        return self.settings["hub_auth"]

    @property
    def runtime(self) -> DashboardRuntime:
        return self.settings["runtime"]

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        # a plain page for people (the dashboard's own errors show in the dashboard)
        exc = kwargs.get("exc_info", (None, None, None))[1]
        message = getattr(exc, "log_message", None) or self._reason
        self.set_header("Content-Type", "text/html; charset=utf-8")
        self.finish(
            "<!doctype html><meta charset=utf-8><title>Dashboard</title>"
            f"<h1>{status_code}: {html.escape(self._reason)}</h1><p>{html.escape(message)}</p>"
        )


class RootHandler(RuntimeHandler):
    """The server's root: JupyterHub checks it answers; people go to the gallery."""

    def get(self) -> None:
        gallery = url_path_join(self.runtime.datapilot_url, "orgs", self.runtime.org, "")
        self.redirect(urlparse(gallery).path)


class DashboardHandler(RuntimeHandler):
    """GET d/<slug>/: open the current version (fetched and started as needed).

    A Voilà dashboard is rendered right here (one redirect less for every opening: its
    page's links are absolute); a Panel app is redirected to, its path being its route.
    """

    @web.authenticated
    async def get(self, slug: str) -> None:
        runtime = self.runtime
        # a Voilà dashboard served already: its version and the viewer's token are asked
        # for at once (a token is minted only for a page that uses it: each is audited as
        # an opening, and a Panel app's page mints its own)
        known = runtime.served.get(slug)
        minting = None
        if known is not None and known.kind == "voila":
            minting = asyncio.ensure_future(runtime.mint(self, slug))
        try:
            snap = await runtime.open(slug)
        except (DashboardMissing, RuntimeError, TimeoutError) as e:
            if minting is not None:
                minting.cancel()
            if isinstance(e, DashboardMissing):
                raise web.HTTPError(404, f"There is no published dashboard {slug!r}.") from None
            raise web.HTTPError(
                503, f"The dashboard could not be started: {e}. Its publisher sees its log."
            ) from None
        if snap.kind != "voila":
            self.redirect(url_path_join(runtime.prefix, "p", quote(snap.slug)))
            return
        grant = await (minting or runtime.mint(self, slug))
        await render_voila(self, snap, grant)


async def render_voila(handler: RuntimeHandler, snap: LocalSnapshot, grant: dict[str, Any]) -> None:
    """Stream Voilà's render of ``snap`` to ``handler``'s visitor, who reads with ``grant``."""
    runtime = handler.runtime
    headers = {
        **runtime.voila.auth_headers(),
        VIEWER_TOKEN_HEADER: grant["token"],
        "Datapilot-Dashboard": snap.environment.get(DASHBOARD_ENV, ""),
        "Datapilot-Dashboard-Pins": snap.environment.get(DASHBOARD_PINS_ENV, "{}"),
    }
    path = "voila/render/" + quote(snap.relative)
    await proxy_http(handler, runtime.voila.url + path + _query(handler), headers)


class DashboardLogHandler(RuntimeHandler):
    """GET d/<slug>/log: the dashboard process's log, for those who may publish."""

    @web.authenticated
    async def get(self, slug: str) -> None:
        runtime = self.runtime
        grant = await runtime.mint(self, slug)
        if "dashboards:publish" not in grant.get("permissions", ()):
            raise web.HTTPError(403, "Only those who may publish dashboards see their logs.")
        snap = runtime.served.get(slug) or await runtime.store.current(slug)
        path = runtime.process(snap.kind).log_path
        try:
            text = path.read_text(errors="replace")[-100_000:]
        except FileNotFoundError:
            text = "(no log yet)"
        self.set_header("Content-Type", "text/plain; charset=utf-8")
        self.finish(text)


class VoilaHandler(RuntimeHandler):
    """Voilà's pages and assets; the render of a current version with its viewer's token."""

    @web.authenticated
    async def get(self, path: str) -> None:
        runtime = self.runtime
        if path.startswith("voila/render/"):
            # the render is d/<slug>/'s: an old version, another file, an earlier link
            slug = path[len("voila/render/") :].split("/", 1)[0]
            self.redirect(url_path_join(runtime.prefix, "d", quote(slug), ""))
            return
        if not (_VOILA_ASSETS.fullmatch(path) or _VOILA_KERNEL.fullmatch(path)):
            raise web.HTTPError(404, "Not a dashboard's page.")
        await runtime.voila.ensure()
        await proxy_http(
            self, runtime.voila.url + quote(path) + _query(self), runtime.voila.auth_headers()
        )

    @web.authenticated
    async def post(self, path: str) -> None:
        # the page shuts its kernel down when closed; nothing else is posted
        if not _VOILA_SHUTDOWN.fullmatch(path):
            raise web.HTTPError(404, "Not a dashboard's page.")
        runtime = self.runtime
        await proxy_http(self, runtime.voila.url + path, runtime.voila.auth_headers())

    def check_xsrf_cookie(self) -> None:
        # the shutdown POST carries Voilà's own XSRF token, for Voilà; this server's login
        # cookie rides on no form of its own
        return


class VoilaChannelHandler(RuntimeHandler, WebSocketProxy):
    """The widgets' kernel channel: only widget messages go on (no ``execute_request``)."""

    async def upstream_target(self) -> tuple[str, dict[str, str]] | None:
        if not self.current_user:
            raise web.HTTPError(403, "Log in to open dashboards.")
        kernel = self.path_kwargs["kernel"]
        if not re.fullmatch(_KERNEL_ID, kernel):
            raise web.HTTPError(404)
        runtime = self.runtime
        url = runtime.voila.url.replace("http", "ws", 1) + f"api/kernels/{kernel}/channels"
        return url + _query(self), runtime.voila.auth_headers()

    def pick_subprotocols(self, requested: list[str]) -> list[str] | None:
        # Jupyter's legacy JSON framing, which the message check below reads
        return None

    def allow_message(self, message: str | bytes) -> bool:
        kind = _message_type(message)
        if kind not in ALLOWED_KERNEL_MESSAGES:
            log.warning("Refused a %r message from %s", kind, self.current_user.get("name"))
            return False
        self.runtime.voila.last_used = time.monotonic()
        return True


class PanelHandler(RuntimeHandler):
    """A Panel app's page (with its viewer's token) and its assets."""

    @web.authenticated
    async def get(self, path: str) -> None:
        runtime = self.runtime
        extra = runtime.panel.auth_headers()
        first = path.split("/", 1)[0]
        snap = runtime.served.get(first)
        if snap is not None and snap.kind == "panel" and path.rstrip("/") == first:
            grant = await runtime.mint(self, first)
            extra.update(
                {
                    VIEWER_TOKEN_HEADER: grant["token"],
                    "Datapilot-Dashboard": snap.environment.get(DASHBOARD_ENV, ""),
                    "Datapilot-Dashboard-Pins": snap.environment.get(DASHBOARD_PINS_ENV, "{}"),
                }
            )
        elif first not in _PANEL_ASSETS and (snap is None or snap.kind != "panel"):
            raise web.HTTPError(404, "Not a dashboard's page.")
        await runtime.panel.ensure()
        await proxy_http(self, runtime.panel.url + quote(path) + _query(self), extra)


class PanelSocketHandler(RuntimeHandler, WebSocketProxy):
    """A Panel session's Bokeh WebSocket."""

    async def upstream_target(self) -> tuple[str, dict[str, str]] | None:
        if not self.current_user:
            raise web.HTTPError(403, "Log in to open dashboards.")
        runtime = self.runtime
        runtime.panel.last_used = time.monotonic()
        path = self.path_kwargs["path"]
        url = runtime.panel.url.replace("http", "ws", 1) + quote(path) + "/ws"
        return url + _query(self), runtime.panel.auth_headers()


def _query(handler: web.RequestHandler) -> str:
    return f"?{handler.request.query}" if handler.request.query else ""


def _message_type(message: str | bytes) -> str | None:
    """The ``msg_type`` of a Jupyter kernel message in the legacy WebSocket framing.

    Text: the JSON message. Binary: a count of parts and their offsets (32-bit,
    big-endian), the first part the JSON message, the others its buffers.
    """
    try:
        if isinstance(message, bytes):
            (count,) = struct.unpack("!I", message[:4])
            offsets = struct.unpack(f"!{count}I", message[4 : 4 + 4 * count])
            end = offsets[1] if count > 1 else len(message)
            message = message[offsets[0] : end].decode()
        body = json.loads(message)
        return body.get("header", {}).get("msg_type") or body.get("msg_type")
    except (ValueError, struct.error, UnicodeDecodeError, AttributeError):
        return None


def main(argv: list[str] | None = None) -> None:
    """Start the runtime (``python -m datapilot_hub.dashboards_runtime``)."""
    # its hub token is in its environment: out of the dashboards' reach
    make_undumpable()
    app = DashboardRuntime.instance()
    app.initialize(argv)
    app.start()
