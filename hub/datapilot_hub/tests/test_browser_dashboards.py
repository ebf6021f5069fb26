"""Published dashboards in a real browser: Debian's chromium (playwright-core) as a viewer.

A real hub; acme's analyst publishes the example dashboards (``notebooks/``: Voilà with
ipywidgets and HoloViews, and Panel) on the sample dataset; the viewer logs in, opens
each by its stable address and finds its chart drawn. Screenshots go under
``test-artifacts/screenshots/`` (``9-dashboards-*``); the README's come from there.
"""

from __future__ import annotations

import json
import os

import pytest

from .test_browser import CHROMIUM, SCREENSHOTS, _browser_missing, journey
from .utils import REPO, hub_signup, notebook, running_hub

pytestmark = [pytest.mark.e2e]


# a publisher's script in an HTML output: it tries to act as whoever opens the dashboard
ATTACK = """
<div id="dp-script-result" data-done="0">running</div>
<script>
(async () => {
  const api = "/services/datapilot/api/v1/orgs/acme";
  const send = async (method, path, body) => {
    const r = await fetch(api + path, {
      method, credentials: "include",
      headers: {"Content-Type": "application/json"},
      body: body ? JSON.stringify(body) : undefined,
    });
    return r.status;
  };
  const result = {
    get: await send("GET", "/members"),
    put: await send("PUT", "/members/mallory", {role: "admin"}),
    del: await send("DELETE", "/datasets/sample_sales"),
  };
  const el = document.getElementById("dp-script-result");
  el.dataset.result = JSON.stringify(result);
  el.dataset.done = "1";
  el.textContent = JSON.stringify(result);
})();
</script>
"""

SCRIPTED = notebook(f"from IPython.display import HTML\nHTML({ATTACK!r})")


@pytest.fixture(scope="module")
def dash_hub(request, tmp_path_factory):
    missing = _browser_missing()
    if missing:
        if os.environ.get("DATAPILOT_TEST_REQUIRE_BROWSER") == "1":
            pytest.fail(missing)
        pytest.skip(missing)
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    with running_hub(request, tmp_path_factory, "sqlite", label="browserdash") as hub:
        for user in ("alice", "vera"):
            assert hub.hub_api("POST", f"/users/{user}").status_code in (201, 409)
        tokens = hub.populate(
            {"acme": "Acme Corp"}, [("acme", "alice", "analyst"), ("acme", "vera", "viewer")]
        )
        csv = (REPO / "notebooks" / "sample_sales.csv").read_bytes()
        r = hub.upload("acme", tokens["alice"], "sample_sales", csv, "sample_sales.csv")
        assert r.status_code == 202, r.text
        assert hub.wait_job("acme", r.json()["job"]["id"], tokens["alice"])["state"] == "succeeded"
        for slug, kind in (("sales", "voila"), ("sales-app", "panel")):
            name = f"example-sales-{kind}.ipynb"
            body = {
                "notebook": json.loads((REPO / "notebooks" / name).read_text()),
                "kind": kind,
                "slug": slug,
                "title": f"Example sales ({kind})",
            }
            r = hub.api("POST", "/orgs/acme/dashboards", tokens["alice"], json=body)
            assert r.status_code == 201, r.text
        assert "alert-success" in hub_signup(hub, "vera", "pw-vera-correct-horse")
        hub.hub_api("POST", "/users/ada")
        hub.add_member("acme", "ada", "admin")
        assert "alert-success" in hub_signup(hub, "ada", "pw-ada-correct-horse")
        body = {"notebook": SCRIPTED, "kind": "voila", "slug": "scripted", "title": "Scripted"}
        r = hub.api("POST", "/orgs/acme/dashboards", tokens["alice"], json=body)
        assert r.status_code == 201, r.text
        yield hub


def test_a_viewer_sees_the_voila_and_panel_dashboards_drawn(dash_hub):
    out = journey(
        dash_hub,
        "viewer_opens_dashboards",
        user="vera",
        password="pw-vera-correct-horse",
        org="acme",
        voila="sales",
        panel="sales-app",
    )
    for key in ("voila", "panel"):
        assert os.path.getsize(out[key]) > 20_000, out  # a drawn page, not a blank one
    assert CHROMIUM


def test_a_dashboards_script_cannot_act_as_the_admin_who_opens_it(dash_hub):
    out = journey(
        dash_hub,
        "dashboard_script_cannot_act",
        user="ada",
        password="pw-ada-correct-horse",
        org="acme",
        slug="scripted",
    )
    assert out["ran"], out  # Voilà runs an output's script: the attack is real
    for result in (out["evaluated"], out["inPage"]):
        # without the XSRF token the cookie counts for nothing (401), reads included
        assert {result["put"], result["del"]} <= {401, 403}, out
    members = dash_hub.api("GET", "/orgs/acme/members", dash_hub.admin_token).json()["members"]
    assert "mallory" not in {m["name"] for m in members}
    r = dash_hub.api("GET", "/orgs/acme/datasets/sample_sales", dash_hub.admin_token)
    assert r.status_code == 200  # still there
