"""The gallery on the organization's home, a dashboard's page and the dataset page's chart,
through a real hub, as browsers (login cookies) of a Viewer, an Analyst and a Manager.

A Viewer sees the cards, the dataset versions each dashboard shows and no action they
cannot take; the publisher and a Manager get the rollback and unpublish forms.
"""

from __future__ import annotations

import base64
import re

import pytest

from .test_dashboard_api import CSV, body
from .utils import form_xsrf, hub_browser

HOME = "/services/datapilot/orgs/acme/"


@pytest.fixture(scope="module")
def world(sqlite_hub):
    """acme: alice (analyst, publishes), ann (analyst), vic (viewer), mo (manager);
    globex: gus (analyst). Browsers for vic, ann, alice and mo; tokens for alice and gus."""
    hub = sqlite_hub
    hub.create_org("acme", "Acme Corp")
    hub.create_org("globex", "Globex")
    for org, user, role in (
        ("acme", "alice", "analyst"),
        ("acme", "ann", "analyst"),
        ("acme", "vic", "viewer"),
        ("acme", "mo", "manager"),
        ("globex", "gus", "analyst"),
    ):
        assert hub.hub_api("POST", f"/users/{user}").status_code in (201, 409)
        hub.add_member(org, user, role)
    tokens = {u: hub.user_token(u) for u in ("alice", "gus")}
    for version in (1, 2):
        r = hub.upload(
            "acme",
            tokens["alice"],
            "sales",
            CSV,
            "sales.csv",
            "create" if version == 1 else "replace",
        )
        assert hub.wait_job("acme", r.json()["job"]["id"], tokens["alice"])["state"] == "succeeded"
    r = hub.upload("acme", tokens["alice"], "regions", CSV, "regions.csv")
    assert hub.wait_job("acme", r.json()["job"]["id"], tokens["alice"])["state"] == "succeeded"
    for slug, title, pins in (
        ("sales", "Sales by region", {"sales": 1, "regions": None}),
        ("costs", "Costs & <margins>", None),
    ):
        r = hub.api(
            "POST",
            "/orgs/acme/dashboards",
            tokens["alice"],
            json=body(slug, title=title, pins=pins),
        )
        assert r.status_code == 201, r.text
    browsers = {u: hub_browser(hub, u) for u in ("vic", "ann", "alice", "mo")}
    yield {"hub": hub, "tokens": tokens, **browsers}
    for b in browsers.values():
        b.close()


def test_a_viewer_sees_the_gallery_and_no_action(world):
    vic = world["vic"]
    page = vic.get(HOME)
    assert page.status_code == 200
    cards = re.findall(r'data-dashboard="([^"]+)"', page.text)
    assert sorted(cards) == ["costs", "sales"]
    # escaped, linked to the stable address, with its publisher
    assert "Costs &amp; &lt;margins&gt;" in page.text and "<margins>" not in page.text
    assert 'href="/services/datapilot/dashboards/acme/sales"' in page.text
    assert "by alice" in page.text
    for absent in ('id="upload-link"', 'id="open-server"', 'id="nav-servers"', "dp.publish("):
        assert absent not in page.text, absent
    # the thumbnails load with the login cookie (same-origin images)
    for src in re.findall(r'<img src="([^"]+/thumbnail\?v=\d+)"', page.text):
        pic = vic.get(src.replace("&amp;", "&"))
        assert pic.status_code == 200 and pic.headers["content-type"].startswith("image/"), src
    # search
    found = vic.get(HOME, params={"q": "margins"})
    assert re.findall(r'data-dashboard="([^"]+)"', found.text) == ["costs"]
    none = vic.get(HOME, params={"q": "zzz"})
    assert 'id="no-dashboards"' in none.text and "2 in all" in none.text


def test_an_analyst_sees_how_to_publish_and_their_servers(world):
    page = world["ann"].get(HOME)
    assert 'id="upload-link"' in page.text and 'id="nav-servers"' in page.text


def test_a_dashboard_page_says_which_versions_it_shows(world):
    vic = world["vic"]
    page = vic.get(f"{HOME}dashboards/sales")
    assert page.status_code == 200
    rows = dict(
        re.findall(
            r'data-dataset="(\w+)">.*?<td class="dataset-version">(.*?)</td>',
            page.text,
            re.S,
        )
    )
    assert rows == {"regions": "latest (now v1)", "sales": "v1 (pinned)"}
    assert 'id="unpublish-dashboard"' not in page.text and "Make current" not in page.text
    costs = vic.get(f"{HOME}dashboards/costs")
    assert 'id="dashboard-datasets-latest"' in costs.text
    # another organization's member, and a slug that does not exist: 404
    assert world["hub"].client(world["tokens"]["gus"]).get(
        f"{HOME}dashboards/sales"
    ).status_code in (
        302,
        404,
    )
    assert vic.get(f"{HOME}dashboards/nosuch").status_code == 404


def test_the_publisher_and_a_manager_may_act_an_other_analyst_not(world):
    hub, alice, ann, mo = world["hub"], world["alice"], world["ann"], world["mo"]
    r = hub.api("POST", "/orgs/acme/dashboards", world["tokens"]["alice"], json=body("sales"))
    assert r.json()["version"] == 2
    page = alice.get(f"{HOME}dashboards/sales")
    assert 'id="unpublish-dashboard"' in page.text and "Make current" in page.text
    assert 'id="unpublish-dashboard"' not in ann.get(f"{HOME}dashboards/sales").text
    # ann's form post is refused (the domain decides), alice's rollback works
    # (her page has no form: the upload page's token, as a hand-made request would)
    xsrf = re.search(r'data-xsrf="([^"]+)"', ann.get(f"{HOME}upload").text).group(1)
    r = ann.post(f"{HOME}dashboards/sales", data={"action": "unpublish", "_xsrf": xsrf})
    assert r.status_code == 403
    r = alice.post(
        f"{HOME}dashboards/sales",
        data={"action": "rollback", "version": "1", "_xsrf": form_xsrf(page)},
    )
    assert r.status_code == 200 and "Version 1 of sales is current again." in r.text
    # the manager unpublishes: off the gallery
    page = mo.get(f"{HOME}dashboards/costs")
    r = mo.post(f"{HOME}dashboards/costs", data={"action": "unpublish", "_xsrf": form_xsrf(page)})
    assert r.status_code == 200 and str(r.url).endswith(HOME)
    assert 'data-dashboard="costs"' not in r.text
    events = hub.api("GET", "/orgs/acme/audit?action=dashboard.unpublish", hub.admin_token).json()
    assert [(e["user"], e["target"], e["outcome"]) for e in events["events"]][:2] == [
        ("mo", "costs", "ok"),
        ("ann", "sales", "forbidden"),
    ]


def test_the_dataset_page_shows_a_chart(world):
    page = world["vic"].get(f"{HOME}datasets/sales")
    found = re.search(
        r'<figure class="mb-4" id="dataset-chart">\s*<img src="data:image/png;base64,([^"]+)"',
        page.text,
    )
    assert found, page.text[:2000]
    assert base64.b64decode(found.group(1)).startswith(b"\x89PNG")
