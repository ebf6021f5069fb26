"""The input contract every part of Datapilot checks against, in one place.

Organization slugs, dataset names, user names, upload modes, dashboard slugs, kinds,
snapshot paths and pins, and the error codes of their refusals are checked by the hub
side, the data service, the server extension and the kernel client alike: each imports
them from here, so a name one part accepts is never one another refuses. Standard library
only, so the kernel and the extension can import it without pulling in the hub's
dependencies.

Every name rule is a *full* match: ``"acme\\n"`` is not ``"acme"`` (``re.match`` with
``$`` would let the newline through).
"""

from ._dashboards import (
    DASHBOARD_DESCRIPTION,
    DASHBOARD_ENV,
    DASHBOARD_KINDS,
    DASHBOARD_PINS_ENV,
    DASHBOARD_SLUG,
    DASHBOARD_TITLE,
    INVALID_KIND,
    INVALID_PATH,
    INVALID_PINS,
    MAX_PATH_LENGTH,
    MAX_SNAPSHOT_FILES,
    check_dashboard_kind,
    check_dashboard_slug,
    check_pins,
    check_snapshot_path,
    is_dashboard_slug,
    pins_from_environ,
    referenced_paths,
)
from ._publication import DEFAULT_MAX_PUBLISH_BYTES, publication_body, slug_from_path
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
from ._runtime import (
    RUNTIME_SERVER,
    RUNTIME_USER_PREFIX,
    VIEWER_TOKEN_HEADER,
    VIEWER_TOKEN_PREFIX,
    is_runtime_client,
    runtime_org,
    runtime_user,
)

__all__ = [
    "DEFAULT_MAX_PUBLISH_BYTES",
    "DASHBOARD_DESCRIPTION",
    "DASHBOARD_ENV",
    "DASHBOARD_KINDS",
    "DASHBOARD_PINS_ENV",
    "DASHBOARD_SLUG",
    "DASHBOARD_TITLE",
    "DATASET_NAME",
    "ERROR_CODES",
    "INVALID_KIND",
    "INVALID_MODE",
    "INVALID_NAME",
    "INVALID_PATH",
    "INVALID_PINS",
    "MAX_PATH_LENGTH",
    "MAX_SNAPSHOT_FILES",
    "MODES",
    "RUNTIME_SERVER",
    "RUNTIME_USER_PREFIX",
    "VIEWER_TOKEN_HEADER",
    "VIEWER_TOKEN_PREFIX",
    "ORG_NAME",
    "ORG_SLUG",
    "SERVICE_PREFIX",
    "USER_NAME_MAX_LENGTH",
    "ContractError",
    "NameRule",
    "check_dashboard_kind",
    "check_dashboard_slug",
    "check_dataset_name",
    "check_mode",
    "check_org_slug",
    "check_pins",
    "check_snapshot_path",
    "check_user_name",
    "is_dashboard_slug",
    "is_dataset_name",
    "is_org_slug",
    "is_runtime_client",
    "is_user_name",
    "pins_from_environ",
    "publication_body",
    "referenced_paths",
    "runtime_org",
    "runtime_user",
    "slug_from_path",
    "user_name_json_schema",
]
