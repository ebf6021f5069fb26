"""The kernel's side of dashboards, without a service: the pins a dashboard's kernel reads
with, and the body ``dp.publish`` sends (the integration tests publish for real)."""

from __future__ import annotations

import base64
import json

import pytest

import datapilot_kernel as dp
from datapilot_contract import DASHBOARD_PINS_ENV
from datapilot_kernel import _calls, _dashboards, _flow

from .test_client_unit import configured, env  # noqa: F401 - fixtures


def _first_request(flow) -> _flow.Request:
    step = next(flow)
    assert isinstance(step, _flow.Request), step
    return step


def test_a_dashboard_kernel_loads_the_pinned_versions(configured):  # noqa: F811
    configured.setenv(DASHBOARD_PINS_ENV, json.dumps({"sales": 3}))
    client = dp.DatapilotClient()
    assert client.pins == {"sales": 3}
    request = _first_request(_calls.load(client, "sales", None, None, None))
    assert request.path == "orgs/acme/datasets/sales/data"
    assert request.params == {"format": "parquet", "version": "3"}
    # an explicit version wins; a dataset not pinned reads its current version
    assert _first_request(_calls.load(client, "sales", 1, None, None)).params["version"] == "1"
    assert "version" not in _first_request(_calls.load(client, "costs", None, None, None)).params
    # the default client reads the pins too
    dp.reset_client()
    assert dp.get_client().pins == {"sales": 3}


@pytest.mark.parametrize("raw", ["", "not json", '["sales"]', '{"sales": "3"}', '{"Bad": 1}'])
def test_no_or_malformed_pins_pin_nothing(configured, raw):  # noqa: F811
    configured.setenv(DASHBOARD_PINS_ENV, raw)
    client = dp.DatapilotClient()
    assert client.pins == {}
    assert "version" not in _first_request(_calls.load(client, "sales", None, None, None)).params


def test_null_pins_follow_the_latest(configured):  # noqa: F811
    configured.setenv(DASHBOARD_PINS_ENV, json.dumps({"sales": None, "costs": 2}))
    assert dp.DatapilotClient().pins == {"costs": 2}


def _notebook(source):
    return {
        "cells": [
            {
                "cell_type": "code",
                "metadata": {},
                "source": source,
                "outputs": [],
                "execution_count": None,
            }
        ],
        "metadata": {},
        "nbformat": 4,
        "nbformat_minor": 5,
    }


def test_publish_sends_the_notebook_and_the_files_it_reads(configured, tmp_path, monkeypatch):  # noqa: F811
    (tmp_path / "reports" / "data").mkdir(parents=True)
    nb = _notebook("import pandas as pd\ndf = pd.read_csv('data/regions.csv')\nopen('gone.csv')")
    (tmp_path / "reports" / "Sales Report.ipynb").write_text(json.dumps(nb))
    (tmp_path / "reports" / "data" / "regions.csv").write_text("region\nnorth\n")
    (tmp_path / "reports" / "logo.png").write_bytes(b"png")
    monkeypatch.chdir(tmp_path)
    client = dp.DatapilotClient()
    flow = _dashboards.publish(
        client, "reports/Sales Report.ipynb", "panel", None, None, "", ["logo.png"], {"sales": 2}
    )
    work = next(flow)
    assert isinstance(work, _flow.Work)
    body = work.func()
    request = flow.send(body)
    assert (request.method, request.path) == ("POST", "orgs/acme/dashboards")
    assert request.json["slug"] == "sales-report" and request.json["title"] == "Sales Report"
    assert request.json["kind"] == "panel" and request.json["pins"] == {"sales": 2}
    assert request.json["path"] == "reports/Sales Report.ipynb"
    files = {f["path"]: base64.b64decode(f["content"]) for f in request.json["files"]}
    assert files == {"data/regions.csv": b"region\nnorth\n", "logo.png": b"png"}
    assert request.json["notebook"] == nb


@pytest.mark.parametrize(
    "args, code",
    [
        ({"path": "missing.ipynb"}, "not_found"),
        ({"path": "notes.txt"}, "invalid_input"),
        ({"path": "../up.ipynb"}, "invalid_path"),
        ({"kind": "shiny"}, "invalid_kind"),
        ({"slug": "Not A Slug"}, "invalid_name"),
        ({"files": ["../secret"]}, "invalid_path"),
        ({"files": ["nothere.csv"]}, "not_found"),
        ({"pins": {"sales": 0}}, "invalid_pins"),
    ],
)
def test_publish_refuses_before_sending(configured, tmp_path, monkeypatch, args, code):  # noqa: F811
    (tmp_path / "a.ipynb").write_text(json.dumps(_notebook("1")))
    monkeypatch.chdir(tmp_path)
    with pytest.raises(dp.DatapilotError) as e:
        dp.DatapilotClient().publish(**{"path": "a.ipynb", **args})
    assert e.value.code == code and e.value.status is None


def test_the_examples_ship_with_the_kernel():
    folder = _dashboards.examples_dir()
    assert (folder / _dashboards.EXAMPLE_CSV).is_file()
    for kind, notebook, _ in _dashboards.EXAMPLES:
        nb = json.loads((folder / notebook).read_text())
        code = "".join("".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "code")
        assert f'dp.load("{_dashboards.EXAMPLE_DATASET}")' in code
        assert (".servable(" in code) == (kind == "panel")
