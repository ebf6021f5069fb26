"""Plans, quotas and usage metering.

A plan is a named set of limits (members, datasets, storage bytes, rows per dataset,
concurrent notebook servers, Dask workers per job) defined in configuration
(``c.DataService.plans``); ``organizations.plan`` names the plan of each organization.
Going over a limit is a 403 ``quota_exceeded`` raised *before* the work starts.

Usage goes into ``usage_records``: ``storage_bytes`` is a level (the latest record
counts), ``rows_ingested``, ``compute_seconds`` and ``server_seconds`` are sums.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime
from typing import Any

from sqlalchemy import func, select

from ..catalog import (
    Catalog,
    Dataset,
    DatasetVersion,
    Membership,
    Organization,
    UsageRecord,
    utcnow,
)
from ..errors import DatapilotError
from ._identity import OrgContext

log = logging.getLogger(__name__)

#: Every limit a plan may set, with what it counts. ``None`` means unlimited.
LIMITS: dict[str, str] = {
    "members": "members of the organization",
    "datasets": "datasets of the organization",
    "storage_bytes": "bytes stored for all versions of all datasets",
    "rows_per_dataset": "rows in one dataset version",
    "servers": "notebook servers of the organization running at once",
    "dask_workers": "Dask workers one job may use",
}

GiB = 1024**3

#: The plans used when ``c.DataService.plans`` is not set.
DEFAULT_PLANS: dict[str, dict[str, int | None]] = {
    "free": {
        "members": 5,
        "datasets": 20,
        "storage_bytes": 1 * GiB,
        "rows_per_dataset": 1_000_000,
        "servers": 2,
        "dask_workers": 1,
    },
    "team": {
        "members": 50,
        "datasets": 500,
        "storage_bytes": 100 * GiB,
        "rows_per_dataset": 100_000_000,
        "servers": 25,
        "dask_workers": 4,
    },
    "business": {
        "members": None,
        "datasets": None,
        "storage_bytes": 2000 * GiB,
        "rows_per_dataset": None,
        "servers": None,
        "dask_workers": 16,
    },
}

#: Metrics recorded in ``usage_records``; ``storage_bytes`` is a level, the others sums.
METRICS = ("storage_bytes", "rows_ingested", "compute_seconds", "server_seconds")


def validate_plans(plans: Any) -> dict[str, dict[str, int | None]]:
    """Check a plans table from configuration; unknown limits and bad values raise.

    A limit a plan leaves out is unlimited.

    Parameters
    ----------
    plans : dict
        ``{plan name: {limit: int or None}}``.
    """
    if not isinstance(plans, dict) or not plans:
        raise ValueError("plans must be a non-empty dict of plan name -> limits")
    out: dict[str, dict[str, int | None]] = {}
    for name, limits in plans.items():
        if not isinstance(name, str) or not name or len(name) > 50:
            raise ValueError(f"plan name {name!r} must be a string of 1 to 50 characters")
        if not isinstance(limits, dict):
            raise ValueError(f"plan {name!r}: limits must be a dict")
        unknown = set(limits) - set(LIMITS)
        if unknown:
            raise ValueError(
                f"plan {name!r}: unknown limits {sorted(unknown)}; known: {sorted(LIMITS)}"
            )
        for key, value in limits.items():
            if value is not None and (
                isinstance(value, bool) or not isinstance(value, int) or value < 0
            ):
                raise ValueError(f"plan {name!r}: {key} must be a whole number >= 0 or None")
        out[name] = {key: limits.get(key) for key in LIMITS}
    return out


def quota_exceeded(
    limit: str, plan: str, allowed: int, usage: int, **details: Any
) -> DatapilotError:
    """The 403 of a limit that the request would exceed.

    Parameters
    ----------
    limit : str
        A key of :data:`LIMITS`.
    plan : str
        The organization's plan.
    allowed : int
        The plan's limit.
    usage : int
        The usage the request was measured against (what it would be after it).
    """
    return DatapilotError(
        403,
        "quota_exceeded",
        f"The {plan!r} plan allows {allowed} {LIMITS[limit]} ({limit}); this would make"
        f" {usage}. Ask a hub administrator for a larger plan.",
        limit=limit,
        plan=plan,
        allowed=allowed,
        usage=usage,
        **details,
    )


class Plans:
    """Quota checks and usage metering against the configured plans.

    Parameters
    ----------
    catalog : Catalog
        The catalog.
    plans : dict
        Plan name -> limits, as checked by :func:`validate_plans`.
    default_plan : str
        The plan of an organization whose plan is not (or no longer) configured.
    """

    def __init__(
        self,
        catalog: Catalog,
        plans: dict[str, dict[str, int | None]] | None = None,
        default_plan: str = "free",
    ) -> None:
        self.catalog = catalog
        self.plans = validate_plans(plans if plans is not None else DEFAULT_PLANS)
        if default_plan not in self.plans:
            raise ValueError(f"default plan {default_plan!r} is not one of {sorted(self.plans)}")
        self.default_plan = default_plan

    # ---- plans --------------------------------------------------------------------------

    def plan_name(self, plan: str | None) -> str:
        """The plan in effect for an organization whose ``plan`` column holds ``plan``."""
        return plan if plan in self.plans else self.default_plan

    def limits_of(self, org_id: int) -> tuple[str, dict[str, int | None]]:
        """The plan name and limits of an organization."""
        with self.catalog.session(system=True) as db:
            org = db.get(Organization, org_id)
            name = self.plan_name(org.plan if org else None)
        return name, self.plans[name]

    def validate_plan(self, plan: Any) -> str:
        """Return ``plan`` or raise 400 naming the field."""
        if not isinstance(plan, str) or plan not in self.plans:
            raise DatapilotError(
                400,
                "invalid_plan",
                f"plan must be one of {', '.join(sorted(self.plans))}.",
                field="plan",
            )
        return plan

    def _check(self, org_id: int, limit: str, usage: int, **details: Any) -> None:
        plan, limits = self.limits_of(org_id)
        allowed = limits.get(limit)
        if allowed is not None and usage > allowed:
            raise quota_exceeded(limit, plan, allowed, usage, **details)

    # ---- quota checks (before the work starts) ------------------------------------------

    def check_members(self, org_id: int, adding: int = 1) -> None:
        """Refuse a new member over the ``members`` limit."""
        with self.catalog.session(org_id) as db:
            n = db.scalar(
                select(func.count())
                .select_from(Membership)
                .where(Membership.organization_id == org_id)
            )
        self._check(org_id, "members", n + adding)

    def check_upload(self, ctx: OrgContext, dataset: str | list[str], mode: str) -> None:
        """Refuse an ingestion into ``dataset`` that a limit already forbids.

        A new dataset counts against ``datasets``; any write is refused once
        ``storage_bytes`` is reached; an append is refused once the dataset holds
        ``rows_per_dataset`` rows.

        Parameters
        ----------
        ctx : OrgContext
            The caller in the organization.
        dataset : str or list of str
            The dataset name, or the names of the datasets one upload writes (every
            sheet of a workbook).
        mode : str
            ``create``, ``replace`` or ``append``.
        """
        names = [dataset] if isinstance(dataset, str) else list(dataset)
        with self.catalog.session(ctx.org_id) as db:
            n_datasets = db.scalar(
                select(func.count())
                .select_from(Dataset)
                .where(Dataset.organization_id == ctx.org_id, Dataset.current_version.is_not(None))
            )
            current = {}
            for name in names:
                ds = Dataset.find(db, ctx.org_id, name)
                current[name] = ds.current if ds is not None else None
            stored = self._stored_bytes(db, ctx.org_id)
        new = [name for name in names if current[name] is None]
        if new:
            self._check(ctx.org_id, "datasets", n_datasets + len(new), dataset=new[-1])
        plan, limits = self.limits_of(ctx.org_id)
        if limits["storage_bytes"] is not None and stored >= limits["storage_bytes"]:
            raise quota_exceeded("storage_bytes", plan, limits["storage_bytes"], stored)
        for name, version in current.items():
            if (
                mode == "append"
                and version is not None
                and limits["rows_per_dataset"] is not None
                and version.rows >= limits["rows_per_dataset"]
            ):
                raise quota_exceeded(
                    "rows_per_dataset",
                    plan,
                    limits["rows_per_dataset"],
                    version.rows + 1,
                    dataset=name,
                )

    def row_checker(self, org_id: int, dataset: str) -> Callable[[int], None]:
        """A check an ingestion calls with the rows written so far, as they stream in.

        The number of rows of an upload is known only while it is read, so this one
        limit is checked during the job, before its version is published: the job fails
        with ``quota_exceeded`` and the dataset keeps its current version.
        """
        plan, limits = self.limits_of(org_id)
        allowed = limits["rows_per_dataset"]

        def check(rows: int) -> None:
            if allowed is not None and rows > allowed:
                raise quota_exceeded("rows_per_dataset", plan, allowed, rows, dataset=dataset)

        return check

    def check_servers(self, org_id: int, running: int) -> None:
        """Refuse one more notebook server when ``running`` already run."""
        self._check(org_id, "servers", running + 1)

    def dask_workers(self, org_id: int) -> int | None:
        """The most Dask workers one job of the organization may use (None: no limit)."""
        return self.limits_of(org_id)[1]["dask_workers"]

    # ---- metering -----------------------------------------------------------------------

    @staticmethod
    def _stored_bytes(db, org_id: int) -> int:
        return int(
            db.scalar(
                select(func.coalesce(func.sum(DatasetVersion.bytes), 0)).where(
                    DatasetVersion.organization_id == org_id
                )
            )
        )

    def record(
        self,
        org_id: int,
        metric: str,
        amount: float,
        user: str | None = None,
        **details: Any,
    ) -> None:
        """Add one usage record.

        Parameters
        ----------
        org_id : int
            The organization.
        metric : str
            One of :data:`METRICS`.
        amount : float
            The measured amount (a level for ``storage_bytes``).
        user : str, optional
            Who caused it.
        **details
            Context: a dataset, a job id, a server.
        """
        if metric not in METRICS:
            raise KeyError(metric)
        with self.catalog.session(org_id) as db:
            db.add(
                UsageRecord(
                    organization_id=org_id,
                    metric=metric,
                    amount=float(amount),
                    user_name=user,
                    details=details or None,
                    time=utcnow(),
                )
            )

    def record_storage(self, org_id: int, user: str | None = None, **details: Any) -> int:
        """Measure the organization's stored bytes now and record the level."""
        with self.catalog.session(org_id) as db:
            stored = self._stored_bytes(db, org_id)
        self.record(org_id, "storage_bytes", stored, user, **details)
        return stored

    def record_job(self, org_id: int, user: str | None, job: dict[str, Any]) -> None:
        """Meter a finished ingestion job: rows, compute seconds and the storage level.

        Parameters
        ----------
        org_id : int
            The organization.
        user : str
            Who ran the job.
        job : dict
            ``{"id", "seconds", "result"}``; ``result`` holds ``rows_read`` or ``rows``
            when the job wrote a dataset, or ``datasets`` (each with those) when it wrote
            several.
        """
        self.record(org_id, "compute_seconds", job["seconds"], user, job=job["id"])
        result = job.get("result") or {}
        # a workbook read sheet by sheet wrote several datasets
        written = False
        for part in result.get("datasets") or [result]:
            rows = part.get("rows_read", part.get("rows"))
            if part.get("dataset") and part.get("version"):
                # an append's version holds old rows too: its report says how many were read
                with self.catalog.session(org_id) as db:
                    report = db.scalar(
                        select(DatasetVersion.report)
                        .join(Dataset, Dataset.id == DatasetVersion.dataset_id)
                        .where(
                            Dataset.organization_id == org_id,
                            Dataset.name == part["dataset"],
                            DatasetVersion.version == part["version"],
                        )
                    )
                if isinstance(report, dict) and isinstance(report.get("rows_read"), int):
                    rows = report["rows_read"]
            if rows is not None:
                self.record(
                    org_id, "rows_ingested", rows, user, job=job["id"], dataset=part.get("dataset")
                )
                written = True
        if written:
            self.record_storage(org_id, user, job=job["id"])

    def usage(self, org_id: int, since: datetime | None = None) -> dict[str, Any]:
        """Current levels and metered sums (all time, or since ``since``), with the plan."""
        with self.catalog.session(org_id) as db:
            n_members = db.scalar(
                select(func.count())
                .select_from(Membership)
                .where(Membership.organization_id == org_id)
            )
            n_datasets = db.scalar(
                select(func.count())
                .select_from(Dataset)
                .where(Dataset.organization_id == org_id, Dataset.current_version.is_not(None))
            )
            stored = self._stored_bytes(db, org_id)
            sums = {}
            for metric in METRICS[1:]:
                q = select(func.coalesce(func.sum(UsageRecord.amount), 0)).where(
                    UsageRecord.organization_id == org_id, UsageRecord.metric == metric
                )
                if since is not None:
                    q = q.where(UsageRecord.time >= since)
                sums[metric] = float(db.scalar(q))
        plan, limits = self.limits_of(org_id)
        return {
            "plan": plan,
            "limits": limits,
            "members": n_members,
            "datasets": n_datasets,
            "storage_bytes": stored,
            "rows_ingested": int(sums["rows_ingested"]),
            "compute_seconds": round(sums["compute_seconds"], 3),
            "server_seconds": round(sums["server_seconds"], 3),
            "server_hours": round(sums["server_seconds"] / 3600, 4),
            "since": since.isoformat() if since else None,
        }

    def history(self, org_id: int, metric: str | None = None, limit: int = 100) -> list[dict]:
        """The latest usage records, newest first."""
        with self.catalog.session(org_id) as db:
            q = select(UsageRecord).where(UsageRecord.organization_id == org_id)
            if metric:
                q = q.where(UsageRecord.metric == metric)
            rows = db.scalars(q.order_by(UsageRecord.id.desc()).limit(limit)).all()
            return [
                {
                    "metric": r.metric,
                    "amount": r.amount,
                    "user": r.user_name,
                    "details": r.details,
                    "time": r.time.isoformat(),
                }
                for r in rows
            ]
