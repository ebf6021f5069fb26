"""HTTP handlers of the data service: parse, authorize, call the domain layer."""

from . import (
    aggregate,
    audit,
    dashboard_runtime,
    dashboards,
    datasets,
    gateway,
    insights,
    invitations,
    jobs,
    orgs,
    parts,
    recipes,
    settings,
    system,
    transform,
    visualizations,
)

default_handlers = [
    *system.default_handlers,
    *orgs.default_handlers,
    *invitations.default_handlers,
    *settings.default_handlers,
    *datasets.default_handlers,
    *parts.default_handlers,
    *insights.default_handlers,
    *visualizations.default_handlers,
    *dashboards.default_handlers,
    *aggregate.default_handlers,
    *transform.default_handlers,
    *recipes.default_handlers,
    *jobs.default_handlers,
    *audit.default_handlers,
    *gateway.default_handlers,
    *dashboard_runtime.default_handlers,
]
