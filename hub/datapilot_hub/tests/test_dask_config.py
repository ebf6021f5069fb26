"""The embedded LocalCluster's sizing, and the storage gateway's capabilities (no HTTP)."""

from __future__ import annotations

import time

import pytest

from datapilot_hub import compute
from datapilot_hub.catalog import Job
from datapilot_hub.compute import DaskCluster
from datapilot_hub.domain.transform._gateway import StorageGateway, clean_path, org_of
from datapilot_hub.errors import DatapilotError


def test_the_cluster_is_sized_to_the_machine(monkeypatch):
    for var in ("WORKERS", "THREADS", "MEMORY_LIMIT", "LOCAL_DIRECTORY"):
        monkeypatch.delenv(f"DATAPILOT_DASK_{var}", raising=False)
    monkeypatch.setattr(compute, "_cpus", lambda: 8)
    monkeypatch.setattr(compute, "_memory", lambda: 32 << 30)
    sizing = DaskCluster(local_directory="/tmp/x")
    kwargs = sizing.cluster_kwargs()
    assert (kwargs["n_workers"], kwargs["threads_per_worker"]) == (4, 2)
    assert kwargs["memory_limit"] == (32 << 30) // 2 // 4
    assert kwargs["processes"] and kwargs["host"] == "127.0.0.1"
    monkeypatch.setattr(compute, "_cpus", lambda: 1)
    assert DaskCluster(local_directory="/tmp/x").cluster_kwargs()["n_workers"] == 1


def test_environment_overrides(monkeypatch):
    monkeypatch.setenv("DATAPILOT_DASK_WORKERS", "3")
    monkeypatch.setenv("DATAPILOT_DASK_THREADS", "1")
    monkeypatch.setenv("DATAPILOT_DASK_MEMORY_LIMIT", "256MiB")
    monkeypatch.setenv("DATAPILOT_DASK_LOCAL_DIRECTORY", "/tmp/spill-here")
    kwargs = DaskCluster().cluster_kwargs()
    assert kwargs["n_workers"] == 3 and kwargs["threads_per_worker"] == 1
    assert kwargs["memory_limit"] == 256 << 20
    assert kwargs["local_directory"] == "/tmp/spill-here"
    with pytest.raises(Exception, match="at least 1"):
        DaskCluster(workers=0)


def test_the_local_cluster_runs_as_configured(monkeypatch, tmp_path):
    from datapilot_hub.configuration import DatapilotConfig

    monkeypatch.setenv("DATAPILOT_DASK_WORKERS", "2")
    monkeypatch.setenv("DATAPILOT_DASK_THREADS", "1")
    monkeypatch.setenv("DATAPILOT_DASK_MEMORY_LIMIT", "300MiB")
    monkeypatch.setenv("DATAPILOT_DASK_LOCAL_DIRECTORY", str(tmp_path / "dask"))
    monkeypatch.delenv("DATAPILOT_DASK_SCHEDULER", raising=False)
    DaskCluster.clear_instance()
    try:
        client = compute.get_client(DatapilotConfig(home=str(tmp_path)))
        # (the status tells the client's last word from the scheduler, refreshed every
        # few seconds: no health check waits on the cluster)
        deadline = time.monotonic() + 15
        while (status := compute.status(DatapilotConfig(home=str(tmp_path))))["workers"] < 2:
            assert time.monotonic() < deadline, status
            time.sleep(0.2)
        assert status["kind"] == "LocalCluster" and status["workers"] == 2
        assert status["threads"] == 2 and status["memory_limit"] == 2 * (300 << 20)
        assert client.submit(sum, [1, 2]).result() == 3
    finally:
        compute.close()
        DaskCluster.clear_instance()


@pytest.fixture
def gateway(catalog, two_orgs):
    org_id = two_orgs["alpha", "alice"].org_id
    return StorageGateway(catalog, "http://127.0.0.1:9/services/datapilot", ttl=60), org_id


def _job(catalog, org_id, state, output):
    with catalog.session(org_id) as db:
        job = Job(
            organization_id=org_id,
            kind="transform",
            state=state,
            created_by="alice",
            output_path=output,
        )
        db.add(job)
        db.flush()
        return job.id


def test_a_capability_opens_exactly_what_it_grants(gateway, catalog):
    gw, org = gateway
    src = f"org-{org}/datasets/sales/v1/part-0.parquet"
    out = f"org-{org}/datasets/clean/v1"
    job = _job(catalog, org, "running", out)
    assert gw.job_writing(org, out) == job
    token = gw.issue(org, read=[src])
    writer = gw.issue(org, write_prefix=out, job_id=job)
    gw.bind_thread_grants(org, job)
    assert gw.authorize(token, src, write=False)[1] == src
    assert gw.authorize(writer, f"{out}/part-00000.parquet", write=True)[0].job_id == job
    # (a job reads back what it writes: its output lease)
    assert gw.authorize(writer, f"{out}/.writing", write=False)[1] == f"{out}/.writing"
    refused = [
        (token, src, True),  # a read capability writes nothing
        (token, f"org-{org}/datasets/sales/v2/part-0.parquet", False),
        (token, f"org-{org + 1}/datasets/sales/v1/part-0.parquet", False),
        (writer, f"{out}/../../sales/v1/part-0.parquet", True),
        (writer, f"org-{org}/datasets/clean/v2/x.parquet", True),
        ("dpcap_" + "x" * 43, src, False),
        (None, src, False),
    ]
    for tok, path, write in refused:
        with pytest.raises(DatapilotError) as e:
            gw.authorize(tok, path, write)
        assert e.value.status in (400, 404), (tok, path, write)
    with pytest.raises(ValueError):
        gw.issue(org, read=[f"org-{org + 1}/datasets/x/v1/a.parquet"])
    # the job ends: its capabilities (the sources' read one too) end with it
    with catalog.session(org) as db:
        Job.find(db, org, job).state = "failed"
    time.sleep(1.1)
    for tok, path, write in ((token, src, False), (writer, f"{out}/p.parquet", True)):
        with pytest.raises(DatapilotError) as e:
            gw.authorize(tok, path, write)
        assert e.value.status == 404


def test_paths_and_lifetimes():
    assert org_of("org-12/datasets/a/v1") == 12
    for bad in ("/etc/passwd", "org-1/../org-2/x", "org-1//x", "org-1/./x", "", "a\\b"):
        with pytest.raises(DatapilotError):
            clean_path(bad)
    with pytest.raises(ValueError):
        org_of("tmp/x")


def test_a_capability_without_a_job_lives_a_short_while(gateway, catalog):
    from datapilot_hub.domain.transform import _gateway

    gw, org = gateway
    gw.ttl = 3600
    src = f"org-{org}/datasets/sales/v1/part-0.parquet"
    token = gw.issue(org, read=[src])
    [grant] = gw._unbound.grants
    assert grant.expires - time.monotonic() <= _gateway.UNBOUND_TTL
    job = _job(catalog, org, "running", f"org-{org}/datasets/out/v1")
    gw.bind_thread_grants(org, job)
    assert grant.expires - time.monotonic() > _gateway.UNBOUND_TTL
    assert gw.authorize(token, src, write=False)[0].job_id == job
    gw.revoke_job(job)
    with pytest.raises(DatapilotError):
        gw.authorize(token, src, write=False)
