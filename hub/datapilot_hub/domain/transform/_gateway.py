"""The storage gateway: what an external scheduler's workers read and write through.

Workers of an external Dask scheduler are not the data service's processes: they may run
on other machines, under other accounts, next to other users' tasks. So they never get
the service's storage (its credentials, its root directory). Instead the service grants
each job a capability: a random token, bound to one organization, that reads exactly
the files of the source versions the job reads and writes only under the job's own
output directory (invisible until the catalog commit). The service serves those reads
and writes itself (``GET``/``PUT /api/v1/gateway/files?path=``), checking the token on
every call. A token stops working when its job ends (whatever the end: success,
failure, cancel, a killed worker) or when its lifetime is over, whichever comes first.
"""

from __future__ import annotations

import hashlib
import posixpath
import secrets
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select

from ...catalog import Catalog, Job
from ...errors import DatapilotError

#: what every capability token starts with (so a leaked one is recognisable in logs)
TOKEN_PREFIX = "dpcap_"
_LIVE_STATES = ("queued", "running")
# how long a job's state is trusted before the catalog is asked again
_JOB_STATE_TTL = 1.0
#: seconds a capability no job holds (a preview's reads) lives at most
UNBOUND_TTL = 900.0


@dataclass
class Grant:
    """What one capability allows.

    Parameters
    ----------
    org_id : int
        The organization: every path is under its prefix.
    read : set of str
        The files it may read, exactly.
    write_prefix : str, optional
        The directory under which it may write.
    expires : float
        ``time.monotonic()`` past which it is refused.
    job_id : str, optional
        The job it lives with: refused as soon as the job is no longer queued or running.
    """

    org_id: int
    read: set[str] = field(default_factory=set)
    write_prefix: str | None = None
    expires: float = 0.0
    job_id: str | None = None


def _digest(token: str) -> str:
    # the table holds digests: a dump of the process's memory gives no usable token
    return hashlib.sha256(token.encode()).hexdigest()


def org_of(path: str) -> int:
    """The organization id of a storage path ``org-<id>/...`` (ValueError otherwise)."""
    head = path.split("/", 1)[0]
    if not head.startswith("org-") or not head[4:].isdigit():
        raise ValueError(f"not an organization's path: {path!r}")
    return int(head[4:])


def clean_path(path: Any) -> str:
    """A relative storage path, normalised, or a 400 when it is none (absolute, ``..``)."""
    if not isinstance(path, str) or not path or "\x00" in path or "\\" in path:
        raise DatapilotError(400, "invalid_input", "path must be a storage path.", field="path")
    norm = posixpath.normpath(path)
    if norm != path or norm.startswith(("/", "..")) or "/../" in f"/{norm}/":
        raise DatapilotError(
            400, "invalid_input", "path must be a plain relative storage path.", field="path"
        )
    return norm


class StorageGateway:
    """Issues, checks and revokes the capabilities of jobs' workers.

    Parameters
    ----------
    catalog : Catalog
        Where the jobs' states are read.
    url : str
        The service's URL as the workers reach it (through the proxy), ending in ``/``:
        the files are at ``{url}api/v1/gateway/files``.
    ttl : float
        Seconds a capability lives at most.
    """

    def __init__(self, catalog: Catalog, url: str, ttl: float) -> None:
        self.catalog = catalog
        self.url = url if url.endswith("/") else url + "/"
        self.ttl = float(ttl)
        self._grants: dict[str, Grant] = {}
        self._job_states: dict[str, tuple[float, bool]] = {}
        self._lock = threading.Lock()
        # capabilities made by a thread before it knows its job (the sources are read
        # before the output is written): bound to the job by write_output
        self._unbound = threading.local()

    @property
    def files_url(self) -> str:
        """Where the workers read and write."""
        return f"{self.url}api/v1/gateway/files"

    def issue(
        self,
        org_id: int,
        read: list[str] | tuple[str, ...] = (),
        write_prefix: str | None = None,
        job_id: str | None = None,
    ) -> str:
        """A new capability; returns its token.

        Parameters
        ----------
        org_id : int
            The organization; every path must be under its prefix.
        read : list of str
            The files it may read.
        write_prefix : str, optional
            The directory under which it may write.
        job_id : str, optional
            The job it ends with.
        """
        prefix = f"org-{int(org_id)}/"
        for path in [*read, *([write_prefix] if write_prefix else [])]:
            if clean_path(path) != path or not path.startswith(prefix):
                raise ValueError(f"{path!r} is not a path of organization {org_id}")
        token = TOKEN_PREFIX + secrets.token_urlsafe(32)
        # (one without a job ends with no job's end: it lives a short while, unless
        # bind_thread_grants gives it one)
        life = self.ttl if job_id is not None else min(self.ttl, UNBOUND_TTL)
        grant = Grant(
            int(org_id),
            set(read),
            write_prefix.rstrip("/") if write_prefix else None,
            time.monotonic() + life,
            job_id,
        )
        with self._lock:
            self._purge()
            self._grants[_digest(token)] = grant
        if job_id is None:
            # (a thread that never writes, a preview's, keeps only the live ones)
            now = time.monotonic()
            pending = [g for g in getattr(self._unbound, "grants", []) if g.expires > now]
            self._unbound.grants = [*pending, grant]
        return token

    def job_writing(self, org_id: int, out_dir: str) -> str | None:
        """The live job of the organization that writes ``out_dir`` (its recorded output)."""
        with self.catalog.session(org_id) as db:
            jobs = db.scalars(
                select(Job).where(Job.organization_id == org_id, Job.state.in_(_LIVE_STATES))
            ).all()
            for job in jobs:
                if out_dir in (job.output_path or "").splitlines():
                    return job.id
        return None

    def bind_thread_grants(self, org_id: int, job_id: str) -> None:
        """Tie the capabilities this thread issued without a job (the sources' reads) to
        ``job_id``: they end with it."""
        pending = getattr(self._unbound, "grants", None) or []
        with self._lock:
            for grant in pending:
                if grant.org_id == org_id and grant.job_id is None:
                    grant.job_id = job_id
                    grant.expires = time.monotonic() + self.ttl
        self._unbound.grants = []

    def revoke(self, token: str) -> None:
        """Forget a capability."""
        with self._lock:
            self._grants.pop(_digest(token), None)

    def revoke_job(self, job_id: str) -> None:
        """Forget every capability of a job."""
        with self._lock:
            for key in [k for k, g in self._grants.items() if g.job_id == job_id]:
                del self._grants[key]

    def authorize(self, token: str | None, path: Any, write: bool) -> tuple[Grant, str]:
        """The grant that allows reading (or writing) ``path``, or a 404.

        Every refusal is the same 404, whether the token is unknown, expired, its job
        over, or the path not granted: a token holder learns nothing about other files.

        Parameters
        ----------
        token : str or None
            The capability sent.
        path : str
            The storage path asked for.
        write : bool
            Whether it is a write.
        """
        path = clean_path(path)
        refused = DatapilotError(
            404, "not_found", "No such file is granted to this capability.", path=path
        )
        if not token or not token.startswith(TOKEN_PREFIX):
            raise refused
        with self._lock:
            grant = self._grants.get(_digest(token))
        if grant is None or time.monotonic() > grant.expires:
            raise refused
        if grant.job_id is not None and not self._job_live(grant):
            self.revoke_job(grant.job_id)
            raise refused
        prefix = grant.write_prefix
        under_prefix = bool(prefix) and path.startswith(f"{prefix}/") and not path.endswith("/")
        # (a job may read back what it writes: its own output directory's files)
        if not under_prefix and (write or path not in grant.read):
            raise refused
        return grant, path

    def _job_live(self, grant: Grant) -> bool:
        now = time.monotonic()
        with self._lock:
            cached = self._job_states.get(grant.job_id)
        if cached is not None and now - cached[0] < _JOB_STATE_TTL:
            return cached[1]
        with self.catalog.session(grant.org_id) as db:
            job = Job.find(db, grant.org_id, grant.job_id)
            live = job is not None and job.state in _LIVE_STATES
        with self._lock:
            self._job_states[grant.job_id] = (now, live)
        return live

    def _purge(self) -> None:
        # (under the lock) the expired ones; the ended jobs' go at their next use
        now = time.monotonic()
        for key in [k for k, g in self._grants.items() if now > g.expires]:
            del self._grants[key]
        for job in [j for j, (t, _) in self._job_states.items() if now - t > 60]:
            del self._job_states[job]
