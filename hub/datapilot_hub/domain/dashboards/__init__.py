"""Dashboards: notebooks published as read-only Voilà or Panel apps of an organization.

Publishing (:class:`DashboardService`)
    :meth:`~DashboardService.publish` snapshots a notebook and the files it names into
    storage under ``org-<id>/dashboards/<slug>/v<n>/`` and makes the new version current by
    one catalog commit at the end (nothing half-visible on failure). Versions never
    change; :meth:`~DashboardService.rollback` makes another one current and
    :meth:`~DashboardService.unpublish` takes the dashboard off the gallery and its
    address (the publisher, or ``dashboards:manage``). A dashboard belongs to the
    organization: its publisher leaving changes nothing. A request is checked by
    :func:`build_request` (kernel/extension callers) or :func:`request_from_json` (the
    API's body, files in base64).

Serving (for the dashboard runtime)
    The runtime checks the viewer's ``dashboards:view`` in the organization itself
    (``org_context(catalog, caller, org).require("dashboards:view")``), then::

        from datapilot_hub.domain.dashboards import current_snapshot, materialize

        snap = current_snapshot(catalog, org, slug)   # Snapshot or None (404)
        snap.version, snap.kind, snap.title            # kind: "voila" | "panel"
        notebook = materialize(storage, snap, root / snap.key)
        env = snap.environment()                       # for the dashboard's kernel

    :func:`current_snapshot` returns the current version of ``org``/``slug`` or None when it
    does not exist, was never published or was unpublished. :func:`materialize` writes the
    snapshot's notebook and files into a folder (all or nothing: a temporary sibling is
    renamed into place) and returns the notebook's path; a folder already there is left as
    it is, so name it after :attr:`Snapshot.key` (``<org>/<slug>/v<n>``): a new version
    lands in a new folder. ``file_mode``/``dir_mode`` set the permissions (chown it to the
    organization's account afterwards). :meth:`Snapshot.environment` gives
    ``DATAPILOT_DASHBOARD=<org>/<slug>`` and ``DATAPILOT_DASHBOARD_PINS`` (JSON of the
    pinned versions), the names in :mod:`datapilot_contract`, which ``dp.load`` reads.
    :meth:`DashboardService.snapshot` and :meth:`DashboardService.materialize` do the same
    with the service's catalog and storage.
"""

from ._request import (
    DEFAULT_MAX_SNAPSHOT_BYTES,
    PublishRequest,
    build_request,
    request_from_json,
    validate_notebook,
)
from ._service import DashboardService
from ._snapshot import Snapshot, current_snapshot, materialize, snapshot_json
from ._thumbnail import drawn_thumbnail, first_png

__all__ = [
    "DEFAULT_MAX_SNAPSHOT_BYTES",
    "DashboardService",
    "PublishRequest",
    "Snapshot",
    "build_request",
    "current_snapshot",
    "drawn_thumbnail",
    "first_png",
    "materialize",
    "request_from_json",
    "snapshot_json",
    "validate_notebook",
]
