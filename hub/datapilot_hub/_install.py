"""``install_datapilot(c)``: the whole JupyterHub side of Datapilot in one call."""

from __future__ import annotations

import json
import os
import shutil
import socket
import sys
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

from datapilot_contract import is_runtime_client

from . import accounts
from .auth import AUTHENTICATORS
from .configuration import DatapilotConfig
from .spawner import DatapilotSpawner

SERVICE_NAME = "datapilot"
AUTOMATION_SERVICE = "datapilot-admin"
CULLER_SERVICE = "idle-culler"
LOGIN_SERVICE = "datapilot-login"
_CHECKOUT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    """A TCP port free on loopback now (so several instances run side by side)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def templates_dir() -> Path:
    """The page templates: the checkout's ``templates/``, else where a wheel put them."""
    local = _CHECKOUT / "templates"
    if (local / "home.html").exists():
        return local
    return Path(sys.prefix) / "share" / "datapilot" / "templates"


def proxy_command() -> str:
    """The configurable-http-proxy installed by ``make`` into deploy/proxy (else PATH)."""
    local = _CHECKOUT / "deploy/proxy/node_modules/.bin/configurable-http-proxy"
    if local.exists():
        return str(local)
    found = shutil.which("configurable-http-proxy")
    if not found:
        raise RuntimeError("configurable-http-proxy not found: run `make proxy`")
    return found


class NoConfirmClients(set):
    """OAuth clients that skip the hub's confirmation page: the data service, and every
    organization's dashboard server (:func:`datapilot_contract.is_runtime_client`)."""

    def __contains__(self, client_id: object) -> bool:
        return super().__contains__(client_id) or is_runtime_client(client_id)


def _env_flag(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() in ("1", "true", "yes", "on")


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
    if dp.isolated:
        if os.geteuid() != 0:
            raise RuntimeError(
                "DATAPILOT_ISOLATION=accounts needs the hub to run as root (it creates accounts"
                " and starts servers under them); unset it for one-account mode."
            )
        _check_reachable(dp)
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

    # login: password accounts with sign-up (nativeauthenticator) by default, OpenID
    # Connect or GitHub by $DATAPILOT_AUTH; see auth.py and README "Logging in"
    auth = os.environ.get("DATAPILOT_AUTH", "native").strip().lower() or "native"
    if auth not in AUTHENTICATORS:
        raise ValueError(f"DATAPILOT_AUTH={auth!r}: use one of {', '.join(AUTHENTICATORS)}")
    c.JupyterHub.authenticator_class = AUTHENTICATORS[auth]
    c.Authenticator.admin_users = {os.environ.get("DATAPILOT_ADMIN_USER", "admin")}
    # members are added through the data service, which creates their hub user
    c.Authenticator.allow_existing_users = True
    if auth == "native":
        c.DatapilotNativeAuthenticator.admin_password = os.environ.get(
            "DATAPILOT_ADMIN_PASSWORD"
        ) or dp.secret("admin_password", 24)
        c.DatapilotNativeAuthenticator.reset_admin_password = bool(
            os.environ.get("DATAPILOT_ADMIN_PASSWORD")
        )
    else:
        c.OAuthenticator.oauth_callback_url = (
            os.environ.get("DATAPILOT_OAUTH_CALLBACK_URL")
            or f"http://{dp.ip}:{dp.port}/hub/oauth_callback"
        )
        c.OAuthenticator.allow_all = _env_flag("DATAPILOT_AUTH_ALLOW_ALL")
    # the hub writes claim-mapped memberships through the data service with this token
    login_token = dp.secret("login_service_token")
    # API tokens expire: none may be asked for without an expiry or beyond this age
    c.JupyterHub.token_expires_in_max_seconds = dp.token_max_age

    # with isolation the service takes connections only from root's processes (the proxy
    # and the hub; DataService.proxy_only): everyone else, kernels included, comes through
    # the proxy, which records the client's address (X-Forwarded-For)
    service_url = f"http://127.0.0.1:{free_port()}"
    datapilot_url = f"{_proxy_url_here(dp)}/services/{SERVICE_NAME}/"
    c.DataServiceCaller.datapilot_api_url = f"{datapilot_url}api/v1/"
    c.DataServiceCaller.datapilot_api_token = login_token
    # the service gets storage and catalog settings, never the hub's own secrets
    secret_vars = {
        "DATAPILOT_ADMIN_TOKEN",
        "DATAPILOT_ADMIN_PASSWORD",
        "DATAPILOT_OIDC_CLIENT_SECRET",
        "DATAPILOT_GITHUB_CLIENT_SECRET",
    }
    env = {
        k: v
        for k, v in os.environ.items()
        if k.startswith(("DATAPILOT_", "AWS_")) and k not in secret_vars
    }
    env.update(
        DATAPILOT_HOME=dp.home,
        DATAPILOT_DB_URL=dp.db_url,
        DATAPILOT_STORAGE_URL=dp.storage_url,
        DATAPILOT_ISOLATION=dp.isolation,
        DATAPILOT_PROXY_ONLY="1" if dp.isolated else "0",
        # the service imports nothing from its account's ~/.local
        PYTHONNOUSERSITE="1",
    )
    # c.DataService.* and c.DatapilotConfig.* set in jupyterhub_config.py (also below the
    # call to install_datapilot) reach the service, which runs in a process of its own:
    # JupyterHub calls this when it starts the service, after the whole file was read
    env["DATAPILOT_SERVICE_CONFIG"] = lambda spawner: service_config_json(c)
    # unprivileged processes the hub starts for itself run as the service's account
    run_as = {"user": dp.service_account} if dp.isolated else {}
    services = [
        {
            "name": SERVICE_NAME,
            "url": service_url,
            "command": [sys.executable, "-m", "datapilot_hub.service"],
            "environment": env,
            "cwd": str(dp.service_home),
            "oauth_no_confirm": True,
            "display": True,
            **run_as,
        }
    ]
    # hub-internal: the hub's own calls to the data service (claims -> memberships)
    services.append({"name": LOGIN_SERVICE, "api_token": login_token})
    if dp.admin_token:
        services.append({"name": AUTOMATION_SERVICE, "api_token": dp.admin_token})
    # jupyterhub-idle-culler is the global backstop ($DATAPILOT_IDLE_CULL_TIMEOUT seconds,
    # 0 turns it off); shorter per-organization idle times are applied by the data
    # service's server watcher (README "Organization settings")
    cull_timeout = int(os.environ.get("DATAPILOT_IDLE_CULL_TIMEOUT", "3600"))
    if cull_timeout > 0:
        services.append(
            {
                "name": CULLER_SERVICE,
                "command": [
                    sys.executable,
                    # jupyterhub_idle_culler itself, leaving at once when stopped
                    str(Path(__file__).with_name("_culler.py")),
                    f"--timeout={cull_timeout}",
                    f"--cull-every={max(30, min(300, cull_timeout // 2))}",
                ],
                "environment": {"PYTHONNOUSERSITE": "1"},
                **run_as,
            }
        )
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
            "scopes": [
                "admin:users",
                "admin:groups",
                "admin:servers",
                "read:users",
                # the organizations' dashboard servers are shared with their members, one
                # share each (domain/dashboard_runtime.py): granting a share of a server
                # needs the access it grants and the users' names
                "shares",
                "read:shares",
                "read:users:name",
                "access:servers",
            ],
            "services": [SERVICE_NAME],
        },
        {
            "name": "datapilot-login",
            "description": "The hub applies login claims as memberships via the data service",
            "scopes": ["admin:users", f"access:services!service={SERVICE_NAME}"],
            "services": [LOGIN_SERVICE],
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

    if cull_timeout > 0:
        c.JupyterHub.load_roles.append(
            {
                "name": CULLER_SERVICE,
                "description": "jupyterhub-idle-culler: stop servers idle past the timeout",
                # the scopes the culler's README asks for
                "scopes": [
                    "list:users",
                    "read:users:activity",
                    "read:servers",
                    "delete:servers",
                ],
                "services": [CULLER_SERVICE],
            }
        )

    c.JupyterHub.allow_named_servers = True
    # an organization's dashboard server is the platform's, like the data service: its
    # members log in to it without the hub's "authorize access" page
    c.JupyterHub.tornado_settings = {
        **c.JupyterHub.get("tornado_settings", {}),
        "oauth_no_confirm_list": NoConfirmClients({f"service-{SERVICE_NAME}"}),
    }
    # the home page lists one server per organization (templates/home.html)
    # (and every hub page in Datapilot's name: page.html, error pages, login, sign-up)
    c.JupyterHub.template_paths = [str(templates_dir())]
    c.JupyterHub.logo_file = str(templates_dir() / "datapilot-logo.svg")
    c.JupyterHub.template_vars = {
        # the home page tells admins when users are not isolated from each other
        "datapilot_isolation": dp.isolation,
        # the menus: password change and pending sign-ups with password accounts
        "datapilot_auth": auth,
        # who sees "Create an organization" (the data service decides, with the same setting)
        "datapilot_self_service": _env_flag("DATAPILOT_SELF_SERVICE_ORGS"),
    }
    # servers are per organization, so there is no default server to send people to:
    # after login everyone lands on their organizations' page in the data service (a
    # member of one organization on its home), which links their notebook server
    c.JupyterHub.redirect_to_server = False
    c.JupyterHub.default_url = f"/services/{SERVICE_NAME}/"
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
    _print_banner(dp, auth)
    return dp


#: the configuration sections the data service takes from jupyterhub_config.py
SERVICE_CONFIG_SECTIONS = ("DataService", "DatapilotConfig", "DaskCluster", "HubOAuth", "Narrator")


def service_config_json(c: Any) -> str:
    """The data service's sections of the hub's configuration, as JSON for its environment.

    Parameters
    ----------
    c : traitlets.config.Config
        The hub's whole configuration.

    Raises
    ------
    ValueError
        A setting of those sections is not plain data (JSON), so it cannot reach the
        service's process; it names the setting.
    """
    sections = {}
    for name in SERVICE_CONFIG_SECTIONS:
        if name not in c:
            continue
        for key, value in c[name].items():
            try:
                json.dumps(value)
            except TypeError:
                raise ValueError(
                    f"c.{name}.{key} = {value!r}: the data service runs in a process of its"
                    " own and takes only plain values (numbers, strings, lists, dicts)"
                ) from None
        sections[name] = dict(c[name])
    return json.dumps(sections)


def _proxy_url_here(dp: DatapilotConfig) -> str:
    """The proxy's address for callers on this machine (hub, servers, kernels)."""
    host = {"": "127.0.0.1", "0.0.0.0": "127.0.0.1", "::": "[::1]"}.get(dp.ip, dp.ip)
    if ":" in host and not host.startswith("["):
        host = f"[{host}]"
    return f"http://{host}:{dp.port}"


def _check_reachable(dp: DatapilotConfig) -> None:
    """Fail at start, not at the first spawn, when other accounts cannot run Datapilot."""
    for what, path in (
        ("the Python environment", sys.prefix),
        ("Datapilot's code", Path(__file__).parent),
        # (home itself is made 0711 by prepare_home)
        ("DATAPILOT_HOME", Path(dp.home).parent),
    ):
        blocked = accounts.reachable_by_others(path)
        if blocked:
            raise RuntimeError(
                f"Isolation needs {what} ({path}) to be reachable by other accounts, but"
                f" {blocked} is closed to them (mode {os.stat(blocked).st_mode & 0o777:o}): put"
                " Datapilot elsewhere (e.g. under /srv or /opt), or start it with"
                " DATAPILOT_ISOLATION=off (no isolation between users)."
            )


def _print_banner(dp: DatapilotConfig, auth: str = "native") -> None:
    admin = os.environ.get("DATAPILOT_ADMIN_USER", "admin")
    url = f"http://{dp.ip}:{dp.port}/"
    if auth == "native":
        admin_pw = (
            "$DATAPILOT_ADMIN_PASSWORD"
            if os.environ.get("DATAPILOT_ADMIN_PASSWORD")
            else f"{dp.path('runtime', 'admin_password')} (until you change it)"
        )
        how = (
            f"  log in as {admin!r} with the password in {admin_pw}\n"
            f"  then create an organization and invite people: an invitation link takes them\n"
            f"  through the sign-up; other sign-ups wait for approval at {url}hub/authorize\n"
        )
    else:
        how = (
            f"  log in through {auth} ({admin!r} is the hub admin); group claims map to\n"
            "  organizations (README, Logging in)\n"
        )
    if dp.isolated:
        isolation = (
            f"  isolation: each notebook server runs under its own account ({dp.account_prefix}*),"
            f"\n  the data service under {dp.service_account!r}\n"
        )
    else:
        isolation = (
            "  WARNING: one-account mode: every notebook server, kernel and the data service\n"
            f"  run as {_whoami()!r}, so users are NOT isolated from each other or from the\n"
            "  platform's data and secrets. Start as root for one account per server\n"
            "  (README, Security model).\n"
        )
    # the isolation (or the lack of it) is said at once; the URL only once it works
    print(
        f"\nDatapilot is starting (state: {dp.home}) ...\n{isolation}",
        file=sys.stderr,
        flush=True,
    )
    from jupyterhub.app import JupyterHub

    if not JupyterHub.initialized():
        return  # the configuration read by something else than the hub (a test, a tool)
    banner = f"\nDatapilot is ready at {url}\n{how}"
    threading.Thread(
        target=_announce_when_ready,
        args=(_proxy_url_here(dp), banner),
        name="datapilot-ready",
        daemon=True,
    ).start()


def _announce_when_ready(base: str, banner: str, timeout: float = 600) -> None:
    """Print ``banner`` once a person can log in: the login page and the data service
    (where a login lands) both answer through the proxy.

    JupyterHub says "is now running" before the proxy has every route, and the login
    page answered 404 for seconds after it; a URL printed before that is a dead link.
    """
    deadline = time.monotonic() + timeout
    pending = [f"{base}/hub/login", f"{base}/services/{SERVICE_NAME}/api/v1/health"]
    while pending and time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(pending[0], timeout=2) as resp:
                if resp.status == 200:
                    pending.pop(0)
                    continue
        except Exception:  # refused, reset, a proxy's 503, a half-sent answer: not yet
            pass
        time.sleep(0.2)
    if not pending:
        print(banner, file=sys.stderr, flush=True)


def _whoami() -> str:
    import pwd

    return pwd.getpwuid(os.geteuid()).pw_name
