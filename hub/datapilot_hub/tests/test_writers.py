"""Concurrent writers of one dataset: no version lost, ``current_version`` never goes back,
and the job that cannot publish fails with a clear 409 and leaves no files.

The domain tests run the real pipeline in real threads on both catalog backends; a gate
on the publish step (the jobs' own handles, held until every job of the race has staged
its version) makes the race happen every time. The hub tests race an upload through the
proxy against ``dp.save``'s client.
"""

from __future__ import annotations

import threading
import time

import pandas as pd
import pytest

from datapilot_hub.catalog import Dataset, Job
from datapilot_hub.domain.datasets import DatasetService
from datapilot_hub.domain.ingest import Ingestor, IngestRequest, Limits, sniff
from datapilot_hub.domain.jobs import JobRunner
from datapilot_kernel import DatapilotClient, DatapilotError

from .test_ingest import _three_sheet_workbook

BASE = b"id,amount\n1,1.5\n2,2.5\n3,3.5\n"


def rows_csv(n: int, start: int = 100) -> bytes:
    return b"id,amount\n" + b"".join(f"{i},{i}.25\n".encode() for i in range(start, start + n))


class _PublishGate:
    """A job's own handle, held at the publish step until every job of the race is there."""

    def __init__(self, handle, barrier: threading.Barrier) -> None:
        self._handle, self._barrier, self.id = handle, barrier, handle.id

    def progress(self, fraction: float, force: bool = False) -> None:
        if fraction >= 0.999:  # what the pipeline reports just before it publishes
            self._barrier.wait(20)
        self._handle.progress(fraction, force)

    def set_output(self, path: str) -> None:
        self._handle.set_output(path)

    def check_cancelled(self) -> None:
        self._handle.check_cancelled()


class Writers:
    """Starts ingestion jobs of one organization that run at the same time."""

    def __init__(self, catalog, storage, ctx, tmp_path) -> None:
        self.catalog, self.storage, self.ctx, self.tmp = catalog, storage, ctx, tmp_path
        self.runner = JobRunner(catalog, storage, max_workers=8)
        self.ingestor = Ingestor(catalog, storage, Limits(), str(tmp_path))
        self.service = DatasetService(catalog, storage)

    def start(self, content, filename, name, mode="create", options=None, gate=None) -> str:
        src = self.tmp / f"upload-{time.monotonic_ns()}"
        src.write_bytes(content)
        options = options or {}
        sniffed = sniff(str(src), filename, options, Limits())
        job = self.runner.create(self.ctx, "ingest", name)
        req = IngestRequest(
            self.ctx.org_id,
            name,
            mode,
            str(src),
            filename,
            self.ctx.caller.name,
            options,
            sniffed.to_json(),
        )

        def work(handle):
            return self.ingestor.run(req, _PublishGate(handle, gate) if gate else handle)

        self.runner.submit(job["id"], self.ctx.org_id, work)
        return job["id"]

    def wait(self, job_id: str, timeout: float = 60) -> dict:
        deadline = time.monotonic() + timeout
        while (job := self.runner.get(self.ctx, job_id))["state"] not in Job.FINAL_STATES:
            assert time.monotonic() < deadline, job
            time.sleep(0.02)
        return job

    def race(self, *uploads) -> list[dict]:
        """Run ``(content, filename, name, mode[, options])`` uploads, all staged before
        any publishes; their finished jobs, in the same order."""
        gate = threading.Barrier(len(uploads))
        ids = [
            self.start(*u[:4], options=(u[4] if len(u) > 4 else None), gate=gate) for u in uploads
        ]
        return [self.wait(i) for i in ids]

    def version_dirs(self, name: str) -> set[str]:
        prefix = f"org-{self.ctx.org_id}/datasets/{name}/"
        return {p[len(prefix) :].split("/")[0] for p in self.storage.files(prefix.rstrip("/"))}

    def versions(self, name: str) -> list[dict]:
        return self.service.versions(self.ctx, name)


@pytest.fixture
async def writers(catalog, storage, two_orgs, tmp_path):
    w = Writers(catalog, storage, two_orgs["alpha", "alice"], tmp_path)
    yield w
    w.runner.shutdown()


def one_winner(jobs: list[dict], code: str) -> tuple[dict, dict]:
    """The job that published and the one that failed with a 409 ``code``."""
    states = sorted(j["state"] for j in jobs)
    assert states == ["failed", "succeeded"], jobs
    [won] = [j for j in jobs if j["state"] == "succeeded"]
    [lost] = [j for j in jobs if j["state"] == "failed"]
    assert lost["result"]["error"] == code, lost
    assert lost["result"]["status"] == 409, lost
    assert lost["error"] and "nothing was published" in lost["error"], lost
    return won, lost


async def test_two_appends_at_once_one_publishes_the_other_is_409(writers):
    assert writers.wait(writers.start(BASE, "base.csv", "sales"))["state"] == "succeeded"
    jobs = writers.race(
        (rows_csv(2), "a.csv", "sales", "append"), (rows_csv(4, 200), "b.csv", "sales", "append")
    )
    won, lost = one_winner(jobs, "version_conflict")
    info = writers.service.describe(writers.ctx, "sales")
    # the winner's rows are on top of the base; the loser's rows are nowhere
    assert info["version"] == won["result"]["version"] > 1
    assert info["rows"] == won["result"]["rows"] == (5 if won is jobs[0] else 7)
    assert [(v["version"], v["parent_version"]) for v in writers.versions("sales")] == [
        (1, None),
        (info["version"], 1),
    ]
    assert lost["result"]["details"]["dataset"] == "sales"
    assert lost["result"]["details"]["current_version"] == info["version"]
    # the loser's files are gone: only published versions are in storage
    assert writers.version_dirs("sales") == {"v1", f"v{info['version']}"}


async def test_two_creates_of_one_name_one_wins_the_other_is_409(writers):
    jobs = writers.race(
        (rows_csv(2), "a.csv", "fresh", "create"), (rows_csv(5), "b.csv", "fresh", "create")
    )
    won, lost = one_winner(jobs, "dataset_exists")
    info = writers.service.describe(writers.ctx, "fresh")
    assert info["version"] == won["result"]["version"]
    assert info["rows"] == won["result"]["rows"]
    assert [v["version"] for v in writers.versions("fresh")] == [info["version"]]
    assert writers.version_dirs("fresh") == {f"v{info['version']}"}
    # the dataset is the winner's: a later create is refused, an append builds on it
    job = writers.wait(writers.start(rows_csv(1), "c.csv", "fresh", "append"))
    assert job["state"] == "succeeded" and job["result"]["rows"] == info["rows"] + 1, job


async def test_replace_and_append_at_once(writers):
    assert writers.wait(writers.start(BASE, "base.csv", "sales"))["state"] == "succeeded"
    jobs = writers.race(
        (rows_csv(7), "r.csv", "sales", "replace"), (rows_csv(2), "a.csv", "sales", "append")
    )
    won, lost = one_winner(jobs, "version_conflict")
    info = writers.service.describe(writers.ctx, "sales")
    assert info["version"] == won["result"]["version"]
    # a replace that won holds its own 7 rows; an append that won, the base and its 2
    assert info["rows"] == (7 if won is jobs[0] else 5)
    assert writers.version_dirs("sales") == {"v1", f"v{info['version']}"}


async def test_many_writers_lose_no_version_and_never_go_back(writers):
    """Appends started together, no gate: whatever the interleaving, every published
    append is on top of the one before, the others are 409, and the current version
    only ever grows."""
    assert writers.wait(writers.start(BASE, "base.csv", "sales"))["state"] == "succeeded"
    org_id = writers.ctx.org_id
    seen: list[int] = []
    done = threading.Event()

    def watch() -> None:
        while not done.is_set():
            with writers.catalog.session(org_id) as db:
                seen.append(Dataset.find(db, org_id, "sales").current_version)
            time.sleep(0.005)

    watcher = threading.Thread(target=watch)
    watcher.start()
    sizes = [1, 2, 4, 8, 16, 32]
    try:
        ids = [writers.start(rows_csv(n, 1000 * n), f"a{n}.csv", "sales", "append") for n in sizes]
        jobs = [writers.wait(i) for i in ids]
    finally:
        done.set()
        watcher.join()
    assert seen == sorted(seen), seen
    failed = [j for j in jobs if j["state"] == "failed"]
    assert all(j["result"]["error"] == "version_conflict" for j in failed), failed
    published = sorted(
        (j["result"]["version"], n)
        for j, n in zip(jobs, sizes, strict=True)
        if j["state"] == "succeeded"
    )
    assert published, jobs
    versions = writers.versions("sales")
    # each published version's parent is the one published before it
    chain = [(v["version"], v["parent_version"]) for v in versions]
    assert chain == list(
        zip(
            [1] + [v for v, _ in published], [None, 1] + [v for v, _ in published][:-1], strict=True
        )
    )
    info = writers.service.describe(writers.ctx, "sales")
    assert info["version"] == published[-1][0] == max(seen)
    assert info["rows"] == 3 + sum(n for _, n in published)
    assert writers.version_dirs("sales") == {f"v{v['version']}" for v in versions}


async def test_every_sheet_publish_is_all_or_nothing_under_a_race(writers):
    book = _three_sheet_workbook()
    job = writers.wait(writers.start(book, "book.xlsx", "book", options={"sheet": "*"}))
    assert job["state"] == "succeeded", job
    jobs = writers.race(
        (book, "book.xlsx", "book", "append", {"sheet": "*"}),
        (b"id,since\n3,2022-01-01\n", "c.csv", "book_customers", "append"),
    )
    won, lost = one_winner(jobs, "version_conflict")
    sales = writers.versions("book_q1_sales")
    customers = writers.versions("book_customers")
    if won is jobs[0]:
        assert [v["version"] for v in sales] == [1, 2] and len(customers) == 2
    else:
        # the workbook's job lost on one sheet: none of its sheets was published
        assert lost["result"]["details"]["dataset"] == "book_customers"
        assert [v["version"] for v in sales] == [1]
        assert [(v["version"], v["rows"]) for v in customers] == [
            (1, 2),
            (won["result"]["version"], 3),
        ]
    assert writers.version_dirs("book_q1_sales") == {f"v{v['version']}" for v in sales}
    assert writers.version_dirs("book_customers") == {f"v{v['version']}" for v in customers}


# -- through a real JupyterHub, proxy and data service --------------------------------


# the long job's rows: long enough that the other writer usually overtakes it
LONG_ROWS = 2_000_000


def big_csv(rows: int) -> bytes:
    return b"id,amount\n" + b"".join(f"{i},{i}.5\n".encode() for i in range(rows))


@pytest.fixture(scope="module")
def team(hub):
    """acme with two analysts; the plan allows the large file the races need."""
    tokens = hub.populate(
        {"acme": "Acme"}, [("acme", "alice", "analyst"), ("acme", "bob", "analyst")]
    )
    r = hub.api("PUT", "/orgs/acme/plan", hub.admin_token, json={"plan": "business"})
    assert r.status_code == 200, r.text
    return tokens


def _client(hub, token: str):
    """The kernel's client (``dp.save``), pointed at the service through the proxy."""
    return DatapilotClient(
        url=f"{hub.url}/services/datapilot/", token=token, org="acme", progress=False
    )


def _running(hub, job_id: str, token: str) -> None:
    """Wait until the job reports progress: it has reserved its version and is reading."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        job = hub.api("GET", f"/orgs/acme/jobs/{job_id}", token).json()
        assert job["state"] in ("queued", "running"), job
        if job["progress"] > 0:
            return
        time.sleep(0.02)
    raise TimeoutError(job)


def _stored_versions(hub, name: str) -> set[str]:
    [ddir] = list((hub.service_home / "storage").glob(f"org-*/datasets/{name}"))
    return {p.name for p in ddir.iterdir()}


def test_hub_append_overtaken_by_dp_save_is_409(hub, team):
    """A long append and a ``dp.save`` append of one dataset at once.

    The long job has reserved its version before the save starts; the save publishes
    first, so the long job cannot put its version over it and fails with a 409. (Had
    the long job published before the save reserved, the save would build on it: the
    test accepts that order too, and checks that no rows are lost either way.)
    """

    alice, bob = team["alice"], team["bob"]
    r = hub.upload("acme", alice, "ledger", BASE, "base.csv")
    assert hub.wait_job("acme", r.json()["job"]["id"], alice)["state"] == "succeeded"
    r = hub.upload("acme", alice, "ledger", big_csv(LONG_ROWS), "big.csv", mode="append")
    assert r.status_code == 202, r.text
    long_job = r.json()["job"]["id"]
    _running(hub, long_job, alice)

    saved = _client(hub, bob).save(
        pd.DataFrame({"id": [7, 8], "amount": [7.5, 8.5]}), "ledger", "append"
    )
    job = hub.wait_job("acme", long_job, alice, timeout=120)
    described = hub.api("GET", "/orgs/acme/datasets/ledger", alice).json()
    chain = [(v["version"], v["parent_version"], v["rows"]) for v in described["versions"]]
    if job["state"] == "failed":
        assert job["result"]["error"] == "version_conflict", job
        assert job["result"]["status"] == 409 and "nothing was published" in job["error"]
        assert chain == [(1, None, 3), (saved["version"], 1, 5)]
    else:  # the long job was done before the save reserved its version
        assert chain == [
            (1, None, 3),
            (job["result"]["version"], 1, 3 + LONG_ROWS),
            (saved["version"], job["result"]["version"], 5 + LONG_ROWS),
        ]
    # nothing went back, and only published versions have files
    assert described["version"] == saved["version"] == max(v for v, _, _ in chain)
    assert _stored_versions(hub, "ledger") == {f"v{v}" for v, _, _ in chain}


def test_hub_two_creates_of_one_name(hub, team):
    """A long create and a ``dp.save`` create of one new name: one dataset, the other 409."""

    alice, bob = team["alice"], team["bob"]
    r = hub.upload("acme", alice, "fresh", big_csv(LONG_ROWS), "big.csv")
    assert r.status_code == 202, r.text
    long_job = r.json()["job"]["id"]
    _running(hub, long_job, alice)

    try:
        saved = _client(hub, bob).save(pd.DataFrame({"id": [1], "amount": [1.5]}), "fresh")
    except DatapilotError as e:  # the long job had published: refused before any job
        saved = None
        assert e.status == 409 and e.code == "dataset_exists", e
    job = hub.wait_job("acme", long_job, alice, timeout=120)
    described = hub.api("GET", "/orgs/acme/datasets/fresh", alice).json()
    if saved is not None:
        assert job["state"] == "failed", job
        assert job["result"]["error"] == "dataset_exists" and job["result"]["status"] == 409
        winner = (saved["version"], 1, "bob")
    else:
        assert job["state"] == "succeeded", job
        winner = (job["result"]["version"], LONG_ROWS, "alice")
    assert [(v["version"], v["rows"], v["created_by"]) for v in described["versions"]] == [winner]
    assert _stored_versions(hub, "fresh") == {f"v{winner[0]}"}
