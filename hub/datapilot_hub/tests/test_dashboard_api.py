"""The dashboards API through a real JupyterHub, proxy and data service, on both catalogs.

Publishing, the gallery's list and search, versions and rollback, unpublishing, who may
do each (another organization's member: 404; a role without the permission: 403), and
every refusal a JSON 4xx.
"""

from __future__ import annotations

import base64

import pytest

from .test_dashboards import PNG, notebook

CSV = b"region,amount\nnorth,3\nsouth,5\n"


def body(slug="sales", **kw):
    b = {
        "notebook": notebook(png=True),
        "path": "reports/sales.ipynb",
        "kind": "voila",
        "title": "Sales by region",
        "slug": slug,
        "description": "Where we sell",
        "files": [{"path": "data/regions.csv", "content": base64.b64encode(CSV).decode()}],
    }
    b.update(kw)
    return b


@pytest.fixture(scope="module")
def world(hub):
    """acme: alice and ann (analysts), vera (viewer), mona (manager); globex: gary."""
    tokens = hub.populate(
        {"acme": "Acme Corp", "globex": "Globex"},
        [
            ("acme", "alice", "analyst"),
            ("acme", "ann", "analyst"),
            ("acme", "vera", "viewer"),
            ("acme", "mona", "manager"),
            ("globex", "gary", "analyst"),
        ],
    )
    r = hub.upload("acme", tokens["alice"], "sales", CSV, "sales.csv")
    assert r.status_code == 202, r.text
    assert hub.wait_job("acme", r.json()["job"]["id"], tokens["alice"])["state"] == "succeeded"
    return tokens


def test_publish_list_get_and_thumbnail(hub, world):
    t = world
    r = hub.api("POST", "/orgs/acme/dashboards", t["alice"], json=body(pins={"sales": 1}))
    assert r.status_code == 201, r.text
    assert r.headers["Location"].endswith("/orgs/acme/dashboards/sales")
    model = r.json()
    assert model["version"] == 1 and model["publisher"] == "alice" and model["kind"] == "voila"
    assert model["url"] == "/services/datapilot/dashboards/acme/sales"
    assert model["datasets"] == [{"name": "sales", "pinned": 1, "follows": "pinned", "version": 1}]
    listed = hub.api("GET", "/orgs/acme/dashboards", t["vera"]).json()["dashboards"]
    assert [d["slug"] for d in listed] == ["sales"]
    assert hub.api("GET", "/orgs/acme/dashboards?q=REGION", t["vera"]).json()["dashboards"]
    assert hub.api("GET", "/orgs/acme/dashboards?q=nothing", t["vera"]).json()["dashboards"] == []
    got = hub.api("GET", "/orgs/acme/dashboards/sales", t["vera"]).json()
    assert got["files"] == [{"path": "data/regions.csv", "bytes": len(CSV)}]
    with hub.client(t["vera"]) as c:
        pic = c.get(model["thumbnail"])
    assert pic.status_code == 200 and pic.headers["Content-Type"] == "image/png"
    assert pic.content == PNG
    # the audit log names the publication
    events = hub.api("GET", "/orgs/acme/audit?action=dashboard.publish", t["mona"]).json()
    assert [(e["user"], e["target"]) for e in events["events"]][:1] == [("alice", "sales")]


def test_other_organizations_get_404_and_viewers_403(hub, world):
    t = world
    hub.api("POST", "/orgs/acme/dashboards", t["alice"], json=body("kpis"))
    for method, path, kw in (
        ("GET", "/orgs/acme/dashboards", {}),
        ("POST", "/orgs/acme/dashboards", {"json": body("mine")}),
        ("GET", "/orgs/acme/dashboards/kpis", {}),
        ("GET", "/orgs/acme/dashboards/kpis/versions", {}),
        ("GET", "/orgs/acme/dashboards/kpis/thumbnail", {}),
        ("POST", "/orgs/acme/dashboards/kpis/rollback", {"json": {"version": 1}}),
        ("DELETE", "/orgs/acme/dashboards/kpis", {}),
    ):
        r = hub.api(method, path, t["gary"], **kw)
        assert r.status_code == 404, (method, path, r.text)
        assert r.json()["error"] == "not_found"
    r = hub.api("POST", "/orgs/acme/dashboards", t["vera"], json=body("mine"))
    assert r.status_code == 403 and r.json()["details"]["permission"] == "dashboards:publish"
    for method, path, kw in (
        ("POST", "/orgs/acme/dashboards/kpis/rollback", {"json": {"version": 1}}),
        ("DELETE", "/orgs/acme/dashboards/kpis", {}),
    ):
        assert hub.api(method, path, t["vera"], **kw).status_code == 403


def test_versions_rollback_and_unpublish(hub, world):
    t = world
    for title in ("Ann's v1", "Ann's v2"):
        r = hub.api("POST", "/orgs/acme/dashboards", t["ann"], json=body("anns", title=title))
        assert r.status_code == 201, r.text
    versions = hub.api("GET", "/orgs/acme/dashboards/anns/versions", t["vera"]).json()
    assert [(v["version"], v["current"]) for v in versions["versions"]] == [(1, False), (2, True)]
    # alice (an analyst too) may not touch ann's dashboard; ann and a manager may
    for method, path, kw in (
        ("POST", "/orgs/acme/dashboards", {"json": body("anns")}),
        ("POST", "/orgs/acme/dashboards/anns/rollback", {"json": {"version": 1}}),
        ("DELETE", "/orgs/acme/dashboards/anns", {}),
    ):
        r = hub.api(method, path, t["alice"], **kw)
        assert r.status_code == 403, (method, path, r.text)
    r = hub.api("POST", "/orgs/acme/dashboards/anns/rollback", t["ann"], json={"version": 1})
    assert r.status_code == 200 and r.json()["title"] == "Ann's v1"
    r = hub.api("POST", "/orgs/acme/dashboards/anns/rollback", t["ann"], json={"version": "x"})
    assert r.status_code == 400
    assert hub.api("DELETE", "/orgs/acme/dashboards/anns", t["mona"]).status_code == 204
    assert hub.api("GET", "/orgs/acme/dashboards/anns", t["ann"]).status_code == 404
    slugs = [
        d["slug"] for d in hub.api("GET", "/orgs/acme/dashboards", t["ann"]).json()["dashboards"]
    ]
    assert "anns" not in slugs


def test_dashboards_outlive_their_publisher(hub, world):
    hub.add_member("acme", "pat", "analyst")
    pat = hub.user_token("pat")
    assert hub.api("POST", "/orgs/acme/dashboards", pat, json=body("pats")).status_code == 201
    assert hub.api("DELETE", "/orgs/acme/members/pat", hub.admin_token).status_code == 204
    got = hub.api("GET", "/orgs/acme/dashboards/pats", world["vera"])
    assert got.status_code == 200 and got.json()["publisher"] == "pat"
    assert hub.api("GET", "/orgs/acme/dashboards/pats", pat).status_code == 404
    assert hub.api("DELETE", "/orgs/acme/dashboards/pats", world["mona"]).status_code == 204


@pytest.mark.parametrize(
    "change, status, code",
    [
        ({"slug": "Bad Slug"}, 400, "invalid_name"),
        ({"kind": "shiny"}, 400, "invalid_kind"),
        ({"notebook": {"nbformat": 4, "cells": "no"}}, 400, "invalid_notebook"),
        ({"files": [{"path": "../../etc/passwd", "content": ""}]}, 400, "invalid_path"),
        ({"pins": {"sales": 99}}, 400, "unknown_pin"),
        ({"pins": {"sales": "latest"}}, 400, "invalid_pins"),
        ({"title": ""}, 400, "invalid_name"),
        ({"surprise": 1}, 400, "invalid_input"),
        (
            {"files": [{"path": f"f{i}.csv", "content": ""} for i in range(101)]},
            413,
            "too_many_files",
        ),
    ],
)
def test_bad_publications_are_json_4xx(hub, world, change, status, code):
    r = hub.api("POST", "/orgs/acme/dashboards", world["alice"], json={**body("bad"), **change})
    assert (r.status_code, r.json()["error"]) == (status, code), r.text
    assert hub.api("GET", "/orgs/acme/dashboards/bad", world["alice"]).status_code == 404


def test_a_publication_may_be_larger_than_other_bodies(hub, world):
    # 2 MiB of files: over the service's 1 MiB body limit, within the publication limit
    big = base64.b64encode(b"x" * (2 * 1024**2)).decode()
    r = hub.api(
        "POST",
        "/orgs/acme/dashboards",
        world["alice"],
        json=body("big", files=[{"path": "big.bin", "content": big}]),
    )
    assert r.status_code == 201, r.text
    # any other call keeps the small limit
    r = hub.api("POST", "/orgs/acme/dashboards/big/rollback", world["alice"], json={"v": big})
    assert (r.status_code, r.json()["error"]) == (413, "too_large")
