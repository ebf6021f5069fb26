"""dp.chart and dp.insights in a real kernel of a user server, through the proxy to the
data service: the HoloViews object of the service's spec, the insights with their charts,
and the narrator's key, in the data service's environment, kept out of the kernel."""

from __future__ import annotations

import asyncio

import pytest

from .planted import plant
from .utils import run_in_kernel, running_hub

SECRET = "sk-narrator-key-kernels-must-not-see"

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def khub(request, tmp_path_factory):
    """A hub whose data service has a narrator's key, which no kernel may see."""
    env = {"DATAPILOT_LLM_URL": "http://127.0.0.1:9/v1", "DATAPILOT_LLM_API_KEY": SECRET}
    with running_hub(request, tmp_path_factory, "sqlite", env=env, label="kernel") as hub:
        yield hub


@pytest.fixture(scope="module")
def scenario(khub):
    hub = khub
    tokens = hub.populate({"acme": "Acme Corp"}, [("acme", "alice", "analyst")])
    df, _ = plant(["trend", "majority"], rows=1500, seed=31)
    csv = df.assign(day=df["day"].dt.strftime("%Y-%m-%d")).to_csv(index=False).encode()
    r = hub.upload("acme", tokens["alice"], "sales", csv, "sales.csv")
    assert r.status_code == 202, r.text
    assert hub.wait_job("acme", r.json()["job"]["id"], tokens["alice"])["state"] == "succeeded"
    r = hub.start_server("alice", "acme", tokens["alice"])
    assert r.status_code in (201, 202), r.text
    return {"hub": hub, "tokens": tokens, "server": f"{hub.url}/user/alice/acme/"}


CHART_CODE = """
import holoviews as hv
import datapilot_kernel as dp
bars = dp.chart("sales", chart_type="bar", x="region", y="revenue", aggregation="mean")
print("type", type(bars).__name__, hv.Store.current_backend)
print("spec", bars.spec["type"], bars.spec["title"], bars.recommendation)
print("data", sorted(bars.data["x"])[:2], len(bars.data))
line = await dp.achart("sales")
print("recommended", line.recommendation["chart_type"], line.recommendation["x"])
model = hv.render(line, backend="bokeh")
print("bokeh", type(model).__name__, model.title.text)
bundle = hv.Store.render(bars)
print("mime", sorted(k for k in bundle[0]))
try:
    dp.chart("sales", chart_type="pie", x="order_id")
except dp.DatapilotError as e:
    print("error", e.status, e.code, e.details["field"])
"""


def test_dp_chart_is_a_holoviews_object_from_the_services_spec(scenario):
    out = asyncio.run(run_in_kernel(scenario["server"], scenario["tokens"]["alice"], CHART_CODE))
    assert out["error"] is None, (out, scenario["hub"].log_tail())
    lines = dict(line.split(" ", 1) for line in out["stdout"].strip().splitlines())
    assert lines["type"] == "Bars bokeh"
    assert lines["spec"] == "bar Mean of revenue by region None"
    assert lines["data"].startswith("['central', 'east'] 5")
    assert lines["recommended"] == "line day"
    assert lines["bokeh"] == "figure " + lines["bokeh"].split(" ", 1)[1]
    assert "text/html" in lines["mime"] or "application/vnd.holoviews_load.v0+json" in lines["mime"]
    assert lines["error"] == "400 wrong_column x"


INSIGHTS_CODE = """
from html import escape
import datapilot_kernel as dp
found = dp.insights("sales")
print("count", len(found) > 0, found[0]["type"], found[0]["columns"])
print("headline", found.headline())
html = found._repr_html_()
print("html", html.count("data:image/png;base64,") == min(len(found), 12), escape(found[0]["sentence"]) in html)
print("frame", list(found.frame().columns)[:3])
print("chart", type(found.chart(0)).__name__)
again = await dp.ainsights("sales")
print("same", [i["sentence"] for i in again] == [i["sentence"] for i in found])
import os
print("keys", [k for k in os.environ if k.startswith("DATAPILOT_LLM")])
print("secret", any("sk-narrator" in v for v in os.environ.values()))
"""


def test_dp_insights_shows_the_ranked_insights_with_their_charts(scenario):
    code = INSIGHTS_CODE
    out = asyncio.run(run_in_kernel(scenario["server"], scenario["tokens"]["alice"], code))
    assert out["error"] is None, (out, scenario["hub"].log_tail())
    lines = dict(line.split(" ", 1) for line in out["stdout"].strip().splitlines())
    assert lines["count"] in ("True trend ['revenue', 'day']", "True majority ['channel']")
    assert lines["headline"].endswith("of 'sales' version 1 (all 1,500 rows)")
    assert lines["html"] == "True True"
    assert lines["frame"] == "['type', 'columns', 'score']"
    assert lines["chart"] in ("Overlay", "Curve", "Bars", "Histogram", "Scatter")
    assert lines["same"] == "True"
    assert lines["keys"] == "[]" and lines["secret"] == "False"
