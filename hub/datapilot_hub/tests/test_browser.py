"""The first hour, in a real browser: Debian's chromium driven by playwright-core against a
real hub (proxy, data service, spawner), one Node script per journey (``browser/journeys``).

The journeys run in order on one hub and hand their results on (the invitation links
the admin made are the next journeys' way in). Every step leaves a screenshot under
``test-artifacts/screenshots/`` (gitignored), kept after the run to look at.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from .utils import REPO, running_hub

BROWSER_DIR = Path(__file__).with_name("browser")
CHROMIUM = os.environ.get("DATAPILOT_TEST_CHROMIUM", "/usr/bin/chromium")
SCREENSHOTS = REPO / "test-artifacts" / "screenshots"
ADMIN_PASSWORD = "first-hour-admin-pw"
ORG = "acme"


def _browser_missing() -> str | None:
    if not Path(CHROMIUM).exists():
        return f"{CHROMIUM} is not installed (make test installs Debian's chromium)"
    if not (BROWSER_DIR / "node_modules" / "playwright-core").is_dir():
        return "playwright-core is not installed (make browser-tests)"
    if shutil.which("node") is None:
        return "node is not installed"
    return None


@pytest.fixture(scope="module")
def browser_hub(request, tmp_path_factory):
    """A hub for the journeys, on the embedded defaults; screenshots start afresh."""
    missing = _browser_missing()
    if missing:
        if os.environ.get("DATAPILOT_TEST_REQUIRE_BROWSER") == "1":
            pytest.fail(missing)
        pytest.skip(missing)
    shutil.rmtree(SCREENSHOTS, ignore_errors=True)
    SCREENSHOTS.mkdir(parents=True)
    env = {"DATAPILOT_ADMIN_PASSWORD": ADMIN_PASSWORD, "DATAPILOT_DEFAULT_PLAN": "team"}
    with running_hub(request, tmp_path_factory, "sqlite", env=env, label="browser") as hub:
        yield hub


@pytest.fixture(scope="module")
def state() -> dict:
    """What one journey hands to the next."""
    return {}


def journey(hub, script: str, **inputs) -> dict:
    """Run ``browser/journeys/<script>.js`` against ``hub``; its results, or a failure that
    quotes its output (a screenshot of the failing page is among the artifacts)."""
    proc = subprocess.run(
        ["node", str(BROWSER_DIR / "journeys" / f"{script}.js")],
        env={
            **os.environ,
            "HUB_URL": hub.url,
            "SCREENSHOTS": str(SCREENSHOTS),
            "CHROMIUM": CHROMIUM,
            "JOURNEY_INPUT": json.dumps(inputs),
        },
        capture_output=True,
        text=True,
        timeout=300,
        cwd=BROWSER_DIR,
    )
    assert proc.returncode == 0, (
        f"journey {script} failed:\n{proc.stderr}\n{proc.stdout}\nhub log:\n{hub.log_tail(30)}"
    )
    return json.loads(proc.stdout.strip().splitlines()[-1])


def needs(state: dict, key: str):
    if key not in state:
        pytest.skip(f"an earlier journey did not give {key!r}")
    return state[key]


def audit(hub, action: str) -> list[dict]:
    r = hub.api("GET", f"/orgs/{ORG}/audit?action={action}", hub.admin_token)
    assert r.status_code == 200, r.text
    return r.json()["events"]


def sales_file(path: Path) -> Path:
    """A German export: cp1252, ';', a title line, '1.627,51 €', '12,5 %', dd.mm.yyyy
    dates, postcodes with leading zeros, and one amount that is no amount."""
    lines = ["Umsatzbericht 2024", "Region;Betrag;Anteil;Datum;PLZ"]
    regions = ["Nord", "Süd", "Ost", "West"]
    for i in range(40):
        euros = f"{1000 + i * 37:,}".replace(",", ".")
        amount = "viel" if i == 7 else f"{euros},{i:02d} €"
        lines.append(f"{regions[i % 4]};{amount};{i % 20},5 %;{1 + i % 28:02d}.02.2024;0{1067 + i}")
    path.write_bytes(("\r\n".join(lines) + "\r\n").encode("cp1252"))
    return path


def test_an_admin_creates_an_organization_and_invites_by_link(browser_hub, state):
    links = journey(
        browser_hub, "admin_creates_org", admin="admin", password=ADMIN_PASSWORD, org=ORG
    )
    state["links"] = links
    org = browser_hub.api("GET", f"/orgs/{ORG}", browser_hub.admin_token).json()
    # created from the page: the creator is its Admin, on the default plan of this hub
    assert (org["name"], org["plan"]) == ("Acme Corp", "team")
    members = browser_hub.api("GET", f"/orgs/{ORG}/members", browser_hub.admin_token).json()
    assert [(m["name"], m["role"]) for m in members["members"]] == [("admin", "admin")]
    created = audit(browser_hub, "org.create")
    assert [(e["target"], e["outcome"]) for e in created] == [(ORG, "ok")]
    # an invitation's audit target is the person invited
    invited = audit(browser_hub, "invitation.create")
    assert sorted(e["target"] for e in invited) == ["analyst@example.org", "viewer@example.org"]


def test_a_bad_member_name_is_a_form_error(browser_hub, state):
    needs(state, "links")
    result = journey(
        browser_hub, "bad_member_name", admin="admin", password=ADMIN_PASSWORD, org=ORG
    )
    assert "Bad Name!" in result["error"]
    refused = [e for e in audit(browser_hub, "member.set") if e["target"] == "Bad Name!"]
    assert [(e["outcome"], e["status"]) for e in refused] == [("invalid_name", 400)]


def test_an_invitee_signs_up_joins_and_uploads_from_the_browser(browser_hub, state, tmp_path):
    links = needs(state, "links")
    result = journey(
        browser_hub,
        "analyst_joins_and_uploads",
        link=links["analyst"],
        user="alice",
        password="alice-first-hour",
        org=ORG,
        file=str(sales_file(tmp_path / "sales.csv")),
        dataset="sales",
    )
    assert result["types"] == {
        "region": "string",
        "betrag": "number",
        "anteil": "number",
        "datum": "date",
        "plz": "string",
    }
    assert result["badCells"] == 1 and result["previewRows"] == 20
    state["dataset"] = "sales"
    # joined through the page: audited exactly as the API's accept is, plus where it came from
    (joined,) = audit(browser_hub, "invitation.accept")
    assert (joined["user"], joined["target"], joined["outcome"]) == ("alice", "alice", "ok")
    assert {"role": "analyst", "via": "page"}.items() <= joined["details"].items()
    assert joined["details"]["invitation"]
    (imported,) = audit(browser_hub, "dataset.import")
    assert (imported["user"], imported["target"], imported["outcome"]) == ("alice", "sales", "ok")


def test_a_viewer_sees_only_what_they_may(browser_hub, state):
    links = needs(state, "links")
    dataset = needs(state, "dataset")
    journey(
        browser_hub,
        "viewer_sees_what_they_may",
        link=links["viewer"],
        user="victor",
        password="victor-first-hour",
        org=ORG,
        dataset=dataset,
    )
    state["viewer"] = "victor"
    refused = [e for e in audit(browser_hub, "dataset.read") if e["user"] == "victor"]
    assert refused and all(e["details"].get("format") == "preview" for e in refused)


def _chart_notebook(hub, token: str, dataset: str) -> dict:
    """A notebook whose output is a chart of ``dataset`` as PNG (the charts API draws it)."""
    import base64

    r = hub.api(
        "POST",
        f"/orgs/{ORG}/visualizations/generate?format=png&width=640&height=360",
        token,
        check=False,
        json={"dataset": dataset},
    )
    assert r.status_code == 200, r.text
    return {
        "cells": [
            {
                "cell_type": "code",
                "execution_count": 1,
                "id": "chart",
                "metadata": {},
                "source": f'import datapilot_kernel as dp\ndp.chart("{dataset}")',
                "outputs": [
                    {
                        "output_type": "display_data",
                        "metadata": {},
                        "data": {"image/png": base64.b64encode(r.content).decode()},
                    }
                ],
            }
        ],
        "metadata": {},
        "nbformat": 4,
        "nbformat_minor": 5,
    }


def test_a_viewer_lands_on_the_gallery(browser_hub, state):
    """Dashboards published (one with a chart for its picture, pinned to the first version
    of the dataset; the two examples); the viewer logs in and finds them."""
    from datapilot_contract import publication_body

    viewer = needs(state, "viewer")
    dataset = needs(state, "dataset")
    hub = browser_hub
    token = hub.user_token("alice")
    published = {
        "sales-overview": {
            "notebook": _chart_notebook(hub, token, dataset),
            "kind": "voila",
            "title": "Sales overview",
            "slug": "sales-overview",
            "description": "Sales by region from the monthly export, pinned to its first version.",
            "pins": {dataset: 1},
        }
    }
    for kind, notebook, title in (
        ("voila", "example-sales-voila.ipynb", "Example sales (Voilà)"),
        ("panel", "example-sales-panel.ipynb", "Example sales (Panel)"),
    ):
        b = publication_body(REPO / "notebooks", notebook, kind=kind, title=title)
        b["description"] = "Monthly sales of the sample dataset by region and product."
        published[b["slug"]] = b
    for b in published.values():
        r = hub.api("POST", f"/orgs/{ORG}/dashboards", token, json=b)
        assert r.status_code == 201, r.text
    result = journey(
        hub,
        "viewer_sees_gallery",
        user=viewer,
        password="victor-first-hour",
        org=ORG,
        dashboards=sorted(published),
        pinned="sales-overview",
        publisher="alice",
        search="overview",
        shows="v1 (pinned)",
        dataset=dataset,
    )
    assert Path(result["gallery"]).exists()


def test_a_refused_server_start_explains_itself(browser_hub, state):
    viewer = needs(state, "viewer")
    result = journey(
        browser_hub, "refused_server_start", user=viewer, password="victor-first-hour", org=ORG
    )
    assert "Acme Corp (viewer)" in result["message"]


def test_a_new_analysts_server_has_the_example_notebooks_and_no_news_prompt(browser_hub, state):
    needs(state, "dataset")
    hub = browser_hub
    try:
        result = journey(
            hub, "analyst_opens_lab", user="alice", password="alice-first-hour", org=ORG
        )
        assert any("getting-started.ipynb" in f for f in result["files"]), result
        homes = list((hub.home / "homes").iterdir())
        (home,) = [h for h in homes if (h / "getting-started.ipynb").exists()]
        notebook = home / "getting-started.ipynb"
        assert notebook.read_bytes() == (REPO / "notebooks" / "getting-started.ipynb").read_bytes()
        news = home / ".jupyter/lab/user-settings/@jupyterlab/apputils-extension"
        settings = json.loads((news / "notification.jupyterlab-settings").read_text())
        assert settings["fetchNews"] == "false"
        if hub.isolated:
            # the server's account owns them (root wrote them)
            owner = home.stat().st_uid
            assert owner != 0
            for path in (notebook, news, news / "notification.jupyterlab-settings"):
                assert path.stat().st_uid == owner, path
    finally:
        hub.hub_api("DELETE", f"/users/alice/servers/{ORG}")


def test_the_api_tells_an_invitation_by_its_code(browser_hub, state):
    links = needs(state, "links")
    code = links["viewer"].rsplit("/", 1)[1]
    token = browser_hub.user_token("alice")
    r = browser_hub.api("GET", f"/invitations/{code}", token)
    assert r.status_code == 200, r.text
    body = r.json()
    assert (body["organization"]["slug"], body["role"], body["state"]) == (ORG, "viewer", "used")
    assert "code" not in body
    assert browser_hub.api("GET", f"/invitations/{'x' * 43}", token).status_code == 404
    assert browser_hub.api("GET", f"/invitations/{code}").status_code == 401
