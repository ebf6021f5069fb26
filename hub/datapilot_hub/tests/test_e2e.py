"""The whole scenario end to end: real hub, proxy, spawned user servers and kernels."""

from __future__ import annotations

import asyncio
import io

import httpx
import pandas as pd
import pytest

from .utils import hub_login, hub_signup, run_in_kernel

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def scenario(sqlite_hub):
    hub = sqlite_hub
    tokens = hub.populate(
        {"acme": "Acme Corp", "globex": "Globex"},
        [("acme", "alice", "analyst"), ("acme", "vera", "viewer"), ("globex", "gary", "analyst")],
    )
    r = hub.start_server("alice", "acme", tokens["alice"])
    assert r.status_code in (201, 202), r.text
    return {"hub": hub, "tokens": tokens, "server": f"{hub.url}/user/alice/acme/"}


KERNEL_CODE = """
import pandas as pd
import datapilot_kernel as dp
df = pd.DataFrame({"region": ["north", "south", "east"], "amount": [10.5, 20.25, None],
                   "units": [1, 2, 3], "day": pd.to_datetime(["2024-01-01", "2024-01-02", "2024-01-03"])})
info = dp.save(df, "sales")
back = dp.load("sales")
print("rows", info["rows"], "version", info["version"])
print("equal", back["region"].tolist() == df["region"].tolist(), back["amount"].tolist()[:2], back["units"].tolist())
listing = dp.datasets()
print("names", sorted(listing["name"]))
import os
print("secrets", [k for k in os.environ if k in ("DATAPILOT_DB_URL", "DATAPILOT_STORAGE_URL", "DATAPILOT_ADMIN_TOKEN", "AWS_SECRET_ACCESS_KEY")])
try:
    dp.save(df, "sales")
except dp.DatapilotError as e:
    print("error", e)
"""


def test_analyst_saves_and_loads_from_a_kernel(scenario):
    hub = scenario["hub"]
    out = asyncio.run(run_in_kernel(scenario["server"], scenario["tokens"]["alice"], KERNEL_CODE))
    assert out["error"] is None, (out, hub.log_tail())
    lines = dict(line.split(" ", 1) for line in out["stdout"].strip().splitlines())
    assert lines["rows"] == "3 version 1"
    assert lines["equal"] == "True [10.5, 20.25] [1, 2, 3]"
    assert lines["names"] == "['sales']"
    assert lines["secrets"] == "[]"
    assert "already exists" in lines["error"]
    # the API sees what the kernel saved, with its types
    info = hub.api("GET", "/orgs/acme/datasets/sales", scenario["tokens"]["alice"]).json()
    assert {c["name"]: c["type"] for c in info["columns"]} == {
        "region": "string",
        "amount": "number",
        "units": "integer",
        "day": "datetime",
    }


AGGREGATE_CODE = """
import pandas as pd
import datapilot_kernel as dp
df = pd.DataFrame({"region": ["north", "south", "north", "east"], "amount": [10.5, 20.25, 4.5, None],
                   "day": pd.to_datetime(["2025-01-05", "2025-01-20", "2025-02-01", "2025-02-02"])})
dp.save(df, "agg_sales", mode="replace" if "agg_sales" in set(dp.datasets()["name"]) else "create")
sync = dp.aggregate("agg_sales", {"amount": ["sum"], "*": ["count"]}, group_by="region", sort="region")
print("sync", sync["region"].tolist(), sync["amount_sum"].fillna(-1).tolist(), sync["count"].tolist())
monthly = await dp.aaggregate("agg_sales", {"amount": ["max"]}, time_bucket=("day", "month"),
                              filter="region != 'east'")
print("async", [str(d)[:10] for d in monthly["day"]], monthly["amount_max"].tolist())
client = dp.DatapilotClient()
print("client", client.aggregate("agg_sales", {"*": ["count"]}, filter="amount > 5")["count"].tolist())
try:
    dp.aggregate("agg_sales", {"*": ["count"]}, filter="amount >")
except dp.DatapilotError as e:
    print("error", e.status, e.code, e.details["field"], e.details["position"])
"""


def test_analyst_aggregates_from_a_kernel(scenario):
    """dp.aggregate and dp.aaggregate in a real kernel, through the proxy to the service."""
    out = asyncio.run(
        run_in_kernel(scenario["server"], scenario["tokens"]["alice"], AGGREGATE_CODE)
    )
    assert out["error"] is None, (out, scenario["hub"].log_tail())
    lines = dict(line.split(" ", 1) for line in out["stdout"].strip().splitlines())
    assert lines["sync"] == "['east', 'north', 'south'] [-1.0, 15.0, 20.25] [1, 2, 1]"
    assert lines["async"] == "['2025-01-01', '2025-02-01'] [20.25, 4.5]"
    assert lines["client"] == "[2]"
    assert lines["error"] == "400 invalid_expression filter 8"


def test_other_org_member_cannot_see_the_kernels_dataset(scenario):
    hub = scenario["hub"]
    r = hub.api("GET", "/orgs/acme/datasets/sales", scenario["tokens"]["gary"])
    assert r.status_code == 404


def test_viewer_cannot_start_a_server(scenario):
    hub = scenario["hub"]
    r = hub.hub_api("POST", "/users/vera/servers/acme", scenario["tokens"]["vera"])
    assert r.status_code == 403, r.text
    assert "viewer" in r.json()["message"]
    model = hub.hub_api("GET", "/users/vera").json()
    assert "acme" not in model["servers"]


def test_nobody_starts_a_server_for_an_org_they_are_not_in(scenario):
    hub = scenario["hub"]
    r = hub.hub_api("POST", "/users/gary/servers/acme", scenario["tokens"]["gary"])
    assert r.status_code == 404, r.text
    r = hub.hub_api("POST", "/users/gary/servers/", scenario["tokens"]["gary"])
    assert r.status_code == 400, r.text


def test_server_extension_forwards_and_ingests_workspace_files(scenario):
    hub = scenario["hub"]
    token = scenario["tokens"]["alice"]
    import httpx

    with httpx.Client(
        base_url=scenario["server"], headers={"Authorization": f"token {token}"}, timeout=60
    ) as c:
        listing = c.get("datapilot/api/v1/orgs/acme/datasets")
        assert listing.status_code == 200, listing.text
        csv = "id,city\n1,Paris\n2,Lyon\n"
        r = c.put(
            "api/contents/cities.csv", json={"type": "file", "format": "text", "content": csv}
        )
        assert r.status_code in (200, 201), r.text
        r = c.post("datapilot/api/v1/ingest", json={"path": "cities.csv", "name": "cities"})
        assert r.status_code == 202, r.text
        job = hub.wait_job("acme", r.json()["job"]["id"], token)
        assert job["state"] == "succeeded", job
        data = c.get("datapilot/api/v1/orgs/acme/datasets/cities/data?format=csv")
        assert data.status_code == 200
        assert pd.read_csv(io.BytesIO(data.content))["city"].tolist() == ["Paris", "Lyon"]
        r = c.post("datapilot/api/v1/ingest", json={"path": "../../etc/passwd", "name": "x"})
        assert r.status_code == 400


def _browser_login(hub, user: str):
    """Sign up (the member was added through the API) and log in as a browser does."""
    password = f"pw-{user}-correct-horse"
    assert "alert-success" in hub_signup(hub, user, password)
    return hub_login(hub, user, password)


def test_browser_login_cookie_reaches_the_data_service(scenario):
    """The login cookie works too: the service's OAuth dance, then cookie-authenticated calls."""
    hub = scenario["hub"]
    # (before the login, the service knows no cookie)
    assert httpx.get(f"{hub.url}/services/datapilot/api/v1/me").status_code == 401
    browser = _browser_login(hub, "vera")
    try:
        # the login lands on the service (c.JupyterHub.default_url), through its OAuth
        # dance: a member of one organization on its home
        assert browser.last_response.url.path == "/services/datapilot/orgs/acme/"
        home = browser.get("/services/datapilot/?all=1")
        assert home.status_code == 200 and "Acme Corp" in home.text
        assert 'href="/services/datapilot/orgs/acme/"' in home.text
        me = browser.get("/services/datapilot/api/v1/me")
        assert me.status_code == 200 and me.json()["name"] == "vera"
        assert browser.get("/services/datapilot/api/v1/orgs/acme/datasets").status_code == 200
        assert browser.get("/services/datapilot/api/v1/orgs/globex/datasets").status_code == 404
    finally:
        browser.close()


def test_wrong_password_is_refused(scenario):
    hub = scenario["hub"]
    browser = hub_login(hub, "vera", "wrong", ok=False)
    try:
        assert "Invalid username or password" in browser.last_response.text
        assert browser.get("/services/datapilot/api/v1/me").status_code == 401
    finally:
        browser.close()


def test_two_instances_run_side_by_side(scenario, hub_home):
    from .utils import HubProcess

    other = HubProcess(hub_home)
    other.start()
    try:
        assert other.port != scenario["hub"].port
        assert other.api("GET", "/health").json()["status"] == "ok"
        assert scenario["hub"].api("GET", "/health").json()["status"] == "ok"
        # separate state: the second instance knows none of the first one's organizations
        assert other.api("GET", "/orgs/acme", other.admin_token).status_code == 404
    finally:
        other.stop()


def test_a_removed_member_loses_access_at_once(scenario):
    """Removal stops their server for the organization and refuses their token there."""
    hub = scenario["hub"]
    hub.add_member("acme", "ben", "analyst")
    token = hub.user_token("ben")
    r = hub.start_server("ben", "acme", token)
    assert r.status_code in (201, 202), r.text
    assert hub.api("GET", "/orgs/acme/datasets", token).status_code == 200
    r = hub.api("DELETE", "/orgs/acme/members/ben", hub.admin_token)
    assert r.status_code == 204
    assert "acme" not in hub.hub_api("GET", "/users/ben").json()["servers"]
    assert hub.api("GET", "/orgs/acme/datasets", token).status_code == 404
    assert "ben" not in hub.hub_api("GET", "/groups/org-acme").json()["users"]


def test_a_member_made_viewer_loses_their_running_server(scenario):
    hub = scenario["hub"]
    hub.add_member("acme", "cleo", "analyst")
    token = hub.user_token("cleo")
    r = hub.start_server("cleo", "acme", token)
    assert r.status_code in (201, 202), r.text
    hub.add_member("acme", "cleo", "viewer")
    assert "acme" not in hub.hub_api("GET", "/users/cleo").json()["servers"]
    # still a member, who reads as a viewer does
    assert hub.api("GET", "/orgs/acme/datasets", token).status_code == 200


def test_the_example_notebook_runs_in_a_user_server(scenario):
    import nbformat

    from .utils import REPO

    nb = nbformat.read(REPO / "notebooks" / "getting-started.ipynb", as_version=4)
    code = "\n".join(c.source for c in nb.cells if c.cell_type == "code")
    out = asyncio.run(run_in_kernel(scenario["server"], scenario["tokens"]["alice"], code))
    assert out["error"] is None, out
    # no warning of any library, no "IProgress not found"
    assert out["stderr"] == "", out["stderr"]
    # it ends with an interactive chart (HoloViews on Bokeh), rendered by JupyterLab
    assert "application/vnd.holoviews_exec.v0+json" in out["data"], out["data"].keys()
    assert ":NdOverlay" in out["result"] and "amount_sum" in out["result"]


NOTEBOOK_CLIENT_CODE = """
import pandas as pd
import datapilot_kernel as dp
df = pd.DataFrame({"n": range(300_000)})
# every transfer gets a bar: as a widget, since ipywidgets is installed
client = dp.DatapilotClient(progress_threshold=0)
info = client.save(df, "shown", mode="replace" if "shown" in set(dp.datasets()["name"]) else "create")
print("indexes", info["name"], info["rows"], type(info).__name__, isinstance(info, dict))
info
"""


def test_the_notebook_client_shows_summaries_widgets_and_one_line_errors(scenario):
    server, token = scenario["server"], scenario["tokens"]["alice"]
    out = asyncio.run(run_in_kernel(server, token, NOTEBOOK_CLIENT_CODE))
    assert out["error"] is None, out
    assert "IProgress" not in out["stderr"] and out["stderr"] == "", out["stderr"]
    widgets = [d for d in out["displays"] if "application/vnd.jupyter.widget-view+json" in d]
    assert widgets, out["displays"]
    assert out["stdout"].strip() == "indexes shown 300000 DatasetInfo True"
    # the result is a summary, not a raw dict
    assert out["result"].startswith("Dataset 'shown', version ")
    assert "300,000 rows, 1 column" in out["result"]
    assert "<table>" in out["data"]["text/html"] and "integer" in out["data"]["text/html"]
    # the spawned server's JupyterLab loads the renderers of widgets and charts
    import httpx

    lab = httpx.get(f"{server}lab", headers={"Authorization": f"token {token}"}, timeout=60)
    assert lab.status_code == 200, lab.status_code
    for renderer in (
        "@jupyter-widgets/jupyterlab-manager",
        "@bokeh/jupyter_bokeh",
        "@pyviz/jupyterlab_pyviz",
    ):
        assert f'"name": "{renderer}"' in lab.text, renderer
    # an error is one line: the service's message and code, not the client's internals
    out = asyncio.run(
        run_in_kernel(server, token, 'import datapilot_kernel as dp\ndp.load("nosuch")')
    )
    assert out["error"].startswith("DatapilotError: No dataset named 'nosuch'"), out
    assert len(out["traceback"]) == 1, out["traceback"]
    assert "(not_found, HTTP 404, line 2)" in out["traceback"][0]
    assert "httpx" not in out["traceback"][0] and "_flow" not in out["traceback"][0]
