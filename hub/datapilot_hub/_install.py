"""``install_datapilot(c)``: the whole JupyterHub side of Datapilot in one call."""

from __future__ import annotations

import os
import shutil
import socket
import sys
from pathlib import Path
from typing import Any

from .configuration import DatapilotConfig
from .spawner import DatapilotSpawner

SERVICE_NAME = "datapilot"
AUTOMATION_SERVICE = "datapilot-admin"
_CHECKOUT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    """A TCP port free on loopback now (so several instances run side by side)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def proxy_command() -> str:
    """The configurable-http-proxy installed by ``make`` into deploy/proxy (else PATH)."""
    local = _CHECKOUT / "deploy/proxy/node_modules/.bin/configurable-http-proxy"
    if local.exists():
        return str(local)
    found = shutil.which("configurable-http-proxy")
    if not found:
        raise RuntimeError("configurable-http-proxy not found: run `make proxy`")
    return found


def install_datapilot(c: Any, spawner_to_subclass: type | None = None) -> DatapilotConfig:
    """Configure JupyterHub for Datapilot: service, spawner, roles, auth, ports, state.

    Parameters
    ----------
    c : traitlets.config.Config
        The ``c`` of ``jupyterhub_config.py``.
    spawner_to_subclass : type, optional
        Reserved for other spawners (KubeSpawner); the local-process spawner is used.

    Returns
    -------
    DatapilotConfig
        The settings in effect, for further tweaks in the config file.
    """
    if spawner_to_subclass not in (None, DatapilotSpawner):
        raise NotImplementedError("only the local-process spawner is supported so far")
    dp = DatapilotConfig.instance(config=c)
    home = dp.prepare_home()
    runtime = home / "runtime"

    c.JupyterHub.bind_url = f"http://{dp.ip}:{dp.port}"
    c.JupyterHub.hub_bind_url = f"http://127.0.0.1:{free_port()}"
    c.JupyterHub.db_url = dp.hub_db_url
    c.JupyterHub.cookie_secret_file = str(runtime / "jupyterhub_cookie_secret")
    c.JupyterHub.pid_file = str(runtime / "jupyterhub.pid")
    c.JupyterHub.extra_log_file = ""  # logs go to the console; `make run` keeps them visible
    c.ConfigurableHTTPProxy.command = [proxy_command()]
    c.ConfigurableHTTPProxy.api_url = f"http://127.0.0.1:{free_port()}"
    c.ConfigurableHTTPProxy.pid_file = str(runtime / "proxy.pid")
    c.ConfigurableHTTPProxy.auth_token = dp.secret("proxy_token")

    # login: JupyterHub's shared-password authenticator until accounts arrive; the
    # admin password is long and random, kept in the state directory
    c.JupyterHub.authenticator_class = "shared-password"
    c.SharedPasswordAuthenticator.admin_password = os.environ.get(
        "DATAPILOT_ADMIN_PASSWORD"
    ) or dp.secret("admin_password", 24)
    c.SharedPasswordAuthenticator.user_password = os.environ.get(
        "DATAPILOT_USER_PASSWORD"
    ) or dp.secret("user_password", 12)
    c.Authenticator.admin_users = {os.environ.get("DATAPILOT_ADMIN_USER", "admin")}
    # members are added through the data service, which creates their hub user
    c.Authenticator.allow_existing_users = True

    service_port = free_port()
    service_url = f"http://127.0.0.1:{service_port}"
    datapilot_url = f"{service_url}/services/{SERVICE_NAME}/"
    # the service gets storage and catalog settings, never the hub's own secrets
    secret_vars = {"DATAPILOT_ADMIN_TOKEN", "DATAPILOT_ADMIN_PASSWORD", "DATAPILOT_USER_PASSWORD"}
    env = {
        k: v
        for k, v in os.environ.items()
        if k.startswith(("DATAPILOT_", "AWS_")) and k not in secret_vars
    }
    env.update(
        DATAPILOT_HOME=dp.home,
        DATAPILOT_DB_URL=dp.db_url,
        DATAPILOT_STORAGE_URL=dp.storage_url,
    )
    services = [
        {
            "name": SERVICE_NAME,
            "url": service_url,
            "command": [sys.executable, "-m", "datapilot_hub.service"],
            "environment": env,
            "oauth_no_confirm": True,
            "display": True,
        }
    ]
    if dp.admin_token:
        services.append({"name": AUTOMATION_SERVICE, "api_token": dp.admin_token})
    c.JupyterHub.services = services
    c.JupyterHub.load_roles = [
        {
            "name": "user",
            "description": "Users may call the Datapilot data service",
            "scopes": ["self", f"access:services!service={SERVICE_NAME}"],
        },
        {
            "name": "datapilot-service",
            "description": "The data service keeps hub groups and users in step with its catalog",
            "scopes": ["admin:users", "admin:groups", "admin:servers", "read:users"],
            "services": [SERVICE_NAME],
        },
        *(
            [
                {
                    "name": "datapilot-automation",
                    "description": "DATAPILOT_ADMIN_TOKEN: hub-admin rights for automation",
                    "scopes": [
                        "admin:users",
                        "admin:groups",
                        "admin:servers",
                        "tokens",
                        "access:services",
                        "access:servers",
                        "read:hub",
                        "read:roles",
                    ],
                    "services": [AUTOMATION_SERVICE],
                }
            ]
            if dp.admin_token
            else []
        ),
    ]

    c.JupyterHub.allow_named_servers = True
    # servers are per organization, so there is no default server to send people to:
    # after login they land on the hub home page, which lists their named servers
    c.JupyterHub.redirect_to_server = False
    c.JupyterHub.spawner_class = DatapilotSpawner
    c.DatapilotSpawner.datapilot_url = datapilot_url
    c.DatapilotSpawner.home_root = str(home / "homes")
    c.Spawner.default_url = "/lab"
    c.Spawner.cmd = [str(Path(sys.executable).with_name("jupyterhub-singleuser"))]
    c.Spawner.server_token_scopes = [
        "users:activity!user",
        "access:servers!server",
        f"access:services!service={SERVICE_NAME}",
    ]
    c.Spawner.start_timeout = 120
    c.Spawner.http_timeout = 120
    _print_banner(dp)
    return dp


def _print_banner(dp: DatapilotConfig) -> None:
    admin = os.environ.get("DATAPILOT_ADMIN_USER", "admin")
    admin_pw = (
        "$DATAPILOT_ADMIN_PASSWORD"
        if os.environ.get("DATAPILOT_ADMIN_PASSWORD")
        else dp.path("runtime", "admin_password")
    )
    user_pw = (
        "$DATAPILOT_USER_PASSWORD"
        if os.environ.get("DATAPILOT_USER_PASSWORD")
        else dp.path("runtime", "user_password")
    )
    print(
        f"\nDatapilot starting at http://{dp.ip}:{dp.port}/\n"
        f"  log in as {admin!r} with the password in {admin_pw}\n"
        f"  members (added through the API) log in with the password in {user_pw}\n"
        f"  state: {dp.home}\n",
        file=sys.stderr,
        flush=True,
    )
