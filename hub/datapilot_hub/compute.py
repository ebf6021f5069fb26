"""Dask for heavy work: an existing scheduler when configured, else a LocalCluster on first use."""

from __future__ import annotations

import threading
from typing import Any

_lock = threading.Lock()
_client: Any = None
_cluster: Any = None


def get_client(config: Any) -> Any:
    """The shared ``distributed.Client``, started on first use.

    Parameters
    ----------
    config : DatapilotConfig
        ``dask_scheduler`` names an existing scheduler; empty starts a LocalCluster.
    """
    global _client, _cluster
    with _lock:
        if _client is None:
            from distributed import Client, LocalCluster

            if config.dask_scheduler:
                _client = Client(config.dask_scheduler, set_as_default=False)
            else:
                _cluster = LocalCluster(
                    n_workers=1,
                    threads_per_worker=2,
                    processes=True,
                    host="127.0.0.1",
                    dashboard_address=None,
                )
                _client = Client(_cluster, set_as_default=False)
        return _client


def status(config: Any) -> dict[str, Any]:
    """A health check that does not start anything."""
    if _client is not None:
        return {"status": "ok", "scheduler": _client.scheduler.address, "started": True}
    kind = "external" if config.dask_scheduler else "LocalCluster"
    return {
        "status": "ok",
        "kind": kind,
        "scheduler": config.dask_scheduler or None,
        "started": False,
    }


def close() -> None:
    """Close the client and the LocalCluster, if any."""
    global _client, _cluster
    with _lock:
        if _client is not None:
            _client.close()
        if _cluster is not None:
            _cluster.close()
        _client = _cluster = None
