"""Invitations: single use, expiry, revocation, the page of the link; domain and real hub."""

from __future__ import annotations

from datetime import timedelta
from urllib.parse import quote

import httpx
import pytest
from sqlalchemy import select, update

from datapilot_hub.catalog import Invitation, utcnow
from datapilot_hub.domain._identity import Caller, org_context
from datapilot_hub.domain.invitations import InvitationService, hash_code
from datapilot_hub.errors import DatapilotError
from datapilot_hub.hubapi import HubClient

from .utils import form_xsrf, hub_login, hub_signup

# ---- domain ---------------------------------------------------------------------------


@pytest.fixture
def invitations(catalog):
    return InvitationService(catalog, HubClient(api_url="", token=""))


async def test_only_the_hash_is_stored(catalog, two_orgs, invitations):
    inv = invitations.create(two_orgs["alpha", "ada"], "viewer", "x@example.org", 3600)
    code = inv["code"]
    assert inv["state"] == "pending" and inv["role"] == "viewer"
    with catalog.session(system=True) as db:
        row = db.scalar(select(Invitation).where(Invitation.id == inv["id"]))
        stored = {str(getattr(row, c.name)) for c in Invitation.__table__.columns}
    assert code not in stored and hash_code(code) in stored
    assert all("code" not in i for i in invitations.list(two_orgs["alpha", "ada"]))


async def test_accept_once_then_409(catalog, two_orgs, invitations):
    code = invitations.create(two_orgs["alpha", "ada"], "analyst")["code"]
    joined = await invitations.accept(Caller("newcomer"), code)
    assert joined["organization"] == "alpha" and joined["role"] == "analyst"
    assert org_context(catalog, Caller("newcomer"), "alpha").role == "analyst"
    with pytest.raises(DatapilotError) as e:
        await invitations.accept(Caller("someone"), code)
    assert (e.value.status, e.value.code) == (409, "invitation_used")
    [listed] = invitations.list(two_orgs["alpha", "ada"])
    assert listed["state"] == "used" and listed["used_by"] == "newcomer"


async def test_expired_revoked_unknown_and_members(catalog, two_orgs, invitations):
    admin = two_orgs["alpha", "ada"]
    expired = invitations.create(admin, "viewer", expires_in=60)
    with catalog.session(admin.org_id) as db:
        db.execute(
            update(Invitation)
            .where(Invitation.id == expired["id"])
            .values(expires=utcnow() - timedelta(seconds=1))
        )
    with pytest.raises(DatapilotError) as e:
        await invitations.accept(Caller("late"), expired["code"])
    assert (e.value.status, e.value.code) == (409, "invitation_expired")
    assert "expired" in e.value.message

    revoked = invitations.create(admin, "viewer")
    assert invitations.revoke(admin, revoked["id"])["state"] == "revoked"
    with pytest.raises(DatapilotError) as e:
        await invitations.accept(Caller("late"), revoked["code"])
    assert (e.value.status, e.value.code) == (409, "invitation_revoked")

    with pytest.raises(DatapilotError) as e:
        await invitations.accept(Caller("late"), "x" * 43)
    assert e.value.status == 404

    member = invitations.create(admin, "viewer")
    with pytest.raises(DatapilotError) as e:
        await invitations.accept(Caller("alice"), member["code"])
    assert (e.value.status, e.value.code) == (409, "already_member")
    # the refused attempt did not use the invitation up
    assert await invitations.accept(Caller("fresh"), member["code"])


async def test_default_role_and_isolation(catalog, two_orgs, invitations):
    inv = invitations.create(two_orgs["alpha", "ada"])
    assert inv["role"] == "analyst"
    with pytest.raises(DatapilotError) as e:
        invitations.create(two_orgs["alpha", "alice"], "viewer")
    assert e.value.status == 403
    # another organization's admin cannot revoke it: it does not exist for them
    with pytest.raises(DatapilotError) as e:
        invitations.revoke(two_orgs["beta", "bea"], inv["id"])
    assert e.value.status == 404


@pytest.mark.parametrize(
    "kwargs, field",
    [
        ({"role": "owner"}, "role"),
        ({"role": "viewer", "email": "not an address"}, "email"),
        ({"role": "viewer", "expires_in": 5}, "expires_in"),
        ({"role": "viewer", "expires_in": "1d"}, "expires_in"),
    ],
)
async def test_bad_input_names_the_field(two_orgs, invitations, kwargs, field):
    with pytest.raises(DatapilotError) as e:
        invitations.create(two_orgs["alpha", "ada"], **kwargs)
    assert e.value.status == 400 and e.value.details["field"] == field


# ---- through the hub --------------------------------------------------------------------


@pytest.fixture(scope="module")
def team(hub):
    """north: nadia (admin), nick (analyst); south: sue (admin)."""
    hub.create_org("north", "North Ltd")
    hub.create_org("south", "South Ltd")
    hub.add_member("north", "nadia", "admin")
    hub.add_member("north", "nick", "analyst")
    hub.add_member("south", "sue", "admin")
    for user in ("joiner", "pagejoiner"):
        assert hub.hub_api("POST", f"/users/{user}").status_code in (201, 409)
    names = ("nadia", "nick", "sue", "joiner", "pagejoiner")
    return {u: hub.user_token(u) for u in names}


def test_invite_accept_and_hub_group(hub, team):
    r = hub.api(
        "POST",
        "/orgs/north/invitations",
        team["nadia"],
        json={"role": "viewer", "email": "j@example.org", "expires_in": 3600},
    )
    assert r.status_code == 201, r.text
    inv = r.json()
    assert inv["link"] == f"/services/datapilot/invitations/{inv['code']}"
    assert inv["accept_url"].endswith(f"/api/v1/invitations/{inv['code']}/accept")
    assert r.headers["Location"].endswith(f"/orgs/north/invitations/{inv['id']}")
    listed = hub.api("GET", "/orgs/north/invitations", team["nadia"]).json()["invitations"]
    assert [i["id"] for i in listed] == [inv["id"]] and "code" not in listed[0]

    r = hub.api("POST", f"/invitations/{inv['code']}/accept", team["joiner"])
    assert r.status_code == 200, r.text
    assert r.json()["organization"] == "north" and r.json()["role"] == "viewer"
    me = hub.api("GET", "/me", team["joiner"]).json()
    assert [(o["slug"], o["role"]) for o in me["organizations"]] == [("north", "viewer")]
    assert "joiner" in hub.hub_api("GET", "/groups/org-north").json()["users"]
    audit = hub.api("GET", "/orgs/north/audit", team["nadia"]).json()["events"]
    actions = {(e["action"], e["target"], e["outcome"]) for e in audit}
    # the target of an invitation is the person invited (its id when it names no e-mail)
    assert ("invitation.create", inv["email"] or inv["id"], "ok") in actions
    assert ("invitation.accept", "joiner", "ok") in actions
    assert inv["code"] not in str(audit)

    r = hub.api("POST", f"/invitations/{inv['code']}/accept", team["sue"])
    assert r.status_code == 409 and r.json()["error"] == "invitation_used"
    r = hub.api("DELETE", f"/orgs/north/invitations/{inv['id']}", team["nadia"])
    assert r.status_code == 409 and r.json()["error"] == "invitation_used"


def test_revoke_and_conflicts(hub, team):
    inv = hub.api("POST", "/orgs/north/invitations", team["nadia"], json={}).json()
    assert inv["role"] == "analyst"
    r = hub.api("POST", f"/invitations/{inv['code']}/accept", team["nick"])
    assert r.status_code == 409 and r.json()["error"] == "already_member"
    r = hub.api("DELETE", f"/orgs/north/invitations/{inv['id']}", team["nadia"])
    assert r.status_code == 200 and r.json()["state"] == "revoked"
    r = hub.api("POST", f"/invitations/{inv['code']}/accept", team["sue"])
    assert r.status_code == 409 and r.json()["error"] == "invitation_revoked"
    r = hub.api("POST", "/invitations/not-a-code/accept", team["sue"])
    assert r.status_code == 404
    assert hub.api("POST", f"/invitations/{inv['code']}/accept").status_code == 401


def test_permissions_isolation_and_bad_input(hub, team):
    inv = hub.api("POST", "/orgs/north/invitations", team["nadia"], json={}).json()
    # a role without members:manage: 403
    for method, path, body in (
        ("GET", "/orgs/north/invitations", None),
        ("POST", "/orgs/north/invitations", {"role": "admin"}),
        ("DELETE", f"/orgs/north/invitations/{inv['id']}", None),
    ):
        r = hub.api(method, path, team["nick"], json=body)
        assert r.status_code == 403, (method, path, r.text)
        assert r.json()["details"]["permission"] == "members:manage"
        # another organization's admin: 404
        r = hub.api(method, path, team["sue"], json=body)
        assert r.status_code == 404, (method, path, r.text)
    # south's admin cannot revoke north's invitation through south either
    r = hub.api("DELETE", f"/orgs/south/invitations/{inv['id']}", team["sue"])
    assert r.status_code == 404
    for body, field in (
        ({"role": "root"}, "role"),
        ({"role": "viewer", "email": 7}, "email"),
        ({"role": "viewer", "expires_in": 10**9}, "expires_in"),
    ):
        r = hub.api("POST", "/orgs/north/invitations", team["nadia"], json=body)
        assert r.status_code == 400 and r.json()["details"]["field"] == field, r.text
    r = hub.api("POST", "/orgs/north/invitations", team["nadia"], content=b"[1]")
    assert r.status_code == 400


def test_the_link_opens_a_page_that_joins(hub, team):
    inv = hub.api("POST", "/orgs/north/invitations", team["nadia"], json={"role": "viewer"}).json()
    url = f"{hub.url}{inv['link']}"
    # not logged in: what the invitation is for, and the way in through sign-up or login,
    # back to the link's /join (the same page behind the login)
    anonymous = httpx.get(url, follow_redirects=False)
    assert anonymous.status_code == 200 and "Join North Ltd" in anonymous.text
    join = quote(f"{inv['link']}/join", safe="")
    assert f'href="/hub/signup?next={join}"' in anonymous.text
    assert f'href="/hub/login?next={join}"' in anonymous.text
    behind_login = httpx.get(f"{url}/join", follow_redirects=False)
    assert behind_login.status_code == 302 and "/hub/" in behind_login.headers["location"]
    headers = {"Authorization": f"token {team['pagejoiner']}"}
    page = httpx.get(url, headers=headers)
    assert page.status_code == 200 and "North Ltd" in page.text and "viewer" in page.text
    assert 'id="accept"' in page.text
    joined = httpx.post(url, headers=headers)
    # on to the organization's home, welcomed there
    assert joined.status_code == 303, joined.text
    assert joined.headers["location"] == "/services/datapilot/orgs/north/"
    again = httpx.get(url, headers=headers)
    assert again.status_code == 409 and "used" in again.text
    assert (
        httpx.get(f"{hub.url}/services/datapilot/invitations/nope", headers=headers).status_code
        == 404
    )


def test_a_new_user_signs_up_and_joins_in_the_browser(hub, team):
    """The link works for someone who signs up: sign up, log in, open the link, press Join.

    Without DATAPILOT_OPEN_SIGNUP a sign-up must be known to the hub to log in at once,
    so the hub user exists here (as when a hub admin authorizes or creates it).
    """
    inv = hub.api("POST", "/orgs/north/invitations", team["nadia"], json={"role": "analyst"})
    link = inv.json()["link"]
    assert hub.hub_api("POST", "/users/newbie").status_code in (201, 409)
    password = "pw-newbie-correct-horse"
    assert "alert-success" in hub_signup(hub, "newbie", password)
    browser = hub_login(hub, "newbie", password)
    try:
        page = browser.get(link)  # the service's OAuth dance, then the page
        assert page.status_code == 200 and "North Ltd" in page.text, page.text[:300]
        joined = browser.post(link, data={"_xsrf": form_xsrf(page)})
        assert joined.status_code == 200 and joined.url.path == "/services/datapilot/orgs/north/"
        assert "Welcome to North Ltd: you joined as analyst." in joined.text, joined.text[:300]
        # without the form's xsrf token a cookie POST is not taken as the user's
        again = browser.post(link, follow_redirects=False)
        assert again.status_code in (302, 401, 403), again.status_code
    finally:
        browser.close()
    me = hub.api("GET", "/me", hub.user_token("newbie")).json()
    assert ("north", "analyst") in [(o["slug"], o["role"]) for o in me["organizations"]]


def test_an_invitation_lets_a_new_person_sign_up_without_approval(hub, team):
    """No hub user, no open sign-up: the invitation in the sign-up's next is the proof.

    The new account is authorized, logged in and sent to the link's /join; the same
    sign-up without an invitation (or with a used one) waits for an administrator.
    """
    hub.create_org("east", "East Ltd")  # of its own: the plan caps members per organization
    hub.add_member("east", "erin", "admin")
    inv = hub.api("POST", "/orgs/east/invitations", hub.user_token("erin"), json={"role": "viewer"})
    link = inv.json()["link"]
    password = "pw-invited-correct-horse"
    with httpx.Client(base_url=hub.url, follow_redirects=True, timeout=60) as browser:
        signup = browser.get("/hub/signup", params={"next": f"{link}/join"})
        assert "invites you to <strong>East Ltd</strong>" in signup.text
        r = browser.post(
            "/hub/signup",
            params={"next": f"{link}/join"},
            data={
                "username": "invitee",
                "signup_password": password,
                "signup_password_confirmation": password,
                "_xsrf": form_xsrf(signup),
            },
        )
        # logged in and back on the invitation, behind the login: the Join button
        assert r.status_code == 200 and r.url.path == f"{link}/join", (r.url, r.text[:300])
        assert 'id="accept"' in r.text
        joined = browser.post(f"{link}/join", data={"_xsrf": form_xsrf(r)})
        assert joined.url.path == "/services/datapilot/orgs/east/", joined.text[:500]
    me = hub.api("GET", "/me", hub.user_token("invitee")).json()
    assert ("east", "viewer") in [(o["slug"], o["role"]) for o in me["organizations"]]
    # the link is used: a second sign-up with it is an ordinary one, waiting for approval
    assert "alert-info" in hub_signup(hub, "latecomer", password)
    with httpx.Client(base_url=hub.url, timeout=60) as browser:
        page = browser.get("/hub/signup", params={"next": f"{link}/join"})
        assert "invites you" not in page.text
    hub_login(hub, "latecomer", password, ok=False)


def test_a_name_the_hub_refuses_uses_up_nothing(hub, team):
    """A hub user made with upper-case letters (the hub's API allows it) cannot be a group
    member: the group API lowercases names. Accepting is refused with nothing changed."""
    hub.create_org("west", "West Ltd")  # of its own: the plan caps members per organization
    hub.add_member("west", "wanda", "admin")
    wanda = hub.user_token("wanda")
    assert hub.hub_api("POST", "/users/Quentin").status_code == 201
    quentin = hub.user_token("Quentin")
    inv = hub.api("POST", "/orgs/west/invitations", wanda, json={}).json()
    r = hub.api("POST", f"/invitations/{inv['code']}/accept", quentin)
    assert r.status_code == 400, r.text
    assert r.json()["error"] == "invalid_name" and r.json()["details"]["user"] == "Quentin"
    listed = hub.api("GET", "/orgs/west/invitations", wanda).json()["invitations"]
    assert [i["state"] for i in listed] == ["pending"]
    members = hub.api("GET", "/orgs/west/members", wanda).json()["members"]
    assert [m["name"] for m in members] == ["wanda"]
    assert hub.hub_api("GET", "/groups/org-west").json()["users"] == ["wanda"]
    assert hub.api("GET", "/me", quentin).json()["organizations"] == []
    # the invitation still works for someone the hub accepts
    assert hub.hub_api("POST", "/users/quinn").status_code == 201
    r = hub.api("POST", f"/invitations/{inv['code']}/accept", hub.user_token("quinn"))
    assert r.status_code == 200, r.text
