"""How every handler of the data service authenticates: JupyterHub's tokens and cookie."""

from __future__ import annotations

from jupyterhub.services.auth import HubOAuth, HubOAuthenticated


class ServiceAuthenticated(HubOAuthenticated):
    """:class:`HubOAuthenticated` with the service's own :class:`HubOAuth` (``settings``).

    The mixin's default is ``HubOAuth.instance()``, whose cache trusts a token for
    300 s: a revoked token would keep working that long. The service configures one
    (``DataService.token_cache_max_age``) and every handler uses that one.
    """

    @property
    def hub_auth(self) -> HubOAuth:
        """The service's configured :class:`HubOAuth`."""
        return self.settings["hub_auth"]
