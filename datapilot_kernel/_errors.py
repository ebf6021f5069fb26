"""The one exception the client raises, and how a finished job becomes one."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import httpx


class DatapilotError(Exception):
    """A call to the Datapilot service failed, or could not be made.

    ``str(error)`` is the service's ``message``, a sentence meant for a person.

    Parameters
    ----------
    message : str
        What went wrong.
    status : int, optional
        HTTP status of the service's answer; None when the error was raised before any
        request (configuration, validation) or by a failed job.
    code : str, optional
        Machine-readable code, the service's ``error`` field (``"not_found"``,
        ``"invalid_name"``...), or one of the client's own: ``"not_configured"``,
        ``"invalid_name"`` (a dataset name, or the organization slug: ``details["field"]``
        says which), ``"invalid_mode"``, ``"job_failed"``,
        ``"job_cancelled"``, ``"unreachable"`` (no answer at all), or ``"http_<status>"``
        when the answer was not a Datapilot error body.
    details : dict, optional
        The service's ``details`` (a field name, a limit...), or the client's.
    """

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        code: str | None = None,
        details: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.code = code
        self.details: dict[str, Any] = details or {}

    def _render_traceback_(self) -> list[str]:
        # IPython shows these lines instead of the traceback: one line, the service's
        # message, rather than forty lines of httpx and the client's internals
        from ._display import render_error

        return render_error(self, self.code, self.status)

    @classmethod
    def from_response(cls, response: httpx.Response) -> DatapilotError:
        """The error a failed response stands for.

        Parameters
        ----------
        response : httpx.Response
            An answer with a status of 300 or more whose body has been read. Datapilot
            bodies are ``{"error", "message", "details"}``; JupyterHub's own (a bad token
            caught by the hub) have ``message`` only; anything else (an HTML page from
            a proxy) gives a message built from the status.
        """
        status = response.status_code
        body: Any = None
        try:
            body = response.json()
        except ValueError:
            pass
        if not isinstance(body, dict):
            body = {}
        message = body.get("message")
        if not isinstance(message, str) or not message:
            message = f"The Datapilot service answered {status} {response.reason_phrase}".rstrip()
            try:
                message += f" to {response.request.method} {response.request.url}."
            except RuntimeError:  # a response built without its request
                message += "."
        code = body.get("error")
        details = body.get("details")
        return cls(
            message,
            status=status,
            code=code if isinstance(code, str) and code else f"http_{status}",
            details=details if isinstance(details, dict) else {},
        )


def raise_for_job(job: dict[str, Any]) -> None:
    """Raise :class:`DatapilotError` if a finished job did not succeed.

    Parameters
    ----------
    job : dict
        The service's job model, ``{"id", "state", "progress", "error", ...}``.
    """
    if job.get("state") == "failed":
        raise DatapilotError(
            job.get("error") or f"Job {job.get('id')} failed.",
            code="job_failed",
            details={"job": job},
        )
    if job.get("state") == "cancelled":
        raise DatapilotError(
            f"Job {job.get('id')} was cancelled.", code="job_cancelled", details={"job": job}
        )
