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
    # metered as an ingestion is: compute time and the rows written
    usage = hub.api("GET", "/orgs/acme/usage?metric=compute_seconds", alice).json()
    assert any((r["details"] or {}).get("job") == job["id"] for r in usage["records"]), usage


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
            "invalid_mode",
            {"field": "output.mode"},
        ),
        (
            {"steps": [{"op": "sort", "by": "id"}], "output": {"name": "o"}, "preview": "yes"},
            400,
            "invalid_input",
            {"field": "preview"},
        ),
        (
            {"steps": [{"op": "sort", "by": "id"}], "output": {"name": "o"}, "limit": 5},
            400,
            "invalid_input",
            {"field": "limit"},
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
    pairs = pd.DataFrame({"id": np.arange(4000), "k": np.arange(4000) % 4})
    upload(hub, "acme", alice, "pairs", pairs)
    # each row meets every row of its key: 4 million rows to compute and write
    steps = [
        {"op": "join", "with": "pairs", "on": ["k"], "how": "inner"},
        {"op": "derive", "name": "t", "expr": "id * id_pairs"},
    ]
    r = transform(hub, alice, {"steps": steps, "output": {"name": "huge"}}, name="pairs")
    assert r.status_code == 202, r.text
    job_id = r.json()["job"]["id"]
    # the progress is the share of the graph's tasks done (the reads finish first)
    deadline = time.monotonic() + 60
    while True:
        job = hub.api("GET", f"/orgs/acme/jobs/{job_id}", alice).json()
        assert job["state"] in ("queued", "running"), job
        if job["state"] == "running" and job["progress"] > 0:
            break
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert job["progress"] < 0.95
    r = hub.api("POST", f"/orgs/acme/jobs/{job_id}/cancel", alice)
    assert r.status_code == 200, r.text
    started = time.monotonic()
    job = hub.wait_job("acme", job_id, alice, timeout=60)
    assert job["state"] == "cancelled", job
    # the job ends when its futures are cancelled, not when the work would have ended
    assert time.monotonic() - started < 3
    assert hub.api("GET", "/orgs/acme/datasets/huge", alice).status_code == 404
    # a task that ran on after the cancel writes nothing where the version was
    time.sleep(5)
    assert not list((hub.service_home / "storage").glob("org-*/datasets/huge/v*/*"))
    # the cluster is free again
    job = run(
        hub, alice, {"steps": [{"op": "select", "columns": ["id"]}], "output": {"name": "ids"}}
    )
    assert job["state"] == "succeeded", job


# ---- saved recipes ----------------------------------------------------------------------

ORDERS = pd.DataFrame({"id": [1, 2, 3, 4], "region": ["n", "s", "n", "x"], "amount": [1, 2, 3, 4]})
SAVED = {
    "source": "orders",
    "steps": [
        {"op": "filter", "expr": "region != 'x'"},
        {"op": "group_by", "by": ["region"], "aggs": {"amount": ["sum"]}},
        {"op": "sort", "by": ["region"]},
    ],
    "output": "orders_by_region",
}


def recipe_api(hub, token, method, path="", **kw):
    return hub.api(method, f"/orgs/acme/recipes{path}", token, **kw)


def wait_version(hub, token, name, version, timeout=60):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        r = hub.api("GET", f"/orgs/acme/datasets/{name}", token, check=False)
        if r.status_code == 200 and r.json()["version"] >= version:
            return r.json()
        time.sleep(0.2)
    raise TimeoutError(f"{name} never got version {version}")


def test_a_saved_recipe_runs_again_and_refreshes(hub, world):
    tokens = world["tokens"]
    alice = tokens["alice"]
    upload(hub, "acme", alice, "orders", ORDERS)
    r = recipe_api(hub, alice, "PUT", "/by_region", json=SAVED)
    assert r.status_code == 201, r.text
    assert r.headers["Location"].endswith("/orgs/acme/recipes/by_region")
    assert r.json()["versions"] == {"orders": 1} and r.json()["auto_refresh"] is False
    assert recipe_api(hub, alice, "PUT", "/by_region", json=SAVED).status_code == 200
    listed = recipe_api(hub, tokens["vera"], "GET").json()["recipes"]
    assert [x["name"] for x in listed] == ["by_region"]
    assert recipe_api(hub, tokens["vera"], "GET", "/by_region").json()["steps"] == SAVED["steps"]
    # runs: the first creates the output, the next make new versions of it
    r = recipe_api(hub, alice, "POST", "/by_region/run")
    assert r.status_code == 202, r.text
    job = hub.wait_job("acme", r.json()["job"]["id"], alice)
    assert job["state"] == "succeeded", job
    assert read(hub, alice, "orders_by_region")["amount_sum"].tolist() == [4, 2]
    # a new version of the source: a run still reads the saved version, a refresh the new
    bigger = pd.concat([ORDERS, pd.DataFrame({"id": [5], "region": ["s"], "amount": [10]})])
    r = hub.upload("acme", alice, "orders", csv(bigger), "orders.csv", mode="replace")
    assert hub.wait_job("acme", r.json()["job"]["id"], alice)["state"] == "succeeded"
    job = hub.wait_job(
        "acme", recipe_api(hub, alice, "POST", "/by_region/run").json()["job"]["id"], alice
    )
    assert job["state"] == "succeeded" and job["result"]["version"] == 2
    assert read(hub, alice, "orders_by_region")["amount_sum"].tolist() == [4, 2]
    r = recipe_api(hub, alice, "POST", "/by_region/refresh")
    assert r.status_code == 202, r.text
    assert r.json()["recipe"]["versions"] == {"orders": 2}
    job = hub.wait_job("acme", r.json()["job"]["id"], alice)
    assert job["state"] == "succeeded", job
    assert read(hub, alice, "orders_by_region")["amount_sum"].tolist() == [4, 12]
    lineage = hub.api("GET", "/orgs/acme/datasets/orders_by_region/versions", alice).json()[
        "versions"
    ][-1]["lineage"]
    assert lineage["recipe"]["name"] == "by_region"
    assert lineage["sources"] == [{"dataset": "orders", "version": 2}]


def test_saved_recipes_refuse_what_a_run_refuses(hub, world):
    tokens = world["tokens"]
    bad = dict(SAVED, steps=[{"op": "filter", "expr": "regio = 'n'"}])
    r = recipe_api(hub, tokens["alice"], "PUT", "/bad", json=bad)
    assert r.status_code == 400 and r.json()["details"]["step"] == 0
    stolen = dict(SAVED, steps=[{"op": "join", "with": "secret", "on": ["id"]}])
    assert recipe_api(hub, tokens["alice"], "PUT", "/bad", json=stolen).status_code == 404
    assert recipe_api(hub, tokens["vera"], "PUT", "/bad", json=SAVED).status_code == 403
    assert recipe_api(hub, tokens["vera"], "POST", "/by_region/run").status_code == 403
    assert recipe_api(hub, tokens["vera"], "DELETE", "/by_region").status_code == 403
    # another organization's member sees no recipes at all
    for method, path in (("GET", ""), ("GET", "/by_region"), ("POST", "/by_region/refresh")):
        r = hub.api(method, f"/orgs/acme/recipes{path}", tokens["gary"])
        assert r.status_code == 404, (method, path)
    # and globex's recipes are not acme's
    assert hub.api("GET", "/orgs/globex/recipes/by_region", tokens["gary"]).status_code == 404
    assert recipe_api(hub, tokens["alice"], "GET", "/bad").status_code == 404
    r = recipe_api(hub, tokens["alice"], "POST", "/by_region/run", json={"x": 1})
    assert r.status_code == 400


def test_auto_refresh_follows_new_versions_and_stops_at_a_cycle(hub, world):
    alice = world["tokens"]["alice"]
    upload(hub, "acme", alice, "events", ORDERS)
    auto = dict(SAVED, source="events", output="events_by_region", auto_refresh=True)
    assert recipe_api(hub, alice, "PUT", "/events_auto", json=auto).status_code == 201
    # a recipe that reads its own output: each run would start the next
    loop = {
        "source": "events",
        "steps": [{"op": "filter", "expr": "amount > 0"}],
        "output": "events",
        "auto_refresh": True,
    }
    assert recipe_api(hub, alice, "PUT", "/events_loop", json=loop).status_code == 201
    r = hub.upload("acme", alice, "events", csv(ORDERS.head(2)), "events.csv", mode="replace")
    assert hub.wait_job("acme", r.json()["job"]["id"], alice)["state"] == "succeeded"
    # the upload (v2) refreshes both; events_loop's run makes events v3, which refreshes
    # events_auto again but not events_loop (already in the chain)
    described = wait_version(hub, alice, "events", 3)
    assert described["versions"][-1]["lineage"]["recipe"]["name"] == "events_loop"
    deadline = time.monotonic() + 60
    while True:
        out = hub.api("GET", "/orgs/acme/datasets/events_by_region", alice, check=False)
        if out.status_code == 200:
            sources = out.json()["versions"][-1]["lineage"]["sources"]
            if sources == [{"dataset": "events", "version": 3}]:
                break
        assert time.monotonic() < deadline, out.text
        time.sleep(0.2)
    time.sleep(3)
    assert hub.api("GET", "/orgs/acme/datasets/events", alice).json()["version"] == 3
    saved = recipe_api(hub, alice, "GET", "/events_auto").json()
    assert saved["versions"] == {"events": 3} and saved["last_job"]
    assert recipe_api(hub, alice, "DELETE", "/events_loop").status_code == 204
    assert recipe_api(hub, alice, "GET", "/events_loop").status_code == 404
    # a new version its steps no longer fit: the refresh does not start, and says why
    r = hub.upload("acme", alice, "events", b"id,region\n1,north\n", "events.csv", mode="replace")
    assert hub.wait_job("acme", r.json()["job"]["id"], alice)["state"] == "succeeded"
    deadline = time.monotonic() + 30
    while not (saved := recipe_api(hub, alice, "GET", "/events_auto").json())["last_error"]:
        assert time.monotonic() < deadline
        time.sleep(0.2)
    assert saved["last_error"].startswith("Step 1 (group_by): unknown column 'amount'")
    assert saved["versions"] == {"events": 3}
