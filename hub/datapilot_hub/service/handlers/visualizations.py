"""Charts: POST /orgs/{org}/visualizations/generate, as a spec, a Bokeh item or a PNG."""

from __future__ import annotations

import asyncio

from ...domain._args import whole_number
from ...errors import bad_request
from .base import APIHandler
from .orgs import ORG

FORMATS = ("spec", "bokeh", "png")
THEMES = ("light", "dark")
#: the sizes a PNG may be asked in, in pixels
PNG_SIZES = (100, 2000)


def _size(handler: APIHandler, name: str, default: int) -> int:
    return whole_number(handler.query(name), name, default, *PNG_SIZES)


class GenerateVisualizationAPIHandler(APIHandler):
    """POST /orgs/{org}/visualizations/generate (``data:read``).

    ``?format=spec`` (the default) answers ``{"dataset", "version", "chart",
    "recommendation"}``; ``bokeh`` the chart as a Bokeh JSON item, for
    ``Bokeh.embed.embed_item``; ``png`` a picture (``width``, ``height`` in pixels).
    ``theme=dark`` draws the last two for a dark page. A read of the data: audited
    (``dataset.chart``) and charged to the ``download`` rate limit, like an aggregation.
    """

    audit_actions = {"POST": "dataset.chart"}

    async def post(self, org: str) -> None:
        ctx = self.org(org)
        fmt = self.query("format", "spec")
        if fmt not in FORMATS:
            raise bad_request("format", f"format must be one of {', '.join(FORMATS)}.")
        theme = self.query("theme", "light")
        if theme not in THEMES:
            raise bad_request("theme", "theme must be light or dark.")
        width, height = _size(self, "width", 640), _size(self, "height", 360)
        body = self.json_body()
        ctx.require("data:read")
        if isinstance(body.get("dataset"), str):
            self.audit_target = body["dataset"]
        await self.check_rate_limit("download", ctx)
        loop = asyncio.get_running_loop()
        answer = await loop.run_in_executor(None, self.app.charts.generate, ctx, body)
        self.audit_details = {
            "version": answer["version"],
            "type": answer["chart"]["type"],
            "format": fmt,
        }
        if fmt == "spec":
            self.write_json(answer)
            return
        from datapilot_charts import render_bokeh, render_png

        if fmt == "bokeh":
            item = await loop.run_in_executor(None, render_bokeh, answer["chart"], theme)
            self.write_json(item)
            return
        png = await loop.run_in_executor(None, render_png, answer["chart"], theme, width, height)
        self.set_header("Content-Type", "image/png")
        self.finish(png)


default_handlers = [
    (rf"/orgs/{ORG}/visualizations/generate", GenerateVisualizationAPIHandler),
]
