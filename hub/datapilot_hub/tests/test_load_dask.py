"""dp.load_dask in a real kernel: a lazy dask DataFrame whose partitions are the version's
Parquet row groups, each fetched through the data service (``GET .../parts/{i}``) only when
a computation needs it; the parts endpoints' organization scope and argument checks."""

from __future__ import annotations

import asyncio
import io
from collections import Counter

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from .test_dask_external import upload_parquet
from .utils import run_in_kernel, running_hub

pytestmark = pytest.mark.e2e

ROWS, GROUP = 10_000, 2_000


def _frame() -> pd.DataFrame:
    rng = np.random.default_rng(13)
    return pd.DataFrame(
        {
            "order_id": np.arange(ROWS, dtype="int64"),
            "region": rng.choice(["north", "south", "east"], ROWS),
            "amount": rng.integers(1, 1000, ROWS).astype("float64"),
        }
    )


@pytest.fixture(scope="module")
def world(request, tmp_path_factory):
    with running_hub(request, tmp_path_factory, "sqlite", label="loaddask") as hub:
        tokens = hub.populate(
            {"acme": "Acme", "globex": "Globex"},
            [
                ("acme", "alice", "analyst"),
                ("acme", "mona", "manager"),
                ("globex", "gary", "analyst"),
            ],
        )
        # row groups of GROUP rows: the version has 5 parts
        upload_parquet(hub, "acme", tokens["alice"], "sales", _frame(), GROUP)
        yield {"hub": hub, "tokens": tokens}


def _part_reads(hub, token) -> Counter:
    """How many times each part was read (the audit records every read of a part)."""
    r = hub.api("GET", "/orgs/acme/audit?action=dataset.read_part&limit=1000", token)
    assert r.status_code == 200, r.text
    return Counter(e["details"]["part"] for e in r.json()["events"] if e["outcome"] == "ok")


def test_parts_listing_and_one_part(world):
    hub, t = world["hub"], world["tokens"]
    r = hub.api("GET", "/orgs/acme/datasets/sales/parts", t["alice"])
    assert r.status_code == 200, r.text
    listing = r.json()
    assert listing["version"] == 1 and listing["rows"] == ROWS
    assert [p["rows"] for p in listing["parts"]] == [GROUP] * (ROWS // GROUP)
    assert listing["columns"] == ["order_id", "region", "amount"]
    r = hub.api(
        "GET", "/orgs/acme/datasets/sales/parts/2?version=1&columns=amount,order_id", t["alice"]
    )
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "application/vnd.apache.parquet"
    part = pq.read_table(io.BytesIO(r.content)).to_pandas()
    expected = _frame().iloc[2 * GROUP : 3 * GROUP][["amount", "order_id"]].reset_index(drop=True)
    pd.testing.assert_frame_equal(part, expected)


@pytest.mark.parametrize(
    "path, status, code",
    [
        ("/parts/..%2F..%2Fv1", 400, "invalid_input"),
        ("/parts/..%2F..%2F..%2Forg-2%2Fdatasets%2Fx%2Fv1%2Fdata.parquet", 400, "invalid_input"),
        ("/parts/-1", 400, "invalid_input"),
        ("/parts/1e3", 400, "invalid_input"),
        ("/parts/5", 404, "not_found"),
        ("/parts/0?version=9", 404, "not_found"),
        ("/parts/0?columns=nope", 400, "unknown_column"),
        ("/parts?version=x", 400, "invalid_input"),
    ],
)
def test_bad_parts_are_refused(world, path, status, code):
    hub, t = world["hub"], world["tokens"]
    r = hub.api("GET", f"/orgs/acme/datasets/sales{path}", t["alice"])
    assert (r.status_code, r.json()["error"]) == (status, code), r.text


def test_another_organization_sees_no_parts(world):
    hub, t = world["hub"], world["tokens"]
    for path in ("/parts", "/parts/0", "/parts/0?version=1"):
        r = hub.api("GET", f"/orgs/acme/datasets/sales{path}", t["gary"])
        assert r.status_code == 404, r.text
        # nor under its own organization: the name resolves in the caller's org only
        r = hub.api("GET", f"/orgs/globex/datasets/sales{path}", t["gary"])
        assert (r.status_code, r.json()["error"]) == (404, "not_found"), r.text
    r = hub.api("GET", "/orgs/acme/datasets/sales/parts/0", None)
    assert r.status_code == 401


KERNEL_CODE = """
import datapilot_kernel as dp
ddf = dp.load_dask("sales")
print("type", type(ddf).__module__.split(".")[0], ddf.npartitions, list(ddf.columns))
print("dtypes", dict(ddf.dtypes.astype(str)))
print("sum", float(ddf.amount.sum().compute()))
print("mark")
print("head", len(ddf.head(3)))
print("mark")
print("two", float(ddf.partitions[1:3].amount.sum().compute()))
by = ddf.groupby("region").amount.sum().compute().sort_index()
print("groups", by.round(2).to_dict())
small = dp.load_dask("sales", version=1, columns=["amount"])
print("columns", list(small.columns))
try:
    dp.load_dask("sales", columns=["nope"])
except dp.DatapilotError as e:
    print("error", e.code)
"""


def test_load_dask_in_a_kernel_fetches_only_the_parts_it_needs(world):
    hub, t = world["hub"], world["tokens"]
    r = hub.start_server("alice", "acme", t["alice"])
    assert r.status_code in (201, 202), r.text
    before = _part_reads(hub, t["mona"])
    out = asyncio.run(run_in_kernel(f"{hub.url}/user/alice/acme/", t["alice"], KERNEL_CODE))
    assert out["error"] is None, (out, hub.log_tail())
    lines = dict(line.split(" ", 1) for line in out["stdout"].strip().splitlines() if " " in line)
    df = _frame()
    assert lines["type"] == "dask 5 ['order_id', 'region', 'amount']"
    assert "'amount': 'float64'" in lines["dtypes"] and "'order_id': 'int64'" in lines["dtypes"]
    assert float(lines["sum"]) == pytest.approx(df.amount.sum())
    assert int(lines["head"]) == 3
    assert float(lines["two"]) == pytest.approx(df.amount.iloc[GROUP : 3 * GROUP].sum())
    expected = df.groupby("region").amount.sum().round(2).to_dict()
    assert lines["groups"] == str(dict(sorted(expected.items())))
    assert lines["columns"] == "['amount']"
    assert lines["error"] == "unknown_column"
    reads = _part_reads(hub, t["mona"]) - before
    # sum: every part once; head: part 0; partitions[1:3]: parts 1 and 2; group-by: all
    assert reads == Counter([0, 1, 2, 3, 4] + [0] + [1, 2] + [0, 1, 2, 3, 4])
