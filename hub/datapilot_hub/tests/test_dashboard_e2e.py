"""Publishing end to end: a real hub, a spawned user server, its extension and kernels.

The server extension's ``POST /publish`` and ``dp.publish`` in a kernel read the
workspace and publish; ``dp.publish_examples()`` uploads the sample and publishes both
example dashboards, whose code runs in a kernel; a dashboard's pins make ``dp.load`` read
the version it was published with.
"""

from __future__ import annotations

import asyncio
import json

import httpx
import pytest

from .utils import run_in_kernel

pytestmark = pytest.mark.e2e

NOTEBOOK = {
    "cells": [
        {
            "cell_type": "code",
            "execution_count": None,
            "id": "a",
            "metadata": {},
            "outputs": [],
            "source": "import pandas as pd\nregions = pd.read_csv('data/regions.csv')\nregions",
        }
    ],
    "metadata": {},
    "nbformat": 4,
    "nbformat_minor": 5,
}


@pytest.fixture(scope="module")
def scenario(sqlite_hub):
    hub = sqlite_hub
    tokens = hub.populate(
        {"acme": "Acme Corp", "globex": "Globex"},
        [("acme", "alice", "analyst"), ("acme", "vera", "viewer"), ("globex", "gary", "analyst")],
    )
    r = hub.start_server("alice", "acme", tokens["alice"])
    assert r.status_code in (201, 202), r.text
    server = f"{hub.url}/user/alice/acme/"
    with httpx.Client(headers={"Authorization": f"token {tokens['alice']}"}, timeout=60) as c:
        for path, model in (
            ("reports", {"type": "directory"}),
            ("reports/data", {"type": "directory"}),
            ("reports/kpi.ipynb", {"type": "notebook", "content": NOTEBOOK}),
            (
                "reports/data/regions.csv",
                {"type": "file", "format": "text", "content": "region\nnorth\n"},
            ),
        ):
            r = c.put(f"{server}api/contents/{path}", json=model)
            assert r.status_code in (200, 201), r.text
    return {"hub": hub, "tokens": tokens, "server": server}


def test_the_extension_publishes_a_workspace_notebook(scenario):
    hub, t = scenario["hub"], scenario["tokens"]
    url = f"{scenario['server']}datapilot/api/v1/publish"
    body = {"path": "reports/kpi.ipynb", "kind": "voila", "title": "KPIs", "description": "d"}
    r = httpx.post(url, json=body, headers={"Authorization": f"token {t['alice']}"}, timeout=60)
    assert r.status_code == 201, r.text
    model = r.json()
    assert (model["slug"], model["publisher"], model["version"]) == ("kpi", "alice", 1)
    # the file the notebook reads came along; the viewer sees it in the gallery
    got = hub.api("GET", "/orgs/acme/dashboards/kpi", t["vera"]).json()
    assert got["files"] == [{"path": "data/regions.csv", "bytes": 13}]
    assert got["notebook"] == "kpi.ipynb"
    # another organization's member sees nothing of it
    assert hub.api("GET", "/orgs/acme/dashboards/kpi", t["gary"]).status_code == 404
    # a refusal of the service comes back as it is
    r = httpx.post(
        url,
        json={**body, "pins": {"nosuch": 1}},
        headers={"Authorization": f"token {t['alice']}"},
        timeout=60,
    )
    assert (r.status_code, r.json()["error"]) == (400, "unknown_pin"), r.text


KERNEL_PUBLISH = """
import datapilot_kernel as dp
examples = dp.publish_examples()
print("examples", sorted((d["slug"], d["kind"]) for d in examples))
mine = dp.publish("reports/kpi.ipynb", kind="panel", slug="kpi-kernel", title="KPIs from a kernel",
                  pins={"sample_sales": 1})
print("mine", mine["slug"], mine["kind"], mine["version"], mine["pins"])
again = dp.publish_examples()
print("again", sorted(d["version"] for d in again))
try:
    dp.publish("reports/kpi.ipynb", kind="streamlit")
except dp.DatapilotError as e:
    print("refused", e.code)
mine
"""


def test_dp_publish_and_the_examples_from_a_kernel(scenario):
    hub, t = scenario["hub"], scenario["tokens"]
    out = asyncio.run(run_in_kernel(scenario["server"], t["alice"], KERNEL_PUBLISH, timeout=180))
    assert out["error"] is None, (out, hub.log_tail())
    lines = dict(line.split(" ", 1) for line in out["stdout"].strip().splitlines())
    assert (
        lines["examples"] == "[('example-sales-panel', 'panel'), ('example-sales-voila', 'voila')]"
    )
    assert lines["mine"] == "kpi-kernel panel 1 {'sample_sales': 1}"
    assert lines["again"] == "[2, 2]"
    assert lines["refused"] == "invalid_kind"
    assert out["result"].startswith("Dashboard 'kpi-kernel', version 1 (panel)")
    slugs = {
        d["slug"] for d in hub.api("GET", "/orgs/acme/dashboards", t["vera"]).json()["dashboards"]
    }
    assert {"example-sales-voila", "example-sales-panel", "kpi-kernel"} <= slugs
    sample = hub.api("GET", "/orgs/acme/datasets/sample_sales", t["vera"]).json()
    assert sample["rows"] == 144


def test_the_example_dashboards_run_in_a_kernel(scenario):
    """Their code, as the dashboard runtime runs it: the widgets, the charts, no errors."""
    from .utils import REPO

    hub, t = scenario["hub"], scenario["tokens"]
    r = hub.api("GET", "/orgs/acme/datasets/sample_sales", t["alice"])
    if r.status_code == 404:
        out = asyncio.run(
            run_in_kernel(
                scenario["server"],
                t["alice"],
                "import datapilot_kernel as dp\ndp.publish_examples()",
            )
        )
        assert out["error"] is None, out
    for name in ("example-sales-voila", "example-sales-panel"):
        nb = json.loads((REPO / "notebooks" / f"{name}.ipynb").read_text())
        code = "\n".join("".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "code")
        out = asyncio.run(run_in_kernel(scenario["server"], t["alice"], code, timeout=180))
        assert out["error"] is None, (name, out)
        shown = [set(d) for d in out["displays"]] + [set(out["data"])]
        if name.endswith("voila"):
            assert any("application/vnd.jupyter.widget-view+json" in d for d in shown), shown
        else:
            # .servable() in a notebook shows the app inline too
            assert any("application/vnd.holoviews_exec.v0+json" in d for d in shown), shown


PINNED = """
import json, os
import pandas as pd
import datapilot_kernel as dp
if "pinned_sales" not in set(dp.datasets()["name"]):
    dp.save(pd.DataFrame({"n": [1]}), "pinned_sales")
dp.save(pd.DataFrame({"n": [1, 2, 3]}), "pinned_sales", mode="replace")
os.environ["DATAPILOT_DASHBOARD"] = "acme/pinned"
os.environ["DATAPILOT_DASHBOARD_PINS"] = json.dumps({"pinned_sales": 1})
dp.reset_client()
print("pinned", len(dp.load("pinned_sales")), "explicit", len(dp.load("pinned_sales", version=2)))
"""


def test_a_dashboard_kernel_reads_the_pinned_version(scenario):
    out = asyncio.run(run_in_kernel(scenario["server"], scenario["tokens"]["alice"], PINNED))
    assert out["error"] is None, out
    assert out["stdout"].strip() == "pinned 1 explicit 3"
