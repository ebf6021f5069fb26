"""Dashboards, the domain: snapshots, versions, rollback, unpublish, pins, materializing.

On both catalogs (SQLite and PostgreSQL with row-level security), like the other
catalog tests.
"""

from __future__ import annotations

import base64
import json
import os

import pytest

from datapilot_contract import (
    DASHBOARD_ENV,
    DASHBOARD_PINS_ENV,
    check_pins,
    pins_from_environ,
    referenced_paths,
)
from datapilot_hub.catalog import Dashboard, Dataset, DatasetVersion
from datapilot_hub.domain._identity import Caller, org_context
from datapilot_hub.domain.dashboards import (
    DashboardService,
    build_request,
    current_snapshot,
    materialize,
    request_from_json,
)
from datapilot_hub.errors import DatapilotError

# a 1x1 PNG, as a notebook output holds a chart
PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="
)


def notebook(source: str = "import datapilot_kernel as dp\ndf = dp.load('sales')", png=False):
    cell = {
        "cell_type": "code",
        "execution_count": 1,
        "id": "c1",
        "metadata": {},
        "source": source,
        "outputs": [],
    }
    if png:
        cell["outputs"] = [
            {
                "output_type": "display_data",
                "metadata": {},
                "data": {"image/png": base64.b64encode(PNG).decode(), "text/plain": "<Figure>"},
            }
        ]
    return {
        "cells": [cell],
        "metadata": {
            "kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}
        },
        "nbformat": 4,
        "nbformat_minor": 5,
    }


def request(slug="sales", **kw):
    args = {
        "slug": slug,
        "kind": "voila",
        "title": "Sales",
        "description": "Monthly sales",
        "notebook": notebook(),
        "path": "reports/sales.ipynb",
        "files": {"data/regions.csv": b"region\nnorth\n"},
    }
    args.update(kw)
    return build_request(**args)


@pytest.fixture
def dashboards(catalog, storage):
    return DashboardService(catalog, storage)


def _status(exc: pytest.ExceptionInfo) -> tuple[int, str]:
    return exc.value.status, exc.value.code


async def test_publish_snapshots_the_notebook_and_its_files(dashboards, storage, two_orgs):
    alice = two_orgs["alpha", "alice"]
    model = dashboards.publish(alice, request())
    assert model["version"] == 1 and model["publisher"] == "alice"
    assert model["url"] == "/services/datapilot/dashboards/alpha/sales"
    folder = f"org-{alice.org_id}/dashboards/sales/v1"
    assert storage.files(folder) == [f"{folder}/data/regions.csv", f"{folder}/sales.ipynb"]
    with storage.open(f"{folder}/sales.ipynb") as f:
        assert json.load(f)["cells"][0]["source"].startswith("import datapilot_kernel")
    # what members see
    vera = two_orgs["alpha", "vera"]
    assert [d["slug"] for d in dashboards.list(vera)] == ["sales"]
    got = dashboards.get(vera, "sales")
    assert got["files"] == [{"path": "data/regions.csv", "bytes": 13}]
    assert [v["version"] for v in got["versions"]] == [1]


async def test_other_organizations_and_viewers(dashboards, two_orgs):
    dashboards.publish(two_orgs["alpha", "alice"], request())
    bob = two_orgs["beta", "bob"]
    assert dashboards.list(bob) == []
    for call in (dashboards.get, dashboards.versions, dashboards.thumbnail, dashboards.unpublish):
        with pytest.raises(DatapilotError) as e:
            call(bob, "sales")
        assert _status(e) == (404, "not_found")
    with pytest.raises(DatapilotError) as e:
        dashboards.publish(two_orgs["alpha", "vera"], request("mine"))
    assert _status(e) == (403, "forbidden")


async def test_versions_rollback_and_who_may(dashboards, storage, orgs, catalog, two_orgs):
    alice, mona = two_orgs["alpha", "alice"], two_orgs["alpha", "mona"]
    dashboards.publish(alice, request())
    v2 = dashboards.publish(alice, request(title="Sales v2", kind="panel"))
    assert (v2["version"], v2["title"], v2["kind"]) == (2, "Sales v2", "panel")
    # another analyst may neither republish, roll back nor unpublish alice's dashboard
    await orgs.set_member(two_orgs["alpha", "ada"], "ann", "analyst")
    other = org_context(catalog, Caller("ann"), "alpha")
    for call in (
        lambda: dashboards.publish(other, request()),
        lambda: dashboards.rollback(other, "sales", 1),
        lambda: dashboards.unpublish(other, "sales"),
    ):
        with pytest.raises(DatapilotError) as e:
            call()
        assert _status(e) == (403, "forbidden")
    back = dashboards.rollback(alice, "sales", 1)
    assert (back["version"], back["title"], back["kind"]) == (1, "Sales", "voila")
    assert current_snapshot(dashboards.catalog, "alpha", "sales").version == 1
    with pytest.raises(DatapilotError) as e:
        dashboards.rollback(alice, "sales", 7)
    assert e.value.status == 404
    with pytest.raises(DatapilotError) as e:
        dashboards.rollback(alice, "sales", "1")
    assert e.value.status == 400
    # a manager may do it all; versions are kept and numbering goes on after unpublishing
    dashboards.publish(mona, request(title="By Mona"))
    dashboards.unpublish(mona, "sales")
    assert dashboards.list(alice) == []
    assert current_snapshot(dashboards.catalog, "alpha", "sales") is None
    with pytest.raises(DatapilotError) as e:
        dashboards.get(alice, "sales")
    assert e.value.status == 404
    again = dashboards.publish(alice, request())
    assert again["version"] == 4 and again["publisher"] == "alice"
    assert storage.exists(f"org-{alice.org_id}/dashboards/sales/v1/sales.ipynb")


async def test_dashboards_survive_their_publisher_leaving(dashboards, orgs, two_orgs):
    alice, ada = two_orgs["alpha", "alice"], two_orgs["alpha", "ada"]
    dashboards.publish(alice, request())
    await orgs.remove_member(ada, "alice")
    vera = two_orgs["alpha", "vera"]
    assert [d["publisher"] for d in dashboards.list(vera)] == ["alice"]
    assert current_snapshot(dashboards.catalog, "alpha", "sales").publisher == "alice"
    dashboards.unpublish(two_orgs["alpha", "mona"], "sales")
    assert dashboards.list(vera) == []


async def test_a_failed_publication_leaves_nothing(dashboards, storage, two_orgs, monkeypatch):
    alice = two_orgs["alpha", "alice"]
    dashboards.publish(alice, request())
    real = storage.write_atomic
    calls = []

    def failing(path, data):
        calls.append(path)
        if len(calls) == 2:
            raise OSError("disk full")
        real(path, data)

    monkeypatch.setattr(storage, "write_atomic", failing)
    with pytest.raises(OSError):
        dashboards.publish(alice, request(title="Broken"))
    monkeypatch.setattr(storage, "write_atomic", real)
    got = dashboards.get(alice, "sales")
    assert (got["version"], got["title"]) == (1, "Sales")
    assert not storage.exists(f"org-{alice.org_id}/dashboards/sales/v2")
    # a first publication that fails leaves no visible dashboard either
    monkeypatch.setattr(storage, "write_atomic", failing)
    calls.clear()
    with pytest.raises(OSError):
        dashboards.publish(alice, request("fresh"))
    monkeypatch.setattr(storage, "write_atomic", real)
    assert [d["slug"] for d in dashboards.list(alice)] == ["sales"]
    assert dashboards.publish(alice, request("fresh"))["version"] == 2


def _dataset(catalog, org_id, name, versions):
    with catalog.session(org_id) as db:
        ds = Dataset(organization_id=org_id, name=name, created_by="u", current_version=versions)
        db.add(ds)
        db.flush()
        for v in range(1, versions + 1):
            db.add(
                DatasetVersion(
                    organization_id=org_id,
                    dataset_id=ds.id,
                    version=v,
                    columns=[],
                    rows=1,
                    bytes=1,
                    path=f"p{v}",
                    created_by="u",
                )
            )


async def test_pins(dashboards, catalog, two_orgs):
    alice = two_orgs["alpha", "alice"]
    _dataset(catalog, alice.org_id, "sales", 3)
    _dataset(catalog, alice.org_id, "regions", 2)
    with pytest.raises(DatapilotError) as e:
        dashboards.publish(alice, request(pins={"sales": 9}))
    assert _status(e) == (400, "unknown_pin")
    with pytest.raises(DatapilotError) as e:
        dashboards.publish(alice, request(pins={"sales": 0}))
    assert _status(e) == (400, "invalid_pins")
    # another organization's dataset of the same name does not count
    bob = two_orgs["beta", "bob"]
    _dataset(catalog, bob.org_id, "costs", 1)
    with pytest.raises(DatapilotError) as e:
        dashboards.publish(alice, request(pins={"costs": 1}))
    assert _status(e) == (400, "unknown_pin")
    got = dashboards.publish(alice, request(pins={"sales": 2, "regions": None}))
    assert got["datasets"] == [
        {"name": "regions", "pinned": None, "follows": "latest", "version": 2},
        {"name": "sales", "pinned": 2, "follows": "pinned", "version": 2},
    ]
    env = current_snapshot(catalog, "alpha", "sales").environment()
    assert env == {DASHBOARD_ENV: "alpha/sales", DASHBOARD_PINS_ENV: '{"sales": 2}'}
    assert pins_from_environ(env) == {"sales": 2}
    assert pins_from_environ({DASHBOARD_PINS_ENV: "not json"}) == {}


async def test_materialize_writes_the_snapshot_once(dashboards, catalog, two_orgs, tmp_path):
    alice = two_orgs["alpha", "alice"]
    dashboards.publish(alice, request())
    snap = current_snapshot(catalog, "alpha", "sales")
    assert (snap.kind, snap.notebook, snap.files, snap.key) == (
        "voila",
        "sales.ipynb",
        ("data/regions.csv",),
        "alpha/sales/v1",
    )
    target = tmp_path / "dash" / snap.key
    nb = dashboards.materialize(snap, target)
    assert nb == target / "sales.ipynb" and json.loads(nb.read_text())["nbformat"] == 4
    assert (target / "data" / "regions.csv").read_bytes() == b"region\nnorth\n"
    assert oct(os.stat(nb).st_mode & 0o777) == "0o644"
    # a folder already there is the same snapshot: left alone
    (target / "data" / "regions.csv").write_text("changed")
    materialize(dashboards.storage, snap, target)
    assert (target / "data" / "regions.csv").read_text() == "changed"
    assert [p.name for p in (tmp_path / "dash" / "alpha" / "sales").iterdir()] == ["v1"]
    # later edits change nothing until published again
    dashboards.publish(alice, request(files={"data/regions.csv": b"region\nsouth\n"}))
    snap2 = current_snapshot(catalog, "alpha", "sales")
    materialize(dashboards.storage, snap2, tmp_path / "dash" / snap2.key)
    assert (tmp_path / "dash/alpha/sales/v2/data/regions.csv").read_bytes() == b"region\nsouth\n"


async def test_thumbnails(dashboards, two_orgs):
    alice = two_orgs["alpha", "alice"]
    dashboards.publish(alice, request(notebook=notebook(png=True)))
    assert dashboards.thumbnail(alice, "sales") == ("image/png", PNG)
    dashboards.publish(alice, request("plain", title="Costs & <b>margins</b>"))
    kind, svg = dashboards.thumbnail(alice, "plain")
    assert kind == "image/svg+xml" and b"Costs &amp; &lt;b&gt;margins" in svg


@pytest.mark.parametrize(
    "change, field, code",
    [
        ({"slug": "Sales"}, "slug", "invalid_name"),
        ({"slug": "sales\n"}, "slug", "invalid_name"),
        ({"kind": "streamlit"}, "kind", "invalid_kind"),
        ({"title": "  "}, "title", "invalid_name"),
        ({"title": "a\x00b"}, "title", "invalid_name"),
        ({"description": "x" * 2001}, "description", "invalid_name"),
        ({"notebook": {"nbformat": 4}}, "notebook", "invalid_notebook"),
        ({"notebook": {"nbformat": 3, "cells": []}}, "notebook", "invalid_notebook"),
        ({"notebook": []}, "notebook", "invalid_input"),
        ({"path": "../up.ipynb"}, "path", "invalid_path"),
        ({"path": "notes.txt"}, "path", "invalid_input"),
        ({"files": {"/etc/passwd": b""}}, "files", "invalid_path"),
        ({"files": {"a/../../b.csv": b""}}, "files", "invalid_path"),
        ({"files": {".env": b""}}, "files", "invalid_path"),
        ({"files": {"sales.ipynb": b""}}, "files", "invalid_input"),
        ({"files": {"data": b"", "data/x.csv": b""}}, "files", "invalid_input"),
        ({"pins": ["sales"]}, "pins", "invalid_pins"),
        ({"pins": {"Sales": 1}}, "pins.Sales", "invalid_name"),
        ({"pins": {"sales": True}}, "pins.sales", "invalid_pins"),
    ],
)
def test_requests_are_checked(change, field, code):
    with pytest.raises(DatapilotError) as e:
        request(**change)
    assert (e.value.status, e.value.code, e.value.details.get("field")) == (400, code, field)


def test_size_limits_and_the_api_body():
    with pytest.raises(DatapilotError) as e:
        request(files={"big.bin": b"x" * 2000}, max_bytes=1000)
    assert _status(e) == (413, "too_large")
    with pytest.raises(DatapilotError) as e:
        request(files={f"f{i}.csv": b"" for i in range(101)})
    assert _status(e) == (413, "too_many_files")
    body = {
        "notebook": notebook(),
        "kind": "panel",
        "title": "T",
        "slug": "tt",
        "files": [{"path": "a.csv", "content": base64.b64encode(b"a,b\n").decode()}],
        "pins": {"sales": None},
    }
    req = request_from_json(body)
    assert (req.files, req.notebook_name, req.pins) == (
        {"a.csv": b"a,b\n"},
        "dashboard.ipynb",
        {"sales": None},
    )
    for bad, field in (
        ({**body, "files": [{"path": "a.csv", "content": "%%%"}]}, "files[0].content"),
        ({**body, "files": "a.csv"}, "files"),
        ({**body, "extra": 1}, "extra"),
        ({k: v for k, v in body.items() if k != "notebook"}, "notebook"),
        ({k: v for k, v in body.items() if k != "kind"}, "kind"),
    ):
        with pytest.raises(DatapilotError) as e:
            request_from_json(bad)
        assert (e.value.status, e.value.details.get("field")) == (400, field)


def test_referenced_paths_and_pins_rule():
    nb = notebook("df = pd.read_csv('data/sales.csv')\nopen(\"../secret.txt\")\nx = 'hello'\n")
    assert referenced_paths(nb) == ["data/sales.csv"]
    assert check_pins(None) == {}
    with pytest.raises(ValueError):
        check_pins({"a": -1})


def test_dashboard_rows_carry_the_organization():
    assert "organization_id" in Dashboard.__table__.columns
