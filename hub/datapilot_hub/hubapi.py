"""The data service's client of JupyterHub's REST API, with the service's own token.

Used to keep the hub groups (one per organization) in step with the catalog's
memberships and to ask whether a user is a hub administrator.
"""

from __future__ import annotations

import logging
import os
import time
from typing import Any
from urllib.parse import quote

import httpx

from .permissions import hub_group

log = logging.getLogger(__name__)


class HubAPIError(Exception):
    """JupyterHub answered an unexpected status."""


class HubClient:
    """Calls to ``$JUPYTERHUB_API_URL`` with ``$JUPYTERHUB_API_TOKEN``.

    Parameters
    ----------
    api_url : str, optional
        The hub's API URL (``http://127.0.0.1:8081/hub/api``).
    token : str, optional
        The service's API token.
    """

    def __init__(self, api_url: str | None = None, token: str | None = None) -> None:
        self.api_url = (api_url or os.environ.get("JUPYTERHUB_API_URL", "")).rstrip("/")
        token = token or os.environ.get("JUPYTERHUB_API_TOKEN", "")
        self.client = httpx.AsyncClient(headers={"Authorization": f"token {token}"}, timeout=30)
        self._admin_cache: dict[str, tuple[float, bool]] = {}

    @property
    def configured(self) -> bool:
        """Whether there is a hub to talk to (not when the service runs standalone)."""
        return bool(self.api_url)

    async def request(
        self, method: str, path: str, ok: tuple[int, ...] = (200, 201, 204), **kw: Any
    ) -> Any:
        """One API call; returns the JSON body (or None)."""
        resp = await self.client.request(method, f"{self.api_url}{path}", **kw)
        if resp.status_code not in ok:
            raise HubAPIError(f"{method} {path}: {resp.status_code} {resp.text[:200]}")
        return (
            resp.json() if resp.content and "json" in resp.headers.get("content-type", "") else None
        )

    async def ensure_user(self, name: str) -> None:
        """Create the hub user if it does not exist yet."""
        await self.request("POST", f"/users/{quote(name)}", ok=(201, 409))

    async def ensure_group(self, slug: str) -> None:
        """Create the organization's hub group if it does not exist yet."""
        await self.request("POST", f"/groups/{quote(hub_group(slug))}", ok=(201, 409))

    async def delete_group(self, slug: str) -> None:
        """Delete the organization's hub group."""
        await self.request("DELETE", f"/groups/{quote(hub_group(slug))}", ok=(204, 404))

    async def add_to_group(self, slug: str, user: str) -> None:
        """Add a user (created if needed) to the organization's group."""
        await self.ensure_user(user)
        await self.ensure_group(slug)
        await self.request(
            "POST", f"/groups/{quote(hub_group(slug))}/users", json={"users": [user]}
        )

    async def remove_from_group(self, slug: str, user: str) -> None:
        """Remove a user from the organization's group."""
        await self.request(
            "DELETE",
            f"/groups/{quote(hub_group(slug))}/users",
            json={"users": [user]},
            ok=(200, 404),
        )

    async def group_members(self, slug: str) -> set[str] | None:
        """The members of the organization's group, None when the group is missing."""
        resp = await self.client.get(f"{self.api_url}/groups/{quote(hub_group(slug))}")
        if resp.status_code == 404:
            return None
        resp.raise_for_status()
        return set(resp.json().get("users", []))

    async def stop_server(self, user: str, server: str) -> None:
        """Stop a user's named server (a no-op when it is not running)."""
        await self.request(
            "DELETE", f"/users/{quote(user)}/servers/{quote(server)}", ok=(202, 204, 400, 404)
        )

    async def is_admin(self, user: str, ttl: float = 60) -> bool:
        """Whether a user is a hub administrator (cached for ``ttl`` seconds)."""
        now = time.monotonic()
        cached = self._admin_cache.get(user)
        if cached and now - cached[0] < ttl:
            return cached[1]
        resp = await self.client.get(f"{self.api_url}/users/{quote(user)}")
        admin = resp.status_code == 200 and bool(resp.json().get("admin"))
        self._admin_cache[user] = (now, admin)
        return admin

    async def close(self) -> None:
        """Close the connection pool."""
        await self.client.aclose()
