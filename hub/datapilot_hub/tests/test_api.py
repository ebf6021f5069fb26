"""The data service API through a real JupyterHub, proxy and data service.

Every endpoint is checked for the contract's answers: the happy path, another
organization's member (404), a role without the permission (403), bad input.
"""

from __future__ import annotations

import io
import json
import re
import socket
from urllib.parse import quote

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from tornado.httpclient import HTTPClientError, HTTPRequest
from tornado.websocket import websocket_connect

from datapilot_hub.service.handlers import default_handlers
from datapilot_hub.service.openapi import OPERATIONS

from .utils import API

CSV = (
    b"id,amount,region,day\n1,2.50,north,2024-01-02\n2,3.25,south,2024-02-03\n3,,north,2024-03-04\n"
)


@pytest.fixture(scope="module")
def world(hub):
    """acme: alice (analyst), vera (viewer), mona (manager); globex: gary (analyst)."""
    tokens = hub.populate(
        {"acme": "Acme Corp", "globex": "Globex"},
        [
            ("acme", "alice", "analyst"),
            ("acme", "vera", "viewer"),
            ("acme", "mona", "manager"),
            ("globex", "gary", "analyst"),
        ],
    )
    r = hub.upload("acme", tokens["alice"], "sales", CSV, "sales.csv")
    assert r.status_code == 202, r.text
    job = hub.wait_job("acme", r.json()["job"]["id"], tokens["alice"])
    assert job["state"] == "succeeded", job
    return {"tokens": tokens, "job": job}


def test_health_needs_no_login_and_tells_only_admins_how_it_is_built(hub, world):
    """Anyone learns that the service is up; the catalog dialect and revision, the storage
    location and the compute kind only a hub admin (its token, the admin service's)."""
    for token in (None, "not-a-token", world["tokens"]["alice"], world["tokens"]["mona"]):
        r = hub.api("GET", "/health", token)
        assert r.status_code == 200, r.text
        assert r.json() == {"status": "ok"}, token
    for token in (hub.admin_token, hub.user_token("admin")):
        body = hub.api("GET", "/health", token).json()
        assert body["status"] == "ok"
        assert body["catalog"]["dialect"] == hub.backend
        assert body["catalog"]["revision"] and body["storage"]["url"]
        assert body["compute"]["status"] == "ok"


def test_anonymous_calls_are_401(hub, world):
    for method, path in (("GET", "/me"), ("GET", "/orgs/acme/datasets"), ("POST", "/orgs")):
        r = hub.api(method, path, json={} if method == "POST" else None)
        assert r.status_code == 401, (path, r.text)
        assert r.json()["error"] == "not_authenticated"


def test_openapi_document_matches_the_handlers(hub):
    doc = hub.api("GET", "/openapi.json").json()
    assert doc["openapi"].startswith("3.")
    documented = {path: set(methods) for path, methods in doc["paths"].items()}
    assert documented == {p: set(m) for p, m in OPERATIONS.items()}
    served = {}
    for regex, handler in default_handlers:
        path = re.sub(r"\(\?P<(\w+)>[^)]*\)", r"{\1}", regex)
        methods = {
            m
            for m in ("get", "head", "post", "put", "patch", "delete")
            if getattr(handler, m).__qualname__.split(".")[0] == handler.__name__
        }
        served[path] = methods
    assert served == documented


def test_me_lists_organizations_with_permissions(hub, world):
    me = hub.api("GET", "/me", world["tokens"]["alice"]).json()
    assert me["name"] == "alice"
    [acme] = me["organizations"]
    assert acme["slug"] == "acme" and acme["role"] == "analyst"
    assert "data:import" in acme["permissions"] and "data:delete" not in acme["permissions"]


def test_org_info_and_members(hub, world):
    t = world["tokens"]["vera"]
    info = hub.api("GET", "/orgs/acme", t).json()
    assert info["name"] == "Acme Corp" and info["usage"]["datasets"] >= 1
    members = {
        m["name"]: m["role"] for m in hub.api("GET", "/orgs/acme/members", t).json()["members"]
    }
    assert members == {"alice": "analyst", "vera": "viewer", "mona": "manager"}


def test_hub_group_follows_membership(hub, world):
    group = hub.hub_api("GET", "/groups/org-acme").json()
    assert {"alice", "vera", "mona"} <= set(group["users"])
    hub.add_member("acme", "temp", "viewer")
    assert "temp" in hub.hub_api("GET", "/groups/org-acme").json()["users"]
    r = hub.api("DELETE", "/orgs/acme/members/temp", hub.admin_token)
    assert r.status_code == 204
    assert "temp" not in hub.hub_api("GET", "/groups/org-acme").json()["users"]


def test_upload_is_202_with_a_job_and_reads_back_in_every_format(hub, world):
    t = world["tokens"]["alice"]
    job = world["job"]
    assert job["result"] == {"dataset": "sales", "version": 1, "rows": 3}
    expected = pd.read_csv(io.BytesIO(CSV))

    body = hub.api("GET", "/orgs/acme/datasets/sales/data", t).json()
    assert body["columns"] == ["id", "amount", "region", "day"]
    assert body["rows"][0] == {"id": 1, "amount": 2.5, "region": "north", "day": "2024-01-02"}
    assert body["rows"][2]["amount"] is None

    csv = hub.api("GET", "/orgs/acme/datasets/sales/data?format=csv", t)
    assert csv.headers["content-type"].startswith("text/csv")
    got = pd.read_csv(io.BytesIO(csv.content))
    pd.testing.assert_frame_equal(got, expected)

    arrow = hub.api("GET", "/orgs/acme/datasets/sales/data?format=arrow", t)
    table = pa.ipc.open_stream(arrow.content).read_all()
    assert table.num_rows == 3 and table.column("region").to_pylist() == ["north", "south", "north"]

    parquet = hub.api("GET", "/orgs/acme/datasets/sales/data?format=parquet", t)
    table = pq.read_table(io.BytesIO(parquet.content))
    assert table.column("amount").to_pylist() == [2.5, 3.25, None]
    assert 'filename="sales-v1.parquet"' in parquet.headers["content-disposition"]

    xlsx = hub.api("GET", "/orgs/acme/datasets/sales/data?format=xlsx", t)
    assert 'filename="sales-v1.xlsx"' in xlsx.headers["content-disposition"]
    sheet = pd.read_excel(io.BytesIO(xlsx.content))
    assert sheet["region"].tolist() == ["north", "south", "north"]
    assert sheet["amount"].tolist()[:2] == [2.5, 3.25] and pd.isna(sheet["amount"][2])

    part = hub.api(
        "GET", "/orgs/acme/datasets/sales/data?format=parquet&columns=id,region&offset=1&limit=1", t
    )
    assert pq.read_table(io.BytesIO(part.content)).to_pylist() == [{"id": 2, "region": "south"}]


def test_describe_and_list(hub, world):
    t = world["tokens"]["vera"]
    listing = hub.api("GET", "/orgs/acme/datasets", t).json()["datasets"]
    sales = next(d for d in listing if d["name"] == "sales")
    assert sales["rows"] == 3 and sales["columns"] == 4
    info = hub.api("GET", "/orgs/acme/datasets/sales", t).json()
    types = {c["name"]: c["type"] for c in info["columns"]}
    assert types == {"id": "integer", "amount": "number", "region": "string", "day": "date"}
    assert info["report"]["rows_read"] == 3
    assert info["columns"][1]["stats"]["nulls"] == 1


def test_replace_and_append_make_new_versions(hub, world):
    t = world["tokens"]["alice"]
    r = hub.upload("acme", t, "ledger", b"a,b\n1,x\n", "ledger.csv")
    assert hub.wait_job("acme", r.json()["job"]["id"], t)["state"] == "succeeded"
    r = hub.upload("acme", t, "ledger", b"a,b\n2,y\n3,z\n", "more.csv", mode="append")
    assert hub.wait_job("acme", r.json()["job"]["id"], t)["state"] == "succeeded"
    r = hub.upload("acme", t, "ledger", b"a,b\n9,q\n", "new.csv", mode="replace")
    assert hub.wait_job("acme", r.json()["job"]["id"], t)["state"] == "succeeded"
    versions = hub.api("GET", "/orgs/acme/datasets/ledger/versions", t).json()["versions"]
    assert [(v["version"], v["rows"], v["current"]) for v in versions] == [
        (1, 1, False),
        (2, 3, False),
        (3, 1, True),
    ]
    assert versions[1]["parent_version"] == 1
    old = hub.api("GET", "/orgs/acme/datasets/ledger/data?version=2", t).json()
    assert [row["a"] for row in old["rows"]] == [1, 2, 3]

    r = hub.api("POST", "/orgs/acme/datasets/ledger/rollback", t, json={"version": 2})
    assert r.status_code == 200 and r.json()["version"] == 2 and r.json()["rows"] == 3
    r = hub.api("POST", "/orgs/acme/datasets/ledger/rollback", t, json={"version": 9})
    assert r.status_code == 404
    r = hub.api("POST", "/orgs/acme/datasets/ledger/rollback", t, json={"version": "2"})
    assert r.status_code == 400 and r.json()["details"]["field"] == "version"
    assert (
        hub.api("POST", "/orgs/acme/datasets/ledger/rollback", t, json={"version": 3}).status_code
        == 200
    )

    r = hub.upload("acme", t, "ledger", b"a,c\n1,x\n", "bad.csv", mode="append")
    job = hub.wait_job("acme", r.json()["job"]["id"], t)
    assert job["state"] == "failed" and "'c'" in job["error"]
    assert hub.api("GET", "/orgs/acme/datasets/ledger", t).json()["version"] == 3


def test_create_existing_is_409_and_append_to_missing_is_404(hub, world):
    t = world["tokens"]["alice"]
    r = hub.upload("acme", t, "sales", CSV)
    assert r.status_code == 409 and r.json()["error"] == "dataset_exists"
    r = hub.upload("acme", t, "nothing_here", CSV, mode="append")
    assert r.status_code == 404


def test_job_events_over_websocket(hub, world):
    import asyncio

    t = world["tokens"]["alice"]
    r = hub.upload("acme", t, "evented", CSV * 1)
    job_id = r.json()["job"]["id"]

    async def listen():
        ws_url = hub.url.replace("http", "ws") + f"{API}/orgs/acme/jobs/{job_id}/events"
        ws = await websocket_connect(HTTPRequest(ws_url, headers={"Authorization": f"token {t}"}))
        events = []
        while (msg := await ws.read_message()) is not None:
            events.append(json.loads(msg))
        return events

    events = asyncio.run(listen())
    assert events and events[-1]["state"] == "succeeded" and events[-1]["progress"] == 1.0
    assert all(e["id"] == job_id for e in events)

    async def refused(token):
        ws_url = hub.url.replace("http", "ws") + f"{API}/orgs/acme/jobs/{job_id}/events"
        with pytest.raises(HTTPClientError) as e:
            await websocket_connect(
                HTTPRequest(ws_url, headers={"Authorization": f"token {token}"})
            )
        return e.value.code

    assert asyncio.run(refused(world["tokens"]["gary"])) == 404


def test_cancel_a_finished_job_is_409(hub, world):
    t = world["tokens"]["alice"]
    r = hub.api("POST", f"/orgs/acme/jobs/{world['job']['id']}/cancel", t)
    assert r.status_code == 409 and r.json()["error"] == "job_finished"


def _every_endpoint(job_id: str):
    """(method, path, kwargs) for every endpoint that takes an organization."""
    return [
        ("GET", "/orgs/acme", {}),
        ("GET", "/orgs/acme/members", {}),
        ("PUT", "/orgs/acme/members/someone", {"json": {"role": "viewer"}}),
        ("DELETE", "/orgs/acme/members/alice", {}),
        ("GET", "/orgs/acme/datasets", {}),
        (
            "POST",
            "/orgs/acme/datasets",
            {"data": {"name": "x"}, "files": {"file": ("x.csv", b"a\n1\n")}},
        ),
        ("GET", "/orgs/acme/datasets/sales", {}),
        ("DELETE", "/orgs/acme/datasets/sales", {}),
        ("GET", "/orgs/acme/datasets/sales/versions", {}),
        ("POST", "/orgs/acme/datasets/sales/rollback", {"json": {"version": 1}}),
        ("GET", "/orgs/acme/datasets/sales/data", {}),
        ("GET", "/orgs/acme/datasets/sales/data?format=parquet", {}),
        ("GET", f"/orgs/acme/jobs/{job_id}", {}),
        ("POST", f"/orgs/acme/jobs/{job_id}/cancel", {}),
        ("GET", "/orgs/acme/settings", {}),
        ("PATCH", "/orgs/acme/settings", {"json": {"cpu_limit": 1}}),
        ("PUT", "/orgs/acme/plan", {"json": {"plan": "team"}}),
        ("GET", "/orgs/acme/usage", {}),
        ("GET", "/orgs/acme/server-policy", {}),
        ("GET", "/orgs/acme/invitations", {}),
        ("POST", "/orgs/acme/invitations", {"json": {"role": "viewer"}}),
        ("DELETE", "/orgs/acme/invitations/0123456789abcdef0123456789abcdef", {}),
        ("DELETE", "/orgs/acme", {}),
    ]


def test_another_organization_gets_404_everywhere(hub, world):
    gary = world["tokens"]["gary"]
    for method, path, kw in _every_endpoint(world["job"]["id"]):
        r = hub.api(method, path, gary, **kw)
        assert r.status_code == 404, (method, path, r.status_code, r.text)
        assert r.json()["error"] == "not_found"
    # and the data is untouched
    assert hub.api("GET", "/orgs/acme/datasets/sales", world["tokens"]["alice"]).status_code == 200


def test_unknown_organization_is_the_same_404(hub, world):
    a = hub.api("GET", "/orgs/acme/datasets", world["tokens"]["gary"]).json()
    b = hub.api("GET", "/orgs/nosuchorg/datasets", world["tokens"]["gary"]).json()
    assert a["error"] == b["error"] == "not_found"
    assert a["message"].replace("acme", "X") == b["message"].replace("nosuchorg", "X")


@pytest.mark.parametrize(
    "user, method, path, kw",
    [
        (
            "vera",
            "POST",
            "/orgs/acme/datasets",
            {"data": {"name": "x"}, "files": {"file": ("x.csv", b"a\n1\n")}},
        ),
        ("vera", "DELETE", "/orgs/acme/datasets/sales", {}),
        ("vera", "POST", "/orgs/acme/datasets/sales/rollback", {"json": {"version": 1}}),
        ("alice", "DELETE", "/orgs/acme/datasets/sales", {}),
        ("vera", "PUT", "/orgs/acme/members/someone", {"json": {"role": "viewer"}}),
        ("mona", "PUT", "/orgs/acme/members/someone", {"json": {"role": "viewer"}}),
        ("alice", "DELETE", "/orgs/acme/members/vera", {}),
        ("alice", "POST", "/orgs", {"json": {"slug": "mine"}}),
    ],
)
def test_roles_without_the_permission_get_403(hub, world, user, method, path, kw):
    r = hub.api(method, path, world["tokens"][user], **kw)
    assert r.status_code == 403, r.text
    assert r.json()["error"] == "forbidden"


def test_viewer_can_read(hub, world):
    t = world["tokens"]["vera"]
    assert hub.api("GET", "/orgs/acme/datasets/sales/data?format=csv", t).status_code == 200


def test_viewer_cannot_cancel_someone_elses_job(hub, world):
    t = world["tokens"]["alice"]
    # a job that stays queued long enough to be cancelled: not needed, the check
    # of ownership happens before the state check
    r = hub.api("POST", f"/orgs/acme/jobs/{world['job']['id']}/cancel", world["tokens"]["vera"])
    assert r.status_code == 403
    assert hub.api("GET", f"/orgs/acme/jobs/{world['job']['id']}", t).json()["state"] == "succeeded"


@pytest.mark.parametrize(
    "method, path, kw, status, error",
    [
        ("GET", "/orgs/Not_A_Slug/datasets", {}, 400, "invalid_name"),
        ("GET", "/orgs/acme/datasets/Bad-Name", {}, 400, "invalid_name"),
        ("GET", "/orgs/acme/datasets/sales/data?format=xml", {}, 400, "invalid_input"),
        ("GET", "/orgs/acme/datasets/sales/data?limit=ten", {}, 400, "invalid_input"),
        ("GET", "/orgs/acme/datasets/sales/data?columns=nope", {}, 400, "unknown_column"),
        ("GET", "/orgs/acme/datasets/sales/data?version=99", {}, 404, "not_found"),
        ("GET", "/orgs/acme/datasets/missing", {}, 404, "not_found"),
        ("GET", "/orgs/acme/jobs/0123", {}, 404, "not_found"),
        ("GET", "/no/such/endpoint", {}, 404, "no_such_endpoint"),
        ("POST", "/orgs/acme/datasets", {"data": {"name": "x"}}, 415, "unsupported_media_type"),
        (
            "POST",
            "/orgs/acme/datasets",
            {"content": b"a,b", "headers": {"Content-Type": "text/csv"}},
            415,
            "unsupported_media_type",
        ),
        (
            "POST",
            "/orgs/acme/datasets",
            {"data": {"name": "x"}, "files": {"other": ("x.csv", b"a\n")}},
            400,
            "missing_file",
        ),
        (
            "POST",
            "/orgs/acme/datasets",
            {"data": {"name": "9x"}, "files": {"file": ("x.csv", b"a\n")}},
            400,
            "invalid_name",
        ),
        (
            "POST",
            "/orgs/acme/datasets",
            {"data": {"name": "x", "mode": "merge"}, "files": {"file": ("x.csv", b"a\n")}},
            400,
            "invalid_mode",
        ),
        (
            "POST",
            "/orgs/acme/datasets",
            {"data": {"name": "x", "options": "[1"}, "files": {"file": ("x.csv", b"a\n")}},
            400,
            "invalid_input",
        ),
        ("PUT", "/orgs/acme/members/bob", {"content": b"{nope"}, 400, "invalid_json"),
        ("PUT", "/orgs/acme/members/bob", {"json": {"role": "owner"}}, 400, "invalid_role"),
        ("DELETE", "/orgs/acme/members/nobody", {}, 404, "not_found"),
    ],
)
def test_bad_input_gets_a_json_error(hub, world, method, path, kw, status, error):
    token = hub.admin_token if "members" in path else world["tokens"]["alice"]
    r = hub.api(method, path, token, **kw)
    assert r.status_code == status, r.text
    assert r.json()["error"] == error


def test_invalid_org_creation(hub, world):
    for body, field in (({"slug": "A"}, "slug"), ({"slug": "ok-slug", "name": ""}, "name")):
        r = hub.api("POST", "/orgs", hub.admin_token, json=body)
        assert r.status_code == 400 and r.json()["details"]["field"] == field
    r = hub.api("POST", "/orgs", hub.admin_token, json={"slug": "acme"})
    assert r.status_code == 409


def test_last_admin_cannot_leave(hub, world):
    hub.create_org("solo")
    hub.add_member("solo", "sam", "admin")
    r = hub.api("DELETE", "/orgs/solo/members/sam", hub.admin_token)
    assert r.status_code == 409 and r.json()["error"] == "last_admin"
    r = hub.api("PUT", "/orgs/solo/members/sam", hub.admin_token, json={"role": "viewer"})
    assert r.status_code == 409


def test_declared_oversize_upload_is_413_before_the_body(hub, world):
    t = world["tokens"]["alice"]
    request = (
        f"POST {API}/orgs/acme/datasets HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        f"Authorization: token {t}\r\n"
        "Content-Type: multipart/form-data; boundary=xyz\r\n"
        f"Content-Length: {5 * 1024**3}\r\n\r\n"
    )
    with socket.create_connection(("127.0.0.1", hub.port), timeout=30) as s:
        # the proxy forwards the headers with the first body bytes; the service answers
        # then, without waiting for the 5 GB that would follow
        s.sendall(request.encode() + b"--xyz\r\n" + b"x" * 65536)
        data = b""
        while b"\r\n\r\n" not in data or not data.rstrip().endswith(b"}"):
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 413"), head
    assert json.loads(body[body.index(b"{") :])["error"] == "too_large"


def test_a_bad_multipart_body_is_a_json_error_and_leaves_nothing(hub, world):
    t = world["tokens"]["alice"]
    # two file parts: the second is refused while the body streams in
    r = hub.api(
        "POST",
        "/orgs/acme/datasets",
        t,
        check=False,
        data={"name": "twice"},
        files=[("file", ("a.csv", CSV, "text/csv")), ("file", ("b.csv", CSV, "text/csv"))],
    )
    assert r.status_code == 400 and r.json()["details"]["field"] == "file", r.text
    assert not list((hub.service_home / "tmp").glob("upload-*"))
    assert hub.api("GET", "/orgs/acme/datasets/twice", t, check=False).status_code == 404


def test_binary_content_is_refused_before_any_job(hub, world):
    t = world["tokens"]["alice"]
    r = hub.upload("acme", t, "binary", b"\x7fELF\x02\x01\x01" + b"\x00" * 64, "x.csv")
    assert r.status_code == 415 and r.json()["error"] == "unsupported_type", r.text
    assert "ELF" in r.json()["message"]
    assert hub.api("GET", "/orgs/acme/datasets/binary", t).status_code == 404
    assert not list((hub.service_home / "storage").glob("org-*/datasets/binary"))
    assert not list((hub.service_home / "tmp").glob("upload-*"))


def test_unknown_option_is_400(hub, world):
    t = world["tokens"]["alice"]
    r = hub.api(
        "POST",
        "/orgs/acme/datasets",
        t,
        data={"name": "opt", "options": '{"delimter": ";"}'},
        files={"file": ("x.csv", b"a\n1\n")},
    )
    assert r.status_code == 400 and r.json()["details"]["field"] == "options.delimter"


def test_every_sheet_of_a_workbook_through_the_api(hub, world):
    openpyxl = pytest.importorskip("openpyxl")
    wb = openpyxl.Workbook()
    wb.active.title = "East"
    wb.active.append(["id", "amount"])
    wb.active.append([1, 2.5])
    west = wb.create_sheet("West")
    west.append(["id", "amount"])
    west.append([2, 3.5])
    buf = io.BytesIO()
    wb.save(buf)
    xlsx = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"

    def upload(token, org="acme", mode="create"):
        return hub.api(
            "POST",
            f"/orgs/{org}/datasets",
            token,
            check=False,
            data={"name": "regions", "mode": mode, "options": json.dumps({"sheet": "*"})},
            files={"file": ("regions.xlsx", buf.getvalue(), xlsx)},
        )

    t = world["tokens"]["alice"]
    r = upload(t)
    assert r.status_code == 202, r.text
    assert r.json()["datasets"] == {"East": "regions_east", "West": "regions_west"}
    job = hub.wait_job("acme", r.json()["job"]["id"], t)
    assert [d["dataset"] for d in job["result"]["datasets"]] == ["regions_east", "regions_west"]
    rows = hub.api("GET", "/orgs/acme/datasets/regions_west/data", t).json()["rows"]
    assert rows == [{"id": 2, "amount": 3.5}]
    # the sheets' datasets exist now: create again is a 409 naming one, before any job
    r = upload(t)
    assert r.status_code == 409 and r.json()["details"]["dataset"] == "regions_east"
    # another organization's member, a viewer: refused like any upload
    assert upload(world["tokens"]["gary"]).status_code == 404
    assert upload(world["tokens"]["vera"], mode="replace").status_code == 403
    r = hub.api(
        "POST",
        "/orgs/acme/datasets",
        t,
        check=False,
        data={"name": "plain", "options": json.dumps({"sheet": "*"})},
        files={"file": ("plain.csv", CSV, "text/csv")},
    )
    assert r.status_code == 400 and r.json()["details"]["field"] == "options.sheet"


def test_statistics_workbook_through_the_api(hub, world):
    """A read-me sheet first, then a table under a title, notes and a merged group header:
    the report says which sheet and which header row were read."""
    openpyxl = pytest.importorskip("openpyxl")
    wb = openpyxl.Workbook()
    wb.active.title = "Read me"
    wb.active.append(["This workbook holds the counts of arrivals by port."])
    data = wb.create_sheet("Arrivals")
    for row in (["Arrivals by port, 2023"], ["Provisional"], [None, "2023", None]):
        data.append(row)
    data.merge_cells("B3:C3")
    data.append(["Port", "Persons", "Vehicles"])
    data.append(["Dover", 1200.5, 300])
    data.append(["Hull", 800, 120])
    buf = io.BytesIO()
    wb.save(buf)
    t = world["tokens"]["alice"]
    r = hub.api(
        "POST",
        "/orgs/acme/datasets",
        t,
        data={"name": "arrivals"},
        files={"file": ("arrivals.xlsx", buf.getvalue())},
    )
    job = hub.wait_job("acme", r.json()["job"]["id"], t)
    assert job["state"] == "succeeded", job
    info = hub.api("GET", "/orgs/acme/datasets/arrivals", t).json()
    report = info["report"]
    assert report["sheet"] == "Arrivals" and report["sheets"] == ["Read me", "Arrivals"]
    assert report["header_row"] == 4 and report["above_header"][0] == "Arrivals by port, 2023"
    assert {c["name"]: c["type"] for c in info["columns"]} == {
        "port": "string",
        "persons": "number",
        "vehicles": "integer",
    }


def test_manager_deletes_a_dataset(hub, world):
    t = world["tokens"]["alice"]
    r = hub.upload("acme", t, "scratch", CSV)
    assert hub.wait_job("acme", r.json()["job"]["id"], t)["state"] == "succeeded"
    r = hub.api("DELETE", "/orgs/acme/datasets/scratch", world["tokens"]["mona"])
    assert r.status_code == 204
    assert hub.api("GET", "/orgs/acme/datasets/scratch", t).status_code == 404
    assert not list((hub.service_home / "storage").glob("org-*/datasets/scratch"))


# -- the identity of inputs: one contract, and no half-done change ------------------------

# a trailing newline (re.match with $ let it through), surrounding whitespace, Unicode
# look-alikes of ASCII letters, an invisible character
TRICKY = ["acme\n", "acme ", " acme", "\u0430cme", "\uff41cme", "ac\u200bme"]


def _catalog_orgs(hub) -> set[str]:
    """Every organization slug in the hub's catalog, read from the database itself."""
    from datapilot_hub.catalog import Catalog, Organization

    catalog = Catalog(hub.db_url)
    try:
        with catalog.session(system=True) as db:
            return {org.slug for org in db.query(Organization)}
    finally:
        catalog.dispose()


def _hub_groups(hub) -> set[str]:
    r = hub.hub_api("GET", "/groups")
    assert r.status_code == 200, r.text
    return {g["name"] for g in r.json()}


@pytest.mark.parametrize("slug", TRICKY)
def test_a_tricky_slug_is_400_and_creates_neither_org_nor_group(hub, world, slug):
    before_orgs, before_groups = _catalog_orgs(hub), _hub_groups(hub)
    r = hub.api("POST", "/orgs", hub.admin_token, json={"slug": slug, "name": "Tricky"})
    assert r.status_code == 400, r.text
    assert r.json()["error"] == "invalid_name" and r.json()["details"]["field"] == "slug"
    assert _catalog_orgs(hub) == before_orgs
    assert _hub_groups(hub) == before_groups
    # and as a path segment, for members and strangers alike
    for token in (hub.admin_token, world["tokens"]["alice"]):
        r = hub.api("GET", f"/orgs/{quote(slug, safe='')}/datasets", token)
        assert r.status_code == 400 and r.json()["details"]["field"] == "org", r.text


@pytest.mark.parametrize("name", ["sales\n", "sales ", "s\u0430les", "\uff53ales", "sa\u200bles"])
def test_a_tricky_dataset_name_is_400(hub, world, name):
    t = world["tokens"]["alice"]

    def datasets():
        return [d["name"] for d in hub.api("GET", "/orgs/acme/datasets", t).json()["datasets"]]

    before = datasets()
    r = hub.api("GET", f"/orgs/acme/datasets/{quote(name, safe='')}", t)
    assert r.status_code == 400 and r.json()["error"] == "invalid_name", r.text
    r = hub.upload("acme", t, name, CSV)
    assert r.status_code == 400, r.text
    assert r.json()["error"] == "invalid_name" and r.json()["details"]["field"] == "name"
    assert datasets() == before


def test_a_tricky_mode_is_400(hub, world):
    r = hub.upload("acme", world["tokens"]["alice"], "moded", CSV, mode="create\n")
    assert r.status_code == 400, r.text
    assert r.json()["error"] == "invalid_mode" and r.json()["details"]["field"] == "mode"


@pytest.fixture(scope="module")
def names_org(hub, world):
    """An organization of its own for the user-name tests, with one member."""
    hub.create_org("names", "Names")
    hub.add_member("names", "nell", "admin")
    return "names"


def _count_members(hub, org: str) -> tuple[dict[str, str], int]:
    members = hub.api("GET", f"/orgs/{org}/members", hub.admin_token).json()["members"]
    usage = hub.api("GET", f"/orgs/{org}", hub.admin_token).json()["usage"]["members"]
    return {m["name"]: m["role"] for m in members}, usage


@pytest.mark.parametrize(
    "user",
    # ("%2e%2e" is ".." to the hub: a literal ".." would be resolved by the client)
    [
        "nell\n",
        "nell ",
        "Nell",
        "\uff4eell",
        "ne\u200bll",
        "ne\x07ll",
        "%2e%2e",
        "x" * 256,
        "service:datapilot-login",
    ],
)
def test_a_user_name_the_contract_refuses_is_400(hub, names_org, user):
    before = _count_members(hub, names_org)
    path = f"/orgs/{names_org}/members/{quote(user, safe='')}"
    r = hub.api("PUT", path, hub.admin_token, json={"role": "viewer"})
    assert r.status_code == 400, r.text
    assert r.json()["error"] == "invalid_name" and r.json()["details"]["field"] == "user"
    assert _count_members(hub, names_org) == before
    assert hub.api("DELETE", path, hub.admin_token).status_code in (400, 404)


@pytest.mark.parametrize("user", ["bob smith", "bob,smith"])
def test_a_user_name_the_hub_refuses_is_400_and_leaves_no_member(hub, names_org, user):
    """Password accounts refuse spaces and commas: the hub's refusal is the answer."""
    before = _count_members(hub, names_org)
    path = f"/orgs/{names_org}/members/{quote(user, safe='')}"
    r = hub.api("PUT", path, hub.admin_token, json={"role": "viewer"})
    assert r.status_code == 400, r.text
    body = r.json()
    assert body["error"] == "invalid_name" and body["details"] == {"field": "user", "user": user}
    assert user in body["message"]
    # no membership row: the member count is what it was, and removing it is a clean 404
    assert _count_members(hub, names_org) == before
    r = hub.api("DELETE", path, hub.admin_token)
    assert r.status_code == 404 and r.json()["error"] == "not_found", r.text
    # the hub was left as it was too
    assert hub.hub_api("GET", f"/users/{quote(user, safe='')}").status_code == 404
    assert user not in hub.hub_api("GET", "/groups/org-names").json()["users"]


async def test_org_creation_that_the_hub_fails_leaves_no_org(hub, world):
    """The hub refuses half of the change (the token may make groups, not users): the
    group it made is taken back, and the catalog never gets the organization."""
    from datapilot_hub.catalog import Catalog
    from datapilot_hub.domain._identity import Caller
    from datapilot_hub.domain.orgs import OrgService
    from datapilot_hub.errors import DatapilotError
    from datapilot_hub.hubapi import HubClient

    r = hub.hub_api(
        "POST", "/users/admin/tokens", json={"scopes": ["admin:groups"], "expires_in": 600}
    )
    assert r.status_code == 201, r.text
    catalog = Catalog(hub.db_url)
    client = HubClient(api_url=f"{hub.url}/hub/api", token=r.json()["token"])
    try:
        with pytest.raises(DatapilotError) as failed:
            await OrgService(catalog, client).create(Caller("zed"), "halfdone", "Half done")
        assert failed.value.status == 502 and failed.value.code == "hub_unavailable"
    finally:
        await client.close()
        catalog.dispose()
    assert "halfdone" not in _catalog_orgs(hub)
    assert "org-halfdone" not in _hub_groups(hub)
    assert hub.hub_api("GET", "/users/zed").status_code == 404
    r = hub.api("GET", "/orgs/halfdone", hub.admin_token)
    assert r.status_code == 404
    # and the slug is free for a creation that works
    hub.create_org("halfdone")
    assert "org-halfdone" in _hub_groups(hub)
