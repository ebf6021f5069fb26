"""Row-level-security SQL for tenant tables on PostgreSQL, shared by the migrations.

Migrations call these with the tables they create; change them only by adding a new
migration, since old revisions run them too.
"""

from __future__ import annotations

TENANT_ROLE = "datapilot_tenant"
# an unset org_id matches no row: a forgotten scope shows nothing
IN_SCOPE = "organization_id = NULLIF(current_setting('datapilot.org_id', true), '')::integer"


def create_tenant_role() -> list[str]:
    """Statements that create the tenant role (cluster-wide, so once) and let us use it."""
    return [
        f"""
        DO $$ BEGIN
            IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{TENANT_ROLE}') THEN
                CREATE ROLE {TENANT_ROLE} NOLOGIN NOBYPASSRLS;
            END IF;
        END $$;
        """,
        # the connecting role must be able to SET ROLE to the tenant role
        f"GRANT {TENANT_ROLE} TO CURRENT_USER",
        f"GRANT SELECT ON organizations TO {TENANT_ROLE}",
    ]


def enable_tenant_rls(table: str) -> list[str]:
    """Statements that put ``table`` under the organization-scope policy."""
    return [
        f"GRANT SELECT, INSERT, UPDATE, DELETE ON {table} TO {TENANT_ROLE}",
        f"ALTER TABLE {table} ENABLE ROW LEVEL SECURITY",
        f"ALTER TABLE {table} FORCE ROW LEVEL SECURITY",
        f"CREATE POLICY {table}_org_scope ON {table} USING ({IN_SCOPE}) WITH CHECK ({IN_SCOPE})",
        f"GRANT USAGE ON ALL SEQUENCES IN SCHEMA public TO {TENANT_ROLE}",
    ]


def disable_tenant_rls(table: str) -> list[str]:
    """Statements that undo :func:`enable_tenant_rls`."""
    return [f"DROP POLICY IF EXISTS {table}_org_scope ON {table}"]
