"""DATAPILOT_DASK_SCHEDULER: recipes run on a real ``dask scheduler`` and ``dask worker``
started here on loopback, which read and write storage only through the data service's
storage gateway, with a capability scoped to the job's organization and files, refused
after the job; no storage credential reaches a worker; a worker killed mid-recipe leaves
no partial version."""

from __future__ import annotations

import io
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import numpy as np
import pandas as pd
import psutil
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from .utils import free_port, running_hub

pytestmark = pytest.mark.e2e

# in the data service's environment only: it must never reach a worker or the graph
STORAGE_SECRET = "storage-secret-that-workers-must-never-see"
TOKEN = re.compile(rb"dpcap_[A-Za-z0-9_-]{43}")
BIN = Path(sys.executable).parent


class DaskProcesses:
    """A ``dask scheduler`` and one ``dask worker`` (with its nanny) on 127.0.0.1, in a
    clean environment (no DATAPILOT_* or AWS_* variable), stopped at the end."""

    def __init__(self, home: Path, memory_limit: str = "1GB", pause: bool = True) -> None:
        self.port = free_port()
        self.address = f"tcp://127.0.0.1:{self.port}"
        self.env = {
            "PATH": os.environ["PATH"],
            "HOME": str(home),
            "PYTHONNOUSERSITE": "1",
            # spilling goes to the worker's own directory
            "DASK_TEMPORARY_DIRECTORY": str(home / "dask-tmp"),
        }
        if not pause:
            # a small worker: spill only (one whose own imports take a third of its limit
            # would pause again and again: its memory is not its data's), and a
            # peer-to-peer shuffle buffering a tenth of it, not its default gibibyte
            self.env["DASK_DISTRIBUTED__WORKER__MEMORY__PAUSE"] = "False"
            limit = int(memory_limit)
            self.env["DASK_DISTRIBUTED__P2P__COMM__BUFFER"] = str(limit // 10)
            self.env["DASK_DISTRIBUTED__P2P__STORAGE__BUFFER"] = str(limit // 20)
        self.home = home
        self.memory_limit = memory_limit
        self.procs: list[subprocess.Popen] = []

    def start(self) -> None:
        self.home.mkdir(parents=True, exist_ok=True)
        log = open(self.home / "dask.log", "ab")  # noqa: SIM115 - closed by the OS at exit
        common = {"env": self.env, "stdout": log, "stderr": subprocess.STDOUT, "cwd": self.home}
        self.procs.append(
            subprocess.Popen(
                [
                    str(BIN / "dask"),
                    "scheduler",
                    "--host",
                    "127.0.0.1",
                    "--port",
                    str(self.port),
                    "--no-dashboard",
                ],
                start_new_session=True,
                **common,
            )
        )
        self.procs.append(
            subprocess.Popen(
                [
                    str(BIN / "dask"),
                    "worker",
                    self.address,
                    "--host",
                    "127.0.0.1",
                    "--nthreads",
                    "2",
                    "--memory-limit",
                    self.memory_limit,
                    "--no-dashboard",
                    "--local-directory",
                    str(self.home / "worker"),
                ],
                start_new_session=True,
                **common,
            )
        )
        from distributed import Client

        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                with Client(self.address, timeout=5) as c:
                    if c.scheduler_info()["workers"]:
                        return
            except OSError:
                pass
            time.sleep(0.5)
        raise TimeoutError((self.home / "dask.log").read_text()[-3000:])

    def worker_process(self) -> psutil.Process:
        """The worker itself (the nanny's child)."""
        nanny = psutil.Process(self.procs[1].pid)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            # (not multiprocessing's resource tracker, also a child of the nanny)
            workers = [p for p in nanny.children() if "spawn_main" in " ".join(p.cmdline())]
            if workers:
                return workers[0]
            time.sleep(0.2)
        raise LookupError("no worker process")

    def stop(self) -> None:
        for p in reversed(self.procs):
            try:
                os.killpg(p.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            p.wait()


def sales(rows: int, seed: int = 3) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "id": np.arange(rows, dtype="int64"),
            "region": rng.choice(["north", "south", "east", "west"], rows),
            "amount": rng.integers(1, 500, rows).astype("float64"),
        }
    )


def upload_parquet(hub, org, token, name, data, group, timeout=120) -> int:
    """Upload ``data`` (a DataFrame or an Arrow table) as Parquet in row groups of
    ``group`` rows (the ingestion keeps them: one part each); returns the file's size."""
    table = data if isinstance(data, pa.Table) else pa.Table.from_pandas(data, preserve_index=False)
    sink = io.BytesIO()
    pq.write_table(table, sink, group)
    content = sink.getvalue()
    r = hub.upload(
        org, token, name, content, f"{name}.parquet", content_type="application/vnd.apache.parquet"
    )
    assert r.status_code == 202, r.text
    job = hub.wait_job(org, r.json()["job"]["id"], token, timeout=timeout)
    assert job["state"] == "succeeded", job
    return len(content)


@pytest.fixture(scope="module")
def world(request, tmp_path_factory):
    dask = DaskProcesses(tmp_path_factory.mktemp("dask"))
    dask.start()
    env = {"DATAPILOT_DASK_SCHEDULER": dask.address, "AWS_SECRET_ACCESS_KEY": STORAGE_SECRET}
    try:
        with running_hub(request, tmp_path_factory, "sqlite", env=env, label="dask") as hub:
            tokens = hub.populate(
                {"acme": "Acme", "globex": "Globex"},
                [("acme", "alice", "analyst"), ("globex", "gary", "analyst")],
            )
            upload_parquet(hub, "acme", tokens["alice"], "sales", sales(40_000), 4_000)
            upload_parquet(hub, "globex", tokens["gary"], "secret", sales(1_000, 9), 1_000)
            yield {"hub": hub, "tokens": tokens, "dask": dask}
    finally:
        dask.stop()


RECIPE = [
    {"op": "filter", "expr": "amount > 100"},
    {"op": "derive", "name": "net", "expr": "amount * 0.9"},
    {"op": "group_by", "by": ["region"], "aggs": {"net": ["sum"], "*": ["count"]}},
    {"op": "sort", "by": ["region"]},
]


def expected() -> pd.DataFrame:
    df = sales(40_000)
    df = df[df.amount > 100].assign(net=lambda d: d.amount * 0.9)
    out = df.groupby("region").agg(net_sum=("net", "sum"), count=("net", "size")).reset_index()
    return out.sort_values("region").reset_index(drop=True)


def submit(hub, token, output, steps=RECIPE):
    body = {"steps": steps, "output": {"name": output, "mode": "create"}}
    r = hub.api("POST", "/orgs/acme/datasets/sales/transform", token, json=body)
    assert r.status_code == 202, r.text
    return r.json()["job"]["id"]


def read(hub, token, name) -> pd.DataFrame:
    r = hub.api("GET", f"/orgs/acme/datasets/{name}/data?format=parquet", token)
    assert r.status_code == 200, r.text
    return pd.read_parquet(io.BytesIO(r.content))


def check_result(frame: pd.DataFrame) -> None:
    want = expected()
    assert list(frame.region) == list(want.region)
    assert np.allclose(frame.net_sum.astype(float), want.net_sum)
    assert list(frame["count"].astype(int)) == list(want["count"])


def storage_files(hub, pattern: str) -> list[Path]:
    return sorted((hub.service_home / "storage").glob(pattern))


def test_a_recipe_runs_on_the_external_scheduler(world):
    hub, alice = world["hub"], world["tokens"]["alice"]
    job = hub.wait_job("acme", submit(hub, alice, "by_region"), alice, timeout=120)
    assert job["state"] == "succeeded", (job, hub.log_tail())
    check_result(read(hub, alice, "by_region"))
    health = hub.api("GET", "/health", hub.admin_token).json()
    assert health["compute"]["kind"] == "external", health
    assert health["compute"]["scheduler"] == world["dask"].address
    # the external workers did the work: the service ran no LocalCluster of its own
    service = [
        p
        for p in psutil.process_iter(["cmdline"])
        if "datapilot_hub.service" in " ".join(p.info["cmdline"] or [])
    ]
    assert service
    for p in service:
        cmds = [" ".join(c.cmdline()) for c in p.children(recursive=True)]
        assert not any("distributed" in c and "spawn" in c for c in cmds), cmds


def _graph_specs(dask_scheduler=None) -> list[bytes]:
    """Every task the scheduler holds, as the bytes it would send a worker."""
    import cloudpickle

    return [cloudpickle.dumps(ts.run_spec) for ts in dask_scheduler.tasks.values()]


def _gateway(hub, token, path, method="GET", content=None):
    return httpx.request(
        method,
        f"{hub.url}/services/datapilot/api/v1/gateway/files",
        params={"path": path},
        headers={"X-Datapilot-Capability": token},
        content=content,
        timeout=30,
    )


def test_capabilities_are_scoped_to_the_job_and_end_with_it(world):
    """The worker is frozen while the job is queued on it: the graph the scheduler holds
    is read, its capabilities tried on other files, then the job runs to its end."""
    from distributed import Client

    hub, alice, dask = world["hub"], world["tokens"]["alice"], world["dask"]
    worker = dask.worker_process()
    worker.suspend()
    try:
        job_id = submit(hub, alice, "scoped")
        tokens: set[bytes] = set()
        specs: list[bytes] = []
        with Client(dask.address, timeout=10) as c:
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline and len(tokens) < 2:
                specs = c.run_on_scheduler(_graph_specs)
                tokens = {t for s in specs for t in TOKEN.findall(s)}
                time.sleep(0.1)
        assert len(tokens) == 2, (len(specs), hub.log_tail())
        graph = b"".join(specs)
        # what the workers get is a URL and the capabilities: no storage, no secret
        assert STORAGE_SECRET.encode() not in graph
        assert str(hub.service_home).encode() not in graph
        assert b"datapilot_hub.storage" not in graph and b"LocalFileSystem" not in graph
        sources = storage_files(hub, "org-*/datasets/sales/v1/*.parquet")
        secret = storage_files(hub, "org-*/datasets/secret/v1/*.parquet")
        assert sources and secret
        rel = [str(p.relative_to(hub.service_home / "storage")) for p in sources + secret]
        acme_file, globex_file = rel[0], rel[-1]
        by_use = {}
        for t in map(bytes.decode, tokens):
            by_use["read" if _gateway(hub, t, acme_file).status_code == 200 else "write"] = t
        assert set(by_use) == {"read", "write"}
        read_token, write_token = by_use["read"], by_use["write"]
        whole = _gateway(hub, read_token, acme_file).content
        assert whole == (hub.service_home / "storage" / acme_file).read_bytes()
        part = httpx.get(
            f"{hub.url}/services/datapilot/api/v1/gateway/files",
            params={"path": acme_file},
            headers={"X-Datapilot-Capability": read_token, "Range": "bytes=4-9"},
        )
        assert part.status_code == 206 and part.content == whole[4:10]
        acme_dir = acme_file.split("/")[0]
        refused = [
            (read_token, globex_file, "GET"),  # another organization's file
            (write_token, globex_file, "GET"),
            (read_token, f"{acme_dir}/datasets/sales/v1/../v1/x.parquet", "GET"),
            (read_token, acme_file.replace("sales", "by_region"), "GET"),  # not granted
            (write_token, f"{acme_dir}/datasets/sales/v1/evil.parquet", "PUT"),
            (write_token, f"{globex_file.split('/')[0]}/datasets/scoped/v1/x.parquet", "PUT"),
            (read_token, f"{acme_dir}/datasets/scoped/v1/x.parquet", "PUT"),
            ("dpcap_" + "A" * 43, acme_file, "GET"),
        ]
        for token, path, method in refused:
            r = _gateway(hub, token, path, method, b"x" if method == "PUT" else None)
            assert r.status_code in (400, 404), (path, method, r.status_code, r.text)
        assert not storage_files(hub, "org-*/datasets/sales/v1/evil.parquet")
        # a user's own API token is no capability
        assert _gateway(hub, alice, acme_file).status_code == 404
    finally:
        worker.resume()
    job = hub.wait_job("acme", job_id, alice, timeout=120)
    assert job["state"] == "succeeded", (job, hub.log_tail())
    check_result(read(hub, alice, "scoped"))
    time.sleep(1.2)  # (the gateway trusts a job's state for a second)
    for token in (read_token, write_token):
        assert _gateway(hub, token, acme_file).status_code == 404
    out = storage_files(hub, "org-*/datasets/scoped/v1/*.parquet")
    rel = str(out[0].relative_to(hub.service_home / "storage"))
    assert (
        _gateway(
            hub, write_token, rel.replace(".parquet", "-late.parquet"), "PUT", b"x"
        ).status_code
        == 404
    )


def test_no_storage_credential_on_the_workers(world):
    dask = world["dask"]
    for p in [psutil.Process(dask.procs[1].pid), dask.worker_process()]:
        env = p.environ()
        assert not [k for k in env if k.startswith(("DATAPILOT_", "AWS_", "JUPYTERHUB_"))]
        text = " ".join(p.cmdline()) + " ".join(env.values())
        assert STORAGE_SECRET not in text
        assert str(world["hub"].service_home) not in text


def test_a_worker_killed_mid_recipe_leaves_no_partial_version(world):
    hub, alice, dask = world["hub"], world["tokens"]["alice"], world["dask"]
    steps = [{"op": "derive", "name": "net", "expr": "amount * 0.9"}, {"op": "sort", "by": ["id"]}]
    worker = dask.worker_process()
    worker.suspend()
    job_id = submit(hub, alice, "killed", steps)
    time.sleep(1.0)  # the tasks are handed to the frozen worker
    worker.resume()
    # kill -9 once the first output file is written, the rest still to come: the nanny
    # starts a new worker, the scheduler hands it the lost tasks again
    deadline = time.monotonic() + 60
    while not storage_files(hub, "org-*/datasets/killed/v*/part-*.parquet"):
        assert time.monotonic() < deadline, hub.log_tail()
        time.sleep(0.005)
    worker.kill()
    at_kill = hub.api("GET", f"/orgs/acme/jobs/{job_id}", alice).json()
    assert at_kill["state"] == "running", at_kill
    visible = []
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        r = hub.api("GET", "/orgs/acme/datasets/killed", alice)
        state = hub.api("GET", f"/orgs/acme/jobs/{job_id}", alice).json()["state"]
        if state in ("succeeded", "failed", "cancelled"):
            break
        visible.append(r.status_code)
        time.sleep(0.1)
    assert set(visible) <= {404}, visible  # never visible while the job runs
    job = hub.api("GET", f"/orgs/acme/jobs/{job_id}", alice).json()
    print(f"worker killed mid-recipe: the job {job['state']}", job.get("error") or "")
    files = storage_files(hub, "org-*/datasets/killed/**/*")
    if job["state"] == "succeeded":
        # retried on the restarted worker: the whole output, once
        frame = read(hub, alice, "killed")
        assert list(frame.id) == list(range(40_000))
        versions = hub.api("GET", "/orgs/acme/datasets/killed/versions", alice).json()
        assert len(versions["versions"]) == 1
        assert not [f for f in files if f.is_file() and f.suffix != ".parquet"], files
    else:
        assert job["state"] == "failed", job
        assert hub.api("GET", "/orgs/acme/datasets/killed", alice).status_code == 404
        assert not [f for f in files if f.is_file()], files
    assert dask.worker_process().pid != worker.pid
