"""Notebook servers per organization: one named server per (user, organization)."""

from __future__ import annotations

import os

import httpx
from jupyterhub.spawner import SimpleLocalProcessSpawner
from tornado import web
from traitlets import Unicode, default

from .permissions import ORG_SLUG_RE


class DatapilotSpawner(SimpleLocalProcessSpawner):
    """Local processes, one named server per organization the user may work in.

    The server's name is the organization slug. Before starting, the spawner asks the
    data service (with the server's own token) whether the user may run notebooks in
    that organization; a Viewer, a non-member or an unreachable service is refused.
    The server gets ``DATAPILOT_ORG`` and ``DATAPILOT_URL`` in its environment, never
    a database or storage credential.
    """

    datapilot_url = Unicode(
        help="""Internal URL of the data service, ending in ``/services/datapilot/``.

        Set by :func:`datapilot_hub.install_datapilot`; given to servers and kernels as
        ``$DATAPILOT_URL``.

        Example::

            c.DatapilotSpawner.datapilot_url = "http://127.0.0.1:8790/services/datapilot/"
        """,
    ).tag(config=True)

    home_root = Unicode(
        help="""Directory under which each user gets ``<user>/<org>/`` as home.

        Example::

            c.DatapilotSpawner.home_root = "/srv/datapilot/homes"
        """,
    ).tag(config=True)

    @default("home_root")
    def _default_home_root(self) -> str:
        from .configuration import DatapilotConfig

        return str(DatapilotConfig.instance().path("homes"))

    @default("home_dir")
    def _default_home_dir(self) -> str:
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
        if not ORG_SLUG_RE.match(self.name):
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
        """Check the organization, then start the server."""
        await self.check_allowed()
        os.makedirs(self.home_dir, mode=0o755, exist_ok=True)
        return await super().start()

    def get_env(self) -> dict[str, str]:
        env = super().get_env()
        env["DATAPILOT_ORG"] = self.name
        env["DATAPILOT_URL"] = self.datapilot_url
        return env

    def get_args(self) -> list[str]:
        args = super().get_args()
        if os.geteuid() == 0:
            # these machines and CI run as root; jupyter-server refuses that otherwise
            args.append("--allow-root")
        return args
