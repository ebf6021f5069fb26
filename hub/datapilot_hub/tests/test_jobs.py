"""Jobs: background runs, cancellation, and what a dead service leaves behind."""

from __future__ import annotations

import threading
import time

import pytest

from datapilot_hub.catalog import Dataset, DatasetVersion, Job, utcnow
from datapilot_hub.domain.jobs import JobRunner
from datapilot_hub.errors import DatapilotError


def _wait(runner, ctx, job_id, timeout=20):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = runner.get(ctx, job_id)
        if job["state"] in Job.FINAL_STATES:
            return job
        time.sleep(0.02)
    raise TimeoutError(job)


async def test_a_job_runs_in_the_background_and_reports_progress(catalog, storage, two_orgs):
    ctx = two_orgs["alpha", "alice"]
    runner = JobRunner(catalog, storage)
    job = runner.create(ctx, "test", None)
    assert job["state"] == "queued"
    seen = []

    def work(handle):
        for i in range(5):
            handle.progress(i / 5, force=True)
            seen.append(runner.get(ctx, handle.id)["progress"])
        return {"answer": 42}

    runner.submit(job["id"], ctx.org_id, work)
    done = _wait(runner, ctx, job["id"])
    assert done["state"] == "succeeded" and done["result"] == {"answer": 42}
    assert done["progress"] == 1.0 and seen == sorted(seen)
    runner.shutdown()


async def test_a_failing_job_removes_its_output(catalog, storage, two_orgs):
    ctx = two_orgs["alpha", "alice"]
    runner = JobRunner(catalog, storage)
    job = runner.create(ctx, "test", None)

    def work(handle):
        handle.set_output("org-1/datasets/x/v1")
        with storage.open("org-1/datasets/x/v1/part-0.parquet", "wb") as f:
            f.write(b"half")
        raise DatapilotError(422, "bad", "The file is bad.")

    runner.submit(job["id"], ctx.org_id, work)
    done = _wait(runner, ctx, job["id"])
    assert done["state"] == "failed" and done["error"] == "The file is bad."
    assert not storage.exists("org-1/datasets/x/v1")
    runner.shutdown()


async def test_cancel_stops_a_running_job(catalog, storage, two_orgs):
    ctx = two_orgs["alpha", "alice"]
    runner = JobRunner(catalog, storage)
    job = runner.create(ctx, "test", None)
    started = threading.Event()

    def work(handle):
        started.set()
        while True:
            handle.progress(0.1, force=True)
            time.sleep(0.01)

    runner.submit(job["id"], ctx.org_id, work)
    assert started.wait(10)
    # a viewer of the same org may not cancel alice's job; another org cannot see it
    with pytest.raises(DatapilotError) as e:
        runner.cancel(two_orgs["alpha", "vera"], job["id"])
    assert e.value.status == 403
    with pytest.raises(DatapilotError) as e:
        runner.cancel(two_orgs["beta", "bob"], job["id"])
    assert e.value.status == 404
    runner.cancel(ctx, job["id"])
    assert _wait(runner, ctx, job["id"])["state"] == "cancelled"
    runner.shutdown()


async def test_stale_jobs_are_failed_and_their_files_removed_at_start(catalog, storage, two_orgs):
    """What a kill -9 of the service leaves: a running job and unpublished files."""
    ctx = two_orgs["alpha", "alice"]
    with catalog.session(ctx.org_id) as db:
        ds = Dataset(
            organization_id=ctx.org_id,
            name="sales",
            created_by="alice",
            current_version=1,
            next_version=3,
        )
        db.add(ds)
        db.flush()
        db.add(
            DatasetVersion(
                organization_id=ctx.org_id,
                dataset_id=ds.id,
                version=1,
                columns=[],
                rows=0,
                bytes=0,
                created_by="alice",
                path=storage.dataset_version_dir(ctx.org_id, "sales", 1),
            )
        )
        job = Job(
            organization_id=ctx.org_id,
            kind="ingest",
            state="running",
            created_by="alice",
            started=utcnow(),
            output_path=storage.dataset_version_dir(ctx.org_id, "sales", 2),
        )
        db.add(job)
        db.flush()
        job_id = job.id
    published = storage.dataset_version_dir(ctx.org_id, "sales", 1) + "/part-0.parquet"
    orphan = storage.dataset_version_dir(ctx.org_id, "sales", 2) + "/part-0.parquet"
    for path in (published, orphan):
        with storage.open(path, "wb") as f:
            f.write(b"x")
    runner = JobRunner(catalog, storage)
    assert runner.sweep_stale() == 1
    job = runner.get(ctx, job_id)
    assert job["state"] == "failed" and "stopped" in job["error"]
    assert storage.exists(published)
    assert not storage.exists(orphan)
    runner.shutdown()


async def test_recent_jobs_are_the_organizations_newest_first(catalog, storage, two_orgs):
    alice = two_orgs["alpha", "alice"]
    other = two_orgs["beta", "bob"]
    runner = JobRunner(catalog, storage)
    try:
        first = runner.create(alice, "ingest", "a")
        time.sleep(0.01)  # (the order is by creation time)
        second = runner.create(alice, "ingest", "b")
        foreign = runner.create(other, "ingest", "c")
        runner.submit(first["id"], alice.org_id, lambda handle: {"rows": 1})
        assert _wait(runner, alice, first["id"])["state"] == "succeeded"

        listed = runner.recent(alice)
        assert [j["id"] for j in listed] == [second["id"], first["id"]]
        assert foreign["id"] not in {j["id"] for j in listed}
        # the queued one only, when only the active are asked for
        assert [j["id"] for j in runner.recent(alice, active=True)] == [second["id"]]
        assert [j["id"] for j in runner.recent(alice, limit=1)] == [second["id"]]
        assert [j["id"] for j in runner.recent(other)] == [foreign["id"]]
    finally:
        runner.shutdown()
