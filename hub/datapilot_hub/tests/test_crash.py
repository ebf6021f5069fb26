"""kill -9 of the data service in the middle of an ingestion leaves nothing behind."""

from __future__ import annotations

import os
import signal
import time

import psutil
import pytest

from .utils import HubProcess, service_process

pytestmark = pytest.mark.e2e


def test_kill_9_during_ingestion_leaves_no_version_and_no_files(hub_home):
    home = hub_home
    hub = HubProcess(home)
    hub.start()
    try:
        hub.create_org("acme")
        hub.add_member("acme", "alice", "analyst")
        token = hub.user_token("alice")
        # big enough that the job is still running when it is killed
        rows = "".join(
            f"{i},{i * 1.5},name {i},2024-01-{1 + i % 28:02d}\n" for i in range(1_500_000)
        )
        r = hub.upload("acme", token, "big", ("id,amount,name,day\n" + rows).encode(), "big.csv")
        assert r.status_code == 202, r.text
        job_id = r.json()["job"]["id"]
        deadline = time.monotonic() + 60
        while True:
            job = hub.api("GET", f"/orgs/acme/jobs/{job_id}", token).json()
            if job["state"] == "running" and job["progress"] > 0.05:
                break
            assert job["state"] in ("queued", "running") and time.monotonic() < deadline, job
            time.sleep(0.05)
        service = service_process(hub)
        os.kill(service.pid, signal.SIGKILL)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                if service.status() == psutil.STATUS_ZOMBIE:
                    break
            except psutil.NoSuchProcess:
                break
            time.sleep(0.05)
        # something was written or spooled before the kill
        leftovers = list((home / "service" / "tmp").glob("*")) + list(
            (home / "service" / "storage").rglob("*.parquet")
        )
        assert leftovers
    finally:
        hub.stop()

    again = HubProcess(home)
    again.start()
    try:
        job = again.api("GET", f"/orgs/acme/jobs/{job_id}", token).json()
        assert job["state"] == "failed" and "stopped" in job["error"]
        assert again.api("GET", "/orgs/acme/datasets/big", token).status_code == 404
        assert again.api("GET", "/orgs/acme/datasets", token).json()["datasets"] == []
        assert not list((home / "service" / "storage").rglob("*.parquet"))
        assert not [
            p
            for p in (home / "service" / "tmp").glob("*")
            if p.name.startswith(("upload-", "spool-"))
        ]
        # and the same name can be ingested again
        r = again.upload("acme", token, "big", b"id\n1\n", "small.csv")
        assert again.wait_job("acme", r.json()["job"]["id"], token)["state"] == "succeeded"
    finally:
        again.stop()
