"""The one exception the domain layer raises; handlers turn it into a JSON error."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from tornado.web import HTTPError

from datapilot_contract import ContractError


class DatapilotError(HTTPError):
    """A failure a caller can act on, with its HTTP status and machine-readable code.

    Parameters
    ----------
    status : int
        HTTP status the API answers with (400, 403, 404, 409, 413, 415, 422...).
    code : str
        Machine code, e.g. ``"invalid_name"``, ``"not_found"``.
    message : str
        A sentence for a person.
    **details
        Anything that helps the caller fix the problem (a field name, a limit).
    """

    def __init__(self, status: int, code: str, message: str, **details: Any) -> None:
        # an HTTPError, so that tornado answers with its status wherever it is raised
        super().__init__(status, message.replace("%", "%%"))
        self.status = status
        self.code = code
        self.message = message
        self.details = details

    def to_json(self) -> dict[str, Any]:
        """The error body of the API contract."""
        return {"error": self.code, "message": self.message, "details": self.details}


def not_found(kind: str, name: str) -> DatapilotError:
    """A 404 that says the same for missing objects and other organizations' objects."""
    return DatapilotError(
        404, "not_found", f"No {kind} named {name!r} is visible to you.", **{kind: name}
    )


def bad_request(field: str, message: str, code: str = "invalid_input") -> DatapilotError:
    """A 400 naming the field that was wrong."""
    return DatapilotError(400, code, message, field=field)


def checked(check: Callable[[Any, str], str], value: Any, field: str) -> str:
    """Run one of :mod:`datapilot_contract`'s checks; its refusal becomes a 400.

    Parameters
    ----------
    check : callable
        ``check_org_slug``, ``check_dataset_name``, ``check_user_name`` or ``check_mode``.
    value : Any
        What the caller sent.
    field : str
        The field or path parameter, for the error's details.
    """
    try:
        return check(value, field)
    except ContractError as e:
        raise DatapilotError(400, e.code, e.message, field=e.field) from None
