"""The API contract under a fuzzer: schemathesis against the OpenAPI document of a real
service (hub, proxy, data service), on each catalog backend.

For every operation of ``/services/datapilot/api/v1/openapi.json`` schemathesis generates
requests from the document, valid ones and invalid ones (Hypothesis, a fixed number per
operation, derandomized), and sends each through the proxy as one of the callers of a
populated organization: a hub admin, the organization's Admin, an Analyst, a Viewer, a
member of another organization, nobody. Path parameters are often the real objects
(``acme``, the dataset ``sales`` and its columns, a job, an invitation), so that the calls
get past the 404 to the handlers' work. Every answer is checked by schemathesis' checks:
no 5xx; a status the document lists for the operation; the documented content type and
body schema (error bodies included, with their machine codes); documented headers;
invalid input refused with a 4xx, valid input not refused with a 400 the document cannot
explain.

``DATAPILOT_FUZZ_EXAMPLES`` (default 50) sets the examples per operation and backend;
``DATAPILOT_FUZZ_SEED`` replaces the fixed generation by a seeded one. A failure prints
the check, the answer and a curl command that sends the request again.
"""

from __future__ import annotations

import os

import hypothesis
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode

from datapilot_hub.service.openapi import OPERATIONS

from .conftest import BACKENDS
from .utils import API, running_hub

EXAMPLES = int(os.environ.get("DATAPILOT_FUZZ_EXAMPLES") or 50)
SEED = os.environ.get("DATAPILOT_FUZZ_SEED")

CALLERS = ("hub-admin", "admin", "analyst", "viewer", "stranger", "anonymous")
# the organization DELETE /orgs/{org} gets to delete (made again before each call)
DOOMED = "doomed"
CSV = b"id,amount,region\n1,2.50,north\n2,3.25,south\n"

# deletions run last, so that what they remove was there for every other operation
_ALL = [(m.upper(), p) for p, methods in OPERATIONS.items() for m in methods]
ORDER = [op for op in _ALL if op[0] != "DELETE"] + [op for op in _ALL if op[0] == "DELETE"]

# valid requests the service may still refuse with a 4xx other than 401/403/404/409/429,
# for a reason the document states but a schema cannot (schemathesis' positive data
# acceptance check takes these statuses too)
CONTENT_CHECKED = {
    # the file's content (415, 422, 413 compression_bomb), an unknown text encoding (400)
    ("POST", "/orgs/{org}/datasets"): [400, 413, 415, 422],
    # a memory size under 64M spelled as a string ("1K")
    ("PATCH", "/orgs/{org}/settings"): [400],
    # a JSON read of more than 100000 rows, columns the dataset does not have
    ("GET", "/orgs/{org}/datasets/{name}/data"): [400],
    # a JSON page of more than 1000 events (an export has no bound)
    ("GET", "/orgs/{org}/audit"): [400],
    # user names JupyterHub's authenticator refuses, and rules a pattern cannot say
    # (Unicode case and normal form)
    ("PUT", "/orgs/{org}/members/{user}"): [400],
    # columns the dataset does not have, expressions that do not type-check (400), data an
    # aggregation cannot compute (422)
    ("POST", "/orgs/{org}/datasets/{name}/aggregate"): [400, 422],
    # the same for a chart, and columns that do not fit the chart asked for
    ("POST", "/orgs/{org}/visualizations/generate"): [400, 422],
    # a notebook that is not nbformat 4, a pin of a version that does not exist, a file
    # that is also a folder (400); a snapshot over the limit once decoded (413)
    ("POST", "/orgs/{org}/dashboards"): [400, 413],
    # schemathesis speaks HTTP, not WebSocket: a member's plain GET is a 400
    ("GET", "/orgs/{org}/jobs/{job_id}/events"): [400],
}
_ACCEPTED = ["2xx", "401", "403", "404", "409", "429"]

_PUBLISH = ("POST", "/orgs/{org}/dashboards")

# the body a valid request sometimes has instead, so that it names what the dataset has and
# gets to the work (an aggregation or a chart of generated column names never runs)
REAL_BODIES = {
    ("POST", "/orgs/{org}/datasets/{name}/aggregate"): {
        "group_by": ["region"],
        "metrics": {"amount": ["sum", "p90"], "*": ["count"]},
        "filter": "amount > 1",
        "sort": ["-count"],
        "limit": 10,
    },
    ("POST", "/orgs/{org}/visualizations/generate"): {
        "dataset": "sales",
        "x": "region",
        "y": "amount",
        "aggregation": "sum",
    },
    ("POST", "/orgs/{org}/dashboards"): {
        "notebook": {
            "cells": [],
            "metadata": {},
            "nbformat": 4,
            "nbformat_minor": 5,
        },
        "kind": "voila",
        "title": "Sales",
        "slug": "sales",
        "pins": {"sales": 1},
    },
}


@pytest.fixture(scope="module", params=BACKENDS)
def fuzz_hub(request, tmp_path_factory):
    """A hub of its own: the fuzzer creates organizations, members and datasets."""
    with running_hub(request, tmp_path_factory, request.param, label="fuzz") as hub:
        yield hub


@pytest.fixture(scope="module")
def world(fuzz_hub):
    """acme (plan team): adam admin, alice analyst, vera viewer, sam analyst, the dataset
    sales, the dashboard sales, a pending invitation; globex: gary analyst, an invitation code."""
    hub = fuzz_hub
    tokens = hub.populate(
        {"acme": "Acme Corp", "globex": "Globex"},
        [
            ("acme", "adam", "admin"),
            ("acme", "alice", "analyst"),
            ("acme", "vera", "viewer"),
            ("acme", "sam", "analyst"),
            ("globex", "gary", "analyst"),
        ],
    )
    r = hub.api("PUT", "/orgs/acme/plan", hub.admin_token, json={"plan": "team"})
    assert r.status_code == 200, r.text
    r = hub.upload("acme", tokens["alice"], "sales", CSV, "sales.csv")
    assert r.status_code == 202, r.text
    job = hub.wait_job("acme", r.json()["job"]["id"], tokens["alice"])
    assert job["state"] == "succeeded", job
    invitation = hub.api("POST", "/orgs/acme/invitations", tokens["adam"], json={}).json()
    code = hub.api("POST", "/orgs/globex/invitations", hub.admin_token, json={}).json()["code"]
    r = hub.api("POST", "/orgs/acme/dashboards", tokens["alice"], json=REAL_BODIES[_PUBLISH])
    assert r.status_code == 201, r.text
    return {
        "tokens": {
            "hub-admin": hub.admin_token,
            "admin": tokens["adam"],
            "analyst": tokens["alice"],
            "viewer": tokens["vera"],
            "stranger": tokens["gary"],
            "anonymous": None,
        },
        "known": {
            "org": ["acme", "globex"],
            "name": ["sales"],
            # sam and a newcomer: the callers themselves keep their roles
            "user": ["sam", "newbie"],
            "job_id": [job["id"]],
            "invitation_id": [invitation["id"]],
            "code": [code],
            "slug": ["sales"],
        },
    }


def _config(world) -> schemathesis.Config:
    known = world["known"]
    return schemathesis.Config.from_dict(
        {
            "dictionaries": {
                **{name: {"values": values} for name, values in known.items()},
                "doomed": {"values": [DOOMED]},
                "columns": {"values": ["region"]},
                "files": {"values": [CSV.decode(), "a;b\n1,5;x\n2,5;y\n", "x\n"]},
            },
            # the real objects most of the time, generated values the rest; an upload's
            # file is sometimes a small CSV, so that some get past the content checks, and
            # its name sometimes the existing dataset's (409, replace, append)
            "parameters": {
                **{f"path.{name}": {"dictionary": name, "probability": 0.7} for name in known},
                "body.file": {"dictionary": "files", "probability": 0.5},
                "body.name": {"dictionary": "name", "probability": 0.3},
                # an aggregation's groups: a column sales has
                "body.group_by": {"dictionary": "columns", "probability": 0.5},
            },
            # the callers' tokens are the test's: schemathesis neither makes nor drops one
            "generation": {"with-security-parameters": False},
            "checks": {"positive_data_acceptance": {"expected-statuses": _ACCEPTED}},
            "operations": [
                {
                    "include-name": "DELETE /orgs/{org}",
                    "parameters": {"path.org": {"dictionary": "doomed", "probability": 0.7}},
                },
                *(
                    {
                        "include-name": f"{method} {path}",
                        "checks": {
                            "positive_data_acceptance": {
                                "expected-statuses": _ACCEPTED + [str(s) for s in statuses]
                            }
                        },
                    }
                    for (method, path), statuses in CONTENT_CHECKED.items()
                ),
            ],
        }
    )


@pytest.fixture(scope="module")
def api_schema(fuzz_hub, world):
    return schemathesis.openapi.from_url(f"{fuzz_hub.url}{API}/openapi.json", config=_config(world))


@pytest.mark.parametrize("method, path", ORDER, ids=[f"{m} {p}" for m, p in ORDER])
def test_operation_under_fuzzer(api_schema, fuzz_hub, world, method, path):
    operation = api_schema[path][method]
    cases = st.one_of(
        operation.as_strategy(GenerationMode.POSITIVE),
        operation.as_strategy(GenerationMode.NEGATIVE),
    )

    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        database=None,
        derandomize=SEED is None,
        suppress_health_check=list(HealthCheck),
    )
    @given(case=cases, caller=st.sampled_from(CALLERS), real=st.sampled_from([True, False]))
    def fuzz(case, caller, real):
        token = world["tokens"][caller]
        body = REAL_BODIES.get((method, path))
        if body and real and case.meta.generation.mode.is_positive:
            case.body = body
        if path == "/orgs/{org}" and method == "DELETE" and case.path_parameters["org"] == DOOMED:
            fuzz_hub.api("POST", "/orgs", fuzz_hub.admin_token, json={"slug": DOOMED}, check=False)
        case.call_and_validate(headers={"Authorization": f"token {token}"} if token else None)

    if SEED is not None:
        fuzz = hypothesis.seed(int(SEED))(fuzz)
    fuzz()
