"""Notebook servers per organization: one named server per (user, organization)."""

from __future__ import annotations

import asyncio
import os
import pwd
import sys
from pathlib import Path

import httpx
from jupyterhub.spawner import LocalProcessSpawner, set_user_setuid
from tornado import web
from traitlets import Unicode, default

from datapilot_contract import is_org_slug

from . import accounts
from .configuration import DatapilotConfig

#: files a server's account creates are its own and its organization's group's, no one else's
SERVER_UMASK = 0o007


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
    def account(self) -> str | None:
        """The account this server runs under; None without isolation."""
        if not self.isolated:
            return None
        return accounts.account_name(
            DatapilotConfig.instance().account_prefix, self.user.name, self.org
        )

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
        if self.isolated:
            return os.path.join(self.home_root, self.account)
        return os.path.join(self.home_root, self.user.name, self.name or "_default")

    @property
    def org(self) -> str:
        """The organization slug this server belongs to."""
        return self.name

    async def check_allowed(self) -> None:
        """Raise 403 unless the user may run notebooks in the organization."""
        if not self.name:
            raise web.HTTPError(
                400,
                "Notebook servers belong to an organization: start the server named after"
                " your organization (/hub/spawn/<user>/<org>).",
            )
        if not is_org_slug(self.name):
            raise web.HTTPError(400, f"{self.name!r} is not an organization slug.")
        url = f"{self.datapilot_url.rstrip('/')}/api/v1/me"
        try:
            async with httpx.AsyncClient(timeout=30) as client:
                resp = await client.get(url, headers={"Authorization": f"token {self.api_token}"})
            resp.raise_for_status()
            orgs = {o["slug"]: o for o in resp.json()["organizations"]}
        except (httpx.HTTPError, KeyError, ValueError) as e:
            # fail closed: no answer from the data service means no server
            raise web.HTTPError(503, f"The Datapilot data service could not be asked: {e}") from e
        org = orgs.get(self.name)
        if org is None:
            raise web.HTTPError(404, f"You are not a member of an organization {self.name!r}.")
        if "notebooks:run" not in org["permissions"]:
            raise web.HTTPError(
                403,
                f"Your role in {self.name!r} ({org['role']}) does not include notebook servers;"
                " open the organization's dashboards instead.",
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
            raise web.HTTPError(503, f"The Datapilot data service could not be asked: {e}") from e
        if resp.status_code != 200:
            raise web.HTTPError(resp.status_code, body.get("message", resp.text[:200]))
        # an organization without a limit gets the configured one (c.Spawner.mem_limit),
        # also after its limit was removed since this spawner's last start
        if not hasattr(self, "_configured_limits"):
            self._configured_limits = (self.mem_limit, self.cpu_limit)
        mem, cpu = self._configured_limits
        self.mem_limit = int(body["mem_limit"]) if body.get("mem_limit") else mem
        self.cpu_limit = float(body["cpu_limit"]) if body.get("cpu_limit") else cpu

    async def start(self):
        """Check the organization, prepare the account and folders, then start the server."""
        await self.check_allowed()
        await asyncio.to_thread(self.prepare_workspace)
        return await super().start()

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
            return
        prefix = DatapilotConfig.instance().account_prefix
        group = accounts.org_group(prefix, self.org)
        gid = accounts.ensure_group(group)
        entry = accounts.ensure_account(
            self.account, home, f"Datapilot {self.user.name} in {self.org}", groups=[group]
        )
        home.mkdir(mode=0o700, exist_ok=True)
        accounts.own_tree(home, entry.pw_uid, entry.pw_gid)
        home.chmod(0o700)
        shared.mkdir(exist_ok=True)
        os.chown(shared, 0, gid)
        shared.chmod(0o2770)
        _link(home / "shared", shared, entry.pw_uid, entry.pw_gid)

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
        env["DATAPILOT_ORG"] = self.name
        env["DATAPILOT_URL"] = self.datapilot_url
        return env

    def get_args(self) -> list[str]:
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
