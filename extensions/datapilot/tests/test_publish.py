"""``POST datapilot/api/v1/publish``: checks before the service (the hub tests publish
through a real spawned server)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from .utils import api_request, assert_error

NOTEBOOK = {"cells": [], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}


@pytest.fixture
def datapilot_config(closed_port_url: str) -> dict[str, Any]:
    """A small publication limit, to be over it."""
    return {
        "service_url": closed_port_url,
        "api_token": "test-server-token",
        "org": "acme",
        "max_publish_size": 4096,
    }


@pytest.fixture
def notebook(jp_root_dir):
    (jp_root_dir / "reports").mkdir()
    (jp_root_dir / "reports" / "sales.ipynb").write_text(json.dumps(NOTEBOOK))
    (jp_root_dir / "reports" / "notes.txt").write_text("x")
    return "reports/sales.ipynb"


async def publish(jp_fetch, body: Any) -> tuple[int, dict[str, Any]]:
    return await api_request(jp_fetch, "publish", method="POST", body=json.dumps(body).encode())


@pytest.mark.parametrize(
    "body, status, error, field",
    [
        ([1], 400, "invalid_input", "body"),
        ({"kind": "voila"}, 400, "invalid_input", "path"),
        ({"path": "reports/sales.ipynb", "kind": "voila", "nope": 1}, 400, "invalid_input", "nope"),
        ({"path": "../sales.ipynb", "kind": "voila"}, 400, "invalid_input", "path"),
        ({"path": "/etc/passwd", "kind": "voila"}, 400, "invalid_input", "path"),
        ({"path": "reports/none.ipynb", "kind": "voila"}, 404, "not_found", None),
        ({"path": "reports/notes.txt", "kind": "voila"}, 400, "invalid_input", "path"),
        ({"path": "reports/sales.ipynb", "kind": "shiny"}, 400, "invalid_kind", "kind"),
        (
            {"path": "reports/sales.ipynb", "kind": "voila", "slug": "A"},
            400,
            "invalid_name",
            "slug",
        ),
        (
            {"path": "reports/sales.ipynb", "kind": "voila", "files": ["../../x"]},
            400,
            "invalid_path",
            "files[0]",
        ),
        (
            {"path": "reports/sales.ipynb", "kind": "voila", "files": ["gone.csv"]},
            404,
            "not_found",
            "files[0]",
        ),
        (
            {"path": "reports/sales.ipynb", "kind": "voila", "pins": {"sales": -1}},
            400,
            "invalid_pins",
            "pins.sales",
        ),
        (
            {"path": "reports/sales.ipynb", "kind": "voila", "org": "Acme"},
            400,
            "invalid_name",
            "org",
        ),
    ],
)
async def test_bad_requests_are_refused_before_the_service(
    jp_fetch, notebook, body, status, error, field
):
    reply = await publish(jp_fetch, body)
    details = {"field": field} if field else {}
    assert_error(reply, status, error, **details)


async def test_a_good_request_goes_to_the_service(jp_fetch, notebook):
    # nothing listens at the service's address here: the request got that far
    reply = await publish(jp_fetch, {"path": notebook, "kind": "panel", "files": ["notes.txt"]})
    assert_error(reply, 502, "service_unavailable")


async def test_a_publication_over_the_limit_is_413(jp_fetch, jp_root_dir, notebook):
    (jp_root_dir / "reports" / "big.bin").write_bytes(b"x" * 5000)
    reply = await publish(jp_fetch, {"path": notebook, "kind": "voila", "files": ["big.bin"]})
    assert_error(reply, 413, "too_large", field="files")
