"""Jobs: state, progress events over a WebSocket, cancellation."""

from __future__ import annotations

import json
import logging
from typing import Any

from tornado.websocket import WebSocketClosedError, WebSocketHandler

from ...catalog import Job
from ...domain._identity import Caller, org_context
from ...errors import DatapilotError, bad_request
from .._auth import ServiceAuthenticated
from .base import APIHandler, JSONErrors
from .orgs import ORG

log = logging.getLogger(__name__)

JOB = r"(?P<job_id>[0-9a-f]{32}|[^/]+)"


MAX_JOBS_LISTED = 100


class JobsAPIHandler(APIHandler):
    """GET /orgs/{org}/jobs (members): the organization's jobs, newest first.

    ``?state=active`` keeps those that have not ended (``all``, the default, keeps every
    one); ``?limit=`` is 1 to 100, default 20.
    """

    def get(self, org: str) -> None:
        ctx = self.org(org)
        state = self.query("state", "all")
        if state not in ("all", "active"):
            raise bad_request("state", "state must be all or active.")
        raw = self.query("limit", "20") or ""
        if not (raw.isascii() and raw.isdigit()) or not 1 <= int(raw) <= MAX_JOBS_LISTED:
            raise bad_request("limit", f"limit must be a whole number from 1 to {MAX_JOBS_LISTED}.")
        jobs = self.app.jobs.recent(ctx, active=state == "active", limit=int(raw))
        self.write_json({"jobs": jobs})


class JobAPIHandler(APIHandler):
    """GET /orgs/{org}/jobs/{id} (members)."""

    def get(self, org: str, job_id: str) -> None:
        self.write_json(self.app.jobs.get(self.org(org), job_id))


class JobCancelAPIHandler(APIHandler):
    """POST /orgs/{org}/jobs/{id}/cancel (the job's owner, or ``data:delete``)."""

    audit_actions = {"POST": "job.cancel"}

    def post(self, org: str, job_id: str) -> None:
        self.write_json(self.app.jobs.cancel(self.org(org), job_id))


class JobEventsHandler(JSONErrors, ServiceAuthenticated, WebSocketHandler):
    """WS /orgs/{org}/jobs/{id}/events: the job's model at every change, until it ends.

    Authentication and membership are checked before the upgrade, so a refused caller
    gets an HTTP error (401, 404) rather than a socket that closes; a plain GET (no
    upgrade) by a member is a 400. Errors are the API's JSON ones.
    """

    async def get(self, org: str, job_id: str) -> None:
        app = self.settings["datapilot"]
        model = self.current_user
        if not model:
            raise DatapilotError(
                401,
                "not_authenticated",
                "Log in to JupyterHub, or send 'Authorization: token <JupyterHub API token>'.",
            )
        self.ctx = org_context(app.catalog, Caller.from_hub_model(model), org)
        self.job = app.jobs.get(self.ctx, job_id)
        headers = self.request.headers
        connection = {part.strip().lower() for part in headers.get("Connection", "").split(",")}
        if headers.get("Upgrade", "").lower() != "websocket" or "upgrade" not in connection:
            # tornado would answer this itself, in plain text
            raise DatapilotError(
                400,
                "websocket_required",
                "Open this path as a WebSocket (Upgrade: websocket); GET /orgs/{org}/jobs/{id}"
                " gives the job's state once.",
            )
        self.runner = app.jobs
        await super().get(org, job_id)

    def open(self, org: str, job_id: str) -> None:
        self.runner.subscribe(job_id, self._send)
        # the state may have changed between the lookup and the subscription
        self._send(self.runner.get(self.ctx, job_id))

    def _send(self, model: dict[str, Any]) -> None:
        self._last_state = model["state"]
        try:
            sent = self.write_message(json.dumps(model))
        except WebSocketClosedError:
            return
        # a client that leaves while a message is on its way fails the write later: that
        # is its leaving (on_close says so), not an error to report with a traceback
        sent.add_done_callback(_retrieve)
        if model["state"] in Job.FINAL_STATES:
            self.close()

    def on_close(self) -> None:
        if not hasattr(self, "runner"):  # closed before the socket was open
            return
        self.runner.unsubscribe(self.job["id"], self._send)
        if getattr(self, "_last_state", None) not in Job.FINAL_STATES:
            log.info("Events of job %s: the client left before the job ended", self.job["id"])

    def on_message(self, message: str | bytes) -> None:
        """Clients only listen; messages are ignored."""


def _retrieve(future) -> None:
    if not future.cancelled():
        future.exception()


default_handlers = [
    (rf"/orgs/{ORG}/jobs", JobsAPIHandler),
    (rf"/orgs/{ORG}/jobs/{JOB}", JobAPIHandler),
    (rf"/orgs/{ORG}/jobs/{JOB}/cancel", JobCancelAPIHandler),
    (rf"/orgs/{ORG}/jobs/{JOB}/events", JobEventsHandler),
]
