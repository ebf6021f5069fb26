"""Datapilot's Jupyter server extension: a same-origin Datapilot API in each user's server."""

from __future__ import annotations

from typing import Any

from ._app import DatapilotExtension
from ._handlers import (
    AUTH_RESOURCE,
    ContextAPIHandler,
    DatapilotAPIError,
    DatapilotAPIHandler,
    ForwardAPIHandler,
    IngestAPIHandler,
    IngestRequest,
    JobEventsAPIHandler,
    default_handlers,
)

__all__ = [
    "AUTH_RESOURCE",
    "ContextAPIHandler",
    "DatapilotAPIError",
    "DatapilotAPIHandler",
    "DatapilotExtension",
    "ForwardAPIHandler",
    "IngestAPIHandler",
    "IngestRequest",
    "JobEventsAPIHandler",
    "default_handlers",
]


def _jupyter_server_extension_points() -> list[dict[str, Any]]:
    """Tell jupyter_server where the extension is (``jpserver_extensions: {"datapilot": true}``)."""
    return [{"module": "datapilot", "app": DatapilotExtension}]
