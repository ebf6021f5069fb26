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

from datapilot_contract import RUNTIME_SERVER, runtime_user

from .permissions import hub_group

log = logging.getLogger(__name__)


class HubAPIError(Exception):
    """JupyterHub could not be reached, or answered an unexpected status."""


class HubRefusedError(HubAPIError):
    """JupyterHub refused the input (400), e.g. a user name its authenticator does not allow.

    Parameters
    ----------
    text : str
        What was called and answered, for the log.
    reason : str
        The hub's own message (``"Failed to create user: bob smith"``).
    """

    def __init__(self, text: str, reason: str) -> None:
        super().__init__(text)
        self.reason = reason


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

    async def send(
        self, method: str, path: str, ok: tuple[int, ...] = (200, 201, 204), **kw: Any
    ) -> httpx.Response:
        """One API call; returns the response when its status is in ``ok``.

        Raises
        ------
        HubRefusedError
            The hub answered 400 (and 400 is not in ``ok``).
        HubAPIError
            Any other status outside ``ok``, or no answer at all.
        """
        try:
            resp = await self.client.request(method, f"{self.api_url}{path}", **kw)
        except httpx.HTTPError as e:
            raise HubAPIError(f"{method} {path}: {e!r}") from e
        if resp.status_code not in ok:
            text = f"{method} {path}: {resp.status_code} {resp.text[:200]}"
            if resp.status_code == 400:
                raise HubRefusedError(text, _hub_message(resp))
            raise HubAPIError(text)
        return resp

    async def request(
        self, method: str, path: str, ok: tuple[int, ...] = (200, 201, 204), **kw: Any
    ) -> Any:
        """One API call (see :meth:`send`); returns the JSON body (or None)."""
        resp = await self.send(method, path, ok, **kw)
        return (
            resp.json() if resp.content and "json" in resp.headers.get("content-type", "") else None
        )

    async def ensure_user(self, name: str) -> None:
        """Create the hub user if it does not exist yet."""
        await self.request("POST", f"/users/{quote(name, safe='')}", ok=(201, 409))

    async def ensure_group(self, slug: str) -> bool:
        """Create the organization's hub group if it does not exist yet; True if created."""
        resp = await self.send("POST", f"/groups/{quote(hub_group(slug))}", ok=(201, 409))
        return resp.status_code == 201

    async def set_group_properties(self, slug: str, properties: dict[str, Any]) -> None:
        """Replace the properties of the organization's group (what the hub pages show)."""
        await self.request("PUT", f"/groups/{quote(hub_group(slug))}/properties", json=properties)

    async def delete_group(self, slug: str) -> None:
        """Delete the organization's hub group, and its dashboard server's hub user."""
        await self.request("DELETE", f"/groups/{quote(hub_group(slug))}", ok=(204, 404))
        await self.request("DELETE", f"/users/{quote(runtime_user(slug))}", ok=(204, 404))

    async def add_to_group(self, slug: str, user: str) -> None:
        """Add a user (created if needed) to the organization's group."""
        await self.ensure_user(user)
        await self.ensure_group(slug)
        await self.request(
            "POST", f"/groups/{quote(hub_group(slug))}/users", json={"users": [user]}
        )
        await self.share_dashboards(slug, user)

    async def remove_from_group(self, slug: str, user: str) -> None:
        """Remove a user from the organization's group (done when either is missing)."""
        try:
            await self.request(
                "DELETE",
                f"/groups/{quote(hub_group(slug))}/users",
                json={"users": [user]},
                ok=(200, 404),
            )
        except HubRefusedError:
            # "No such user": a name the hub never had (or refuses) is in no group
            pass
        await self.unshare_dashboards(slug, user)

    # ---- the organization's dashboard server (domain/dashboard_runtime.py) ----------------
    # Members reach it through a share of that one server each, granted when they join and
    # revoked when they leave: a group share (or `access:servers!group=`) would not reach
    # their tokens on JupyterHub 6.1 (or would open every member's own servers).

    def _shares_path(self, slug: str) -> str:
        return f"/shares/{quote(runtime_user(slug))}/{RUNTIME_SERVER}"

    async def share_dashboards(self, slug: str, user: str) -> bool:
        """Let ``user`` open the organization's dashboard server; False when it has none yet.

        The server's first start shares it with every member then
        (:meth:`~datapilot_hub.domain.dashboard_runtime.RuntimeServers.ensure_running`).
        """
        resp = await self.send("POST", self._shares_path(slug), ok=(200, 404), json={"user": user})
        return resp.status_code == 200

    async def unshare_dashboards(self, slug: str, user: str) -> None:
        """Take back ``user``'s share of the organization's dashboard server (if any)."""
        try:
            await self.send("PATCH", self._shares_path(slug), ok=(200, 404), json={"user": user})
        except HubRefusedError:
            pass  # a user the hub does not know shares nothing

    async def dashboard_shares(self, slug: str) -> set[str] | None:
        """The users the organization's dashboard server is shared with (None: no server)."""
        resp = await self.send("GET", self._shares_path(slug), ok=(200, 404))
        if resp.status_code == 404:
            return None
        return {s["user"]["name"] for s in resp.json().get("items", []) if s.get("user")}

    async def server_model(self, user: str, server: str) -> dict[str, Any] | None:
        """The hub's model of a user's named server, None when it has none (or no user)."""
        resp = await self.send("GET", f"/users/{quote(user, safe='')}", ok=(200, 404))
        if resp.status_code == 404:
            return None
        return resp.json().get("servers", {}).get(server)

    async def start_named_server(self, user: str, server: str) -> None:
        """Ask the hub to start a named server (done when it is running or starting)."""
        await self.send(
            "POST", f"/users/{quote(user, safe='')}/servers/{quote(server)}", ok=(201, 202, 400)
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
            "DELETE",
            f"/users/{quote(user, safe='')}/servers/{quote(server)}",
            ok=(202, 204, 400, 404),
        )

    async def is_admin(self, user: str, ttl: float = 60) -> bool:
        """Whether a user is a hub administrator (cached for ``ttl`` seconds)."""
        now = time.monotonic()
        cached = self._admin_cache.get(user)
        if cached and now - cached[0] < ttl:
            return cached[1]
        resp = await self.client.get(f"{self.api_url}/users/{quote(user, safe='')}")
        admin = resp.status_code == 200 and bool(resp.json().get("admin"))
        self._admin_cache[user] = (now, admin)
        return admin

    async def close(self) -> None:
        """Close the connection pool."""
        await self.client.aclose()


def _hub_message(resp: httpx.Response) -> str:
    """The ``message`` of a JupyterHub error answer, else its text."""
    try:
        message = resp.json().get("message")
    except (ValueError, AttributeError):
        message = None
    return message if isinstance(message, str) and message else resp.text[:200]
