"""Running recipes: checks before a job exists, the job on Dask, one catalog commit.

``POST .../transform`` is checked whole (the body, every step against the schemas, the
output's name and mode, joins resolved in the caller's organization only) before a job
is created. The job builds the dask graph of the recipe, writes the output's Parquet
files into a new version's directory (invisible: no catalog row points at it) and
publishes the version by the same compare-and-set commit an ingestion ends with; a
failed or cancelled job's files are removed by the job runner. Progress is the share of
the graph's tasks the scheduler has finished; a cancel cancels the futures.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pandas as pd
import pyarrow as pa
from sqlalchemy import select

from datapilot_contract import check_dataset_name, check_output_mode

from ...catalog import Catalog, Dataset, Job
from ...errors import DatapilotError, bad_request, checked
from ...storage import Storage
from .._args import json_object, json_whole
from ..datasets import DatasetService
from ..expressions import ExpressionError
from ..ingest import Ingestor, IngestRequest, StagedVersion, logical_type
from ..jobs import JobCancelled, JobHandle, JobRunner
from ._io import close_output, open_output, read_source, write_output
from ._ops import ARROW_TYPES, apply_recipe
from ._recipe import Recipe, check_recipe

log = logging.getLogger(__name__)

BODY_FIELDS = ("steps", "output", "version", "preview", "limit")
PREVIEW_ROWS = 10_000
PREVIEW_LIMIT = 100
PREVIEW_MAX_LIMIT = 1000


@dataclass
class TransformPlan:
    """A checked transformation, ready to run.

    Parameters
    ----------
    org_id : int
        The organization.
    user : str
        Who runs it (the version's author).
    source : dict
        The source version (:meth:`DatasetService.version_info`).
    recipe : Recipe
        The checked steps.
    output : str
        The dataset written.
    mode : str
        ``create`` or ``replace``.
    recipe_name : str, optional
        The saved recipe this runs, if any.
    chain : list of str
        The saved recipes whose publication started this run (auto-refresh), so that a
        cycle of recipes stops.
    """

    org_id: int
    user: str
    source: dict[str, Any]
    recipe: Recipe
    output: str
    mode: str
    recipe_name: str | None = None
    chain: list[str] = field(default_factory=list)

    @property
    def sources(self) -> list[dict[str, Any]]:
        """Every dataset version read: the source, then each join's."""
        joined = [s.other for s in self.recipe.steps if s.other is not None]
        return [{"dataset": v["name"], "version": v["version"]} for v in [self.source, *joined]]

    def params(self) -> dict[str, Any]:
        """What the job records of its request."""
        return {
            "source": {"dataset": self.source["name"], "version": self.source["version"]},
            "steps": self.recipe.to_json(),
            "output": {"name": self.output, "mode": self.mode},
            "recipe": self.recipe_name,
            "chain": self.chain,
        }


class TransformService:
    """Recipes checked and run on Dask, their output published as a dataset version.

    Parameters
    ----------
    catalog : Catalog
        The catalog.
    storage : Storage
        Where the Parquet files are.
    datasets : DatasetService
        Finds versions in the caller's organization (and checks ``data:read``).
    ingestor : Ingestor
        Hands out version numbers and publishes versions.
    jobs : JobRunner
        Runs the jobs.
    client : callable
        Gives the ``distributed.Client`` (started on first use).
    meter : callable, optional
        ``meter(org_id, user, {"id", "seconds", "result"})`` after every job, as
        :meth:`Plans.record_job` takes it (compute time, rows written, storage).
    """

    def __init__(
        self,
        catalog: Catalog,
        storage: Storage,
        datasets: DatasetService,
        ingestor: Ingestor,
        jobs: JobRunner,
        client: Callable[[], Any],
        meter: Callable[[int, str, dict[str, Any]], None] | None = None,
    ) -> None:
        self.catalog = catalog
        self.storage = storage
        self.datasets = datasets
        self.ingestor = ingestor
        self.jobs = jobs
        self.client = client
        self.meter = meter

    # ---- checks --------------------------------------------------------------------

    def check_steps(
        self, ctx, source: str, steps: Any, version: Any = None, pins: dict | None = None
    ) -> tuple[dict[str, Any], Recipe]:
        """The source version and the checked recipe (400 naming the step, 404s).

        A ``join`` resolves its dataset in the caller's organization only: another
        organization's dataset is the same 404 as one that does not exist. ``pins``
        (dataset -> version) gives the versions to read where neither ``version`` nor
        a join's own ``version`` says.
        """
        ctx.require("data:transform")
        version = json_whole(version, "version", 1, None)
        pins = pins or {}
        info = self.datasets.version_info(
            ctx, source, version if version is not None else pins.get(source)
        )

        def resolve(name: str, version: int | None) -> dict[str, Any]:
            return self.datasets.version_info(
                ctx, name, version if version is not None else pins.get(name)
            )

        return info, check_recipe(steps, info["schema"], resolve)

    def prepare(self, ctx, name: str, body: dict[str, Any]) -> TransformPlan:
        """Check a ``POST .../transform`` body whole, before any job exists.

        Raises
        ------
        DatapilotError
            403 without ``data:transform``; 404 for a dataset (source or join) the
            caller cannot see; 400 naming the field or the step; 409 when the output
            exists and the mode is ``create``, 404 when it does not and it is
            ``replace``.
        """
        ctx.require("data:transform")
        json_object(body, BODY_FIELDS)
        if body.get("preview", False) is not False:
            raise bad_request("preview", "preview must be true or false.")
        if "limit" in body:
            raise bad_request("limit", "limit is for a preview (preview: true).")
        info, recipe = self.check_steps(ctx, name, body.get("steps"), body.get("version"))
        output, mode = check_output(body.get("output"))
        self.datasets.check_target(ctx, output, mode, others="replace")
        return TransformPlan(ctx.org_id, ctx.caller.name, info, recipe, output, mode)

    # ---- the job -------------------------------------------------------------------

    def submit(self, ctx, plan: TransformPlan) -> dict[str, Any]:
        """Create the job (kind ``transform``) and start it; returns its model."""
        job = self.jobs.create(ctx, "transform", plan.output, plan.params())

        def work(handle: JobHandle) -> dict[str, Any]:
            started, result = time.monotonic(), None
            try:
                result = self.run(plan, handle)
                return result
            finally:
                if self.meter is not None:
                    seconds = time.monotonic() - started
                    try:
                        self.meter(
                            plan.org_id,
                            plan.user,
                            {"id": handle.id, "seconds": seconds, "result": result},
                        )
                    except Exception:
                        # metering must never fail the job it measures
                        log.exception("Could not record the usage of job %s", handle.id)

        self.jobs.submit(job["id"], plan.org_id, work)
        return job

    def run(self, plan: TransformPlan, handle: JobHandle) -> dict[str, Any]:
        """Run a plan to its published version (in a job's thread)."""
        started = time.monotonic()
        if plan.recipe_name is not None:
            plan.mode = self._after_earlier_writers(plan, handle)
        req = IngestRequest(
            org_id=plan.org_id,
            dataset=plan.output,
            mode=plan.mode,
            source_path="",
            source_name=f"{plan.source['name']} v{plan.source['version']} (recipe)",
            user=plan.user,
        )
        reserved = self.ingestor.reserve(req)
        out_dir = self.storage.dataset_version_dir(plan.org_id, plan.output, reserved.version)
        handle.set_output(out_dir)
        open_output(self.storage, out_dir)
        ddf = self.build(plan)
        schema = output_schema(ddf._meta, plan.recipe.schema)
        parts = self._compute(write_output(ddf, self.storage, out_dir, schema), handle)
        close_output(self.storage, out_dir)
        rows = sum(p["rows"] for p in parts)
        columns = _column_models(schema, parts, reserved.parent)
        lineage = {
            "operation": "transform",
            "sources": plan.sources,
            "recipe": {"name": plan.recipe_name, "steps": plan.recipe.to_json()},
            "job": handle.id,
        }
        report = {
            "source": req.source_name,
            "format": "recipe",
            "steps": len(plan.recipe.steps),
            "rows_written": rows,
            "files": len([p for p in parts if p["rows"]]) or 1,
            "seconds": round(time.monotonic() - started, 3),
            "columns": {},
            "warnings": [],
        }
        staged = StagedVersion(
            req,
            reserved.dataset_id,
            reserved.version,
            reserved.parent,
            out_dir,
            columns,
            rows,
            report,
            {},
            lineage,
        )
        handle.progress(0.999, force=True)
        self.ingestor.publish([staged], handle.id)
        return {**staged.result(), "sources": plan.sources, "recipe": plan.recipe_name}

    def _after_earlier_writers(self, plan: TransformPlan, handle: JobHandle) -> str:
        """Wait for the jobs started before this one that write the same dataset, then
        say how to write it: a saved recipe's run makes a new version of its output
        whatever ran before (two refreshes in a row would otherwise both create it, or
        both replace one version, and the second would fail)."""
        with self.catalog.session(plan.org_id) as db:
            me = Job.find(db, plan.org_id, handle.id)
            created = me.created if me is not None else None
        while created is not None:
            with self.catalog.session(plan.org_id) as db:
                earlier = db.scalar(
                    select(Job.id).where(
                        Job.organization_id == plan.org_id,
                        Job.dataset_name == plan.output,
                        # (not the queued ones: they may wait for this job's thread)
                        Job.state == "running",
                        Job.created < created,
                        Job.id != handle.id,
                    )
                )
            if earlier is None:
                break
            handle.progress(0.0, force=True)
            time.sleep(0.2)
        with self.catalog.session(plan.org_id) as db:
            ds = Dataset.find(db, plan.org_id, plan.output)
            return "replace" if ds is not None and ds.current_version is not None else "create"

    def build(self, plan: TransformPlan, source: Any = None) -> Any:
        """The recipe's lazy dask DataFrame (``source``: another frame of the source)."""
        ddf = read_source(self.storage, plan.source) if source is None else source
        others = {
            s.index: read_source(self.storage, s.other)
            for s in plan.recipe.steps
            if s.other is not None
        }
        return apply_recipe(ddf, plan.recipe, others)

    def _compute(self, writes: list[Any], handle: JobHandle) -> list[dict[str, Any]]:
        """Run the writes on the cluster, reporting the tasks' progress; a cancel (or a
        failure) cancels every future of the job."""
        client = self.client()
        futures = client.compute(writes)
        keys = [f.key for f in futures]
        most = 0
        try:
            while True:
                # (distributed.wait would look for a default client: the service's is not)
                time.sleep(0.2)
                if all(f.done() for f in futures):
                    break
                pending = _pending_tasks(client, keys)
                most = max(most, pending)
                done = sum(f.done() for f in futures) / len(futures)
                tasks = 1 - pending / most if most else 0.0
                handle.progress(0.95 * max(done, tasks))
            handle.check_cancelled()
            return client.gather(futures)
        except JobCancelled:
            client.cancel(futures, force=True)
            raise
        except (ExpressionError, pa.ArrowInvalid, pa.ArrowNotImplementedError, ValueError) as e:
            client.cancel(futures, force=True)
            message = getattr(e, "message", None) or str(e)
            raise DatapilotError(
                422, "transform_failed", f"The recipe could not be computed: {message}"
            ) from None
        except BaseException:
            client.cancel(futures, force=True)
            raise

    # ---- preview -------------------------------------------------------------------

    def preview(self, ctx, name: str, body: dict[str, Any]) -> dict[str, Any]:
        """The recipe's first rows on a sample of the source, nothing saved (blocking).

        The sample is the source's first :data:`PREVIEW_ROWS` rows; joins read their
        whole dataset. Checked exactly as a run is (an ``output`` is optional).
        """
        ctx.require("data:transform")
        json_object(body, BODY_FIELDS)
        limit = json_whole(body.get("limit", PREVIEW_LIMIT), "limit", 1, PREVIEW_MAX_LIMIT)
        if body.get("output") is not None:
            check_output(body["output"])
        info, recipe = self.check_steps(ctx, name, body.get("steps"), body.get("version"))
        plan = TransformPlan(ctx.org_id, ctx.caller.name, info, recipe, "", "create")
        source = read_source(self.storage, info)
        sample = source.partitions[0].map_partitions(
            lambda p: p.head(PREVIEW_ROWS), meta=source._meta
        )
        ddf = self.build(plan, sample)
        schema = output_schema(ddf._meta, recipe.schema)
        future = self.client().compute(ddf.head(limit, npartitions=-1, compute=False))
        try:
            frame = future.result()
        except (ExpressionError, pa.ArrowInvalid, ValueError) as e:
            message = getattr(e, "message", None) or str(e)
            raise DatapilotError(
                422, "transform_failed", f"The recipe could not be computed: {message}"
            ) from None
        table = pa.Table.from_pandas(frame, preserve_index=False)
        table = pa.Table.from_arrays(
            [table.column(f.name).cast(f.type) for f in schema], schema=schema
        )
        return {
            "dataset": name,
            "version": info["version"],
            "sample_rows": min(PREVIEW_ROWS, info["rows"]),
            "columns": [{"name": n, "type": t} for n, t in recipe.schema.items()],
            "steps": recipe.to_json(),
            "rows": _rows_json(table),
        }


def check_output(output: Any) -> tuple[str, str]:
    """The output's name and mode, or a 400 naming the field."""
    json_object(output, ("name", "mode"), "output")
    name = checked(check_dataset_name, output.get("name"), "output.name")
    mode = checked(check_output_mode, output.get("mode", "create"), "output.mode")
    return name, mode


def output_schema(meta: pd.DataFrame, logical: dict[str, str]) -> pa.Schema:
    """The Arrow schema of the output: the graph's own types where they are the column's
    logical type, else the type a step makes of that logical type."""
    fields = []
    for name, type_ in logical.items():
        dtype = meta[name].dtype
        arrow = dtype.pyarrow_dtype if isinstance(dtype, pd.ArrowDtype) else None
        if arrow is None or logical_type(arrow) != type_ or pa.types.is_null(arrow):
            arrow = ARROW_TYPES[type_]
        if pa.types.is_large_string(arrow):
            arrow = pa.string()
        fields.append(pa.field(name, arrow))
    return pa.schema(fields)


def _column_models(schema: pa.Schema, parts, parent) -> list[dict[str, Any]]:
    parent_cols = {c["name"]: c for c in (parent["columns"] if parent else [])}
    models = []
    for f in schema:
        stats = [p["stats"][f.name] for p in parts]
        lows = [s["min"] for s in stats if s["min"] is not None]
        highs = [s["max"] for s in stats if s["max"] is not None]
        models.append(
            {
                "name": f.name,
                "label": parent_cols.get(f.name, {}).get("label", f.name),
                "type": logical_type(f.type),
                "arrow_type": str(f.type),
                "nullable": True,
                "unit": parent_cols.get(f.name, {}).get("unit"),
                "stats": {
                    "nulls": sum(s["nulls"] for s in stats),
                    "min": _plain(min(lows)) if lows else None,
                    "max": _plain(max(highs)) if highs else None,
                },
            }
        )
    return models


def _plain(value: Any) -> Any:
    if isinstance(value, float) and value != value:
        return None
    return value.isoformat() if hasattr(value, "isoformat") else value


def _pending_tasks(client: Any, keys: list[Any]) -> int:
    """Tasks the job's results still wait for, as the scheduler sees them (0 if unknown)."""
    try:
        return client.run_on_scheduler(_count_pending, keys=keys)
    except Exception:
        return 0


def _count_pending(dask_scheduler: Any = None, keys: list[Any] = ()) -> int:
    # finished tasks are forgotten once their dependents have their results: what is
    # still reachable and not in memory is what is left to do
    waiting = ("released", "waiting", "queued", "processing", "no-worker")
    seen: set[Any] = set()
    stack = [dask_scheduler.tasks[k] for k in keys if k in dask_scheduler.tasks]
    pending = 0
    while stack:
        ts = stack.pop()
        if ts.key in seen:
            continue
        seen.add(ts.key)
        if ts.state in waiting:
            pending += 1
            stack.extend(ts.dependencies)
    return pending


def _rows_json(table: pa.Table) -> list[dict[str, Any]]:
    """Rows as the ``/data`` JSON has them: dates as ``2024-01-02``, times in ISO 8601."""
    arrays = [c.cast(pa.string()) if pa.types.is_date(c.type) else c for c in table.columns]
    frame = pa.Table.from_arrays(arrays, names=table.column_names).to_pandas()
    return json.loads(frame.to_json(orient="records", date_format="iso", date_unit="s"))
