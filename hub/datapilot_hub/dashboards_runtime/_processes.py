"""The dashboard processes of one organization: Voilà and ``panel serve``, on demand."""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
import shutil
import signal
import socket
import sys
import time
from pathlib import Path
from urllib.parse import quote

from tornado import httpclient

from datapilot_contract import VIEWER_TOKEN_HEADER

log = logging.getLogger(__name__)

#: the request headers Voilà copies into a new kernel's environment (as HTTP_<NAME>)
KERNEL_HEADERS = (VIEWER_TOKEN_HEADER, "Datapilot-Dashboard", "Datapilot-Dashboard-Pins")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def clean_environment(extra: dict[str, str] | None = None) -> dict[str, str]:
    """The environment of a dashboard process: none of this server's credentials.

    The server's own hub token (``JUPYTERHUB_API_TOKEN``) and OAuth settings stay here; the
    processes and their kernels get the data service's address and the organization, and
    read data only with the viewer's token handed to each dashboard.
    """
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("JUPYTERHUB_", "JPY_", "DATAPILOT_RUNTIME_"))
        and k not in ("DATAPILOT_TOKEN",)
    }
    # Bokeh's and Panel's scripts come with the page, not from their CDNs: the viewers'
    # browsers (and servers on closed networks) may reach nothing but this hub
    env.update({"BOKEH_RESOURCES": "inline", "PANEL_INLINE": "1"})
    env.update(extra or {})
    return env


class DashboardProcess:
    """One child process serving dashboards on a loopback port with a secret of its own.

    Parameters
    ----------
    kind : str
        ``voila`` or ``panel``.
    root : Path
        The snapshots' folder.
    prefix : str
        The public URL prefix the process serves under (``/user/<u>/dashboards/voila/``).
    log_dir : Path
        Where its log goes (``<kind>.log``), for the publishers.
    """

    def __init__(self, kind: str, root: Path, prefix: str, log_dir: Path) -> None:
        self.kind = kind
        self.root = root
        self.prefix = prefix
        self.log_path = log_dir / f"{kind}.log"
        self.secret = secrets.token_hex(24)
        self.port = 0
        self.proc: asyncio.subprocess.Process | None = None
        self.last_used = time.monotonic()
        self._starting: asyncio.Task | None = None

    @property
    def url(self) -> str:
        """Its address on loopback, with the public prefix."""
        return f"http://127.0.0.1:{self.port}{self.prefix}"

    @property
    def running(self) -> bool:
        """Whether the process is alive."""
        return self.proc is not None and self.proc.returncode is None

    def command(self) -> list[str]:
        """The command line (no secret on it: /proc/<pid>/cmdline is readable by all)."""
        raise NotImplementedError

    def environment(self) -> dict[str, str]:
        """Its environment (the secret goes here)."""
        return clean_environment()

    def auth_headers(self) -> dict[str, str]:
        """What a request passed on carries to be let in."""
        return {"Authorization": f"token {self.secret}"}

    async def ensure(self) -> None:
        """Start the process unless it runs, and wait until it answers."""
        self.last_used = time.monotonic()
        if self.running and self._starting is None:
            return
        if self._starting is None or self._starting.done() and not self.running:
            self._starting = asyncio.ensure_future(self._start())
        try:
            await asyncio.shield(self._starting)
        finally:
            if self._starting is not None and self._starting.done():
                self._starting = None

    async def _start(self) -> None:
        self.port = _free_port()
        self.log_path.parent.mkdir(mode=0o700, exist_ok=True)
        logfile = open(self.log_path, "ab")  # noqa: SIM115 - the child keeps it
        logfile.write(f"\n--- starting {self.kind} at {time.ctime()}\n".encode())
        logfile.flush()
        self.proc = await asyncio.create_subprocess_exec(
            *self.command(),
            cwd=str(self.root),
            env=self.environment(),
            stdout=logfile,
            stderr=logfile,
            start_new_session=True,
        )
        logfile.close()
        deadline = time.monotonic() + 120
        client = httpclient.AsyncHTTPClient()
        while time.monotonic() < deadline:
            if self.proc.returncode is not None:
                raise RuntimeError(f"{self.kind} exited ({self.proc.returncode}); see its log")
            try:
                await client.fetch(self.ready_url(), headers=self.auth_headers(), request_timeout=2)
                log.info("%s is up on port %d", self.kind, self.port)
                return
            except httpclient.HTTPClientError as e:
                if e.code < 500 and e.code != 599:
                    return  # it answers
            except OSError:
                pass
            await asyncio.sleep(0.1)
        await self.stop()
        raise TimeoutError(f"{self.kind} did not start in time")

    def ready_url(self) -> str:
        """A URL that answers once the process serves."""
        return self.url

    async def stop(self) -> None:
        """Stop the process and its children (kernels), if it runs."""
        proc, self.proc = self.proc, None
        if proc is None or proc.returncode is not None:
            return
        try:
            os.killpg(proc.pid, signal.SIGTERM)
        except ProcessLookupError:
            return
        try:
            await asyncio.wait_for(proc.wait(), 10)
        except TimeoutError:
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            await proc.wait()


class VoilaProcess(DashboardProcess):
    """Voilà standalone over the snapshots' folder.

    Its kernel manager accepts only the widget messages (``comm_*``, ``comm_info_request``,
    ``kernel_info_request``, ``shutdown_request``): an ``execute_request`` sent through the
    widgets' WebSocket is refused by Voilà itself. Sources are stripped. With
    ``pool_size`` > 0 it keeps that many pre-started kernels per dashboard, each running
    its notebook up to its first data call, where it waits for its viewer's token
    (:func:`datapilot_kernel.adopt_dashboard_request`).

    Parameters
    ----------
    pool_size : int
        Pre-started kernels per dashboard (0: a new kernel per opening).
    show_tracebacks : bool
        Show a failing cell's error to the viewer.
    """

    def __init__(self, *args, pool_size: int = 1, show_tracebacks: bool = True, **kw) -> None:
        super().__init__("voila", *args, **kw)
        self.pool_size = pool_size
        self.show_tracebacks = show_tracebacks

    def command(self) -> list[str]:
        headers = ",".join(f'"{h}"' for h in KERNEL_HEADERS)
        args = [
            sys.executable,
            "-m",
            "datapilot_hub.dashboards_runtime._voila",
            str(self.root),
            "--no-browser",
            "--Voila.ip=127.0.0.1",
            f"--Voila.port={self.port}",
            f"--Voila.base_url={self.prefix}",
            "--VoilaConfiguration.strip_sources=True",
            f"--VoilaConfiguration.show_tracebacks={self.show_tracebacks}",
            f"--VoilaConfiguration.http_header_envs=[{headers}]",
            # replies are never waited for with one unbounded poll (_kernel_client)
            "--AsyncKernelManager.client_class="
            "datapilot_hub.dashboards_runtime._kernel_client.SteppedKernelClient",
            # the page config would list the server's paths; nothing a viewer needs
            "--VoilaConfiguration.file_allowlist=['.*\\.(png|jpg|jpeg|gif|svg|csv|json)']",
        ]
        if self.pool_size > 0:
            # (only current versions are on disk when it starts: each gets its pool; a
            # later one gets it through fill_pool)
            args += [
                "--VoilaConfiguration.preheat_kernel=True",
                f"--VoilaConfiguration.default_pool_size={self.pool_size}",
                # refill soon after a kernel is taken (not at once: its opening goes first)
                "--VoilaKernelManager.fill_delay=3",
            ]
        return args

    def environment(self) -> dict[str, str]:
        return clean_environment({"DATAPILOT_RUNTIME_VOILA_TOKEN": self.secret})

    async def fill_pool(self, notebook: str) -> None:
        """Pre-start the kernels of a notebook put on disk after Voilà started."""
        await self._pool("PUT", notebook)

    async def drain_pool(self, notebook: str) -> None:
        """Stop the pre-started kernels of a notebook (pages already open keep theirs)."""
        await self._pool("DELETE", notebook)

    async def _pool(self, method: str, notebook: str) -> None:
        if self.pool_size <= 0 or not self.running:
            return
        try:
            await httpclient.AsyncHTTPClient().fetch(
                f"{self.url}datapilot/pools/{quote(notebook)}",
                method=method,
                headers=self.auth_headers(),
                body=b"" if method == "PUT" else None,
                request_timeout=120,
            )
        except (httpclient.HTTPClientError, OSError) as e:
            # the pool only saves time: an opening without it starts its own kernel
            log.warning("Voila refused %s of the pool of %s: %s", method, notebook, e)

    def ready_url(self) -> str:
        return f"{self.url}voila/static/"


class PanelProcess(DashboardProcess):
    """``panel serve`` of the current Panel dashboards (one app per dashboard, by slug).

    The apps' code runs in this process (no kernel, no code from the visitor); a new
    dashboard or version restarts it. Each session reads data with the token the runtime
    put in the request (:func:`datapilot_kernel.get_client` finds it in the session).
    """

    def __init__(self, *args, **kw) -> None:
        super().__init__("panel", *args, **kw)
        self.apps: dict[str, str] = {}

    def command(self) -> list[str]:
        # an app's route is its file's name: one link per dashboard, named by its slug
        apps = self.root.parent / "panel-apps"
        shutil.rmtree(apps, ignore_errors=True)
        apps.mkdir(mode=0o700)
        for slug, rel in sorted(self.apps.items()):
            (apps / f"{slug}.ipynb").symlink_to(self.root / rel)
        return [
            sys.executable,
            "-m",
            "datapilot_hub.dashboards_runtime._panel",
            *[str(apps / f"{slug}.ipynb") for slug in sorted(self.apps)],
            "--address=127.0.0.1",
            f"--port={self.port}",
            f"--prefix={self.prefix}",
            # only this server reaches it (with its secret), from the visitor's origin
            "--allow-websocket-origin=*",
            "--num-procs=1",
        ]

    def environment(self) -> dict[str, str]:
        return clean_environment({"DATAPILOT_RUNTIME_PANEL_TOKEN": self.secret})

    def ready_url(self) -> str:
        return f"{self.url}liveness"
