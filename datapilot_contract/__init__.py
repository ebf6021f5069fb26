"""The input contract every part of Datapilot checks against, in one place.

Organization slugs, dataset names, user names, upload modes and the error codes of their
refusals are checked by the hub side, the data service, the server extension and the
kernel client alike: each imports them from here, so a name one part accepts is never one
another refuses. Standard library only, so the kernel and the extension can import it
without pulling in the hub's dependencies.

Every name rule is a *full* match: ``"acme\\n"`` is not ``"acme"`` (``re.match`` with
``$`` would let the newline through).
"""

from ._dashboards import (
    DASHBOARD_ENV,
    DASHBOARD_PINS_ENV,
    RUNTIME_SERVER,
    RUNTIME_USER_PREFIX,
    VIEWER_TOKEN_HEADER,
    VIEWER_TOKEN_PREFIX,
    runtime_org,
    runtime_user,
)
from ._rules import (
    DATASET_NAME,
    ERROR_CODES,
    INVALID_MODE,
    INVALID_NAME,
    MODES,
    ORG_NAME,
    ORG_SLUG,
    SERVICE_PREFIX,
    USER_NAME_MAX_LENGTH,
    ContractError,
    NameRule,
    check_dataset_name,
    check_mode,
    check_org_slug,
    check_user_name,
    is_dataset_name,
    is_org_slug,
    is_user_name,
    user_name_json_schema,
)

__all__ = [
    "DASHBOARD_ENV",
    "DASHBOARD_PINS_ENV",
    "RUNTIME_SERVER",
    "RUNTIME_USER_PREFIX",
    "VIEWER_TOKEN_HEADER",
    "VIEWER_TOKEN_PREFIX",
    "runtime_org",
    "runtime_user",
    "DATASET_NAME",
    "ERROR_CODES",
    "INVALID_MODE",
    "INVALID_NAME",
    "MODES",
    "ORG_NAME",
    "ORG_SLUG",
    "SERVICE_PREFIX",
    "USER_NAME_MAX_LENGTH",
    "ContractError",
    "NameRule",
    "check_dataset_name",
    "check_mode",
    "check_org_slug",
    "check_user_name",
    "is_dataset_name",
    "is_org_slug",
    "is_user_name",
    "user_name_json_schema",
]
