"""Login: password accounts (embedded default) and OAuth / OpenID Connect (production).

- :class:`DatapilotNativeAuthenticator` is jupyterhub-nativeauthenticator with the one fix
  JupyterHub 6 needs (its login handler used the ``statsd`` client JupyterHub 6 removed),
  safer defaults (lockout after repeated failures, minimum password length) and a bootstrap
  of the hub administrator's account.
- :class:`DatapilotOIDCAuthenticator` (any OpenID Connect provider) and
  :class:`DatapilotGitHubOAuthenticator` are OAuthenticator's classes plus
  :class:`OrgClaimsMixin`: group claims of the provider become Datapilot memberships,
  only through an explicit mapping, or values ``<org>:<role>`` where that is turned on
  (with GitHub, only the teams of trusted GitHub organizations): nothing by default.

The hub holds no catalog credentials, so claims become memberships through the data
service's own API (``PUT /orgs/{org}/members/{user}``), called from the hub right after a
login with the token of the hub-internal ``datapilot-login`` service.
"""

from __future__ import annotations

import json
import os
from typing import Any
from urllib.parse import quote

import bcrypt
import httpx
from jupyterhub import orm
from nativeauthenticator import NativeAuthenticator
from nativeauthenticator.orm import UserInfo
from oauthenticator.generic import GenericOAuthenticator
from oauthenticator.github import GitHubOAuthenticator
from traitlets import Bool, Dict, Set, Unicode, default, validate

from datapilot_contract import is_org_slug

from ._native_pages import DataServiceCaller, LoginHandler, SignUpHandler
from .permissions import ROLES

# ---- password accounts ----------------------------------------------------------------------


def _env_int(name: str, fallback: int) -> int:
    value = os.environ.get(name, "").strip()
    return int(value) if value else fallback


def _env_bool(name: str, fallback: bool) -> bool:
    value = os.environ.get(name, "").strip().lower()
    if not value:
        return fallback
    return value in ("1", "true", "yes", "on")


class DatapilotNativeAuthenticator(DataServiceCaller, NativeAuthenticator):
    """Password accounts with sign-up, lockout, password change and admin reset.

    Who may log in after signing up:

    - the hub administrators (``admin_users``);
    - users that already exist in the hub, which is how organization admins add members
      (``PUT /orgs/{org}/members/{user}`` creates the hub user): they sign up with that
      name and log in at once;
    - anyone, when ``open_signup`` is on (``$DATAPILOT_OPEN_SIGNUP``);
    - people who sign up with an invitation link (see :mod:`._native_pages`);
    - everyone else after a hub administrator authorizes them at ``/hub/authorize``.
    """

    @default("allow_all")
    def _default_allow_all(self) -> bool:
        # nativeauthenticator authorizes on its own (users_info.is_authorized): a user
        # whose account is not authorized never gets past authenticate()
        return True

    @default("open_signup")
    def _default_open_signup(self) -> bool:
        return _env_bool("DATAPILOT_OPEN_SIGNUP", False)

    @default("allowed_failed_logins")
    def _default_allowed_failed_logins(self) -> int:
        return _env_int("DATAPILOT_LOGIN_MAX_FAILURES", 5)

    @default("seconds_before_next_try")
    def _default_seconds_before_next_try(self) -> int:
        return _env_int("DATAPILOT_LOGIN_LOCKOUT_SECONDS", 300)

    @default("minimum_password_length")
    def _default_minimum_password_length(self) -> int:
        return _env_int("DATAPILOT_MIN_PASSWORD_LENGTH", 8)

    @default("check_common_password")
    def _default_check_common_password(self) -> bool:
        return True

    admin_password = Unicode(
        "",
        help="""Password of the hub administrators' accounts when they have none yet.

        ``install_datapilot`` sets it from ``$DATAPILOT_ADMIN_PASSWORD``, else from a random
        secret kept in ``$DATAPILOT_HOME/runtime/admin_password``. Each user of
        ``admin_users`` without a password account gets one with this password, authorized,
        when the hub starts. Empty: no account is created.

        Example::

            c.DatapilotNativeAuthenticator.admin_password = "a-long-random-passphrase"
        """,
    ).tag(config=True)

    reset_admin_password = Bool(
        False,
        help="""Set ``admin_password`` at every start, even if an administrator changed it.

        ``install_datapilot`` turns it on when ``$DATAPILOT_ADMIN_PASSWORD`` is set, so that
        variable is the way to regain access to a locked-out administrator account.

        Example::

            c.DatapilotNativeAuthenticator.reset_admin_password = True
        """,
    ).tag(config=True)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.bootstrap_admins()

    def bootstrap_admins(self) -> None:
        """Give each hub administrator an authorized account with ``admin_password``."""
        if not self.admin_password:
            return
        for name in sorted(self.admin_users):
            username = self.normalize_username(name)
            info = self.get_user(username)
            if info is not None and not self.reset_admin_password:
                continue
            hashed = bcrypt.hashpw(self.admin_password.encode(), bcrypt.gensalt())
            if info is None:
                self.db.add(UserInfo(username=username, password=hashed, is_authorized=True))
                self.log.info("Created the password account of hub admin %s", username)
            else:
                info.password = hashed
                info.is_authorized = True
            self.db.commit()

    def create_user(self, username: str, password: str, **kwargs: Any) -> Any:
        """Sign up; a name that already is a hub user (an added member) is authorized.

        Parameters
        ----------
        username : str
            The name asked for on the sign-up page.
        password : str
            The new password (hashed with bcrypt by nativeauthenticator).
        **kwargs
            Further sign-up fields (email, 2fa).
        """
        info = super().create_user(username, password, **kwargs)
        if info is not None and not info.is_authorized:
            if orm.User.find(self.db, info.username) is not None:
                info.is_authorized = True
                self.db.commit()
        return info

    def get_handlers(self, app: Any) -> list[tuple[str, Any]]:
        replaced = {"/login": LoginHandler, "/signup": SignUpHandler}
        return [(path, replaced.get(path, h)) for path, h in super().get_handlers(app)]


# ---- OAuth / OpenID Connect -------------------------------------------------------------------

_ROLE_RANK = {role: rank for rank, role in enumerate(reversed(ROLES))}  # viewer 0 ... admin 3


class OrgClaimsMixin(DataServiceCaller):
    """Maps a provider's group claims to Datapilot organizations and roles at login.

    After a successful login the memberships are written through the data service's API
    with the hub-internal ``datapilot-login`` service token: the member is added, or their
    role changed, in each mapped organization. Memberships of organizations that no claim
    maps are left alone (remove members in Datapilot itself).
    """

    org_role_mapping = Dict(
        key_trait=Unicode(),
        value_trait=Unicode(),
        help="""Claim value -> ``"<org>:<role>"``.

        Defaults to the JSON object in ``$DATAPILOT_AUTH_ORG_MAPPING``. A claim value found
        here maps to that organization and role; when several claims map to the same
        organization, the strongest role wins (admin > manager > analyst > viewer). With
        GitHub the claim values are the user's teams, ``<github-org>:<team-slug>`` in
        lower case (``"acme-corp:data-team": "acme:analyst"``).

        Example::

            c.DatapilotOIDCAuthenticator.org_role_mapping = {
                "acme-data-team": "acme:analyst",
                "acme-it": "acme:admin",
            }
        """,
    ).tag(config=True)

    @default("org_role_mapping")
    def _default_org_role_mapping(self) -> dict[str, str]:
        raw = os.environ.get("DATAPILOT_AUTH_ORG_MAPPING", "").strip()
        return json.loads(raw) if raw else {}

    @validate("org_role_mapping")
    def _check_org_role_mapping(self, proposal: dict[str, Any]) -> dict[str, str]:
        for claim, target in proposal["value"].items():
            if parse_org_role(target) is None:
                raise ValueError(
                    f"org_role_mapping[{claim!r}] = {target!r} is not '<org>:<role>' with a"
                    f" valid organization slug and a role among {', '.join(ROLES)}"
                )
        return proposal["value"]

    org_role_claims = Bool(
        help="""Also read claim values of the form ``<org>:<role>`` directly.

        Defaults to ``$DATAPILOT_AUTH_ORG_ROLE_CLAIMS`` (``1``/``0``), else off. When on, a
        group ``acme:analyst`` makes the user an Analyst of ``acme``; values that are not a
        valid slug and role are ignored. Turn it on only when the provider's group names
        are chosen by its administrators: with a provider whose users can make groups
        (Microsoft 365 groups, Google groups, Dex relaying GitHub teams), whoever makes a
        group ``acme:admin`` would become an Admin of ``acme``. With GitHub it reads only
        the teams of :attr:`DatapilotGitHubOAuthenticator.trusted_github_orgs`.

        .. versionchanged:: 0.1
           Off by default (was on).

        Example::

            c.DatapilotOIDCAuthenticator.org_role_claims = True
        """,
    ).tag(config=True)

    @default("org_role_claims")
    def _default_org_role_claims(self) -> bool:
        return _env_bool("DATAPILOT_AUTH_ORG_ROLE_CLAIMS", False)

    create_orgs = Bool(
        help="""Create a mapped organization that does not exist yet.

        Defaults to ``$DATAPILOT_AUTH_CREATE_ORGS``, else off: claims only grant
        memberships in organizations a hub administrator created.

        Example::

            c.DatapilotOIDCAuthenticator.create_orgs = True
        """,
    ).tag(config=True)

    @default("create_orgs")
    def _default_create_orgs(self) -> bool:
        return _env_bool("DATAPILOT_AUTH_CREATE_ORGS", False)

    def org_claims(self, auth_model: dict[str, Any]) -> list[str]:
        """The claim values of a login that may name organizations (per provider).

        Parameters
        ----------
        auth_model : dict
            The model ``authenticate`` returned, with ``auth_state``.
        """
        raise NotImplementedError

    def memberships_for(self, claims: list[str]) -> dict[str, str]:
        """Organization slug -> role for a login's claim values.

        Parameters
        ----------
        claims : list of str
            Claim values, e.g. ``["acme:analyst", "staff"]``.
        """
        found: dict[str, str] = {}
        for value in claims:
            if not isinstance(value, str):
                continue
            target = self.org_role_mapping.get(value)
            pair = parse_org_role(target) if target else None
            if pair is None and self.org_role_claims:
                pair = self.direct_claim(value)
            if pair is None:
                continue
            org, role = pair
            if org not in found or _ROLE_RANK[role] > _ROLE_RANK[found[org]]:
                found[org] = role
        return found

    def direct_claim(self, value: str) -> tuple[str, str] | None:
        """The organization and role a claim value names itself, when it may.

        Read only with :attr:`org_role_claims` on, for values the mapping does not name.

        Parameters
        ----------
        value : str
            A claim value, ``"<org>:<role>"``.
        """
        return parse_org_role(value)

    async def check_allowed(self, username: str, auth_model: dict[str, Any]) -> bool:
        """Allowed by the usual rules, or because a claim maps to an organization."""
        if await super().check_allowed(username, auth_model):
            return True
        return bool(auth_model and self.memberships_for(self.org_claims(auth_model)))

    async def run_post_auth_hook(self, handler: Any, authentication: dict[str, Any]) -> Any:
        """After the allow checks: write the mapped memberships through the data service."""
        authentication = await super().run_post_auth_hook(handler, authentication)
        memberships = self.memberships_for(self.org_claims(authentication))
        if authentication.get("auth_state") is not None:
            authentication["auth_state"]["datapilot_memberships"] = memberships
        if memberships:
            await self.apply_memberships(authentication["name"], memberships)
        return authentication

    async def apply_memberships(self, username: str, memberships: dict[str, str]) -> None:
        """Add ``username`` to each organization with its role (data service API).

        A failure is logged and does not refuse the login: the user still gets in, with the
        memberships they had.

        Parameters
        ----------
        username : str
            The normalized hub user name.
        memberships : dict
            Organization slug -> role.
        """
        if not (self.datapilot_api_url and self.datapilot_api_token):
            self.log.warning("No data service configured: claims of %s not applied", username)
            return
        headers = {"Authorization": f"token {self.datapilot_api_token}"}
        base = self.datapilot_api_url.rstrip("/") + "/"
        async with httpx.AsyncClient(base_url=base, headers=headers, timeout=30) as client:
            for org, role in sorted(memberships.items()):
                path = f"orgs/{quote(org)}/members/{quote(username)}"
                try:
                    resp = await client.put(path, json={"role": role})
                    if resp.status_code == 404 and self.create_orgs:
                        created = await client.post("orgs", json={"slug": org, "name": org})
                        if created.status_code not in (201, 409):
                            self.log.warning("Creating org %s: %s", org, created.text[:200])
                        resp = await client.put(path, json={"role": role})
                except httpx.HTTPError as e:
                    self.log.error("Data service unreachable applying %s in %s: %s", role, org, e)
                    continue
                if resp.status_code in (200, 201):
                    self.log.info("Claims: %s is %s in %s", username, role, org)
                else:
                    self.log.warning(
                        "Claims: could not make %s %s in %s: %s %s",
                        username,
                        role,
                        org,
                        resp.status_code,
                        resp.text[:200],
                    )


def parse_org_role(value: str) -> tuple[str, str] | None:
    """``"acme:analyst"`` -> ``("acme", "analyst")``; None unless slug and role are valid.

    Parameters
    ----------
    value : str
        A claim value or a mapping target.
    """
    org, sep, role = value.rpartition(":")
    if not sep or role not in ROLES or not is_org_slug(org):
        return None
    return org, role


def discover_oidc(issuer: str, timeout: float = 10) -> dict[str, Any]:
    """The provider's ``/.well-known/openid-configuration`` document.

    Parameters
    ----------
    issuer : str
        The issuer URL, e.g. ``https://login.example.com/realms/acme``.
    timeout : float
        Seconds to wait; the hub does not start without it (fail closed).
    """
    url = issuer.rstrip("/") + "/.well-known/openid-configuration"
    resp = httpx.get(url, timeout=timeout)
    resp.raise_for_status()
    return resp.json()


class DatapilotOIDCAuthenticator(OrgClaimsMixin, GenericOAuthenticator):
    """Any OpenID Connect provider (Keycloak, Entra ID, Google, Okta, Dex, ...).

    The endpoints come from the issuer's discovery document; client id and secret,
    scopes and claims from ``DATAPILOT_OIDC_*`` variables.
    """

    @default("login_service")
    def _default_login_service(self) -> str:
        return os.environ.get("DATAPILOT_OIDC_NAME") or "OpenID Connect"

    oidc_issuer = Unicode(
        help="""Issuer URL of the OpenID Connect provider (its discovery document is read).

        Defaults to ``$DATAPILOT_OIDC_ISSUER``. ``authorize_url``, ``token_url`` and
        ``userdata_url`` default to the endpoints it announces.

        Example::

            c.DatapilotOIDCAuthenticator.oidc_issuer = "https://login.example.com/realms/acme"
        """,
    ).tag(config=True)

    @default("oidc_issuer")
    def _default_oidc_issuer(self) -> str:
        return os.environ.get("DATAPILOT_OIDC_ISSUER", "")

    groups_claim = Unicode(
        help="""The userinfo claim listing the user's groups (read for organizations).

        Defaults to ``$DATAPILOT_OIDC_GROUPS_CLAIM``, else ``groups``; dots name nested keys.

        Example::

            c.DatapilotOIDCAuthenticator.groups_claim = "realm_access.roles"
        """,
    ).tag(config=True)

    @default("groups_claim")
    def _default_groups_claim(self) -> str:
        return os.environ.get("DATAPILOT_OIDC_GROUPS_CLAIM") or "groups"

    _discovery: dict[str, Any] | None = None

    def _discovered(self, key: str) -> str:
        if not self.oidc_issuer:
            return ""
        if self._discovery is None:
            self._discovery = discover_oidc(self.oidc_issuer)
        return self._discovery.get(key, "")

    @default("authorize_url")
    def _default_authorize_url(self) -> str:
        return self._discovered("authorization_endpoint")

    @default("token_url")
    def _default_token_url(self) -> str:
        return self._discovered("token_endpoint")

    @default("userdata_url")
    def _default_userdata_url(self) -> str:
        return self._discovered("userinfo_endpoint")

    @default("client_id")
    def _default_client_id(self) -> str:
        return os.environ.get("DATAPILOT_OIDC_CLIENT_ID", "")

    @default("client_secret")
    def _default_client_secret(self) -> str:
        return os.environ.get("DATAPILOT_OIDC_CLIENT_SECRET", "")

    @default("scope")
    def _default_scope(self) -> list[str]:
        return (os.environ.get("DATAPILOT_OIDC_SCOPES") or "openid profile email groups").split()

    @default("username_claim")
    def _default_username_claim(self) -> str:
        return os.environ.get("DATAPILOT_OIDC_USERNAME_CLAIM") or "preferred_username"

    def org_claims(self, auth_model: dict[str, Any]) -> list[str]:
        user_info = (auth_model.get("auth_state") or {}).get(self.user_auth_state_key) or {}
        value: Any = user_info
        for part in self.groups_claim.split("."):
            value = value.get(part) if isinstance(value, dict) else None
        if isinstance(value, str):
            return [value]
        return [v for v in value or () if isinstance(v, str)]


class DatapilotGitHubOAuthenticator(OrgClaimsMixin, GitHubOAuthenticator):
    """GitHub: teams ``<github-org>:<team-slug>`` map to Datapilot organizations.

    Anyone can make a GitHub organization with any free name and any teams, so a team
    maps to a Datapilot organization only through :attr:`org_role_mapping` (the team named
    exactly) or because its GitHub organization is one of :attr:`trusted_github_orgs`;
    nothing by default. Client id and secret come from ``$DATAPILOT_GITHUB_CLIENT_ID`` and
    ``$DATAPILOT_GITHUB_CLIENT_SECRET``; teams are read with the ``read:org`` scope.
    """

    trusted_github_orgs = Set(
        Unicode(),
        help="""GitHub organizations whose teams name Datapilot roles directly.

        Defaults to ``$DATAPILOT_GITHUB_TRUSTED_ORGS`` (names separated by commas or
        spaces), else none. A member of team ``<role>`` (``admin``, ``manager``,
        ``analyst``, ``viewer``) of a GitHub organization listed here gets that role in
        the Datapilot organization of the same name (lowercased; it must be a valid
        slug). List only organizations whose owners you trust to make Admins: teams of
        any other GitHub organization count only through ``org_role_mapping``. A
        non-empty list turns :attr:`org_role_claims` on unless
        ``$DATAPILOT_AUTH_ORG_ROLE_CLAIMS`` says otherwise.

        Example::

            c.DatapilotGitHubOAuthenticator.trusted_github_orgs = {"acme-corp"}
        """,
    ).tag(config=True)

    @default("trusted_github_orgs")
    def _default_trusted_github_orgs(self) -> set[str]:
        raw = os.environ.get("DATAPILOT_GITHUB_TRUSTED_ORGS", "")
        return {name.lower() for name in raw.replace(",", " ").split()}

    @validate("trusted_github_orgs")
    def _lowercase_trusted_github_orgs(self, proposal: dict[str, Any]) -> set[str]:
        # GitHub logins are case-insensitive, and the claims are lowercased
        return {name.strip().lower() for name in proposal["value"]}

    @default("org_role_claims")
    def _default_org_role_claims(self) -> bool:
        return _env_bool("DATAPILOT_AUTH_ORG_ROLE_CLAIMS", bool(self.trusted_github_orgs))

    def direct_claim(self, value: str) -> tuple[str, str] | None:
        """A team ``<github-org>:<role>`` of a trusted GitHub organization, else None.

        Parameters
        ----------
        value : str
            A team claim, ``"<github-org>:<team-slug>"`` in lower case.
        """
        github_org, _, _ = value.rpartition(":")
        if github_org not in self.trusted_github_orgs:
            return None
        return parse_org_role(value)

    @default("client_id")
    def _default_client_id(self) -> str:
        return os.environ.get("DATAPILOT_GITHUB_CLIENT_ID", "")

    @default("client_secret")
    def _default_client_secret(self) -> str:
        return os.environ.get("DATAPILOT_GITHUB_CLIENT_SECRET", "")

    @default("scope")
    def _default_scope(self) -> list[str]:
        return ["read:user", "user:email", "read:org"]

    @default("populate_teams_in_auth_state")
    def _default_populate_teams(self) -> bool:
        return True

    def org_claims(self, auth_model: dict[str, Any]) -> list[str]:
        teams = (auth_model.get("auth_state") or {}).get("teams") or []
        return [
            f"{t['organization']['login']}:{t['slug']}".lower()
            for t in teams
            if isinstance(t, dict) and t.get("organization") and t.get("slug")
        ]


#: ``$DATAPILOT_AUTH`` -> authenticator class.
AUTHENTICATORS: dict[str, type] = {
    "native": DatapilotNativeAuthenticator,
    "oidc": DatapilotOIDCAuthenticator,
    "github": DatapilotGitHubOAuthenticator,
}

__all__ = [
    "AUTHENTICATORS",
    "DatapilotGitHubOAuthenticator",
    "DatapilotNativeAuthenticator",
    "DatapilotOIDCAuthenticator",
    "OrgClaimsMixin",
    "discover_oidc",
    "parse_org_role",
]
