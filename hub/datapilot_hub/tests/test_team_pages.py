"""Team pages (members, invitations, settings, plan and usage, audit) through a real hub.

One hub for the module; two browser logins (an Admin and an Analyst of ``acorn``), API
tokens for the rest. Every action goes through the page's form with its ``_xsrf`` token,
and its effect is checked through the API.
"""

from __future__ import annotations

import csv
import io
import re

import httpx
import pytest

from datapilot_hub.service.pages import environment, human_bytes, number, template_dir, when
from datapilot_hub.service.pages.team import size_field

from .utils import REPO, form_xsrf, hub_browser

PAGES = ("members", "invitations", "settings", "plan", "audit")
# an organization name with markup in it: it must come out escaped
ORG_NAME = "Acorn <i>&</i> Oak"
ORG_NAME_HTML = "Acorn &lt;i&gt;&amp;&lt;/i&gt; Oak"


def page_url(slug: str, page: str) -> str:
    return f"/services/datapilot/orgs/{slug}/{page}"


@pytest.fixture(scope="module")
def team(sqlite_hub):
    """acorn: ava (admin, browser), abe (analyst, browser), amy (manager, token);
    birch: bo (admin, token)."""
    hub = sqlite_hub
    hub.create_org("acorn", ORG_NAME)
    hub.create_org("birch", "Birch Ltd")
    for org, user, role in (
        ("acorn", "ava", "admin"),
        ("acorn", "abe", "analyst"),
        ("acorn", "amy", "manager"),
        ("birch", "bo", "admin"),
    ):
        assert hub.hub_api("POST", f"/users/{user}").status_code in (201, 409)
        hub.add_member(org, user, role)
    browsers = {"ava": hub_browser(hub, "ava"), "abe": hub_browser(hub, "abe")}
    tokens = {u: hub.user_token(u) for u in ("amy", "bo", "ava")}
    yield {"hub": hub, "tokens": tokens, **browsers}
    for b in browsers.values():
        b.close()


def _submit(browser: httpx.Client, page: str, data: dict[str, str]) -> httpx.Response:
    """Open a page and POST one of its forms (with the page's _xsrf token)."""
    shown = browser.get(page)
    assert shown.status_code == 200, (shown.status_code, shown.text[:300])
    return browser.post(page, data={**data, "_xsrf": form_xsrf(shown)})


def _flash(page: httpx.Response) -> str:
    found = re.search(r'id="(?:flash|error)">(.*?)</div>', page.text, re.S)
    assert found, page.text[:500]
    return found.group(1).strip()


def _members(hub, token: str, org: str = "acorn") -> dict[str, str]:
    r = hub.api("GET", f"/orgs/{org}/members", token)
    return {m["name"]: m["role"] for m in r.json()["members"]}


# -- templates ------------------------------------------------------------------------------


def test_templates_are_found_and_compile():
    assert template_dir() == REPO / "templates" / "datapilot"
    env = environment()
    assert env.autoescape is True
    for path in template_dir().glob("*.html"):
        env.get_template(path.name)
    assert human_bytes(None) == "unlimited" and human_bytes(2 * 1024**3) == "2 GiB"
    assert human_bytes(1536) == "1.5 KiB" and human_bytes(12) == "12 B"
    assert size_field(2 * 1024**3) == "2G" and size_field(None) == "" and size_field(1000) == "1000"
    # times without microseconds, amounts rounded for reading
    assert when("2026-11-27T18:03:04.123456+00:00") == "2026-11-27 18:03 UTC"
    assert when("2026-11-27T18:03:04.123456", "seconds") == "2026-11-27 18:03:04 UTC"
    assert when(None) == "" and when("not a time") == "not a time"
    assert number(60.05793532099983, 1) == "60.1" and number(1234567) == "1,234,567"
    assert number(3.0, 2) == "3" and number(None) == ""


# -- every page, for members and strangers ------------------------------------------------


def test_each_page_renders_for_a_member(team):
    ava = team["ava"]
    for page in PAGES:
        r = ava.get(page_url("acorn", page))
        assert r.status_code == 200, (page, r.status_code, r.text[:300])
        assert r.headers["content-type"].startswith("text/html")
        assert "frame-ancestors 'none'" in r.headers["content-security-policy"]
        # the JupyterHub look: the hub's stylesheet and navigation
        assert '/hub/static/css/style.min.css"' in r.text and 'href="/hub/home"' in r.text
        assert ORG_NAME_HTML in r.text and ORG_NAME not in r.text, page
        assert 'aria-current="page"' in r.text
    members = ava.get(page_url("acorn", "members")).text
    for name, role in (("ava", "admin"), ("abe", "analyst"), ("amy", "manager")):
        assert f'data-user="{name}"' in members
        assert f'<option value="{role}" selected>' in members
    assert 'id="add-member"' in members
    plan = ava.get(page_url("acorn", "plan")).text
    assert '<span id="plan-name">free</span>' in plan
    assert 'data-limit="members"' in plan and "1 GiB" in plan  # the free plan's storage
    settings = ava.get(page_url("acorn", "settings")).text
    assert 'id="settings-form"' in settings and 'name="mem_limit"' in settings
    # the bare organization URL opens its home: its datasets
    home = ava.get("/services/datapilot/orgs/acorn")
    assert home.url.path == "/services/datapilot/orgs/acorn" and 'id="no-datasets"' in home.text


def test_the_hub_home_page_links_each_org_to_its_team_pages(team):
    home = team["ava"].get("/hub/home")
    assert home.status_code == 200
    assert f'href="{page_url("acorn", "members")}"' in home.text
    assert page_url("birch", "members") not in home.text
    # the organization's name (published in its hub group's properties), not its slug
    assert f'<a class="org-home" href="/services/datapilot/orgs/acorn/">{ORG_NAME_HTML}</a>' in (
        home.text
    )
    # a server that does not run says so
    assert '<span class="server-state">not running</span>' in home.text


def test_the_hub_home_offers_a_server_only_where_the_role_has_one(team):
    """A Viewer never sees a start button (nor the menu) the spawner would refuse."""
    hub = team["hub"]
    assert hub.hub_api("POST", "/users/val").status_code in (201, 409)
    hub.add_member("acorn", "val", "viewer")
    hub.add_member("birch", "val", "analyst")
    val = hub_browser(hub, "val")
    home = val.get("/hub/home").text
    assert 'id="start-birch"' in home and 'id="start-acorn"' not in home
    assert 'id="no-server-acorn"' in home and 'id="nav-servers"' in home
    # only a Viewer anywhere: no menu either, on the hub's pages as on the service's
    hub.api("DELETE", "/orgs/birch/members/val", hub.admin_token)
    token_page = val.get("/hub/token").text
    assert 'id="nav-servers"' not in token_page
    assert 'id="nav-servers"' not in val.get("/services/datapilot/orgs/acorn/").text
    # a new role is published with it
    hub.add_member("acorn", "val", "analyst")
    home = val.get("/hub/home").text
    assert 'id="start-acorn"' in home and 'id="nav-servers"' in home
    # the Admin of acorn keeps her button
    assert 'id="start-acorn"' in team["ava"].get("/hub/home").text
    hub.api("DELETE", "/orgs/acorn/members/val", hub.admin_token)


def test_another_org_gets_404_and_strangers_the_login(team):
    hub, bo = team["hub"], team["tokens"]["bo"]
    headers = {"Authorization": f"token {bo}"}
    with httpx.Client(base_url=hub.url, headers=headers, timeout=60) as c:
        for page in PAGES:
            r = c.get(page_url("acorn", page))
            assert r.status_code == 404, (page, r.status_code)
            # the same answer as for an organization that does not exist
            assert ORG_NAME_HTML not in r.text and "No organization named &#39;acorn&#39;" in r.text
        for page, data in (
            ("members", {"action": "add", "user": "bo", "role": "admin"}),
            ("invitations", {"action": "create", "role": "admin"}),
            ("settings", {"action": "update", "name": "Taken"}),
        ):
            r = c.post(page_url("acorn", page), data=data)
            assert r.status_code == 404, (page, r.status_code)
        # the same pages of bo's own organization work
        assert c.get(page_url("birch", "members")).status_code == 200
        assert c.get(page_url("nosuch", "members")).status_code == 404
    assert "bo" not in _members(hub, team["tokens"]["ava"])
    assert hub.api("GET", "/orgs/acorn/settings", team["tokens"]["ava"]).json()["name"] == ORG_NAME
    r = httpx.get(f"{hub.url}{page_url('acorn', 'members')}", follow_redirects=False)
    assert r.status_code == 302 and "/hub/" in r.headers["location"]


# -- actions through the forms --------------------------------------------------------------


def test_add_change_role_and_remove_a_member(team):
    hub, ava, token = team["hub"], team["ava"], team["tokens"]["ava"]
    url = page_url("acorn", "members")
    r = _submit(ava, url, {"action": "add", "user": "ann", "role": "viewer"})
    assert r.status_code == 200 and r.history[0].status_code == 303, r.text[:300]
    assert "Added ann: viewer." in _flash(r)
    assert _members(hub, token)["ann"] == "viewer"
    # the message is shown once
    assert 'id="flash"' not in ava.get(url).text

    r = _submit(ava, url, {"action": "role", "user": "ann", "role": "manager"})
    assert r.status_code == 200 and "Changed the role of ann: manager." in _flash(r)
    assert _members(hub, token)["ann"] == "manager"

    r = _submit(ava, url, {"action": "remove", "user": "ann"})
    assert r.status_code == 200 and "Removed ann" in _flash(r)
    assert "ann" not in _members(hub, token)

    # refusals show on the page with their status
    r = _submit(ava, url, {"action": "role", "user": "ava", "role": "viewer"})
    assert r.status_code == 409 and "last Admin" in _flash(r)
    assert _members(hub, token)["ava"] == "admin"
    r = _submit(ava, url, {"action": "add", "user": "ann", "role": "owner"})
    assert r.status_code == 400 and "role must be one of" in _flash(r)
    r = _submit(ava, url, {"action": "explode"})
    assert r.status_code == 400 and "action must be one of" in r.text
    # a name the hub refuses (password accounts: no spaces) is a 400 that adds no one
    r = _submit(ava, url, {"action": "add", "user": "ann smith", "role": "viewer"})
    assert r.status_code == 400 and "refuses the user name" in _flash(r), r.text[:300]
    assert "ann smith" in _flash(r)
    assert "ann smith" not in _members(hub, token)
    r = _submit(ava, url, {"action": "remove", "user": "ann smith"})
    assert r.status_code == 404, r.text[:300]
    # without the form's _xsrf token the login cookie is not accepted for a POST
    r = ava.post(url, data={"action": "add", "user": "ann", "role": "viewer"})
    assert r.status_code == 403
    assert "ann" not in _members(hub, token)


def test_create_show_once_and_revoke_an_invitation(team):
    hub, ava, token = team["hub"], team["ava"], team["tokens"]["ava"]
    url = page_url("acorn", "invitations")
    r = _submit(
        ava,
        url,
        {"action": "create", "role": "viewer", "email": "v@example.org", "expires_in": "3600"},
    )
    assert r.status_code == 201, r.text[:300]
    link = re.search(r'id="invitation-link"[^>]*value="([^"]+)"', r.text)
    assert link, r.text[:1000]
    assert link.group(1).startswith(f"{hub.url}/services/datapilot/invitations/")
    code = link.group(1).rsplit("/", 1)[1]
    [inv] = [
        i
        for i in hub.api("GET", "/orgs/acorn/invitations", token).json()["invitations"]
        if i["email"] == "v@example.org"
    ]
    assert inv["role"] == "viewer" and inv["state"] == "pending"
    listed = ava.get(url)
    assert code not in listed.text and f'data-invitation="{inv["id"]}"' in listed.text

    r = _submit(ava, url, {"action": "revoke", "invitation": inv["id"]})
    assert r.status_code == 200 and "revoked" in _flash(r)
    states = {
        i["id"]: i["state"]
        for i in hub.api("GET", "/orgs/acorn/invitations", token).json()["invitations"]
    }
    assert states[inv["id"]] == "revoked"
    r = hub.api("POST", f"/invitations/{code}/accept", team["tokens"]["bo"])
    assert r.status_code == 409 and r.json()["error"] == "invitation_revoked"

    r = _submit(ava, url, {"action": "create", "role": "viewer", "email": "not an address"})
    assert r.status_code == 400 and "email must be" in _flash(r)
    r = _submit(ava, url, {"action": "revoke", "invitation": "no-such-id"})
    assert r.status_code == 404 and 'id="create-invitation"' in r.text


def test_change_settings(team):
    hub, ava, token = team["hub"], team["ava"], team["tokens"]["ava"]
    url = page_url("acorn", "settings")
    form = {
        "action": "update",
        "name": ORG_NAME,
        "default_role": "viewer",
        "mem_limit": "2G",
        "cpu_limit": "1.5",
        "idle_timeout": "3600",
    }
    r = _submit(ava, url, form)
    assert r.status_code == 200 and "Settings saved." in _flash(r)
    settings = hub.api("GET", "/orgs/acorn/settings", token).json()
    assert settings == {
        "name": ORG_NAME,
        "default_role": "viewer",
        "mem_limit": 2 * 1024**3,
        "cpu_limit": 1.5,
        "idle_timeout": 3600,
    }
    assert 'value="2G"' in r.text and 'value="1.5"' in r.text
    r = _submit(ava, url, {**form, "cpu_limit": "lots"})
    assert r.status_code == 400 and "cpu_limit must be a number" in _flash(r)
    r = _submit(ava, url, {**form, "idle_timeout": "5"})
    assert r.status_code == 400 and "idle_timeout" in _flash(r)
    # empty limits go back to the hub's defaults
    r = _submit(ava, url, {**form, "mem_limit": "", "cpu_limit": "", "idle_timeout": ""})
    assert r.status_code == 200
    settings = hub.api("GET", "/orgs/acorn/settings", token).json()
    assert (settings["mem_limit"], settings["cpu_limit"], settings["idle_timeout"]) == (None,) * 3


def test_a_role_without_the_permission_reads_or_gets_403(team):
    hub, abe, token = team["hub"], team["abe"], team["tokens"]["ava"]
    members = abe.get(page_url("acorn", "members"))
    assert members.status_code == 200 and 'data-user="ava"' in members.text
    assert 'id="add-member"' not in members.text and 'id="read-only"' in members.text
    settings = abe.get(page_url("acorn", "settings"))
    assert settings.status_code == 200 and 'id="settings-form"' not in settings.text
    assert abe.get(page_url("acorn", "plan")).status_code == 200
    # the tabs offer only what the role may see
    assert page_url("acorn", "audit") not in members.text
    for page in ("invitations", "audit"):
        r = abe.get(page_url("acorn", page))
        assert r.status_code == 403, (page, r.status_code)
        assert "does not allow" in r.text
    # the forms' actions, posted with a valid _xsrf token (the page has no form to take it
    # from; the service's _xsrf cookie holds it): 403, and nothing changes
    [xsrf] = [
        c.value
        for c in abe.cookies.jar
        if c.name == "_xsrf" and c.path.startswith("/services/datapilot")
    ]
    for page, data in (
        ("members", {"action": "add", "user": "abe2", "role": "admin"}),
        ("members", {"action": "role", "user": "abe", "role": "admin"}),
        ("members", {"action": "remove", "user": "ava"}),
        ("invitations", {"action": "create", "role": "admin"}),
        ("settings", {"action": "update", "name": "Hijacked"}),
    ):
        r = abe.post(page_url("acorn", page), data={**data, "_xsrf": xsrf})
        assert r.status_code == 403, (page, data, r.status_code)
        assert "does not allow" in r.text
    assert _members(hub, token) == {"ava": "admin", "abe": "analyst", "amy": "manager"}
    assert hub.api("GET", "/orgs/acorn/settings", token).json()["name"] == ORG_NAME
    # a manager reads the audit log but does not manage members
    headers = {"Authorization": f"token {team['tokens']['amy']}"}
    assert httpx.get(f"{hub.url}{page_url('acorn', 'audit')}", headers=headers).status_code == 200
    r = httpx.post(
        f"{hub.url}{page_url('acorn', 'invitations')}", headers=headers, data={"action": "create"}
    )
    assert r.status_code == 403


def test_a_hub_admin_changes_the_plan(team):
    hub = team["hub"]
    headers = {"Authorization": f"token {hub.admin_token}"}
    url = f"{hub.url}{page_url('birch', 'plan')}"
    assert 'id="plan-form"' in httpx.get(url, headers=headers).text
    r = httpx.post(url, headers=headers, data={"action": "plan", "plan": "team"})
    assert r.status_code == 303, r.text[:300]
    assert hub.api("GET", "/orgs/birch", hub.admin_token).json()["plan"] == "team"
    # an organization's own Admin may not
    bo = {"Authorization": f"token {team['tokens']['bo']}"}
    assert 'id="plan-form"' not in httpx.get(url, headers=bo).text
    r = httpx.post(url, headers=bo, data={"action": "plan", "plan": "business"})
    assert r.status_code == 403 and "hub administrators" in r.text


def test_the_audit_page_shows_filters_and_exports_the_events(team):
    ava = team["ava"]
    _submit(ava, page_url("acorn", "members"), {"action": "add", "user": "aud", "role": "viewer"})
    url = page_url("acorn", "audit")
    page = ava.get(url)
    assert page.status_code == 200
    actions = re.findall(r'class="audit-action">([^<]+)<', page.text)
    for action in (
        "member.set",
        "member.remove",
        "invitation.create",
        "invitation.revoke",
        "org.settings",
    ):
        assert action in actions, (action, actions)
    assert "via=page" in page.text and "forbidden" in page.text  # abe's refused posts
    only = ava.get(url, params={"action": "member.remove", "user": "ava"})
    assert set(re.findall(r'class="audit-action">([^<]+)<', only.text)) == {"member.remove"}
    targets = re.findall(r'class="audit-target">([^<]*)<', only.text)
    assert "ann" in targets and "aud" not in targets
    bad = ava.get(url, params={"since": "yesterday"})
    assert bad.status_code == 400 and "since must be an ISO 8601 time" in bad.text
    assert 'id="audit-filter"' in bad.text
    # the export link is the API's CSV, with the same filters, readable with the login cookie
    export = re.search(r'id="csv-export" href="([^"]+)"', only.text).group(1).replace("&amp;", "&")
    assert "format=csv" in export and "action=member.remove" in export
    r = ava.get(export)
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(r.text)))
    assert rows and {row["action"] for row in rows} == {"member.remove"}
    # the plan change of the hub admin is in birch's log, through the page
    bo = {"Authorization": f"token {team['tokens']['bo']}"}
    birch = httpx.get(f"{team['hub'].url}{page_url('birch', 'audit')}", headers=bo).text
    assert "org.plan" in birch and "plan=team" in birch
    # nothing to post on the audit page
    xsrf = form_xsrf(ava.get(page_url("acorn", "members")))
    assert ava.post(url, data={"_xsrf": xsrf}).status_code == 405
    paged = ava.get(url, params={"limit": "1"})
    assert len(re.findall(r'class="audit-action"', paged.text)) == 1 and 'id="older"' in paged.text
