"""Settings shared by the hub configuration, the data service and the migration command.

Each setting is a trait whose default comes from one ``DATAPILOT_*`` environment
variable, read when the trait is first used (never at import).
"""

from __future__ import annotations

import os
import secrets
import shutil
from pathlib import Path

from traitlets import CaselessStrEnum, Integer, TraitError, Unicode, default, validate
from traitlets.config import SingletonConfigurable

from . import accounts

# the checkout (or install prefix) this package lives in: hub/datapilot_hub/ -> ../..
_CHECKOUT = Path(__file__).resolve().parents[2]


class DatapilotConfig(SingletonConfigurable):
    """Where Datapilot keeps its state and which backends it talks to."""

    home = Unicode(
        help="""Directory for Datapilot's state: databases, storage, logs, runtime files.

        Defaults to ``$DATAPILOT_HOME``, else ``.datapilot/`` in the checkout.

        Example::

            c.DatapilotConfig.home = "/srv/datapilot"
        """,
    ).tag(config=True)

    @default("home")
    def _default_home(self) -> str:
        return os.environ.get("DATAPILOT_HOME") or str(_CHECKOUT / ".datapilot")

    @validate("home")
    def _absolute_home(self, proposal) -> str:
        return str(Path(proposal["value"]).expanduser().resolve())

    ip = Unicode(
        help="""Address the public proxy binds to.

        Defaults to ``$DATAPILOT_IP``, else 127.0.0.1 (loopback only).

        Example::

            c.DatapilotConfig.ip = "0.0.0.0"
        """,
    ).tag(config=True)

    @default("ip")
    def _default_ip(self) -> str:
        return os.environ.get("DATAPILOT_IP") or "127.0.0.1"

    port = Integer(
        help="""Public port of the proxy.

        Defaults to ``$DATAPILOT_PORT``, else 8000.

        Example::

            c.DatapilotConfig.port = 8080
        """,
    ).tag(config=True)

    @default("port")
    def _default_port(self) -> int:
        return int(os.environ.get("DATAPILOT_PORT") or 8000)

    db_url = Unicode(
        help="""SQLAlchemy URL of the catalog database.

        Defaults to ``$DATAPILOT_DB_URL``, else ``<home>/service/catalog.sqlite``.
        Use ``postgresql+psycopg://user@host/db`` for PostgreSQL with row-level security.

        Example::

            c.DatapilotConfig.db_url = "postgresql+psycopg://datapilot@db/datapilot"
        """,
    ).tag(config=True)

    @default("db_url")
    def _default_db_url(self) -> str:
        return os.environ.get("DATAPILOT_DB_URL") or f"sqlite:///{self.service_home}/catalog.sqlite"

    hub_db_url = Unicode(
        help="""SQLAlchemy URL of JupyterHub's own database.

        Defaults to ``$DATAPILOT_HUB_DB_URL``, else a SQLite file under ``home``.

        Example::

            c.DatapilotConfig.hub_db_url = "postgresql://hub@db/jupyterhub"
        """,
    ).tag(config=True)

    @default("hub_db_url")
    def _default_hub_db_url(self) -> str:
        return os.environ.get("DATAPILOT_HUB_DB_URL") or f"sqlite:///{self.home}/jupyterhub.sqlite"

    storage_url = Unicode(
        help="""fsspec URL under which datasets are stored, one ``org-<id>/`` prefix each.

        Defaults to ``$DATAPILOT_STORAGE_URL``, else ``<home>/service/storage``. S3-compatible
        storage: ``s3://bucket/prefix`` with the usual ``AWS_*`` variables, and
        ``$DATAPILOT_S3_ENDPOINT_URL`` for a non-AWS endpoint (MinIO, R2).

        Example::

            c.DatapilotConfig.storage_url = "s3://acme-data/datapilot"
        """,
    ).tag(config=True)

    @default("storage_url")
    def _default_storage_url(self) -> str:
        return os.environ.get("DATAPILOT_STORAGE_URL") or f"{self.service_home}/storage"

    s3_endpoint_url = Unicode(
        help="""Endpoint of an S3-compatible object store (empty for AWS itself).

        Defaults to ``$DATAPILOT_S3_ENDPOINT_URL``.

        Example::

            c.DatapilotConfig.s3_endpoint_url = "http://127.0.0.1:9000"
        """,
    ).tag(config=True)

    @default("s3_endpoint_url")
    def _default_s3_endpoint_url(self) -> str:
        return os.environ.get("DATAPILOT_S3_ENDPOINT_URL", "")

    dask_scheduler = Unicode(
        help="""Address of an existing Dask scheduler; empty starts a LocalCluster.

        Defaults to ``$DATAPILOT_DASK_SCHEDULER``.

        Example::

            c.DatapilotConfig.dask_scheduler = "tcp://dask-scheduler:8786"
        """,
    ).tag(config=True)

    @default("dask_scheduler")
    def _default_dask_scheduler(self) -> str:
        return os.environ.get("DATAPILOT_DASK_SCHEDULER", "")

    admin_token = Unicode(
        help="""A JupyterHub API token with hub-admin rights, for automation and tests.

        Defaults to ``$DATAPILOT_ADMIN_TOKEN``; empty means no such token exists.

        Example::

            c.DatapilotConfig.admin_token = "a-long-random-string"
        """,
    ).tag(config=True)

    @default("admin_token")
    def _default_admin_token(self) -> str:
        return os.environ.get("DATAPILOT_ADMIN_TOKEN", "")

    redis_url = Unicode(
        help="""Redis that replicas of the data service share (rate-limit budgets).

        Defaults to ``$DATAPILOT_REDIS_URL``; empty keeps the budgets in the process,
        which is right for a single data service.

        Example::

            c.DatapilotConfig.redis_url = "redis://127.0.0.1:6379/0"
        """,
    ).tag(config=True)

    @default("redis_url")
    def _default_redis_url(self) -> str:
        return os.environ.get("DATAPILOT_REDIS_URL", "")

    token_max_age = Integer(
        help="""Longest lifetime, in seconds, of a JupyterHub API token asked for via the API.

        Defaults to ``$DATAPILOT_TOKEN_MAX_AGE``, else 30 days. Sets JupyterHub's
        ``token_expires_in_max_seconds``: a token request without an expiry, or a longer
        one, is refused. Tokens of OAuth logins (cookies) expire with the login cookie.

        Example::

            c.DatapilotConfig.token_max_age = 7 * 24 * 3600
        """,
    ).tag(config=True)

    @default("token_max_age")
    def _default_token_max_age(self) -> int:
        return int(os.environ.get("DATAPILOT_TOKEN_MAX_AGE") or 30 * 24 * 3600)

    isolation = CaselessStrEnum(
        ["accounts", "off"],
        help="""How processes of different users and organizations are kept apart on this machine.

        ``accounts``: each notebook server runs under an unprivileged account of its own,
        one per (user, organization), and the data service under another
        (:attr:`service_account`); needs the hub to run as root. ``off``: one-account
        mode, every process runs as the account that started the hub, and nothing
        isolates users from each other (the log and the hub home page say so).
        Defaults to ``$DATAPILOT_ISOLATION``, else ``accounts`` when started as root and
        ``off`` otherwise. In containers (KubeSpawner, DockerSpawner) the containers are
        the boundary instead.

        Example::

            c.DatapilotConfig.isolation = "accounts"
        """,
    ).tag(config=True)

    @default("isolation")
    def _default_isolation(self) -> str:
        value = os.environ.get("DATAPILOT_ISOLATION", "").strip().lower()
        return value or ("accounts" if os.geteuid() == 0 else "off")

    account_prefix = Unicode(
        help="""The start of every operating-system account and group Datapilot creates.

        Server accounts are ``<prefix><org>_<user>``, organization groups
        ``<prefix><org>`` (hashed when longer than 32 characters). Two installations on one
        machine need two prefixes. 1 to 8 lowercase letters, digits and hyphens, starting
        with a letter. Defaults to ``$DATAPILOT_ACCOUNT_PREFIX``, else ``dp-``.

        Example::

            c.DatapilotConfig.account_prefix = "acme-"
        """,
    ).tag(config=True)

    @default("account_prefix")
    def _default_account_prefix(self) -> str:
        return os.environ.get("DATAPILOT_ACCOUNT_PREFIX") or "dp-"

    @validate("account_prefix")
    def _check_account_prefix(self, proposal) -> str:
        if not accounts.PREFIX_RE.fullmatch(proposal["value"]):
            raise TraitError(f"account_prefix {proposal['value']!r}: 1-8 of a-z, 0-9, '-'")
        return proposal["value"]

    service_account = Unicode(
        help="""The unprivileged account the data service runs under (isolation ``accounts``).

        Created at the first start (a system account whose home is ``<home>/service``); it
        owns the catalog, the storage directory and the service's temporary files. It must
        not start with :attr:`account_prefix`. Defaults to ``$DATAPILOT_SERVICE_ACCOUNT``,
        else ``datapilot``.

        Example::

            c.DatapilotConfig.service_account = "datapilot-svc"
        """,
    ).tag(config=True)

    @default("service_account")
    def _default_service_account(self) -> str:
        return os.environ.get("DATAPILOT_SERVICE_ACCOUNT") or "datapilot"

    @validate("service_account")
    def _check_service_account(self, proposal) -> str:
        name = proposal["value"]
        if not accounts.SYSTEM_NAME_RE.fullmatch(name) or name.startswith(self.account_prefix):
            raise TraitError(
                f"service_account {name!r}: a system account name (a-z, 0-9, '_', '-', at most"
                f" 32) that does not start with the account prefix {self.account_prefix!r}"
            )
        return name

    @property
    def isolated(self) -> bool:
        """Whether processes run under accounts of their own (:attr:`isolation`)."""
        return self.isolation == "accounts"

    def path(self, *parts: str) -> Path:
        """A path under ``home``.

        Parameters
        ----------
        *parts : str
            Path components below the state directory.
        """
        return Path(self.home, *parts)

    @property
    def service_home(self) -> Path:
        """The data service's own directory: catalog, storage, temporary files, socket."""
        return self.path("service")

    @property
    def tmp_dir(self) -> Path:
        """Where the data service keeps uploads and spools while it works on them."""
        return self.service_home / "tmp"

    def prepare_home(self) -> Path:
        """Lay out ``home`` so that each process can read only what it needs.

        Called by the hub (as root when isolating) before anything starts::

            home/             0711 hub       (others pass through, cannot list)
              jupyterhub.sqlite, runtime/, logs/   hub only (0600, 0700)
              service/        0700 service account: catalog, storage, tmp
              homes/          0711 hub       one 0700 home per server account
              shared/         0711 hub       one folder per organization (its group)

        Modes are applied at every start, so a layout made by an older version or
        changed by hand is put right. The data service calls
        :meth:`prepare_service_dirs` instead.
        """
        home = self.path()
        home.mkdir(mode=0o711, parents=True, exist_ok=True)
        for sub, mode in (("", 0o711), ("runtime", 0o700), ("logs", 0o700)):
            self.path(sub).mkdir(mode=mode, exist_ok=True)
            self.path(sub).chmod(mode)
        for sub in ("homes", "shared"):
            self.path(sub).mkdir(mode=0o711, exist_ok=True)
            self.path(sub).chmod(0o711)
        self._move_old_layout()
        self.prepare_service_dirs()
        # the hub's own database: created private, before JupyterHub opens it (SQLite
        # gives its journal files the same mode)
        hub_db = self.path("jupyterhub.sqlite")
        if self.hub_db_url == f"sqlite:///{hub_db}":
            hub_db.touch(mode=0o600)
            hub_db.chmod(0o600)
        if self.isolated:
            entry = accounts.ensure_account(
                self.service_account, self.service_home, "Datapilot data service", system=True
            )
            self._chown_service_dirs(entry.pw_uid, entry.pw_gid)
        return home

    def prepare_service_dirs(self) -> None:
        """Create the data service's directories (0700), as whoever runs the service."""
        for d in (self.service_home, self.tmp_dir):
            d.mkdir(mode=0o700, parents=True, exist_ok=True)
        if "://" not in self.storage_url:
            Path(self.storage_url).mkdir(mode=0o700, parents=True, exist_ok=True)

    def _chown_service_dirs(self, uid: int, gid: int) -> None:
        # the directories (everything in them when the account was re-created with a new
        # id), and the catalog files `datapilot-migrate` may have made as root
        service = self.service_home
        storage = [Path(self.storage_url)] if "://" not in self.storage_url else []
        for d in (service, self.tmp_dir, *storage):
            accounts.own_tree(d, uid, gid)
            d.chmod(0o700)
        for f in service.glob("catalog.sqlite*"):
            os.lchown(f, uid, gid)

    def _move_old_layout(self) -> None:
        # before the service had a directory of its own, its files were at the top of home
        service = self.service_home
        for old, new in (
            (self.path("catalog.sqlite"), service / "catalog.sqlite"),
            (self.path("storage"), service / "storage"),
        ):
            if old.exists() and not new.exists():
                service.mkdir(mode=0o700, exist_ok=True)
                shutil.move(old, new)
        shutil.rmtree(self.path("tmp"), ignore_errors=True)

    def secret(self, name: str, nbytes: int = 32) -> str:
        """A random secret kept in ``home/runtime/<name>`` (mode 0600), created on first use.

        Parameters
        ----------
        name : str
            File name of the secret.
        nbytes : int
            Entropy of a new secret.
        """
        path = self.path("runtime", name)
        if not path.exists():
            path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as f:
                f.write(secrets.token_hex(nbytes))
        path.chmod(0o600)
        return path.read_text().strip()
