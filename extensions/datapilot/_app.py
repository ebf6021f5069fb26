"""The Jupyter server extension application: configuration, settings and routes."""

from __future__ import annotations

import os
from typing import Any

import httpx
from jupyter_server.extension.application import ExtensionApp
from traitlets import Float, Integer, Unicode, default, validate

from datapilot_contract import DEFAULT_MAX_PUBLISH_BYTES

from ._handlers import ForwardAPIHandler, IngestAPIHandler, PublishAPIHandler


def _with_slash(url: str) -> str:
    url = url.strip()
    return url if not url or url.endswith("/") else url + "/"


class DatapilotExtension(ExtensionApp):
    """Give JupyterLab and kernels a same-origin Datapilot API inside the user's server.

    Requests to ``<base_url>datapilot/api/v1/...`` are forwarded to the data service with
    the server's own JupyterHub token; this process never holds database or storage
    credentials.
    """

    name = "datapilot"

    service_url = Unicode(
        help="""URL of the Datapilot data service, ending in ``/``.

        Requests to ``datapilot/api/v1/<path>`` on this server are forwarded to
        ``<service_url>api/v1/<path>``. Defaults to the ``DATAPILOT_URL`` environment
        variable, which the Datapilot spawner sets. A missing trailing slash is added.
        When empty, every call answers 503.

        Example::

            c.DatapilotExtension.service_url = "http://127.0.0.1:41234/services/datapilot/"
        """,
    ).tag(config=True)

    @default("service_url")
    def _default_service_url(self) -> str:
        # (dynamic defaults skip @validate, so normalise here too)
        return _with_slash(os.environ.get("DATAPILOT_URL", ""))

    @validate("service_url")
    def _add_slash(self, proposal: Any) -> str:
        return _with_slash(proposal["value"])

    api_token = Unicode(
        help="""JupyterHub API token sent to the data service as ``Authorization: token ...``.

        Defaults to ``JUPYTERHUB_API_TOKEN``, the token JupyterHub gives this server; it
        identifies the server's owner, so the data service applies that user's permissions.
        When empty, every call answers 503.

        Example::

            c.DatapilotExtension.api_token = os.environ["MY_TOKEN"]
        """,
    ).tag(config=True)

    @default("api_token")
    def _default_api_token(self) -> str:
        return os.environ.get("JUPYTERHUB_API_TOKEN", "")

    org = Unicode(
        help="""Slug of the organization this server belongs to.

        Used by ``POST datapilot/api/v1/ingest`` when the request names no ``org``. Defaults
        to ``DATAPILOT_ORG``, which the Datapilot spawner sets for the per-organization server.

        Example::

            c.DatapilotExtension.org = "acme"
        """,
    ).tag(config=True)

    @default("org")
    def _default_org(self) -> str:
        return os.environ.get("DATAPILOT_ORG", "")

    request_timeout = Float(
        120.0,
        help="""Seconds to wait on each network step with the data service.

        Applies to connecting and to every read or write of a chunk, not to the whole
        transfer, so large uploads and downloads are not cut off while they make progress.

        Example::

            c.DatapilotExtension.request_timeout = 30
        """,
    ).tag(config=True)

    max_upload_size = Integer(
        2 * 1024**3,
        help="""Largest request body, in bytes, forwarded to the data service.

        Bigger uploads (by ``Content-Length``, or the file size for ``ingest``) are refused
        with 413 before anything is sent. This also lifts the server's ``max_body_size`` for
        the forwarding route, whose bodies are streamed rather than buffered.

        Example::

            c.DatapilotExtension.max_upload_size = 10 * 1024**3  # 10 GiB
        """,
    ).tag(config=True)

    max_publish_size = Integer(
        DEFAULT_MAX_PUBLISH_BYTES,
        help="""Largest notebook publication, in bytes: the notebook and its files together.

        ``POST datapilot/api/v1/publish`` refuses a bigger one with 413 before anything is
        sent; keep it at the data service's ``DataService.max_publish_size`` (16 MiB by
        default), which checks again.

        Example::

            c.DatapilotExtension.max_publish_size = 64 * 1024**2
        """,
    ).tag(config=True)

    http_client: httpx.AsyncClient | None = None

    def initialize_settings(self) -> None:
        """Create the shared HTTP client and put it and the configuration into settings."""
        self.http_client = httpx.AsyncClient(
            timeout=httpx.Timeout(self.request_timeout),
            # An internal hop, like JupyterHub's own: never send it through a proxy that the
            # user's environment may name.
            trust_env=False,
        )
        self.settings.update(
            datapilot_http_client=self.http_client,
            datapilot_service_url=self.service_url,
            datapilot_api_token=self.api_token,
            datapilot_org=self.org,
            datapilot_max_upload_size=self.max_upload_size,
            datapilot_max_publish_size=self.max_publish_size,
        )
        if self.service_url and self.api_token:
            self.log.info("Datapilot: forwarding datapilot/api/v1/ to %s", self.service_url)
        else:
            self.log.warning(
                "Datapilot: DATAPILOT_URL or JUPYTERHUB_API_TOKEN is not set;"
                " datapilot/api/v1/ will answer 503"
            )

    def initialize_handlers(self) -> None:
        """Register the API routes (``base_url`` is prepended by jupyter_server)."""
        self.handlers.extend(
            [
                (rf"/{self.name}/api/v1/ingest", IngestAPIHandler),
                (rf"/{self.name}/api/v1/publish", PublishAPIHandler),
                (rf"/{self.name}/api/v1/(.*)", ForwardAPIHandler),
            ]
        )

    async def stop_extension(self) -> None:
        """Close the shared HTTP client and its connections."""
        if self.http_client is not None:
            await self.http_client.aclose()
            self.http_client = None
