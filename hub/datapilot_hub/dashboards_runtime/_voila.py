"""Voilà standalone as the runtime starts it: its secret from the environment.

The secret never goes on the command line (``/proc/<pid>/cmdline`` is readable by every
account); it is taken out of the environment before any kernel inherits it.

One addition to Voilà: ``PUT`` / ``DELETE`` ``datapilot/pools/<notebook>`` (with the
secret) fill or drain the pre-started kernels of one notebook, so that a new version of
one dashboard gets its pool without restarting Voilà, and every open page of the
organization's other dashboards (or of the old version) keeps its kernel.
"""

from __future__ import annotations

import os
import sys

from ._private import make_undumpable


def _pool_handler():
    from jupyter_core.utils import ensure_async
    from jupyter_server.base.handlers import JupyterHandler
    from tornado import web

    class PoolHandler(JupyterHandler):
        """The pre-started kernels of one notebook (only the runtime, with the secret)."""

        @property
        def kernel_manager(self):
            return self.settings["kernel_manager"]

        @web.authenticated
        def put(self, path: str) -> None:
            if not os.path.isfile(os.path.join(self.settings["voila_root"], path)):
                raise web.HTTPError(404, "No such notebook.")
            # (a pool already filling or full is left as it is)
            self.kernel_manager.fill_if_needed(delay=0, notebook_name=path)
            self.set_status(204)

        @web.authenticated
        async def delete(self, path: str) -> None:
            # Voilà keeps its pools by notebook; those it did not hand out yet are stopped
            km = self.kernel_manager
            for task in km._pools.pop(path, []):
                try:
                    kernel_id = (await task)["kernel_id"]
                except Exception:  # noqa: BLE001 - a kernel that failed to start is gone
                    continue
                if kernel_id in km:
                    await ensure_async(km.shutdown_kernel(kernel_id))
            self.set_status(204)

    return PoolHandler


def _voila_class():
    from jupyter_server.utils import url_path_join
    from voila.app import Voila

    class DatapilotVoila(Voila):
        """Voilà with the pools' handler."""

        def init_handlers(self) -> list:
            handlers = super().init_handlers()
            self.app.settings["voila_root"] = self.root_dir
            route = url_path_join(self.server_url, r"/datapilot/pools/(.+\.ipynb)")
            return [*handlers, (route, _pool_handler())]

    return DatapilotVoila


def main() -> None:
    """Run Voilà with ``$DATAPILOT_RUNTIME_VOILA_TOKEN`` as its token."""
    # its secret and the viewers' tokens pass through it: out of the dashboards' reach
    make_undumpable()
    token = os.environ.pop("DATAPILOT_RUNTIME_VOILA_TOKEN")
    _voila_class().launch_instance(argv=[*sys.argv[1:], f"--Voila.token={token}"])


if __name__ == "__main__":
    main()
