"""Login against a real hub: password accounts, and OpenID Connect with a real provider."""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import subprocess
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from urllib.parse import quote, urljoin

import httpx
import pytest

from datapilot_hub.auth import (
    DatapilotGitHubOAuthenticator,
    DatapilotNativeAuthenticator,
    DatapilotOIDCAuthenticator,
    OrgClaimsMixin,
    parse_org_role,
)

from .utils import HubProcess, form_xsrf, free_port, hub_login, hub_signup, new_home, running_hub

OIDC_DIR = Path(__file__).with_name("oidc_provider")
LOCKOUT_SECONDS = 3


def _cleanup(home: Path) -> None:
    if os.environ.get("DATAPILOT_TEST_KEEP_HOME") != "1":
        shutil.rmtree(home, ignore_errors=True)


def _page_alert(r: httpx.Response) -> str:
    found = re.search(r'class="alert ([^" ]+)[^"]*"[^>]*>\s*(.*?)\s*</div>', r.text, re.S)
    assert found, r.text[:500]
    return f"{found.group(1)}: {found.group(2)}"


# ---- password accounts (the embedded default) ------------------------------------------


@pytest.fixture(scope="module")
def native_hub(request, tmp_path_factory):
    """A hub on the defaults, with a short lockout so the test can see it end."""
    env = {
        "DATAPILOT_LOGIN_MAX_FAILURES": "3",
        "DATAPILOT_LOGIN_LOCKOUT_SECONDS": str(LOCKOUT_SECONDS),
    }
    with running_hub(request, tmp_path_factory, env=env, label="native") as hub:
        hub.create_org("acme", "Acme Corp")
        yield hub


def _new_member(hub: HubProcess, user: str, role: str) -> None:
    """Add ``user`` to an organization of their own (plans cap members per organization)."""
    hub.create_org(f"{user}-team")
    hub.add_member(f"{user}-team", user, role)


def _admin_browser(hub: HubProcess) -> httpx.Client:
    password = (hub.home / "runtime" / "admin_password").read_text().strip()
    return hub_login(hub, "admin", password)


def test_admin_logs_in_with_the_bootstrap_password(native_hub):
    browser = _admin_browser(native_hub)
    try:
        assert browser.get("/hub/api/user").json()["admin"] is True
        # the banner tells where the password is
        assert "admin_password" in native_hub.log_tail(400)
    finally:
        browser.close()


def test_member_added_by_an_org_signs_up_and_logs_in(native_hub):
    hub = native_hub
    hub.add_member("acme", "alice", "analyst")
    message = hub_signup(hub, "alice", "alice-long-secret")
    assert message.startswith("alert-success") and "log in" in message
    browser = hub_login(hub, "alice", "alice-long-secret")
    try:
        # the login cookie reaches the data service (its OAuth dance, then the API)
        assert browser.get("/services/datapilot/").status_code == 200
        me = browser.get("/services/datapilot/api/v1/me").json()
        assert me["name"] == "alice"
        assert browser.get("/services/datapilot/api/v1/orgs/acme/datasets").status_code == 200
    finally:
        browser.close()


def test_a_name_is_signed_up_once(native_hub):
    hub = native_hub
    _new_member(hub, "carol", "viewer")
    assert hub_signup(hub, "carol", "carol-long-secret").startswith("alert-success")
    message = hub_signup(hub, "carol", "someone-elses-secret")
    assert message.startswith("alert-danger") and "already in use" in message
    hub_login(hub, "carol", "someone-elses-secret", ok=False).close()
    hub_login(hub, "carol", "carol-long-secret").close()


def test_weak_passwords_are_refused_at_sign_up(native_hub):
    hub = native_hub
    _new_member(hub, "dave", "viewer")
    assert hub_signup(hub, "dave", "short").startswith("alert-danger")
    # too common (nativeauthenticator's list of common passwords)
    assert hub_signup(hub, "dave", "password123").startswith("alert-danger")
    hub_login(hub, "dave", "short", ok=False).close()


def test_a_stranger_waits_for_a_hub_admin(native_hub):
    hub = native_hub
    message = hub_signup(hub, "mallory", "mallory-long-secret")
    assert message.startswith("alert-info") and "admin" in message
    browser = hub_login(hub, "mallory", "mallory-long-secret", ok=False)
    assert "has not been authorized" in browser.last_response.text
    browser.close()
    admin = _admin_browser(hub)
    try:
        page = admin.get("/hub/authorize")
        assert page.status_code == 200 and "mallory" in page.text
        admin.get("/hub/authorize/mallory")
    finally:
        admin.close()
    mallory = hub_login(hub, "mallory", "mallory-long-secret")
    try:
        # the authorization page is for hub admins only
        assert mallory.get("/hub/authorize").status_code == 403
        assert mallory.get("/hub/authorize/mallory").status_code == 403
    finally:
        mallory.close()


def test_wrong_password_then_lockout_then_unlock(native_hub):
    hub = native_hub
    _new_member(hub, "bob", "analyst")
    assert hub_signup(hub, "bob", "bob-long-secret").startswith("alert-success")
    for _ in range(3):
        browser = hub_login(hub, "bob", "guess", ok=False)
        assert "Invalid username or password" in browser.last_response.text
        browser.close()
    # locked: even the right password is refused until the lockout ends
    hub_login(hub, "bob", "bob-long-secret", ok=False).close()
    time.sleep(LOCKOUT_SECONDS + 2)
    hub_login(hub, "bob", "bob-long-secret").close()


def test_user_changes_their_password(native_hub):
    hub = native_hub
    _new_member(hub, "erin", "analyst")
    hub_signup(hub, "erin", "erin-first-secret")
    browser = hub_login(hub, "erin", "erin-first-secret")
    try:
        xsrf = form_xsrf(browser.get("/hub/change-password"))
        form = {"new_password": "erin-second-secret", "_xsrf": xsrf}
        form["new_password_confirmation"] = form["new_password"]
        r = browser.post("/hub/change-password", data={**form, "old_password": "not-it"})
        assert _page_alert(r).startswith("alert-danger")
        r = browser.post("/hub/change-password", data={**form, "old_password": "erin-first-secret"})
        assert _page_alert(r).startswith("alert-success")
    finally:
        browser.close()
    hub_login(hub, "erin", "erin-first-secret", ok=False).close()
    hub_login(hub, "erin", "erin-second-secret").close()


def test_hub_admin_resets_a_password(native_hub):
    hub = native_hub
    _new_member(hub, "frank", "analyst")
    hub_signup(hub, "frank", "frank-forgotten-secret")
    admin = _admin_browser(hub)
    try:
        xsrf = form_xsrf(admin.get("/hub/change-password/frank"))
        r = admin.post(
            "/hub/change-password/frank",
            data={
                "new_password": "frank-reset-secret",
                "new_password_confirmation": "frank-reset-secret",
                "_xsrf": xsrf,
            },
        )
        assert _page_alert(r).startswith("alert-success")
    finally:
        admin.close()
    hub_login(hub, "frank", "frank-forgotten-secret", ok=False).close()
    # and only hub admins may reset someone else's password
    frank = hub_login(hub, "frank", "frank-reset-secret")
    try:
        xsrf = form_xsrf(frank.get("/hub/change-password"))
        r = frank.post(
            "/hub/change-password/admin",
            data={"new_password": "x" * 12, "new_password_confirmation": "x" * 12, "_xsrf": xsrf},
        )
        assert r.status_code == 403
    finally:
        frank.close()
    _admin_browser(hub).close()


def test_login_cookies_are_http_only(native_hub):
    hub = native_hub
    password = (hub.home / "runtime" / "admin_password").read_text().strip()
    with httpx.Client(base_url=hub.url, timeout=60) as browser:
        xsrf = form_xsrf(browser.get("/hub/login"))
        r = browser.post(
            "/hub/login",
            data={"username": "admin", "password": password, "_xsrf": xsrf},
        )
        assert r.status_code == 302, r.text[:300]
        cookies = r.headers.get_list("set-cookie")
        login = [c for c in cookies if c.startswith("jupyterhub-hub-login=")]
        assert login and all("httponly" in c.lower() for c in login), cookies


def test_api_tokens_expire(native_hub):
    hub = native_hub
    # a token asked for without an expiry gets the configured maximum (30 days) ...
    r = hub.hub_api("POST", "/users/admin/tokens", json={"note": "forever"})
    assert r.status_code == 201, r.text
    expires = datetime.fromisoformat(r.json()["expires_at"].replace("Z", "+00:00"))
    left = expires - datetime.now(timezone.utc)
    assert timedelta(days=29) < left <= timedelta(days=30), left
    # ... and a longer one is refused
    r = hub.hub_api(
        "POST", "/users/admin/tokens", json={"note": "long", "expires_in": 31 * 24 * 3600}
    )
    assert r.status_code == 400, r.text
    r = hub.hub_api("POST", "/users/admin/tokens", json={"note": "ok", "expires_in": 60})
    assert r.status_code == 201 and r.json()["expires_at"], r.text


def test_admin_password_from_the_environment(hub_home):
    """$DATAPILOT_ADMIN_PASSWORD wins, also over a password set before (a reset)."""
    hub = HubProcess(hub_home, env={"DATAPILOT_ADMIN_PASSWORD": "first-admin-secret"})
    hub.start()
    try:
        hub_login(hub, "admin", "first-admin-secret").close()
        assert not (hub_home / "runtime" / "admin_password").exists()
    finally:
        hub.stop()
    again = HubProcess(hub_home, env={"DATAPILOT_ADMIN_PASSWORD": "second-admin-secret"})
    again.start()
    try:
        hub_login(again, "admin", "first-admin-secret", ok=False).close()
        hub_login(again, "admin", "second-admin-secret").close()
    finally:
        again.stop()


# ---- OpenID Connect against a real provider --------------------------------------------


def _npm_ci() -> None:
    if not (OIDC_DIR / "node_modules" / "oidc-provider").exists():
        subprocess.run(
            ["npm", "ci", "--no-audit", "--no-fund", "--loglevel=error"], cwd=OIDC_DIR, check=True
        )


class OIDCProvider:
    """node-oidc-provider on a loopback port; it exits when its stdin closes."""

    def __init__(self, accounts: dict, redirect_uri: str) -> None:
        self.port = free_port()
        self.issuer = f"http://127.0.0.1:{self.port}"
        self.client_id = "datapilot"
        self.client_secret = secrets.token_hex(16)
        self.accounts = accounts
        self.redirect_uri = redirect_uri

    def start(self) -> None:
        _npm_ci()
        env = {
            "PATH": os.environ["PATH"],
            "OIDC_PORT": str(self.port),
            "OIDC_CLIENT_ID": self.client_id,
            "OIDC_CLIENT_SECRET": self.client_secret,
            "OIDC_REDIRECT_URIS": self.redirect_uri,
            "OIDC_ACCOUNTS": json.dumps(self.accounts),
        }
        self.proc = subprocess.Popen(
            ["node", "server.js"],
            cwd=OIDC_DIR,
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for _ in range(100):
            try:
                if httpx.get(f"{self.issuer}/.well-known/openid-configuration").is_success:
                    return
            except httpx.HTTPError:
                time.sleep(0.1)
        raise TimeoutError("oidc-provider did not start")

    def stop(self) -> None:
        self.proc.stdin.close()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


ACCOUNTS = {
    "olga": {"password": "olga-idp-secret", "groups": ["acme:analyst", "staff"]},
    "mark": {"password": "mark-idp-secret", "groups": ["Acme Managers", "acme:viewer"]},
    "nina": {"password": "nina-idp-secret", "groups": ["staff"]},
    "gus": {"password": "gus-idp-secret", "groups": ["globex:analyst"]},
}


@pytest.fixture(scope="module")
def oidc_hub():
    home = new_home("hub-oidc")
    hub = HubProcess(home)  # picks the port, so the provider knows the redirect URI
    provider = OIDCProvider(ACCOUNTS, f"{hub.url}/hub/oauth_callback")
    provider.start()
    hub.env.update(
        DATAPILOT_AUTH="oidc",
        DATAPILOT_OIDC_ISSUER=provider.issuer,
        DATAPILOT_OIDC_CLIENT_ID=provider.client_id,
        DATAPILOT_OIDC_CLIENT_SECRET=provider.client_secret,
        DATAPILOT_AUTH_ORG_MAPPING=json.dumps({"Acme Managers": "acme:manager"}),
        # this provider's groups are made by its administrator: read acme:analyst directly
        DATAPILOT_AUTH_ORG_ROLE_CLAIMS="1",
    )
    try:
        hub.start()
        hub.create_org("acme", "Acme Corp")
        yield hub, provider
    finally:
        hub.stop()
        provider.stop()
        _cleanup(home)


def _oidc_login(hub: HubProcess, user: str, password: str) -> tuple[httpx.Client, httpx.Response]:
    """The browser's way: hub -> provider's login form -> hub's OAuth callback."""
    browser = httpx.Client(base_url=hub.url, follow_redirects=True, timeout=60)
    form_page = browser.get("/hub/oauth_login")
    action = re.search(r'action="([^"]+)"', form_page.text)
    assert action, (form_page.status_code, str(form_page.url), form_page.text[:300])
    r = browser.post(
        urljoin(str(form_page.url), action.group(1)), data={"login": user, "password": password}
    )
    return browser, r


def _members(hub: HubProcess, org: str) -> dict[str, str]:
    model = hub.api("GET", f"/orgs/{org}/members", hub.admin_token).json()
    return {m["name"]: m["role"] for m in model["members"]}


def test_oidc_login_maps_a_group_claim_to_an_org_role(oidc_hub):
    hub, _ = oidc_hub
    browser, r = _oidc_login(hub, "olga", "olga-idp-secret")
    try:
        # a member of one organization lands on its home
        assert r.status_code == 200 and str(r.url) == hub.url + "/services/datapilot/orgs/acme/", (
            r.status_code,
            str(r.url),
            hub.log_tail(),
        )
        assert _members(hub, "acme")["olga"] == "analyst"
        assert browser.get("/services/datapilot/").status_code == 200
        me = browser.get("/services/datapilot/api/v1/me").json()
        assert me["name"] == "olga"
        assert browser.get("/services/datapilot/api/v1/orgs/acme/datasets").status_code == 200
    finally:
        browser.close()


def test_oidc_mapping_table_and_strongest_role(oidc_hub):
    hub, _ = oidc_hub
    browser, r = _oidc_login(hub, "mark", "mark-idp-secret")
    browser.close()
    assert r.status_code == 200, hub.log_tail()
    assert _members(hub, "acme")["mark"] == "manager"


def test_oidc_user_without_a_mapped_claim_is_refused(oidc_hub):
    hub, _ = oidc_hub
    browser, r = _oidc_login(hub, "nina", "nina-idp-secret")
    browser.close()
    assert r.status_code == 403, (r.status_code, str(r.url))
    assert hub.hub_api("GET", "/users/nina").status_code == 404


def test_oidc_claims_do_not_create_organizations_by_default(oidc_hub):
    hub, _ = oidc_hub
    browser, r = _oidc_login(hub, "gus", "gus-idp-secret")
    browser.close()
    assert r.status_code == 200
    assert hub.api("GET", "/orgs/globex", hub.admin_token).status_code == 404


def test_oidc_wrong_password_stays_at_the_provider(oidc_hub):
    hub, provider = oidc_hub
    browser, r = _oidc_login(hub, "olga", "wrong")
    try:
        assert str(r.url).startswith(provider.issuer) and "Invalid login" in r.text
        assert browser.get("/hub/api/user").status_code in (401, 403)
    finally:
        browser.close()


# ---- the mapping itself ----------------------------------------------------------------


def test_parse_org_role():
    assert parse_org_role("acme:analyst") == ("acme", "analyst")
    assert parse_org_role("team:acme:admin") is None  # "team:acme" is not a slug
    assert parse_org_role("acme:owner") is None
    assert parse_org_role("Acme:viewer") is None
    assert parse_org_role("staff") is None


def test_memberships_for_claims(monkeypatch):
    monkeypatch.setenv("DATAPILOT_AUTH_ORG_MAPPING", json.dumps({"it": "acme:admin"}))
    auth = DatapilotOIDCAuthenticator()
    claims = ["acme:viewer", "it", "beta:analyst", "nonsense", "beta:viewer", "acme\n:admin"]
    # by default only the mapping: a group anyone could make names no organization
    assert auth.org_role_claims is False
    assert auth.memberships_for(claims) == {"acme": "admin"}
    auth.org_role_claims = True
    assert auth.memberships_for(claims) == {"acme": "admin", "beta": "analyst"}
    monkeypatch.setenv("DATAPILOT_AUTH_ORG_ROLE_CLAIMS", "1")
    assert DatapilotOIDCAuthenticator().org_role_claims is True
    with pytest.raises(Exception, match="not '<org>:<role>'"):
        auth.org_role_mapping = {"x": "acme:owner"}


def _github_login(teams: list[tuple[str, str]]) -> dict:
    """The auth model GitHubOAuthenticator makes for a user in these (org, team) pairs."""
    return {
        "name": "octo",
        "admin": None,
        "auth_state": {
            "token_response": {"access_token": "not-used", "token_type": "bearer"},
            "teams": [{"organization": {"login": org}, "slug": team} for org, team in teams],
        },
    }


def test_github_teams_are_the_claims():
    auth = DatapilotGitHubOAuthenticator()
    teams = [
        {"organization": {"login": "Acme"}, "slug": "analyst"},
        {"organization": {"login": "acme"}, "slug": "data-team"},
        {"slug": "orphan"},
    ]
    claims = auth.org_claims({"auth_state": {"teams": teams}})
    assert claims == ["acme:analyst", "acme:data-team"]
    auth.org_role_mapping = {"acme:data-team": "acme:manager"}
    assert auth.memberships_for(claims) == {"acme": "manager"}


async def test_a_github_org_named_like_a_slug_gets_nothing_by_default(monkeypatch):
    """Anyone can create the GitHub organization "acme" with a team "admin"."""
    monkeypatch.delenv("DATAPILOT_AUTH_ORG_ROLE_CLAIMS", raising=False)
    monkeypatch.delenv("DATAPILOT_GITHUB_TRUSTED_ORGS", raising=False)
    auth = DatapilotGitHubOAuthenticator()
    login = _github_login([("acme", "admin"), ("globex", "analyst")])
    assert auth.memberships_for(auth.org_claims(login)) == {}
    assert await auth.check_allowed("octo", login) is False
    assert auth.trusted_github_orgs == set() and auth.org_role_claims is False
    # turning direct claims on is not enough: the GitHub organization must be trusted
    auth.org_role_claims = True
    assert auth.memberships_for(auth.org_claims(login)) == {}
    assert await auth.check_allowed("octo", login) is False


async def test_github_teams_map_through_the_mapping_or_a_trusted_org(monkeypatch):
    monkeypatch.delenv("DATAPILOT_AUTH_ORG_ROLE_CLAIMS", raising=False)
    monkeypatch.setenv("DATAPILOT_GITHUB_TRUSTED_ORGS", "Acme, initech")
    monkeypatch.setenv(
        "DATAPILOT_AUTH_ORG_MAPPING", json.dumps({"globex-corp:data": "globex:analyst"})
    )
    auth = DatapilotGitHubOAuthenticator()
    assert auth.trusted_github_orgs == {"acme", "initech"} and auth.org_role_claims is True
    trusted = _github_login([("ACME", "admin"), ("acme", "data-team")])
    assert auth.memberships_for(auth.org_claims(trusted)) == {"acme": "admin"}
    assert await auth.check_allowed("octo", trusted) is True
    # an organization nobody listed: only the team the mapping names exactly
    mapped = _github_login([("globex-corp", "data"), ("globex", "admin"), ("evil", "admin")])
    assert auth.memberships_for(auth.org_claims(mapped)) == {"globex": "analyst"}
    assert await auth.check_allowed("octo", mapped) is True
    stranger = _github_login([("globex", "admin"), ("acme-fake", "admin")])
    assert await auth.check_allowed("octo", stranger) is False
    # and $DATAPILOT_AUTH_ORG_ROLE_CLAIMS=0 leaves only the mapping
    monkeypatch.setenv("DATAPILOT_AUTH_ORG_ROLE_CLAIMS", "0")
    auth = DatapilotGitHubOAuthenticator()
    assert auth.memberships_for(auth.org_claims(trusted)) == {}
    assert auth.memberships_for(auth.org_claims(mapped)) == {"globex": "analyst"}


def test_github_login_goes_to_github_with_the_org_scope(hub_home):
    """A hub with DATAPILOT_AUTH=github sends the browser to GitHub (not reachable here)."""
    hub = HubProcess(
        hub_home,
        env={
            "DATAPILOT_AUTH": "github",
            "DATAPILOT_GITHUB_CLIENT_ID": "gh-client",
            "DATAPILOT_GITHUB_CLIENT_SECRET": "gh-secret",
        },
    )
    hub.start()
    try:
        with httpx.Client(base_url=hub.url, timeout=30) as browser:
            r = browser.get("/hub/oauth_login")
        assert r.status_code == 302
        location = r.headers["location"]
        assert location.startswith("https://github.com/login/oauth/authorize?"), location
        assert "client_id=gh-client" in location and "read%3Aorg" in location
        assert f"redirect_uri={quote(hub.url + '/hub/oauth_callback', safe='')}&" in location
    finally:
        hub.stop()


@pytest.mark.parametrize(
    "cls",
    [
        DatapilotNativeAuthenticator,
        OrgClaimsMixin,
        DatapilotOIDCAuthenticator,
        DatapilotGitHubOAuthenticator,
    ],
)
def test_every_login_trait_has_help(cls):
    for name in cls.class_own_traits(config=True):
        trait = cls.class_traits()[name]
        assert trait.help and len(trait.help.strip()) > 20, f"{cls.__name__}.{name} has no help"
        assert "Example::" in trait.help, f"{cls.__name__}.{name} has no example"
