"""The extension loads, registers its routes and reads its configuration."""

from __future__ import annotations

import httpx
import pytest
from traitlets import HasTraits

from datapilot import DatapilotExtension, _jupyter_server_extension_points, default_handlers

from .utils import api_request, assert_error


def test_extension_points() -> None:
    assert _jupyter_server_extension_points() == [
        {"module": "datapilot", "app": DatapilotExtension}
    ]


def test_routes_are_the_default_handlers() -> None:
    app = DatapilotExtension()
    app.initialize_handlers()
    assert app.handlers == default_handlers
    assert all(route.startswith(f"/{app.name}/api/v1/") for route, _ in app.handlers)


async def test_extension_loaded(jp_serverapp, closed_port_url) -> None:
    assert "datapilot" in jp_serverapp.extension_manager.extension_apps
    settings = jp_serverapp.web_app.settings
    assert isinstance(settings["datapilot_http_client"], httpx.AsyncClient)
    assert settings["datapilot_service_url"] == closed_port_url
    assert settings["datapilot_org"] == "acme"


async def test_routes_answer(jp_fetch) -> None:
    # the ingest route is matched before the catch-all, which forwards
    assert_error(
        await api_request(jp_fetch, "ingest", method="POST", body="{"), 400, "invalid_input"
    )
    assert_error(await api_request(jp_fetch, "me"), 502, "service_unavailable")


async def test_client_closed_on_stop(jp_serverapp) -> None:
    client = jp_serverapp.web_app.settings["datapilot_http_client"]
    await jp_serverapp.cleanup_extensions()
    assert client.is_closed


def test_environment_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATAPILOT_URL", "http://127.0.0.1:41234/services/datapilot")
    monkeypatch.setenv("JUPYTERHUB_API_TOKEN", "abc")
    monkeypatch.setenv("DATAPILOT_ORG", "acme")
    app = DatapilotExtension()
    assert app.service_url == "http://127.0.0.1:41234/services/datapilot/"
    assert app.api_token == "abc"
    assert app.org == "acme"
    assert app.max_upload_size == 2 * 1024**3


def test_unset_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("DATAPILOT_URL", "JUPYTERHUB_API_TOKEN", "DATAPILOT_ORG"):
        monkeypatch.delenv(name, raising=False)
    app = DatapilotExtension()
    assert (app.service_url, app.api_token, app.org) == ("", "", "")


@pytest.mark.parametrize("cls", [DatapilotExtension])
def test_config_traits_have_help(cls: type[HasTraits]) -> None:
    traits = cls.class_own_traits(config=True)
    assert traits
    missing = [name for name, trait in traits.items() if not (trait.help or "").strip()]
    assert not missing
