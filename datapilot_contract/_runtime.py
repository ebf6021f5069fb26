"""Names of the dashboard runtime, shared by the hub side, the data service and the kernel.

Each organization's dashboards are served by one named server, ``dashboards``, of a hub
user of its own (:func:`runtime_user`) that no person can be: the data service creates
it, shares its server with the organization's members, and the user-name rule refuses
the prefix (:data:`RUNTIME_USER_PREFIX`), so nobody signs up, logs in or is made a
member under that name.
"""

from __future__ import annotations

from typing import Any

#: The hub user serving organization ``<org>``'s dashboards is ``dashboards-<org>``.
RUNTIME_USER_PREFIX = "dashboards-"
#: The name of that user's (only) server.
RUNTIME_SERVER = "dashboards"
#: The start of a viewer token: read-only, one organization, short-lived, minted by the
#: data service for the viewer of a dashboard (never a JupyterHub token).
VIEWER_TOKEN_PREFIX = "dpv1."
#: The request header through which the runtime hands a dashboard's kernel its viewer
#: token; Voilà (``http_header_envs``) puts it in the kernel as ``HTTP_DATAPILOT_TOKEN``.
VIEWER_TOKEN_HEADER = "Datapilot-Token"


def is_runtime_client(client_id: Any) -> bool:
    """Whether an OAuth client id is that of an organization's dashboard server.

    JupyterHub names a server's client ``jupyterhub-user-<user>-<server>``. The only user
    names that start with ``dashboards`` are the dashboard servers' (the user-name rule
    refuses the others), whose only server is ``dashboards``.

    Parameters
    ----------
    client_id : Any
        An OAuth client id.
    """
    head, tail = f"jupyterhub-user-{RUNTIME_USER_PREFIX}", f"-{RUNTIME_SERVER}"
    if not isinstance(client_id, str) or not (
        client_id.startswith(head) and client_id.endswith(tail)
    ):
        return False
    return runtime_org(RUNTIME_USER_PREFIX + client_id[len(head) : -len(tail)]) is not None


def runtime_user(org: str) -> str:
    """The hub user whose ``dashboards`` server serves organization ``org``'s dashboards.

    Parameters
    ----------
    org : str
        An organization slug.
    """
    return f"{RUNTIME_USER_PREFIX}{org}"


def runtime_org(user: Any) -> str | None:
    """The organization whose dashboards hub user ``user`` serves, or None for anyone else.

    Parameters
    ----------
    user : Any
        A hub user name.
    """
    from ._rules import is_org_slug

    if isinstance(user, str) and user.startswith(RUNTIME_USER_PREFIX):
        org = user[len(RUNTIME_USER_PREFIX) :]
        if is_org_slug(org):
            return org
    return None
