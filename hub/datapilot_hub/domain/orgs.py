"""Organizations and memberships; the hub groups follow the catalog."""

from __future__ import annotations

import logging
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from ..catalog import Catalog, Dataset, DatasetVersion, Membership, Organization
from ..errors import DatapilotError, bad_request, not_found
from ..hubapi import HubClient
from ..permissions import ROLES, permissions_for
from ._identity import Caller, OrgContext, validate_slug

log = logging.getLogger(__name__)

_USER_NAME_MAX = 255


def org_model(org: Organization) -> dict[str, Any]:
    """The JSON model of an organization."""
    return {
        "slug": org.slug,
        "name": org.name,
        "plan": org.plan,
        "created": org.created.isoformat(),
    }


class OrgService:
    """Create organizations and manage their members.

    Parameters
    ----------
    catalog : Catalog
        The catalog.
    hub : HubClient
        Keeps JupyterHub's groups in step; skipped when not configured.
    plans : Plans, optional
        Checks the plan's ``members`` limit and reports usage; none when not given.
    storage : Storage, optional
        Where an organization's files are removed when it is deleted.
    """

    def __init__(
        self, catalog: Catalog, hub: HubClient, plans: Any = None, storage: Any = None
    ) -> None:
        self.catalog = catalog
        self.hub = hub
        self.plans = plans
        self.storage = storage

    def memberships_of(self, user: str) -> list[dict[str, Any]]:
        """Every organization a user belongs to, with role and permissions."""
        with self.catalog.session(system=True) as db:
            rows = db.scalars(
                select(Membership).where(Membership.user_name == user).order_by(Membership.id)
            ).all()
            return [
                {
                    **org_model(m.organization),
                    "role": m.role,
                    "permissions": sorted(permissions_for(m.role)),
                }
                for m in rows
            ]

    async def create(self, caller: Caller, slug: Any, name: Any) -> dict[str, Any]:
        """Create an organization; a user creator becomes its Admin."""
        validate_slug(slug, "slug")
        if name is None:
            name = slug
        if not isinstance(name, str) or not name.strip() or len(name) > 200:
            raise bad_request("name", "name must be a non-empty string of at most 200 characters.")
        try:
            with self.catalog.session(system=True) as db:
                org = Organization(slug=slug, name=name.strip())
                db.add(org)
                db.flush()
                if caller.kind == "user":
                    db.add(Membership(organization_id=org.id, user_name=caller.name, role="admin"))
                model = org_model(org)
        except IntegrityError:
            raise DatapilotError(
                409, "conflict", f"An organization with slug {slug!r} already exists.", slug=slug
            ) from None
        if self.hub.configured:
            await self.hub.ensure_group(slug)
            if caller.kind == "user":
                await self.hub.add_to_group(slug, caller.name)
        return model

    def info(self, ctx: OrgContext) -> dict[str, Any]:
        """The organization with its plan and usage."""
        with self.catalog.session(ctx.org_id) as db:
            org = db.get(Organization, ctx.org_id)
            n_datasets = db.scalar(
                select(func.count())
                .select_from(Dataset)
                .where(Dataset.organization_id == ctx.org_id, Dataset.current_version.is_not(None))
            )
            stored = db.scalar(
                select(func.coalesce(func.sum(DatasetVersion.bytes), 0)).where(
                    DatasetVersion.organization_id == ctx.org_id
                )
            )
            n_members = db.scalar(
                select(func.count())
                .select_from(Membership)
                .where(Membership.organization_id == ctx.org_id)
            )
            model = {
                **org_model(org),
                "role": ctx.role,
                "permissions": sorted(ctx.permissions),
                "usage": {
                    "members": n_members,
                    "datasets": n_datasets,
                    "storage_bytes": int(stored),
                },
            }
        if self.plans is not None:
            usage = self.plans.usage(ctx.org_id)
            model["plan"] = usage.pop("plan")
            model["limits"] = usage.pop("limits")
            model["usage"].update(usage)
        return model

    def members(self, ctx: OrgContext) -> list[dict[str, Any]]:
        """Members and their roles."""
        with self.catalog.session(ctx.org_id) as db:
            rows = db.scalars(
                select(Membership)
                .where(Membership.organization_id == ctx.org_id)
                .order_by(Membership.user_name)
            ).all()
            return [
                {"name": m.user_name, "role": m.role, "since": m.created.isoformat()} for m in rows
            ]

    async def set_member(
        self, ctx: OrgContext, user: str, role: Any
    ) -> tuple[dict[str, Any], bool]:
        """Add a member or change a role; returns the member and whether it was created."""
        ctx.require("members:manage")
        _validate_user_name(user)
        if role not in ROLES:
            raise bad_request(
                "role", f"role must be one of {', '.join(ROLES)}.", code="invalid_role"
            )
        with self.catalog.session(ctx.org_id) as db:
            membership = Membership.find(db, ctx.org_id, user)
            created = membership is None
            if created and self.plans is not None:
                self.plans.check_members(ctx.org_id)
            if created:
                membership = Membership(organization_id=ctx.org_id, user_name=user, role=role)
                db.add(membership)
            else:
                if membership.role == "admin" and role != "admin":
                    self._ensure_other_admin(db, ctx.org_id, user)
                membership.role = role
            db.flush()
            model = {"name": user, "role": role, "since": membership.created.isoformat()}
        if self.hub.configured:
            await self.hub.add_to_group(ctx.slug, user)
        return model, created

    async def remove_member(self, ctx: OrgContext, user: str) -> None:
        """Remove a member; their server for this organization is stopped."""
        ctx.require("members:manage")
        _validate_user_name(user)
        with self.catalog.session(ctx.org_id) as db:
            membership = Membership.find(db, ctx.org_id, user)
            if membership is None:
                raise not_found("member", user)
            if membership.role == "admin":
                self._ensure_other_admin(db, ctx.org_id, user)
            db.delete(membership)
        if self.hub.configured:
            await self.hub.remove_from_group(ctx.slug, user)
            await self.hub.stop_server(user, ctx.slug)

    async def delete(self, caller: Caller, slug: str) -> None:
        """Delete an organization (hub administrators only): its catalog rows, its
        stored files, its hub group, and its members' servers for it."""
        validate_slug(slug)
        if not caller.hub_admin:
            # members and strangers alike: only the hub admin may know more
            with self.catalog.session(system=True) as db:
                org = Organization.find(db, slug)
                member = org is not None and Membership.find(db, org.id, caller.name)
            if not member:
                raise not_found("organization", slug)
            raise DatapilotError(
                403,
                "forbidden",
                "Only hub administrators can delete an organization.",
                permission="hub admin",
            )
        with self.catalog.session(system=True) as db:
            org = Organization.find(db, slug)
            if org is None:
                raise not_found("organization", slug)
            org_id = org.id
            users = [
                m.user_name
                for m in db.scalars(select(Membership).where(Membership.organization_id == org_id))
            ]
            # ON DELETE CASCADE removes memberships, datasets, jobs, invitations, usage
            db.delete(org)
        log.warning("Organization %s (id %s) deleted by %s", slug, org_id, caller.name)
        if self.storage is not None:
            self.storage.remove(self.storage.org_prefix(org_id))
        if self.hub.configured:
            for user in users:
                await self.hub.stop_server(user, slug)
            await self.hub.delete_group(slug)

    @staticmethod
    def _ensure_other_admin(db, org_id: int, user: str) -> None:
        others = db.scalar(
            select(func.count())
            .select_from(Membership)
            .where(
                Membership.organization_id == org_id,
                Membership.role == "admin",
                Membership.user_name != user,
            )
        )
        if not others:
            raise DatapilotError(
                409,
                "last_admin",
                "The last Admin of an organization cannot be removed or demoted.",
                user=user,
            )

    async def sync_hub_groups(self) -> None:
        """Make every organization's hub group hold exactly its members (at start)."""
        if not self.hub.configured:
            return
        with self.catalog.session(system=True) as db:
            wanted: dict[str, set[str]] = {
                org.slug: set() for org in db.scalars(select(Organization)).all()
            }
            for m in db.scalars(select(Membership)).all():
                wanted[m.organization.slug].add(m.user_name)
        for slug, users in wanted.items():
            current = await self.hub.group_members(slug)
            if current is None:
                await self.hub.ensure_group(slug)
                current = set()
            for user in sorted(users - current):
                await self.hub.add_to_group(slug, user)
            for user in sorted(current - users):
                await self.hub.remove_from_group(slug, user)


def _validate_user_name(user: str) -> None:
    if not user or len(user) > _USER_NAME_MAX or "/" in user or user != user.strip():
        raise bad_request("user", f"{user!r} is not a valid user name.", code="invalid_name")
