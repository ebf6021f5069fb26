"""How results and errors look in a notebook: the dataset summary and the one-line error."""

from __future__ import annotations

import json

import pytest
from IPython.lib.pretty import pretty

import datapilot_kernel as dp
from datapilot_kernel._display import human_size

INFO = {
    "name": "sales",
    "version": 2,
    "rows": 1234,
    "bytes": 20480,
    "columns": [
        {
            "name": "region",
            "label": "Region <b>",
            "type": "string",
            "nullable": True,
            "unit": None,
            "stats": {"nulls": 3, "min": "east", "max": "west"},
        },
        {
            "name": "amount",
            "label": "amount",
            "type": "number",
            "nullable": True,
            "unit": "EUR",
            "stats": {"nulls": 0, "min": 1.5, "max": 1627.51},
        },
    ],
    "report": {
        "source": "sales.csv",
        "rows_read": 1240,
        "rows_rejected": 6,
        "columns": {
            "region": {"reason": "text", "invalid": {"count": 0}},
            "amount": {"reason": "98% numbers with a currency", "invalid": {"count": 2}},
        },
        "warnings": ["6 row(s) had the wrong number of fields and were rejected"],
    },
    "versions": [],
}


def test_dataset_info_is_still_the_dict():
    info = dp.DatasetInfo(INFO)
    assert isinstance(info, dict) and info == INFO
    assert info["rows"] == 1234 and info["columns"][1]["type"] == "number"
    assert json.loads(json.dumps(info)) == INFO


def test_dataset_info_as_text():
    text = pretty(dp.DatasetInfo(INFO))
    lines = text.splitlines()
    assert lines[0] == "Dataset 'sales', version 2: 1,234 rows, 2 columns, 20.0 KiB"
    assert lines[1].split() == [
        "column",
        "type",
        "nulls",
        "min",
        "max",
        "label",
        "how",
        "it",
        "was",
        "read",
    ]
    assert lines[2].split()[:5] == ["region", "string", "3", "east", "west"]
    assert "number (EUR)" in lines[3] and "2 invalid values emptied" in lines[3]
    assert "Read 1,240 rows from sales.csv, 6 rejected." in text
    assert len(lines) == 6


def test_dataset_info_as_html_escapes_what_the_file_said():
    html = dp.DatasetInfo(INFO)._repr_html_()
    assert "<strong>Dataset &#x27;sales&#x27;, version 2: 1,234 rows" in html
    assert "Region &lt;b&gt;" in html and "Region <b>" not in html
    assert html.count("<tr>") == 3


@pytest.mark.parametrize(
    "n, text", [(0, "0 B"), (1023, "1023 B"), (1536, "1.5 KiB"), (5 << 30, "5.0 GiB"), (None, "")]
)
def test_human_size(n, text):
    assert human_size(n) == text


def _fails():
    raise dp.DatapilotError(
        "A dataset named 'sales' already exists; use mode replace or append.",
        status=409,
        code="dataset_exists",
    )


def test_errors_render_as_one_line_naming_the_callers_line():
    try:
        _fails()
    except dp.DatapilotError as e:
        lines = e._render_traceback_()
    assert len(lines) == 1
    line = lines[0]
    assert "DatapilotError" in line and "already exists; use mode replace or append." in line
    # the frame outside the client is this file's: its line is named
    assert "(dataset_exists, HTTP 409, line " in line


def test_errors_raised_before_a_request_render_too(monkeypatch):
    monkeypatch.delenv("DATAPILOT_URL", raising=False)
    with pytest.raises(dp.DatapilotError) as info:
        dp.DatapilotClient(url="", token="t", org="acme").datasets()
    [line] = info.value._render_traceback_()
    assert "not configured" in line and "(not_configured, line" in line


def test_the_notebook_libraries_import_without_any_warning():
    """What a notebook imports: not one warning, deprecations included (-W error)."""
    import os
    import subprocess
    import sys

    modules = [
        "ipywidgets",
        "matplotlib.pyplot",
        "bokeh.plotting",
        "jupyter_bokeh",
        "holoviews",
        "hvplot.pandas",
        "panel",
        "tqdm.auto",
        "datapilot_kernel",
    ]
    code = "import " + ", ".join(modules)
    done = subprocess.run(
        [sys.executable, "-W", "error", "-c", code],
        capture_output=True,
        text=True,
        env={**os.environ, "MPLBACKEND": "Agg"},
    )
    assert done.returncode == 0 and done.stderr == "", done.stderr
