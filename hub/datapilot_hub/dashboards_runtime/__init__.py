"""The dashboard runtime: one per organization, a JupyterHub named server of its own.

JupyterHub spawns it as the ``dashboards`` server of hub user ``dashboards-<org>``
(:mod:`datapilot_hub.domain.dashboard_runtime`), under the organization's dashboard
account, and routes ``/user/dashboards-<org>/dashboards/`` to it through its proxy. It
is a small tornado app, :class:`HubOAuthenticated` like every hub service: only users the
server is shared with (the organization's members) get past its login. It runs the
dashboards on demand, at most one process per kind:

- Voilà standalone (sources stripped; its kernels accept only widget messages, never an
  ``execute_request``) for ``voila`` dashboards,
- ``panel serve`` for ``panel`` dashboards (the app's code runs in the server; no kernel),

both on loopback with a secret of their own, reached only through this app, which
checks the visitor, hands each dashboard its viewer's read-only data token, refuses
every path that would give a visitor a kernel, contents or terminal API, and stops a
process idle for ``cull_idle`` seconds. The published snapshots are fetched from the
data service into the account's home (``~/snapshots/<slug>/v<n>/``), the only files the
account can read.
"""

from ._app import DashboardRuntime, main

__all__ = ["DashboardRuntime", "main"]
