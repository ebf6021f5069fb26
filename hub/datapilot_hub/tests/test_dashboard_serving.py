"""Serving published dashboards through JupyterHub, proved against a real hub as a viewer.

A real hub (as root: accounts of their own) with acme (alice analyst, vera viewer, ada
admin) and globex (gary analyst). alice publishes a Voilà dashboard that reads acme's
``sales``; vera opens its stable address in a browser session (hub login, OAuth to the
organization's dashboard server) and gets it rendered, data read as vera (the audit log
says so) with a token that may only read. She gets no kernel, contents or terminal API,
and an ``execute_request`` through the widgets' channel is refused. gary (globex) gets 404
for all of it. Joining acme grants the share of its dashboard server, leaving revokes it.
From inside the dashboard's kernel, the organization's dashboard account can read nothing
but its snapshot.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import time
import uuid

import httpx
import pytest
from tornado.httpclient import HTTPRequest
from tornado.websocket import websocket_connect

from datapilot_hub import accounts

from .test_isolation import PROBE
from .utils import hub_login, hub_processes, hub_signup, notebook, running_hub

pytestmark = [pytest.mark.e2e]

CSV = b"region,amount\nnorth,3\nsouth,5\n"


SALES = notebook(
    "import ipywidgets as widgets\nimport datapilot_kernel as dp\n"
    "df = dp.load('sales')\nSECRET_SOURCE_MARKER = 1\n"
    "print('TOTAL', int(df['amount'].sum()))",
    "widgets.IntSlider(value=3, description='months')",
)

PANEL = notebook(
    "import panel as pn\nimport datapilot_kernel as dp\npn.extension()",
    "df = dp.load('sales')\n"
    "pn.pane.Markdown(f\"PANEL TOTAL {int(df['amount'].sum())}\").servable()",
)


def publish(hub, token: str, slug: str, nb: dict, kind: str = "voila", **kw):
    body = {"notebook": nb, "kind": kind, "title": slug.title(), "slug": slug, **kw}
    r = hub.api("POST", "/orgs/acme/dashboards", token, json=body)
    assert r.status_code == 201, r.text
    return r.json()


def browser(hub, user: str) -> httpx.Client:
    password = f"pw-{user}-correct-horse"
    assert "alert-success" in hub_signup(hub, user, password)
    return hub_login(hub, user, password)


@pytest.fixture(scope="module")
def world(request, tmp_path_factory):
    with running_hub(request, tmp_path_factory, "sqlite", label="dashserve") as hub:
        for user in ("alice", "vera", "gary", "nina"):
            assert hub.hub_api("POST", f"/users/{user}").status_code in (201, 409)
        tokens = hub.populate(
            {"acme": "Acme Corp", "globex": "Globex"},
            [
                ("acme", "alice", "analyst"),
                ("acme", "vera", "viewer"),
                ("globex", "gary", "analyst"),
            ],
        )
        r = hub.upload("acme", tokens["alice"], "sales", CSV, "sales.csv")
        assert r.status_code == 202, r.text
        assert hub.wait_job("acme", r.json()["job"]["id"], tokens["alice"])["state"] == "succeeded"
        publish(hub, tokens["alice"], "sales", SALES)
        browsers = {u: browser(hub, u) for u in ("vera", "gary", "nina", "alice")}
        yield {"hub": hub, "tokens": tokens, **browsers}
        for b in browsers.values():
            b.close()


def open_dashboard(client: httpx.Client, org: str, slug: str) -> httpx.Response:
    return client.get(f"/services/datapilot/dashboards/{org}/{slug}", timeout=180)


def printed_json(page: httpx.Response, pattern: str) -> dict:
    """The JSON a dashboard printed, found in its rendered page by ``pattern``'s group."""
    assert page.status_code == 200, page.text[-2000:]
    text = page.text.replace("&#34;", '"').replace("&quot;", '"').replace('\\"', '"')
    found = re.search(pattern, text)
    assert found, page.text[-3000:]
    return json.loads(found.group(1))


def test_a_viewer_opens_the_stable_address_and_sees_it_rendered(world):
    hub, vera = world["hub"], world["vera"]
    r = open_dashboard(vera, "acme", "sales")
    assert r.status_code == 200, (r.status_code, r.text[-2000:], hub.log_tail())
    # rendered at the server's own address of the dashboard (no redirect to Voila's)
    assert str(r.url).endswith("/user/dashboards-acme/dashboards/d/sales/"), r.url
    assert "TOTAL 8" in r.text, r.text[-3000:]
    # sources stripped: the page shows outputs, never the code
    assert "SECRET_SOURCE_MARKER" not in r.text
    assert "application/vnd.jupyter.widget-view+json" in r.text
    world["page"] = r


def test_the_data_was_read_as_the_viewer_with_a_read_only_token(world):
    hub = world["hub"]
    events = hub.api("GET", "/orgs/acme/audit?action=dataset.read", hub.admin_token).json()
    reads = [e for e in events["events"] if e["target"] == "sales"]
    assert reads and reads[0]["user"] == "vera", reads
    assert reads[0]["details"].get("dashboard") == "acme/sales", reads[0]
    opened = hub.api("GET", "/orgs/acme/audit?action=dashboard.open", hub.admin_token).json()
    assert [e["user"] for e in opened["events"]][:1] == ["vera"]
    # the token a dashboard kernel gets: reads, and nothing else, in acme alone
    from datapilot_hub.domain.viewer_tokens import ViewerTokens

    key = hub.service_home / "viewer_token_key"
    token, _ = ViewerTokens(key).mint("alice", "acme", "sales")
    assert hub.api("GET", "/orgs/acme/datasets/sales", token).status_code == 200
    r = hub.upload("acme", token, "other", CSV, "other.csv")
    assert r.status_code == 403, r.text
    assert hub.api("DELETE", "/orgs/acme/datasets/sales", token).status_code == 403
    assert hub.api("GET", "/orgs/globex/datasets", token).status_code == 404
    forged = token[:-2] + ("AA" if not token.endswith("AA") else "BB")
    assert hub.api("GET", "/orgs/acme/datasets", forged).status_code == 401
    # a viewer token minted for someone who is not a member reads nothing
    stranger, _ = ViewerTokens(key).mint("gary", "acme", "sales")
    assert hub.api("GET", "/orgs/acme/datasets", stranger).status_code == 404


def test_a_viewer_gets_no_kernel_contents_or_terminal_api(world):
    vera = world["vera"]
    base = "/user/dashboards-acme/dashboards/"
    for method, path in (
        ("GET", "api/kernels"),
        ("POST", "api/kernels"),
        ("GET", "api/contents"),
        ("GET", "api/terminals"),
        ("POST", "api/terminals"),
        ("GET", "api/sessions"),
        ("GET", "v/api/kernels"),
        ("POST", "v/api/kernels"),
        ("GET", "v/voila/api/contents"),
        ("GET", "v/voila/api/contents/sales"),
        ("GET", "v/voila/tree"),
        ("GET", "v/"),
        ("GET", "v/api/contents"),
        ("GET", "v/api/terminals"),
        ("GET", "v/voila/render/sales/v1/other.ipynb"),
        ("GET", "v/voila/render/sales/v1/dashboard.ipynb"),
        ("GET", "lab"),
        ("GET", "v/voila/files/sales/v1/dashboard.ipynb"),
    ):
        r = vera.request(method, base + path, follow_redirects=False)
        assert r.status_code in (302, 403, 404, 405), (method, path, r.status_code, r.text[:200])
        assert "TOTAL" not in r.text and '"cells"' not in r.text, (method, path)
        if r.status_code == 302:
            assert "/d/" in r.headers["location"] or "/hub/" in r.headers["location"], path
    # the kernel of her page: its REST resource is refused too (only its channel is open)
    kernel = re.search(r"kernelId[^0-9a-f]+([0-9a-f-]{36})", world["page"].text)
    assert kernel, world["page"].text[:2000]
    world["kernel"] = kernel.group(1)
    # (the page reads its kernel's model before it connects: that much, nothing more)
    r = vera.get(f"{base}v/api/kernels/{kernel.group(1)}")
    assert r.status_code == 200 and r.json()["id"] == kernel.group(1), r.text[:300]
    assert vera.delete(f"{base}v/api/kernels/{kernel.group(1)}").status_code in (403, 404, 405)
    for action in ("restart", "interrupt"):
        r = vera.post(f"{base}v/api/kernels/{kernel.group(1)}/{action}")
        assert r.status_code in (403, 404, 405), (action, r.status_code)


async def _channel(hub, cookies: httpx.Cookies, kernel: str, msg_type: str, content: dict):
    """Send one message through the widgets' channel; return the replies to it (5 s)."""
    url = hub.url.replace("http", "ws", 1) + (
        f"/user/dashboards-acme/dashboards/v/api/kernels/{kernel}/channels"
    )
    cookie = "; ".join(f"{c.name}={c.value}" for c in cookies.jar)
    ws = await websocket_connect(HTTPRequest(url, headers={"Cookie": cookie, "Origin": hub.url}))
    msg_id = uuid.uuid4().hex
    ws.write_message(
        json.dumps(
            {
                "header": {
                    "msg_id": msg_id,
                    "username": "x",
                    "session": uuid.uuid4().hex,
                    "msg_type": msg_type,
                    "version": "5.3",
                },
                "parent_header": {},
                "metadata": {},
                "channel": "shell",
                "content": content,
            }
        )
    )
    replies = []
    try:
        async with asyncio.timeout(5):
            while True:
                raw = await ws.read_message()
                if raw is None:
                    break
                if isinstance(raw, str):
                    msg = json.loads(raw)
                    if msg.get("parent_header", {}).get("msg_id") == msg_id:
                        replies.append(msg)
    except TimeoutError:
        pass
    ws.close()
    return replies


def test_an_execute_request_through_the_widgets_channel_is_refused(world):
    hub, vera = world["hub"], world["vera"]
    kernel = world.get("kernel")
    if kernel is None:
        pytest.skip("needs the kernel of the opened page")
    # the channel works for what widgets need
    info = asyncio.run(_channel(hub, vera.cookies, kernel, "kernel_info_request", {}))
    assert any(m["msg_type"] == "kernel_info_reply" for m in info), info
    code = "open('/tmp/dp-viewer-executed', 'w').write('x')"
    replies = asyncio.run(
        _channel(hub, vera.cookies, kernel, "execute_request", {"code": code, "silent": False})
    )
    assert not any(m["msg_type"] in ("execute_reply", "execute_result", "stream") for m in replies)
    assert not os.path.exists("/tmp/dp-viewer-executed")


def test_another_organization_gets_404_for_everything(world):
    hub, gary = world["hub"], world["gary"]
    r = open_dashboard(gary, "acme", "sales")
    assert r.status_code == 404, r.text[:300]
    assert open_dashboard(gary, "acme", "nothing-here").status_code == 404
    # nor can gary use acme's dashboard server directly: it is not shared with him
    r = gary.get("/user/dashboards-acme/dashboards/d/sales/", follow_redirects=True)
    assert r.status_code in (403, 404), (r.status_code, str(r.url))
    assert "TOTAL" not in r.text
    # nor ask for a viewer token of acme with his own token, nor for the snapshot
    t = world["tokens"]["gary"]
    assert hub.api("POST", "/orgs/acme/dashboards/sales/viewer-token", t).status_code == 404
    assert hub.api("GET", "/orgs/acme/dashboards/sales/runtime-bundle", t).status_code == 404
    # a member of acme gets no snapshot (the code) either: only the dashboard server does
    alice = world["tokens"]["alice"]
    assert hub.api("GET", "/orgs/acme/dashboards/sales/runtime-bundle", alice).status_code == 404


def shared_with(hub, user: str) -> bool:
    """Whether acme's dashboard server is shared with ``user`` (the hub's own record)."""
    r = hub.hub_api("GET", f"/users/{user}/shared", hub.user_token(user))
    assert r.status_code == 200, r.text
    servers = {(s["server"]["user"]["name"], s["server"]["name"]) for s in r.json()["items"]}
    assert all(s["kind"] == "user" for s in r.json()["items"])  # never a group share
    return ("dashboards-acme", "dashboards") in servers


def test_joining_grants_and_leaving_revokes_the_share(world):
    hub, nina = world["hub"], world["nina"]
    assert open_dashboard(nina, "acme", "sales").status_code == 404
    assert not shared_with(hub, "nina")
    assert shared_with(hub, "vera") and shared_with(hub, "alice") and not shared_with(hub, "gary")
    hub.add_member("acme", "nina", "viewer")
    assert shared_with(hub, "nina")
    r = open_dashboard(nina, "acme", "sales")
    assert r.status_code == 200 and "TOTAL 8" in r.text, r.text[-1000:]
    r = hub.api("DELETE", "/orgs/acme/members/nina", hub.admin_token)
    assert r.status_code == 204, r.text
    assert not shared_with(hub, "nina")
    assert open_dashboard(nina, "acme", "sales").status_code == 404
    # and the dashboard server itself lets her in no more (its token cache is 10 s)
    time.sleep(11)
    r = nina.get("/user/dashboards-acme/dashboards/d/sales/", follow_redirects=True)
    assert r.status_code in (403, 404) and "TOTAL" not in r.text, (r.status_code, str(r.url))


def test_a_panel_dashboard_is_served_as_an_app_reading_as_its_viewer(world):
    hub, t, vera = world["hub"], world["tokens"], world["vera"]
    publish(hub, t["alice"], "panel-sales", PANEL, kind="panel")
    r = open_dashboard(vera, "acme", "panel-sales")
    assert r.status_code == 200, (r.status_code, r.text[-2000:], hub.log_tail())
    assert str(r.url).endswith("/user/dashboards-acme/dashboards/p/panel-sales"), str(r.url)
    # (the app's document comes over Bokeh's WebSocket: test_browser_dashboards.py sees
    # it drawn; here its session ran the app, reading as vera)
    assert "Bokeh" in r.text and "dp.load" not in r.text
    events = hub.api("GET", "/orgs/acme/audit?action=dataset.read", hub.admin_token).json()
    panel_reads = [
        e for e in events["events"] if e["details"].get("dashboard") == "acme/panel-sales"
    ]
    assert panel_reads and {e["user"] for e in panel_reads} == {"vera"}, events
    # nothing of Bokeh's or Panel's own is reachable without the server's login
    with httpx.Client(base_url=hub.url, timeout=30) as anonymous:
        r = anonymous.get("/user/dashboards-acme/dashboards/p/panel-sales")
        assert r.status_code in (302, 403), r.status_code
    assert open_dashboard(world["gary"], "acme", "panel-sales").status_code == 404


def test_a_failing_dashboard_shows_its_error_and_its_log_to_the_publisher(world):
    hub, t, vera, alice = world["hub"], world["tokens"], world["vera"], world["alice"]
    publish(hub, t["alice"], "broken", notebook("print('before')", "1 / 0"))
    r = open_dashboard(vera, "acme", "broken")
    assert r.status_code == 200, r.text[-1000:]
    assert "ZeroDivisionError" in r.text and "before" in r.text, r.text[-3000:]
    log_url = "/user/dashboards-acme/dashboards/d/broken/log"
    r = vera.get(log_url)
    assert r.status_code == 403, r.status_code
    r = alice.get(log_url, follow_redirects=True)
    assert r.status_code == 200 and "Voila" in r.text, r.text[-500:]


def test_the_dashboard_runs_under_the_orgs_account_and_reads_only_its_snapshot(world):
    hub, t, vera = world["hub"], world["tokens"], world["vera"]
    if not hub.isolated:
        pytest.skip("isolation needs root")
    account = accounts.dashboard_account(hub.account_prefix, "acme")
    procs = hub_processes(hub)
    assert any(p.username() == account for p in procs["hub"].children(recursive=True))
    homes = hub.home / "homes"
    paths = {
        "catalog": str(hub.service_home / "catalog.sqlite"),
        "storage": str(hub.service_home / "storage"),
        "runtime": str(hub.home / "runtime"),
        "hub_db": str(hub.home / "jupyterhub.sqlite"),
        "homes": str(homes),
        "service_home": str(hub.service_home),
        "shared": str(hub.home / "shared"),
        "own_snapshot": "dashboard.ipynb",
    }
    for entry in homes.iterdir():
        if entry.name != account:
            paths[f"home:{entry.name}"] = str(entry)
    nb = notebook(f"PATHS = {json.dumps(paths)}\n{PROBE}\nprint('PROBED')")
    publish(hub, t["alice"], "probe", nb)
    result = printed_json(
        open_dashboard(vera, "acme", "probe"), r'(\{"catalog": .*?\})\s*(?:\\n)?PROBED'
    )
    assert result.pop("own_snapshot") == "read", result
    assert set(result.values()) == {"PermissionError"}, result


PEEK = """
import json, os
seen = {}
for pid in filter(str.isdigit, os.listdir("/proc")):
    if int(pid) == os.getpid():
        continue
    try:
        if os.stat(f"/proc/{pid}").st_uid != os.getuid() and os.stat(f"/proc/{pid}").st_uid != 0:
            continue
        cmd = open(f"/proc/{pid}/cmdline", "rb").read().replace(b"\\0", b" ").decode()
    except OSError:
        continue
    if "dashboards_runtime" not in cmd:
        continue
    try:
        env = open(f"/proc/{pid}/environ", "rb").read()
        # (a kernel not yet through its interpreter's start is readable, and must hold
        # nothing but what every dashboard gets)
        secret = any(s in env for s in (b"dpv1.", b"JUPYTERHUB_API_TOKEN", b"DATAPILOT_RUNTIME"))
        seen[cmd[:120]] = "secret" if secret else "starting"
    except PermissionError:
        seen[cmd[:120]] = "PermissionError"
print("PEEK" + json.dumps(seen) + "KEEP")
"""


def test_a_dashboard_cannot_read_the_other_processes_of_its_account(world):
    """The runtime (its hub token), Voila (the viewers' tokens) and the other dashboards'
    kernels share the organization's account, yet none is readable from a dashboard."""
    hub, t, vera = world["hub"], world["tokens"], world["vera"]
    if not hub.isolated:
        pytest.skip("isolation needs root")
    publish(hub, t["alice"], "peek", notebook(PEEK))
    # another viewer's kernel is up meanwhile: the sales dashboard's
    assert open_dashboard(world["alice"], "acme", "sales").status_code == 200
    seen = printed_json(open_dashboard(vera, "acme", "peek"), r"PEEK(\{.*?\})KEEP")
    kinds = {
        "runtime": [c for c in seen if re.search(r"-m datapilot_hub\.dashboards_runtime( |$)", c)],
        "voila": [c for c in seen if "dashboards_runtime._voila" in c],
        "kernels": [c for c in seen if "dashboards_runtime._private" in c],
    }
    assert all(kinds.values()), seen
    assert not [c for c, v in seen.items() if v == "secret"], seen
    for process in kinds["runtime"] + kinds["voila"]:
        assert seen[process] == "PermissionError", seen


def test_a_new_version_is_served_and_open_pages_keep_their_kernels(world):
    hub, t, vera = world["hub"], world["tokens"], world["vera"]
    first = open_dashboard(vera, "acme", "sales")
    assert first.status_code == 200, first.text[-2000:]
    kernel = re.search(r"kernelId[^0-9a-f]+([0-9a-f-]{36})", first.text).group(1)
    model = f"/user/dashboards-acme/dashboards/v/api/kernels/{kernel}"
    assert vera.get(model).status_code == 200
    v2 = notebook(
        "import datapilot_kernel as dp\ndf = dp.load('sales')\n"
        "print('V2 TOTAL', int(df['amount'].sum()))"
    )
    assert publish(hub, t["alice"], "sales", v2)["version"] > 1
    r = open_dashboard(vera, "acme", "sales")
    assert r.status_code == 200 and "V2 TOTAL 8" in r.text, r.text[-2000:]
    # Voila was not restarted for it: the page opened on the old version keeps its kernel
    assert vera.get(model).status_code == 200
