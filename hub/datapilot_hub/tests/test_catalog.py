"""The catalog on SQLite and PostgreSQL: migrations, scoping, row-level security."""

from __future__ import annotations

import pytest
from alembic import command
from sqlalchemy import inspect, select, text

from datapilot_hub.catalog import (
    TENANT_TABLES,
    AuditEvent,
    Base,
    Catalog,
    Dataset,
    Job,
    Membership,
    Organization,
    alembic_config,
)


def test_migrations_match_the_models(catalog):
    tables = set(inspect(catalog.engine).get_table_names()) - {"alembic_version"}
    assert tables == set(Base.metadata.tables)
    assert catalog.current_revision() == catalog.head_revision()
    for name in TENANT_TABLES:
        assert "organization_id" in Base.metadata.tables[name].columns


def test_upgrade_is_idempotent(catalog):
    catalog.upgrade()
    assert catalog.current_revision() == catalog.head_revision()


def test_downgrade_and_upgrade_again(tmp_path):
    url = f"sqlite:///{tmp_path}/c.sqlite"
    cat = Catalog(url)
    cat.upgrade()
    command.downgrade(alembic_config(url), "base")
    assert set(inspect(cat.engine).get_table_names()) <= {"alembic_version"}
    cat.upgrade()
    assert "datasets" in inspect(cat.engine).get_table_names()
    cat.dispose()


def test_a_session_must_name_its_scope(catalog):
    with pytest.raises(ValueError):
        with catalog.session():
            pass
    with pytest.raises(ValueError):
        with catalog.session(1, system=True):
            pass


def test_session_rolls_back_on_error(catalog):
    with pytest.raises(RuntimeError):
        with catalog.session(system=True) as db:
            db.add(Organization(slug="gone", name="Gone"))
            db.flush()
            raise RuntimeError("boom")
    with catalog.session(system=True) as db:
        assert Organization.find(db, "gone") is None


def _seed(catalog):
    with catalog.session(system=True) as db:
        a, b = Organization(slug="org-a", name="A"), Organization(slug="org-b", name="B")
        db.add_all([a, b])
        db.flush()
        ids = a.id, b.id
    for org_id in ids:
        with catalog.session(org_id) as db:
            db.add(Membership(organization_id=org_id, user_name=f"u{org_id}", role="admin"))
            db.add(Dataset(organization_id=org_id, name=f"d{org_id}", created_by="u"))
            db.add(Job(organization_id=org_id, kind="ingest", created_by="u"))
            db.add(AuditEvent(organization_id=org_id, user_name="u", action="test"))
    return ids


def test_find_helpers_are_scoped_to_the_organization(catalog):
    a, b = _seed(catalog)
    with catalog.session(b) as db:
        assert Dataset.find(db, b, f"d{a}") is None
        assert Dataset.find(db, b, f"d{b}") is not None
        assert Membership.find(db, b, f"u{a}") is None


@pytest.mark.db
def test_row_level_security_hides_other_organizations(request):
    """A query with no filter at all, run in B's scope, returns none of A's rows."""
    catalog = request.getfixturevalue("pg_catalog")
    with catalog.engine.begin() as conn:
        conn.execute(text("TRUNCATE organizations RESTART IDENTITY CASCADE"))
    a, b = _seed(catalog)
    models = {m.__tablename__: m for m in (Membership, Dataset, Job, AuditEvent)}
    for table in TENANT_TABLES:
        with catalog.session(b) as db:
            rows = db.execute(text(f"SELECT organization_id FROM {table}")).scalars().all()
            assert a not in rows, table
        if table in models:
            with catalog.session(b) as db:
                orm_rows = db.scalars(select(models[table])).all()
                assert {r.organization_id for r in orm_rows} == {b}, table
    # writing into another organization is refused by the policy, not just filtered
    with pytest.raises(Exception, match="row-level security"):
        with catalog.session(b) as db:
            db.add(Dataset(organization_id=a, name="sneaky", created_by="u"))
            db.flush()
    # and an update aimed at A's rows touches nothing
    with catalog.session(b) as db:
        result = db.execute(
            text("UPDATE datasets SET name = 'pwned' WHERE organization_id = :a"), {"a": a}
        )
        assert result.rowcount == 0
    with catalog.session(system=True) as db:
        assert db.scalar(select(Dataset.name).where(Dataset.organization_id == a)) == f"d{a}"


@pytest.mark.db
def test_row_level_security_holds_for_a_superuser_connection(request):
    """The tests connect as a superuser; the tenant role still cannot bypass the policy."""
    catalog = request.getfixturevalue("pg_catalog")
    with catalog.engine.connect() as conn:
        assert conn.execute(
            text("SELECT rolsuper FROM pg_roles WHERE rolname = current_user")
        ).scalar()
    with catalog.session(1) as db:
        assert db.execute(text("SELECT current_user")).scalar() == "datapilot_tenant"
        bypass = db.execute(
            text("SELECT rolbypassrls OR rolsuper FROM pg_roles WHERE rolname = current_user")
        ).scalar()
        assert bypass is False
