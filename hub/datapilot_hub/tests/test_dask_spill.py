"""Out of core: a recipe that sorts a dataset larger than the memory given to the only Dask
worker completes, by spilling to disk, without the worker being restarted for memory; the
output is whole and in order.

``make test`` sorts about 1.4 times the worker's memory; ``DATAPILOT_TEST_SLOW=1`` three
times (about four minutes on two cores)."""

from __future__ import annotations

import io
import os
import threading
import time

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from .test_dask_external import DaskProcesses, upload_parquet
from .utils import running_hub

pytestmark = pytest.mark.e2e

SLOW = os.environ.get("DATAPILOT_TEST_SLOW") == "1"

MEMORY_LIMIT = 1024 * 2**20
# a worker imports about 300 MB before any data: 1 GiB is the smallest that spills rather
# than pausing; about 700 bytes a row in memory
ROWS, GROUP = (4_500_000 if SLOW else 2_000_000), 25_000
NOTES = [f"{i:03d} " + "lorem ipsum dolor sit amet " * 25 for i in range(40)]


def big_table() -> tuple[pa.Table, int]:
    """The table, and its size in memory as the recipe's partitions hold it (plain
    strings: the Parquet dictionary is decoded)."""
    rng = np.random.default_rng(21)
    notes = pa.array(NOTES)
    codes = pa.array(rng.integers(0, len(NOTES), ROWS).astype("int32"))
    table = pa.table(
        {
            "key": rng.permutation(ROWS).astype("int64"),
            "region": pa.DictionaryArray.from_arrays(
                pa.array(rng.integers(0, 4, ROWS).astype("int32")),
                pa.array(["north", "south", "east", "west"]),
            ),
            "amount": rng.integers(1, 1000, ROWS).astype("float64"),
            # long, repetitive text: small as Parquet, big in memory
            "note": pa.DictionaryArray.from_arrays(codes, notes),
        }
    )
    lengths = np.array([len(n) for n in NOTES])[codes.to_numpy()]
    in_memory = int(lengths.sum()) + ROWS * (8 + 8 + 5 + 3 * 4)
    return table, in_memory


@pytest.fixture(scope="module")
def world(request, tmp_path_factory):
    dask = DaskProcesses(
        tmp_path_factory.mktemp("spill"), memory_limit=str(MEMORY_LIMIT), pause=False
    )
    dask.start()
    try:
        env = {"DATAPILOT_DASK_SCHEDULER": dask.address}
        with running_hub(request, tmp_path_factory, "sqlite", env=env, label="spill") as hub:
            tokens = hub.populate({"acme": "Acme"}, [("acme", "alice", "analyst")])
            # (the free plan's datasets stop at a million rows)
            r = hub.api("PUT", "/orgs/acme/plan", hub.admin_token, json={"plan": "team"})
            assert r.status_code == 200, r.text
            table, in_memory = big_table()
            parquet = upload_parquet(hub, "acme", tokens["alice"], "big", table, GROUP, 180)
            del table
            yield {
                "hub": hub,
                "tokens": tokens,
                "dask": dask,
                "in_memory": in_memory,
                "parquet": parquet,
            }
    finally:
        dask.stop()


def _spilled(dask_worker=None) -> dict:
    metrics = dict(dask_worker.data.cumulative_metrics)
    return {f"{a}:{b}": v for (a, b), v in metrics.items()}


def test_a_sort_bigger_than_the_workers_memory_completes(world):
    from distributed import Client

    hub, alice, dask = world["hub"], world["tokens"]["alice"], world["dask"]
    assert world["in_memory"] > (2.9 if SLOW else 1.3) * MEMORY_LIMIT, world["in_memory"]
    worker = dask.worker_process()
    peak = {"rss": 0}
    done = threading.Event()

    def watch():
        while not done.is_set():
            try:
                peak["rss"] = max(peak["rss"], worker.memory_info().rss)
            except Exception:
                return
            time.sleep(0.05)

    watcher = threading.Thread(target=watch)
    watcher.start()
    steps = [
        {"op": "derive", "name": "net", "expr": "amount * 0.9"},
        {"op": "sort", "by": ["key"]},
    ]
    body = {"steps": steps, "output": {"name": "big_sorted", "mode": "create"}}
    started = time.monotonic()
    try:
        r = hub.api("POST", "/orgs/acme/datasets/big/transform", alice, json=body)
        assert r.status_code == 202, r.text
        job = hub.wait_job("acme", r.json()["job"]["id"], alice, timeout=240)
    finally:
        done.set()
        watcher.join()
    seconds = time.monotonic() - started
    assert job["state"] == "succeeded", (job, hub.log_tail())
    # the same worker all along: never restarted for going over its memory
    assert dask.worker_process().pid == worker.pid
    assert peak["rss"] < MEMORY_LIMIT, peak
    with Client(dask.address, timeout=10) as c:
        metrics = next(iter(c.run(_spilled).values()))
    print(
        f"in memory {world['in_memory'] >> 20} MiB, Parquet {world['parquet'] >> 20} MiB,"
        f" worker limit {MEMORY_LIMIT >> 20} MiB, peak RSS {peak['rss'] >> 20} MiB,"
        f" {seconds:.1f} s, {metrics}"
    )
    # the worker's own spilling (not only the shuffle's files): at least what does not fit
    assert metrics.get("disk-write:bytes", 0) > world["in_memory"] - MEMORY_LIMIT, metrics
    info = hub.api("GET", "/orgs/acme/datasets/big_sorted", alice).json()
    assert info["rows"] == ROWS
    # in order, whole: read it back in row groups to keep this process small too
    r = hub.api("GET", "/orgs/acme/datasets/big_sorted/data?format=parquet&columns=key,net", alice)
    table = pq.read_table(io.BytesIO(r.content))
    keys = table.column("key").to_numpy()
    assert (keys == np.arange(ROWS)).all()
