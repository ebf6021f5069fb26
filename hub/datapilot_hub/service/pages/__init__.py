"""The data service's HTML pages: an organization's home (its dashboard gallery and
datasets), a dashboard's and a dataset's page, its team pages,
invitations, and the landing page. Paths are relative to the service prefix; the
styled 404 answers every other path of the service but the API's."""

from tornado import web

from . import dashboard_open, dashboards, datasets, home, invitation, team
from ._base import NotFoundPageHandler, environment, human_bytes, number, template_dir, when

__all__ = ["default_handlers", "environment", "human_bytes", "number", "template_dir", "when"]

default_handlers = [
    *home.default_handlers,
    *invitation.default_handlers,
    *datasets.default_handlers,
    *dashboards.default_handlers,
    *team.default_handlers,
    *dashboard_open.default_handlers,
    # the pages' own script and style (the CSP allows same-origin files only)
    (r"static/(.*)", web.StaticFileHandler, {"path": str(template_dir() / "static")}),
    (r"(.*)", NotFoundPageHandler),
]
