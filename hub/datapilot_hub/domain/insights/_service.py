"""Insights of a dataset version: sampled, computed once per version, cached in storage."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timezone
from typing import Any

from ...storage import Storage
from .._identity import OrgContext
from ..datasets import DatasetService
from ._find import find_insights
from ._model import INSIGHT_TYPES
from ._narrator import Narrator, Summary
from ._profile import Profile
from ._read import SEED, read_version

log = logging.getLogger(__name__)

#: the finders' revision: a change to what they find changes it, and cached answers made
#: by an older revision are not used
REVISION = "1"


class InsightService:
    """Compute, cache and answer the insights of dataset versions.

    A version never changes, so its insights are computed once and kept as JSON in the
    organization's storage, beside the dataset (removed with it); a new version is a new
    file. Concurrent requests for the same answer wait for one computation.

    Parameters
    ----------
    datasets : DatasetService
        Resolves names and versions (and checks the caller may see them).
    storage : Storage
        Where the versions and the cached answers are.
    sample_rows : int
        Rows sampled from a version at most.
    workers : int
        Insight computations that run at once (each holds its sample in memory).
    narrator : Narrator, optional
        Writes summaries when configured.
    """

    def __init__(
        self,
        datasets: DatasetService,
        storage: Storage,
        sample_rows: int = 200_000,
        workers: int = 1,
        narrator: Narrator | None = None,
    ) -> None:
        self.datasets = datasets
        self.storage = storage
        self.sample_rows = sample_rows
        self.narrator = narrator or Narrator()
        self._executor = ThreadPoolExecutor(workers, thread_name_prefix="insights")
        self._running: dict[str, asyncio.Future] = {}

    def shutdown(self) -> None:
        """Stop the worker threads (a computation under way finishes first)."""
        self._executor.shutdown(wait=True, cancel_futures=True)

    @property
    def key(self) -> str:
        """What a cached answer depends on besides the version."""
        return f"r{REVISION}-s{self.sample_rows}"

    async def insights(
        self, ctx: OrgContext, name: str, version: int | None = None
    ) -> dict[str, Any]:
        """The ranked insights of a version (the current one by default).

        Parameters
        ----------
        ctx : OrgContext
            The caller; needs ``insights:run``.
        name : str
            The dataset.
        version : int, optional
            An older version.

        Returns
        -------
        dict
            ``{"dataset", "version", "rows", "sample", "computed", "cached", "seconds",
            "insights"}``.
        """
        loop = asyncio.get_running_loop()
        target = await loop.run_in_executor(
            None, self.datasets.version_info, ctx, name, version, "insights:run"
        )
        target["files"] = [f for f in self.storage.files(target["path"]) if f.endswith(".parquet")]
        path = self.storage.insights_path(ctx.org_id, name, target["version"], self.key)
        cached = await loop.run_in_executor(None, self._cached, path)
        if cached is not None:
            return {**cached, "cached": True}
        running = self._running.get(path)
        if running is None:
            running = loop.run_in_executor(self._executor, self._compute, target, path)
            self._running[path] = running
            running.add_done_callback(lambda _: self._running.pop(path, None))
        answer = await asyncio.shield(running)
        return {**answer, "cached": False}

    async def summarize(self, name: str, answer: dict[str, Any]) -> Summary:
        """The narrator's summary of an insights answer (see :class:`Narrator`)."""
        return await self.narrator.summarize(name, answer)

    def _cached(self, path: str) -> dict[str, Any] | None:
        if not self.storage.exists(path):
            return None
        try:
            with self.storage.open(path, "rb") as f:
                return json.load(f)
        except (OSError, ValueError):
            log.warning("Unreadable cached insights at %s; computing them again", path)
            return None

    def _compute(self, target: dict[str, Any], path: str) -> dict[str, Any]:
        started = time.perf_counter()
        read = read_version(self.storage, target["files"], self.sample_rows)
        columns = {c["name"]: c for c in target["columns"]}
        profile = Profile(
            df=read.sample,
            types={n: c.get("type", "string") for n, c in columns.items()},
            total_rows=read.rows,
            nulls={
                n: (c.get("stats") or {}).get("nulls")
                for n, c in columns.items()
                if (c.get("stats") or {}).get("nulls") is not None
            },
            labels={n: c.get("label") or n for n, c in columns.items()},
            duplicates=read.duplicates,
        )
        found = find_insights(profile) if read.rows else []
        answer = {
            "dataset": target["name"],
            "version": target["version"],
            "rows": read.rows,
            "sample": {
                "rows": profile.rows,
                "of": read.rows,
                "method": "all rows"
                if not profile.sampled
                else f"uniform random rows without replacement (seed {SEED})",
            },
            "computed": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "seconds": round(time.perf_counter() - started, 3),
            "revision": REVISION,
            "types": list(INSIGHT_TYPES),
            "insights": [i.to_json(read.rows) for i in found],
        }
        try:
            self.storage.write_atomic(path, json.dumps(answer).encode())
        except OSError:
            log.exception("Could not cache the insights at %s", path)
        log.info(
            "Insights of %s v%s: %d found in %.2fs (%d of %d rows)",
            target["name"],
            target["version"],
            len(found),
            answer["seconds"],
            profile.rows,
            read.rows,
        )
        return answer
