"""Fixtures for the server extension tests, on pytest-jupyter's server fixtures.

There is no data service here: ``service_url`` points at a loopback port nothing listens
on, so a request that gets past the extension's own checks answers 502.
"""

from __future__ import annotations

import socket
from typing import Any

import pytest

pytest_plugins = ["pytest_jupyter.jupyter_server"]


def pytest_configure(config: pytest.Config) -> None:
    """Leave coroutine tests to pytest-jupyter in this session.

    pyproject's ``asyncio_mode = "auto"`` (for the hub tests) would have pytest-asyncio run
    each coroutine test on its own loop, while pytest-jupyter's server and ``jp_fetch`` live
    on ``jp_asyncio_loop``: every request would then wait for a loop that is not running.
    In strict mode pytest-asyncio only takes tests marked ``asyncio``, and pytest-jupyter runs
    the others on the server's loop.
    """
    config.option.asyncio_mode = "strict"


@pytest.fixture
def closed_port_url() -> str:
    """A data service URL on a loopback port that refuses connections."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/services/datapilot/"


@pytest.fixture
def datapilot_config(closed_port_url: str) -> dict[str, Any]:
    """``DatapilotExtension`` traits of the test server; override it to change them."""
    return {
        "service_url": closed_port_url,
        "api_token": "test-server-token",
        "org": "acme",
        "max_upload_size": 1024,
    }


@pytest.fixture
def jp_server_config(datapilot_config: dict[str, Any]) -> dict[str, Any]:
    """Enable the extension, with authentication required on every route."""
    return {
        "ServerApp": {
            # pytest-jupyter adds jupyter_server_terminals unless told; it is not ours, and its
            # TermSocket trips jupyter_server's unauthenticated-endpoint warning
            "jpserver_extensions": {"datapilot": True, "jupyter_server_terminals": False},
            "allow_unauthenticated_access": False,
        },
        "DatapilotExtension": datapilot_config,
    }
