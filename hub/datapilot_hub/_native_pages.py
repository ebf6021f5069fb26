"""The password accounts' login and sign-up pages, and what carries an invitation through them.

An invitation link (``/services/datapilot/invitations/<code>``) sends a person without
an account to ``/hub/signup?next=<the link>/join``. The sign-up asks the data service what the
invitation is for (``GET /invitations/<code>``, with the hub-internal ``datapilot-login``
service's token): a pending invitation is proof enough, so the new account is authorized
at once (no administrator's approval), logged in, and sent back to the link, where
"Join" makes them a member. The login page says the same when it carries the link.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import quote, urlencode, urlparse

import httpx
from jupyterhub.utils import maybe_future
from nativeauthenticator import handlers as native_handlers
from traitlets import Unicode
from traitlets.config import LoggingConfigurable

from datapilot_contract import runtime_org


class DataServiceCaller(LoggingConfigurable):
    """The hub's own calls to the data service, with the ``datapilot-login`` service token."""

    datapilot_api_url = Unicode(
        "",
        help="""The data service's API, as the hub reaches it (through the proxy).

        Set by ``install_datapilot``.

        Example::

            c.DataServiceCaller.datapilot_api_url = (
                "http://127.0.0.1:8000/services/datapilot/api/v1/"
            )
        """,
    ).tag(config=True)

    datapilot_api_token = Unicode(
        "",
        help="""API token of the hub-internal ``datapilot-login`` service.

        Set by ``install_datapilot`` (a secret in ``$DATAPILOT_HOME/runtime``); its role may
        manage users and call the data service, where it counts as a hub administrator.

        Example::

            c.DataServiceCaller.datapilot_api_token = "a-long-random-token"
        """,
    ).tag(config=True)

    async def check_blocked_users(self, username: str, authentication: Any = None) -> bool:
        """Refuse logins as an organization's dashboard server user (no person is one)."""
        if runtime_org(username):
            self.log.warning("Refused a login as %s (a dashboard server's user)", username)
            return False
        return await maybe_future(super().check_blocked_users(username, authentication))

    def invitation_code(self, next_url: str) -> str | None:
        """The invitation code of a ``next`` URL that is an invitation link, else None.

        Parameters
        ----------
        next_url : str
            Where the login or sign-up goes afterwards.
        """
        if not self.datapilot_api_url or not next_url:
            return None
        service = urlparse(self.datapilot_api_url).path.rsplit("api/v1/", 1)[0]
        found = re.fullmatch(
            re.escape(f"{service}invitations/") + r"([A-Za-z0-9_-]{43})(?:/join)?",
            urlparse(next_url).path,
        )
        return found.group(1) if found else None

    async def invitation_for(self, next_url: str) -> dict[str, Any] | None:
        """The pending invitation a ``next`` URL carries, as the data service describes it.

        None when the URL is no invitation link, or the invitation is not pending
        (used, revoked, expired, unknown), or the service could not be asked.

        Parameters
        ----------
        next_url : str
            Where the login or sign-up goes afterwards.
        """
        code = self.invitation_code(next_url)
        if code is None or not self.datapilot_api_token:
            return None
        headers = {"Authorization": f"token {self.datapilot_api_token}"}
        url = f"{self.datapilot_api_url.rstrip('/')}/invitations/{quote(code)}"
        try:
            async with httpx.AsyncClient(headers=headers, timeout=30) as client:
                resp = await client.get(url)
        except httpx.HTTPError as e:
            self.log.warning("Could not ask the data service about an invitation: %s", e)
            return None
        if resp.status_code != 200:
            return None
        invitation = resp.json()
        return invitation if invitation.get("state") == "pending" else None


class _NullTimer:
    """Stands in for the ``statsd`` timer JupyterHub 6 no longer provides."""

    def start(self) -> _NullTimer:
        return self

    def stop(self, send: bool = True) -> None:
        pass


class _NullStatsd:
    def timer(self, name: str) -> _NullTimer:
        return _NullTimer()


class LoginHandler(native_handlers.LoginHandler):
    """nativeauthenticator's login page, saying which invitation it carries.

    Its ``post`` times the login with ``self.statsd``, which JupyterHub 6 removed (the
    login answered 500): the handler gets a no-op client and keeps upstream's logic.
    """

    statsd = _NullStatsd()

    async def _render(self, login_error: str | None = None, username: str | None = None) -> str:
        next_url = self.get_argument("next", default="")
        return await self.render_template(
            "native-login.html",
            next=quote(next_url, safe=""),
            username=username,
            login_error=login_error,
            custom_html=self.authenticator.custom_html,
            login_url=self.settings["login_url"],
            enable_signup=self.authenticator.enable_signup,
            two_factor_auth=self.authenticator.allow_2fa,
            invitation=await self.authenticator.invitation_for(next_url),
            signup_url=f"{self.hub.base_url}signup"
            + (f"?{urlencode({'next': next_url})}" if next_url else ""),
        )


class SignUpHandler(native_handlers.SignUpHandler):
    """nativeauthenticator's sign-up page; an invitation lets the new account in at once.

    Upstream only says "you can log in now" for open sign-up and admins. A member that
    an organization added (see ``DatapilotNativeAuthenticator.create_user``) is
    authorized at once too; and a sign-up that carries a pending invitation in its
    ``next`` is authorized, logged in and sent on to the invitation.
    """

    def get_result_message(self, user: Any, *args: Any) -> tuple[str, str]:
        alert, message = super().get_result_message(user, *args)
        if user is not None and user.is_authorized and alert == "alert-info":
            alert = "alert-success"
            message = (
                "The signup was successful! You can now go to the home page and log in "
                "to the system."
            )
        return alert, message

    def render_template(self, name: str, sync: bool = False, **ns: Any) -> Any:
        if name == "signup.html":
            # (upstream's own renderings too) the login link keeps where the sign-up goes
            next_url = self.get_argument("next", default="")
            login_url = f"{self.hub.base_url}login"
            ns.setdefault("invitation", None)
            ns.setdefault(
                "login_link",
                login_url + (f"?{urlencode({'next': next_url})}" if next_url else ""),
            )
            ns.setdefault("minimum_password_length", self.authenticator.minimum_password_length)
        return super().render_template(name, sync=sync, **ns)

    async def _page(self, invitation: dict[str, Any] | None, **ns: Any) -> str:
        return await self.render_template(
            "signup.html",
            ask_email=self.authenticator.ask_email_on_signup,
            two_factor_auth=self.authenticator.allow_2fa,
            recaptcha_key=self.authenticator.recaptcha_key,
            tos=self.authenticator.tos,
            invitation=invitation,
            **ns,
        )

    async def get(self) -> None:
        if not self.authenticator.enable_signup:
            return await super().get()
        invitation = await self.authenticator.invitation_for(self.get_argument("next", ""))
        self.finish(await self._page(invitation))

    async def post(self) -> None:
        next_url = self.get_argument("next", default="")
        invitation = await self.authenticator.invitation_for(next_url)
        if invitation is None or not self.authenticator.enable_signup:
            return await super().post()
        username = self.get_body_argument("username", "", strip=False)
        password = self.get_body_argument("signup_password", "", strip=False)
        confirmation = self.get_body_argument("signup_password_confirmation", "", strip=False)
        taken = self.authenticator.user_exists(username)
        matches = password == confirmation
        info = None
        if not taken and matches:
            info = self.authenticator.create_user(
                username, password, email=self.get_body_argument("email", "", strip=False)
            )
        if info is None:
            alert, message = self.get_result_message(None, True, taken, matches, False)
            self.finish(
                await self._page(invitation, alert=alert, result_message=message, username=username)
            )
            return
        # the invitation vouches for this sign-up: no administrator's approval
        info.is_authorized = True
        self.authenticator.db.commit()
        self.log.info(
            "Sign-up of %s authorized by an invitation to %s",
            info.username,
            invitation["organization"]["slug"],
        )
        user = await self.login_user({"username": username, "password": password})
        if user is None:  # pragma: no cover - the account was just made with this password
            raise RuntimeError(f"the new account {info.username} could not log in")
        self.redirect(next_url)
