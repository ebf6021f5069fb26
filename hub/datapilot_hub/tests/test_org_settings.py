"""Organization settings, self-service organizations, deleting an organization, the hub
home page and the per-organization server limits and culling, against a real hub."""

from __future__ import annotations

import asyncio
import time
from datetime import timedelta

import pytest

from datapilot_hub.catalog import Catalog, utcnow
from datapilot_hub.domain.org_settings import parse_bytes, validate_settings
from datapilot_hub.domain.plans import Plans
from datapilot_hub.domain.servers import ServerWatcher
from datapilot_hub.errors import DatapilotError
from datapilot_hub.hubapi import HubClient

from .conftest import BACKENDS
from .utils import hub_login, hub_signup, running_hub

CSV = b"id,amount\n1,2.5\n2,3.5\n"


# ---- validation -------------------------------------------------------------------------


def test_sizes_parse():
    assert parse_bytes("2G") == 2 * 1024**3
    assert parse_bytes("512M") == 512 * 1024**2
    assert parse_bytes("1.5GiB") == int(1.5 * 1024**3)
    assert parse_bytes(1024**3) == 1024**3
    assert parse_bytes(None) is None


@pytest.mark.parametrize(
    "body, field",
    [
        ({"mem_limit": "lots"}, "mem_limit"),
        ({"mem_limit": "1K"}, "mem_limit"),
        ({"cpu_limit": 0}, "cpu_limit"),
        ({"cpu_limit": "2"}, "cpu_limit"),
        ({"idle_timeout": 5}, "idle_timeout"),
        ({"idle_timeout": 1.5}, "idle_timeout"),
        ({"default_role": "boss"}, "default_role"),
        ({"name": ""}, "name"),
        ({"colour": "red"}, "colour"),
    ],
)
def test_bad_settings_name_the_field(body, field):
    with pytest.raises(DatapilotError) as e:
        validate_settings(body)
    assert e.value.status == 400 and e.value.details["field"] == field


# ---- through the hub --------------------------------------------------------------------


@pytest.fixture(scope="module", params=BACKENDS)
def org_hub(request, tmp_path_factory):
    """A hub with self-service organizations on."""
    with running_hub(
        request,
        tmp_path_factory,
        request.param,
        env={"DATAPILOT_SELF_SERVICE_ORGS": "1", "DATAPILOT_SERVER_POLL_INTERVAL": "2"},
        label="orgs",
    ) as hub:
        yield hub


@pytest.fixture(scope="module")
def people(org_hub):
    hub = org_hub
    for user in ("founder", "ann", "vee", "stranger"):
        assert hub.hub_api("POST", f"/users/{user}").status_code in (201, 409)
    tokens = {u: hub.user_token(u) for u in ("founder", "ann", "vee", "stranger")}
    r = hub.api("POST", "/orgs", tokens["founder"], json={"slug": "self", "name": "Self Made"})
    assert r.status_code == 201, r.text
    r = hub.api("POST", "/orgs", tokens["stranger"], json={"slug": "elsewhere"})
    assert r.status_code == 201, r.text
    for user, role in (("ann", "analyst"), ("vee", "viewer")):
        r = hub.api("PUT", f"/orgs/self/members/{user}", tokens["founder"], json={"role": role})
        assert r.status_code == 201, r.text
    return tokens


def test_self_service_creator_becomes_admin(org_hub, people):
    me = org_hub.api("GET", "/me", people["founder"]).json()
    assert [(o["slug"], o["role"]) for o in me["organizations"]] == [("self", "admin")]
    assert "founder" in org_hub.hub_api("GET", "/groups/org-self").json()["users"]
    r = org_hub.api("POST", "/orgs", people["ann"], json={"slug": "Bad Slug"})
    assert r.status_code == 400 and r.json()["details"]["field"] == "slug"


def test_settings_read_and_change(org_hub, people):
    hub = org_hub
    settings = hub.api("GET", "/orgs/self/settings", people["vee"]).json()
    assert settings == {
        "name": "Self Made",
        "default_role": "analyst",
        "mem_limit": None,
        "cpu_limit": None,
        "idle_timeout": None,
    }
    change = {
        "name": "Self Made Ltd",
        "default_role": "viewer",
        "mem_limit": "1G",
        "cpu_limit": 1.5,
        "idle_timeout": 600,
    }
    r = hub.api("PATCH", "/orgs/self/settings", people["founder"], json=change)
    assert r.status_code == 200, r.text
    assert r.json() == {**change, "mem_limit": 1024**3}
    events = hub.api("GET", "/orgs/self/audit?action=org.settings", people["founder"]).json()
    assert [e["outcome"] for e in events["events"]] == ["ok"]
    assert hub.api("GET", "/orgs/self", people["vee"]).json()["name"] == "Self Made Ltd"
    # invitations now default to the new role
    inv = hub.api("POST", "/orgs/self/invitations", people["founder"], json={}).json()
    assert inv["role"] == "viewer"
    # null resets a limit
    r = hub.api("PATCH", "/orgs/self/settings", people["founder"], json={"idle_timeout": None})
    assert r.json()["idle_timeout"] is None and r.json()["cpu_limit"] == 1.5


def test_settings_permissions_isolation_and_bad_input(org_hub, people):
    hub = org_hub
    r = hub.api("PATCH", "/orgs/self/settings", people["ann"], json={"cpu_limit": 2})
    assert r.status_code == 403 and r.json()["details"]["permission"] == "org:manage"
    for method in ("GET", "PATCH"):
        r = hub.api(method, "/orgs/self/settings", people["stranger"], json={})
        assert r.status_code == 404
    r = hub.api("PATCH", "/orgs/self/settings", people["founder"], json={"mem_limit": "huge"})
    assert r.status_code == 400 and r.json()["details"]["field"] == "mem_limit"
    r = hub.api("PATCH", "/orgs/self/settings", people["founder"], content=b"nope")
    assert r.status_code == 400 and r.json()["error"] == "invalid_json"


def test_delete_organization(org_hub, people):
    """Only a hub admin; the data, the hub group and the members' servers go."""
    hub = org_hub
    r = hub.api("POST", "/orgs", people["ann"], json={"slug": "doomed", "name": "Doomed"})
    assert r.status_code == 201
    r = hub.upload("doomed", people["ann"], "doomedset", CSV)
    assert hub.wait_job("doomed", r.json()["job"]["id"], people["ann"])["state"] == "succeeded"
    stored = [p for p in hub.home.rglob("doomedset") if p.is_dir()]
    assert stored, "the dataset's files should be on disk"
    spawned = hub.backend == "sqlite"
    if spawned:
        hub.start_server("ann", "doomed", people["ann"])

    # its own Admin may not; a stranger does not see it
    r = hub.api("DELETE", "/orgs/doomed", people["ann"])
    assert r.status_code == 403 and r.json()["error"] == "forbidden"
    assert hub.api("DELETE", "/orgs/doomed", people["stranger"]).status_code == 404
    assert hub.api("DELETE", "/orgs/Not_A_Slug", hub.admin_token).status_code == 400

    r = hub.api("DELETE", "/orgs/doomed", hub.admin_token)
    assert r.status_code == 204, r.text
    assert hub.api("GET", "/orgs/doomed", hub.admin_token).status_code == 404
    assert hub.api("DELETE", "/orgs/doomed", hub.admin_token).status_code == 404
    assert not any(p.exists() for p in stored)
    assert hub.hub_api("GET", "/groups/org-doomed").status_code == 404
    me = hub.api("GET", "/me", people["ann"]).json()
    assert "doomed" not in [o["slug"] for o in me["organizations"]]
    if spawned:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            s = hub.hub_api("GET", "/users/ann").json()["servers"].get("doomed")
            if not s:
                break
            time.sleep(0.5)
        assert not s, s


def _browser(hub, user: str):
    password = f"pw-{user}-correct-horse"
    assert "alert-success" in hub_signup(hub, user, password)
    return hub_login(hub, user, password)


def test_home_page_lists_one_server_per_organization(org_hub, people):
    hub = org_hub
    hub.add_member("elsewhere", "vee", "analyst")
    browser = _browser(hub, "vee")
    try:
        page = browser.get("/hub/home")
    finally:
        browser.close()
    assert page.status_code == 200, page.text[:300]
    assert "Your organizations" in page.text
    for slug in ("self", "elsewhere"):
        assert f'data-server-name="{slug}"' in page.text
    # a Viewer of self, an Analyst of elsewhere: a start button only where she may run one
    assert "/hub/spawn/vee/elsewhere" in page.text and "/hub/spawn/vee/self" not in page.text
    assert 'id="no-server-self"' in page.text
    assert "no-organizations" not in page.text
    browser = _browser(hub, "founder")
    try:
        page = browser.get("/hub/home")
    finally:
        browser.close()
    assert 'data-server-name="self"' in page.text
    assert 'data-server-name="elsewhere"' not in page.text


def _server_pid(hub, user: str, server: str) -> int:
    r = hub.hub_api("GET", f"/users/{user}", params={"include_stopped_servers": "0"})
    return r.json()["servers"][server]["state"]["pid"]


def test_spawner_applies_limits_and_the_org_idle_time(org_hub, people):
    hub = org_hub
    if hub.backend != "sqlite":
        pytest.skip("spawning is the same on both catalogs; once is enough")
    r = hub.api(
        "PATCH",
        "/orgs/self/settings",
        people["founder"],
        json={"mem_limit": "2G", "cpu_limit": 0.5, "idle_timeout": 60},
    )
    assert r.status_code == 200, r.text
    hub.start_server("ann", "self", people["ann"])
    hub.add_member("elsewhere", "ann", "analyst")
    hub.start_server("ann", "elsewhere", people["ann"])
    try:
        env = open(f"/proc/{_server_pid(hub, 'ann', 'self')}/environ", "rb").read().split(b"\0")
        assert f"MEM_LIMIT={2 * 1024**3}".encode() in env
        assert b"CPU_LIMIT=0.5" in env
        env = open(f"/proc/{_server_pid(hub, 'ann', 'elsewhere')}/environ", "rb").read()
        assert b"MEM_LIMIT=" not in env

        # one look at the servers, as the service's watcher does, two minutes from now:
        # "self" has a 60 s idle time, "elsewhere" none (the global culler's job)
        async def look():
            client = HubClient(f"{hub.url}/hub/api", hub.admin_token)
            catalog = Catalog(hub.db_url)
            try:
                watcher = ServerWatcher(catalog, client, Plans(catalog))
                return await watcher.tick(now=utcnow() + timedelta(seconds=120))
            finally:
                await client.close()
                catalog.dispose()

        done = asyncio.run(look())
        assert [(c["user"], c["org"]) for c in done["culled"]] == [("ann", "self")]
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            servers = hub.hub_api("GET", "/users/ann").json()["servers"]
            if "self" not in servers:
                break
            time.sleep(0.5)
        assert "self" not in servers and servers["elsewhere"]["ready"]

        # a limit removed is removed from the next start too
        r = hub.api("PATCH", "/orgs/self/settings", people["founder"], json={"mem_limit": None})
        assert r.status_code == 200 and r.json()["mem_limit"] is None
        hub.start_server("ann", "self", people["ann"])
        env = open(f"/proc/{_server_pid(hub, 'ann', 'self')}/environ", "rb").read()
        assert b"MEM_LIMIT=" not in env and b"CPU_LIMIT=0.5" in env
    finally:
        for server in ("self", "elsewhere"):
            hub.hub_api("DELETE", f"/users/ann/servers/{server}")


def test_idle_culler_runs_as_a_hub_service(org_hub):
    """jupyterhub-idle-culler is started by the hub and may list users with its role."""
    # its first look at the users happens at start; a missing scope would be a 403
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        log = org_hub.log_path.read_text(errors="replace")
        if "GET /hub/api/users?state=" in log and "(idle-culler@" in log:
            break
        time.sleep(0.5)
    lines = [line for line in log.splitlines() if "(idle-culler@" in line]
    assert lines and all(" 200 " in line for line in lines), lines
