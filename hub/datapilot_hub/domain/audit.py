"""The audit log: who did what in an organization, from where, and how it ended.

Events are written in one place, the API handlers' finish hook
(:meth:`datapilot_hub.service.handlers.base.APIHandler.on_finish`), from the action the
handler declares and the status the call ended with; so refused and failed calls are
recorded as well as successful ones, and nothing is recorded twice.

Calls refused by a rate limit (429) come in floods, and one row each would let a client
that is being refused fill the catalog (30,842 rows in two minutes under a 50-client
load). They are counted in memory instead, one event per organization, caller, action
and window (``details.count``), written when the window closes and when the service
stops.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import logging
import re
import threading
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

from sqlalchemy import delete, select

from ..catalog import AuditEvent, Catalog
from ..errors import bad_request
from ._args import whole_number
from ._identity import OrgContext

log = logging.getLogger(__name__)

#: Default and largest ``limit`` of a JSON page of events.
DEFAULT_LIMIT = 100
MAX_LIMIT = 1000

CSV_COLUMNS = ("time", "user", "action", "target", "outcome", "status", "client", "details")

# a spreadsheet runs a cell that starts with one of these as a formula
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def _column(value: Any, size: int) -> str | None:
    if value is None:
        return None
    return str(value)[:size]


#: Distinct targets and clients kept in the details of a counted event.
MAX_LISTED = 10


@dataclass
class _Refusals:
    """The refused calls of one caller, action and window, not written yet."""

    org_id: int
    user: str
    action: str
    outcome: str
    window: float  # start, in seconds since the epoch
    first: float
    details: dict[str, Any]
    count: int = 0
    last: float = 0.0
    targets: list[str | None] = dataclasses.field(default_factory=list)
    clients: list[str | None] = dataclasses.field(default_factory=list)
    failures: int = 0

    def add(self, when: float, target: str | None, client: str | None) -> None:
        self.count += 1
        self.last = max(self.last, when)
        for seen, value in ((self.targets, target), (self.clients, client)):
            if value not in seen and len(seen) < MAX_LISTED:
                seen.append(value)

    def merge(self, other: _Refusals) -> None:
        """Fold in the counts of the same key (a batch that could not be written)."""
        self.count += other.count
        self.first, self.last = min(self.first, other.first), max(self.last, other.last)
        for seen, values in ((self.targets, other.targets), (self.clients, other.clients)):
            for value in values:
                if value not in seen and len(seen) < MAX_LISTED:
                    seen.append(value)
        self.failures = max(self.failures, other.failures)

    def event(self, size: float) -> AuditEvent:
        def iso(t: float) -> str:
            return datetime.fromtimestamp(t, timezone.utc).isoformat()

        details = {
            **self.details,
            "count": self.count,
            "window_start": iso(self.window),
            "window_end": iso(self.window + size),
            "first": iso(self.first),
            "last": iso(self.last),
        }
        if len(self.targets) > 1:
            details["targets"] = self.targets
        if len(self.clients) > 1:
            details["clients"] = self.clients
        return AuditEvent(
            organization_id=self.org_id,
            user_name=_column(self.user, 255),
            action=_column(self.action, 60),
            target=_column(self.targets[0], 255) if len(self.targets) == 1 else None,
            outcome=_column(self.outcome, 20),
            client=_column(self.clients[0], 64),
            details=details,
            time=datetime.fromtimestamp(self.last, timezone.utc),
        )


def event_model(event: AuditEvent) -> dict[str, Any]:
    """The JSON model of an audit event."""
    details = dict(event.details or {})
    status = details.pop("status", None)
    return {
        "id": event.id,
        "time": event.time.isoformat(),
        "user": event.user_name,
        "action": event.action,
        "target": event.target,
        "outcome": event.outcome,
        "status": status,
        "client": event.client,
        "details": details,
    }


def csv_safe(value: Any) -> str:
    """A CSV cell that a spreadsheet shows as text, never runs as a formula."""
    text = "" if value is None else str(value)
    if text.startswith(_FORMULA_START):
        return "'" + text
    return text


def parse_time(value: str | None, field: str) -> datetime | None:
    """An ISO 8601 time from a query argument (UTC when it names no zone), or 400."""
    if value in (None, ""):
        return None
    try:
        # an unescaped "+01:00" in a query string arrives as " 01:00"
        text = re.sub(r" (\d\d:?\d\d)$", r"+\1", value.strip()).replace("Z", "+00:00")
        parsed = datetime.fromisoformat(text)
    except ValueError:
        raise bad_request(
            field, f"{field} must be an ISO 8601 time such as 2026-11-25T10:00:00Z."
        ) from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=timezone.utc)
    return parsed


@dataclass
class AuditQuery:
    """Filters and paging of an audit log read.

    Parameters
    ----------
    user, action : str, optional
        Only events of this caller, or of this action (``dataset.read``...).
    since, until : datetime, optional
        Only events at or after ``since`` and before ``until``.
    limit : int, optional
        At most this many events (None: all, for exports).
    offset : int
        Skip this many of the newest events first.
    """

    user: str | None = None
    action: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    limit: int | None = DEFAULT_LIMIT
    offset: int = 0

    @classmethod
    def from_arguments(cls, args: Mapping[str, str | None], export: bool = False) -> AuditQuery:
        """Build from query arguments, with a 400 naming the field that is wrong.

        Parameters
        ----------
        args : mapping
            ``user``, ``action``, ``since``, ``until``, ``limit``, ``offset`` as strings.
        export : bool
            A CSV export: no default ``limit``, and no upper bound on it.
        """
        for field, size in (("user", 255), ("action", 60)):
            value = args.get(field)
            if value is not None and (not value or len(value) > size):
                raise bad_request(field, f"{field} must be 1 to {size} characters.")
        query = cls(
            user=args.get("user"),
            action=args.get("action"),
            since=parse_time(args.get("since"), "since"),
            until=parse_time(args.get("until"), "until"),
            limit=whole_number(
                args.get("limit"),
                "limit",
                None if export else DEFAULT_LIMIT,
                1,
                None if export else MAX_LIMIT,
            ),
            offset=whole_number(args.get("offset"), "offset", 0, 0),
        )
        if query.since and query.until and query.since > query.until:
            raise bad_request("until", "until must not be before since.")
        return query


class AuditLog:
    """Record, read, export and expire audit events.

    Parameters
    ----------
    catalog : Catalog
        The catalog.
    retention_days : int
        Events older than this many days are removed by :meth:`purge` (0 keeps all).
    refusal_window : float
        Seconds over which the refused calls of one caller and action are counted as one
        event (:meth:`count_refusal`).
    max_pending : int
        The most (caller, action, window) counts held before they are written; a refusal
        beyond is not counted, and the next :meth:`flush` says how many were not.
    """

    def __init__(
        self,
        catalog: Catalog,
        retention_days: int = 365,
        refusal_window: float = 60,
        max_pending: int = 10_000,
    ) -> None:
        self.catalog = catalog
        self.retention_days = retention_days
        self.refusal_window = refusal_window
        self.max_pending = max_pending
        self._pending: dict[tuple, _Refusals] = {}
        self._uncounted = 0
        self._lock = threading.Lock()

    def record(
        self,
        org_id: int,
        user: str,
        action: str,
        target: str | None = None,
        outcome: str = "ok",
        client: str | None = None,
        details: Mapping[str, Any] | None = None,
    ) -> None:
        """Write one event (its own transaction, scoped to the organization).

        Parameters
        ----------
        org_id : int
            The organization the call was made in.
        user : str
            The caller's name.
        action : str
            What was done: ``dataset.import``, ``member.set``, ``dataset.read``...
        target : str, optional
            The object: a dataset name, a member, a job id.
        outcome : str
            ``ok``, or the error code the call ended with.
        client : str, optional
            The client's address.
        details : mapping, optional
            Anything else worth keeping (HTTP status, version, format, role...).
        """
        with self.catalog.session(org_id) as db:
            db.add(
                AuditEvent(
                    organization_id=org_id,
                    user_name=_column(user, 255),
                    action=_column(action, 60),
                    target=_column(target, 255),
                    outcome=_column(outcome, 20),
                    client=_column(client, 64),
                    details=dict(details) if details else None,
                )
            )

    def count_refusal(
        self,
        org_id: int,
        user: str,
        action: str,
        target: str | None = None,
        outcome: str = "rate_limited",
        client: str | None = None,
        details: Mapping[str, Any] | None = None,
        now: float | None = None,
    ) -> None:
        """Count a refused call; written by :meth:`flush` as one event per organization,
        caller, action and window, with the count in ``details.count``.

        Takes the arguments of :meth:`record` (the details of the window's first call
        are kept; up to :data:`MAX_LISTED` distinct targets and clients are listed).
        Memory only: cheap enough to call for every refusal of a flood.

        Parameters
        ----------
        now : float, optional
            The time of the call in seconds since the epoch (for tests); now by default.
        """
        when = time.time() if now is None else now
        window = when - when % self.refusal_window
        key = (org_id, user, action, outcome, window)
        with self._lock:
            counted = self._pending.get(key)
            if counted is None:
                if len(self._pending) >= self.max_pending:
                    self._uncounted += 1
                    return
                counted = self._pending[key] = _Refusals(
                    org_id, user, action, outcome, window, when, dict(details or {})
                )
            counted.add(when, target, client)

    def flush(self, now: float | None = None, everything: bool = False) -> int:
        """Write the counted refusals of the windows that have closed; returns the calls
        written.

        A batch that cannot be written is kept for the next flush, once: a second failure
        drops it, with its counts in the log, so that an organization deleted meanwhile
        (or a catalog that stays down) cannot make the counts grow without bound.

        Parameters
        ----------
        now : float, optional
            The present in seconds since the epoch (for tests); now by default.
        everything : bool
            Write the open windows too (when the service stops).
        """
        now = time.time() if now is None else now
        with self._lock:
            closed = [
                key
                for key, counted in self._pending.items()
                if everything or counted.window + self.refusal_window <= now
            ]
            batch = [self._pending.pop(key) for key in closed]
            uncounted, self._uncounted = self._uncounted, 0
        if uncounted:
            log.error(
                "Audit: %d refused call(s) were not counted: more than %d callers and"
                " actions were refused in one window",
                uncounted,
                self.max_pending,
            )
        by_org: dict[int, list[_Refusals]] = {}
        for counted in batch:
            by_org.setdefault(counted.org_id, []).append(counted)
        written = events = 0
        for org_id, counts in by_org.items():
            try:
                with self.catalog.session(org_id) as db:
                    db.add_all([c.event(self.refusal_window) for c in counts])
            except Exception:
                self._retry(org_id, counts)
                continue
            written += sum(c.count for c in counts)
            events += len(counts)
        if written:
            log.info(
                "Audit: %d refused call(s) recorded as %d event(s) (one per caller, action"
                " and %g s window)",
                written,
                events,
                self.refusal_window,
            )
        return written

    def _retry(self, org_id: int, counts: list[_Refusals]) -> None:
        calls = sum(c.count for c in counts)
        if any(c.failures for c in counts):
            log.exception(
                "Audit: dropping %d refused call(s) of organization %d that could not be"
                " written twice: %s",
                calls,
                org_id,
                ", ".join(f"{c.user} {c.action} x{c.count}" for c in counts),
            )
            return
        log.exception("Audit: could not write %d refused call(s); trying again", calls)
        with self._lock:
            for counted in counts:
                counted.failures += 1
                key = (
                    counted.org_id,
                    counted.user,
                    counted.action,
                    counted.outcome,
                    counted.window,
                )
                if key in self._pending:
                    self._pending[key].merge(counted)
                else:
                    self._pending[key] = counted

    def _select(self, ctx: OrgContext, q: AuditQuery):
        stmt = select(AuditEvent).where(AuditEvent.organization_id == ctx.org_id)
        if q.user is not None:
            stmt = stmt.where(AuditEvent.user_name == q.user)
        if q.action is not None:
            stmt = stmt.where(AuditEvent.action == q.action)
        if q.since is not None:
            stmt = stmt.where(AuditEvent.time >= q.since)
        if q.until is not None:
            stmt = stmt.where(AuditEvent.time < q.until)
        # ids grow with time; ordering by id alone keeps pages stable
        stmt = stmt.order_by(AuditEvent.id.desc()).offset(q.offset)
        if q.limit is not None:
            stmt = stmt.limit(q.limit)
        return stmt

    def events(self, ctx: OrgContext, query: AuditQuery) -> list[dict[str, Any]]:
        """The organization's events, newest first (``audit:read``).

        Parameters
        ----------
        ctx : OrgContext
            The caller in the organization.
        query : AuditQuery
            Filters and paging.
        """
        ctx.require("audit:read")
        with self.catalog.session(ctx.org_id) as db:
            return [event_model(e) for e in db.scalars(self._select(ctx, query))]

    def iter_csv(self, ctx: OrgContext, query: AuditQuery, batch: int = 500) -> Iterator[str]:
        """The events as CSV text, header first, in pieces of ``batch`` rows (``audit:read``).

        Cells that a spreadsheet would run as a formula are prefixed with ``'``. Each piece
        is read in its own short transaction (so the pieces may be produced from any
        thread), continuing below the last id seen: events written meanwhile do not shift
        the export.

        Parameters
        ----------
        ctx : OrgContext
            The caller in the organization.
        query : AuditQuery
            Filters and paging.
        batch : int
            Rows per piece.
        """
        ctx.require("audit:read")
        buf = io.StringIO()
        writer = csv.writer(buf)
        writer.writerow(CSV_COLUMNS)
        yield buf.getvalue()
        remaining = query.limit
        page = AuditQuery(query.user, query.action, query.since, query.until, batch, query.offset)
        last_id = None
        while remaining is None or remaining > 0:
            page.limit = batch if remaining is None else min(batch, remaining)
            with self.catalog.session(ctx.org_id) as db:
                stmt = self._select(ctx, page)
                if last_id is not None:
                    stmt = stmt.where(AuditEvent.id < last_id)
                models = [event_model(e) for e in db.scalars(stmt)]
            if not models:
                break
            buf.seek(0)
            buf.truncate()
            for model in models:
                model["details"] = (
                    json.dumps(model["details"], sort_keys=True) if model["details"] else ""
                )
                writer.writerow([csv_safe(model[c]) for c in CSV_COLUMNS])
            yield buf.getvalue()
            last_id = models[-1]["id"]
            page.offset = 0
            if remaining is not None:
                remaining -= len(models)
            if len(models) < page.limit:
                break

    def purge(self, now: datetime | None = None) -> int:
        """Remove events older than the retention; returns how many were removed.

        Parameters
        ----------
        now : datetime, optional
            The present (for tests); the current time by default.
        """
        if self.retention_days <= 0:
            return 0
        cutoff = (now or datetime.now(timezone.utc)) - timedelta(days=self.retention_days)
        with self.catalog.session(system=True) as db:
            result = db.execute(delete(AuditEvent).where(AuditEvent.time < cutoff))
            return result.rowcount or 0
