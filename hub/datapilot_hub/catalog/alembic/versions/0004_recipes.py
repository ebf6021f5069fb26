"""saved transformation recipes

Revision ID: 0004
Revises: 0002
Create Date: 2026-11-27
"""

import sqlalchemy as sa
from alembic import op
from datapilot_hub.catalog._rls import disable_tenant_rls, enable_tenant_rls

revision = "0004"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "recipes",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("organization_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=63), nullable=False),
        sa.Column("source", sa.String(length=63), nullable=False),
        sa.Column("steps", sa.Text(), nullable=False),
        sa.Column("output", sa.String(length=63), nullable=False),
        sa.Column("versions", sa.Text(), nullable=False),
        sa.Column("auto_refresh", sa.Boolean(), nullable=False),
        sa.Column("created_by", sa.String(length=255), nullable=False),
        sa.Column("created", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_job", sa.String(length=32), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(["organization_id"], ["organizations.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("organization_id", "name"),
    )
    op.create_index(
        op.f("ix_recipes_organization_id"), "recipes", ["organization_id"], unique=False
    )
    if op.get_bind().dialect.name == "postgresql":
        for statement in enable_tenant_rls("recipes"):
            op.execute(statement)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for statement in disable_tenant_rls("recipes"):
            op.execute(statement)
    op.drop_index(op.f("ix_recipes_organization_id"), table_name="recipes")
    op.drop_table("recipes")
