"""Datapilot from a notebook: ``import datapilot_kernel as dp``.

Inside a JupyterHub user server no setup is needed::

    import datapilot_kernel as dp

    dp.datasets()                                   # what the organization has
    df = dp.load("sales", columns=["region", "amount"])
    dp.aggregate("sales", {"amount": ["sum", "p90"]}, group_by="region",
                 time_bucket=("day", "month"), filter="day >= '2025-01-01'")
    dp.chart("sales", x="region", y="amount")       # a HoloViews object
    dp.insights("sales")                            # ranked, tested, with charts
    dp.save(df[df.amount > 0], "positive_sales")    # waits for ingestion
    dp.upload("~/data/Orders 2024.csv")             # dataset "orders_2024"
    dp.publish("sales.ipynb", kind="voila", title="Sales", pins={"sales": 3})
    dp.publish_examples()                           # the sample dataset and dashboards

The module-level functions use a default :class:`DatapilotClient` configured from
``$DATAPILOT_URL``, ``$JUPYTERHUB_API_TOKEN`` and ``$DATAPILOT_ORG``; create a client
yourself to talk to another organization. Errors raise :class:`DatapilotError`, whose
message is the service's (IPython shows it as one line, not a traceback); ``dp.save`` and
``dp.upload`` return a :class:`DatasetInfo`, a dict that Jupyter shows as a summary.
"""

from ._client import DatapilotClient
from ._dashboards import DashboardInfo
from ._display import DatasetInfo
from ._errors import DatapilotError
from ._functions import (
    aaggregate,
    achart,
    adatasets,
    aggregate,
    ainsights,
    aload,
    apublish,
    asave,
    aupload,
    chart,
    datasets,
    get_client,
    insights,
    load,
    publish,
    publish_examples,
    reset_client,
    save,
    upload,
)
from ._insights import Insights
from ._validation import name_from_path, validate_mode, validate_name

__all__ = [
    "DatapilotClient",
    "DashboardInfo",
    "DatapilotError",
    "DatasetInfo",
    "Insights",
    "aaggregate",
    "achart",
    "adatasets",
    "aggregate",
    "ainsights",
    "aload",
    "apublish",
    "asave",
    "aupload",
    "chart",
    "datasets",
    "get_client",
    "insights",
    "load",
    "name_from_path",
    "publish",
    "publish_examples",
    "reset_client",
    "save",
    "upload",
    "validate_mode",
    "validate_name",
]
