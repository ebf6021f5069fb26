"""``POST datapilot/api/v1/ingest``: input validation and the errors before the service."""

from __future__ import annotations

import json
from typing import Any

import pytest

from .utils import api_request, assert_error


@pytest.fixture
def sales_csv(jp_root_dir):
    """A small CSV in the server root, in a sub-directory."""
    (jp_root_dir / "data").mkdir()
    path = jp_root_dir / "data" / "sales.csv"
    path.write_text("region,amount\nnorth,1\nsouth,2\n")
    return path


async def ingest(jp_fetch, body: Any) -> tuple[int, dict[str, Any]]:
    """POST an ingest request; ``body`` is JSON-encoded unless it is already bytes."""
    if not isinstance(body, bytes):
        body = json.dumps(body).encode()
    return await api_request(jp_fetch, "ingest", method="POST", body=body)


@pytest.mark.parametrize(
    "body, field",
    [
        (b"{not json", None),
        (b"\xff\xfe", "body"),
        (b"", "body"),
        ([1, 2], "body"),
        ({"name": "sales"}, "path"),
        ({"path": "", "name": "sales"}, "path"),
        ({"path": "data/sales.csv"}, "name"),
        ({"path": "data/sales.csv", "name": "Sales"}, "name"),
        ({"path": "data/sales.csv", "name": "1sales"}, "name"),
        ({"path": "data/sales.csv", "name": "sales-2024"}, "name"),
        ({"path": "data/sales.csv", "name": "s" * 64}, "name"),
        ({"path": "data/sales.csv", "name": "sales\n"}, "name"),
        ({"path": "data/sales.csv", "name": 3}, "name"),
        ({"path": "data/sales.csv", "name": "sales", "mode": "upsert"}, "mode"),
        ({"path": "data/sales.csv", "name": "sales", "options": "x"}, "options"),
        ({"path": "data/sales.csv", "name": "sales", "org": "Acme"}, "org"),
        ({"path": "data/sales.csv", "name": "sales", "org": "a"}, "org"),
        ({"path": "data/sales.csv", "name": "sales", "org": "ac--me"}, "org"),
        ({"path": "data/sales.csv", "name": "sales", "org": "acme-"}, "org"),
        # a trailing newline, surrounding whitespace, look-alikes and invisible characters
        ({"path": "data/sales.csv", "name": "sales", "org": "acme\n"}, "org"),
        ({"path": "data/sales.csv", "name": "sales", "org": "acme "}, "org"),
        ({"path": "data/sales.csv", "name": "sales", "org": "\u0430cme"}, "org"),
        ({"path": "data/sales.csv", "name": "sales", "org": "\uff41cme"}, "org"),
        ({"path": "data/sales.csv", "name": "sales", "org": "ac\u200bme"}, "org"),
        ({"path": "data/sales.csv", "name": "sales "}, "name"),
        ({"path": "data/sales.csv", "name": "s\u0430les"}, "name"),
        ({"path": "data/sales.csv", "name": "sales", "mode": "create\n"}, "mode"),
        ({"path": "data/sales.csv", "name": "sales", "nmae": "x"}, "nmae"),
        ({"path": "../sales.csv", "name": "sales"}, "path"),
        ({"path": "data/../../sales.csv", "name": "sales"}, "path"),
        ({"path": "/etc/passwd", "name": "sales"}, "path"),
        ({"path": "data", "name": "sales"}, "path"),
    ],
)
async def test_bad_request(jp_fetch, sales_csv, body, field) -> None:
    reply = await ingest(jp_fetch, body)
    # the contract's codes: the same refusal gets the same code from the data service
    code = {"name": "invalid_name", "org": "invalid_name", "mode": "invalid_mode"}
    if field is None:
        assert_error(reply, 400, "invalid_input")
    else:
        assert_error(reply, 400, code.get(field, "invalid_input"), field=field)


async def test_missing_file(jp_fetch, sales_csv) -> None:
    reply = await ingest(jp_fetch, {"path": "data/nope.csv", "name": "sales"})
    assert_error(reply, 404, "not_found", path="data/nope.csv")


async def test_file_too_large(jp_fetch, jp_root_dir) -> None:
    (jp_root_dir / "big.csv").write_bytes(b"x" * 2048)
    reply = await ingest(jp_fetch, {"path": "big.csv", "name": "big"})
    assert_error(reply, 413, "too_large", limit=1024)


@pytest.mark.parametrize(
    "body",
    [
        {"path": "data/sales.csv", "name": "sales"},
        {
            "path": "data/sales.csv",
            "name": "sales_2024",
            "mode": "append",
            "options": {"delimiter": ","},
            "org": "other-org",
        },
    ],
)
async def test_valid_request_reaches_service(jp_fetch, sales_csv, body) -> None:
    # everything checks out, so the extension tries the (unreachable) service
    assert_error(await ingest(jp_fetch, body), 502, "service_unavailable")


async def test_org_required_without_default(jp_fetch, jp_serverapp, sales_csv, monkeypatch) -> None:
    monkeypatch.setitem(jp_serverapp.web_app.settings, "datapilot_org", "")
    reply = await ingest(jp_fetch, {"path": "data/sales.csv", "name": "sales"})
    assert_error(reply, 400, "invalid_input", field="org")
