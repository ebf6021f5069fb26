"""Ingestion into the catalog and storage (both catalog backends, local and S3 storage)."""

from __future__ import annotations

import io
import time

import pandas as pd
import pyarrow.parquet as pq
import pytest

from datapilot_hub.catalog import Job
from datapilot_hub.domain.datasets import DatasetService, ReadRequest
from datapilot_hub.domain.ingest import Ingestor, IngestRequest, normalize_names
from datapilot_hub.domain.jobs import JobRunner
from datapilot_hub.errors import DatapilotError


def _ingest(catalog, storage, ctx, tmp_path, name, content: bytes, mode="create", filename="f.csv"):
    src = tmp_path / f"upload-{time.monotonic_ns()}"
    src.write_bytes(content)
    runner = JobRunner(catalog, storage)
    job = runner.create(ctx, "ingest", name)
    req = IngestRequest(ctx.org_id, name, mode, str(src), filename, ctx.caller.name)
    runner.submit(job["id"], ctx.org_id, lambda h: Ingestor(catalog, storage).run(req, h))
    deadline = time.monotonic() + 30
    while (state := runner.get(ctx, job["id"]))["state"] not in Job.FINAL_STATES:
        assert time.monotonic() < deadline
        time.sleep(0.02)
    runner.shutdown()
    return state


def test_normalize_names():
    assert normalize_names(["Order ID", "order id", "", "2024 Sales (€)", "Città"]) == [
        "order_id",
        "order_id_2",
        "column_3",
        "c_2024_sales",
        "citta",
    ]


async def test_csv_round_trip_with_types_and_labels(catalog, storage, two_orgs, tmp_path):
    ctx = two_orgs["alpha", "alice"]
    csv = b"Order ID,Amount,Paid,Day,When\n1,2.5,true,2024-01-02,2024-01-02 10:00:00\n2,NA,false,2024-02-03,2024-02-03 11:30:00\n"
    job = _ingest(catalog, storage, ctx, tmp_path, "orders", csv)
    assert job["state"] == "succeeded", job
    info = DatasetService(catalog, storage).describe(ctx, "orders")
    cols = {c["name"]: (c["label"], c["type"]) for c in info["columns"]}
    assert cols == {
        "order_id": ("Order ID", "integer"),
        "amount": ("Amount", "number"),
        "paid": ("Paid", "boolean"),
        "day": ("Day", "date"),
        "when": ("When", "datetime"),
    }
    assert info["columns"][1]["stats"]["nulls"] == 1
    assert storage.files(f"org-{ctx.org_id}/datasets/orders/v1") == [
        f"org-{ctx.org_id}/datasets/orders/v1/part-0.parquet"
    ]


async def test_reads_are_scoped_and_permissioned(catalog, storage, two_orgs, tmp_path):
    ctx = two_orgs["alpha", "alice"]
    assert _ingest(catalog, storage, ctx, tmp_path, "t", b"a\n1\n2\n")["state"] == "succeeded"
    service = DatasetService(catalog, storage)
    with pytest.raises(DatapilotError) as e:
        service.describe(two_orgs["beta", "bob"], "t")
    assert e.value.status == 404
    assert service.list(two_orgs["beta", "bob"]) == []
    with pytest.raises(DatapilotError) as e:
        service.delete(two_orgs["alpha", "vera"], "t")
    assert e.value.status == 403
    target = service.resolve_read(
        two_orgs["alpha", "vera"], "t", req := ReadRequest(format="parquet")
    )
    data = b"".join(service.iter_data(target, req))
    assert pq.read_table(io.BytesIO(data)).column("a").to_pylist() == [1, 2]


async def test_failed_ingestion_leaves_no_version_and_no_files(
    catalog, storage, two_orgs, tmp_path
):
    ctx = two_orgs["alpha", "alice"]
    # the second block holds text in an integer column: the reader fails mid-file
    rows = b"".join(b"%d\n" % i for i in range(3_000_000))
    job = _ingest(catalog, storage, ctx, tmp_path, "broken", b"n\n" + rows + b"oops\n")
    assert job["state"] == "failed" and "CSV" in job["error"], job
    service = DatasetService(catalog, storage)
    assert service.list(ctx) == []
    assert storage.files(f"org-{ctx.org_id}/datasets/broken") == []


async def test_ingestion_into_s3_storage(catalog, s3_storage, two_orgs, tmp_path):
    """The S3 path against a real S3-compatible server on loopback."""
    ctx = two_orgs["alpha", "alice"]
    df = pd.DataFrame({"x": range(1000), "y": [f"v{i}" for i in range(1000)]})
    buf = io.BytesIO()
    df.to_parquet(buf)
    job = _ingest(
        catalog, s3_storage, ctx, tmp_path, "remote", buf.getvalue(), filename="r.parquet"
    )
    assert job["state"] == "succeeded", job
    files = s3_storage.files(f"org-{ctx.org_id}/datasets/remote")
    assert files == [f"org-{ctx.org_id}/datasets/remote/v1/part-0.parquet"]
    service = DatasetService(catalog, s3_storage)
    req = ReadRequest(format="csv", offset=10, limit=2)
    target = service.resolve_read(ctx, "remote", req)
    text = b"".join(service.iter_data(target, req)).decode()
    assert text.splitlines() == ['"x","y"', '10,"v10"', '11,"v11"']
    service.delete(two_orgs["alpha", "mona"], "remote")
    assert s3_storage.files(f"org-{ctx.org_id}/datasets/remote") == []


def test_storage_paths_cannot_escape(storage):
    with pytest.raises(ValueError):
        storage.full_path("../elsewhere")
    with pytest.raises(ValueError):
        storage.full_path("/etc/passwd")
    assert storage.dataset_version_dir(3, "sales", 2) == "org-3/datasets/sales/v2"
