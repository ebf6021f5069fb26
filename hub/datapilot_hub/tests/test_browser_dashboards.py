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
from .utils import REPO, hub_signup, running_hub

pytestmark = [pytest.mark.e2e]


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
