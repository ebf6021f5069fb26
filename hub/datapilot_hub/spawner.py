"""Notebook servers per organization: one named server per (user, organization)."""

from __future__ import annotations

import asyncio
import json
import os
import pwd
import shutil
import sys
from html import escape
from pathlib import Path

import httpx
from jupyterhub.spawner import LocalProcessSpawner, set_user_setuid
from tornado import web
from traitlets import Unicode, default

from datapilot_contract import RUNTIME_SERVER, is_org_slug, runtime_org

from . import accounts
from .configuration import DatapilotConfig

#: files a server's account creates are its own and its organization's group's, no one else's
SERVER_UMASK = 0o007

#: JupyterLab's "get notified about Jupyter news?" prompt, answered "no" in a new home
_NO_NEWS = (
    ".jupyter/lab/user-settings/@jupyterlab/apputils-extension/notification.jupyterlab-settings",
    {"fetchNews": "false", "checkForUpdates": False},
)


def examples_dir() -> Path | None:
    """The example notebooks: the checkout's ``notebooks/``, else where a wheel put them."""
    for path in (
        Path(__file__).resolve().parents[2] / "notebooks",
        Path(sys.prefix) / "share" / "datapilot" / "notebooks",
    ):
        if path.is_dir():
            return path
    return None


class SpawnRefused(web.HTTPError):
    """A server start refused for a reason the user can act on.

    JupyterHub shows ``jupyterhub_message`` (and ``jupyterhub_html_message``) on the spawn
    page and in the start's progress instead of its generic "Failed to start your
    server... contact admin", which would hide the reason in the log.

    Parameters
    ----------
    status : int
        HTTP status of the refusal.
    message : str
        Why, and what to do instead, for a person.
    html : str, optional
        The same with links (escaped by the caller).
    """

    def __init__(self, status: int, message: str, html: str | None = None) -> None:
        super().__init__(status, message.replace("%", "%%"))
        self.jupyterhub_message = message
        if html is not None:
            self.jupyterhub_html_message = html


class DatapilotSpawner(LocalProcessSpawner):
    """Local processes, one named server per organization the user may work in.

    The server's name is the organization slug. Before starting, the spawner asks the
    data service (with the server's own token) whether the user may run notebooks in
    that organization; a Viewer, a non-member or an unreachable service is refused.
    The server gets ``DATAPILOT_ORG`` and ``DATAPILOT_URL`` in its environment, never
    a database or storage credential.

    With ``DatapilotConfig.isolation = "accounts"`` (the hub runs as root) each server
    runs under an unprivileged account of its own, one per (user, organization),
    created at its first start (:mod:`datapilot_hub.accounts`), with a private home and
    the organization's ``shared/`` folder, which its organization's accounts share
    through a group. When the server stops, every process of its account goes with it.
    Without isolation the servers run as the hub's own account.
    """

    datapilot_url = Unicode(
        help="""URL of the data service for servers and kernels, ending in ``/services/datapilot/``.

        Set by :func:`datapilot_hub.install_datapilot` to the proxy's address on this
        machine (the service itself listens on a socket only the proxy can open); given
        to servers and kernels as ``$DATAPILOT_URL``, and used by the spawner's own checks.

        Example::

            c.DatapilotSpawner.datapilot_url = "http://127.0.0.1:8000/services/datapilot/"
        """,
    ).tag(config=True)

    home_root = Unicode(
        help="""Directory under which each server gets its home.

        With isolation, ``<home_root>/<account>``; without, ``<home_root>/<user>/<org>``.
        Defaults to ``<DATAPILOT_HOME>/homes``.

        Example::

            c.DatapilotSpawner.home_root = "/srv/datapilot/homes"
        """,
    ).tag(config=True)

    @default("home_root")
    def _default_home_root(self) -> str:
        return str(DatapilotConfig.instance().path("homes"))

    shared_root = Unicode(
        help="""Directory holding each organization's shared folder, ``<shared_root>/<org>``.

        Every member's server shows it as ``shared/`` in its home. With isolation it
        belongs to the organization's group (mode 2770), so its analysts can read and
        write it and no other account can. Defaults to ``<DATAPILOT_HOME>/shared``.

        Example::

            c.DatapilotSpawner.shared_root = "/srv/datapilot/shared"
        """,
    ).tag(config=True)

    @default("shared_root")
    def _default_shared_root(self) -> str:
        return str(DatapilotConfig.instance().path("shared"))

    @property
    def isolated(self) -> bool:
        """Whether this server runs under an account of its own."""
        return DatapilotConfig.instance().isolated

    @property
    def dashboards_of(self) -> str | None:
        """The organization whose dashboard server this is, or None for a notebook server.

        The ``dashboards`` server of hub user ``dashboards-<org>``
        (:mod:`datapilot_hub.domain.dashboard_runtime`) runs the dashboard runtime
        (:mod:`datapilot_hub.dashboards_runtime`) under the organization's dashboard
        account, whose home holds the published snapshots and nothing else.
        """
        return runtime_org(self.user.name) if self.name == RUNTIME_SERVER else None

    @property
    def account(self) -> str | None:
        """The account this server runs under; None without isolation."""
        if not self.isolated:
            return None
        prefix = DatapilotConfig.instance().account_prefix
        if self.dashboards_of:
            return accounts.dashboard_account(prefix, self.dashboards_of)
        return accounts.account_name(prefix, self.user.name, self.org)

    home_dir = Unicode(
        help="""The server's home directory and working directory.

        Defaults to ``<home_root>/<account>`` with isolation, else
        ``<home_root>/<user>/<org>``.

        Example::

            c.DatapilotSpawner.home_dir = "/srv/homes/alice-acme"
        """,
    ).tag(config=True)

    @default("home_dir")
    def _default_home_dir(self) -> str:
        if self.dashboards_of and not self.isolated:
            return os.path.join(self.home_root, self.user.name, self.name)
        if self.isolated:
            return os.path.join(self.home_root, self.account)
        return os.path.join(self.home_root, self.user.name, self.name or "_default")

    @property
    def org(self) -> str:
        """The organization slug this server belongs to."""
        return self.dashboards_of or self.name

    async def check_allowed(self) -> None:
        """Refuse (:class:`SpawnRefused`) unless the user may run notebooks in the organization.

        The refusal says why and what to do instead, on the page the user started from.
        """
        org_page = f"{self.datapilot_url}orgs/{self.name}/"
        if not self.name:
            raise SpawnRefused(
                400,
                "Notebook servers belong to an organization: start the server of one of your"
                " organizations from the Notebook servers page.",
            )
        if not is_org_slug(self.name):
            raise SpawnRefused(400, f"{self.name!r} is not an organization's short name.")
        url = f"{self.datapilot_url.rstrip('/')}/api/v1/me"
        try:
            async with httpx.AsyncClient(timeout=30) as client:
                resp = await client.get(url, headers={"Authorization": f"token {self.api_token}"})
            resp.raise_for_status()
            orgs = {o["slug"]: o for o in resp.json()["organizations"]}
        except (httpx.HTTPError, KeyError, ValueError) as e:
            # fail closed: no answer from the data service means no server
            self.log.error("The data service could not be asked about %s: %s", self._log_name, e)
            raise SpawnRefused(
                503,
                "Datapilot's data service did not answer, so no server can start now. Try"
                " again in a minute; if it goes on, tell your administrator (the hub's log"
                " says why).",
            ) from e
        org = orgs.get(self.name)
        if org is None:
            raise SpawnRefused(
                404,
                f"You are not a member of an organization {self.name!r}. Ask one of its"
                " Admins for an invitation.",
            )
        if "notebooks:run" not in org["permissions"]:
            name = org.get("name") or self.name
            raise SpawnRefused(
                403,
                f"Your role in {name} ({org['role']}) does not include notebook servers."
                f" You can still see {name}'s datasets on its page ({org_page}); ask an"
                f" Admin of {name} for the Analyst role to work in notebooks.",
                f"Your role in <strong>{escape(name)}</strong> ({escape(org['role'])}) does not"
                " include notebook servers. You can still see its datasets on"
                f' <a href="{escape(org_page)}">{escape(name)}\'s page</a>; ask an Admin of'
                f" {escape(name)} for the Analyst role to work in notebooks.",
            )
        await self.apply_org_policy()

    async def apply_org_policy(self) -> None:
        """Ask the data service for the org's server limits (and its server quota).

        Sets ``mem_limit`` and ``cpu_limit`` from the organization's settings; a plan
        whose concurrent-server limit is reached refuses the start with its message.
        """
        url = f"{self.datapilot_url.rstrip('/')}/api/v1/orgs/{self.name}/server-policy"
        try:
            async with httpx.AsyncClient(timeout=30) as client:
                resp = await client.get(url, headers={"Authorization": f"token {self.api_token}"})
            body = resp.json()
        except (httpx.HTTPError, ValueError) as e:
            self.log.error("The data service could not be asked about %s: %s", self._log_name, e)
            raise SpawnRefused(
                503,
                "Datapilot's data service did not answer, so no server can start now. Try"
                " again in a minute; if it goes on, tell your administrator.",
            ) from e
        if resp.status_code != 200:
            # e.g. the plan's limit of servers running at once: its message says so
            raise SpawnRefused(resp.status_code, body.get("message", resp.text[:200]))
        # an organization without a limit gets the configured one (c.Spawner.mem_limit),
        # also after its limit was removed since this spawner's last start
        if not hasattr(self, "_configured_limits"):
            self._configured_limits = (self.mem_limit, self.cpu_limit)
        mem, cpu = self._configured_limits
        self.mem_limit = int(body["mem_limit"]) if body.get("mem_limit") else mem
        self.cpu_limit = float(body["cpu_limit"]) if body.get("cpu_limit") else cpu

    async def start(self):
        """Check the organization, prepare the account and folders, then start the server."""
        if self.dashboards_of:
            # started by the data service (admin:servers) when a member opens a dashboard;
            # nobody logs in as its user, and it counts against no one's servers
            await asyncio.to_thread(self.prepare_dashboard_home)
            self.cmd = [sys.executable, "-m", "datapilot_hub.dashboards_runtime"]
            return await super().start()
        await self.check_allowed()
        await asyncio.to_thread(self.prepare_workspace)
        return await super().start()

    def prepare_dashboard_home(self) -> None:
        """The dashboard account (with isolation) and its home, its own alone (0700).

        The account is in no organization group, so it cannot read the ``shared/``
        folder; the runtime writes the published snapshots into the home.
        """
        home = Path(self.home_dir)
        if not self.isolated:
            home.mkdir(mode=0o700, parents=True, exist_ok=True)
            return
        entry = accounts.ensure_account(
            self.account, home, f"Datapilot dashboards of {self.dashboards_of}"
        )
        home.mkdir(mode=0o700, exist_ok=True)
        accounts.own_tree(home, entry.pw_uid, entry.pw_gid)
        home.chmod(0o700)

    def prepare_workspace(self) -> None:
        """The server's account (with isolation), its home, and the shared folder link.

        Home: the account's alone (0700). Shared folder: the organization's group's
        (2770, so what one analyst puts there the others can change). Runs as root with
        isolation; otherwise everything belongs to the hub's account.
        """
        home = Path(self.home_dir)
        shared = Path(self.shared_root, self.org)
        if not self.isolated:
            home.mkdir(mode=0o700, parents=True, exist_ok=True)
            shared.mkdir(mode=0o700, parents=True, exist_ok=True)
            _link(home / "shared", shared)
            self.first_start_files(home)
            return
        prefix = DatapilotConfig.instance().account_prefix
        group = accounts.org_group(prefix, self.org)
        gid = accounts.ensure_group(group)
        entry = accounts.ensure_account(
            self.account, home, f"Datapilot {self.user.name} in {self.org}", groups=[group]
        )
        home.mkdir(mode=0o700, exist_ok=True)
        accounts.own_tree(home, entry.pw_uid, entry.pw_gid)
        self.first_start_files(home, entry.pw_uid, entry.pw_gid)
        home.chmod(0o700)
        shared.mkdir(exist_ok=True)
        os.chown(shared, 0, gid)
        shared.chmod(0o2770)
        _link(home / "shared", shared, entry.pw_uid, entry.pw_gid)

    def first_start_files(self, home: Path, uid: int | None = None, gid: int | None = None) -> None:
        """At a home's first start: the example notebooks, and Lab's news prompt off.

        Done once (a marker in ``~/.datapilot``): notebooks the user deleted or changed
        later are left alone, and a file of the same name is never overwritten.

        Parameters
        ----------
        home : Path
            The server's home directory.
        uid, gid : int, optional
            The account that owns what is written (with isolation; written as root).
        """
        marker = home / ".datapilot" / "first-start"
        if marker.exists():
            return
        made: list[Path] = []
        examples = examples_dir()
        if examples is not None:
            for notebook in sorted(examples.glob("*.ipynb")):
                target = home / notebook.name
                if not target.exists():
                    shutil.copyfile(notebook, target)
                    made.append(target)
        settings_path, settings = _NO_NEWS
        settings_file = home / settings_path
        if not settings_file.exists():
            for parent in reversed(settings_file.relative_to(home).parents[:-1]):
                if not (home / parent).exists():
                    (home / parent).mkdir()
                    made.append(home / parent)
            settings_file.write_text(json.dumps(settings, indent=2))
            made.append(settings_file)
        if not marker.parent.exists():
            marker.parent.mkdir()
            made.append(marker.parent)
        marker.write_text("examples copied, news prompt answered\n")
        made.append(marker)
        if uid is not None:
            for path in made:
                os.lchown(path, uid, gid)

    def make_preexec_fn(self, name):
        """Become the server's account (with isolation), with a umask for the shared folder."""
        setuid = set_user_setuid(self.account) if self.isolated else None

        def preexec():
            os.umask(SERVER_UMASK)
            if setuid is not None:
                setuid()

        return preexec

    def user_env(self, env: dict[str, str]) -> dict[str, str]:
        """``USER``, ``HOME``, ``SHELL`` and ``PATH`` of the server's account."""
        env["USER"] = self.account or self.user.name
        env["HOME"] = self.home_dir
        # the account's login shell is nologin; terminals in JupyterLab use $SHELL
        env["SHELL"] = "/bin/bash"
        # `pip install --user` lands in ~/.local (the environment itself is read-only)
        env["PATH"] = os.pathsep.join(
            [f"{self.home_dir}/.local/bin", str(Path(sys.executable).parent), env.get("PATH", "")]
        )
        return env

    def get_env(self) -> dict[str, str]:
        env = super().get_env()
        env["DATAPILOT_ORG"] = self.org
        env["DATAPILOT_URL"] = self.datapilot_url
        if self.dashboards_of:
            # the runtime imports nothing from its account's ~/.local (snapshots only there)
            env["PYTHONNOUSERSITE"] = "1"
            # its settings (README, Dashboards: serving), as the hub was given them
            for name in ("DATAPILOT_DASHBOARD_POOL_SIZE", "DATAPILOT_DASHBOARD_CULL_IDLE"):
                if os.environ.get(name):
                    env[name] = os.environ[name]
        return env

    def get_args(self) -> list[str]:
        if self.dashboards_of:
            # the runtime reads its address and prefix from JupyterHub's environment
            return []
        args = super().get_args()
        if os.geteuid() == 0 and not self.isolated:
            # one-account mode as root (DATAPILOT_ISOLATION=off): jupyter-server refuses
            # to run as root unless told
            args.append("--allow-root")
        return args

    async def stop(self, now: bool = False) -> None:
        """Stop the server, and with isolation every process its account still runs.

        A kernel's detached child would otherwise outlive the server (and a member's
        removal) with the account's access to the shared folder.
        """
        await super().stop(now=now)
        if self.isolated:
            try:
                uid = pwd.getpwnam(self.account).pw_uid
            except KeyError:
                return
            killed = await asyncio.to_thread(accounts.kill_processes, uid)
            if killed:
                self.log.info("Killed %d leftover processes of %s", killed, self.account)


def _link(link: Path, target: Path, uid: int | None = None, gid: int | None = None) -> None:
    """Make ``link`` a symlink to ``target`` (replacing a wrong link, never a real file)."""
    if link.is_symlink():
        if os.readlink(link) == str(target):
            return
        link.unlink()
    elif link.exists():
        return  # the user made something of their own there: leave it
    link.symlink_to(target)
    if uid is not None:
        os.lchown(link, uid, gid)
