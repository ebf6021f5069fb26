"""The OpenAPI document, and what fuzzing the API against it found (``test_fuzz.py``).

Each finding has a test here that failed before its fix: 5xx answers to input Python
takes but JSON, the catalogs or the document do not (deep nesting, lone surrogates, NaN,
huge numbers, NUL characters on PostgreSQL), input the document refuses and the service
took, errors that were not the API's JSON, and 405 answers without ``Allow``.
"""

from __future__ import annotations

import json
from urllib.parse import quote

import pytest
import schemathesis

from datapilot_contract import ERROR_CODES
from datapilot_hub.service.openapi import OPERATIONS, openapi_document

CSV = b"id,amount\n1,2.5\n2,3.0\n"
METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE")


@pytest.fixture(scope="module")
def world(hub):
    """acme: ada admin, alice analyst, vera viewer, the dataset sales; globex: gary."""
    tokens = hub.populate(
        {"acme": "Acme Corp", "globex": "Globex"},
        [
            ("acme", "ada", "admin"),
            ("acme", "alice", "analyst"),
            ("acme", "vera", "viewer"),
            ("globex", "gary", "analyst"),
        ],
    )
    r = hub.upload("acme", tokens["alice"], "sales", CSV, "sales.csv")
    assert r.status_code == 202, r.text
    job = hub.wait_job("acme", r.json()["job"]["id"], tokens["alice"])
    assert job["state"] == "succeeded", job
    return {"tokens": tokens, "job": job["id"]}


def test_the_document_is_openapi_and_lists_every_error_with_its_codes():
    doc = openapi_document(plans=["free", "team"])
    schema = schemathesis.openapi.from_dict(doc)
    assert len([op for op in schema.get_all_operations()]) == sum(map(len, OPERATIONS.values()))
    for path, methods in doc["paths"].items():
        for method, op in methods.items():
            responses = op["responses"]
            # a body over the limit is refused before any handler, whatever the call
            assert "413" in responses, (method, path)
            assert ("401" in responses) == (op.get("security") != []), (method, path)
            for status, answer in responses.items():
                if int(status) < 400 or path == "/health":
                    continue
                codes = answer["content"]["application/json"]["schema"]["allOf"][1]
                assert codes["properties"]["error"]["enum"], (method, path, status)
    assert doc["paths"]["/orgs/{org}/plan"]["put"]["requestBody"]["content"]["application/json"][
        "schema"
    ]["properties"]["plan"]["enum"] == ["free", "team"]
    assert set(ERROR_CODES.values()) >= {"invalid_input", "not_found", "method_not_allowed"}


def _concrete(path: str, world) -> str:
    return path.format(
        org="acme",
        name="sales",
        user="alice",
        job_id=world["job"],
        invitation_id="0" * 32,
        code="x" * 43,
        slug="sales",
    )


def test_a_method_a_path_does_not_serve_is_405_with_allow(hub, world):
    """RFC 9110: a 405 says in Allow which methods the path serves; it said nothing."""
    token = world["tokens"]["alice"]
    for path, methods in OPERATIONS.items():
        served = {m.upper() for m in methods}
        for method in sorted(set(METHODS) - served):
            r = hub.api(method, _concrete(path, world), token)
            assert r.status_code == 405, (method, path, r.text)
            assert set(r.headers["allow"].split(", ")) == served, (method, path)
            body = r.json()
            assert body["error"] == "method_not_allowed"
            assert set(body["details"]["allowed"]) == served


def test_job_events_answer_json_errors(hub, world):
    """The WebSocket path answered tornado's HTML (401) and plain text (a GET without
    upgrade) where the API's JSON belongs."""
    path = f"/orgs/acme/jobs/{world['job']}/events"
    r = hub.api("GET", path)
    assert r.status_code == 401 and r.json()["error"] == "not_authenticated"
    r = hub.api("GET", path, world["tokens"]["gary"])
    assert r.status_code == 404 and r.json()["error"] == "not_found"
    r = hub.api("GET", path, world["tokens"]["vera"])
    assert r.status_code == 400 and r.json()["error"] == "websocket_required"


@pytest.mark.parametrize(
    "body",
    [
        pytest.param(b"[" * 100_000, id="nested-deeper-than-the-parser-recurses"),
        pytest.param(b'{"name": "Acme \\ud800"}', id="lone-surrogate"),
        pytest.param(b'{"cpu_limit": NaN}', id="nan"),
        pytest.param(b'{"cpu_limit": Infinity}', id="infinity"),
    ],
)
def test_json_python_takes_but_json_does_not_is_400(hub, world, body):
    """A deep body was a RecursionError, a lone surrogate a UnicodeEncodeError when the
    catalog stored it: 500s. NaN and Infinity are no JSON."""
    r = hub.api("PATCH", "/orgs/acme/settings", world["tokens"]["ada"], content=body)
    assert r.status_code == 400, r.text
    assert r.json()["error"] == "invalid_json"
    assert hub.api("GET", "/orgs/acme/settings", world["tokens"]["ada"]).json()["name"] == (
        "Acme Corp"
    )


@pytest.mark.parametrize(
    "name", ["Acme\x00Corp", "Acme\x07", "Acme\nCorp", "\u3000 \u00a0", "x" * 201]
)
def test_an_organization_name_with_control_characters_is_400(hub, world, name):
    """The document's rule (datapilot_contract.ORG_NAME): a NUL was a 500 on
    PostgreSQL and a bell or a line break was taken."""
    r = hub.api("POST", "/orgs", hub.admin_token, json={"slug": "ctl-name", "name": name})
    assert r.status_code == 400 and r.json()["details"]["field"] == "name", r.text
    r = hub.api("PATCH", "/orgs/acme/settings", world["tokens"]["ada"], json={"name": name})
    assert r.status_code == 400 and r.json()["details"]["field"] == "name", r.text
    assert hub.api("GET", "/orgs/ctl-name", hub.admin_token).status_code == 404


def test_an_invitation_email_with_a_nul_is_400(hub, world):
    r = hub.api(
        "POST", "/orgs/acme/invitations", world["tokens"]["ada"], json={"email": "a\x00@b.co"}
    )
    assert r.status_code == 400 and r.json()["details"]["field"] == "email", r.text


def test_a_memory_size_too_large_for_a_float_is_400(hub, world):
    """``"9" * 400`` bytes is an infinite float: int() of it was an OverflowError."""
    r = hub.api(
        "PATCH", "/orgs/acme/settings", world["tokens"]["ada"], json={"mem_limit": "9" * 400}
    )
    assert r.status_code == 400 and r.json()["details"]["field"] == "mem_limit", r.text


@pytest.mark.parametrize(
    "query, field",
    [
        # past 64 bits: pyarrow's slice and SQLite's OFFSET overflowed (500)
        ("data?format=csv&limit=100000000000000000000000", "limit"),
        ("data?format=csv&offset=100000000000000000000000", "offset"),
        # int() takes these; the document says integer
        ("data?limit=%D9%A3", "limit"),
        ("data?limit=1_0", "limit"),
        ("data?offset=%207", "offset"),
        # an empty argument was taken as none (found by schemathesis, seed 1)
        ("data?offset=", "offset"),
        ("data?version=", "version"),
    ],
)
def test_whole_number_arguments_are_ascii_and_within_64_bits(hub, world, query, field):
    r = hub.api("GET", f"/orgs/acme/datasets/sales/{query}", world["tokens"]["alice"])
    assert r.status_code == 400 and r.json()["details"]["field"] == field, r.text


@pytest.mark.parametrize(
    "query, field",
    [
        ("offset=100000000000000000000000", "offset"),
        ("format=csv&limit=100000000000000000000000", "limit"),
        ("limit=%207", "limit"),
        ("limit=", "limit"),
    ],
)
def test_audit_numbers_are_ascii_and_within_64_bits(hub, world, query, field):
    r = hub.api("GET", f"/orgs/acme/audit?{query}", world["tokens"]["ada"])
    assert r.status_code == 400 and r.json()["details"]["field"] == field, r.text


@pytest.mark.parametrize(
    "method, path",
    [
        ("GET", "/orgs/acme/jobs/{nul}"),
        ("POST", "/orgs/acme/jobs/{nul}/cancel"),
        ("DELETE", "/orgs/acme/invitations/{nul}"),
        ("DELETE", "/orgs/acme/members/{nul}"),
    ],
)
def test_an_id_or_name_with_a_nul_is_unknown(hub, world, method, path):
    """Looked up on PostgreSQL, a NUL was a 500; no object is named so."""
    r = hub.api(method, path.format(nul=quote("a\x00b")), world["tokens"]["ada"])
    assert r.status_code == 404 and r.json()["error"] == "not_found", r.text


@pytest.mark.parametrize(
    "options, field",
    [
        # a 64 KiB field of "[": the parser recursed to a RecursionError (500)
        ("[" * 60_000, "options"),
        (json.dumps({"sheet": True}), "options.sheet"),
        (json.dumps({"tolerance": True}), "options.tolerance"),
        # codecs.lookup raised ValueError for these: "options must be a JSON object"
        (json.dumps({"encoding": "idna"}), "options.encoding"),
        (json.dumps({"encoding": "utf\x00"}), "options.encoding"),
    ],
)
def test_upload_options_json_and_python_disagree_on_are_400(hub, world, options, field):
    r = hub.api(
        "POST",
        "/orgs/acme/datasets",
        world["tokens"]["alice"],
        data={"name": "opts", "options": options},
        files={"file": ("opts.csv", CSV, "text/csv")},
    )
    assert r.status_code == 400 and r.json()["details"]["field"] == field, r.text
    assert not list((hub.service_home / "tmp").glob("upload-*"))
