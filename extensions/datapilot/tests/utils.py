"""Helpers for the server extension tests."""

from __future__ import annotations

import json
from typing import Any


async def api_request(
    jp_fetch: Any, *path: str, method: str = "GET", **kwargs: Any
) -> tuple[int, dict[str, Any]]:
    """Call ``datapilot/api/v1/<path>`` and check the answer is JSON with the API's CSP.

    Parameters
    ----------
    jp_fetch : Any
        pytest-jupyter's ``jp_fetch`` fixture (it prepends the base URL and the token).
    *path : str
        Path segments under ``datapilot/api/v1/``.
    method : str
        HTTP method.
    **kwargs
        More arguments for ``jp_fetch`` (``body``, ``headers``, ``params``...).

    Returns
    -------
    tuple[int, dict]
        The status and the decoded JSON body.
    """
    kwargs.setdefault("allow_nonstandard_methods", True)
    response = await jp_fetch(
        "datapilot", "api", "v1", *path, method=method, raise_error=False, **kwargs
    )
    assert response.headers["Content-Type"] == "application/json"
    assert "default-src 'none'" in response.headers["Content-Security-Policy"]
    return response.code, json.loads(response.body)


def assert_error(
    reply: tuple[int, dict[str, Any]], status: int, error: str, **details: Any
) -> dict[str, Any]:
    """Check an ``api_request`` answer is the contract's JSON error, and return its body."""
    code, body = reply
    assert code == status, body
    assert body["error"] == error, body
    assert isinstance(body["message"], str) and body["message"]
    for key, value in details.items():
        assert body["details"][key] == value, body
    return body
