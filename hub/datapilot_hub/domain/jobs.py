"""Background jobs: run off the request path, state and progress kept in the catalog.

A job runs in a worker thread of the data service. Its progress is written to the
catalog (throttled) and pushed to WebSocket subscribers on the IOLoop. A job that was
queued or running when the service died is marked failed at the next start, and what
it had written is removed.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import defaultdict
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from sqlalchemy import select

from ..catalog import Catalog, Dataset, DatasetVersion, Job, utcnow
from ..errors import DatapilotError, not_found
from ..storage import Storage
from ._identity import OrgContext

log = logging.getLogger(__name__)

Listener = Callable[[dict[str, Any]], None]


class JobCancelled(Exception):
    """Raised inside a job's work when it was asked to stop."""


def job_model(job: Job) -> dict[str, Any]:
    """The JSON model of a job."""

    def iso(t):
        return t.isoformat() if t else None

    return {
        "id": job.id,
        "kind": job.kind,
        "state": job.state,
        "progress": round(job.progress, 4),
        "error": job.error,
        "dataset": job.dataset_name,
        "created_by": job.created_by,
        "created": iso(job.created),
        "started": iso(job.started),
        "finished": iso(job.finished),
        "result": job.result,
    }


class JobHandle:
    """What a job's work function sees: progress reporting and cancellation."""

    def __init__(self, runner: JobRunner, job_id: str, org_id: int) -> None:
        self.runner = runner
        self.id = job_id
        self.org_id = org_id
        self._last_write = 0.0
        self._last_progress = 0.0
        self._outputs: list[str] = []

    def progress(self, fraction: float, force: bool = False) -> None:
        """Report progress in [0, 1]; raises :class:`JobCancelled` when cancelled."""
        self.check_cancelled()
        fraction = min(max(float(fraction), 0.0), 0.999)
        now = time.monotonic()
        if not force and now - self._last_write < 0.25 and fraction - self._last_progress < 0.05:
            return
        self._last_write, self._last_progress = now, fraction
        self.runner._update(self.id, self.org_id, progress=fraction)

    def set_output(self, path: str) -> None:
        """Record (one more place) where the job writes, so a failure or a crash can remove it."""
        self._outputs.append(path)
        self.runner._update(
            self.id, self.org_id, output_path="\n".join(self._outputs), notify=False
        )

    def check_cancelled(self) -> None:
        """Raise :class:`JobCancelled` if the job was cancelled."""
        if self.id in self.runner._cancelled:
            raise JobCancelled()


class JobRunner:
    """Runs jobs in a thread pool and tells subscribers how they go.

    Parameters
    ----------
    catalog : Catalog
        Where job state lives.
    storage : Storage
        Where a failed job's output is removed from.
    max_workers : int
        Jobs that run at once; more wait as ``queued``.
    """

    def __init__(self, catalog: Catalog, storage: Storage, max_workers: int = 2) -> None:
        self.catalog = catalog
        self.storage = storage
        self.executor = ThreadPoolExecutor(max_workers, thread_name_prefix="datapilot-job")
        self._listeners: dict[str, set[Listener]] = defaultdict(set)
        self._cancelled: set[str] = set()
        self._lock = threading.Lock()
        self.loop: Any = None  # the IOLoop listeners are called on

    def create(
        self, ctx: OrgContext, kind: str, dataset: str | None, params: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        """Record a queued job and return its model."""
        with self.catalog.session(ctx.org_id) as db:
            job = Job(
                organization_id=ctx.org_id,
                kind=kind,
                state="queued",
                progress=0.0,
                dataset_name=dataset,
                params=params,
                created_by=ctx.caller.name,
                created=utcnow(),
            )
            db.add(job)
            db.flush()
            return job_model(job)

    def submit(self, job_id: str, org_id: int, work: Callable[[JobHandle], dict[str, Any]]) -> None:
        """Run ``work(handle)`` in the pool; its return value is the job's result."""
        self.executor.submit(self._run, job_id, org_id, work)

    def _run(self, job_id: str, org_id: int, work: Callable[[JobHandle], dict[str, Any]]) -> None:
        handle = JobHandle(self, job_id, org_id)
        try:
            handle.check_cancelled()
            self._update(job_id, org_id, state="running", started=utcnow())
            result = work(handle)
        except JobCancelled:
            self._finish(job_id, org_id, "cancelled", error="The job was cancelled.")
        except DatapilotError as e:
            # the code and details let a client act on a failure as on an API error
            self._finish(
                job_id,
                org_id,
                "failed",
                error=e.message,
                result={"error": e.code, "status": e.status, "details": e.details},
            )
        except Exception as e:
            log.exception("Job %s failed", job_id)
            self._finish(job_id, org_id, "failed", error=f"Internal error: {type(e).__name__}: {e}")
        else:
            self._finish(job_id, org_id, "succeeded", result=result)
        finally:
            self._cancelled.discard(job_id)

    def _finish(self, job_id: str, org_id: int, state: str, **fields: Any) -> None:
        if state != "succeeded":
            self._remove_output(job_id, org_id)
        self._update(
            job_id,
            org_id,
            state=state,
            finished=utcnow(),
            progress=1.0 if state == "succeeded" else None,
            **fields,
        )

    def _remove_output(self, job_id: str, org_id: int) -> None:
        with self.catalog.session(org_id) as db:
            job = Job.find(db, org_id, job_id)
            paths = job.output_path.splitlines() if job and job.output_path else []
        for path in paths:
            try:
                self.storage.remove(path)
            except Exception:
                log.exception("Could not remove %s of job %s", path, job_id)

    def _update(self, job_id: str, org_id: int, notify: bool = True, **fields: Any) -> None:
        with self.catalog.session(org_id) as db:
            job = Job.find(db, org_id, job_id)
            for key, value in fields.items():
                if value is not None:
                    setattr(job, key, value)
            model = job_model(job)
        if notify:
            self._notify(job_id, model)

    def _notify(self, job_id: str, model: dict[str, Any]) -> None:
        with self._lock:
            listeners = list(self._listeners.get(job_id, ()))
        if not listeners or self.loop is None:
            return
        for listener in listeners:
            self.loop.add_callback(listener, model)

    def subscribe(self, job_id: str, listener: Listener) -> None:
        """Call ``listener(job_model)`` on the IOLoop at every change of the job."""
        with self._lock:
            self._listeners[job_id].add(listener)

    def unsubscribe(self, job_id: str, listener: Listener) -> None:
        """Stop calling ``listener``."""
        with self._lock:
            self._listeners[job_id].discard(listener)
            if not self._listeners[job_id]:
                del self._listeners[job_id]

    def get(self, ctx: OrgContext, job_id: str) -> dict[str, Any]:
        """The job's model; 404 when it is not the organization's."""
        with self.catalog.session(ctx.org_id) as db:
            job = Job.find(db, ctx.org_id, job_id)
            if job is None:
                raise not_found("job", job_id)
            return job_model(job)

    def recent(
        self, ctx: OrgContext, active: bool = False, limit: int = 20
    ) -> list[dict[str, Any]]:
        """The organization's jobs, newest first: ``active`` keeps the queued and running.

        Parameters
        ----------
        ctx : OrgContext
            The caller in the organization (any member).
        active : bool
            Only the jobs that have not ended.
        limit : int
            Jobs at most.
        """
        with self.catalog.session(ctx.org_id) as db:
            query = select(Job).where(Job.organization_id == ctx.org_id)
            if active:
                query = query.where(Job.state.not_in(Job.FINAL_STATES))
            query = query.order_by(Job.created.desc(), Job.id.desc()).limit(limit)
            return [job_model(job) for job in db.scalars(query)]

    def cancel(self, ctx: OrgContext, job_id: str) -> dict[str, Any]:
        """Ask a job to stop; only its owner or a holder of ``data:delete`` may."""
        model = self.get(ctx, job_id)
        if model["created_by"] != ctx.caller.name:
            ctx.require("data:delete")
        if model["state"] in Job.FINAL_STATES:
            raise DatapilotError(
                409, "job_finished", f"The job has already {model['state']}.", state=model["state"]
            )
        self._cancelled.add(job_id)
        if model["state"] == "queued":
            # a queued job never reaches its work function's checks, so end it here
            self._finish(job_id, ctx.org_id, "cancelled", error="The job was cancelled.")
        return self.get(ctx, job_id)

    def sweep_stale(self) -> int:
        """Fail the jobs a dead service left behind and remove unpublished files.

        Returns the number of jobs marked failed.
        """
        with self.catalog.session(system=True) as db:
            stale = db.scalars(select(Job).where(Job.state.in_(("queued", "running")))).all()
            for job in stale:
                job.state = "failed"
                job.error = "The data service stopped while the job ran; please try again."
                job.finished = utcnow()
            outputs = [p for job in stale if job.output_path for p in job.output_path.splitlines()]
            datasets = db.scalars(select(Dataset)).all()
            published = {(v.dataset_id, v.path) for v in db.scalars(select(DatasetVersion)).all()}
            dataset_dirs = {
                d.id: (self.storage.dataset_dir(d.organization_id, d.name)) for d in datasets
            }
        for path in outputs:
            self.storage.remove(path)
        # version directories that no catalog row points at are leftovers of a crash
        for dataset_id, ddir in dataset_dirs.items():
            for child in self._children(ddir):
                if (dataset_id, child) not in published:
                    log.warning("Removing unpublished files %s", child)
                    self.storage.remove(child)
        if stale:
            log.warning("Marked %d stale job(s) failed", len(stale))
        return len(stale)

    def _children(self, relpath: str) -> list[str]:
        full = self.storage.full_path(relpath)
        if not self.storage.fs.exists(full):
            return []
        prefix = self.storage.root + "/"
        return [p[len(prefix) :] for p in self.storage.fs.ls(full, detail=False)]

    def shutdown(self) -> None:
        """Stop accepting work; running jobs are cancelled."""
        self._cancelled.update(self._listeners)
        self.executor.shutdown(wait=False, cancel_futures=True)
