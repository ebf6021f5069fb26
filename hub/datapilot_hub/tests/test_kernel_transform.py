"""dp.transform in a real kernel of a user server: the builder makes the same recipe the
API takes, previews it on a sample, saves it through a Dask job, saves it by name."""

from __future__ import annotations

import asyncio

import pytest

from .utils import run_in_kernel, running_hub

pytestmark = pytest.mark.e2e

CSV = b"id,region,amount,discount,customer_id\n" + b"".join(
    f"{i},{['north', 'south', 'x'][i % 3]},{'' if i % 7 == 0 else i * 1.5},{i % 20},{i % 5}\n".encode()
    for i in range(1, 301)
)
CUSTOMERS = b"customer_id,segment\n" + b"".join(f"{i},s{i % 2}\n".encode() for i in range(5))


@pytest.fixture(scope="module")
def scenario(request, tmp_path_factory):
    with running_hub(request, tmp_path_factory, "sqlite", label="ktransform") as hub:
        tokens = hub.populate({"acme": "Acme Corp"}, [("acme", "alice", "analyst")])
        for name, content in (("sales", CSV), ("customers", CUSTOMERS)):
            r = hub.upload("acme", tokens["alice"], name, content, f"{name}.csv")
            assert r.status_code == 202, r.text
            job = hub.wait_job("acme", r.json()["job"]["id"], tokens["alice"])
            assert job["state"] == "succeeded", job
        r = hub.start_server("alice", "acme", tokens["alice"])
        assert r.status_code in (201, 202), r.text
        yield {"hub": hub, "tokens": tokens, "server": f"{hub.url}/user/alice/acme/"}


CODE = """
import json
import datapilot_kernel as dp
t = (dp.transform("sales").dropna(["amount"]).filter("region != 'x'")
     .derive("net", "amount * (1 - discount / 100)")
     .join("customers", on="customer_id", how="left")
     .group_by(["region", "segment"], {"net": ["sum"], "*": ["count"]})
     .sort(["region", "segment"]))
print("steps", json.dumps([s["op"] for s in t.steps]))
print("repr", repr(t).splitlines()[0], len(repr(t).splitlines()))
head = dp.transform("sales").filter("region != 'x'").sort("id").preview(n=3)
print("preview", head["id"].tolist(), list(head.columns)[:2], str(head["id"].dtype))
print("before", sorted(dp.datasets()["name"]))
info = t.save("sales_by_segment")
print("saved", info["name"], info["version"], info["rows"])
print("lineage", json.dumps(info["versions"][-1]["lineage"]["recipe"]["steps"] == t.steps))
again = await t.asave("sales_by_segment", mode="replace")
print("again", again["version"])
frame = dp.load("sales_by_segment")
print("frame", list(frame.columns), int(frame["count"].sum()))
saved = t.save_recipe("by_segment", output="sales_by_segment", auto_refresh=True)
print("recipe", saved["name"], saved["auto_refresh"], saved["versions"]["sales"])
try:
    dp.transform("sales").filter("amount >").preview()
except dp.DatapilotError as e:
    print("error", e.status, e.code, e.details["step"])
try:
    t.save("sales_by_segment")
except dp.DatapilotError as e:
    print("exists", e.status, e.code)
"""


def test_dp_transform_builds_previews_and_saves(scenario):
    out = asyncio.run(run_in_kernel(scenario["server"], scenario["tokens"]["alice"], CODE))
    assert out["error"] is None, (out, scenario["hub"].log_tail())
    lines = dict(line.split(" ", 1) for line in out["stdout"].strip().splitlines())
    assert lines["steps"] == ('["drop_null", "filter", "derive", "join", "group_by", "sort"]')
    assert lines["repr"] == "dp.transform('sales') 7"
    assert lines["preview"] == "[1, 3, 4] ['id', 'region'] Int64"
    assert lines["before"] == "['customers', 'sales']"
    name, version, rows = lines["saved"].split()
    assert (name, version) == ("sales_by_segment", "1") and int(rows) == 4
    assert lines["lineage"] == "true"
    assert lines["again"] == "2"
    want = sum(1 for i in range(1, 301) if i % 3 != 2 and i % 7 != 0)
    assert lines["frame"] == f"['region', 'segment', 'net_sum', 'count'] {want}"
    assert lines["recipe"] == "by_segment True 1"
    assert lines["error"] == "400 invalid_expression 0"
    assert lines["exists"] == "409 dataset_exists"
