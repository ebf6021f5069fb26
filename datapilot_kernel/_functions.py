"""The module-level functions (``dp.load``...), on a default client made on first use."""

from __future__ import annotations

import sys
import threading
from typing import Any

from ._client import DatapilotClient
from ._dashboard import adopt_dashboard_request, panel_session
from ._derive import with_default_client

_default_client: DatapilotClient | None = None
_default_lock = threading.Lock()
# a Panel dashboard's sessions (one per viewer) share a process: a client each, the last
# ones kept
_session_clients: dict[str, DatapilotClient] = {}
_SESSIONS_KEPT = 256


def get_client() -> DatapilotClient:
    """The client the module-level functions use, created on first use.

    It reads its settings from the environment (and, in an IPython kernel, from
    ``c.DatapilotClient.*`` in the kernel's configuration) when it is created; call
    :func:`reset_client` after changing them.

    Returns
    -------
    DatapilotClient
    """
    global _default_client
    session = panel_session()
    if session is not None:
        key, settings = session
        with _default_lock:
            client = _session_clients.pop(key, None) or DatapilotClient(
                **settings, **_ipython_config()
            )
            _session_clients[key] = client
            while len(_session_clients) > _SESSIONS_KEPT:
                _session_clients.pop(next(iter(_session_clients)))
            return client
    with _default_lock:
        if _default_client is None:
            # in a dashboard: the viewer's token (a pre-started kernel waits for them)
            adopt_dashboard_request()
            _default_client = DatapilotClient(**_ipython_config())
        return _default_client


def reset_client(client: DatapilotClient | None = None) -> None:
    """Forget the default client, or make ``client`` the default.

    Parameters
    ----------
    client : DatapilotClient, optional
        The new default. Without it, the next call creates a fresh client that reads
        the environment again.
    """
    global _default_client
    with _default_lock:
        _default_client = client


def _ipython_config() -> dict[str, Any]:
    """``{"config": ...}`` of the running IPython shell, so ``c.DatapilotClient`` applies."""
    ipython = sys.modules.get("IPython")
    shell = ipython.get_ipython() if ipython is not None else None
    return {"config": shell.config} if shell is not None else {}


datasets = with_default_client(DatapilotClient.datasets, get_client)
load = with_default_client(DatapilotClient.load, get_client)
load_dask = with_default_client(DatapilotClient.load_dask, get_client)
aggregate = with_default_client(DatapilotClient.aggregate, get_client)
chart = with_default_client(DatapilotClient.chart, get_client)
insights = with_default_client(DatapilotClient.insights, get_client)
save = with_default_client(DatapilotClient.save, get_client)
upload = with_default_client(DatapilotClient.upload, get_client)
publish = with_default_client(DatapilotClient.publish, get_client)
publish_examples = with_default_client(DatapilotClient.publish_examples, get_client)
transform = with_default_client(DatapilotClient.transform, get_client)
adatasets = with_default_client(DatapilotClient.adatasets, get_client)
aload = with_default_client(DatapilotClient.aload, get_client)
aload_dask = with_default_client(DatapilotClient.aload_dask, get_client)
aaggregate = with_default_client(DatapilotClient.aaggregate, get_client)
achart = with_default_client(DatapilotClient.achart, get_client)
ainsights = with_default_client(DatapilotClient.ainsights, get_client)
asave = with_default_client(DatapilotClient.asave, get_client)
aupload = with_default_client(DatapilotClient.aupload, get_client)
apublish = with_default_client(DatapilotClient.apublish, get_client)
