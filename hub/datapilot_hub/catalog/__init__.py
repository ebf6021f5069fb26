"""The catalog of organizations, memberships, datasets, versions, jobs, audit events and
dashboards."""

from __future__ import annotations

from ._catalog import Catalog, alembic_config
from ._models import (
    TENANT_TABLES,
    AuditEvent,
    Base,
    Dashboard,
    DashboardVersion,
    Dataset,
    DatasetVersion,
    Invitation,
    Job,
    Membership,
    Organization,
    UsageRecord,
    is_id,
    utcnow,
)
from ._rls import TENANT_ROLE

__all__ = [
    "TENANT_ROLE",
    "TENANT_TABLES",
    "AuditEvent",
    "Base",
    "Catalog",
    "Dashboard",
    "DashboardVersion",
    "Dataset",
    "DatasetVersion",
    "Invitation",
    "Job",
    "Membership",
    "Organization",
    "UsageRecord",
    "alembic_config",
    "is_id",
    "main",
    "utcnow",
]


def main(argv: list[str] | None = None) -> None:
    """``datapilot-migrate``: upgrade the catalog named by the configuration to head."""
    from ..configuration import DatapilotConfig

    config = DatapilotConfig.instance()
    config.prepare_home()
    Catalog(config.db_url).upgrade()
    print(f"catalog at {config.db_url} is at {Catalog(config.db_url).current_revision()}")
