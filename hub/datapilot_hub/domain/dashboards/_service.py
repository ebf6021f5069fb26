"""Publish, list, describe, roll back and unpublish the dashboards of an organization."""

from __future__ import annotations

import logging
import posixpath
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from datapilot_contract import check_dashboard_slug

from ...catalog import Catalog, Dashboard, DashboardVersion, Dataset, DatasetVersion, utcnow
from ...errors import DatapilotError, bad_request, checked, not_found
from ...storage import Storage
from .._identity import OrgContext
from ._request import PublishRequest
from ._snapshot import Snapshot, current_snapshot, materialize
from ._thumbnail import drawn_thumbnail, first_png

log = logging.getLogger(__name__)


def _check_slug(slug: Any) -> str:
    return checked(check_dashboard_slug, slug, "slug")


class DashboardService:
    """The dashboards of every organization: snapshots in storage, versions in the catalog.

    Parameters
    ----------
    catalog : Catalog
        The catalog.
    storage : Storage
        Where the snapshots are written.
    service_prefix : str
        The data service's URL prefix (``/services/datapilot/``), for the addresses in the
        models.
    """

    def __init__(
        self, catalog: Catalog, storage: Storage, service_prefix: str = "/services/datapilot/"
    ) -> None:
        self.catalog = catalog
        self.storage = storage
        self.service_prefix = service_prefix.rstrip("/") + "/"

    # -- the models --------------------------------------------------------------------

    def url(self, org: str, slug: str) -> str:
        """The stable address of a dashboard: it always reaches the current version."""
        return f"{self.service_prefix}dashboards/{org}/{slug}"

    def _model(self, ctx: OrgContext, dash: Dashboard) -> dict[str, Any]:
        cur = dash.current
        assert cur is not None
        return {
            "slug": dash.slug,
            "title": dash.title,
            "description": dash.description,
            "kind": dash.kind,
            "publisher": dash.publisher,
            "version": dash.current_version,
            "published_by": cur.publisher,
            "created": dash.created.isoformat(),
            "updated": dash.updated.isoformat(),
            "notebook": cur.notebook,
            "pins": cur.pins,
            "url": self.url(ctx.slug, dash.slug),
            "thumbnail": f"{self.service_prefix}api/v1/orgs/{ctx.slug}/dashboards/{dash.slug}"
            f"/thumbnail?v={dash.current_version}",
        }

    @staticmethod
    def _version_model(v: DashboardVersion, current: int | None) -> dict[str, Any]:
        return {
            "version": v.version,
            "current": v.version == current,
            "kind": v.kind,
            "title": v.title,
            "notebook": v.notebook,
            "files": v.files,
            "pins": v.pins,
            "bytes": v.bytes,
            "publisher": v.publisher,
            "created": v.created.isoformat(),
        }

    def _visible(self, db, ctx: OrgContext, slug: Any) -> Dashboard:
        slug = _check_slug(slug)
        dash = Dashboard.find(db, ctx.org_id, slug)
        if dash is None or not dash.visible:
            raise not_found("dashboard", slug)
        return dash

    @staticmethod
    def _require_owner(ctx: OrgContext, dash: Dashboard, action: str) -> None:
        """The publisher (while they may still publish) or ``dashboards:manage``."""
        if "dashboards:manage" in ctx.permissions:
            return
        if ctx.caller.name == dash.publisher and "dashboards:publish" in ctx.permissions:
            return
        raise DatapilotError(
            403,
            "forbidden",
            f"Only {dash.publisher!r}, who published {dash.slug!r}, or a role with"
            f" dashboards:manage may {action} it.",
            permission="dashboards:manage",
            role=ctx.role,
        )

    # -- reading -----------------------------------------------------------------------

    def list(self, ctx: OrgContext, query: str | None = None) -> list[dict[str, Any]]:
        """The organization's published dashboards, most recently updated first.

        Parameters
        ----------
        ctx : OrgContext
            The caller (``dashboards:view``).
        query : str, optional
            Keep those whose title, description, slug or publisher contain it (any case).
        """
        ctx.require("dashboards:view")
        with self.catalog.session(ctx.org_id) as db:
            dashboards = db.scalars(
                select(Dashboard)
                .where(
                    Dashboard.organization_id == ctx.org_id,
                    Dashboard.current_version.is_not(None),
                    Dashboard.unpublished.is_(None),
                )
                .order_by(Dashboard.updated.desc(), Dashboard.slug)
            ).all()
            models = [self._model(ctx, d) for d in dashboards]
        if query:
            q = query.casefold()
            models = [
                m
                for m in models
                if any(
                    q in str(m[k]).casefold() for k in ("title", "description", "slug", "publisher")
                )
            ]
        return models

    def get(self, ctx: OrgContext, slug: Any) -> dict[str, Any]:
        """A dashboard with its versions and the dataset versions it shows.

        ``datasets`` lists each pinned dataset with the version it shows: the pinned
        one, or (null pin) the dataset's current version, marked ``"latest"``.
        """
        ctx.require("dashboards:view")
        with self.catalog.session(ctx.org_id) as db:
            dash = self._visible(db, ctx, slug)
            model = self._model(ctx, dash)
            model["files"] = dash.current.files
            model["versions"] = [
                self._version_model(v, dash.current_version) for v in dash.versions
            ]
            model["datasets"] = self._datasets_shown(db, ctx, dash.current.pins or {})
        return model

    def _datasets_shown(self, db, ctx: OrgContext, pins: dict[str, int | None]) -> list[dict]:
        shown = []
        for name in sorted(pins):
            pinned = pins[name]
            ds = Dataset.find(db, ctx.org_id, name)
            current = ds.current_version if ds is not None else None
            shown.append(
                {
                    "name": name,
                    "pinned": pinned,
                    "follows": "pinned" if pinned is not None else "latest",
                    "version": pinned if pinned is not None else current,
                }
            )
        return shown

    def versions(self, ctx: OrgContext, slug: Any) -> list[dict[str, Any]]:
        """Every version of a dashboard, oldest first."""
        ctx.require("dashboards:view")
        with self.catalog.session(ctx.org_id) as db:
            dash = self._visible(db, ctx, slug)
            return [self._version_model(v, dash.current_version) for v in dash.versions]

    def thumbnail(self, ctx: OrgContext, slug: Any) -> tuple[str, bytes]:
        """The gallery picture of a dashboard: ``(content type, bytes)``.

        A PNG chart the notebook drew when it was published, or an SVG card with its
        title and kind.
        """
        ctx.require("dashboards:view")
        with self.catalog.session(ctx.org_id) as db:
            dash = self._visible(db, ctx, slug)
            cur = dash.current
            path, title, kind = cur.thumbnail, cur.title, cur.kind
        if path:
            try:
                with self.storage.open(path, "rb") as f:
                    return "image/png", f.read()
            except FileNotFoundError:
                log.warning("Thumbnail %s is missing; drawing one", path)
        return "image/svg+xml", drawn_thumbnail(title, kind).encode()

    # -- writing -----------------------------------------------------------------------

    def _check_pins(self, ctx: OrgContext, pins: dict[str, int | None]) -> None:
        """Every pinned version exists (a null pin follows whatever is latest)."""
        pinned = {n: v for n, v in pins.items() if v is not None}
        if not pinned:
            return
        with self.catalog.session(ctx.org_id) as db:
            for name, version in sorted(pinned.items()):
                found = db.scalar(
                    select(DatasetVersion.version)
                    .join(Dataset, Dataset.id == DatasetVersion.dataset_id)
                    .where(
                        Dataset.organization_id == ctx.org_id,
                        Dataset.name == name,
                        Dataset.current_version.is_not(None),
                        DatasetVersion.version == version,
                    )
                )
                if found is None:
                    raise bad_request(
                        f"pins.{name}",
                        f"Dataset {name!r} has no version {version} to pin.",
                        code="unknown_pin",
                    )

    def _allocate(self, ctx: OrgContext, req: PublishRequest) -> int:
        """Create the dashboard (invisible) or check the caller may republish it, and hand
        out the new version's number."""
        try:
            with self.catalog.session(ctx.org_id) as db:
                dash = Dashboard.find(db, ctx.org_id, req.slug)
                if dash is None:
                    dash = Dashboard(
                        organization_id=ctx.org_id,
                        slug=req.slug,
                        title=req.title,
                        description=req.description,
                        kind=req.kind,
                        publisher=ctx.caller.name,
                        next_version=1,
                    )
                    db.add(dash)
                elif dash.visible:
                    self._require_owner(ctx, dash, "publish a new version of")
                else:
                    # unpublished (or never finished): the slug is free again
                    dash.publisher = ctx.caller.name
                version = dash.next_version
                dash.next_version = version + 1
                db.flush()
                return version
        except IntegrityError:
            raise DatapilotError(
                409,
                "conflict",
                f"Dashboard {req.slug!r} is being published by someone else right now; try again.",
                slug=req.slug,
            ) from None

    def publish(self, ctx: OrgContext, req: PublishRequest) -> dict[str, Any]:
        """Snapshot a notebook and its files as a new version of a dashboard, and make it
        the current one.

        The files are written under ``org-<id>/dashboards/<slug>/v<n>/`` first; one catalog
        commit at the end makes the version visible, so a failed publication leaves
        nothing half-visible (and its files are removed). Publishing an existing
        dashboard again takes its publisher or ``dashboards:manage``.

        Parameters
        ----------
        ctx : OrgContext
            The caller (``dashboards:publish``).
        req : PublishRequest
            The checked publication (:func:`build_request` or :func:`request_from_json`).
        """
        ctx.require("dashboards:publish")
        self._check_pins(ctx, req.pins)
        version = self._allocate(ctx, req)
        folder = self.storage.dashboard_version_dir(ctx.org_id, req.slug, version)
        thumb_path = self.storage.dashboard_thumbnail_path(ctx.org_id, req.slug, version)
        try:
            notebook = req.notebook_bytes()
            self.storage.write_atomic(posixpath.join(folder, req.notebook_name), notebook)
            for rel, data in sorted(req.files.items()):
                self.storage.write_atomic(posixpath.join(folder, rel), data)
            png = first_png(req.notebook)
            if png is not None:
                self.storage.write_atomic(thumb_path, png)
            with self.catalog.session(ctx.org_id) as db:
                dash = Dashboard.find(db, ctx.org_id, req.slug)
                db.add(
                    DashboardVersion(
                        organization_id=ctx.org_id,
                        dashboard_id=dash.id,
                        version=version,
                        kind=req.kind,
                        title=req.title,
                        description=req.description,
                        path=folder,
                        notebook=req.notebook_name,
                        files=[{"path": p, "bytes": len(d)} for p, d in sorted(req.files.items())],
                        pins=req.pins,
                        bytes=req.size,
                        source_path=req.source_path,
                        thumbnail=thumb_path if png is not None else None,
                        publisher=ctx.caller.name,
                    )
                )
                dash.title, dash.description, dash.kind = req.title, req.description, req.kind
                dash.current_version = version
                dash.updated = utcnow()
                dash.unpublished = dash.unpublished_by = None
        except BaseException:
            self.storage.remove(folder)
            self.storage.remove(thumb_path)
            raise
        log.info("%s published dashboard %s/%s v%d", ctx.caller.name, ctx.slug, req.slug, version)
        return self.get(ctx, req.slug)

    def rollback(self, ctx: OrgContext, slug: Any, version: Any) -> dict[str, Any]:
        """Make an earlier (or later) version current again; versions never change.

        Takes the publisher or ``dashboards:manage``.
        """
        ctx.require("dashboards:view")
        if not isinstance(version, int) or isinstance(version, bool):
            raise bad_request("version", "version must be a version number.")
        with self.catalog.session(ctx.org_id) as db:
            dash = self._visible(db, ctx, slug)
            self._require_owner(ctx, dash, "roll back")
            target = next((v for v in dash.versions if v.version == version), None)
            if target is None:
                raise DatapilotError(
                    404, "not_found", f"{dash.slug!r} has no version {version}.", version=version
                )
            dash.current_version = version
            dash.title, dash.description, dash.kind = target.title, target.description, target.kind
            dash.updated = utcnow()
        return self.get(ctx, slug)

    def unpublish(self, ctx: OrgContext, slug: Any) -> None:
        """Take a dashboard out of the gallery and off its address.

        Its versions stay in the catalog and storage (the slug can be published again,
        numbering on); they go with the organization. Takes the publisher or
        ``dashboards:manage``.
        """
        ctx.require("dashboards:view")
        with self.catalog.session(ctx.org_id) as db:
            dash = self._visible(db, ctx, slug)
            self._require_owner(ctx, dash, "unpublish")
            dash.unpublished = utcnow()
            dash.unpublished_by = ctx.caller.name

    # -- serving -----------------------------------------------------------------------

    def snapshot(self, org: str, slug: str) -> Snapshot | None:
        """The current snapshot of ``org``/``slug`` (see :func:`current_snapshot`)."""
        return current_snapshot(self.catalog, org, slug)

    def materialize(self, snapshot: Snapshot, directory, **modes) -> Any:
        """Write a snapshot into a local folder (see :func:`materialize`)."""
        return materialize(self.storage, snapshot, directory, **modes)
