"""Organizations and memberships; the hub groups follow the catalog.

A change is all or nothing across the catalog and JupyterHub: the hub is asked first
(it may refuse a user name, or be out of reach), the catalog written only once it agreed,
and the hub's part undone when the catalog write fails after all. A crash between the two
leaves at most a hub group member the catalog does not know, which the service removes
when it starts (:meth:`OrgService.sync_hub_groups`).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from datapilot_contract import INVALID_NAME, ORG_NAME, check_user_name

from ..catalog import Catalog, Dataset, DatasetVersion, Membership, Organization
from ..errors import DatapilotError, bad_request, checked, not_found
from ..hubapi import HubAPIError, HubClient, HubRefusedError
from ..permissions import ROLES, permissions_for
from ._identity import Caller, OrgContext, validate_slug

log = logging.getLogger(__name__)


def org_model(org: Organization) -> dict[str, Any]:
    """The JSON model of an organization."""
    return {
        "slug": org.slug,
        "name": org.name,
        "plan": org.plan,
        "created": org.created.isoformat(),
    }


def validate_org_name(name: Any, field: str = "name") -> str:
    """An organization's display name, stripped; a 400 naming ``field`` when it breaks
    :data:`datapilot_contract.ORG_NAME`.

    Parameters
    ----------
    name : Any
        What the caller sent.
    field : str
        The field, for the error.
    """
    if not ORG_NAME.matches(name):
        raise bad_request(field, f"{field} must be {ORG_NAME.rule}.")
    return name.strip()


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
        """Create an organization; a user creator becomes its Admin.

        The hub group is made (and the creator added) first; the organization exists only
        once both the hub and the catalog have it.
        """
        validate_slug(slug, "slug")
        name = slug if name is None else validate_org_name(name)
        with self.catalog.session(system=True) as db:
            if Organization.find(db, slug) is not None:
                raise _slug_taken(slug)
        creator = caller.name if caller.kind == "user" else None
        group_made = False
        if self.hub.configured:
            try:
                group_made = await self.hub.ensure_group(slug)
                if creator is not None:
                    await self.hub.add_to_group(slug, creator)
            except HubAPIError as e:
                if group_made:
                    await _best_effort(self.hub.delete_group(slug), f"the group of {slug}")
                raise _hub_failed(e, creator) from None
        try:
            with self.catalog.session(system=True) as db:
                # a new organization starts on the configured default plan ($DATAPILOT_DEFAULT_PLAN)
                plan = self.plans.default_plan if self.plans is not None else "free"
                org = Organization(slug=slug, name=name, plan=plan)
                db.add(org)
                db.flush()
                if creator is not None:
                    db.add(Membership(organization_id=org.id, user_name=creator, role="admin"))
                model = org_model(org)
        except Exception as e:
            if group_made and not isinstance(e, IntegrityError):
                await _best_effort(self.hub.delete_group(slug), f"the group of {slug}")
            elif creator is not None:
                # e.g. another creation of this slug won the race: the group is theirs
                await resync_hub_member(self.catalog, self.hub, slug, creator)
            if isinstance(e, IntegrityError):
                raise _slug_taken(slug) from None
            raise
        await self.publish_group(slug)
        return model

    async def publish_group(self, slug: str) -> None:
        """Bring the organization's hub group properties in step (:func:`publish_hub_group`).

        Parameters
        ----------
        slug : str
            The organization.
        """
        await publish_hub_group(self.catalog, self.hub, slug)

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
        """Add a member or change a role; returns the member and whether it was created.

        A name JupyterHub refuses is a 400 naming the user, and leaves no membership. A
        member whose new role has no notebook servers loses their running one for the
        organization.
        """
        ctx.require("members:manage")
        checked(check_user_name, user, "user")
        if role not in ROLES:
            raise bad_request(
                "role", f"role must be one of {', '.join(ROLES)}.", code="invalid_role"
            )
        # what the catalog allows is checked before the hub is asked, and again as it is written
        with self.catalog.session(ctx.org_id) as db:
            self._check_member_change(db, ctx.org_id, user, role)
        await join_hub_group(self.hub, ctx.slug, user)
        try:
            with self.catalog.session(ctx.org_id) as db:
                membership, created = self._check_member_change(db, ctx.org_id, user, role)
                if created:
                    membership = Membership(organization_id=ctx.org_id, user_name=user, role=role)
                    db.add(membership)
                else:
                    membership.role = role
                db.flush()
                model = {"name": user, "role": role, "since": membership.created.isoformat()}
        except Exception as e:
            await resync_hub_member(self.catalog, self.hub, ctx.slug, user)
            if isinstance(e, IntegrityError):
                raise DatapilotError(
                    409,
                    "conflict",
                    f"The membership of {user!r} changed at the same time; try again.",
                    user=user,
                ) from None
            raise
        if not created and "notebooks:run" not in permissions_for(role) and self.hub.configured:
            # a new role without notebook servers (a Viewer) keeps no running one either
            await _best_effort(
                self.hub.stop_server(user, ctx.slug), f"the server {user}/{ctx.slug}"
            )
        await self.publish_group(ctx.slug)
        return model, created

    def _check_member_change(
        self, db, org_id: int, user: str, role: str
    ) -> tuple[Membership | None, bool]:
        """The current membership and whether it would be created; raises when refused."""
        membership = Membership.find(db, org_id, user)
        created = membership is None
        if created and self.plans is not None:
            self.plans.check_members(org_id)
        if not created and membership.role == "admin" and role != "admin":
            self._ensure_other_admin(db, org_id, user)
        return membership, created

    async def remove_member(self, ctx: OrgContext, user: str) -> None:
        """Remove a member; their server for this organization is stopped.

        Any name that is not a member is a 404, also one the user-name rule refuses: a
        membership made before the rule must stay removable.
        """
        ctx.require("members:manage")
        if not isinstance(user, str) or not user:
            raise bad_request("user", "user must be a non-empty user name.", code=INVALID_NAME)
        if "\x00" in user:
            # no member's name holds one (PostgreSQL could not even look it up)
            raise not_found("member", user)
        with self.catalog.session(ctx.org_id) as db:
            self._check_removal(db, ctx.org_id, user)
        if self.hub.configured:
            try:
                await self.hub.remove_from_group(ctx.slug, user)
            except HubAPIError as e:
                raise _hub_failed(e) from None
        try:
            with self.catalog.session(ctx.org_id) as db:
                db.delete(self._check_removal(db, ctx.org_id, user))
        except Exception:
            # still a member after all (the last Admin, or a failed write): back in the group
            await resync_hub_member(self.catalog, self.hub, ctx.slug, user)
            raise
        if self.hub.configured:
            await _best_effort(
                self.hub.stop_server(user, ctx.slug), f"the server {user}/{ctx.slug}"
            )
        await self.publish_group(ctx.slug)

    def _check_removal(self, db, org_id: int, user: str) -> Membership:
        """The membership to remove; 404 when there is none, 409 for the last Admin."""
        membership = Membership.find(db, org_id, user)
        if membership is None:
            raise not_found("member", user)
        if membership.role == "admin":
            self._ensure_other_admin(db, org_id, user)
        return membership

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
            orgs = db.scalars(select(Organization)).all()
            wanted: dict[str, set[str]] = {org.slug: set() for org in orgs}
            for m in db.scalars(select(Membership)).all():
                wanted[m.organization.slug].add(m.user_name)
        for slug, users in wanted.items():
            current = await self.hub.group_members(slug)
            if current is None:
                await self.hub.ensure_group(slug)
                current = set()
            for user in sorted(users - current):
                try:
                    await self.hub.add_to_group(slug, user)
                except HubRefusedError as e:
                    # a membership made before the hub's refusals were checked: the others
                    # are still brought in step
                    log.warning("Member %r of %s is not a name the hub accepts: %s", user, slug, e)
            for user in sorted(current - users):
                await self.hub.remove_from_group(slug, user)
            await self.publish_group(slug)


async def join_hub_group(hub: HubClient, slug: str, user: str) -> None:
    """Add ``user`` to the organization's hub group (the hub user made if needed).

    Parameters
    ----------
    hub : HubClient
        The hub; nothing is done when it is not configured.
    slug : str
        The organization.
    user : str
        The user name.

    Raises
    ------
    DatapilotError
        400 naming the user when the hub refuses the name; 502 when the hub could not be
        asked or failed.
    """
    if not hub.configured:
        return
    try:
        await hub.add_to_group(slug, user)
    except HubAPIError as e:
        raise _hub_failed(e, user) from None


async def resync_hub_member(catalog: Catalog, hub: HubClient, slug: str, user: str) -> None:
    """Make the hub group agree with the catalog about ``user``, after a half-done change.

    For a change the hub carried out and the catalog then did not (or the other way
    round): ``user`` is put in the group or taken out, as the catalog's membership says.
    Best effort: a failure is logged, and the service reconciles every group when it
    starts.

    Parameters
    ----------
    catalog : Catalog
        The catalog, which decides.
    hub : HubClient
        The hub; nothing is done when it is not configured.
    slug : str
        The organization.
    user : str
        The user name.
    """
    if not hub.configured:
        return
    with catalog.session(system=True) as db:
        org = Organization.find(db, slug)
        member = org is not None and Membership.find(db, org.id, user) is not None
    call = hub.add_to_group if member else hub.remove_from_group
    await _best_effort(call(slug, user), f"{user} in the group of {slug}")


async def publish_hub_group(catalog: Catalog, hub: HubClient, slug: str) -> None:
    """Publish in the organization's hub group what the hub's own pages show of it.

    The properties hold the organization's display name (``datapilot_name``) and the
    members who may run a notebook server in it (``datapilot_notebook_users``), so that
    the hub home lists a start button only to them (``templates/home.html``): a Viewer
    never sees an action the spawner would refuse. Best effort: without them the home
    falls back to the slug and to the spawner's explained refusal, and every group is
    published again when the service starts (:meth:`OrgService.sync_hub_groups`).

    Parameters
    ----------
    catalog : Catalog
        The catalog, which decides.
    hub : HubClient
        The hub; nothing is done when it is not configured.
    slug : str
        The organization.
    """
    if not hub.configured:
        return
    with catalog.session(system=True) as db:
        org = Organization.find(db, slug)
        if org is None:
            return
        members = db.scalars(select(Membership).where(Membership.organization_id == org.id))
        properties = {
            "datapilot_name": org.name,
            "datapilot_notebook_users": sorted(
                m.user_name for m in members if "notebooks:run" in permissions_for(m.role)
            ),
        }
    await _best_effort(hub.set_group_properties(slug, properties), f"the group of {slug}")


async def _best_effort(call: Awaitable[Any], what: str) -> None:
    """Await a hub call that follows or undoes a change; a failure is logged, not raised."""
    try:
        await call
    except HubAPIError:
        log.exception("JupyterHub: could not bring %s in step; fixed at the next start", what)


def _slug_taken(slug: str) -> DatapilotError:
    return DatapilotError(
        409, "conflict", f"An organization with slug {slug!r} already exists.", slug=slug
    )


def _hub_failed(error: HubAPIError, user: str | None = None) -> DatapilotError:
    """The answer when JupyterHub refused or failed a change; nothing was changed."""
    if isinstance(error, HubRefusedError) and user is not None:
        return DatapilotError(
            400,
            INVALID_NAME,
            f"JupyterHub refuses the user name {user!r} ({error.reason}); nothing was changed.",
            field="user",
            user=user,
        )
    log.error("JupyterHub failed a change: %s", error)
    return DatapilotError(
        502,
        "hub_unavailable",
        "JupyterHub did not carry out the change (see the data service's log); nothing was"
        " changed. Try again.",
    )
