"""The JSON Schemas of the OpenAPI document: bodies the API answers and takes.

Each model says what every answer holds (``required``) and leaves room for more
(no ``additionalProperties: false`` on answers); a request body refuses the fields its
handler refuses. Where the service checks more than a schema can say (a text encoding
Python knows, a memory size of at least 64M), the description says so.
"""

from __future__ import annotations

from typing import Any

from datapilot_charts import CHART_TYPES
from datapilot_contract import (
    DASHBOARD_DESCRIPTION,
    DASHBOARD_KINDS,
    DASHBOARD_SLUG,
    DASHBOARD_TITLE,
    DATASET_NAME,
    MAX_PATH_LENGTH,
    MAX_SNAPSHOT_FILES,
    MODES,
    ORG_NAME,
    ORG_SLUG,
)

from ..domain.aggregate import FUNCTIONS, UNITS
from ..domain.aggregate._spec import MAX_DERIVED, MAX_GROUP_BY, MAX_ROWS
from ..domain.charts._request import AGGREGATIONS as CHART_AGGREGATIONS
from ..domain.charts._request import MAX_BARS, MAX_BINS
from ..domain.charts._request import UNITS as CHART_UNITS
from ..domain.ingest import OPTION_KEYS, TYPES
from ..domain.invitations import EMAIL_PATTERN, MAX_EXPIRES_IN, MIN_EXPIRES_IN
from ..domain.org_settings import MAX_CPU, MAX_IDLE, MEM_LIMIT_PATTERN, MIN_IDLE, MIN_MEM
from ..domain.plans import LIMITS, METRICS
from ..permissions import PERMISSIONS, ROLES


def ref(name: str) -> dict[str, str]:
    """A reference to the component schema ``name``."""
    return {"$ref": f"#/components/schemas/{name}"}


def nullable(schema: dict[str, Any]) -> dict[str, Any]:
    """``schema``, or null (OpenAPI 3.0 spells it ``nullable``)."""
    return {**schema, "nullable": True}


def _object(required: dict[str, Any], optional: dict[str, Any] | None = None) -> dict[str, Any]:
    return {
        "type": "object",
        "required": list(required),
        "properties": {**required, **(optional or {})},
    }


_STRING = {"type": "string"}
_TIME = {"type": "string", "format": "date-time"}
_COUNT = {"type": "integer", "minimum": 0}
_NUMBER = {"type": "number"}
_ROLE = {"type": "string", "enum": list(ROLES)}
_JSON_OBJECT = {"type": "object"}

#: the error body of every refusal; each answer's ``error`` is one of its status's codes
ERROR = _object(
    {
        "error": {"type": "string", "pattern": "^[a-z_]+$", "description": "machine code"},
        "message": {"type": "string", "minLength": 1, "description": "a sentence for a person"},
        "details": {
            "type": "object",
            "description": "what helps to fix it: the field, a limit, the permission...",
        },
    }
)

_CHECK = {
    "type": "object",
    "required": ["status"],
    "properties": {"status": {"type": "string", "enum": ["ok", "error"]}, "message": _STRING},
}

_LIMITS = _object({name: nullable(_COUNT) for name in LIMITS})

_ORG = _object(
    {
        "slug": ORG_SLUG.json_schema(),
        "name": _STRING,
        "plan": _STRING,
        "created": _TIME,
    }
)

_PERMISSIONS = {"type": "array", "items": {"type": "string", "enum": sorted(PERMISSIONS)}}

_USAGE_LEVELS = {
    "members": _COUNT,
    "datasets": _COUNT,
    "storage_bytes": _COUNT,
    "rows_ingested": _COUNT,
    "compute_seconds": _NUMBER,
    "server_seconds": _NUMBER,
    "server_hours": _NUMBER,
    "since": nullable(_TIME),
}

_INVITATION = _object(
    {
        "id": _STRING,
        "role": _ROLE,
        "email": nullable(_STRING),
        "state": {"type": "string", "enum": ["pending", "used", "revoked", "expired"]},
        "created_by": _STRING,
        "created": _TIME,
        "expires": _TIME,
        "used_by": nullable(_STRING),
        "used_at": nullable(_TIME),
        "revoked_at": nullable(_TIME),
    }
)

_SETTINGS = {
    "name": _STRING,
    "default_role": _ROLE,
    "mem_limit": nullable({"type": "integer", "minimum": MIN_MEM}),
    "cpu_limit": nullable({"type": "number", "exclusiveMinimum": True, "minimum": 0}),
    "idle_timeout": nullable(_COUNT),
}

_JOB = _object(
    {
        "id": _STRING,
        "kind": _STRING,
        "state": {
            "type": "string",
            "enum": ["queued", "running", "succeeded", "failed", "cancelled"],
        },
        "progress": {"type": "number", "minimum": 0, "maximum": 1},
        "error": nullable(_STRING),
        "dataset": nullable(_STRING),
        "created_by": _STRING,
        "created": _TIME,
        "started": nullable(_TIME),
        "finished": nullable(_TIME),
        "result": nullable(_JSON_OBJECT),
    }
)

_VERSION = _object(
    {
        "version": _COUNT,
        "current": {"type": "boolean"},
        "rows": _COUNT,
        "columns": _COUNT,
        "bytes": _COUNT,
        "created": _TIME,
        "created_by": _STRING,
        "source": nullable(_STRING),
        "parent_version": nullable(_COUNT),
        "lineage": nullable(_JSON_OBJECT),
        "report": nullable(_JSON_OBJECT),
    }
)

_COLUMN = _object(
    {
        "name": _STRING,
        "label": nullable(_STRING),
        "type": nullable({"type": "string", "enum": list(TYPES)}),
        "nullable": nullable({"type": "boolean"}),
        "unit": nullable(_STRING),
        "stats": nullable(_JSON_OBJECT),
    }
)

_AUDIT_EVENT = _object(
    {
        "id": _COUNT,
        "time": _TIME,
        "user": _STRING,
        "action": _STRING,
        "target": nullable(_STRING),
        "outcome": _STRING,
        "status": nullable({"type": "integer"}),
        "client": nullable(_STRING),
        "details": _JSON_OBJECT,
    }
)

_KIND = {"type": "string", "enum": list(DASHBOARD_KINDS)}
_PINS = {
    "type": "object",
    "additionalProperties": nullable({"type": "integer", "minimum": 1}),
    "description": "dataset name -> pinned version, or null to follow the latest",
}
_FILE = _object({"path": _STRING, "bytes": _COUNT})
_DASHBOARD = _object(
    {
        "slug": DASHBOARD_SLUG.json_schema(),
        "title": _STRING,
        "description": _STRING,
        "kind": _KIND,
        "publisher": {**_STRING, "description": "who may roll back and unpublish it"},
        "version": _COUNT,
        "published_by": {**_STRING, "description": "who published the current version"},
        "created": _TIME,
        "updated": _TIME,
        "notebook": _STRING,
        "pins": _PINS,
        "url": {**_STRING, "description": "the stable address of the dashboard"},
        "thumbnail": {**_STRING, "description": "the gallery picture's address"},
    }
)
_DASHBOARD_VERSION = _object(
    {
        "version": _COUNT,
        "current": {"type": "boolean"},
        "kind": _KIND,
        "title": _STRING,
        "notebook": _STRING,
        "files": {"type": "array", "items": _FILE},
        "pins": _PINS,
        "bytes": _COUNT,
        "publisher": _STRING,
        "created": _TIME,
    }
)

#: the answers' models, by component name
MODELS: dict[str, dict[str, Any]] = {
    "Error": ERROR,
    "Health": {
        **_object(
            {"status": {"type": "string", "enum": ["ok", "degraded"]}},
            # hub administrators only
            {"catalog": _CHECK, "storage": _CHECK, "compute": _CHECK},
        ),
        "description": "the state; hub administrators also get each check",
    },
    "Organization": _ORG,
    "Membership": {
        "allOf": [
            ref("Organization"),
            _object({"role": _ROLE, "permissions": _PERMISSIONS}),
        ]
    },
    "Me": _object(
        {
            "name": _STRING,
            "kind": {"type": "string", "enum": ["user", "service"]},
            "hub_admin": {"type": "boolean"},
            "organizations": {"type": "array", "items": ref("Membership")},
        }
    ),
    "Limits": {**_LIMITS, "description": "the plan's limits; null is unlimited"},
    "OrganizationInfo": {
        "allOf": [
            ref("Organization"),
            _object(
                {
                    # a hub administrator who is no member has no role
                    "role": nullable(_ROLE),
                    "permissions": _PERMISSIONS,
                    "usage": _object(_USAGE_LEVELS),
                    "limits": ref("Limits"),
                }
            ),
        ]
    },
    "PlanChange": {
        "allOf": [
            ref("Organization"),
            _object({"previous_plan": _STRING, "limits": ref("Limits")}),
        ]
    },
    "Usage": _object(
        {
            "plan": _STRING,
            "limits": ref("Limits"),
            **_USAGE_LEVELS,
            "records": {
                "type": "array",
                "items": _object(
                    {
                        "metric": {"type": "string", "enum": list(METRICS)},
                        "amount": _NUMBER,
                        "user": nullable(_STRING),
                        "details": nullable(_JSON_OBJECT),
                        "time": _TIME,
                    }
                ),
            },
        }
    ),
    "Settings": _object(_SETTINGS),
    "ServerPolicy": _object(
        {
            "org": ORG_SLUG.json_schema(),
            "role": nullable(_ROLE),
            **{k: v for k, v in _SETTINGS.items() if k not in ("name", "default_role")},
            "running": _COUNT,
        }
    ),
    "Member": _object({"name": _STRING, "role": _ROLE, "since": _TIME}),
    "Members": _object({"members": {"type": "array", "items": ref("Member")}}),
    "Invitation": _INVITATION,
    "Invitations": _object({"invitations": {"type": "array", "items": ref("Invitation")}}),
    "NewInvitation": {
        "allOf": [
            ref("Invitation"),
            _object(
                {
                    "code": _STRING,
                    "link": _STRING,
                    "accept_url": _STRING,
                    "emailed": {"type": "boolean"},
                },
                {"email_error": {**_STRING, "description": "why the e-mail was not sent"}},
            ),
        ],
        "description": "the invitation with its code, shown this once",
    },
    "InvitationLookup": {
        "allOf": [ref("Invitation"), _object({"organization": ref("Organization")})],
        "description": "what an invitation admits to",
    },
    "Joined": _object(
        {"organization": ORG_SLUG.json_schema(), "role": _ROLE, "invitation": _STRING}
    ),
    "Datasets": _object(
        {
            "datasets": {
                "type": "array",
                "items": _object(
                    {
                        "name": DATASET_NAME.json_schema(),
                        "version": _COUNT,
                        "rows": _COUNT,
                        "columns": _COUNT,
                        "bytes": _COUNT,
                        "updated": _TIME,
                        "created_by": _STRING,
                    }
                ),
            }
        }
    ),
    "Version": _VERSION,
    "Versions": _object({"versions": {"type": "array", "items": ref("Version")}}),
    "Dataset": _object(
        {
            "name": DATASET_NAME.json_schema(),
            "version": _COUNT,
            "rows": _COUNT,
            "bytes": _COUNT,
            "columns": {"type": "array", "items": _COLUMN},
            "report": nullable(_JSON_OBJECT),
            "created": _TIME,
            "updated": _TIME,
            "versions": {"type": "array", "items": ref("Version")},
        }
    ),
    "Rows": _object(
        {
            "dataset": DATASET_NAME.json_schema(),
            "version": _COUNT,
            "total_rows": _COUNT,
            "offset": _COUNT,
            "limit": _COUNT,
            "columns": {"type": "array", "items": _STRING},
            "rows": {"type": "array", "items": _JSON_OBJECT},
        }
    ),
    "Aggregate": _object(
        {
            "dataset": DATASET_NAME.json_schema(),
            "version": _COUNT,
            "columns": {
                "type": "array",
                "items": _object({"name": _STRING, "type": nullable(_STRING)}),
            },
            "rows": {"type": "array", "items": _JSON_OBJECT},
        }
    ),
    "Insights": _object(
        {
            "dataset": DATASET_NAME.json_schema(),
            "version": _COUNT,
            "rows": _COUNT,
            "cached": {"type": "boolean"},
            "insights": {
                "type": "array",
                "items": {**_JSON_OBJECT, "description": "score, sentence, numbers, chart"},
            },
        },
        {"summary": {**_JSON_OBJECT, "description": "with ?summary=true: the narrator's"}},
    ),
    "Chart": _object(
        {
            "dataset": DATASET_NAME.json_schema(),
            "version": _COUNT,
            "chart": {**_JSON_OBJECT, "description": "type, title, axes, series, palette"},
            "recommendation": nullable(_JSON_OBJECT),
        }
    ),
    "Job": _JOB,
    "Upload": _object(
        {"job": ref("Job"), "dataset": DATASET_NAME.json_schema()},
        {
            "datasets": {
                "type": "object",
                "additionalProperties": DATASET_NAME.json_schema(),
                "description": 'with options.sheet "*": each sheet\'s dataset',
            }
        },
    ),
    "Dashboards": _object({"dashboards": {"type": "array", "items": _DASHBOARD}}),
    "Dashboard": {
        "allOf": [
            _DASHBOARD,
            _object(
                {
                    "files": {"type": "array", "items": _FILE},
                    "versions": {"type": "array", "items": _DASHBOARD_VERSION},
                    "datasets": {
                        "type": "array",
                        "items": _object(
                            {
                                "name": DATASET_NAME.json_schema(),
                                "pinned": nullable(_COUNT),
                                "follows": {"type": "string", "enum": ["pinned", "latest"]},
                                "version": nullable(_COUNT),
                            }
                        ),
                        "description": "the version of each pinned dataset it shows",
                    },
                }
            ),
        ]
    },
    "DashboardVersions": _object({"versions": {"type": "array", "items": _DASHBOARD_VERSION}}),
    "AuditEvents": _object(
        {
            "events": {"type": "array", "items": _AUDIT_EVENT},
            "limit": nullable(_COUNT),
            "offset": _COUNT,
        }
    ),
}

# ---- request bodies ---------------------------------------------------------------------

ORG_NAME_SCHEMA = ORG_NAME.json_schema()

NEW_ORG = _object({"slug": ORG_SLUG.json_schema()}, {"name": nullable(ORG_NAME_SCHEMA)})

NEW_INVITATION = _object(
    {},
    {
        "role": {**nullable(_ROLE), "description": "default: the organization's default_role"},
        "email": nullable({"type": "string", "maxLength": 255, "pattern": EMAIL_PATTERN}),
        "expires_in": nullable(
            {
                "type": "integer",
                "minimum": MIN_EXPIRES_IN,
                "maximum": MAX_EXPIRES_IN,
                "description": "seconds; default 7 days",
            }
        ),
    },
)

SETTINGS_CHANGE = {
    **_object(
        {},
        {
            "name": ORG_NAME_SCHEMA,
            "default_role": _ROLE,
            "mem_limit": nullable(
                {
                    "oneOf": [
                        {"type": "integer", "minimum": MIN_MEM},
                        {"type": "string", "pattern": MEM_LIMIT_PATTERN},
                    ],
                    "description": f"bytes, or a size like '2G'; at least {MIN_MEM} (64M)",
                }
            ),
            "cpu_limit": nullable(
                {"type": "number", "exclusiveMinimum": True, "minimum": 0, "maximum": MAX_CPU}
            ),
            "idle_timeout": nullable({"type": "integer", "minimum": MIN_IDLE, "maximum": MAX_IDLE}),
        },
    ),
    "additionalProperties": False,
    "description": "the settings to change; null resets a limit",
}

MEMBER_ROLE = _object({"role": _ROLE})

# a chart, as parse_chart_request takes it; the columns are checked against the dataset
_COLUMN_REF = nullable({"type": "string", "minLength": 1})
CHART_REQUEST = {
    **_object(
        {"dataset": DATASET_NAME.json_schema()},
        {
            "version": nullable({"type": "integer", "minimum": 1}),
            "chart_type": nullable({"type": "string", "enum": list(CHART_TYPES)}),
            "x": _COLUMN_REF,
            "y": _COLUMN_REF,
            "group": _COLUMN_REF,
            "columns": {
                "type": "array",
                "items": {"type": "string", "minLength": 1},
                "maxItems": 3,
                "description": "columns whose roles the recommendation picks (not with x, y)",
            },
            "aggregation": nullable({"type": "string", "enum": list(CHART_AGGREGATIONS)}),
            "time_bucket": nullable({"type": "string", "enum": list(CHART_UNITS)}),
            "filter": nullable({**_STRING, "description": "an expression, as in aggregations"}),
            "limit": nullable({"type": "integer", "minimum": 1, "maximum": MAX_BARS}),
            "bins": nullable({"type": "integer", "minimum": 2, "maximum": MAX_BINS}),
            "title": nullable({"type": "string", "maxLength": 200}),
        },
    ),
    "additionalProperties": False,
}

# an aggregation: the shapes parse_aggregation takes (a single name, function or sort key
# may stand for a list of one); what depends on the dataset (its columns, an expression's
# meaning) is a 400 the schema cannot foresee
_FUNCTION = {
    "anyOf": [
        {"type": "string", "enum": list(FUNCTIONS)},
        {
            "type": "string",
            "pattern": "^p[0-9]{1,2}(_[0-9]{1,3})?$",
            "description": "a percentile: p90, p99_9",
        },
        {
            "type": "object",
            "required": ["percentile"],
            "additionalProperties": False,
            "properties": {
                "percentile": {
                    "type": "number",
                    "minimum": 0,
                    "exclusiveMinimum": True,
                    "maximum": 1,
                    "exclusiveMaximum": True,
                }
            },
        },
    ]
}
_COLUMN_NAME = {"type": "string", "minLength": 1}
_SORT_KEY = {
    "anyOf": [
        {"type": "string", "pattern": "[^-]", "description": "a column; -column descending"},
        {
            "type": "object",
            "required": ["column"],
            "additionalProperties": False,
            "properties": {"column": _STRING, "desc": {"type": "boolean"}},
        },
    ]
}


def _one_or_list(item: dict[str, Any], **bounds: Any) -> dict[str, Any]:
    return {"anyOf": [item, {"type": "array", "items": item, **bounds}]}


AGGREGATION = {
    **_object(
        {
            "metrics": {
                "type": "object",
                "minProperties": 1,
                "description": 'column (or "*" for rows) -> functions',
                "additionalProperties": _one_or_list(_FUNCTION, minItems=1),
            }
        },
        {
            "group_by": nullable(
                _one_or_list(_COLUMN_NAME, maxItems=MAX_GROUP_BY, uniqueItems=True)
            ),
            "time_bucket": nullable(
                {
                    "type": "object",
                    "required": ["column", "unit"],
                    "additionalProperties": False,
                    "properties": {
                        "column": _COLUMN_NAME,
                        "unit": {"type": "string", "enum": list(UNITS)},
                    },
                }
            ),
            "derive": nullable(
                {
                    "type": "object",
                    "maxProperties": MAX_DERIVED,
                    "description": "new columns: name -> expression",
                    "additionalProperties": _STRING,
                }
            ),
            "filter": nullable({**_STRING, "description": "an expression: day >= '2025-03-01'"}),
            "sort": nullable(_one_or_list(_SORT_KEY)),
            "limit": nullable({"type": "integer", "minimum": 1, "maximum": MAX_ROWS}),
            "other": {"type": "boolean", "description": "the groups past the limit as one more"},
            "version": nullable({"type": "integer", "minimum": 1}),
        },
    ),
    "additionalProperties": False,
}

ROLLBACK = _object({"version": {"type": "integer"}})

_SNAPSHOT_PATH = {
    "type": "string",
    "minLength": 1,
    "maxLength": MAX_PATH_LENGTH,
    "description": "relative, '/'-separated, no '.', '..' or hidden parts",
}
PUBLISH = {
    **_object(
        {
            "notebook": {
                **_JSON_OBJECT,
                "description": "the notebook, nbformat 4 JSON (checked against its schema)",
            },
            "kind": _KIND,
            "title": DASHBOARD_TITLE.json_schema(),
            "slug": DASHBOARD_SLUG.json_schema(),
        },
        {
            "path": {
                **_SNAPSHOT_PATH,
                "pattern": "\\.ipynb$",
                "description": "where the notebook is in the workspace; its file name names it",
            },
            "description": DASHBOARD_DESCRIPTION.json_schema(),
            "files": {
                "type": "array",
                "maxItems": MAX_SNAPSHOT_FILES,
                "items": {
                    **_object(
                        {
                            "path": _SNAPSHOT_PATH,
                            "content": {"type": "string", "description": "base64"},
                        }
                    ),
                    "additionalProperties": False,
                },
                "description": "files the notebook reads, relative to its folder",
            },
            "pins": _PINS,
        },
    ),
    "additionalProperties": False,
}

UPLOAD_OPTIONS = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "sheet": {"oneOf": [_STRING, {"type": "integer"}], "description": 'name, index, or "*"'},
        "header": {"type": "boolean"},
        "delimiter": nullable(
            {"type": "string", "maxLength": 1, "pattern": '^[^"\\r\\n]*$'},
        ),
        "encoding": nullable({"type": "string", "description": "a text encoding Python knows"}),
        "decimal": {"type": "string", "enum": [".", ","]},
        "thousands": nullable({"type": "string", "enum": [",", ".", " ", "'", ""]}),
        "dayfirst": {"type": "boolean"},
        "types": {
            "type": "object",
            "additionalProperties": {"type": "string", "enum": list(TYPES)},
        },
        "dedupe": {"type": "boolean"},
        "allow_schema_change": {"type": "boolean"},
        "tolerance": {"type": "number", "minimum": 0.5, "maximum": 1},
    },
}
assert set(UPLOAD_OPTIONS["properties"]) == set(OPTION_KEYS)

UPLOAD = {
    "type": "object",
    "required": ["file", "name"],
    "properties": {
        "file": {"type": "string", "format": "binary"},
        "name": DATASET_NAME.json_schema(),
        "mode": {"type": "string", "enum": list(MODES), "description": "default: create"},
        "options": UPLOAD_OPTIONS,
    },
}
