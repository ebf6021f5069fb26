"""How every handler of the data service authenticates: JupyterHub's tokens and cookie,
and the viewer tokens a dashboard's kernel reads data with."""

from __future__ import annotations

from typing import Any

from jupyterhub.services.auth import HubOAuth, HubOAuthenticated

from datapilot_contract import VIEWER_TOKEN_PREFIX


class ServiceAuthenticated(HubOAuthenticated):
    """:class:`HubOAuthenticated` with the service's own :class:`HubOAuth` (``settings``).

    The mixin's default is ``HubOAuth.instance()``, whose cache trusts a token for
    300 s: a revoked token would keep working that long. The service configures one
    (``DataService.token_cache_max_age``) and every handler uses that one.

    A viewer token (``Authorization: token dpv1...``, see
    :mod:`~datapilot_hub.domain.viewer_tokens`) is checked here, never sent to the hub;
    its model says what :class:`~datapilot_hub.domain._identity.Caller` it is.
    """

    @property
    def hub_auth(self) -> HubOAuth:
        """The service's configured :class:`HubOAuth`."""
        return self.settings["hub_auth"]

    def get_current_user(self) -> dict[str, Any] | None:
        auth = self.request.headers.get("Authorization", "")
        scheme, _, token = auth.partition(" ")
        token = token.strip()
        if scheme.lower() in ("token", "bearer") and token.startswith(VIEWER_TOKEN_PREFIX):
            grant = self.settings["viewer_tokens"].check(token)
            # a token sent in a header is no cookie a page's script could ride on
            self._token_authenticated = True
            if grant is None:
                return None
            return {
                "kind": "user",
                "name": grant.viewer,
                "admin": False,
                "scopes": [],
                "datapilot_viewer": {"org": grant.org, "dashboard": grant.dashboard},
            }
        return super().get_current_user()
