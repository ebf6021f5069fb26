"""First complete render of the example Voilà dashboard: Datapilot against plain ``voila``.

    .venv/bin/python benchmarks/dashboards.py

One run on one machine: a real hub (as root: the organization's dashboard account), the
sample dataset, the example notebook ``notebooks/example-sales-voila.ipynb`` published;
a viewer logged in (hub cookie) opens its stable address, and the time runs until the
page's last byte (Voilà streams the page as the cells run, and ends it after the last).
The baseline is plain ``voila`` on the same notebook, reading the same data from the
same data service with the viewer's API token.

- cold: the dashboard's first opening (its organization's dashboard server running, the
  Voilà process started for it and its first kernel) against ``voila`` started for the
  request (process start, then the first page);
- warm: later openings (``--warm``, 15 s apart so that the pool has its next kernel
  ready), each served by a pre-started kernel (``DATAPILOT_DASHBOARD_POOL_SIZE``, 1 by
  default), against later pages of the running ``voila`` (a new kernel each): medians.

Prints the figures and their ratios (Datapilot / voila), and how many openings did not
end within a minute (a page that never ends: see the README, "Warm openings").
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "hub"))

NOTEBOOK = REPO / "notebooks" / "example-sales-voila.ipynb"
SAMPLE = REPO / "notebooks" / "sample_sales.csv"
#: Voilà ends the page with this once the last cell ran (the widgets' state is in it)
DONE_MARKER = "window.voila_finish()"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def render(client: httpx.Client, url: str, timeout: float = 120) -> float:
    """Seconds from the request to the page's last byte (redirects followed)."""
    started = time.perf_counter()
    r = client.get(url, timeout=timeout, follow_redirects=True)
    elapsed = time.perf_counter() - started
    if r.status_code != 200 or DONE_MARKER not in r.text or "Dropdown" not in r.text:
        raise RuntimeError(f"{url}: {r.status_code} {r.text[-500:]}")
    return elapsed


def plain_voila(env: dict[str, str], workdir: Path, warm: int) -> tuple[float, list[float]]:
    """Plain voila on the same notebook: (cold: start + first page, warm: later pages)."""
    notebook = workdir / "dashboard.ipynb"
    shutil.copyfile(NOTEBOOK, notebook)
    port = _free_port()
    started = time.perf_counter()
    proc = subprocess.Popen(
        [
            str(Path(sys.executable).with_name("voila")),
            str(notebook),
            "--no-browser",
            f"--port={port}",
            "--Voila.ip=127.0.0.1",
            "--strip_sources=True",
        ],
        cwd=workdir,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        url = f"http://127.0.0.1:{port}/"
        with httpx.Client() as client:
            while True:
                try:
                    client.get(f"{url}voila/static/", timeout=1)
                    break
                except httpx.HTTPError:
                    if proc.poll() is not None:
                        raise RuntimeError("voila exited") from None
                    time.sleep(0.05)
            render(client, url)
            cold = time.perf_counter() - started
            times = []
            for _ in range(warm):
                time.sleep(3)
                times.append(render(client, url))
        return cold, times
    finally:
        proc.terminate()
        proc.wait(20)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--warm", type=int, default=5, help="warm openings (default 5)")
    args = parser.parse_args()
    from datapilot_hub.tests.utils import HubProcess, hub_login, hub_signup, new_home, notebook

    home = new_home("bench-dash")
    hub = HubProcess(home, env={"DATAPILOT_DASHBOARD_POOL_SIZE": "1"})
    try:
        hub.start()
        for user in ("alice", "vera"):
            hub.hub_api("POST", f"/users/{user}")
        tokens = hub.populate(
            {"acme": "Acme"}, [("acme", "alice", "analyst"), ("acme", "vera", "viewer")]
        )
        r = hub.upload("acme", tokens["alice"], "sample_sales", SAMPLE.read_bytes(), "s.csv")
        assert hub.wait_job("acme", r.json()["job"]["id"], tokens["alice"])["state"] == "succeeded"
        for slug, kind, nb in (
            ("up", "panel", notebook("import panel as pn\npn.pane.Markdown('up').servable()")),
            ("sales", "voila", json.loads(NOTEBOOK.read_text())),
        ):
            body = {"notebook": nb, "kind": kind, "slug": slug, "title": slug}
            r = hub.api("POST", "/orgs/acme/dashboards", tokens["alice"], json=body)
            assert r.status_code == 201, r.text
        hub_signup(hub, "vera", "pw-vera-benchmark")
        viewer = hub_login(hub, "vera", "pw-vera-benchmark")
        # the organization's dashboard server up (a tiny Panel app), the viewer logged in to it
        started = time.perf_counter()
        r = viewer.get("/services/datapilot/dashboards/acme/up", timeout=300)
        assert r.status_code == 200, r.text[-300:]
        spawn = time.perf_counter() - started
        time.sleep(5)
        stable = "/services/datapilot/dashboards/acme/sales"
        dp_cold = render(viewer, stable)
        dp_warm, unended = [], 0
        for _ in range(args.warm):
            time.sleep(15)  # the pool takes its next kernel up to the first data call
            try:
                dp_warm.append(render(viewer, stable, timeout=60))
            except httpx.TimeoutException:
                unended += 1
        env = {
            **os.environ,
            "DATAPILOT_URL": f"{hub.url}/services/datapilot/",
            "DATAPILOT_ORG": "acme",
            "DATAPILOT_TOKEN": hub.user_token("vera"),
        }
        with tempfile.TemporaryDirectory() as tmp:
            voila_cold, voila_warm = plain_voila(env, Path(tmp), min(args.warm, 5))
    finally:
        hub.stop()
        hub.remove_accounts()
        if os.environ.get("DATAPILOT_TEST_KEEP_HOME") != "1":
            shutil.rmtree(home, ignore_errors=True)
    warm = statistics.median(dp_warm) if dp_warm else float("nan")
    print("first complete render of notebooks/example-sales-voila.ipynb (seconds)")
    print(f"  dashboard server spawn + first Panel app (once per organization): {spawn:.2f}")
    for label, ours, theirs in (
        ("cold       ", dp_cold, voila_cold),
        ("warm median", warm, statistics.median(voila_warm)),
    ):
        ratio = ours / theirs
        print(f"  {label}  Datapilot {ours:6.2f}   voila {theirs:6.2f}   ratio {ratio:.2f}")
    print(f"  warm openings: {', '.join(f'{t:.2f}' for t in dp_warm)}")
    print(f"  openings that did not end within a minute: {unended} of {args.warm}")


if __name__ == "__main__":
    main()
