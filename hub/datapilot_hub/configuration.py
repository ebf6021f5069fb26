"""Settings shared by the hub configuration, the data service and the migration command.

Each setting is a trait whose default comes from one ``DATAPILOT_*`` environment
variable, read when the trait is first used (never at import).
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from traitlets import Integer, Unicode, default, validate
from traitlets.config import SingletonConfigurable

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

        Defaults to ``$DATAPILOT_DB_URL``, else a SQLite file under ``home``.
        Use ``postgresql+psycopg://user@host/db`` for PostgreSQL with row-level security.

        Example::

            c.DatapilotConfig.db_url = "postgresql+psycopg://datapilot@db/datapilot"
        """,
    ).tag(config=True)

    @default("db_url")
    def _default_db_url(self) -> str:
        return os.environ.get("DATAPILOT_DB_URL") or f"sqlite:///{self.home}/catalog.sqlite"

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

        Defaults to ``$DATAPILOT_STORAGE_URL``, else ``<home>/storage``. S3-compatible
        storage: ``s3://bucket/prefix`` with the usual ``AWS_*`` variables, and
        ``$DATAPILOT_S3_ENDPOINT_URL`` for a non-AWS endpoint (MinIO, R2).

        Example::

            c.DatapilotConfig.storage_url = "s3://acme-data/datapilot"
        """,
    ).tag(config=True)

    @default("storage_url")
    def _default_storage_url(self) -> str:
        return os.environ.get("DATAPILOT_STORAGE_URL") or f"{self.home}/storage"

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

    def path(self, *parts: str) -> Path:
        """A path under ``home``.

        Parameters
        ----------
        *parts : str
            Path components below the state directory.
        """
        return Path(self.home, *parts)

    def prepare_home(self) -> Path:
        """Create the state directory and its sub-directories (private to this user)."""
        for sub in ("", "logs", "runtime", "homes", "tmp"):
            self.path(sub).mkdir(mode=0o700, parents=True, exist_ok=True)
        if "://" not in self.storage_url:
            Path(self.storage_url).mkdir(parents=True, exist_ok=True)
        return Path(self.home)

    def secret(self, name: str, nbytes: int = 32) -> str:
        """A random secret kept in ``home/runtime/<name>``, created on first use.

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
        return path.read_text().strip()
