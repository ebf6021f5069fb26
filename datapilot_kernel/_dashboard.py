"""Inside a published dashboard: read data as the viewer who opened it.

The dashboard runtime hands each opening the viewer's read-only token and the
dashboard's pins in request headers. Voilà puts them in a new kernel's environment as
``HTTP_DATAPILOT_*``; a pre-started kernel gets them only once its viewer arrives, so it
waits here (Voilà's ``wait_for_request``) at its first data call, after the imports
and everything else that needs no data has already run.
"""

from __future__ import annotations

import os
import sys
from typing import Any

from datapilot_contract import (
    DASHBOARD_ENV,
    DASHBOARD_PINS_ENV,
    VIEWER_TOKEN_HEADER,
    pins_from_environ,
)

#: environment variable -> where Voilà puts the runtime's header of the same name
_FROM_HEADERS = {
    "DATAPILOT_TOKEN": "HTTP_DATAPILOT_TOKEN",
    DASHBOARD_ENV: "HTTP_DATAPILOT_DASHBOARD",
    DASHBOARD_PINS_ENV: "HTTP_DATAPILOT_DASHBOARD_PINS",
}


def adopt_dashboard_request() -> None:
    """In a Voilà kernel of a dashboard, take the viewer's token and the pins.

    Outside Voilà this does nothing. In a pre-started kernel it blocks until a viewer
    opens the dashboard.
    """
    if "VOILA_KERNEL_ID" not in os.environ and "VOILA_BASE_URL" not in os.environ:
        return
    if os.environ.get("VOILA_PREHEAT") == "True" and "HTTP_DATAPILOT_TOKEN" not in os.environ:
        from voila.utils import wait_for_request

        wait_for_request()
    for name, header in _FROM_HEADERS.items():
        value = os.environ.get(header)
        if value:
            os.environ[name] = value


def panel_session() -> tuple[str, dict[str, Any]] | None:
    """In a Panel app the runtime serves: the session, and its viewer's client settings.

    ``panel serve`` runs every viewer's session in one process, so the viewer's token
    and the pins travel in the headers of the session's page request, not in the
    environment. None outside such a session.
    """
    panel = sys.modules.get("panel")
    if panel is None:
        return None
    try:
        context = panel.state.curdoc.session_context if panel.state.curdoc else None
        headers = context.request.headers if context is not None and context.request else None
    except AttributeError:
        return None
    if not headers:
        return None
    found = {name.lower(): value for name, value in dict(headers).items()}
    token = found.get(VIEWER_TOKEN_HEADER.lower())
    if not token:
        return None
    pins = pins_from_environ({DASHBOARD_PINS_ENV: found.get("datapilot-dashboard-pins", "")})
    return context.id, {"token": token, "pins": pins}
