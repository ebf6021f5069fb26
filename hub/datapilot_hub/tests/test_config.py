"""Configuration: every trait documented, env read when used, not at import."""

from __future__ import annotations

import json

import pytest
from traitlets.config import Configurable

from datapilot_hub.compute import DaskCluster
from datapilot_hub.configuration import DatapilotConfig
from datapilot_hub.domain.insights import Narrator
from datapilot_hub.permissions import PERMISSIONS, ROLE_PERMISSIONS, has_permission
from datapilot_hub.service.app import DataService
from datapilot_hub.spawner import DatapilotSpawner

from .utils import HubProcess


@pytest.mark.parametrize(
    "cls", [DatapilotConfig, DataService, DatapilotSpawner, Narrator, DaskCluster]
)
def test_every_config_trait_has_help(cls: type[Configurable]):
    own = set(cls.class_own_traits(config=True))
    for name in own:
        trait = cls.class_traits()[name]
        assert trait.help and len(trait.help.strip()) > 20, f"{cls.__name__}.{name} has no help"
        assert "Example::" in trait.help, f"{cls.__name__}.{name} has no example"


def test_environment_is_read_when_used(monkeypatch, tmp_path):
    monkeypatch.setenv("DATAPILOT_HOME", str(tmp_path))
    monkeypatch.setenv("DATAPILOT_PORT", "8765")
    monkeypatch.delenv("DATAPILOT_DB_URL", raising=False)
    config = DatapilotConfig()
    assert config.port == 8765
    assert config.db_url == f"sqlite:///{tmp_path}/service/catalog.sqlite"
    assert config.storage_url == f"{tmp_path}/service/storage"
    monkeypatch.setenv("DATAPILOT_DB_URL", "postgresql+psycopg://x@y/z")
    assert DatapilotConfig().db_url == "postgresql+psycopg://x@y/z"


def test_secrets_are_created_once_and_private(tmp_path):
    config = DatapilotConfig(home=str(tmp_path))
    first = config.secret("s")
    assert config.secret("s") == first and len(first) == 64
    assert (tmp_path / "runtime" / "s").stat().st_mode & 0o077 == 0


def test_role_table():
    for role, perms in ROLE_PERMISSIONS.items():
        assert perms <= set(PERMISSIONS), role
    assert ROLE_PERMISSIONS["viewer"] < ROLE_PERMISSIONS["analyst"] < ROLE_PERMISSIONS["manager"]
    assert ROLE_PERMISSIONS["manager"] < ROLE_PERMISSIONS["admin"]
    assert not has_permission("viewer", "notebooks:run")
    assert has_permission("analyst", "notebooks:run")
    with pytest.raises(KeyError):
        has_permission("admin", "data:everything")


def test_data_service_settings_in_jupyterhub_config_reach_the_service(hub_home):
    """``c.DataService.*`` below install_datapilot's call applies to the service's process."""
    hub = HubProcess(hub_home, config="c.DataService.allow_self_service_orgs = True")
    hub.start()
    try:
        hub.create_org("acme")
        hub.add_member("acme", "alice", "viewer")
        r = hub.api("POST", "/orgs", hub.user_token("alice"), json={"slug": "alices", "name": "A"})
        assert r.status_code == 201, r.text
    finally:
        hub.stop()


def test_a_setting_the_service_cannot_take_is_named():
    from traitlets.config import Config

    from datapilot_hub._install import service_config_json

    c = Config()
    c.DataService.max_columns = 10
    c.JupyterHub.port = 1  # not the service's
    assert json.loads(service_config_json(c)) == {"DataService": {"max_columns": 10}}
    c.DataService.plans = {"free": {"members": 3}}
    c.DataService.hook = print
    with pytest.raises(ValueError, match="c.DataService.hook"):
        service_config_json(c)
