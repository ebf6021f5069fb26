"""The OpenAPI 3 document of the data service API (tested to match the handlers)."""

from __future__ import annotations

from typing import Any

from datapilot_charts import CHART_TYPES
from datapilot_contract import DATASET_NAME, MODES, ORG_SLUG, user_name_json_schema

from ..domain.charts import AGGREGATIONS

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
_JOB = {"name": "job_id", "in": "path", "required": True, "schema": {"type": "string"}}
_INVITATION = {
    "name": "invitation_id",
    "in": "path",
    "required": True,
    "schema": {"type": "string"},
}
_CODE = {"name": "code", "in": "path", "required": True, "schema": {"type": "string"}}


def _q(name: str, typ: str, description: str, **schema: Any) -> dict[str, Any]:
    return {
        "name": name,
        "in": "query",
        "required": False,
        "description": description,
        "schema": {"type": typ, **schema},
    }


_METRIC = {
    "oneOf": [
        {
            "type": "string",
            "description": "count, count_distinct, sum, mean, median, min, max, or a"
            " percentile p1..p99 (p99_9 for 99.9)",
        },
        {
            "type": "object",
            "required": ["percentile"],
            "properties": {"percentile": {"type": "number", "exclusiveMinimum": 0, "maximum": 1}},
        },
    ]
}
_AGGREGATE_BODY = {
    "group_by": {"type": "array", "items": {"type": "string"}, "maxItems": 10},
    "time_bucket": {
        "type": "object",
        "required": ["column", "unit"],
        "properties": {
            "column": {"type": "string"},
            "unit": {"type": "string", "enum": ["hour", "day", "week", "month", "quarter", "year"]},
        },
    },
    "derive": {
        "type": "object",
        "description": "new columns: name -> expression",
        "additionalProperties": {"type": "string"},
    },
    "metrics": {
        "type": "object",
        "description": 'column (or "*" for rows) -> list of metrics',
        "additionalProperties": {"type": "array", "items": _METRIC},
    },
    "filter": {"type": "string", "description": "an expression, e.g. day >= '2025-03-01'"},
    "sort": {
        "type": "array",
        "items": {
            "oneOf": [
                {"type": "string", "description": "a column of the answer; -name descending"},
                {
                    "type": "object",
                    "required": ["column"],
                    "properties": {"column": {"type": "string"}, "desc": {"type": "boolean"}},
                },
            ]
        },
    },
    "limit": {"type": "integer", "minimum": 1, "maximum": 100000},
    "other": {"type": "boolean", "description": "the groups past the limit as one more group"},
    "version": {"type": "integer", "minimum": 1},
}

_CHART_BODY = {
    "dataset": DATASET_NAME.json_schema(),
    "version": {"type": "integer", "minimum": 1},
    "chart_type": {"type": "string", "enum": list(CHART_TYPES)},
    "x": {"type": "string", "description": "the column along x"},
    "y": {"type": "string", "description": "the measure (a heatmap's cells)"},
    "group": {"type": "string", "description": "the column whose values make series"},
    "columns": {
        "type": "array",
        "items": {"type": "string"},
        "maxItems": 3,
        "description": "columns whose roles are left to the recommendation",
    },
    "aggregation": {"type": "string", "enum": list(AGGREGATIONS)},
    "time_bucket": {"type": "string", "enum": ["hour", "day", "week", "month", "quarter", "year"]},
    "filter": {"type": "string", "description": "an expression, as in aggregations"},
    "limit": {"type": "integer", "minimum": 1, "maximum": 50},
    "bins": {"type": "integer", "minimum": 2, "maximum": 200},
    "title": {"type": "string", "maxLength": 200},
}

# path -> method -> (summary, permission, parameters, request body or None, success status[,
# further error statuses]); a request body maps each field to its type, or to its JSON Schema
OPERATIONS: dict[str, dict[str, tuple]] = {
    "/health": {
        "get": (
            "Whether the service is up (503 when degraded); the catalog, storage and compute"
            " checks only for hub admins",
            None,
            [],
            None,
            "200",
        )
    },
    "/me": {"get": ("The caller and their organizations", "logged in", [], None, "200")},
    "/openapi.json": {"get": ("This document", None, [], None, "200")},
    "/orgs": {
        "post": (
            "Create an organization",
            "hub admin, or any user with self-service organizations",
            [],
            {"slug": ORG_SLUG.json_schema(), "name": "string"},
            "201",
        )
    },
    "/orgs/{org}": {
        "get": ("Organization, plan and usage", "member", [_ORG], None, "200"),
        "delete": (
            "Delete the organization, its data, hub group and servers",
            "hub admin",
            [_ORG],
            None,
            "204",
        ),
    },
    "/orgs/{org}/invitations": {
        "get": ("Invitations with their state", "members:manage", [_ORG], None, "200"),
        "post": (
            "Make a single-use, expiring invitation; the answer holds its code and link once",
            "members:manage",
            [_ORG],
            {"role": "string", "email": "string", "expires_in": "integer"},
            "201",
        ),
    },
    "/orgs/{org}/invitations/{invitation_id}": {
        "delete": ("Revoke an invitation", "members:manage", [_ORG, _INVITATION], None, "200"),
    },
    "/invitations/{code}": {
        "get": (
            "What an invitation is for: its organization, role, state and expiry",
            "logged in (the code is the secret)",
            [_CODE],
            None,
            "200",
        ),
    },
    "/invitations/{code}/accept": {
        "post": (
            "Join the invitation's organization with its role",
            "logged in",
            [_CODE],
            None,
            "200",
        ),
    },
    "/orgs/{org}/settings": {
        "get": ("Name, default role, server limits, idle time", "member", [_ORG], None, "200"),
        "patch": (
            "Change settings (null resets a limit)",
            "org:manage",
            [_ORG],
            {
                "name": "string",
                "default_role": "string",
                "mem_limit": "string",
                "cpu_limit": "number",
                "idle_timeout": "integer",
            },
            "200",
        ),
    },
    "/orgs/{org}/plan": {
        "put": ("Change the plan", "hub admin", [_ORG], {"plan": "string"}, "200"),
    },
    "/orgs/{org}/usage": {
        "get": (
            "Usage levels, metered sums, plan limits and recent records",
            "member",
            [
                _ORG,
                _q("since", "string", "sums from this ISO 8601 time on", format="date-time"),
                _q("metric", "string", "only records of this metric"),
            ],
            None,
            "200",
        ),
    },
    "/orgs/{org}/server-policy": {
        "get": (
            "Limits of the caller's new notebook server; checks the server quota",
            "notebooks:run",
            [_ORG],
            None,
            "200",
        ),
    },
    "/orgs/{org}/members": {"get": ("Members and roles", "member", [_ORG], None, "200")},
    "/orgs/{org}/members/{user}": {
        "put": (
            "Add a member or change a role",
            "members:manage",
            [_ORG, _USER],
            {"role": "string"},
            "200",
        ),
        "delete": ("Remove a member", "members:manage", [_ORG, _USER], None, "204"),
    },
    "/orgs/{org}/datasets": {
        "get": ("Datasets with their current version", "data:read", [_ORG], None, "200"),
        "post": (
            "Upload a file as a dataset (multipart: file, name, mode, options); with"
            ' options.sheet "*" every sheet of a workbook as its own dataset',
            "data:import",
            [_ORG],
            "multipart",
            "202",
        ),
    },
    "/orgs/{org}/datasets/{name}": {
        "get": ("Schema, report and versions", "data:read", [_ORG, _NAME], None, "200"),
        "delete": ("Delete the dataset and its files", "data:delete", [_ORG, _NAME], None, "204"),
    },
    "/orgs/{org}/datasets/{name}/versions": {
        "get": ("Immutable versions with lineage", "data:read", [_ORG, _NAME], None, "200"),
    },
    "/orgs/{org}/datasets/{name}/rollback": {
        "post": (
            "Make an older version current again",
            "data:import",
            [_ORG, _NAME],
            {"version": "integer"},
            "200",
        ),
    },
    "/orgs/{org}/datasets/{name}/data": {
        "get": (
            "Rows as json, csv, arrow, parquet or xlsx (Excel, one sheet)",
            "data:read",
            [
                _ORG,
                _NAME,
                _q("version", "integer", "a version number; default the current one"),
                _q("columns", "string", "comma-separated column names"),
                _q("limit", "integer", "rows at most (json: default 1000)"),
                _q("offset", "integer", "rows to skip"),
                _q(
                    "format", "string", "encoding", enum=["json", "csv", "arrow", "parquet", "xlsx"]
                ),
            ],
            None,
            "200",
        ),
    },
    "/orgs/{org}/datasets/{name}/insights": {
        "get": (
            "Ranked insights of a version, each with its test, numbers, sentence and chart;"
            " computed once per version (sampled when large), with the narrator's summary"
            " on request",
            "insights:run",
            [
                _ORG,
                _NAME,
                _q("version", "integer", "a version number; default the current one"),
                _q("summary", "string", "add the narrator's summary", enum=["true", "false"]),
            ],
            None,
            "200",
            ("429",),
        ),
    },
    "/orgs/{org}/datasets/{name}/aggregate": {
        "post": (
            "Group-by, time buckets, metrics, filters and top-N over a version; the answer as"
            " json, csv, arrow or parquet (too many groups: 400 too_many_groups; a bad filter:"
            " 400 with details.position)",
            "data:read",
            [
                _ORG,
                _NAME,
                _q("format", "string", "encoding", enum=["json", "csv", "arrow", "parquet"]),
            ],
            _AGGREGATE_BODY,
            "200",
            ("413", "422", "429"),
        ),
    },
    "/orgs/{org}/visualizations/generate": {
        "post": (
            "A chart of a dataset: the spec (type, title, axes, series with their data, the"
            " palette) and the recommendation with its reason when the type or columns were"
            " left out; format=bokeh answers a Bokeh JSON item, format=png a picture",
            "data:read",
            [
                _ORG,
                _q("format", "string", "answer", enum=["spec", "bokeh", "png"]),
                _q("theme", "string", "bokeh and png: drawn for", enum=["light", "dark"]),
                _q("width", "integer", "png: pixels", minimum=100, maximum=2000),
                _q("height", "integer", "png: pixels", minimum=100, maximum=2000),
            ],
            _CHART_BODY,
            "200",
            ("413", "422", "429"),
        ),
    },
    "/orgs/{org}/jobs/{job_id}": {"get": ("A job's state", "member", [_ORG, _JOB], None, "200")},
    "/orgs/{org}/jobs/{job_id}/cancel": {
        "post": ("Cancel a job", "owner or data:delete", [_ORG, _JOB], None, "200"),
    },
    "/orgs/{org}/jobs/{job_id}/events": {
        "get": ("WebSocket: the job's model at every change", "member", [_ORG, _JOB], None, "101"),
    },
    "/orgs/{org}/audit": {
        "get": (
            "Audit events, newest first; format=csv exports them",
            "audit:read",
            [
                _ORG,
                _q("user", "string", "only this caller's events"),
                _q("action", "string", "only this action (dataset.read, member.set, ...)"),
                _q("since", "string", "from this ISO 8601 time on", format="date-time"),
                _q("until", "string", "before this ISO 8601 time", format="date-time"),
                _q("limit", "integer", "events at most (json: default 100, at most 1000)"),
                _q("offset", "integer", "newest events to skip"),
                _q("format", "string", "encoding", enum=["json", "csv"]),
            ],
            None,
            "200",
        ),
    },
}

_ERROR = {
    "type": "object",
    "required": ["error", "message"],
    "properties": {
        "error": {"type": "string"},
        "message": {"type": "string"},
        "details": {"type": "object"},
    },
}


_STATUSES = {
    "413": "request body too large",
    "422": "the data cannot be processed this way",
    "429": "rate limited (see Retry-After)",
}


def _operation(
    method: str, summary, permission, parameters, body, status, more=()
) -> dict[str, Any]:
    op: dict[str, Any] = {
        "summary": summary,
        "description": f"Permission: {permission or 'none'}.",
        "parameters": parameters,
        "responses": {
            status: {"description": "success"},
            **{
                code: {
                    "description": text,
                    "content": {
                        "application/json": {"schema": {"$ref": "#/components/schemas/Error"}}
                    },
                }
                for code, text in (
                    ("400", "bad input"),
                    ("401", "not logged in"),
                    ("403", "no permission"),
                    ("404", "unknown or not visible to you"),
                    *((c, _STATUSES[c]) for c in more),
                )
            },
        },
    }
    if body == "multipart":
        op["requestBody"] = {
            "required": True,
            "content": {
                "multipart/form-data": {
                    "schema": {
                        "type": "object",
                        "required": ["file", "name"],
                        "properties": {
                            "file": {"type": "string", "format": "binary"},
                            "name": DATASET_NAME.json_schema(),
                            "mode": {"type": "string", "enum": list(MODES)},
                            "options": {"type": "string", "description": "a JSON object"},
                        },
                    }
                }
            },
        }
    elif body:
        op["requestBody"] = {
            "required": True,
            "content": {
                "application/json": {
                    "schema": {
                        "type": "object",
                        "properties": {
                            k: t if isinstance(t, dict) else {"type": t} for k, t in body.items()
                        },
                    }
                }
            },
        }
    if permission is None:
        op["security"] = []
    return op


def openapi_document(service_prefix: str = "/services/datapilot/") -> dict[str, Any]:
    """The OpenAPI 3.0 document, with the server URL under ``service_prefix``."""
    return {
        "openapi": "3.0.3",
        "info": {"title": "Datapilot data service", "version": "1"},
        "servers": [{"url": f"{service_prefix.rstrip('/')}/api/v1"}],
        "components": {
            "schemas": {"Error": _ERROR},
            "securitySchemes": {
                "token": {
                    "type": "apiKey",
                    "in": "header",
                    "name": "Authorization",
                    "description": "'token <JupyterHub API token>'",
                },
            },
        },
        "security": [{"token": []}],
        "paths": {
            path: {m: _operation(m, *spec) for m, spec in methods.items()}
            for path, methods in OPERATIONS.items()
        },
    }
