"""The OpenAPI 3 document of the data service API.

Tested to match the handlers (``tests/test_api.py``) and fuzzed against a running service
with schemathesis (``tests/test_fuzz.py``): every status an operation answers is listed
here, with the machine codes of its errors, and every answer's body follows its schema.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from datapilot_contract import DASHBOARD_SLUG, DATASET_NAME, ORG_SLUG, user_name_json_schema

from ..domain._args import MAX_WHOLE
from . import _openapi_models as models
from ._openapi_models import ref

# the handlers' own lists of what a query argument may say
from .handlers.insights import FALSE as INSIGHTS_FALSE
from .handlers.insights import TRUE as INSIGHTS_TRUE
from .handlers.jobs import MAX_JOBS_LISTED
from .handlers.visualizations import FORMATS as CHART_FORMATS
from .handlers.visualizations import PNG_SIZES, THEMES

# ---- parameters -------------------------------------------------------------------------

# the names' rules come from the contract every part checks (full match, ECMA-262 anchors)
_ORG = {
    "name": "org",
    "in": "path",
    "required": True,
    "schema": ORG_SLUG.json_schema(),
    "description": "organization slug",
}
_NAME = {
    "name": "name",
    "in": "path",
    "required": True,
    "schema": DATASET_NAME.json_schema(),
    "description": "dataset name",
}
_USER = {
    "name": "user",
    "in": "path",
    "required": True,
    "schema": user_name_json_schema(),
    "description": "JupyterHub user name",
}
_SLUG = {
    "name": "slug",
    "in": "path",
    "required": True,
    "schema": DASHBOARD_SLUG.json_schema(),
    "description": "dashboard slug",
}
_RECIPE = {
    "name": "recipe",
    "in": "path",
    "required": True,
    "schema": DATASET_NAME.json_schema(),
    "description": "saved recipe name",
}
_JOB = {"name": "job_id", "in": "path", "required": True, "schema": {"type": "string"}}
_INVITATION = {
    "name": "invitation_id",
    "in": "path",
    "required": True,
    "schema": {"type": "string"},
}
_CODE = {
    "name": "code",
    "in": "path",
    "required": True,
    "schema": {"type": "string", "pattern": "^[A-Za-z0-9_-]{43}$"},
    "description": "the invitation's code (any other is a 404)",
}


def _q(name: str, description: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {
        "name": name,
        "in": "query",
        "required": False,
        "description": description,
        "schema": schema,
    }


def _whole(low: int) -> dict[str, Any]:
    # the catalogs count in 64 bits
    return {"type": "integer", "minimum": low, "maximum": MAX_WHOLE}


def _size(low: int, high: int) -> dict[str, Any]:
    return {"type": "integer", "minimum": low, "maximum": high}


def _enum(values) -> dict[str, Any]:
    return {"type": "string", "enum": list(values)}


def _filter(longest: int) -> dict[str, Any]:
    return {"type": "string", "minLength": 1, "maxLength": longest}


# an ISO 8601 time as RFC 3339 writes it; an empty value is no filter
_TIME_FILTER = {"type": "string", "anyOf": [{"format": "date-time"}, {"maxLength": 0}]}

_GATEWAY_PATH = {
    "name": "path",
    "in": "query",
    "required": True,
    "schema": {"type": "string", "minLength": 1, "maxLength": 1024},
    "description": "the storage path (org-<id>/datasets/...)",
}
_CAPABILITY = {
    "name": "X-Datapilot-Capability",
    "in": "header",
    "required": False,
    "schema": {"type": "string"},
    "description": "the job's capability; without a valid one every call is a 404",
}
_RANGE = {
    "name": "Range",
    "in": "header",
    "required": False,
    "schema": {"type": "string"},
    "description": "bytes=<first>-[<last>]",
}
_OCTETS = "application/octet-stream"

# ---- responses --------------------------------------------------------------------------

_STATUS_TEXT = {
    400: "bad input (details.field names it)",
    401: "not logged in",
    403: "no permission (details.permission), or over a plan's limit",
    404: "unknown, or not visible to you",
    409: "conflict with the current state",
    413: "too large",
    415: "unsupported media type",
    422: "unreadable content",
    429: "rate limited; Retry-After says when to try again",
    502: "JupyterHub did not carry out the change; nothing was changed",
    503: "unavailable",
}

_HEADERS = {
    "Location": {
        "description": "where the new object is",
        "required": True,
        "schema": {"type": "string"},
    },
    "Retry-After": {
        "description": "seconds to wait",
        "required": True,
        "schema": {"type": "integer", "minimum": 0},
    },
}


def _json(schema: dict[str, Any], description: str = "success", location: bool = False) -> dict:
    answer: dict[str, Any] = {
        "description": description,
        "content": {"application/json": {"schema": schema}},
    }
    if location:
        answer["headers"] = {"Location": _HEADERS["Location"]}
    return answer


def _error(status: int, codes: set[str]) -> dict[str, Any]:
    listed = ", ".join(f"`{c}`" for c in sorted(codes))
    schema = {
        "allOf": [
            ref("Error"),
            {"properties": {"error": {"type": "string", "enum": sorted(codes)}}},
        ]
    }
    answer = _json(schema, f"{_STATUS_TEXT[status]}: {listed}")
    if status == 429:
        answer["headers"] = {"Retry-After": _HEADERS["Retry-After"]}
    return answer


Codes = dict[int, set[str]]


def _codes(*groups: Codes) -> Codes:
    merged: Codes = {}
    for group in groups:
        for status, codes in group.items():
            merged.setdefault(status, set()).update(codes)
    return merged


# what every call can be answered: a body over max_body_size is refused before any handler
ANY: Codes = {413: {"too_large"}}
# a call that needs a login
LOGIN: Codes = {**ANY, 401: {"not_authenticated"}}
# a call about one organization: a bad slug, or one the caller cannot see
IN_ORG: Codes = _codes(LOGIN, {400: {"invalid_name", "invalid_input"}, 404: {"not_found"}})
# a permission the caller's role lacks
DENIED: Codes = {403: {"forbidden"}}
# a JSON request body that is no JSON object
JSON_BODY: Codes = {400: {"invalid_json", "invalid_input"}}
# JupyterHub refused the name, or failed: nothing was changed
HUB: Codes = {400: {"invalid_name"}, 502: {"hub_unavailable"}}
# over a plan's limit
QUOTA: Codes = {403: {"quota_exceeded"}}
# a recipe's refusals: the body, or a step (details.step)
TRANSFORM_400 = {
    "invalid_input",
    "invalid_step",
    "unknown_op",
    "unknown_column",
    "invalid_expression",
    "invalid_name",
    "invalid_mode",
}
RUN_CODES: Codes = _codes(
    IN_ORG,
    DENIED,
    JSON_BODY,
    QUOTA,
    {400: TRANSFORM_400, 429: {"rate_limited"}},
)


@dataclass(frozen=True)
class Operation:
    """One method on one path of the API.

    Parameters
    ----------
    summary : str
        What it does.
    permission : str or None
        What the caller needs (None: not even a login).
    ok : dict
        Success status -> response object.
    errors : dict
        Error status -> the machine codes answered with it.
    parameters : list
        Path and query parameters.
    body : dict, optional
        The request body object.
    """

    summary: str
    permission: str | None
    ok: dict[str, Any]
    errors: Codes
    parameters: list[dict[str, Any]] = field(default_factory=list)
    body: dict[str, Any] | None = None

    def to_openapi(self) -> dict[str, Any]:
        """The operation object."""
        responses = dict(self.ok)
        for status in sorted(self.errors):
            responses[str(status)] = _error(status, self.errors[status])
        op: dict[str, Any] = {
            "summary": self.summary,
            "description": f"Permission: {self.permission or 'none'}.",
            "parameters": self.parameters,
            "responses": responses,
        }
        if self.body is not None:
            op["requestBody"] = self.body
        if self.permission is None:
            op["security"] = []
        return op


def _json_body(schema: dict[str, Any], required: bool = True) -> dict[str, Any]:
    # an empty body reads as {}: a body with nothing required may be left out
    return {"required": required, "content": {"application/json": {"schema": schema}}}


_NO_CONTENT = {"204": {"description": "done"}}
_BINARY = {"schema": {"type": "string", "format": "binary"}}
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def _operations(plans: list[str]) -> dict[str, dict[str, Operation]]:
    upload_body = {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": models.UPLOAD,
                "encoding": {"options": {"contentType": "application/json"}},
            }
        },
    }
    return {
        "/health": {
            "get": Operation(
                "Whether the service is up; the catalog, storage and compute checks only for"
                " hub admins",
                None,
                {
                    "200": _json(ref("Health"), "up"),
                    "503": _json(ref("Health"), "degraded: a check failed"),
                },
                ANY,
            )
        },
        "/me": {
            "get": Operation(
                "The caller and their organizations", "logged in", {"200": _json(ref("Me"))}, LOGIN
            )
        },
        "/openapi.json": {
            "get": Operation(
                "This document", None, {"200": _json({"type": "object"}, "the document")}, ANY
            )
        },
        "/orgs": {
            "post": Operation(
                "Create an organization; a user creator becomes its Admin",
                "hub admin, or any user with self-service organizations",
                {"201": _json(ref("Organization"), "created", location=True)},
                _codes(
                    LOGIN,
                    JSON_BODY,
                    HUB,
                    {403: {"forbidden", "server_token"}, 409: {"conflict"}},
                ),
                body=_json_body(models.NEW_ORG),
            )
        },
        "/orgs/{org}": {
            "get": Operation(
                "Organization, plan, limits and usage",
                "member",
                {"200": _json(ref("OrganizationInfo"))},
                IN_ORG,
                [_ORG],
            ),
            "delete": Operation(
                "Delete the organization, its data, hub group and servers",
                "hub admin",
                _NO_CONTENT,
                _codes(IN_ORG, DENIED),
                [_ORG],
            ),
        },
        "/orgs/{org}/invitations": {
            "get": Operation(
                "Invitations with their state",
                "members:manage",
                {"200": _json(ref("Invitations"))},
                _codes(IN_ORG, DENIED),
                [_ORG],
            ),
            "post": Operation(
                "Make a single-use, expiring invitation; the answer holds its code and link once",
                "members:manage",
                {"201": _json(ref("NewInvitation"), "made", location=True)},
                _codes(IN_ORG, DENIED, JSON_BODY, {400: {"invalid_role"}}),
                [_ORG],
                _json_body(models.NEW_INVITATION, required=False),
            ),
        },
        "/orgs/{org}/invitations/{invitation_id}": {
            "delete": Operation(
                "Revoke an invitation",
                "members:manage",
                {"200": _json(ref("Invitation"), "revoked")},
                _codes(IN_ORG, DENIED, {409: {"invitation_used"}}),
                [_ORG, _INVITATION],
            ),
        },
        "/invitations/{code}": {
            "get": Operation(
                "What an invitation is for: its organization, role, state and expiry",
                "logged in (the code is the secret)",
                {"200": _json(ref("InvitationLookup"))},
                _codes(LOGIN, {400: {"invalid_input"}, 404: {"not_found"}}),
                [_CODE],
            ),
        },
        "/invitations/{code}/accept": {
            "post": Operation(
                "Join the invitation's organization with its role",
                "logged in",
                {"200": _json(ref("Joined"), "joined")},
                _codes(
                    LOGIN,
                    HUB,
                    QUOTA,
                    {
                        400: {"invalid_input"},
                        403: {"forbidden", "server_token"},
                        404: {"not_found"},
                        409: {
                            "already_member",
                            "invitation_used",
                            "invitation_revoked",
                            "invitation_expired",
                        },
                    },
                ),
                [_CODE],
            ),
        },
        "/orgs/{org}/settings": {
            "get": Operation(
                "Name, default role, server limits, idle time",
                "member",
                {"200": _json(ref("Settings"))},
                IN_ORG,
                [_ORG],
            ),
            "patch": Operation(
                "Change settings (null resets a limit)",
                "org:manage",
                {"200": _json(ref("Settings"))},
                _codes(IN_ORG, DENIED, JSON_BODY),
                [_ORG],
                _json_body(models.SETTINGS_CHANGE, required=False),
            ),
        },
        "/orgs/{org}/plan": {
            "put": Operation(
                "Change the plan",
                "hub admin",
                {"200": _json(ref("PlanChange"))},
                _codes(IN_ORG, DENIED, JSON_BODY, {400: {"invalid_plan"}}),
                [_ORG],
                _json_body(
                    {
                        "type": "object",
                        "required": ["plan"],
                        "properties": {"plan": {"type": "string", "enum": plans}},
                    }
                ),
            ),
        },
        "/orgs/{org}/usage": {
            "get": Operation(
                "Usage levels, metered sums, plan limits and recent records",
                "member",
                {"200": _json(ref("Usage"))},
                IN_ORG,
                [
                    _ORG,
                    _q("since", "sums from this time on", _TIME_FILTER),
                    _q(
                        "metric",
                        "only records of this metric",
                        {"type": "string", "enum": list(models.METRICS)},
                    ),
                ],
            ),
        },
        "/orgs/{org}/server-policy": {
            "get": Operation(
                "Limits of the caller's new notebook server; checks the server quota",
                "notebooks:run",
                {"200": _json(ref("ServerPolicy"))},
                _codes(
                    IN_ORG,
                    DENIED,
                    QUOTA,
                    {503: {"no_hub"}},
                ),
                [_ORG],
            ),
        },
        "/orgs/{org}/members": {
            "get": Operation(
                "Members and roles", "member", {"200": _json(ref("Members"))}, IN_ORG, [_ORG]
            )
        },
        "/orgs/{org}/members/{user}": {
            "put": Operation(
                "Add a member (201) or change a role (200); the hub user is made if needed",
                "members:manage",
                {
                    "200": _json(ref("Member"), "role changed"),
                    "201": _json(ref("Member"), "added"),
                },
                _codes(
                    IN_ORG,
                    DENIED,
                    JSON_BODY,
                    HUB,
                    QUOTA,
                    {400: {"invalid_role"}, 409: {"last_admin", "conflict"}},
                ),
                [_ORG, _USER],
                _json_body(models.MEMBER_ROLE),
            ),
            "delete": Operation(
                "Remove a member; their server for the organization stops",
                "members:manage",
                _NO_CONTENT,
                _codes(IN_ORG, DENIED, {409: {"last_admin"}, 502: {"hub_unavailable"}}),
                [_ORG, _USER],
            ),
        },
        "/orgs/{org}/datasets": {
            "get": Operation(
                "Datasets with their current version",
                "data:read",
                {"200": _json(ref("Datasets"))},
                _codes(IN_ORG, DENIED),
                [_ORG],
            ),
            "post": Operation(
                'Upload a file as a dataset; a job ingests it. With options.sheet "*" every'
                " sheet of a workbook becomes a dataset of its own",
                "data:import",
                {"202": _json(ref("Upload"), "accepted: the job", location=True)},
                _codes(
                    IN_ORG,
                    DENIED,
                    QUOTA,
                    {
                        400: {"invalid_multipart", "invalid_mode", "missing_file"},
                        409: {"dataset_exists"},
                        413: {"too_many_parts", "fields_too_large", "compression_bomb"},
                        415: {"unsupported_media_type", "unsupported_type"},
                        422: {"line_too_long", "empty_file", "corrupt_file", "unsupported_archive"},
                        429: {"rate_limited"},
                    },
                ),
                [_ORG],
                upload_body,
            ),
        },
        "/orgs/{org}/datasets/{name}": {
            "get": Operation(
                "Columns, validation report and versions",
                "data:read",
                {"200": _json(ref("Dataset"))},
                _codes(IN_ORG, DENIED),
                [_ORG, _NAME],
            ),
            "delete": Operation(
                "Delete the dataset and its files",
                "data:delete",
                _NO_CONTENT,
                _codes(IN_ORG, DENIED, {409: {"job_running"}}),
                [_ORG, _NAME],
            ),
        },
        "/orgs/{org}/datasets/{name}/versions": {
            "get": Operation(
                "Immutable versions with lineage",
                "data:read",
                {"200": _json(ref("Versions"))},
                _codes(IN_ORG, DENIED),
                [_ORG, _NAME],
            ),
        },
        "/orgs/{org}/datasets/{name}/rollback": {
            "post": Operation(
                "Make an older version current again",
                "data:import",
                {"200": _json(ref("Dataset"))},
                _codes(IN_ORG, DENIED, JSON_BODY),
                [_ORG, _NAME],
                _json_body(models.ROLLBACK),
            ),
        },
        "/orgs/{org}/dashboards": {
            "get": Operation(
                "Published dashboards, most recently updated first",
                "dashboards:view",
                {"200": _json(ref("Dashboards"))},
                _codes(IN_ORG, DENIED),
                [
                    _ORG,
                    _q(
                        "q",
                        "keep those whose title, description, slug or publisher contain this",
                        {"type": "string"},
                    ),
                ],
            ),
            "post": Operation(
                "Publish a notebook (and the files it reads) as a new version of a dashboard",
                "dashboards:publish (a dashboard of someone else: dashboards:manage)",
                {"201": _json(ref("Dashboard"), "published", location=True)},
                _codes(
                    IN_ORG,
                    DENIED,
                    JSON_BODY,
                    {
                        400: {
                            "invalid_kind",
                            "invalid_notebook",
                            "invalid_path",
                            "invalid_pins",
                            "missing_field",
                            "missing_notebook",
                            "unknown_pin",
                        },
                        409: {"conflict"},
                        413: {"too_many_files"},
                    },
                ),
                [_ORG],
                _json_body(models.PUBLISH),
            ),
        },
        "/orgs/{org}/dashboards/{slug}": {
            "get": Operation(
                "A dashboard, its versions and the dataset versions it shows",
                "dashboards:view",
                {"200": _json(ref("Dashboard"))},
                _codes(IN_ORG, DENIED),
                [_ORG, _SLUG],
            ),
            "delete": Operation(
                "Unpublish: off the gallery and its address (versions are kept)",
                "its publisher, or dashboards:manage",
                _NO_CONTENT,
                _codes(IN_ORG, DENIED),
                [_ORG, _SLUG],
            ),
        },
        "/orgs/{org}/dashboards/{slug}/versions": {
            "get": Operation(
                "Immutable versions, oldest first",
                "dashboards:view",
                {"200": _json(ref("DashboardVersions"))},
                _codes(IN_ORG, DENIED),
                [_ORG, _SLUG],
            ),
        },
        "/orgs/{org}/dashboards/{slug}/rollback": {
            "post": Operation(
                "Make another version current again",
                "its publisher, or dashboards:manage",
                {"200": _json(ref("Dashboard"))},
                _codes(IN_ORG, DENIED, JSON_BODY),
                [_ORG, _SLUG],
                _json_body(models.ROLLBACK),
            ),
        },
        "/orgs/{org}/dashboards/{slug}/thumbnail": {
            "get": Operation(
                "The gallery picture: a chart the notebook drew (PNG) or a drawn card (SVG)",
                "dashboards:view",
                {
                    "200": {
                        "description": "the picture",
                        "content": {
                            "image/png": _BINARY,
                            "image/svg+xml": {"schema": {"type": "string"}},
                        },
                    }
                },
                _codes(IN_ORG, DENIED),
                [_ORG, _SLUG],
            ),
        },
        "/orgs/{org}/dashboards/{slug}/runtime-bundle": {
            "get": Operation(
                "The current version's notebook and files (base64), for the organization's"
                " dashboard server alone; anyone else gets 404",
                "the organization's dashboard server (its own token)",
                {"200": _json({"type": "object"})},
                IN_ORG,
                [
                    _ORG,
                    _SLUG,
                    _q(
                        "have",
                        "the version the server has: its files are left out when current",
                        {"type": "integer", "minimum": 0, "maximum": 999999999},
                    ),
                ],
            ),
        },
        "/orgs/{org}/dashboards/{slug}/viewer-token": {
            "post": Operation(
                "A read-only token of this organization for the viewer who opens the"
                " dashboard, sent with the viewer's own token for the dashboard server",
                "dashboards:view (the viewer's token for the organization's dashboard server)",
                {"201": _json({"type": "object"}, "minted")},
                _codes(IN_ORG, DENIED),
                [_ORG, _SLUG],
            ),
        },
        "/orgs/{org}/datasets/{name}/data": {
            "get": Operation(
                "Rows as json, csv, arrow or parquet",
                "data:read",
                {
                    "200": {
                        "description": "the rows, in the format asked for",
                        "content": {
                            "application/json": {"schema": ref("Rows")},
                            "text/csv": {"schema": {"type": "string"}},
                            "application/vnd.apache.arrow.stream": _BINARY,
                            "application/vnd.apache.parquet": _BINARY,
                            XLSX: _BINARY,
                        },
                    }
                },
                _codes(IN_ORG, DENIED, {400: {"unknown_column"}, 429: {"rate_limited"}}),
                [
                    _ORG,
                    _NAME,
                    _q("version", "a version; default the current one", _whole(-MAX_WHOLE)),
                    _q("columns", "comma-separated column names", {"type": "string"}),
                    _q("limit", "rows at most (json: default 1000, at most 100000)", _whole(0)),
                    _q("offset", "rows to skip", _whole(0)),
                    _q(
                        "format",
                        "encoding; default json",
                        {"type": "string", "enum": ["json", "csv", "arrow", "parquet", "xlsx"]},
                    ),
                ],
            ),
        },
        "/orgs/{org}/datasets/{name}/parts": {
            "get": Operation(
                "The parts of a version (its Parquet row groups) and its Arrow schema, for"
                " readers that fetch them one at a time (dp.load_dask)",
                "data:read",
                {"200": _json(ref("Parts"))},
                _codes(IN_ORG, DENIED),
                [
                    _ORG,
                    _NAME,
                    _q("version", "a version; default the current one", _whole(-MAX_WHOLE)),
                ],
            ),
        },
        "/orgs/{org}/datasets/{name}/parts/{part}": {
            "get": Operation(
                "One part of a version as a Parquet file",
                "data:read",
                {
                    "200": {
                        "description": "the part's rows",
                        "content": {"application/vnd.apache.parquet": _BINARY},
                    }
                },
                _codes(IN_ORG, DENIED, {400: {"unknown_column"}, 429: {"rate_limited"}}),
                [
                    _ORG,
                    _NAME,
                    {
                        "name": "part",
                        "in": "path",
                        "required": True,
                        "schema": _whole(0),
                        "description": "the part's number in the listing",
                    },
                    _q("version", "a version; default the current one", _whole(-MAX_WHOLE)),
                    _q("columns", "comma-separated column names", {"type": "string"}),
                ],
            ),
        },
        "/gateway/files": {
            # an external Dask scheduler's workers, with a job's capability (no user)
            **{
                method: Operation(
                    summary,
                    None,
                    ok,
                    _codes(ANY, {400: {"invalid_input"}, 404: {"not_found"}}),
                    [_GATEWAY_PATH, _CAPABILITY, *extra],
                )
                for method, summary, ok, extra in (
                    (
                        "get",
                        "Read a file granted to a job's capability (a byte range with Range)",
                        {
                            "200": {"description": "the file", "content": {_OCTETS: _BINARY}},
                            "206": {"description": "the range", "content": {_OCTETS: _BINARY}},
                        },
                        [_RANGE],
                    ),
                    (
                        "head",
                        "The size of a file granted to a job's capability",
                        {"200": {"description": "Content-Length is the file's size"}},
                        [],
                    ),
                )
            },
            "delete": Operation(
                "Remove a file under the output directory granted to a job's capability",
                None,
                _NO_CONTENT,
                _codes(ANY, {400: {"invalid_input"}, 404: {"not_found"}}),
                [_GATEWAY_PATH, _CAPABILITY],
            ),
            "put": Operation(
                "Write a file under the output directory granted to a job's capability",
                None,
                {"201": _json(ref("GatewayWrite"))},
                _codes(ANY, {400: {"invalid_input"}, 404: {"not_found"}}),
                [_GATEWAY_PATH, _CAPABILITY],
                {"required": True, "content": {_OCTETS: _BINARY}},
            ),
        },
        "/orgs/{org}/datasets/{name}/aggregate": {
            "post": Operation(
                "Group-by, time buckets, metrics, filters and top-N over a version; the answer"
                " as json, csv, arrow or parquet",
                "data:read",
                {
                    "200": {
                        "description": "the groups, in the format asked for",
                        "content": {
                            "application/json": {"schema": ref("Aggregate")},
                            "text/csv": {"schema": {"type": "string"}},
                            "application/vnd.apache.arrow.stream": _BINARY,
                            "application/vnd.apache.parquet": _BINARY,
                        },
                    }
                },
                _codes(
                    IN_ORG,
                    DENIED,
                    JSON_BODY,
                    {
                        # an expression's error gives details.position
                        400: {"unknown_column", "invalid_expression", "too_many_groups"},
                        422: {"out_of_memory", "unprocessable"},
                        429: {"rate_limited"},
                    },
                ),
                [
                    _ORG,
                    _NAME,
                    _q(
                        "format",
                        "encoding; default json",
                        {"type": "string", "enum": ["json", "csv", "arrow", "parquet"]},
                    ),
                ],
                _json_body(models.AGGREGATION),
            ),
        },
        "/orgs/{org}/datasets/{name}/transform": {
            "post": Operation(
                "Run a recipe of declarative steps on Dask: 202 with the job that writes the"
                " output dataset's new version; with preview, the first rows on a sample",
                "data:transform",
                {
                    "200": _json(ref("TransformPreview"), "preview: the recipe's first rows"),
                    "202": _json(ref("TransformJob"), "the job started", location=True),
                },
                _codes(
                    IN_ORG,
                    DENIED,
                    JSON_BODY,
                    QUOTA,
                    {
                        # details.step names the step (and field, position)
                        400: TRANSFORM_400,
                        409: {"dataset_exists"},
                        422: {"transform_failed"},
                        429: {"rate_limited"},
                    },
                ),
                [_ORG, _NAME],
                _json_body(models.TRANSFORM),
            ),
        },
        "/orgs/{org}/recipes": {
            "get": Operation(
                "The saved recipes",
                "data:read",
                {"200": _json(ref("Recipes"))},
                _codes(IN_ORG, DENIED),
                [_ORG],
            ),
        },
        "/orgs/{org}/recipes/{recipe}": {
            "get": Operation(
                "A saved recipe",
                "data:read",
                {"200": _json(ref("Recipe"))},
                _codes(IN_ORG, DENIED),
                [_ORG, _RECIPE],
            ),
            "put": Operation(
                "Save a recipe by name (checked as a run is), on the current versions of its"
                " sources; auto_refresh runs it when one gets a new version",
                "data:transform",
                {
                    "200": _json(ref("Recipe"), "replaced"),
                    "201": _json(ref("Recipe"), "saved", location=True),
                },
                _codes(IN_ORG, DENIED, JSON_BODY, {400: TRANSFORM_400}),
                [_ORG, _RECIPE],
                _json_body(models.RECIPE_SAVE),
            ),
            "delete": Operation(
                "Delete a saved recipe (its outputs stay)",
                "data:transform",
                _NO_CONTENT,
                _codes(IN_ORG, DENIED),
                [_ORG, _RECIPE],
            ),
        },
        "/orgs/{org}/recipes/{recipe}/run": {
            "post": Operation(
                "Run a saved recipe again on the versions it keeps; 202 with the job",
                "data:transform",
                {"202": _json(ref("RecipeRun"), "the job started", location=True)},
                RUN_CODES,
                [_ORG, _RECIPE],
                _json_body({"type": "object", "additionalProperties": False}, required=False),
            ),
        },
        "/orgs/{org}/recipes/{recipe}/refresh": {
            "post": Operation(
                "Run a saved recipe on the latest versions of its sources (which it then"
                " keeps); 202 with the job",
                "data:transform",
                {"202": _json(ref("RecipeRun"), "the job started", location=True)},
                RUN_CODES,
                [_ORG, _RECIPE],
                _json_body({"type": "object", "additionalProperties": False}, required=False),
            ),
        },
        "/orgs/{org}/datasets/{name}/insights": {
            "get": Operation(
                "Ranked insights of a version, each with its test, numbers, sentence and chart;"
                " computed once per version (sampled when large), with the narrator's summary"
                " on request",
                "insights:run",
                {"200": _json(ref("Insights"))},
                _codes(IN_ORG, {403: {"forbidden"}, 429: {"rate_limited"}}),
                [
                    _ORG,
                    _NAME,
                    _q("version", "a version; default the current one", _whole(-MAX_WHOLE)),
                    _q(
                        "summary",
                        "add the narrator's summary",
                        {"type": "string", "enum": [*INSIGHTS_TRUE, *INSIGHTS_FALSE]},
                    ),
                ],
            ),
        },
        "/orgs/{org}/visualizations/generate": {
            "post": Operation(
                "A chart of a dataset: the spec (type, title, axes, series with their data, the"
                " palette) and the recommendation with its reason when the type or columns were"
                " left out; format=bokeh answers a Bokeh JSON item, format=png a picture",
                "data:read",
                {
                    "200": {
                        "description": "the chart, in the format asked for",
                        "content": {
                            "application/json": {
                                "schema": {
                                    "anyOf": [
                                        ref("Chart"),
                                        {"type": "object", "description": "a Bokeh JSON item"},
                                    ]
                                }
                            },
                            "image/png": _BINARY,
                        },
                    }
                },
                _codes(
                    IN_ORG,
                    DENIED,
                    JSON_BODY,
                    {
                        # the columns named do not fit the chart, or the dataset
                        400: {
                            "unknown_column",
                            "invalid_expression",
                            "not_numeric",
                            "nothing_to_chart",
                            "wrong_column",
                            "wrong_aggregation",
                            "too_many_categories",
                            "too_many_groups",
                        },
                        422: {"out_of_memory", "unprocessable"},
                        429: {"rate_limited"},
                    },
                ),
                [
                    _ORG,
                    _q("format", "answer; default spec", _enum(CHART_FORMATS)),
                    _q("theme", "bokeh and png: drawn for; default light", _enum(THEMES)),
                    _q("width", "png: pixels; default 640", _size(*PNG_SIZES)),
                    _q("height", "png: pixels; default 360", _size(*PNG_SIZES)),
                ],
                _json_body(models.CHART_REQUEST),
            ),
        },
        "/orgs/{org}/jobs": {
            "get": Operation(
                "The organization's jobs, newest first",
                "member",
                {"200": _json(ref("Jobs"))},
                IN_ORG,
                [
                    _ORG,
                    _q(
                        "state",
                        "active keeps the queued and running; default all",
                        _enum(("all", "active")),
                    ),
                    _q("limit", "jobs at most; default 20", _size(1, MAX_JOBS_LISTED)),
                ],
            )
        },
        "/orgs/{org}/jobs/{job_id}": {
            "get": Operation(
                "A job's state", "member", {"200": _json(ref("Job"))}, IN_ORG, [_ORG, _JOB]
            )
        },
        "/orgs/{org}/jobs/{job_id}/cancel": {
            "post": Operation(
                "Cancel a job",
                "the job's owner, or data:delete",
                {"200": _json(ref("Job"), "cancelling or cancelled")},
                _codes(IN_ORG, DENIED, {409: {"job_finished"}}),
                [_ORG, _JOB],
            ),
        },
        "/orgs/{org}/jobs/{job_id}/events": {
            "get": Operation(
                "WebSocket: the job's model at every change, until it ends",
                "member",
                {"101": {"description": "switching to the WebSocket"}},
                _codes(IN_ORG, {400: {"websocket_required"}}),
                [_ORG, _JOB],
            ),
        },
        "/orgs/{org}/audit": {
            "get": Operation(
                "Audit events, newest first; format=csv exports them",
                "audit:read",
                {
                    "200": {
                        "description": "the events",
                        "content": {
                            "application/json": {"schema": ref("AuditEvents")},
                            "text/csv": {"schema": {"type": "string"}},
                        },
                    }
                },
                _codes(IN_ORG, DENIED),
                [
                    _ORG,
                    _q("user", "only this caller's events", _filter(255)),
                    _q("action", "only this action (dataset.read, member.set, ...)", _filter(60)),
                    _q("since", "from this time on", _TIME_FILTER),
                    _q("until", "before this time", _TIME_FILTER),
                    _q(
                        "limit",
                        "events at most (json: default 100, at most 1000)",
                        _whole(1),
                    ),
                    _q("offset", "newest events to skip", _whole(0)),
                    _q(
                        "format",
                        "encoding; default json",
                        {"type": "string", "enum": ["json", "csv"]},
                    ),
                ],
            ),
        },
    }


#: path -> the methods it serves (the handlers are tested to serve exactly these)
OPERATIONS: dict[str, tuple[str, ...]] = {
    path: tuple(methods) for path, methods in _operations(["free"]).items()
}


def openapi_document(
    service_prefix: str = "/services/datapilot/", plans: list[str] | None = None
) -> dict[str, Any]:
    """The OpenAPI 3.0 document, with the server URL under ``service_prefix``.

    Parameters
    ----------
    service_prefix : str
        Where the service is served.
    plans : list of str, optional
        The plans configured (what ``PUT /orgs/{org}/plan`` takes).
    """
    operations = _operations(sorted(plans or ["free"]))
    return {
        "openapi": "3.0.3",
        "info": {
            "title": "Datapilot data service",
            "version": "1",
            "description": 'Errors are JSON `{"error", "message", "details"}`; a method a'
            " path does not serve is a 405 with `Allow`.",
        },
        "servers": [{"url": f"{service_prefix.rstrip('/')}/api/v1"}],
        "components": {
            "schemas": models.MODELS,
            "securitySchemes": {
                "token": {
                    "type": "apiKey",
                    "in": "header",
                    "name": "Authorization",
                    "description": "'token <JupyterHub API token>' (or the hub's login cookie)",
                },
            },
        },
        "security": [{"token": []}],
        "paths": {
            path: {method: op.to_openapi() for method, op in methods.items()}
            for path, methods in operations.items()
        },
    }
