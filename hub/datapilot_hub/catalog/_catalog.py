"""The catalog: one engine, sessions scoped to an organization, Alembic upgrades."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from alembic import command
from alembic.config import Config as AlembicConfig
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine, event, text
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker

# the role a tenant-scoped transaction runs as: subject to the row-level-security
# policies even when the service connects as a superuser
from ._rls import TENANT_ROLE

log = logging.getLogger(__name__)

ALEMBIC_DIR = Path(__file__).parent / "alembic"


def alembic_config(url: str) -> AlembicConfig:
    """An Alembic configuration for the catalog at ``url``.

    Parameters
    ----------
    url : str
        SQLAlchemy URL of the catalog database.
    """
    cfg = AlembicConfig()
    cfg.set_main_option("script_location", str(ALEMBIC_DIR))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def _sqlite_pragmas(dbapi_connection, connection_record) -> None:
    cursor = dbapi_connection.cursor()
    # foreign keys for ON DELETE CASCADE; WAL so the job threads and the request
    # thread don't block each other's reads
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


class Catalog:
    """The catalog database.

    Every session is either scoped to one organization or explicitly system-wide.
    On PostgreSQL an organization-scoped transaction runs as :data:`TENANT_ROLE` with
    ``datapilot.org_id`` set, so row-level security hides other organizations' rows
    even from a query that forgot its filter.

    Parameters
    ----------
    url : str
        SQLAlchemy URL: ``sqlite:///path`` or ``postgresql+psycopg://...``.
    """

    def __init__(self, url: str, **engine_kwargs) -> None:
        self.url = url
        if url.startswith("sqlite"):
            engine_kwargs.setdefault("connect_args", {"check_same_thread": False})
        self.engine: Engine = create_engine(url, pool_pre_ping=True, **engine_kwargs)
        self.dialect = self.engine.dialect.name
        if self.dialect == "sqlite":
            event.listen(self.engine, "connect", _sqlite_pragmas)
        self._sessionmaker = sessionmaker(self.engine, expire_on_commit=False)
        event.listen(self._sessionmaker, "after_begin", self._apply_scope)

    def __repr__(self) -> str:
        return f"<Catalog {self.engine.url!r}>"

    def _apply_scope(self, session: Session, transaction, connection) -> None:
        if self.dialect != "postgresql" or session.info.get("system"):
            return
        org_id = session.info["org_id"]
        connection.exec_driver_sql(f"SET LOCAL ROLE {TENANT_ROLE}")
        connection.execute(
            text("SELECT set_config('datapilot.org_id', :org_id, true)"), {"org_id": str(org_id)}
        )

    @contextmanager
    def session(self, org_id: int | None = None, *, system: bool = False) -> Iterator[Session]:
        """A session that commits on success and rolls back on error.

        Parameters
        ----------
        org_id : int, optional
            The organization every query of this session is scoped to.
        system : bool
            Run unscoped, for the few queries that must cross organizations (a user's
            memberships, the sweep of stale jobs at start). Exclusive with ``org_id``.
        """
        if (org_id is None) == (not system):
            raise ValueError("a catalog session needs exactly one of org_id or system=True")
        with self._sessionmaker() as db:
            db.info.update(org_id=org_id, system=system)
            try:
                yield db
                db.commit()
            except BaseException:
                db.rollback()
                raise

    def current_revision(self) -> str | None:
        """The Alembic revision the database is at (None when empty)."""
        with self.engine.connect() as conn:
            return MigrationContext.configure(conn).get_current_revision()

    def head_revision(self) -> str | None:
        """The newest revision shipped with this version of Datapilot."""
        return ScriptDirectory.from_config(alembic_config(self.url)).get_current_head()

    def upgrade(self) -> None:
        """Bring the schema to the newest revision (a no-op when it is there)."""
        if self.current_revision() == self.head_revision():
            return
        log.info("Upgrading catalog %s to %s", self.engine.url, self.head_revision())
        cfg = alembic_config(self.url)
        with self.engine.begin() as conn:
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, "head")

    def dispose(self) -> None:
        """Close every pooled connection."""
        self.engine.dispose()
