"""Roles and the permissions they grant: the one table every check reads.

Checks always ask for a permission (``"data:import"``), never for a role name, so a
role can change without touching a handler. The rules for slugs and names are in
:mod:`datapilot_contract`.
"""

from __future__ import annotations

#: Every permission, with what it allows.
PERMISSIONS: dict[str, str] = {
    "data:read": "list datasets and read their rows",
    "data:import": "upload files and save dataframes as datasets",
    "data:transform": "run transformations that write datasets",
    "data:delete": "delete datasets and cancel other people's jobs",
    "notebooks:run": "start a notebook server for the organization",
    "dashboards:view": "open the organization's published dashboards",
    "dashboards:publish": "publish notebooks as dashboards",
    "dashboards:manage": "unpublish or change anyone's dashboards",
    "insights:run": "compute automatic insights",
    "audit:read": "read the organization's audit log",
    "members:manage": "add, remove and change the role of members; invitations",
    "org:manage": "change the organization's settings and plan",
}

_VIEWER = frozenset({"data:read", "dashboards:view"})
_ANALYST = _VIEWER | {
    "data:import",
    "data:transform",
    "notebooks:run",
    "dashboards:publish",
    "insights:run",
}
_MANAGER = _ANALYST | {"data:delete", "dashboards:manage", "audit:read"}
_ADMIN = _MANAGER | {"members:manage", "org:manage"}

#: Role name -> the permissions it grants.
ROLE_PERMISSIONS: dict[str, frozenset[str]] = {
    "admin": frozenset(_ADMIN),
    "manager": frozenset(_MANAGER),
    "analyst": frozenset(_ANALYST),
    "viewer": frozenset(_VIEWER),
}

ROLES = tuple(ROLE_PERMISSIONS)


def permissions_for(role: str | None) -> frozenset[str]:
    """The permissions a role grants; none for an unknown or missing role.

    Parameters
    ----------
    role : str or None
        A role name from :data:`ROLES`.
    """
    return ROLE_PERMISSIONS.get(role or "", frozenset())


def has_permission(role: str | None, permission: str) -> bool:
    """Whether ``role`` grants ``permission``.

    Parameters
    ----------
    role : str or None
        A role name.
    permission : str
        A key of :data:`PERMISSIONS`; an unknown one is a programming error.
    """
    if permission not in PERMISSIONS:
        raise KeyError(f"unknown permission {permission!r}")
    return permission in permissions_for(role)


def hub_group(slug: str) -> str:
    """The JupyterHub group that mirrors an organization's members.

    Parameters
    ----------
    slug : str
        The organization slug.
    """
    return f"org-{slug}"
