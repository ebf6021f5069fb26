"""Fixtures: catalogs on SQLite and PostgreSQL, storage (local and S3), a real JupyterHub."""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from sqlalchemy import text

from datapilot_hub.catalog import Catalog
from datapilot_hub.domain._identity import Caller, org_context
from datapilot_hub.domain.orgs import OrgService
from datapilot_hub.hubapi import HubClient
from datapilot_hub.storage import Storage

from .utils import STARTED_HUBS, free_port, new_home, running_hub

# the maintenance database of the local cluster; make test starts it when it is down
PG_ADMIN_URL = os.environ.get(
    "DATAPILOT_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)
REQUIRE_PG = os.environ.get("DATAPILOT_TEST_REQUIRE_POSTGRES") == "1"


def _pg_admin():
    import psycopg

    url = PG_ADMIN_URL.replace("postgresql+psycopg://", "postgresql://")
    return psycopg.connect(url, autocommit=True, connect_timeout=5)


class ScratchDatabases:
    """PostgreSQL databases made for this run and dropped after it."""

    def __init__(self) -> None:
        self.names: list[str] = []

    def create(self) -> str:
        name = f"datapilot_test_{secrets.token_hex(4)}"
        with _pg_admin() as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        self.names.append(name)
        base = PG_ADMIN_URL.rsplit("/", 1)[0]
        return f"{base}/{name}"

    def drop_all(self) -> None:
        with _pg_admin() as conn:
            for name in self.names:
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session", autouse=True)
def remove_test_accounts():
    """Whatever accounts and groups the session's hubs created go at its end."""
    yield
    for hub in STARTED_HUBS:
        hub.remove_accounts()


@pytest.fixture
def hub_home():
    """A state directory for a :class:`~.utils.HubProcess` a test starts itself."""
    home = new_home()
    yield home
    if os.environ.get("DATAPILOT_TEST_KEEP_HOME") != "1":
        shutil.rmtree(home, ignore_errors=True)


@pytest.fixture(scope="session")
def pg_databases():
    try:
        _pg_admin().close()
    except Exception as e:
        if REQUIRE_PG:
            pytest.fail(f"PostgreSQL is required (make test starts it) but unreachable: {e}")
        pytest.skip(f"PostgreSQL not reachable at {PG_ADMIN_URL}: {e}")
    dbs = ScratchDatabases()
    yield dbs
    dbs.drop_all()


@pytest.fixture(scope="session")
def pg_catalog(pg_databases):
    catalog = Catalog(pg_databases.create())
    catalog.upgrade()
    yield catalog
    catalog.dispose()


BACKENDS = ["sqlite", pytest.param("postgresql", marks=pytest.mark.db)]


@pytest.fixture(params=BACKENDS)
def catalog(request, tmp_path):
    """An empty, migrated catalog on each backend."""
    if request.param == "sqlite":
        cat = Catalog(f"sqlite:///{tmp_path}/catalog.sqlite")
        cat.upgrade()
        yield cat
        cat.dispose()
        return
    cat = request.getfixturevalue("pg_catalog")
    with cat.engine.begin() as conn:
        conn.execute(
            text(
                "TRUNCATE organizations, memberships, datasets, dataset_versions, jobs,"
                " audit_events RESTART IDENTITY CASCADE"
            )
        )
    yield cat


@pytest.fixture
def storage(tmp_path):
    return Storage(str(tmp_path / "storage"))


@pytest.fixture
def orgs(catalog):
    """Two organizations, A (``alpha``) and B (``beta``), each with members of every role."""
    service = OrgService(catalog, HubClient(api_url="", token=""))
    return service


@pytest.fixture
async def two_orgs(orgs, catalog):
    """Contexts: ``ctx["alpha", "alice"]`` etc. Alpha: alice analyst, vera viewer,
    mona manager, ada admin. Beta: bob analyst."""
    await orgs.create(Caller("ada"), "alpha", "Alpha Ltd")
    await orgs.create(Caller("bea"), "beta", "Beta Inc")
    admin_a = org_context(catalog, Caller("ada"), "alpha")
    admin_b = org_context(catalog, Caller("bea"), "beta")
    for user, role in (("alice", "analyst"), ("vera", "viewer"), ("mona", "manager")):
        await orgs.set_member(admin_a, user, role)
    await orgs.set_member(admin_b, "bob", "analyst")
    ctx = {}
    for org, users in (("alpha", ("ada", "alice", "vera", "mona")), ("beta", ("bea", "bob"))):
        for user in users:
            ctx[org, user] = org_context(catalog, Caller(user), org)
    return ctx


@pytest.fixture(scope="session")
def moto_server(tmp_path_factory):
    """moto's standalone S3-compatible server on a free loopback port."""
    port = free_port()
    exe = Path(sys.executable).with_name("moto_server")
    proc = subprocess.Popen(
        [str(exe), "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    import httpx

    for _ in range(100):
        try:
            httpx.get(url, timeout=1)
            break
        except httpx.HTTPError:
            time.sleep(0.1)
    yield url
    proc.terminate()
    proc.wait(10)


@pytest.fixture
def s3_storage(moto_server, monkeypatch):
    """Storage on a fresh bucket of the moto server."""
    import boto3

    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    bucket = f"dp-{secrets.token_hex(4)}"
    boto3.client("s3", endpoint_url=moto_server).create_bucket(Bucket=bucket)
    return Storage(f"s3://{bucket}/datapilot", {"endpoint_url": moto_server})


@pytest.fixture(scope="module", params=BACKENDS)
def hub(request, tmp_path_factory):
    """A running JupyterHub + proxy + data service on a free loopback port, per catalog backend."""
    with running_hub(request, tmp_path_factory, request.param) as proc:
        yield proc


@pytest.fixture(scope="module")
def sqlite_hub(request, tmp_path_factory):
    """A running JupyterHub on the embedded defaults (SQLite catalog, local storage)."""
    with running_hub(request, tmp_path_factory, "sqlite") as proc:
        yield proc
