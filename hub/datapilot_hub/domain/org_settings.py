"""Organization settings: name, default invitation role, notebook server limits, culling.

Stored in ``organizations.settings`` (JSON); the name is the ``organizations.name``
column. The spawner reads the server limits through
``GET /orgs/{org}/server-policy``; the server watcher (:mod:`.servers`) applies the
idle culling time.
"""

from __future__ import annotations

import re
from typing import Any

from ..catalog import Catalog, Organization
from ..errors import DatapilotError, bad_request
from ..permissions import ROLES
from ._identity import OrgContext
from .orgs import org_model, validate_org_name

#: Settings and their values when an organization has not set them. ``None`` limits
#: mean the hub's defaults (no limit for local processes, the global culler timeout).
DEFAULTS: dict[str, Any] = {
    "default_role": "analyst",
    "mem_limit": None,
    "cpu_limit": None,
    "idle_timeout": None,
}

_UNITS = {"": 1, "K": 1024, "M": 1024**2, "G": 1024**3, "T": 1024**4}
#: a memory size: digits, a fraction, a unit K, M, G or T (any case, "i" and "B" may follow);
#: ASCII only, so that Python and the OpenAPI document's ECMA-262 readers see one rule
MEM_LIMIT_PATTERN = r"^[ \t]*([0-9]+(?:\.[0-9]+)?)[ \t]*([KMGTkmgt]?)[iI]?[bB]?[ \t]*$"
_BYTES_RE = re.compile(MEM_LIMIT_PATTERN)

MIN_MEM = 64 * 1024**2
MAX_CPU = 256
MIN_IDLE = 60
MAX_IDLE = 30 * 24 * 3600


def parse_bytes(value: Any, field: str = "mem_limit") -> int | None:
    """``"2G"``, ``"512M"``, ``1073741824`` -> bytes; ``None`` stays None; else 400."""
    if value is None:
        return None
    if isinstance(value, bool):
        raise bad_request(field, f"{field} must be bytes or a size like '2G'.")
    if isinstance(value, int):
        n = value
    elif isinstance(value, str) and (m := _BYTES_RE.fullmatch(value)):
        size = float(m.group(1)) * _UNITS[m.group(2).upper()]
        if size == float("inf"):
            raise bad_request(field, f"{field} is too large.")
        n = int(size)
    else:
        raise bad_request(field, f"{field} must be bytes or a size like '2G', not {value!r}.")
    if n < MIN_MEM:
        raise bad_request(field, f"{field} must be at least {MIN_MEM} bytes (64M).")
    return n


def validate_settings(body: dict[str, Any]) -> dict[str, Any]:
    """The changes of a PATCH body, validated (400 naming the field on bad input).

    Parameters
    ----------
    body : dict
        Any of ``name``, ``default_role``, ``mem_limit``, ``cpu_limit``,
        ``idle_timeout``; ``null`` resets a limit to the hub's default.
    """
    known = {"name", *DEFAULTS}
    unknown = sorted(set(body) - known)
    if unknown:
        raise bad_request(
            unknown[0], f"Unknown setting {unknown[0]!r}; settings are {', '.join(sorted(known))}."
        )
    changes: dict[str, Any] = {}
    if "name" in body:
        changes["name"] = validate_org_name(body["name"])
    if "default_role" in body:
        if body["default_role"] not in ROLES:
            raise bad_request("default_role", f"default_role must be one of {', '.join(ROLES)}.")
        changes["default_role"] = body["default_role"]
    if "mem_limit" in body:
        changes["mem_limit"] = parse_bytes(body["mem_limit"])
    if "cpu_limit" in body:
        cpu = body["cpu_limit"]
        if cpu is not None and (
            isinstance(cpu, bool) or not isinstance(cpu, (int, float)) or not 0 < cpu <= MAX_CPU
        ):
            raise bad_request("cpu_limit", f"cpu_limit must be a number of CPUs in (0, {MAX_CPU}].")
        changes["cpu_limit"] = None if cpu is None else float(cpu)
    if "idle_timeout" in body:
        idle = body["idle_timeout"]
        if idle is not None and (
            isinstance(idle, bool) or not isinstance(idle, int) or not MIN_IDLE <= idle <= MAX_IDLE
        ):
            raise bad_request(
                "idle_timeout",
                f"idle_timeout must be whole seconds between {MIN_IDLE} and {MAX_IDLE}, or null.",
            )
        changes["idle_timeout"] = idle
    return changes


def settings_of(org: Organization) -> dict[str, Any]:
    """The effective settings of an organization (defaults filled in)."""
    stored = org.settings or {}
    return {"name": org.name, **{k: stored.get(k, v) for k, v in DEFAULTS.items()}}


class OrgSettingsService:
    """Read and change an organization's settings and plan.

    Parameters
    ----------
    catalog : Catalog
        The catalog.
    plans : Plans
        The configured plans (for plan changes).
    """

    def __init__(self, catalog: Catalog, plans: Any) -> None:
        self.catalog = catalog
        self.plans = plans

    def get(self, ctx: OrgContext) -> dict[str, Any]:
        """The settings (any member may read them)."""
        with self.catalog.session(system=True) as db:
            return settings_of(db.get(Organization, ctx.org_id))

    def get_by_id(self, org_id: int) -> dict[str, Any]:
        """The settings of an organization by id (trusted callers)."""
        with self.catalog.session(system=True) as db:
            return settings_of(db.get(Organization, org_id))

    def update(self, ctx: OrgContext, body: dict[str, Any]) -> dict[str, Any]:
        """Change settings (``org:manage``); returns the effective settings."""
        ctx.require("org:manage")
        changes = validate_settings(body)
        with self.catalog.session(system=True) as db:
            org = db.get(Organization, ctx.org_id)
            stored = dict(org.settings or {})
            for key, value in changes.items():
                if key == "name":
                    org.name = value
                elif value is None:
                    stored.pop(key, None)
                else:
                    stored[key] = value
            org.settings = stored or None
            return settings_of(org)

    def set_plan(self, ctx: OrgContext, plan: Any) -> dict[str, Any]:
        """Change the organization's plan (hub administrators only)."""
        if not ctx.caller.hub_admin:
            raise DatapilotError(
                403,
                "forbidden",
                "Only hub administrators can change an organization's plan.",
                permission="hub admin",
            )
        plan = self.plans.validate_plan(plan)
        with self.catalog.session(system=True) as db:
            org = db.get(Organization, ctx.org_id)
            previous = org.plan
            org.plan = plan
            return {
                **org_model(org),
                "previous_plan": previous,
                "limits": self.plans.plans[plan],
            }
