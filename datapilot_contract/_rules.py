"""Name rules, upload modes and error codes; standard library only."""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote

from ._runtime import RUNTIME_USER_PREFIX

#: The machine code of an error answer that has no more precise one, by HTTP status. The
#: data service and the server extension both fall back to it.
ERROR_CODES: dict[int, str] = {
    400: "invalid_input",
    401: "not_authenticated",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "too_large",
    415: "unsupported_media_type",
    422: "unprocessable",
    429: "rate_limited",
    500: "internal_error",
}

#: The code of a refused organization slug, dataset name or user name (``details.field``
#: says which).
INVALID_NAME = "invalid_name"
#: The code of a refused upload mode.
INVALID_MODE = "invalid_mode"

#: How an upload becomes a dataset version: ``create`` (refused if the dataset exists),
#: ``replace`` (a new version of these rows only) or ``append`` (the old rows and these).
MODES: tuple[str, ...] = ("create", "replace", "append")
#: How a transformation writes its output: a new dataset, or a new version of one.
OUTPUT_MODES: tuple[str, ...] = ("create", "replace")

# JupyterHub keeps user names in a 255-character column
USER_NAME_MAX_LENGTH = 255
#: How the data service names a JupyterHub service that calls it (``service:<name>``); no
#: user name starts so.
SERVICE_PREFIX = "service:"

# control, format (zero-width, bidi overrides), surrogate, private-use and unassigned
# characters, and the line and paragraph separators: invisible or ambiguous in a name
_INVISIBLE = frozenset({"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"})


class ContractError(ValueError):
    """A value the contract refuses; each part turns it into its own 400.

    Parameters
    ----------
    field : str
        The field, path parameter or argument that was wrong (``"org"``, ``"name"``...).
    code : str
        The machine code, :data:`INVALID_NAME` or :data:`INVALID_MODE`.
    message : str
        A sentence for a person, quoting the value and the rule.
    """

    def __init__(self, field: str, code: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.code = code
        self.message = message


def _shown(value: Any) -> str:
    """The value as a message quotes it: repr (so newlines show), cut when long."""
    if isinstance(value, str) and len(value) > 64:
        return repr(value[:60]) + "..."
    return repr(value)


@dataclass(frozen=True)
class NameRule:
    """A name that one regular expression describes, full-matched.

    Parameters
    ----------
    kind : str
        What it names, for messages (``"organization slug"``).
    pattern : str
        The regular expression the whole value must match (without anchors).
    min_length, max_length : int
        Bounds of the length, checked besides the pattern.
    rule : str
        The rule in words, for messages.
    """

    kind: str
    pattern: str
    min_length: int
    max_length: int
    rule: str

    def matches(self, value: Any) -> bool:
        """Whether ``value`` is a string that follows the rule.

        Parameters
        ----------
        value : Any
            What a caller sent.
        """
        return (
            isinstance(value, str)
            and self.min_length <= len(value) <= self.max_length
            and re.fullmatch(self.pattern, value) is not None
        )

    def check(self, value: Any, field: str) -> str:
        """Return ``value`` when it follows the rule, else raise :class:`ContractError`.

        Parameters
        ----------
        value : Any
            What a caller sent.
        field : str
            Where it was sent, for the error.
        """
        if not self.matches(value):
            raise ContractError(
                field, INVALID_NAME, f"{_shown(value)} is not a valid {self.kind}: {self.rule}."
            )
        return value  # type: ignore[no-any-return]

    def json_schema(self) -> dict[str, Any]:
        """The rule as a JSON Schema (OpenAPI) string schema.

        JSON Schema patterns are ECMA-262 searches, so the pattern is anchored; in ECMA-262
        ``$`` (without the multiline flag) matches only at the very end, never before a
        trailing newline.
        """
        return {
            "type": "string",
            "pattern": f"^{self.pattern}$",
            "minLength": self.min_length,
            "maxLength": self.max_length,
            "description": f"{self.kind}: {self.rule}",
        }


#: An organization slug names a JupyterHub named server (1 to 30 lowercase letters, digits
#: and single inner hyphens there); we ask for at least two characters.
ORG_SLUG = NameRule(
    kind="organization slug",
    pattern=r"[a-z0-9]+(?:-[a-z0-9]+)*",
    min_length=2,
    max_length=30,
    rule="2 to 30 lowercase letters, digits and single inner hyphens",
)

#: A dataset name is a Python identifier in lower snake case, so ``dp.load("sales")`` reads
#: like the storage path ``datasets/sales/``.
DATASET_NAME = NameRule(
    kind="dataset name",
    pattern=r"[a-z][a-z0-9_]*",
    min_length=1,
    max_length=63,
    rule="a lowercase letter, then up to 62 lowercase letters, digits or underscores"
    " (like 'sales_2024')",
)


# the characters Python's str.strip() removes that are not control characters (which no
# display name may hold at all): a name of only these is empty
_SPACES = r" \xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000"
_CONTROL = r"\x00-\x1f\x7f-\x9f"

#: An organization's display name: any script, but not empty once stripped, and no control
#: characters (the catalog of PostgreSQL holds no NUL, and no page should show a bell).
#: The pattern has escapes only (\xNN, \uNNNN), which Python, ECMA-262 and Rust read alike.
ORG_NAME = NameRule(
    kind="organization name",
    pattern=rf"[^{_CONTROL}]*[^{_CONTROL}{_SPACES}][^{_CONTROL}]*",
    min_length=1,
    max_length=200,
    rule="1 to 200 characters, not only spaces, no control characters",
)


def is_org_slug(value: Any) -> bool:
    """Whether ``value`` is a valid organization slug (:data:`ORG_SLUG`).

    Parameters
    ----------
    value : Any
        A candidate slug.
    """
    return ORG_SLUG.matches(value)


def is_dataset_name(value: Any) -> bool:
    """Whether ``value`` is a valid dataset name (:data:`DATASET_NAME`).

    Parameters
    ----------
    value : Any
        A candidate name.
    """
    return DATASET_NAME.matches(value)


def check_org_slug(value: Any, field: str = "org") -> str:
    """Return ``value`` if it is a valid organization slug, else raise :class:`ContractError`.

    Parameters
    ----------
    value : Any
        A candidate slug.
    field : str
        Where it came from, for the error (``"org"``, ``"slug"``).
    """
    return ORG_SLUG.check(value, field)


def check_dataset_name(value: Any, field: str = "name") -> str:
    """Return ``value`` if it is a valid dataset name, else raise :class:`ContractError`.

    Parameters
    ----------
    value : Any
        A candidate name.
    field : str
        Where it came from, for the error.
    """
    return DATASET_NAME.check(value, field)


def _user_name_problem(value: Any) -> str | None:
    """What is wrong with a user name, as the end of "it ...", or None."""
    if not isinstance(value, str) or not value:
        return "must be a non-empty string"
    if len(value) > USER_NAME_MAX_LENGTH:
        return f"is longer than {USER_NAME_MAX_LENGTH} characters"
    if "/" in value:
        return "contains '/'"
    if value != value.strip():
        return "starts or ends with whitespace"
    if any(unicodedata.category(c) in _INVISIBLE for c in value):
        return "contains a control or invisible character"
    if set(value) <= {"."} or set(unquote(value)) <= {"."}:
        return "is only dots"
    if value.startswith(SERVICE_PREFIX):
        # the data service names JupyterHub services so in memberships and the audit log:
        # a user of that name would be taken for the service, and the other way round
        return f"starts with {SERVICE_PREFIX!r}, which names JupyterHub services"
    if value.startswith(RUNTIME_USER_PREFIX) or value == RUNTIME_USER_PREFIX.rstrip("-"):
        # the hub users that serve organizations' dashboards (datapilot_contract._dashboards)
        # (and "dashboards" alone, whose server "<org>-dashboards" would share an OAuth
        # client name with the dashboard server of <org>)
        return f"is or starts with {RUNTIME_USER_PREFIX!r}, which names dashboard servers"
    if value != value.lower():
        # JupyterHub lowercases the name of every login: an upper-case member could never
        # be the user who logs in, and the hub's group API would lowercase it
        return "has upper-case letters (user names are lowercase)"
    if unicodedata.normalize("NFKC", value) != value:
        return "is not in Unicode normal form NFKC (full-width or other look-alike letters)"
    return None


def is_user_name(value: Any) -> bool:
    """Whether ``value`` is a user name Datapilot accepts (see :func:`check_user_name`).

    Parameters
    ----------
    value : Any
        A candidate user name.
    """
    return _user_name_problem(value) is None


def check_user_name(value: Any, field: str = "user") -> str:
    """Return ``value`` if it is a user name Datapilot accepts, else raise :class:`ContractError`.

    The rule is JupyterHub's own (not empty, no ``/``, no surrounding whitespace, not only
    dots, lowercase as its logins are) plus: at most 255 characters, no control or
    invisible characters, Unicode normal form NFKC, so ``"ａlice"`` (full-width) is not a
    second ``"alice"``, and not starting with ``service:`` (:data:`SERVICE_PREFIX`).
    Letters of any script are accepted; the hub's authenticator may refuse more (password
    accounts refuse spaces and commas), and the data service answers that refusal with a
    400 too.

    Parameters
    ----------
    value : Any
        A candidate user name.
    field : str
        Where it came from, for the error.
    """
    problem = _user_name_problem(value)
    if problem is not None:
        message = f"{_shown(value)} is not a valid user name: it {problem}."
        raise ContractError(field, INVALID_NAME, message)
    return value  # type: ignore[no-any-return]


def user_name_json_schema() -> dict[str, Any]:
    """The user-name rule as far as a JSON Schema can say it (ASCII part of each check).

    The service also refuses non-ASCII upper-case letters, invisible characters, names of
    dots only, names outside NFKC and the ``service:`` prefix, which this pattern leaves
    out to stay simple.
    """
    edge = r"[^/\sA-Z\x00-\x1f\x7f]"
    return {
        "type": "string",
        "pattern": rf"^{edge}(?:[^/A-Z\x00-\x1f\x7f]*{edge})?$",
        "minLength": 1,
        "maxLength": USER_NAME_MAX_LENGTH,
        "description": "user name: no '/', no surrounding whitespace, no control or invisible"
        " characters, lowercase, Unicode NFKC, not only dots, not starting with 'service:', at"
        " most 255 characters",
    }


def check_output_mode(value: Any, field: str = "output.mode") -> str:
    """Return ``value`` if it is a transformation's output mode (:data:`OUTPUT_MODES`), else
    raise :class:`ContractError`.

    Parameters
    ----------
    value : Any
        A candidate mode.
    field : str
        Where it came from, for the error.
    """
    return _one_of(value, field, OUTPUT_MODES)


def check_mode(value: Any, field: str = "mode") -> str:
    """Return ``value`` if it is an upload mode (:data:`MODES`), else raise :class:`ContractError`.

    Parameters
    ----------
    value : Any
        A candidate mode.
    field : str
        Where it came from, for the error.
    """
    return _one_of(value, field, MODES, "mode")


def _one_of(value: Any, field: str, modes: tuple[str, ...], what: str | None = None) -> str:
    if not isinstance(value, str) or value not in modes:
        raise ContractError(
            field,
            INVALID_MODE,
            f"{what or field} must be one of {', '.join(modes)}, not {_shown(value)}.",
        )
    return value
