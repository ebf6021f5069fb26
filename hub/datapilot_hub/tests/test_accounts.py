"""Account and group names, the state directory's layout, and who may connect to the service."""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import stat
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from datapilot_hub import accounts
from datapilot_hub.configuration import DatapilotConfig
from datapilot_hub.service._peers import peer_uid

needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="needs root (make test runs as root)")


def test_account_names_are_readable_and_fit():
    assert accounts.account_name("dp-", "alice", "acme") == "dp-acme_alice"
    long = accounts.account_name("dp-", "a-very-long-user-name", "an-organization-slug-of-thirty")
    assert len(long) <= accounts.NAME_MAX
    assert long.startswith("dp-an-organization") and "__" in long
    for user in ("Alice", "a.b", "a b", "élodie", "a__b", "_x"):
        name = accounts.account_name("dp-", user, "acme")
        assert accounts.SYSTEM_NAME_RE.fullmatch(name), (user, name)
        assert "__" in name, (user, name)  # changed names are hashed


def test_names_never_collide():
    users = ["alice", "a.lice", "alice_", "x" * 40, "x" * 41, "b-c", "c", "a_1234567"]
    orgs = ["acme", "acme-b", "a" * 30, "a" * 29 + "b", "b"]
    names = {accounts.account_name("dp-", u, o) for u in users for o in orgs}
    assert len(names) == len(users) * len(orgs)
    # accounts and groups are told apart by "_", and slugs never hold one
    groups = {accounts.org_group("dp-", o) for o in orgs}
    assert all("_" in n for n in names) and not any("_" in g for g in groups)
    # org "a-b" with user "c" and org "a" with user "b-c" are not the same account
    assert accounts.account_name("dp-", "c", "a-b") != accounts.account_name("dp-", "b-c", "a")
    # a hashed group name holds "--", which no slug (so no plain group name) does
    long_group = accounts.org_group("dp-", "o" * 30)
    assert len(long_group) <= accounts.NAME_MAX and "--" in long_group
    assert accounts.org_group("dp-", "acme") == "dp-acme"


def test_reachable_by_others():
    base = Path(tempfile.mkdtemp())  # under /tmp, which everyone passes through
    try:
        closed = base / "open" / "closed"
        closed.mkdir(parents=True)
        base.chmod(0o711)
        (base / "open").chmod(0o755)
        closed.chmod(0o700)
        assert accounts.reachable_by_others(closed / "file") == str(closed)
        assert accounts.reachable_by_others(closed) == str(closed)
        closed.chmod(0o711)
        assert accounts.reachable_by_others(closed / "file") is None
        base.chmod(0o700)
        assert accounts.reachable_by_others(closed) == str(base)
    finally:
        shutil.rmtree(base)


def _config(home: Path, **traits) -> DatapilotConfig:
    config = DatapilotConfig(home=str(home), **traits)
    return config


@needs_root
def test_the_state_directory_gives_each_process_only_what_it_needs(tmp_path):
    home = tmp_path / "home"
    prefix = f"u{os.getpid() % 100000:05d}-"
    config = _config(home, account_prefix=prefix, service_account=f"{prefix[:-1]}_svc")
    config.isolation = "accounts"
    try:
        config.prepare_home()
        secret = config.secret("proxy_token")
        service = pwd.getpwnam(config.service_account)

        def mode(p):
            return oct(stat.S_IMODE(os.stat(p).st_mode))

        assert mode(home) == "0o711"
        assert mode(home / "runtime") == mode(home / "logs") == "0o700"
        assert mode(home / "runtime" / "proxy_token") == "0o600" and len(secret) == 64
        assert mode(home / "jupyterhub.sqlite") == "0o600"
        assert mode(home / "homes") == mode(home / "shared") == "0o711"
        for d in (home / "service", home / "service" / "storage", home / "service" / "tmp"):
            assert mode(d) == "0o700"
            assert os.stat(d).st_uid == service.pw_uid
        assert service.pw_dir == str(home / "service") and service.pw_shell == accounts.NOLOGIN
        assert config.db_url == f"sqlite:///{home}/service/catalog.sqlite"
    finally:
        accounts.remove_installation(home, prefix)


@needs_root
def test_an_older_layout_is_moved_into_the_services_directory(tmp_path):
    home = tmp_path / "home"
    (home / "storage" / "org-1").mkdir(parents=True)
    (home / "storage" / "org-1" / "x.parquet").write_bytes(b"x")
    (home / "catalog.sqlite").write_bytes(b"")
    prefix = f"v{os.getpid() % 100000:05d}-"
    config = _config(home, account_prefix=prefix, service_account=f"{prefix[:-1]}_svc")
    config.isolation = "accounts"
    try:
        config.prepare_home()
        moved = home / "service" / "storage" / "org-1" / "x.parquet"
        assert moved.read_bytes() == b"x" and not (home / "storage").exists()
        uid = pwd.getpwnam(config.service_account).pw_uid
        assert os.stat(moved).st_uid == uid
        assert os.stat(home / "service" / "catalog.sqlite").st_uid == uid
    finally:
        accounts.remove_installation(home, prefix)


def test_isolation_defaults_to_accounts_as_root(monkeypatch):
    monkeypatch.delenv("DATAPILOT_ISOLATION", raising=False)
    assert DatapilotConfig().isolation == ("accounts" if os.geteuid() == 0 else "off")
    monkeypatch.setenv("DATAPILOT_ISOLATION", "off")
    assert not DatapilotConfig().isolated


def test_the_service_account_must_not_look_like_a_servers():
    with pytest.raises(Exception, match="prefix"):
        DatapilotConfig(account_prefix="dp-", service_account="dp-acme_svc")
    with pytest.raises(Exception, match="account_prefix"):
        DatapilotConfig(account_prefix="Bad_")


@needs_root
def test_the_peer_of_a_loopback_connection_is_known_by_its_account():
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        port = server.getsockname()[1]
        # a client running as `nobody`, like a kernel under its own account
        client = subprocess.Popen(
            [
                "setpriv",
                "--reuid=nobody",
                "--regid=nogroup",
                "--clear-groups",
                sys.executable,
                "-c",
                f"import socket, time; s = socket.create_connection(('127.0.0.1', {port}));"
                " time.sleep(5)",
            ]
        )
        try:
            conn, peer = server.accept()
            with conn:
                assert peer_uid(peer, conn.getsockname()) == pwd.getpwnam("nobody").pw_uid
            with socket.create_connection(("127.0.0.1", port)) as mine:
                conn, peer = server.accept()
                with conn:
                    assert peer_uid(peer, conn.getsockname()) == 0
                    assert mine.getsockname() == peer
        finally:
            client.kill()
            client.wait()
