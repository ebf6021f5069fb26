"""Who is calling, and what they may do in an organization."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from datapilot_contract import SERVICE_PREFIX, check_org_slug, runtime_org

from ..catalog import Catalog, Membership, Organization
from ..errors import DatapilotError, checked, not_found
from ..permissions import PERMISSIONS, permissions_for


@dataclass(frozen=True)
class Caller:
    """An authenticated caller, as JupyterHub identified it.

    Parameters
    ----------
    name : str
        User name, or ``service:<name>`` for a service token.
    kind : str
        ``"user"`` or ``"service"``.
    hub_admin : bool
        A JupyterHub administrator (every organization, every permission).
    orgs : frozenset of str, optional
        The only organizations this token may act in: a notebook server's token acts
        for the server's organization alone. None: no such bound (a login cookie, a
        personal API token, a service).
    only : frozenset of str, optional
        The most this token may do, whatever the caller's role allows: a dashboard's
        viewer token reads (``data:read``) and nothing else. None: the role decides.
    dashboard : str, optional
        ``<org>/<slug>`` of the dashboard a viewer token was minted for (the audit log
        says through which dashboard a viewer read).
    """

    name: str
    kind: str = "user"
    hub_admin: bool = False
    orgs: frozenset[str] | None = None
    only: frozenset[str] | None = None
    dashboard: str | None = None

    @classmethod
    def from_hub_model(cls, model: dict[str, Any]) -> Caller:
        """Build from the model ``HubAuth`` returns for a token or cookie."""
        kind = model.get("kind", "user")
        name = model["name"] if kind == "user" else f"{SERVICE_PREFIX}{model['name']}"
        scopes = set(model.get("scopes") or ())
        # a user's login cookie carries only access scopes, so the admin flag of the
        # identify model decides for users; a service counts when it may administer users
        hub_admin = bool(model.get("admin")) or (kind == "service" and "admin:users" in scopes)
        orgs = _server_orgs(name, scopes) if kind == "user" else None
        viewer = model.get("datapilot_viewer")
        if viewer:
            # a dashboard's viewer token: one organization, reads only (viewer_tokens.py)
            from .viewer_tokens import VIEWER_TOKEN_PERMISSIONS

            return cls(
                name=name,
                orgs=frozenset({viewer["org"]}),
                only=VIEWER_TOKEN_PERMISSIONS,
                dashboard=f"{viewer['org']}/{viewer['dashboard']}",
            )
        served = runtime_org(name) if kind == "user" else None
        if served is not None:
            # the hub user of an organization's dashboard server (no person, no member):
            # its server's token is named after the server, never after an organization
            orgs = frozenset({served})
        return cls(name=name, kind=kind, hub_admin=hub_admin, orgs=orgs)

    def may_act_in(self, slug: str) -> bool:
        """Whether this token may act in organization ``slug`` at all (see :attr:`orgs`).

        Parameters
        ----------
        slug : str
            An organization slug.
        """
        return self.orgs is None or slug in self.orgs


def _server_orgs(user: str, scopes: set[str]) -> frozenset[str] | None:
    """The organizations of the servers a token is limited to, or None when it is not.

    A server's token (``c.Spawner.server_token_scopes``) reaches servers only through
    ``access:servers!server=<user>/<server>``, and a server's name is its organization;
    a login cookie has no ``access:servers`` scope and a personal token a wider one
    (``access:servers!user=...``), and neither is bound.
    """
    access = [s for s in scopes if s == "access:servers" or s.startswith("access:servers!")]
    own = f"access:servers!server={user}/"
    if not access or not all(s.startswith(own) for s in access):
        return None
    return frozenset(s[len(own) :] for s in access)


@dataclass(frozen=True)
class OrgContext:
    """A caller inside one organization: the org, their role and permissions."""

    caller: Caller
    org_id: int
    slug: str
    org_name: str
    role: str | None
    permissions: frozenset[str] = field(default_factory=frozenset)

    def require(self, permission: str) -> None:
        """Raise 403 unless the caller holds ``permission`` here.

        Parameters
        ----------
        permission : str
            A key of :data:`~datapilot_hub.permissions.PERMISSIONS`.
        """
        if permission not in PERMISSIONS:
            raise KeyError(permission)
        if permission not in self.permissions:
            raise DatapilotError(
                403,
                "forbidden",
                f"Your role in {self.slug!r} ({self.role or 'none'}) does not allow {permission}.",
                permission=permission,
                role=self.role,
            )


def validate_slug(slug: Any, field_name: str = "org") -> str:
    """Return ``slug`` or raise 400 when it is not a valid organization slug."""
    return checked(check_org_slug, slug, field_name)


def org_context(catalog: Catalog, caller: Caller, slug: str) -> OrgContext:
    """Resolve the caller's standing in an organization.

    Non-members get the same 404 as for an organization that does not exist, so the
    existence of other organizations does not leak.

    Parameters
    ----------
    catalog : Catalog
        The catalog.
    caller : Caller
        Who is asking.
    slug : str
        The organization slug from the URL.
    """
    validate_slug(slug)
    if not caller.may_act_in(slug):
        # a notebook server's token, used for another organization of its user
        raise not_found("organization", slug)
    with catalog.session(system=True) as db:
        org = Organization.find(db, slug)
        if org is None:
            raise not_found("organization", slug)
        membership = Membership.find(db, org.id, caller.name)
        role = membership.role if membership else None
        if role is None and not caller.hub_admin:
            raise not_found("organization", slug)
        perms = permissions_for("admin") if caller.hub_admin else permissions_for(role)
        if caller.only is not None:
            perms = perms & caller.only
        return OrgContext(caller, org.id, org.slug, org.name, role, perms)
