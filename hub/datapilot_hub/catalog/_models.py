"""SQLAlchemy models of the catalog.

Every table that holds tenant data carries ``organization_id``; on PostgreSQL a
row-level-security policy (see the first migration) enforces the same scope that the
services apply in their queries.
"""

from __future__ import annotations

import json
import uuid
from datetime import datetime, timezone
from typing import Any

from sqlalchemy import (
    BigInteger,
    DateTime,
    Float,
    ForeignKey,
    Integer,
    String,
    Text,
    UniqueConstraint,
    select,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, relationship
from sqlalchemy.types import TypeDecorator


def utcnow() -> datetime:
    """The current time, timezone-aware in UTC."""
    return datetime.now(timezone.utc)


def new_id() -> str:
    """A random identifier for objects whose ids appear in URLs."""
    return uuid.uuid4().hex


def is_id(value: Any) -> bool:
    """Whether ``value`` looks like an id :func:`new_id` makes (32 hex digits).

    Anything else names no object: it is not looked up (PostgreSQL would refuse a NUL
    in the query itself).

    Parameters
    ----------
    value : Any
        An id from a URL.
    """
    return isinstance(value, str) and len(value) == 32 and all(c in _HEX for c in value)


_HEX = frozenset("0123456789abcdef")


class JSONDict(TypeDecorator):
    """JSON stored as text, so SQLite and PostgreSQL behave alike."""

    impl = Text
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Any) -> str | None:
        return None if value is None else json.dumps(value)

    def process_result_value(self, value: str | None, dialect: Any) -> Any:
        return None if value is None else json.loads(value)


class UTCDateTime(TypeDecorator):
    """A timestamp that always comes back timezone-aware (SQLite forgets the zone)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is not None and value.tzinfo is None:
            value = value.replace(tzinfo=timezone.utc)
        return value

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is not None and value.tzinfo is None:
            value = value.replace(tzinfo=timezone.utc)
        return value


class Base(DeclarativeBase):
    """Declarative base of all catalog tables."""


#: Tables whose rows belong to one organization (row-level security applies).
TENANT_TABLES = (
    "memberships",
    "datasets",
    "dataset_versions",
    "jobs",
    "audit_events",
    "invitations",
    "usage_records",
    "dashboards",
    "dashboard_versions",
)


class Organization(Base):
    """A tenant: a team that shares datasets and dashboards (a JupyterHub group)."""

    __tablename__ = "organizations"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    slug: Mapped[str] = mapped_column(String(30), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    plan: Mapped[str] = mapped_column(String(50), default="free")
    # default invitation role, notebook server limits, idle culling time...
    settings: Mapped[dict | None] = mapped_column(JSONDict, nullable=True)
    created: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    def __repr__(self) -> str:
        return f"<Organization {self.slug} id={self.id}>"

    @classmethod
    def find(cls, db: Session, slug: str) -> Organization | None:
        """The organization with this slug, or None."""
        return db.scalar(select(cls).where(cls.slug == slug))


class Membership(Base):
    """A user's role in an organization; the source of truth for permissions."""

    __tablename__ = "memberships"
    __table_args__ = (UniqueConstraint("organization_id", "user_name"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    organization_id: Mapped[int] = mapped_column(
        ForeignKey("organizations.id", ondelete="CASCADE"), index=True
    )
    user_name: Mapped[str] = mapped_column(String(255), index=True)
    role: Mapped[str] = mapped_column(String(20))
    created: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    organization: Mapped[Organization] = relationship(lazy="joined")

    def __repr__(self) -> str:
        return f"<Membership {self.user_name}@{self.organization_id} {self.role}>"

    @classmethod
    def find(cls, db: Session, organization_id: int, user_name: str) -> Membership | None:
        """The membership of ``user_name`` in the organization, or None."""
        return db.scalar(
            select(cls).where(cls.organization_id == organization_id, cls.user_name == user_name)
        )


class Dataset(Base):
    """A named, versioned table of an organization.

    A dataset is visible once ``current_version`` is set, by the catalog commit that
    ends its first successful ingestion.
    """

    __tablename__ = "datasets"
    __table_args__ = (UniqueConstraint("organization_id", "name"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    organization_id: Mapped[int] = mapped_column(
        ForeignKey("organizations.id", ondelete="CASCADE"), index=True
    )
    name: Mapped[str] = mapped_column(String(63))
    current_version: Mapped[int | None] = mapped_column(Integer, nullable=True)
    # version numbers are handed out when a job starts, so concurrent jobs never
    # write into the same directory; a failed job leaves a gap, never a clash
    next_version: Mapped[int] = mapped_column(Integer, default=1)
    options: Mapped[dict | None] = mapped_column(JSONDict, nullable=True)
    created_by: Mapped[str] = mapped_column(String(255))
    created: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    versions: Mapped[list[DatasetVersion]] = relationship(
        back_populates="dataset",
        order_by="DatasetVersion.version",
        cascade="all, delete-orphan",
        passive_deletes=True,
    )

    def __repr__(self) -> str:
        return f"<Dataset {self.name} org={self.organization_id} v={self.current_version}>"

    @classmethod
    def find(cls, db: Session, organization_id: int, name: str) -> Dataset | None:
        """The dataset ``name`` of the organization (visible or not), or None."""
        return db.scalar(
            select(cls).where(cls.organization_id == organization_id, cls.name == name)
        )

    @property
    def current(self) -> DatasetVersion | None:
        """The current version, or None while the dataset is not visible yet."""
        for version in self.versions:
            if version.version == self.current_version:
                return version
        return None


class DatasetVersion(Base):
    """An immutable version of a dataset: Parquet files under ``path`` plus metadata."""

    __tablename__ = "dataset_versions"
    __table_args__ = (UniqueConstraint("dataset_id", "version"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    organization_id: Mapped[int] = mapped_column(
        ForeignKey("organizations.id", ondelete="CASCADE"), index=True
    )
    dataset_id: Mapped[int] = mapped_column(ForeignKey("datasets.id", ondelete="CASCADE"))
    version: Mapped[int] = mapped_column(Integer)
    columns: Mapped[list] = mapped_column(JSONDict)
    rows: Mapped[int] = mapped_column(BigInteger)
    bytes: Mapped[int] = mapped_column(BigInteger)
    path: Mapped[str] = mapped_column(Text)
    parent_version: Mapped[int | None] = mapped_column(Integer, nullable=True)
    lineage: Mapped[dict | None] = mapped_column(JSONDict, nullable=True)
    report: Mapped[dict | None] = mapped_column(JSONDict, nullable=True)
    source_name: Mapped[str | None] = mapped_column(String(255), nullable=True)
    created_by: Mapped[str] = mapped_column(String(255))
    created: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    dataset: Mapped[Dataset] = relationship(back_populates="versions")

    def __repr__(self) -> str:
        return f"<DatasetVersion {self.dataset_id} v{self.version} rows={self.rows}>"


class Job(Base):
    """Background work (an ingestion, a transformation) with its state and progress."""

    __tablename__ = "jobs"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    organization_id: Mapped[int] = mapped_column(
        ForeignKey("organizations.id", ondelete="CASCADE"), index=True
    )
    kind: Mapped[str] = mapped_column(String(30))
    state: Mapped[str] = mapped_column(String(20), default="queued", index=True)
    progress: Mapped[float] = mapped_column(Float, default=0.0)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    dataset_name: Mapped[str | None] = mapped_column(String(63), nullable=True)
    # where the job writes before its catalog commit; removed when the job fails
    output_path: Mapped[str | None] = mapped_column(Text, nullable=True)
    params: Mapped[dict | None] = mapped_column(JSONDict, nullable=True)
    result: Mapped[dict | None] = mapped_column(JSONDict, nullable=True)
    created_by: Mapped[str] = mapped_column(String(255))
    created: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    started: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    finished: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)

    FINAL_STATES = ("succeeded", "failed", "cancelled")

    def __repr__(self) -> str:
        return f"<Job {self.id} {self.kind} {self.state}>"

    @classmethod
    def find(cls, db: Session, organization_id: int, job_id: str) -> Job | None:
        """The job of the organization with this id, or None."""
        if not is_id(job_id):
            return None
        return db.scalar(
            select(cls).where(cls.organization_id == organization_id, cls.id == job_id)
        )


class AuditEvent(Base):
    """Who did what to which object of an organization, and how it ended."""

    __tablename__ = "audit_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    organization_id: Mapped[int] = mapped_column(
        ForeignKey("organizations.id", ondelete="CASCADE"), index=True
    )
    user_name: Mapped[str] = mapped_column(String(255))
    action: Mapped[str] = mapped_column(String(60))
    target: Mapped[str | None] = mapped_column(String(255), nullable=True)
    outcome: Mapped[str] = mapped_column(String(20), default="ok")
    client: Mapped[str | None] = mapped_column(String(64), nullable=True)
    details: Mapped[dict | None] = mapped_column(JSONDict, nullable=True)
    time: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)

    def __repr__(self) -> str:
        return f"<AuditEvent {self.action} {self.target} by {self.user_name}>"


class Invitation(Base):
    """A single-use, expiring invitation to join an organization with a role.

    Only a hash of the code is stored; the code itself is shown once, in the link.
    """

    __tablename__ = "invitations"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    organization_id: Mapped[int] = mapped_column(
        ForeignKey("organizations.id", ondelete="CASCADE"), index=True
    )
    code_hash: Mapped[str] = mapped_column(String(64), unique=True)
    role: Mapped[str] = mapped_column(String(20))
    email: Mapped[str | None] = mapped_column(String(255), nullable=True)
    created_by: Mapped[str] = mapped_column(String(255))
    created: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires: Mapped[datetime] = mapped_column(UTCDateTime)
    used_by: Mapped[str | None] = mapped_column(String(255), nullable=True)
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)

    def __repr__(self) -> str:
        return f"<Invitation {self.id} org={self.organization_id} {self.role}>"


class UsageRecord(Base):
    """Metered usage of an organization: one measured amount of one metric.

    Metrics: ``storage_bytes`` (a level, the latest counts), ``rows_ingested``,
    ``compute_seconds``, ``server_seconds`` (sums).
    """

    __tablename__ = "usage_records"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    organization_id: Mapped[int] = mapped_column(
        ForeignKey("organizations.id", ondelete="CASCADE"), index=True
    )
    metric: Mapped[str] = mapped_column(String(40), index=True)
    amount: Mapped[float] = mapped_column(Float)
    user_name: Mapped[str | None] = mapped_column(String(255), nullable=True)
    details: Mapped[dict | None] = mapped_column(JSONDict, nullable=True)
    time: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)

    def __repr__(self) -> str:
        return f"<UsageRecord {self.metric}={self.amount} org={self.organization_id}>"


class Dashboard(Base):
    """A published notebook of an organization, served as a Voilà or Panel app.

    It belongs to the organization, not to its publisher: it stays when they leave. It
    is visible once ``current_version`` is set (by the catalog commit that ends its first
    publication) and while ``unpublished`` is None; republishing an unpublished slug
    makes it visible again with a new version.
    """

    __tablename__ = "dashboards"
    __table_args__ = (UniqueConstraint("organization_id", "slug"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    organization_id: Mapped[int] = mapped_column(
        ForeignKey("organizations.id", ondelete="CASCADE"), index=True
    )
    slug: Mapped[str] = mapped_column(String(60))
    title: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text, default="")
    kind: Mapped[str] = mapped_column(String(20))
    # who published it first (or first after it was unpublished): they may roll back and
    # unpublish it without dashboards:manage
    publisher: Mapped[str] = mapped_column(String(255))
    current_version: Mapped[int | None] = mapped_column(Integer, nullable=True)
    # handed out before the snapshot is written, so two publications never share a folder
    next_version: Mapped[int] = mapped_column(Integer, default=1)
    created: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    unpublished: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    unpublished_by: Mapped[str | None] = mapped_column(String(255), nullable=True)

    versions: Mapped[list[DashboardVersion]] = relationship(
        back_populates="dashboard",
        order_by="DashboardVersion.version",
        cascade="all, delete-orphan",
        passive_deletes=True,
    )

    def __repr__(self) -> str:
        return f"<Dashboard {self.slug} org={self.organization_id} v={self.current_version}>"

    @classmethod
    def find(cls, db: Session, organization_id: int, slug: str) -> Dashboard | None:
        """The dashboard ``slug`` of the organization (visible or not), or None."""
        return db.scalar(
            select(cls).where(cls.organization_id == organization_id, cls.slug == slug)
        )

    @property
    def visible(self) -> bool:
        """Whether members see it: published, and not unpublished since."""
        return self.current_version is not None and self.unpublished is None

    @property
    def current(self) -> DashboardVersion | None:
        """The current version, or None before the first publication ends."""
        for version in self.versions:
            if version.version == self.current_version:
                return version
        return None


class DashboardVersion(Base):
    """An immutable snapshot of a dashboard: the notebook and its files under ``path``."""

    __tablename__ = "dashboard_versions"
    __table_args__ = (UniqueConstraint("dashboard_id", "version"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    organization_id: Mapped[int] = mapped_column(
        ForeignKey("organizations.id", ondelete="CASCADE"), index=True
    )
    dashboard_id: Mapped[int] = mapped_column(ForeignKey("dashboards.id", ondelete="CASCADE"))
    version: Mapped[int] = mapped_column(Integer)
    kind: Mapped[str] = mapped_column(String(20))
    title: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text, default="")
    # the storage directory of the snapshot: the notebook and the files, as published
    path: Mapped[str] = mapped_column(Text)
    # the notebook's path inside the snapshot (as it was relative to the files)
    notebook: Mapped[str] = mapped_column(String(255))
    # [{"path": "data/x.csv", "bytes": 123}, ...]: every file but the notebook
    files: Mapped[list] = mapped_column(JSONDict)
    # {dataset name: version, or None for the latest}
    pins: Mapped[dict] = mapped_column(JSONDict)
    bytes: Mapped[int] = mapped_column(BigInteger)
    # where the notebook was in the publisher's workspace, when known
    source_path: Mapped[str | None] = mapped_column(Text, nullable=True)
    # storage path of a thumbnail taken from the notebook's outputs (None: drawn instead)
    thumbnail: Mapped[str | None] = mapped_column(Text, nullable=True)
    publisher: Mapped[str] = mapped_column(String(255))
    created: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    dashboard: Mapped[Dashboard] = relationship(back_populates="versions")

    def __repr__(self) -> str:
        return f"<DashboardVersion {self.dashboard_id} v{self.version} {self.kind}>"
