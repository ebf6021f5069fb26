"""POST .../transform through a real hub (both catalogs): a recipe runs on the service's
Dask cluster, its output is published by one catalog commit with its lineage; bad steps,
other organizations, viewers, failures and cancels leave nothing visible."""

from __future__ import annotations

import io
import time

import numpy as np
import pandas as pd
import pytest

ROWS = 2000


def sales_frame() -> pd.DataFrame:
    rng = np.random.default_rng(5)
    region = np.array(["north", "south", "east", "x"], dtype=object)[rng.integers(0, 4, ROWS)]
    amount = rng.gamma(2.0, 30.0, ROWS).round(2)
    amount[rng.random(ROWS) < 0.05] = np.nan
    return pd.DataFrame(
        {
            "id": np.arange(1, ROWS + 1),
            "customer_id": rng.integers(1, 50, ROWS),
            "region": region,
            "amount": amount,
            "discount": rng.integers(0, 30, ROWS),
        }
    )


def customers_frame() -> pd.DataFrame:
    return pd.DataFrame(
        {"customer_id": np.arange(1, 50), "segment": [f"s{i % 3}" for i in range(1, 50)]}
    )


def csv(df: pd.DataFrame) -> bytes:
    return df.to_csv(index=False).encode()


def upload(hub, org, token, name, df):
    r = hub.upload(org, token, name, csv(df), f"{name}.csv")
    assert r.status_code == 202, r.text
    job = hub.wait_job(org, r.json()["job"]["id"], token)
    assert job["state"] == "succeeded", job


@pytest.fixture(scope="module")
def world(hub):
    """acme: alice (analyst), vera (viewer), with sales and customers; globex: gary
    (analyst) with its own dataset secret."""
    tokens = hub.populate(
        {"acme": "Acme", "globex": "Globex"},
        [("acme", "alice", "analyst"), ("acme", "vera", "viewer"), ("globex", "gary", "analyst")],
    )
    upload(hub, "acme", tokens["alice"], "sales", sales_frame())
    upload(hub, "acme", tokens["alice"], "customers", customers_frame())
    upload(hub, "globex", tokens["gary"], "secret", customers_frame())
    return {"tokens": tokens}


def transform(hub, token, body, org="acme", name="sales"):
    return hub.api("POST", f"/orgs/{org}/datasets/{name}/transform", token, json=body)


def run(hub, token, body, org="acme", name="sales", timeout=120):
    r = transform(hub, token, body, org, name)
    assert r.status_code == 202, r.text
    assert r.headers["Location"].endswith(f"/orgs/{org}/jobs/{r.json()['job']['id']}")
    assert r.json()["job"]["kind"] == "transform"
    return hub.wait_job(org, r.json()["job"]["id"], token, timeout=timeout)


def read(hub, token, name, org="acme") -> pd.DataFrame:
    r = hub.api("GET", f"/orgs/{org}/datasets/{name}/data?format=parquet", token)
    assert r.status_code == 200, r.text
    return pd.read_parquet(io.BytesIO(r.content))


RECIPE = [
    {"op": "drop_null", "columns": ["amount"]},
    {"op": "filter", "expr": "amount > 5 and region != 'x'"},
    {"op": "derive", "name": "net", "expr": "amount * (1 - discount / 100)"},
    {"op": "join", "with": "customers", "on": ["customer_id"], "how": "left"},
    {"op": "group_by", "by": ["region", "segment"], "aggs": {"net": ["sum"], "*": ["count"]}},
    {"op": "sort", "by": ["region", "segment"]},
]


def test_a_recipe_makes_a_dataset_with_lineage(hub, world):
    alice = world["tokens"]["alice"]
    job = run(hub, alice, {"steps": RECIPE, "output": {"name": "summary", "mode": "create"}})
    assert job["state"] == "succeeded", job
    assert job["progress"] == 1.0
    assert job["result"]["dataset"] == "summary" and job["result"]["version"] == 1
    got = read(hub, alice, "summary")
    df = sales_frame().dropna(subset=["amount"])
    df = df[(df.amount > 5) & (df.region != "x")]
    df = df.assign(net=df.amount * (1 - df.discount / 100)).merge(
        customers_frame(), on="customer_id", how="left"
    )
    want = (
        df.groupby(["region", "segment"])
        .agg(net_sum=("net", "sum"), count=("id", "size"))
        .reset_index()
        .sort_values(["region", "segment"])
    )
    assert got[["region", "segment"]].values.tolist() == want[["region", "segment"]].values.tolist()
    assert got["count"].tolist() == want["count"].tolist()
    np.testing.assert_allclose(got["net_sum"], want["net_sum"])
    described = hub.api("GET", "/orgs/acme/datasets/summary", alice).json()
    assert [(c["name"], c["type"]) for c in described["columns"]] == [
        ("region", "string"),
        ("segment", "string"),
        ("net_sum", "number"),
        ("count", "integer"),
    ]
    assert described["rows"] == len(want)
    lineage = described["versions"][0]["lineage"]
    assert lineage["operation"] == "transform"
    assert lineage["sources"] == [
        {"dataset": "sales", "version": 1},
        {"dataset": "customers", "version": 1},
    ]
    assert lineage["recipe"]["steps"] == RECIPE
    assert lineage["job"] == job["id"]


def test_replace_makes_a_new_version_and_create_refuses(hub, world):
    alice = world["tokens"]["alice"]
    steps = [{"op": "select", "columns": ["id", "region"]}, {"op": "filter", "expr": "id <= 10"}]
    job = run(hub, alice, {"steps": steps, "output": {"name": "few", "mode": "create"}})
    assert job["state"] == "succeeded", job
    r = transform(hub, alice, {"steps": steps, "output": {"name": "few", "mode": "create"}})
    assert r.status_code == 409 and r.json()["error"] == "dataset_exists"
    steps[1]["expr"] = "id <= 3"
    job = run(hub, alice, {"steps": steps, "output": {"name": "few", "mode": "replace"}})
    assert job["state"] == "succeeded", job
    assert job["result"]["version"] == 2
    assert read(hub, alice, "few")["id"].tolist() == [1, 2, 3]
    # a transform's version (several files) is read, appended to and replaced as any other
    r = hub.upload("acme", alice, "few", b"id,region\n99,north\n", "more.csv", mode="append")
    assert r.status_code == 202, r.text
    assert hub.wait_job("acme", r.json()["job"]["id"], alice)["state"] == "succeeded"
    assert read(hub, alice, "few")["id"].tolist() == [1, 2, 3, 99]


@pytest.mark.parametrize(
    "body, status, code, details",
    [
        (
            {"steps": [{"op": "filter", "expr": "amount >"}], "output": {"name": "o"}},
            400,
            "invalid_expression",
            {"step": 0, "field": "expr"},
        ),
        (
            {
                "steps": [{"op": "drop", "columns": ["region"]}, {"op": "sort", "by": ["region"]}],
                "output": {"name": "o"},
            },
            400,
            "unknown_column",
            {"step": 1, "field": "by", "column": "region"},
        ),
        ({"steps": [{"op": "melt"}], "output": {"name": "o"}}, 400, "unknown_op", {"step": 0}),
        ({"steps": [], "output": {"name": "o"}}, 400, "invalid_input", {"field": "steps"}),
        ({"steps": [{"op": "sort", "by": "id"}]}, 400, "invalid_input", {"field": "output"}),
        (
            {"steps": [{"op": "sort", "by": "id"}], "output": {"name": "o", "mode": "append"}},
            400,
            "invalid_input",
            {"field": "output.mode"},
        ),
        (
            {"steps": [{"op": "sort", "by": "id"}], "output": {"name": "Bad Name"}},
            400,
            "invalid_name",
            {"field": "output.name"},
        ),
        (
            {"steps": [{"op": "sort", "by": "id"}], "output": {"name": "nope", "mode": "replace"}},
            404,
            "not_found",
            {},
        ),
    ],
)
def test_a_bad_request_is_refused_before_any_job(hub, world, body, status, code, details):
    r = transform(hub, world["tokens"]["alice"], body)
    assert r.status_code == status, r.text
    assert r.json()["error"] == code
    for key, value in details.items():
        assert r.json()["details"][key] == value
    if "step" in details:
        assert r.json()["message"].startswith(f"Step {details['step']}")


def test_other_organizations_and_viewers(hub, world):
    tokens = world["tokens"]
    body = {"steps": [{"op": "sort", "by": ["id"]}], "output": {"name": "stolen"}}
    # a member of another organization: the organization is not there for them
    r = transform(hub, tokens["gary"], body)
    assert r.status_code == 404 and r.json()["error"] == "not_found"
    # a join naming another organization's dataset resolves nothing: the same 404 as a
    # dataset that does not exist
    join = {"op": "join", "with": "secret", "on": ["customer_id"]}
    r = transform(hub, tokens["alice"], {"steps": [join], "output": {"name": "stolen"}})
    assert r.status_code == 404, r.text
    missing = dict(join, **{"with": "no_such"})
    r2 = transform(hub, tokens["alice"], {"steps": [missing], "output": {"name": "stolen"}})
    assert r2.status_code == 404
    assert r.json()["details"]["step"] == r2.json()["details"]["step"] == 0
    assert r.json()["message"].replace("secret", "X") == r2.json()["message"].replace(
        "no_such", "X"
    )
    # the other organization's dataset by a path-like name is no dataset name at all
    traversal = dict(join, **{"with": "../org-2/datasets/secret"})
    r = transform(hub, tokens["alice"], {"steps": [traversal], "output": {"name": "stolen"}})
    assert r.status_code in (400, 404) and r.json()["details"]["step"] == 0
    # a viewer may read but not transform
    r = transform(hub, tokens["vera"], body)
    assert r.status_code == 403 and r.json()["details"]["permission"] == "data:transform"
    assert hub.api("GET", "/orgs/acme/datasets/stolen", tokens["alice"]).status_code == 404


def test_preview_runs_on_a_sample_and_saves_nothing(hub, world):
    alice = world["tokens"]["alice"]
    body = {"steps": RECIPE[:3] + [{"op": "sort", "by": ["id"]}], "preview": True, "limit": 5}
    r = transform(hub, alice, body)
    assert r.status_code == 200, r.text
    answer = r.json()
    assert answer["columns"][-1] == {"name": "net", "type": "number"}
    assert len(answer["rows"]) == 5
    df = sales_frame().dropna(subset=["amount"])
    df = df[(df.amount > 5) & (df.region != "x")].head(5)
    assert [row["id"] for row in answer["rows"]] == df["id"].tolist()
    r = transform(hub, alice, {"steps": [{"op": "filter", "expr": "nope"}], "preview": True})
    assert r.status_code == 400 and r.json()["details"]["step"] == 0


def test_a_failing_recipe_publishes_nothing(hub, world):
    alice = world["tokens"]["alice"]
    steps = [{"op": "derive", "name": "big", "expr": "id * 9223372036854775807"}]
    job = run(hub, alice, {"steps": steps, "output": {"name": "overflow"}})
    assert job["state"] == "failed", job
    assert job["result"]["error"] == "transform_failed"
    assert hub.api("GET", "/orgs/acme/datasets/overflow", alice).status_code == 404
    assert not list((hub.service_home / "storage").glob("org-*/datasets/overflow/v*/*"))


def test_cancel_stops_the_dask_work(hub, world):
    alice = world["tokens"]["alice"]
    pairs = pd.DataFrame({"id": np.arange(6000), "k": np.arange(6000) % 4})
    upload(hub, "acme", alice, "pairs", pairs)
    # each row meets every row of its key: 9 million rows to compute and write
    steps = [
        {"op": "join", "with": "pairs", "on": ["k"], "how": "inner"},
        {"op": "derive", "name": "t", "expr": "id * id_pairs"},
    ]
    r = transform(hub, alice, {"steps": steps, "output": {"name": "huge"}}, name="pairs")
    assert r.status_code == 202, r.text
    job_id = r.json()["job"]["id"]
    deadline = time.monotonic() + 60
    while hub.api("GET", f"/orgs/acme/jobs/{job_id}", alice).json()["state"] != "running":
        assert time.monotonic() < deadline
        time.sleep(0.05)
    time.sleep(0.5)
    r = hub.api("POST", f"/orgs/acme/jobs/{job_id}/cancel", alice)
    assert r.status_code == 200, r.text
    started = time.monotonic()
    job = hub.wait_job("acme", job_id, alice, timeout=60)
    assert job["state"] == "cancelled", job
    # the job ends when its futures are cancelled, not when the work would have ended
    assert time.monotonic() - started < 3
    assert hub.api("GET", "/orgs/acme/datasets/huge", alice).status_code == 404
    # a task that ran on after the cancel writes nothing where the version was
    time.sleep(8)
    assert not list((hub.service_home / "storage").glob("org-*/datasets/huge/v*/*"))
    # the cluster is free again
    job = run(
        hub, alice, {"steps": [{"op": "select", "columns": ["id"]}], "output": {"name": "ids"}}
    )
    assert job["state"] == "succeeded", job
