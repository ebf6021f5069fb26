"""Dask for heavy work: an existing scheduler when configured, else a LocalCluster on first use.

The embedded LocalCluster belongs to the data service: its workers are the service's own
child processes, under the service's account, so they may use the service's storage
directly. An external scheduler's workers are not the service's: they get no storage
credentials, only the short-lived, job-scoped capabilities of the storage gateway
(:mod:`datapilot_hub.domain.transform._gateway`), which :func:`storage_gateway` hands to
the transform's I/O.
"""

from __future__ import annotations

import os
import threading
from typing import Any

from traitlets import Float, Integer, Unicode, default, validate
from traitlets.config import SingletonConfigurable

_lock = threading.Lock()
_client: Any = None
_cluster: Any = None
_gateway: Any = None


def _cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # (not on every platform)
        return os.cpu_count() or 1


def _memory() -> int:
    """Bytes of memory this process may use: the cgroup's limit when lower than the machine's."""
    import psutil

    total = psutil.virtual_memory().total
    for path in ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"):
        try:
            value = open(path).read().strip()  # noqa: SIM115 - one read of a tiny file
        except OSError:
            continue
        if value.isdigit():
            total = min(total, int(value))
    return total


class DaskCluster(SingletonConfigurable):
    """The data service's embedded Dask LocalCluster, sized to the machine.

    Not used when ``DatapilotConfig.dask_scheduler`` names an existing scheduler.
    """

    workers = Integer(
        help="""Worker processes of the embedded LocalCluster.

        Defaults to ``$DATAPILOT_DASK_WORKERS``, else one worker per two CPUs the service
        may use (at least one): processes sidestep the GIL for pandas code, threads within
        a worker share its memory.

        Example::

            c.DaskCluster.workers = 4
        """,
    ).tag(config=True)

    @default("workers")
    def _default_workers(self) -> int:
        return int(os.environ.get("DATAPILOT_DASK_WORKERS") or max(1, _cpus() // 2))

    threads_per_worker = Integer(
        help="""Threads of each worker of the embedded LocalCluster.

        Defaults to ``$DATAPILOT_DASK_THREADS``, else the CPUs divided among the workers
        (at least one).

        Example::

            c.DaskCluster.threads_per_worker = 2
        """,
    ).tag(config=True)

    @default("threads_per_worker")
    def _default_threads_per_worker(self) -> int:
        env = os.environ.get("DATAPILOT_DASK_THREADS")
        return int(env) if env else max(1, _cpus() // max(self.workers, 1))

    memory_fraction = Float(
        0.5,
        help="""Share of the machine's memory (or of the cgroup's limit) the workers get.

        Split evenly among the workers as their ``memory_limit``, past which a worker spills
        to disk, then pauses, then is restarted (Dask's own thresholds). The rest is for the
        hub, the service and the notebook servers on the same machine.

        Example::

            c.DaskCluster.memory_fraction = 0.7
        """,
    ).tag(config=True)

    memory_limit = Unicode(
        help="""Memory limit of each worker, as Dask reads it (``"2GiB"``, bytes, ``"auto"``).

        Defaults to ``$DATAPILOT_DASK_MEMORY_LIMIT``, else ``memory_fraction`` of the
        memory divided by ``workers``.

        Example::

            c.DaskCluster.memory_limit = "4GiB"
        """,
    ).tag(config=True)

    @default("memory_limit")
    def _default_memory_limit(self) -> str:
        env = os.environ.get("DATAPILOT_DASK_MEMORY_LIMIT")
        if env:
            return env
        return str(int(_memory() * self.memory_fraction / max(self.workers, 1)))

    @validate("workers", "threads_per_worker")
    def _positive(self, proposal: dict[str, Any]) -> int:
        if proposal["value"] < 1:
            raise ValueError(f"{proposal['trait'].name} must be at least 1")
        return int(proposal["value"])

    local_directory = Unicode(
        help="""Directory where the workers spill what does not fit in their memory.

        Defaults to ``$DATAPILOT_DASK_LOCAL_DIRECTORY``, else ``dask/`` in the data
        service's temporary directory (its own account's, cleaned at start).

        Example::

            c.DaskCluster.local_directory = "/fast-disk/datapilot-dask"
        """,
    ).tag(config=True)

    @default("local_directory")
    def _default_local_directory(self) -> str:
        env = os.environ.get("DATAPILOT_DASK_LOCAL_DIRECTORY")
        if env:
            return env
        from .configuration import DatapilotConfig

        return str(DatapilotConfig.instance().tmp_dir / "dask")

    def cluster_kwargs(self) -> dict[str, Any]:
        """The LocalCluster's arguments."""
        from dask.utils import parse_bytes

        limit = self.memory_limit
        return {
            "n_workers": self.workers,
            "threads_per_worker": self.threads_per_worker,
            "memory_limit": limit if limit == "auto" else parse_bytes(limit),
            "local_directory": self.local_directory,
            "processes": True,
            "host": "127.0.0.1",
            "dashboard_address": None,
        }


def use_cluster_defaults() -> None:
    """Make the graphs this process builds fit a distributed cluster (call at start).

    Recipes' graphs are built before the first job starts the client, so dask cannot
    tell yet that they will run on a cluster: left alone it would shuffle (sort, join)
    through a ``partd`` directory of the one process that runs the shuffle (on a worker,
    the whole shuffle in that worker's memory). The peer-to-peer shuffle streams through
    the workers and spills to their disks. (The task-based one fails to lower a join's
    multi-column group-by in this dask version, measured with benchmarks/transform.py.)
    """
    import dask

    dask.config.set({"dataframe.shuffle.method": "p2p"})


def get_client(config: Any) -> Any:
    """The shared ``distributed.Client``, started on first use.

    Parameters
    ----------
    config : DatapilotConfig
        ``dask_scheduler`` names an existing scheduler; empty starts a LocalCluster
        sized by :class:`DaskCluster` (configured from the same configuration).
    """
    global _client, _cluster
    with _lock:
        if _client is None:
            # the default client of the process (set_as_default): what dask computes while
            # it lowers a graph (a sort's quantiles after a join's peer-to-peer shuffle)
            # runs on the cluster too; a peer-to-peer shuffle runs nowhere else
            from distributed import Client, LocalCluster

            if config.dask_scheduler:
                _client = Client(config.dask_scheduler, set_as_default=True)
            else:
                sizing = DaskCluster.instance(config=getattr(config, "config", None))
                kwargs = sizing.cluster_kwargs()
                os.makedirs(kwargs["local_directory"], mode=0o700, exist_ok=True)
                _cluster = LocalCluster(**kwargs)
                _client = Client(_cluster, set_as_default=True)
        return _client


def external(config: Any) -> bool:
    """Whether the workers belong to an external scheduler (not the service's own)."""
    return bool(config.dask_scheduler)


def set_storage_gateway(gateway: Any) -> None:
    """Make ``gateway`` the one the transform's tasks use on an external scheduler.

    Parameters
    ----------
    gateway : StorageGateway or None
        The service's gateway; None in the embedded mode (its workers use storage).
    """
    global _gateway
    _gateway = gateway


def storage_gateway() -> Any:
    """The storage gateway tasks must go through, or None when they may use storage."""
    return _gateway


def status(config: Any) -> dict[str, Any]:
    """A health check that does not start anything."""
    if _client is not None:
        # (the client's last word from the scheduler: a health check waits on no one)
        info = getattr(_client, "_scheduler_identity", None) or {}
        return {
            "status": "ok",
            "kind": "external" if config.dask_scheduler else "LocalCluster",
            "scheduler": _client.scheduler.address,
            "started": True,
            "workers": info.get("n_workers", 0),
            "threads": info.get("total_threads", 0),
            "memory_limit": info.get("total_memory", 0),
        }
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
