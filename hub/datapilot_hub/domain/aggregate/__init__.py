"""Aggregations of a dataset version: group-by, time buckets, metrics, filters, top-N.

A body (:mod:`._spec`) becomes one DuckDB query (:mod:`._plan`) that a sandboxed
connection runs over the version's Parquet files (:mod:`._engine`); the answer is a small
Arrow table, encoded as JSON, CSV, Arrow or Parquet. Other domain code (insights,
charts) calls :meth:`AggregateService.aggregate` and gets the table.
"""

from __future__ import annotations

import datetime as dt
import json
import math
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import pyarrow as pa

from ...errors import DatapilotError, bad_request
from ...storage import Storage
from .._identity import OrgContext
from ..datasets import DatasetService, table_chunks
from ._engine import Engine
from ._plan import Plan, plan, sample_plan
from ._spec import FUNCTIONS, MAX_ROWS, UNITS, Aggregation, parse_aggregation

__all__ = [
    "FORMATS",
    "FUNCTIONS",
    "MAX_ROWS",
    "UNITS",
    "AggregateResult",
    "AggregateService",
    "Aggregation",
    "Engine",
    "Plan",
    "encode",
    "parse_aggregation",
    "plan",
    "sample_plan",
]

FORMATS = {
    "json": "application/json",
    "csv": "text/csv; charset=utf-8",
    "arrow": "application/vnd.apache.arrow.stream",
    "parquet": "application/vnd.apache.parquet",
}


@dataclass
class AggregateResult:
    """An aggregation's answer.

    Parameters
    ----------
    dataset : str
        The dataset's name.
    version : int
        The version aggregated.
    columns : list of tuple
        (name, logical type) of each column of ``table``.
    table : pyarrow.Table
        The rows.
    reads : list of str
        The dataset's columns that were read.
    """

    dataset: str
    version: int
    columns: list[tuple[str, str]]
    table: pa.Table
    reads: list[str]


@dataclass
class _Target:
    """A checked aggregation, ready to run: what :meth:`AggregateService.prepare` returns."""

    info: dict[str, Any]
    plan: Plan
    files: list[str]


class AggregateService:
    """Aggregations, under the caller's ``data:read``.

    Parameters
    ----------
    datasets : DatasetService
        Finds the version (and checks the permission).
    storage : Storage
        Where the Parquet files are.
    engine : Engine
        Runs the queries.
    """

    def __init__(self, datasets: DatasetService, storage: Storage, engine: Engine) -> None:
        self.datasets = datasets
        self.storage = storage
        self.engine = engine

    def prepare(self, ctx: OrgContext, name: str, body: Any) -> _Target:
        """Check a request against the dataset (fast: the catalog only).

        Parameters
        ----------
        ctx : OrgContext
            The caller in the organization.
        name : str
            The dataset.
        body : dict
            The aggregation (see :func:`parse_aggregation`).

        Raises
        ------
        DatapilotError
            403 without ``data:read``, 404 for an unknown dataset or version, 400 naming
            the field for a bad aggregation.
        """
        ctx.require("data:read")
        agg = parse_aggregation(body)
        info = self.datasets.version_info(ctx, name, agg.version)
        query = plan(agg, info["schema"])
        files = [f for f in self.storage.files(info["path"]) if f.endswith(".parquet")]
        return _Target(info, query, files)

    def run(self, target: _Target) -> AggregateResult:
        """Run a prepared aggregation (blocking: call it from a thread in a server).

        Raises
        ------
        DatapilotError
            400 ``too_many_groups`` when the answer would pass :data:`MAX_ROWS` rows.
        """
        table = self.engine.run(target.plan, target.files)
        if table.num_rows >= target.plan.row_cap:
            raise DatapilotError(
                400,
                "too_many_groups",
                f"The aggregation makes more than {MAX_ROWS} rows; set a limit, group by"
                " fewer columns or use a coarser time bucket.",
                field="limit",
                limit=MAX_ROWS,
            )
        return AggregateResult(
            target.info["name"],
            target.info["version"],
            target.plan.columns,
            table,
            target.plan.reads,
        )

    def sample(
        self,
        ctx: OrgContext,
        name: str,
        columns: list[str],
        filter: str | None = None,
        rows: int = 5000,
        version: int | None = None,
        seed: int = 7,
    ) -> AggregateResult:
        """A uniform sample of a version's rows, after a filter (blocking): the points of a
        scatter plot (see :func:`sample_plan`).

        Parameters
        ----------
        ctx : OrgContext
            The caller in the organization (needs ``data:read``).
        name : str
            The dataset.
        columns : list of str
            The columns; rows missing any of them are left out.
        filter : str, optional
            An expression rows must satisfy.
        rows : int
            Rows at most.
        version : int, optional
            A version; by default the current one.
        seed : int
            The sample's seed: the same arguments give the same rows.
        """
        info = self.datasets.version_info(ctx, name, version)
        query = sample_plan(columns, info["schema"], filter, rows, seed)
        files = [f for f in self.storage.files(info["path"]) if f.endswith(".parquet")]
        table = self.engine.run(query, files)
        return AggregateResult(info["name"], info["version"], query.columns, table, query.reads)

    def aggregate(self, ctx: OrgContext, name: str, body: Any) -> AggregateResult:
        """Check and run an aggregation (blocking).

        Parameters
        ----------
        ctx : OrgContext
            The caller in the organization.
        name : str
            The dataset.
        body : dict
            The aggregation, as the API's body.
        """
        return self.run(self.prepare(ctx, name, body))


def encode(result: AggregateResult, fmt: str) -> Iterator[bytes]:
    """An answer in a format of :data:`FORMATS`.

    JSON is ``{"dataset", "version", "columns": [{"name", "type"}], "rows": [{...}]}``,
    dates and timestamps as ISO 8601 strings; the others encode the table as ``/data``
    does.

    Parameters
    ----------
    result : AggregateResult
        The answer.
    fmt : str
        ``json``, ``csv``, ``arrow`` or ``parquet``.
    """
    if fmt not in FORMATS:
        raise bad_request("format", f"format must be one of {', '.join(FORMATS)}.")
    if fmt != "json":
        yield from table_chunks(result.table, fmt)
        return
    body = {
        "dataset": result.dataset,
        "version": result.version,
        "columns": [{"name": n, "type": t} for n, t in result.columns],
        "rows": [{k: _json_value(v) for k, v in row.items()} for row in result.table.to_pylist()],
    }
    yield json.dumps(body).encode()


def _json_value(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dt.datetime):
        if value.tzinfo is not None:
            value = value.astimezone(dt.timezone.utc).replace(tzinfo=None)
        return value.isoformat()
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return float(value)
    return value
