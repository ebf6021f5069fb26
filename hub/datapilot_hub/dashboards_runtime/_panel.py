"""``panel serve`` as the runtime starts it: only requests carrying its secret get in.

The secret comes from the environment (never the command line) and is checked by a
Bokeh auth module (``get_user``) on every page and WebSocket request.
"""

from __future__ import annotations

import os
import sys
import tempfile

from ._private import make_undumpable

_AUTH_MODULE = """
import hmac, os
_SECRET = os.environ.pop("DATAPILOT_RUNTIME_PANEL_SECRET_FOR_AUTH")
login_url = "/datapilot-runtime-only"
def get_user(request_handler):
    sent = request_handler.request.headers.get("Authorization", "")
    return "runtime" if hmac.compare_digest(sent.encode(), ("token " + _SECRET).encode()) else None
"""


def main() -> None:
    """Run ``panel serve`` with an auth module that checks ``$DATAPILOT_RUNTIME_PANEL_TOKEN``."""
    # its secret and the viewers' tokens pass through it: out of the dashboards' reach
    make_undumpable()
    token = os.environ.pop("DATAPILOT_RUNTIME_PANEL_TOKEN")
    os.environ["DATAPILOT_RUNTIME_PANEL_SECRET_FOR_AUTH"] = token
    fd, path = tempfile.mkstemp(prefix="panel-auth-", suffix=".py")
    with os.fdopen(fd, "w") as f:
        f.write(_AUTH_MODULE)
    from panel.command import main as panel_main

    sys.argv = ["panel", "serve", *sys.argv[1:], f"--auth-module={path}"]
    panel_main()


if __name__ == "__main__":
    main()
