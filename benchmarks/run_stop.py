"""``make run`` as a person runs it: when can they log in, and how long does Ctrl-C take?

Starts ``make run`` in a pseudo-terminal (its own state directory, port and account
prefix), waits for the readiness line and for ``/hub/login`` to answer, optionally starts
one notebook server, then writes Ctrl-C to the terminal and measures how long until
``make`` exits, when each process went, and whether a traceback was printed.

    .venv/bin/python benchmarks/run_stop.py [--server] [--port 8765]

Run it as root for the accounts of a real ``make run`` (it removes them after).
"""

from __future__ import annotations

import argparse
import os
import pty
import select
import shutil
import sys
import threading
import time
from pathlib import Path

import httpx
import psutil

REPO = Path(__file__).resolve().parents[1]
TOKEN = "run-stop-benchmark-admin-token-0123456789"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--server", action="store_true", help="start one notebook server first")
    parser.add_argument("--port", type=int, default=8765)
    args = parser.parse_args()
    base = Path("/tmp/datapilot-test-homes")
    base.mkdir(mode=0o711, exist_ok=True)
    home = base / f"run-stop-{args.port}"
    shutil.rmtree(home, ignore_errors=True)
    env = {
        **os.environ,
        "DATAPILOT_HOME": str(home),
        "DATAPILOT_PORT": str(args.port),
        "DATAPILOT_ACCOUNT_PREFIX": "rsb-",
        "DATAPILOT_SERVICE_ACCOUNT": "rsb_svc",
        "DATAPILOT_ADMIN_TOKEN": TOKEN,
    }
    pid, fd = pty.fork()
    if pid == 0:
        os.chdir(REPO)
        os.execvpe("make", ["make", "run"], env)
    t0 = time.monotonic()
    lines: list[tuple[float, str]] = []
    threading.Thread(target=_read, args=(fd, t0, lines), daemon=True).start()
    url = f"http://127.0.0.1:{args.port}"
    try:
        login = _wait(lambda: httpx.get(f"{url}/hub/login", timeout=1).status_code == 200, t0)
        ready = _wait(lambda: any("Datapilot is ready at" in line for _, line in lines), t0)
        running = next((t for t, line in lines if "JupyterHub is now running" in line), None)
        print(
            f"'JupyterHub is now running' at {running:.1f} s, /hub/login answers at"
            f" {login:.1f} s, 'Datapilot is ready' at {ready:.1f} s"
        )
        if args.server:
            _start_server(url)
        watched = _processes(args.port)
        time.sleep(1)
        stopped = time.monotonic()
        os.write(fd, b"\x03")
        gone: dict[int, float] = {}
        while True:
            for p in watched:
                if p not in gone and not _alive(p):
                    gone[p] = time.monotonic() - stopped
            done, _ = os.waitpid(pid, os.WNOHANG)
            if done:
                break
            time.sleep(0.02)
        total = time.monotonic() - stopped
        time.sleep(0.3)
        print(
            f"Ctrl-C: make exited after {total:.1f} s"
            + (" (one server running)" if args.server else "")
        )
        for p, name in watched.items():
            print(f"  {gone.get(p, total):5.2f} s  {name}")
        after = [line for t, line in lines if t >= stopped - t0]
        tracebacks = sum("Traceback" in line for line in after)
        print(f"  tracebacks printed while stopping: {tracebacks}")
    finally:
        try:
            os.kill(pid, 9)
        except ProcessLookupError:
            pass
        if os.geteuid() == 0:
            sys.path.insert(0, str(REPO / "hub"))
            from datapilot_hub import accounts

            accounts.remove_installation(home, "rsb-")
        shutil.rmtree(home, ignore_errors=True)


def _read(fd: int, t0: float, lines: list[tuple[float, str]]) -> None:
    buf = b""
    while True:
        try:
            ready, _, _ = select.select([fd], [], [], 0.2)
            if not ready:
                continue
            data = os.read(fd, 65536)
        except OSError:
            return
        if not data:
            return
        buf += data
        while b"\n" in buf:
            line, buf = buf.split(b"\n", 1)
            lines.append((time.monotonic() - t0, line.decode(errors="replace").rstrip("\r")))


def _wait(check, t0: float, timeout: float = 300) -> float:
    while time.monotonic() - t0 < timeout:
        try:
            if check():
                return time.monotonic() - t0
        except httpx.HTTPError:
            pass
        time.sleep(0.05)
    raise TimeoutError("make run did not come up")


def _start_server(url: str) -> None:
    c = httpx.Client(base_url=url, headers={"Authorization": f"token {TOKEN}"}, timeout=60)
    api = "/services/datapilot/api/v1"
    assert c.post(f"{api}/orgs", json={"slug": "bench", "name": "Bench"}).status_code == 201
    assert c.put(f"{api}/orgs/bench/members/ann", json={"role": "analyst"}).status_code == 201
    assert c.post("/hub/api/users/ann/servers/bench").status_code in (201, 202)
    for _ in range(240):
        if c.get("/hub/api/users/ann").json()["servers"].get("bench", {}).get("ready"):
            return
        time.sleep(0.5)
    raise TimeoutError("the notebook server did not start")


def _processes(port: int) -> dict[int, str]:
    """The hub's processes of this run: hub, proxy, services, notebook servers."""
    me = {os.getpid(), *(p.pid for p in psutil.Process().parents())}
    found = {}
    for p in psutil.process_iter(["pid", "cmdline", "username"]):
        cmd = " ".join(p.info["cmdline"] or [])
        if p.info["pid"] in me or cmd.startswith("make"):
            continue
        try:
            mine = p.environ().get("DATAPILOT_PORT") == str(port)
        except psutil.Error:
            mine = False
        # the culler's and the notebook servers' environments are their own
        mine = mine or f"--port {port}" in cmd or (p.info["username"] or "").startswith("rsb")
        if mine:
            found[p.pid] = cmd[:90]
    return found


def _alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


if __name__ == "__main__":
    main()
