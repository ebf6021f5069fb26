"""Helpers for the hub-side tests: a real JupyterHub in a subprocess, API calls, kernels."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
from tornado.httpclient import HTTPRequest
from tornado.websocket import websocket_connect

REPO = Path(__file__).resolve().parents[3]
API = "/services/datapilot/api/v1"


def free_port() -> int:
    """A free loopback port."""
    from datapilot_hub._install import free_port as _free_port

    return _free_port()


def check_api_response(resp: httpx.Response) -> None:
    """Every API answer is JSON (but for data downloads and aggregations in another
    format) and carries our CSP header."""
    ctype = resp.headers.get("content-type", "")
    downloads = ("/data", "/aggregate")
    if resp.status_code != 204 and not (
        resp.status_code == 200
        and (str(resp.url.path).endswith(downloads) or "/parts/" in str(resp.url.path))
    ):
        assert ctype.startswith("application/json"), (resp.status_code, ctype, resp.text[:200])
    assert "frame-ancestors" in resp.headers.get("content-security-policy", ""), resp.headers
    if resp.status_code >= 400:
        body = resp.json()
        assert {"error", "message"} <= set(body), body
        assert isinstance(body["message"], str) and body["message"]


#: every hub a test started, so that the session removes their accounts at the end
STARTED_HUBS: list[HubProcess] = []


class HubProcess:
    """JupyterHub with the proxy and the data service, started from jupyterhub_config.py.

    Binds to 127.0.0.1 on a free port, keeps its state in ``home`` and stops on
    :meth:`stop` (SIGTERM to the process group, SIGKILL if it lingers).

    Parameters
    ----------
    home : Path
        DATAPILOT_HOME of this instance.
    db_url : str, optional
        DATAPILOT_DB_URL (catalog); SQLite under ``home`` when None.
    """

    def __init__(
        self,
        home: Path,
        db_url: str | None = None,
        env: dict[str, str] | None = None,
        config: str = "",
    ):
        self.home = Path(home).resolve()
        # lines added to jupyterhub_config.py, after its call to install_datapilot
        self.extra_config = config
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.admin_token = secrets.token_hex(16)
        # accounts of their own per state directory, so that test hubs never share one and
        # a hub started again on the same directory finds its accounts
        tag = hashlib.sha256(str(self.home).encode()).hexdigest()[:5]
        self.account_prefix = f"t{tag}-"
        self.env = {
            **os.environ,
            "DATAPILOT_HOME": str(self.home),
            "DATAPILOT_PORT": str(self.port),
            "DATAPILOT_ADMIN_TOKEN": self.admin_token,
            "DATAPILOT_ACCOUNT_PREFIX": self.account_prefix,
            "DATAPILOT_SERVICE_ACCOUNT": f"t{tag}_svc",
            **(env or {}),
        }
        if db_url:
            self.env["DATAPILOT_DB_URL"] = db_url
        self.proc: subprocess.Popen | None = None
        self.log_path = self.home / "hub-test.log"

    @property
    def service_home(self) -> Path:
        """The data service's directory: catalog, storage, tmp."""
        return self.home / "service"

    @property
    def isolated(self) -> bool:
        """Whether servers run under accounts of their own (the hub runs as root)."""
        return os.geteuid() == 0 and self.env.get("DATAPILOT_ISOLATION", "") != "off"

    def start(self, timeout: float = 60) -> None:
        self.home.mkdir(parents=True, exist_ok=True)
        STARTED_HUBS.append(self)
        log = open(self.log_path, "ab")  # noqa: SIM115 - closed in stop()
        self._log = log
        config_file = REPO / "jupyterhub_config.py"
        if self.extra_config:
            extended = self.home / "test_jupyterhub_config.py"
            extended.write_text(f"exec(open({str(config_file)!r}).read())\n{self.extra_config}\n")
            config_file = extended
        self.proc = subprocess.Popen(
            [str(Path(sys.executable).with_name("jupyterhub")), "-f", str(config_file)],
            cwd=self.home,
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"jupyterhub exited {self.proc.returncode}:\n{self.log_tail()}")
            try:
                r = httpx.get(f"{self.url}{API}/health", timeout=2)
                if r.status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.25)
        self.stop()
        raise TimeoutError(f"jupyterhub did not come up in {timeout}s:\n{self.log_tail()}")

    def log_tail(self, n: int = 60) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-n:])
        except FileNotFoundError:
            return ""

    def stop(self, timeout: float = 40) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                pass
        # whatever the hub left behind (proxy, service, user servers) goes too
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.proc.wait()
        self._log.close()
        self.proc = None

    def remove_accounts(self) -> list[str]:
        """Remove the operating-system accounts and groups this hub created."""
        if not self.isolated:
            return []
        from datapilot_hub import accounts

        return accounts.remove_installation(self.home, self.account_prefix)

    # ---- calls -------------------------------------------------------------------------

    def client(self, token: str | None = None) -> httpx.Client:
        headers = {"Authorization": f"token {token}"} if token else {}
        return httpx.Client(base_url=self.url, headers=headers, timeout=60)

    def api(
        self, method: str, path: str, token: str | None = None, check: bool = True, **kw: Any
    ) -> httpx.Response:
        """A call to the data service API through the proxy, checked like every API answer."""
        with self.client(token) as c:
            resp = c.request(method, f"{API}{path}", **kw)
        if check:
            check_api_response(resp)
        return resp

    def hub_api(
        self, method: str, path: str, token: str | None = None, **kw: Any
    ) -> httpx.Response:
        with self.client(token or self.admin_token) as c:
            return c.request(method, f"/hub/api{path}", **kw)

    def user_token(self, name: str) -> str:
        """An API token of ``name`` (the user must exist in the hub)."""
        r = self.hub_api(
            "POST", f"/users/{name}/tokens", json={"note": "tests", "expires_in": 3600}
        )
        assert r.status_code == 201, r.text
        return r.json()["token"]

    def add_member(self, org: str, user: str, role: str) -> None:
        r = self.api("PUT", f"/orgs/{org}/members/{user}", self.admin_token, json={"role": role})
        assert r.status_code in (200, 201), r.text

    def create_org(self, slug: str, name: str | None = None) -> None:
        r = self.api("POST", "/orgs", self.admin_token, json={"slug": slug, "name": name or slug})
        assert r.status_code == 201, r.text

    def populate(self, orgs: dict[str, str], members: list[tuple[str, str, str]]) -> dict[str, str]:
        """Create organizations ``{slug: name}`` and add ``(org, user, role)`` members;
        returns an API token per member."""
        for slug, name in orgs.items():
            self.create_org(slug, name)
        for org, user, role in members:
            self.add_member(org, user, role)
        return {user: self.user_token(user) for _, user, _ in members}

    def wait_job(self, org: str, job_id: str, token: str, timeout: float = 60) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            job = self.api("GET", f"/orgs/{org}/jobs/{job_id}", token).json()
            if job["state"] in ("succeeded", "failed", "cancelled"):
                return job
            time.sleep(0.1)
        raise TimeoutError(f"job {job_id} still {job['state']}")

    def upload(
        self,
        org: str,
        token: str,
        name: str,
        content: bytes,
        filename: str = "data.csv",
        mode: str = "create",
        content_type: str = "text/csv",
    ) -> httpx.Response:
        return self.api(
            "POST",
            f"/orgs/{org}/datasets",
            token,
            data={"name": name, "mode": mode},
            files={"file": (filename, content, content_type)},
        )

    def start_server(
        self, user: str, server: str, token: str, timeout: float = 90
    ) -> httpx.Response:
        """Start a named server and wait until it is ready; returns the first answer."""
        r = self.hub_api("POST", f"/users/{user}/servers/{server}", token)
        if r.status_code not in (201, 202):
            return r
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            model = self.hub_api("GET", f"/users/{user}").json()
            s = model["servers"].get(server)
            if s and s.get("ready"):
                return r
            if not s or not s.get("pending") and not s.get("ready"):
                raise RuntimeError(f"server {user}/{server} failed:\n{self.log_tail()}")
            time.sleep(0.5)
        raise TimeoutError(f"server {user}/{server} not ready:\n{self.log_tail()}")


def new_home(label: str = "hub") -> Path:
    """A new, empty state directory for a test hub, where the servers' accounts reach it.

    Not under pytest's temporary directory: pytest keeps that 0700 (and puts it back at
    every session), while with isolation the servers' accounts must pass through to
    their homes, as they would under /srv. Removed by :func:`running_hub`, or by the
    caller.
    """
    base = Path(tempfile.gettempdir(), "datapilot-test-homes")
    base.mkdir(mode=0o711, exist_ok=True)
    base.chmod(0o711)
    return Path(tempfile.mkdtemp(prefix=f"{label}-", dir=base))


def form_xsrf(page: httpx.Response) -> str:
    """The ``_xsrf`` hidden field of a hub page's form."""
    import re

    found = re.search(r'name="_xsrf" value="([^"]+)"', page.text)
    assert found, page.text[:300]
    return found.group(1)


def hub_signup(hub: HubProcess, user: str, password: str) -> str:
    """Sign up on the hub's sign-up page (password accounts); returns the page's message."""
    import re

    with httpx.Client(base_url=hub.url, follow_redirects=True, timeout=60) as browser:
        xsrf = form_xsrf(browser.get("/hub/signup"))
        r = browser.post(
            "/hub/signup",
            data={
                "username": user,
                "signup_password": password,
                "signup_password_confirmation": password,
                "_xsrf": xsrf,
            },
        )
    assert r.status_code == 200, r.text[:300]
    found = re.search(r'class="alert ([^"]+)"[^>]*>\s*(.*?)\s*</div>', r.text, re.S)
    assert found, r.text[:500]
    return f"{found.group(1)}: {found.group(2)}"


def hub_login(hub: HubProcess, user: str, password: str, ok: bool = True) -> httpx.Client:
    """Log in on the hub's login form as a browser does; returns the browser (cookies).

    With ``ok`` it asserts the login succeeded, else that it was refused.
    """
    browser = httpx.Client(base_url=hub.url, follow_redirects=True, timeout=60)
    xsrf = form_xsrf(browser.get("/hub/login"))
    r = browser.post("/hub/login", data={"username": user, "password": password, "_xsrf": xsrf})
    browser.last_response = r  # type: ignore[attr-defined]
    logged_in = r.status_code == 200 and "/hub/login" not in str(r.url)
    assert logged_in == ok, (r.status_code, str(r.url), r.text[:300])
    return browser


def hub_browser(hub: HubProcess, user: str) -> httpx.Client:
    """Sign ``user`` up (password ``pw-<user>-correct-horse``) and log in; the browser."""
    password = f"pw-{user}-correct-horse"
    assert "alert-success" in hub_signup(hub, user, password)
    return hub_login(hub, user, password)


@contextmanager
def running_hub(request, tmp_path_factory, backend: str = "sqlite", env=None, label: str = "hub"):
    """A :class:`HubProcess` on a catalog ``backend`` (``sqlite`` or ``postgresql``, then on a
    scratch database), stopped and its state directory removed afterwards (kept with
    ``DATAPILOT_TEST_KEEP_HOME=1``). For module fixtures::

        with running_hub(request, tmp_path_factory, request.param, env={...}) as hub:
            yield hub
    """
    db_url = None
    if backend == "postgresql":
        db_url = request.getfixturevalue("pg_databases").create()
    home = new_home(f"{label}-{backend}")
    hub = HubProcess(home, db_url=db_url, env=env)
    hub.backend = backend
    hub.db_url = db_url or f"sqlite:///{hub.service_home}/catalog.sqlite"
    try:
        hub.start()
        yield hub
    finally:
        hub.stop()
        hub.remove_accounts()
        if os.environ.get("DATAPILOT_TEST_KEEP_HOME") != "1":
            shutil.rmtree(home, ignore_errors=True)


async def run_in_kernel(
    base_url: str, token: str, code: str, timeout: float = 120
) -> dict[str, Any]:
    """Execute ``code`` in a new kernel of a running Jupyter server, over its WebSocket.

    Returns ``{"stdout", "stderr", "result", "error"}`` (``result`` is the last value's
    text/plain), plus ``data`` (its whole mime bundle), ``displays`` (the mime bundles
    of ``display_data`` messages: widgets, charts) and ``traceback`` (the error's lines as
    IPython rendered them); the kernel is shut down afterwards.
    """
    headers = {"Authorization": f"token {token}"}
    async with httpx.AsyncClient(base_url=base_url, headers=headers, timeout=60) as c:
        r = await c.post("api/kernels", json={"name": "python3"})
        r.raise_for_status()
        kernel_id = r.json()["id"]
        ws_url = base_url.replace("http", "ws", 1) + f"api/kernels/{kernel_id}/channels"
        ws = await websocket_connect(HTTPRequest(ws_url, headers=headers))
        msg_id = uuid.uuid4().hex
        ws.write_message(
            json.dumps(
                {
                    "header": {
                        "msg_id": msg_id,
                        "username": "test",
                        "session": uuid.uuid4().hex,
                        "msg_type": "execute_request",
                        "version": "5.3",
                    },
                    "parent_header": {},
                    "metadata": {},
                    "channel": "shell",
                    "content": {
                        "code": code,
                        "silent": False,
                        "store_history": False,
                        "user_expressions": {},
                        "allow_stdin": False,
                    },
                }
            )
        )
        out: dict[str, Any] = {
            "stdout": "",
            "stderr": "",
            "result": None,
            "error": None,
            "data": {},
            "displays": [],
            "traceback": [],
        }
        try:
            async with asyncio.timeout(timeout):
                while True:
                    raw = await ws.read_message()
                    if raw is None:
                        raise RuntimeError("kernel websocket closed")
                    if isinstance(raw, bytes):
                        continue
                    msg = json.loads(raw)
                    if msg.get("parent_header", {}).get("msg_id") != msg_id:
                        continue
                    kind, content = msg["msg_type"], msg["content"]
                    if kind == "stream":
                        out[content["name"]] += content["text"]
                    elif kind == "execute_result":
                        out["result"] = content["data"].get("text/plain")
                        out["data"] = content["data"]
                    elif kind == "display_data":
                        out["displays"].append(content["data"])
                    elif kind == "error":
                        out["error"] = f"{content['ename']}: {content['evalue']}"
                        out["traceback"] = content["traceback"]
                    elif kind == "status" and content["execution_state"] == "idle":
                        break
        finally:
            ws.close()
            await c.delete(f"api/kernels/{kernel_id}")
        return out


def hub_processes(hub: HubProcess) -> dict:
    """The hub's processes by role (``psutil.Process``): ``hub``, ``proxy``, ``service``,
    ``culler``, and each notebook server as ``server:<account it runs under>``."""
    import psutil

    found = {"hub": psutil.Process(hub.proc.pid)}
    for child in found["hub"].children(recursive=True):
        try:
            cmd = " ".join(child.cmdline())
            if "configurable-http-proxy" in cmd:
                found["proxy"] = child
            elif "datapilot_hub.service" in cmd:
                found["service"] = child
            elif "datapilot_hub/_culler.py" in cmd:  # jupyterhub-idle-culler, our launcher
                found["culler"] = child
            elif "jupyterhub-singleuser" in cmd:
                found[f"server:{child.username()}"] = child
        except psutil.NoSuchProcess:
            continue
    return found


def service_process(hub: HubProcess):
    """The data service's process among the hub's children (a ``psutil.Process``)."""
    try:
        return hub_processes(hub)["service"]
    except KeyError:
        raise LookupError(f"no data service among the hub's processes:\n{hub.log_tail()}") from None


def lie_about_size(path: Path, member: str, size: int) -> None:
    """Make a zip's directory (central and local headers) say ``member`` inflates to
    ``size`` bytes, as a hostile archive does."""
    import struct

    data = bytearray(path.read_bytes())
    name = member.encode()
    for signature, name_length_at, name_at, size_at in (
        (b"PK\x03\x04", 26, 30, 22),
        (b"PK\x01\x02", 28, 46, 24),
    ):
        i = data.find(signature)
        while i != -1:
            (n,) = struct.unpack("<H", data[i + name_length_at : i + name_length_at + 2])
            if data[i + name_at : i + name_at + n] == name:
                data[i + size_at : i + size_at + 4] = struct.pack("<I", size)
            i = data.find(signature, i + 4)
    path.write_bytes(bytes(data))


def lying_workbook(path: Path, padding: int) -> bytes:
    """Write a real workbook whose sheet holds ``padding`` bytes of blanks its directory
    hides (it says 2,000 bytes); returns the same workbook without them.

    Its reader inflates the whole sheet whatever the directory says (measured: a 512 MiB
    sheet declared as 2,000 bytes took fastexcel to 1.2 GB).
    """
    import io
    import zipfile

    import openpyxl

    wb = openpyxl.Workbook()
    wb.active.append(["a", "b"])
    wb.active.append([1, 2])
    plain = io.BytesIO()
    wb.save(plain)
    with zipfile.ZipFile(plain) as src, zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():
            data = src.read(info.filename)
            if info.filename == "xl/worksheets/sheet1.xml":
                data = data.replace(b"<sheetData>", b"<sheetData>" + b" " * padding)
            dst.writestr(info.filename, data)
    lie_about_size(path, "xl/worksheets/sheet1.xml", 2000)
    return plain.getvalue()


def notebook(*sources: str) -> dict[str, Any]:
    """An nbformat 4 notebook of Python code cells, not yet run."""
    return {
        "nbformat": 4,
        "nbformat_minor": 5,
        "metadata": {
            "kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}
        },
        "cells": [
            {
                "cell_type": "code",
                "execution_count": None,
                "metadata": {},
                "outputs": [],
                "source": source,
            }
            for source in sources
        ],
    }
