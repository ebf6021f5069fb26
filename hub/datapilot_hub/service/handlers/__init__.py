"""HTTP handlers of the data service: parse, authorize, call the domain layer."""

from . import (
    aggregate,
    audit,
    dashboard_runtime,
    dashboards,
    datasets,
    insights,
    invitations,
    jobs,
    orgs,
    settings,
    system,
    visualizations,
)

default_handlers = [
    *system.default_handlers,
    *orgs.default_handlers,
    *invitations.default_handlers,
    *settings.default_handlers,
    *datasets.default_handlers,
    *insights.default_handlers,
    *visualizations.default_handlers,
    *dashboards.default_handlers,
    *aggregate.default_handlers,
    *jobs.default_handlers,
    *audit.default_handlers,
    *dashboard_runtime.default_handlers,
]
