"""The pieces of the first hour that need no hub: Excel downloads, the invitation a login
carries, the default plan of a new organization, a new home's first files, refusals that
explain themselves. (The journeys themselves run in a browser: test_browser.py.)"""

from __future__ import annotations

import io
import json
from datetime import datetime, timezone

import pyarrow as pa
import pytest
from openpyxl import load_workbook

from datapilot_hub._native_pages import DataServiceCaller
from datapilot_hub.domain._identity import Caller
from datapilot_hub.domain.datasets import _xlsx_chunks
from datapilot_hub.domain.orgs import OrgService
from datapilot_hub.domain.plans import Plans
from datapilot_hub.hubapi import HubClient
from datapilot_hub.spawner import DatapilotSpawner, SpawnRefused, examples_dir

from .utils import REPO


def test_an_excel_download_neutralizes_formulas_and_keeps_types():
    schema = pa.schema(
        [
            ("text", pa.string()),
            ("amount", pa.float64()),
            ("day", pa.date32()),
            ("at", pa.timestamp("us", tz="UTC")),
        ]
    )
    batch = pa.record_batch(
        [
            pa.array(['=HYPERLINK("x")', "plain", None]),
            pa.array([1.5, None, -2.0]),
            pa.array([datetime(2024, 2, 1).date()] * 3),
            pa.array([datetime(2024, 2, 1, 12, 30, tzinfo=timezone.utc)] * 3),
        ],
        schema=schema,
    )
    data = b"".join(_xlsx_chunks(iter([batch]), schema, "a_rather_long_dataset_name_over_31"))
    wb = load_workbook(io.BytesIO(data))
    (sheet,) = wb.worksheets
    assert sheet.title == "a_rather_long_dataset_name_over"  # Excel's 31 characters
    rows = list(sheet.iter_rows(values_only=True))
    assert rows[0] == ("text", "amount", "day", "at")
    # a text cell that a spreadsheet would run is shown, not run
    assert rows[1][0] == '\'=HYPERLINK("x")' and rows[2][0] == "plain" and rows[3][0] is None
    assert [r[1] for r in rows[1:]] == [1.5, None, -2.0]
    assert rows[1][2] == datetime(2024, 2, 1) and rows[1][3] == datetime(2024, 2, 1, 12, 30)


@pytest.mark.parametrize(
    ("next_url", "code"),
    [
        ("/services/datapilot/invitations/" + "a" * 43, "a" * 43),
        ("/services/datapilot/invitations/" + "b" * 43 + "/join", "b" * 43),
        ("http://hub.example/services/datapilot/invitations/" + "c" * 43 + "/join", "c" * 43),
        ("/services/datapilot/invitations/" + "a" * 42, None),
        ("/services/datapilot/invitations/" + "a" * 43 + "/other", None),
        ("/services/other/invitations/" + "a" * 43, None),
        ("/hub/home", None),
        ("", None),
    ],
)
def test_a_login_or_sign_up_knows_the_invitation_it_carries(next_url, code):
    caller = DataServiceCaller(
        datapilot_api_url="http://127.0.0.1:8000/services/datapilot/api/v1/",
        datapilot_api_token="t",
    )
    assert caller.invitation_code(next_url) == code


async def test_an_unconfigured_hub_carries_no_invitation():
    caller = DataServiceCaller()
    assert await caller.invitation_for("/services/datapilot/invitations/" + "a" * 43) is None


async def test_a_new_organization_gets_the_default_plan(catalog):
    plans = Plans(catalog, default_plan="business")
    orgs = OrgService(catalog, HubClient(api_url="", token=""), plans)
    model = await orgs.create(Caller("ada"), "bigco", "Big Co")
    assert model["plan"] == "business"
    assert plans.usage(catalog_org_id(catalog, "bigco"))["plan"] == "business"


def catalog_org_id(catalog, slug: str) -> int:
    from datapilot_hub.catalog import Organization

    with catalog.session(system=True) as db:
        return Organization.find(db, slug).id


def test_a_new_home_gets_the_examples_and_no_news_prompt_once(tmp_path):
    assert examples_dir() == REPO / "notebooks"
    # (first_start_files reads nothing of the spawner but its arguments)
    DatapilotSpawner.first_start_files(None, tmp_path)
    notebooks = sorted(p.name for p in tmp_path.glob("*.ipynb"))
    assert notebooks == sorted(p.name for p in (REPO / "notebooks").glob("*.ipynb"))
    settings = tmp_path / (
        ".jupyter/lab/user-settings/@jupyterlab/apputils-extension/notification.jupyterlab-settings"
    )
    assert json.loads(settings.read_text())["fetchNews"] == "false"
    # done once: a notebook the user deleted does not come back, their files stay theirs
    (tmp_path / notebooks[0]).unlink()
    settings.write_text('{"fetchNews": "true"}')
    DatapilotSpawner.first_start_files(None, tmp_path)
    assert not (tmp_path / notebooks[0]).exists()
    assert json.loads(settings.read_text())["fetchNews"] == "true"


def test_a_refused_start_carries_its_reason_to_jupyterhubs_pages():
    from jupyterhub.utils import format_exception

    e = SpawnRefused(403, "Your role in Acme (viewer) does not include 100% of it.", "<b>x</b>")
    assert e.status_code == 403
    # what JupyterHub shows on the spawn page and in the progress events
    assert format_exception(e) == (
        "Your role in Acme (viewer) does not include 100% of it.",
        "<b>x</b>",
    )


def test_every_page_form_is_audited_like_the_api():
    """A page that writes declares its audit action, as API handlers do (test_audit)."""
    from tornado import web

    from datapilot_hub.service.pages import default_handlers
    from datapilot_hub.service.pages._base import FormPageHandler, PageHandler

    checked = []
    for path, handler, *_ in default_handlers:
        if not (isinstance(handler, type) and issubclass(handler, PageHandler)):
            continue
        if issubclass(handler, FormPageHandler):
            for action, (method, audit_action, permission) in handler.actions.items():
                assert callable(getattr(handler, method)), (path, action)
                assert audit_action and permission, (path, action)
                checked.append(f"{path} {action}")
        elif handler.post is not web.RequestHandler.post:
            assert "POST" in handler.audit_actions, path
            checked.append(path)
    assert len(checked) >= 10, checked
