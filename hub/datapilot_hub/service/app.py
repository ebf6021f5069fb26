"""The data service: a JupyterHub-managed service.

It is the only process that holds the catalog and storage credentials.
"""

from __future__ import annotations

import asyncio
import ctypes
import json
import logging
import os
import signal
import sys
import time
from typing import Any
from urllib.parse import urlparse

from jupyterhub.services.auth import HubOAuth, HubOAuthCallbackHandler
from jupyterhub.utils import url_path_join
from tornado import web
from traitlets import Bool, Dict, Float, Integer, TraitError, Unicode, default, validate
from traitlets.config import Application, Config

from .. import compute
from ..catalog import Catalog
from ..configuration import DatapilotConfig
from ..domain.aggregate import AggregateService, Engine
from ..domain.audit import AuditLog
from ..domain.charts import ChartService
from ..domain.dashboard_runtime import RuntimeServers
from ..domain.dashboards import DEFAULT_MAX_SNAPSHOT_BYTES, DashboardService
from ..domain.datasets import DatasetService
from ..domain.ingest import Ingestor, IngestRequest, Limits
from ..domain.insights import InsightService, Narrator
from ..domain.invitations import InvitationService
from ..domain.jobs import JobRunner
from ..domain.mail import Mailer
from ..domain.org_settings import OrgSettingsService
from ..domain.orgs import OrgService
from ..domain.plans import DEFAULT_PLANS, Plans, validate_plans
from ..domain.servers import ServerWatcher
from ..domain.transform import SavedRecipes, TransformService
from ..domain.transform._gateway import StorageGateway
from ..domain.viewer_tokens import ViewerTokens
from ..hubapi import HubClient
from ..ratelimit import DEFAULT_RATE_LIMITS, parse_rate_limits, rate_limiter_from_config
from ..storage import storage_from_config
from ._bodies import BodyLimitedApplication
from ._peers import PeerCheckingHTTPServer
from .handlers import default_handlers
from .handlers.base import NotFoundAPIHandler
from .pages import default_handlers as page_handlers


class DataService(Application):
    """Serve ``/services/datapilot/api/v1`` for JupyterHub users, tokens and kernels."""

    name = "datapilot-service"
    description = __doc__
    classes = [DatapilotConfig, Narrator]
    aliases = {"config": "DataService.config_file", "log-level": "Application.log_level"}

    config_file = Unicode(
        "",
        help="""A Python configuration file to load (``c.DataService.*``, ``c.DatapilotConfig.*``).

        Example::

            datapilot-service --config=/etc/datapilot/service_config.py
        """,
    ).tag(config=True)

    service_prefix = Unicode(
        help="""URL prefix the service is served under, behind the proxy.

        Defaults to ``$JUPYTERHUB_SERVICE_PREFIX`` (set by JupyterHub), else
        ``/services/datapilot/``.

        Example::

            c.DataService.service_prefix = "/services/datapilot/"
        """,
    ).tag(config=True)

    @default("log_level")
    def _log_level_default(self) -> int:
        # like JupyterHub's: requests and job timings are worth a line each
        return logging.INFO

    @default("service_prefix")
    def _default_service_prefix(self) -> str:
        return os.environ.get("JUPYTERHUB_SERVICE_PREFIX", "/services/datapilot/")

    @validate("service_prefix")
    def _slashes(self, proposal) -> str:
        return "/" + proposal["value"].strip("/") + "/"

    bind_url = Unicode(
        help="""Where the service listens: ``http://127.0.0.1:<port>``.

        Defaults to ``$JUPYTERHUB_SERVICE_URL`` (set by JupyterHub), else
        ``http://127.0.0.1:8790``.

        Example::

            c.DataService.bind_url = "http://127.0.0.1:8790"
        """,
    ).tag(config=True)

    @default("bind_url")
    def _default_bind_url(self) -> str:
        return os.environ.get("JUPYTERHUB_SERVICE_URL", "http://127.0.0.1:8790")

    max_upload_size = Integer(
        help="""The largest file an upload may carry, in bytes (default 2 GiB).

        Only the upload (``POST /orgs/{org}/datasets``) takes a body this large, and only
        once its caller is authenticated and allowed to import; every other request has
        :attr:`max_body_size`. A declared Content-Length over it is refused with 413
        before the body is read. It also bounds what the service reads and drops of a
        refused upload's body so that the refusal reaches the client (see
        :attr:`max_body_size`). Defaults to ``$DATAPILOT_MAX_UPLOAD_SIZE``.

        Example::

            c.DataService.max_upload_size = 512 * 1024**2
        """,
    ).tag(config=True)

    @default("max_upload_size")
    def _default_max_upload_size(self) -> int:
        return int(os.environ.get("DATAPILOT_MAX_UPLOAD_SIZE") or 2 * 1024**3)

    max_body_size = Integer(
        help="""The largest request body of every call but the upload, in bytes (default 1 MiB).

        The API's JSON bodies are a few hundred bytes, and a body is held in memory
        before its handler runs (before the caller is even authenticated): this bounds
        what one request can make the service hold. A body over it is read and dropped,
        never kept, and answered with 413 ``too_large`` (JSON), so that the answer
        reaches the client through the proxy; a body declared larger than
        :attr:`max_upload_size` is answered at once and its connection closed. The
        upload raises its own limit to :attr:`max_upload_size` after authentication.
        Defaults to ``$DATAPILOT_MAX_BODY_SIZE``.

        Example::

            c.DataService.max_body_size = 256 * 1024
        """,
    ).tag(config=True)

    @default("max_body_size")
    def _default_max_body_size(self) -> int:
        return int(os.environ.get("DATAPILOT_MAX_BODY_SIZE") or 1024**2)

    max_publish_size = Integer(
        help="""The largest dashboard publication, in bytes (default 16 MiB).

        Publishing sends the notebook (with its outputs) and the files it names in one
        JSON body (files in base64); a body over this is refused with 413 ``too_large``,
        and so is a snapshot over it once decoded. Only ``POST /orgs/{org}/dashboards``
        takes bodies this large; every other call keeps :attr:`max_body_size`. Defaults
        to ``$DATAPILOT_MAX_PUBLISH_SIZE``.

        Example::

            c.DataService.max_publish_size = 64 * 1024**2
        """,
    ).tag(config=True)

    @default("max_publish_size")
    def _default_max_publish_size(self) -> int:
        return int(os.environ.get("DATAPILOT_MAX_PUBLISH_SIZE") or DEFAULT_MAX_SNAPSHOT_BYTES)

    body_timeout = Float(
        help="""Seconds a request's body may take to arrive, the upload's excepted (default 60).

        A body not complete by then is dropped with its connection. Bodies but the
        upload's are at most :attr:`max_body_size`; a client that sends them slower
        only holds a connection. Defaults to ``$DATAPILOT_BODY_TIMEOUT``.

        Example::

            c.DataService.body_timeout = 30
        """,
    ).tag(config=True)

    @default("body_timeout")
    def _default_body_timeout(self) -> float:
        return float(os.environ.get("DATAPILOT_BODY_TIMEOUT") or 60)

    upload_timeout = Float(
        help="""Seconds an accepted upload's body may take to arrive (default 3600).

        Set once the caller is authenticated and allowed to import: a 2 GiB upload needs
        0.6 MB/s. A refused upload keeps :attr:`body_timeout`. Defaults to
        ``$DATAPILOT_UPLOAD_TIMEOUT``.

        Example::

            c.DataService.upload_timeout = 600
        """,
    ).tag(config=True)

    @default("upload_timeout")
    def _default_upload_timeout(self) -> float:
        return float(os.environ.get("DATAPILOT_UPLOAD_TIMEOUT") or 3600)

    idle_connection_timeout = Float(
        help="""Seconds a connection may stay idle, or take to send a request's headers.

        Tornado's default is an hour. Behind the proxy a connection only idles between
        two requests the proxy sends on it. Defaults to
        ``$DATAPILOT_IDLE_CONNECTION_TIMEOUT``, else 300.

        Example::

            c.DataService.idle_connection_timeout = 120
        """,
    ).tag(config=True)

    @default("idle_connection_timeout")
    def _default_idle_connection_timeout(self) -> float:
        return float(os.environ.get("DATAPILOT_IDLE_CONNECTION_TIMEOUT") or 300)

    job_workers = Integer(
        2,
        help="""Background jobs that run at once; more wait as ``queued``.

        Example::

            c.DataService.job_workers = 4
        """,
    ).tag(config=True)

    max_uncompressed_size = Integer(
        help="""The most bytes a compressed upload (.gz, .zip, a workbook) may expand to.

        Counted while it inflates, never taken from the archive's own directory (which
        can lie): a .gz or a zip's member is stopped at the limit in the middle of its
        ingestion (the job fails with 413 ``compression_bomb`` and leaves nothing), a
        workbook's parts are all inflated and counted before its reader sees it (413
        while the upload is answered). Defaults to
        ``$DATAPILOT_MAX_UNCOMPRESSED_SIZE``, else 8 GiB.

        Example::

            c.DataService.max_uncompressed_size = 4 * 1024**3
        """,
    ).tag(config=True)

    @default("max_uncompressed_size")
    def _default_max_uncompressed_size(self) -> int:
        return int(os.environ.get("DATAPILOT_MAX_UNCOMPRESSED_SIZE") or 8 * 1024**3)

    max_compression_ratio = Integer(
        help="""The largest expansion ratio of one compressed stream of an upload.

        Bytes out over compressed bytes in, counted as the stream inflates once it has
        given 1 MiB: larger ratios are refused as compression bombs (413
        ``compression_bomb``). Real CSV and workbooks compress 5 to 50 times. Defaults
        to ``$DATAPILOT_MAX_COMPRESSION_RATIO``, else 200.

        Example::

            c.DataService.max_compression_ratio = 100
        """,
    ).tag(config=True)

    @default("max_compression_ratio")
    def _default_max_compression_ratio(self) -> int:
        return int(os.environ.get("DATAPILOT_MAX_COMPRESSION_RATIO") or 200)

    max_columns = Integer(
        2000,
        help="""The most columns an uploaded table may have (422 beyond).

        Example::

            c.DataService.max_columns = 500
        """,
    ).tag(config=True)

    max_cell_bytes = Integer(
        1024**2,
        help="""The largest single cell of an uploaded table, in bytes (422 beyond).

        Example::

            c.DataService.max_cell_bytes = 64 * 1024
        """,
    ).tag(config=True)

    max_line_bytes = Integer(
        1024**2,
        help="""The longest line (or quoted value spanning lines) of a text upload, in bytes.

        It is also the block size of the streaming CSV reader, which reads up to 32
        blocks ahead: raising it raises the memory an ingestion takes (about 32 times
        the increase).

        Example::

            c.DataService.max_line_bytes = 4 * 1024**2
        """,
    ).tag(config=True)

    upgrade_db = Bool(
        True,
        help="""Upgrade the catalog schema to the newest Alembic revision at start.

        Example::

            c.DataService.upgrade_db = False
        """,
    ).tag(config=True)

    allow_self_service_orgs = Bool(
        False,
        help="""Let any logged-in user create an organization (and become its Admin).

        When False (the default) only hub administrators can create organizations.
        Defaults to ``$DATAPILOT_SELF_SERVICE_ORGS`` (``1``/``true``/``yes`` turn it on).

        Example::

            c.DataService.allow_self_service_orgs = True
        """,
    ).tag(config=True)

    @default("allow_self_service_orgs")
    def _default_self_service(self) -> bool:
        value = os.environ.get("DATAPILOT_SELF_SERVICE_ORGS", "")
        return value.strip().lower() in ("1", "true", "yes", "on")

    plans = Dict(
        help="""Plans and their limits: ``{plan name: {limit: number or None}}``.

        Limits: ``members``, ``datasets``, ``storage_bytes``, ``rows_per_dataset``,
        ``servers`` (concurrent notebook servers), ``dask_workers`` (per job). A limit
        left out or ``None`` is unlimited. ``organizations.plan`` names the plan of each
        organization; a hub administrator changes it with ``PUT /orgs/{org}/plan``.
        Defaults to the JSON object in ``$DATAPILOT_PLANS``, else ``free``, ``team``
        and ``business`` (see ``datapilot_hub.domain.plans.DEFAULT_PLANS``).

        Example::

            c.DataService.plans = {
                "free": {"members": 3, "datasets": 10, "storage_bytes": 2**30,
                         "rows_per_dataset": 10**6, "servers": 1, "dask_workers": 1},
                "enterprise": {"dask_workers": 64},
            }
        """,
    ).tag(config=True)

    @default("plans")
    def _default_plans(self) -> dict:
        value = os.environ.get("DATAPILOT_PLANS", "").strip()
        # defaults skip @validate: check (and fill in) the table here as well
        return validate_plans(json.loads(value) if value else DEFAULT_PLANS)

    @validate("plans")
    def _check_plans(self, proposal) -> dict:
        return validate_plans(proposal["value"])

    default_plan = Unicode(
        help="""The plan of organizations whose plan is not one of :attr:`plans`.

        Defaults to ``$DATAPILOT_DEFAULT_PLAN``, else ``free``.

        Example::

            c.DataService.default_plan = "team"
        """,
    ).tag(config=True)

    @default("default_plan")
    def _default_default_plan(self) -> str:
        return os.environ.get("DATAPILOT_DEFAULT_PLAN", "free")

    native_auth = Bool(
        help="""Whether the hub's login is password accounts (its pages link sign-ups).

        The pages show hub administrators a link to the pending sign-ups
        (``/hub/authorize``) and everyone the password change only with password accounts.
        Defaults to ``$DATAPILOT_AUTH`` being ``native`` or unset.

        Example::

            c.DataService.native_auth = False
        """,
    ).tag(config=True)

    @default("native_auth")
    def _default_native_auth(self) -> bool:
        return os.environ.get("DATAPILOT_AUTH", "native").strip().lower() in ("", "native")

    smtp_host = Unicode(
        help="""The SMTP server that sends invitation e-mails; empty (the default) sends none.

        Without it an invitation's link is shown once to copy and send; with it, an
        invitation made with an e-mail address is also sent there (the link is still
        shown, and a failed delivery says why). Defaults to ``$DATAPILOT_SMTP_HOST``.

        Example::

            c.DataService.smtp_host = "smtp.example.org"
        """,
    ).tag(config=True)

    @default("smtp_host")
    def _default_smtp_host(self) -> str:
        return os.environ.get("DATAPILOT_SMTP_HOST", "").strip()

    smtp_port = Integer(
        help="""The SMTP server's port. Defaults to ``$DATAPILOT_SMTP_PORT``, else 587.

        Example::

            c.DataService.smtp_port = 25
        """,
    ).tag(config=True)

    @default("smtp_port")
    def _default_smtp_port(self) -> int:
        return int(os.environ.get("DATAPILOT_SMTP_PORT") or 587)

    smtp_starttls = Bool(
        help="""Upgrade the SMTP connection with STARTTLS (before any credentials).

        Defaults to ``$DATAPILOT_SMTP_STARTTLS`` (``0`` turns it off), else on.

        Example::

            c.DataService.smtp_starttls = False
        """,
    ).tag(config=True)

    @default("smtp_starttls")
    def _default_smtp_starttls(self) -> bool:
        value = os.environ.get("DATAPILOT_SMTP_STARTTLS", "1").strip().lower()
        return value not in ("0", "false", "no", "off")

    smtp_from = Unicode(
        help="""The ``From`` address of invitation e-mails.

        Defaults to ``$DATAPILOT_SMTP_FROM``, else ``datapilot@<smtp_host>``.

        Example::

            c.DataService.smtp_from = "Datapilot <datapilot@example.org>"
        """,
    ).tag(config=True)

    @default("smtp_from")
    def _default_smtp_from(self) -> str:
        return os.environ.get("DATAPILOT_SMTP_FROM") or f"datapilot@{self.smtp_host or 'localhost'}"

    smtp_user = Unicode(
        help="""The SMTP login, when the server asks for one (with ``smtp_password``).

        Defaults to ``$DATAPILOT_SMTP_USER``; the password comes from
        ``$DATAPILOT_SMTP_PASSWORD`` (an environment variable of the service only).

        Example::

            c.DataService.smtp_user = "datapilot"
        """,
    ).tag(config=True)

    @default("smtp_user")
    def _default_smtp_user(self) -> str:
        return os.environ.get("DATAPILOT_SMTP_USER", "")

    server_poll_interval = Integer(
        help="""Seconds between two looks at the hub's running notebook servers.

        Each look records server time (``server_seconds`` usage) and stops servers
        idle longer than their organization's ``idle_timeout`` setting. 0 turns it off.
        Defaults to ``$DATAPILOT_SERVER_POLL_INTERVAL``, else 60.

        Example::

            c.DataService.server_poll_interval = 30
        """,
    ).tag(config=True)

    @default("server_poll_interval")
    def _default_server_poll_interval(self) -> int:
        return int(os.environ.get("DATAPILOT_SERVER_POLL_INTERVAL", "60"))

    proxy_only = Bool(
        help="""Take connections only from root's processes: the proxy and the hub.

        With isolation (the hub runs as root, notebook servers under accounts of their
        own) a kernel must not reach the service but through the proxy, which records
        every caller's address. Off when the proxy runs elsewhere or as another account.
        Defaults to ``$DATAPILOT_PROXY_ONLY`` (set by ``install_datapilot``), else off.

        Example::

            c.DataService.proxy_only = True
        """,
    ).tag(config=True)

    @default("proxy_only")
    def _default_proxy_only(self) -> bool:
        return os.environ.get("DATAPILOT_PROXY_ONLY", "").strip().lower() in ("1", "true", "yes")

    token_cache_max_age = Integer(
        20,
        help="""Seconds the service trusts what JupyterHub said about a token or login cookie.

        A revoked or expired token is refused at most this long after the fact (a removed
        member is refused at once: membership is read from the catalog on every call).
        Lower means more calls to the hub's API.

        Example::

            c.DataService.token_cache_max_age = 10
        """,
    ).tag(config=True)

    insights_sample_rows = Integer(
        help="""Rows of a dataset version the insights look at, at most (default 200,000).

        A larger version is sampled: rows drawn uniformly at random, always the same
        for one version; each insight states the sample it was computed on. The sample
        is held in memory while the insights are computed (about 100 bytes a row and
        column). Repeated rows are counted over the whole version. Defaults to
        ``$DATAPILOT_INSIGHTS_SAMPLE_ROWS``.

        Example::

            c.DataService.insights_sample_rows = 500_000
        """,
    ).tag(config=True)

    @default("insights_sample_rows")
    def _default_insights_sample_rows(self) -> int:
        return int(os.environ.get("DATAPILOT_INSIGHTS_SAMPLE_ROWS") or 200_000)

    insights_workers = Integer(
        1,
        help="""Insight computations that run at once; more wait their turn.

        Each holds its sample in memory and keeps a core busy for a few seconds; a
        version's insights are computed once and then read from storage.

        Example::

            c.DataService.insights_workers = 2
        """,
    ).tag(config=True)

    @property
    def limits(self) -> Limits:
        """The upload bounds, as the ingestion pipeline takes them."""
        return Limits(
            max_uncompressed=self.max_uncompressed_size,
            max_ratio=self.max_compression_ratio,
            max_columns=self.max_columns,
            max_cell_bytes=self.max_cell_bytes,
            max_line_bytes=self.max_line_bytes,
        )

    audit_retention_days = Integer(
        365,
        help="""Days an audit event is kept; older events are removed (0 keeps them all).

        The data service removes them when it starts and once a day after.

        Example::

            c.DataService.audit_retention_days = 90
        """,
    ).tag(config=True)

    audit_refusal_window = Integer(
        help="""Seconds over which a caller's refused calls (429) make one audit event.

        A flood of refused calls is not stored one row each: the calls of one caller and
        action in one window become one event whose ``details.count`` says how many,
        written when the window closes (checked every quarter window) and when the
        service stops. The request log shows 429 answers at debug level only; each write
        logs one line with the totals.
        Defaults to ``$DATAPILOT_AUDIT_REFUSAL_WINDOW``, else 60.

        Example::

            c.DataService.audit_refusal_window = 300
        """,
    ).tag(config=True)

    @default("audit_refusal_window")
    def _default_audit_refusal_window(self) -> int:
        return int(os.environ.get("DATAPILOT_AUDIT_REFUSAL_WINDOW", "60"))

    @validate("audit_refusal_window")
    def _check_audit_refusal_window(self, proposal) -> int:
        if proposal["value"] < 1:
            raise TraitError("audit_refusal_window must be 1 second or more")
        return proposal["value"]

    rate_limits = Dict(
        help="""Rate limits of the expensive calls, per user and per organization.

        ``{call: {"user": rate, "org": rate}}``: ``call`` is ``ingest`` (uploads and
        workspace ingests), ``transform``, ``insights`` or ``download`` (data reads,
        ``dp.load``); a rate is ``"<count>/<unit>"`` or ``"<count>/<n> <unit>s"`` with a
        unit of second, minute, hour or day, and ``None`` means no limit. A call left out
        keeps its default (see ``datapilot_hub.ratelimit.DEFAULT_RATE_LIMITS``). Over a
        limit the API answers 429 ``rate_limited`` with ``Retry-After``. The budgets live
        in the process, or in Redis when ``DatapilotConfig.redis_url`` is set (shared by
        every replica of the service).
        Defaults to ``$DATAPILOT_RATE_LIMITS`` (the same as JSON), else no overrides.

        Example::

            c.DataService.rate_limits = {
                "ingest": {"user": "30/minute", "org": "120/minute"},
                "download": {"user": "1000/hour", "org": None},
            }
        """,
    ).tag(config=True)

    @default("rate_limits")
    def _default_rate_limits(self) -> dict:
        value = os.environ.get("DATAPILOT_RATE_LIMITS", "")
        return json.loads(value) if value.strip() else {}

    @validate("rate_limits")
    def _check_rate_limits(self, proposal) -> dict:
        try:
            parse_rate_limits({**DEFAULT_RATE_LIMITS, **proposal["value"]})
        except ValueError as e:
            raise TraitError(str(e)) from None
        return proposal["value"]

    aggregate_memory_limit = Unicode(
        "1GB",
        help="""Memory one aggregation may use before DuckDB spills to disk.

        Each ``POST .../aggregate`` runs in a DuckDB connection of its own with this
        ``memory_limit``; past it, DuckDB writes its intermediate state to
        ``$DATAPILOT_HOME/service/tmp/duckdb`` instead of growing. A DuckDB size such as
        ``"512MB"`` or ``"4GB"``.

        Example::

            c.DataService.aggregate_memory_limit = "4GB"
        """,
    ).tag(config=True)

    aggregate_threads = Integer(
        0,
        help="""Threads one aggregation may use; 0 for as many as the machine has cores.

        Example::

            c.DataService.aggregate_threads = 2
        """,
    ).tag(config=True)

    rate_limit_prefix = Unicode(
        help="""Prefix of the rate-limit keys in Redis.

        Replicas of one service share it; two deployments that share a Redis use two.
        Defaults to ``$DATAPILOT_RATE_LIMIT_PREFIX``, else ``datapilot:rl:``.

        Example::

            c.DataService.rate_limit_prefix = "acme-datapilot:rl:"
        """,
    ).tag(config=True)

    @default("rate_limit_prefix")
    def _default_rate_limit_prefix(self) -> str:
        return os.environ.get("DATAPILOT_RATE_LIMIT_PREFIX") or "datapilot:rl:"

    @property
    def api_prefix(self) -> str:
        """The public URL path of the API, ending in ``/``."""
        return url_path_join(self.service_prefix, "api/v1/")

    storage_gateway_url = Unicode(
        help="""The data service's URL as an external Dask scheduler's workers reach it.

        Workers of an external scheduler (``DATAPILOT_DASK_SCHEDULER``) read and write
        storage only through the service's storage gateway, at
        ``{storage_gateway_url}api/v1/gateway/files``, with a capability per job. Defaults
        to ``$DATAPILOT_STORAGE_GATEWAY_URL``, else the proxy on this machine plus the
        service's prefix (right when the workers run here too).

        Example::

            c.DataService.storage_gateway_url = "https://data.example.com/services/datapilot/"
        """,
    ).tag(config=True)

    @default("storage_gateway_url")
    def _default_storage_gateway_url(self) -> str:
        env = os.environ.get("DATAPILOT_STORAGE_GATEWAY_URL")
        if env:
            return env
        from .._install import _proxy_url_here

        return _proxy_url_here(self.dp_config) + self.service_prefix

    storage_gateway_ttl = Float(
        6 * 3600.0,
        help="""Seconds a job's storage capability lives at most.

        A capability ends with its job anyway (success, failure, cancel); this bounds a
        job that never ends. Defaults to ``$DATAPILOT_STORAGE_GATEWAY_TTL``, else six hours.

        Example::

            c.DataService.storage_gateway_ttl = 3600
        """,
    ).tag(config=True)

    @default("storage_gateway_ttl")
    def _default_storage_gateway_ttl(self) -> float:
        return float(os.environ.get("DATAPILOT_STORAGE_GATEWAY_TTL") or 6 * 3600)

    def initialize(self, argv: list[str] | None = None) -> None:
        """Parse the command line and configuration; open catalog and storage."""
        super().initialize(argv)
        # the settings of jupyterhub_config.py for this service (install_datapilot), then
        # a configuration file of its own
        from_hub = os.environ.get("DATAPILOT_SERVICE_CONFIG")
        if from_hub:
            self.update_config(Config(json.loads(from_hub)))
        if self.config_file:
            self.load_config_file(self.config_file)
        # the domain modules log under "datapilot_hub": into the service's log, at its level
        package_log = logging.getLogger("datapilot_hub")
        package_log.setLevel(self.log_level)
        package_log.propagate = False
        for handler in self.log.handlers:
            if handler not in package_log.handlers:  # (initialized again in one process)
                package_log.addHandler(handler)
        _use_jemalloc()
        self.dp_config = DatapilotConfig.instance(config=self.config)
        self.dp_config.prepare_service_dirs()
        self.catalog = Catalog(self.dp_config.db_url)
        if self.upgrade_db:
            self.catalog.upgrade()
        self.storage = storage_from_config(self.dp_config)
        self.hub = HubClient()
        # quotas and metering against the configured plans (the trait is the table)
        self.quotas = Plans(self.catalog, self.plans, self.default_plan)
        self.orgs = OrgService(self.catalog, self.hub, self.quotas, self.storage)
        self.org_settings = OrgSettingsService(self.catalog, self.quotas)
        self.invitations = InvitationService(self.catalog, self.hub, self.quotas)
        self.mailer = Mailer(
            host=self.smtp_host,
            port=self.smtp_port,
            sender=self.smtp_from,
            user=self.smtp_user,
            password=os.environ.get("DATAPILOT_SMTP_PASSWORD", ""),
            starttls=self.smtp_starttls,
        )
        self.servers = ServerWatcher(self.catalog, self.hub, self.quotas)
        # the organizations' dashboard servers, and the read-only tokens of their viewers
        self.runtime_servers = RuntimeServers(self.catalog, self.hub)
        self.viewer_tokens = ViewerTokens(self.dp_config.service_home / "viewer_token_key")
        self.datasets = DatasetService(self.catalog, self.storage)
        self.insights = InsightService(
            self.datasets,
            self.storage,
            sample_rows=self.insights_sample_rows,
            workers=self.insights_workers,
            narrator=Narrator(config=self.config),
        )
        spill = self.dp_config.tmp_dir / "duckdb"
        spill.mkdir(exist_ok=True)
        self.aggregates = AggregateService(
            self.datasets,
            self.storage,
            Engine(self.storage, self.aggregate_memory_limit, self.aggregate_threads, str(spill)),
        )
        self.charts = ChartService(self.datasets, self.aggregates)
        self.dashboards = DashboardService(self.catalog, self.storage, self.service_prefix)
        self.jobs = JobRunner(self.catalog, self.storage, self.job_workers)
        self.ingestor = Ingestor(
            self.catalog, self.storage, self.limits, str(self.dp_config.tmp_dir)
        )
        # an external scheduler's workers are not the service's: they get capabilities of
        # the storage gateway, never the storage (compute.storage_gateway)
        self.storage_gateway = None
        if compute.external(self.dp_config):
            self.storage_gateway = StorageGateway(
                self.catalog, self.storage_gateway_url, self.storage_gateway_ttl
            )
        compute.set_storage_gateway(self.storage_gateway)
        compute.use_cluster_defaults()
        self.transforms = TransformService(
            self.catalog,
            self.storage,
            self.datasets,
            self.ingestor,
            self.jobs,
            lambda: compute.get_client(self.dp_config),
            self.quotas.record_job,
        )
        self.recipes = SavedRecipes(self.catalog, self.transforms, self.quotas.check_upload)
        # a new version of a source refreshes the recipes that ask for it
        self.ingestor.on_publish = self.recipes.on_publish
        self.jobs.sweep_stale()
        self._clean_tmp()
        self.audit = AuditLog(
            self.catalog, self.audit_retention_days, refusal_window=self.audit_refusal_window
        )
        self.purge_audit()
        self.rate_limiter = rate_limiter_from_config(
            self.rate_limits, self.dp_config.redis_url, self.rate_limit_prefix
        )

    def purge_audit(self) -> None:
        """Remove the audit events older than ``audit_retention_days``."""
        try:
            removed = self.audit.purge()
        except Exception:
            self.log.exception("Could not purge old audit events")
            return
        if removed:
            self.log.info(
                "Removed %d audit events older than %d days", removed, self.audit_retention_days
            )

    async def purge_audit_daily(self, stop: asyncio.Event) -> None:
        """Purge old audit events once a day until ``stop`` is set."""
        loop = asyncio.get_running_loop()
        while not stop.is_set():
            try:
                await asyncio.wait_for(stop.wait(), timeout=86400)
            except asyncio.TimeoutError:
                await loop.run_in_executor(None, self.purge_audit)

    async def flush_refusals(self, stop: asyncio.Event) -> None:
        """Write the refused calls of closed windows, every quarter window, until ``stop``."""
        loop = asyncio.get_running_loop()
        while not stop.is_set():
            try:
                await asyncio.wait_for(stop.wait(), timeout=self.audit_refusal_window / 4)
            except asyncio.TimeoutError:
                await loop.run_in_executor(None, self.audit.flush)

    def _clean_tmp(self) -> None:
        # uploads and spools in tmp/ belong to jobs of a previous run that died with it
        for path in self.dp_config.tmp_dir.glob("*"):
            if path.name.startswith(("upload-", "spool-")):
                self.log.warning("Removing %s left by a previous run", path)
                path.unlink(missing_ok=True)

    def submit_ingest(self, job_id: str, request: IngestRequest) -> None:
        """Run an ingestion job in the background; the uploaded file is removed after."""

        def work(handle):
            started = time.monotonic()
            result = None
            try:
                result = self.ingestor.run(request, handle)
                return result
            finally:
                try:
                    os.unlink(request.source_path)
                except FileNotFoundError:
                    pass
                self._meter_job(request, job_id, time.monotonic() - started, result)
                _release_memory()

        self.jobs.submit(job_id, request.org_id, work)

    def _meter_job(self, request: IngestRequest, job_id: str, seconds: float, result) -> None:
        # metering must never fail the job it measures
        try:
            self.quotas.record_job(
                request.org_id, request.user, {"id": job_id, "seconds": seconds, "result": result}
            )
        except Exception:
            self.log.exception("Could not record the usage of job %s", job_id)

    async def watch_servers(self, stop: asyncio.Event) -> None:
        """Every :attr:`server_poll_interval` seconds: meter server time, cull idle servers."""
        while not stop.is_set():
            try:
                await asyncio.wait_for(stop.wait(), self.server_poll_interval)
                return
            except asyncio.TimeoutError:
                pass
            try:
                done = await self.servers.tick()
                if done["culled"]:
                    self.log.info("Culled idle servers: %s", done["culled"])
            except Exception:
                self.log.exception("Server watch failed; trying again next time")

    async def health_checks(self) -> dict[str, Any]:
        """Catalog, storage and compute checks, each ``{"status": "ok"|"error", ...}``."""

        def check(fn):
            try:
                return {"status": "ok", **fn()}
            except Exception as e:
                return {"status": "error", "message": f"{type(e).__name__}: {e}"}

        loop = asyncio.get_running_loop()
        catalog = await loop.run_in_executor(
            None,
            check,
            lambda: {"dialect": self.catalog.dialect, "revision": self.catalog.current_revision()},
        )
        storage = await loop.run_in_executor(None, check, self.storage.check)
        return {"catalog": catalog, "storage": storage, "compute": compute.status(self.dp_config)}

    def make_app(self) -> web.Application:
        """The tornado application with every handler under the service prefix."""
        # the handlers (HubOAuthenticated, and the OAuth callback) use HubOAuth's
        # singleton: make it the configured one, not a 300 s cache of its own
        hub_auth = HubOAuth.instance(config=self.config, cache_max_age=self.token_cache_max_age)
        api = [(url_path_join(self.api_prefix, path), h) for path, h in default_handlers]
        handlers = [
            *api,
            (url_path_join(self.api_prefix, r"(.*)"), NotFoundAPIHandler),
            (url_path_join(self.service_prefix, "oauth_callback"), HubOAuthCallbackHandler),
            # (the pages end with the styled 404 for every other path)
            *[(url_path_join(self.service_prefix, spec[0]), *spec[1:]) for spec in page_handlers],
        ]
        return BodyLimitedApplication(
            handlers,
            hub_auth=hub_auth,
            viewer_tokens=self.viewer_tokens,
            datapilot=self,
            cookie_secret=os.urandom(32),
            log_function=self._log_request,
            websocket_ping_interval=30,
            max_body_size=self.max_body_size,
            max_publish_size=self.max_publish_size,
            # a refused body is read and dropped up to the upload limit (see _bodies)
            max_drain_size=max(self.max_upload_size, self.max_publish_size) + 65536,
            body_timeout=self.body_timeout,
        )

    def _log_request(self, handler: web.RequestHandler) -> None:
        status = handler.get_status()
        level = logging.INFO if status < 400 else logging.WARNING if status < 500 else logging.ERROR
        if status == 429:
            # refusals come in floods: the audit log counts them and logs the totals
            level = logging.DEBUG
        self.log.log(
            level,
            "%d %s %s %.1fms%s",
            status,
            handler.request.method,
            handler.request.uri,
            1000 * handler.request.request_time(),
            # the client went away midway (APIHandler.on_connection_close)
            " (closed by the client)" if getattr(handler, "aborted", False) else "",
        )

    def start(self) -> None:
        """Listen and serve until SIGTERM or SIGINT."""
        asyncio.run(self.serve())

    async def serve(self, stop: asyncio.Event | None = None) -> None:
        """Serve until ``stop`` is set (or a signal arrives)."""
        app = self.make_app()
        server = PeerCheckingHTTPServer(
            app,
            # only the proxy and the hub (root) may connect: everyone else comes through
            # the proxy, so the service sees every caller's address the same way
            allowed_uids={0} if self.proxy_only else None,
            # the audit log reads the proxy's X-Forwarded-For itself (handlers.base.client_address):
            # tornado's xheaders would record whatever X-Real-Ip a client sends
            xheaders=False,
            # every handler's limit; the upload raises its own once the caller may import
            max_body_size=self.max_body_size,
            body_timeout=self.body_timeout,
            idle_connection_timeout=self.idle_connection_timeout,
            # uploads stream through in 1 MiB pieces (tornado's default, 64 KiB, costs a
            # Python call per piece: a third of a 200 MB upload's time)
            chunk_size=1024**2,
        )
        url = urlparse(self.bind_url)
        server.listen(url.port or 80, url.hostname or "127.0.0.1")
        from tornado.ioloop import IOLoop

        self.jobs.loop = IOLoop.current()
        stop = stop or asyncio.Event()
        loop = asyncio.get_running_loop()
        # exit promptly on SIGTERM: HubAuth's cache thread would otherwise keep the
        # process (and the hub's shutdown) waiting
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        self.log.info("Datapilot data service at %s%s", self.bind_url, self.service_prefix)
        purger = asyncio.create_task(self.purge_audit_daily(stop))
        refusals = asyncio.create_task(self.flush_refusals(stop))
        try:
            await self.orgs.sync_hub_groups()
        except Exception:
            self.log.exception("Could not sync hub groups at start; will retry on changes")
        watcher = None
        if self.hub.configured and self.server_poll_interval > 0:
            watcher = asyncio.create_task(self.watch_servers(stop))
        await stop.wait()
        if watcher is not None:
            await watcher
        server.stop()
        await purger
        await refusals
        await self.rate_limiter.close()
        self.jobs.shutdown()
        self.insights.shutdown()
        await self.hub.close()
        compute.close()
        # the refusals of the open windows, and of calls answered while stopping
        self.audit.flush(everything=True)
        self.catalog.dispose()
        self.log.info("Datapilot data service stopped")


def _use_jemalloc() -> None:
    """Arrow's jemalloc pool, handing freed memory back to the system after 100 ms.

    Measured with benchmarks/ingest.py: the default mimalloc pool kept the service's
    peak RSS about 100 MB higher during an ingestion; jemalloc returning memory at once
    (0 ms) made the ingestion a third slower, 100 ms costs a few MB.
    """
    import pyarrow as pa

    try:
        pa.set_memory_pool(pa.jemalloc_memory_pool())
        pa.jemalloc_set_decay_ms(100)
    except NotImplementedError:  # a pyarrow built without jemalloc
        pass


def _release_memory() -> None:
    """Give the memory an ingestion freed back to the system now, not at the next one.

    jemalloc purges only when it allocates again, and glibc keeps freed heap for later:
    without this a service at rest kept some 80 MB of a finished job (measured).
    """
    import pyarrow as pa

    pa.default_memory_pool().release_unused()
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):  # not glibc
        pass


def main(argv: list[str] | None = None) -> None:
    """``datapilot-service``: run the data service (JupyterHub starts it)."""
    app = DataService.instance()
    app.initialize(argv)
    app.start()
    # Everything is stopped, flushed and closed (serve); what is left is the interpreter's
    # own teardown, which took 1.5 s and more (joining idle worker threads) while the hub,
    # stopping its services one after the other, waits for this process to be gone.
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)
