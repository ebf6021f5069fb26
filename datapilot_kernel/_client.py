"""The client: a connection to the data service for one organization, and its calls.

Each call is one documented sync method whose body is its flow (:mod:`._calls`); the
coroutine methods (``aload``...) and the module-level functions (``dp.load``...) are
derived from it (:mod:`._derive`).

pandas, pyarrow, httpx, tqdm and asyncio are imported inside the functions that use them, so
``import datapilot_kernel`` stays cheap in every kernel that never calls it.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any, TypeVar

from traitlets import Bool, Dict, Float, Integer, Unicode, default, validate
from traitlets.config import Configurable

from datapilot_contract import DASHBOARD_PINS_ENV, pins_from_environ

from . import _calls, _dashboards, _flow
from ._dashboards import DashboardInfo
from ._derive import asynchronous, runs
from ._display import DatasetInfo
from ._errors import DatapilotError
from ._insights import Insights
from ._transform import Transform
from ._validation import validate_org

if TYPE_CHECKING:
    import pandas as pd

T = TypeVar("T")


class DatapilotClient(Configurable):
    """A connection to the Datapilot data service, for one organization.

    Inside a JupyterHub user server no arguments are needed: the URL, token and
    organization come from the environment the spawner sets. Every trait can also be
    given as a keyword argument or set in IPython's configuration
    (``c.DatapilotClient.<trait>``).

    Examples
    --------
    >>> client = DatapilotClient(org="acme")        # doctest: +SKIP
    >>> df = client.load("sales", columns=["region", "amount"])  # doctest: +SKIP

    Each call is a sync method whose ``@runs(...)`` names the flow that does the work
    (:mod:`datapilot_kernel._calls`): the method gives the signature and documentation,
    and its ``a``-prefixed coroutine (``aload``) runs the same flow on the event loop.
    """

    url = Unicode(
        help="""URL of the Datapilot data service, ending in ``/``.

        Requests go to ``{url}api/v1/...``. Defaults to ``$DATAPILOT_URL``; a missing
        trailing slash is added.

        Example::

            c.DatapilotClient.url = "http://127.0.0.1:8000/services/datapilot/"
        """,
    ).tag(config=True)

    @default("url")
    def _default_url(self) -> str:
        # traitlets does not pass dynamic defaults through @validate
        return _with_slash(os.environ.get("DATAPILOT_URL", ""))

    @validate("url")
    def _add_slash(self, proposal: dict[str, Any]) -> str:
        return _with_slash(proposal["value"])

    token = Unicode(
        help="""JupyterHub API token sent as ``Authorization: token <token>``.

        Defaults to ``$DATAPILOT_TOKEN`` (in a published dashboard: its viewer's
        read-only token), else ``$JUPYTERHUB_API_TOKEN``, which JupyterHub sets in every
        user server. Requests act with the permissions of the token's user.

        Example::

            c.DatapilotClient.token = os.environ["MY_DATAPILOT_TOKEN"]
        """,
    ).tag(config=True)

    @default("token")
    def _default_token(self) -> str:
        return os.environ.get("DATAPILOT_TOKEN") or os.environ.get("JUPYTERHUB_API_TOKEN", "")

    org = Unicode(
        help="""Slug of the organization whose datasets the client reads and writes.

        Defaults to ``$DATAPILOT_ORG``. A slug is 2 to 30 lowercase letters, digits and
        single inner hyphens.

        Example::

            c.DatapilotClient.org = "acme"
        """,
    ).tag(config=True)

    @default("org")
    def _default_org(self) -> str:
        return os.environ.get("DATAPILOT_ORG", "")

    progress = Bool(
        True,
        help="""Whether to show tqdm progress bars.

        Bars are shown for transfers bigger than ``progress_threshold`` and for
        server-side jobs that take longer than half a second.

        Example::

            c.DatapilotClient.progress = False
        """,
    ).tag(config=True)

    progress_threshold = Integer(
        4 << 20,
        help="""Size in bytes above which a download or upload shows a progress bar.

        The size is the response's ``Content-Length`` for downloads and the file size
        for uploads. The default is 4 MiB.

        Example::

            c.DatapilotClient.progress_threshold = 64 * 1024 * 1024
        """,
    ).tag(config=True)

    timeout = Float(
        60.0,
        help="""Seconds to wait for the service to connect, accept or send data.

        This bounds each network operation, not a whole transfer: a large download
        that keeps receiving data is not interrupted. Waiting for a job is not bounded.

        Example::

            c.DatapilotClient.timeout = 300
        """,
    ).tag(config=True)

    pins = Dict(
        help=f"""Dataset versions :meth:`load` reads when it is given no ``version``.

        ``{{"sales": 3}}`` makes ``load("sales")`` read version 3. Inside a published
        dashboard the runtime sets ``${DASHBOARD_PINS_ENV}`` to the versions the publisher
        pinned, and this defaults to it, so the dashboard shows the data it was published
        with; elsewhere it is empty (every dataset's current version).

        Example::

            c.DatapilotClient.pins = {{"sales": 3}}
        """,
    ).tag(config=True)

    @default("pins")
    def _default_pins(self) -> dict[str, int]:
        return pins_from_environ(dict(os.environ))

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        # traitlets computes defaults on first access; settle them now so a client keeps
        # the environment it was created in
        for name in ("url", "token", "org", "pins"):
            getattr(self, name)

    # -- calls ------------------------------------------------------------------------

    @runs(_calls.datasets)
    def datasets(self) -> pd.DataFrame:
        """The organization's datasets.

        Returns
        -------
        pandas.DataFrame
            One row per dataset, with columns ``name``, ``version`` (the current
            version), ``rows``, ``columns`` (how many), ``bytes`` and ``updated``
            (a UTC timestamp).

        Raises
        ------
        DatapilotError
            If the client is not configured or the service refuses the call.
        """

    @runs(_calls.load)
    def load(
        self,
        name: str,
        version: int | None = None,
        columns: list[str] | str | None = None,
        filters: Any = None,
    ) -> pd.DataFrame:
        """Read a dataset into a pandas DataFrame.

        The data is downloaded as Parquet (with a progress bar when it is bigger than
        ``progress_threshold``) and decoded with pyarrow.

        Parameters
        ----------
        name : str
            The dataset's name.
        version : int, optional
            A version number; by default the one :attr:`pins` names (in a dashboard
            published with pins), else the current version.
        columns : list of str or str, optional
            Only these columns, selected by the service (so only they are
            transferred), in this order. By default all columns.
        filters : list of tuple, list of list of tuple, or pyarrow.compute.Expression, optional
            Rows to keep, in pyarrow's DNF filter format:
            ``[("region", "==", "EU"), ("amount", ">", 0)]`` keeps rows where all
            conditions hold; ``[[...], [...]]`` keeps rows where any inner list holds.
            Filters are applied **on the client**, by
            :func:`pyarrow.parquet.read_table`, after the selected columns have been
            downloaded: they reduce memory, not transfer. Columns named in tuple
            filters are downloaded even if ``columns`` leaves them out (and then
            dropped); with an ``Expression``, ``columns`` must include the columns it
            uses.

        Returns
        -------
        pandas.DataFrame

        Raises
        ------
        DatapilotError
            If the name is invalid, the dataset or version does not exist (or is not
            visible to you), or a column is unknown.
        """

    @runs(_calls.load_dask)
    def load_dask(
        self,
        name: str,
        version: int | None = None,
        columns: list[str] | str | None = None,
    ) -> Any:
        """A lazy dask DataFrame over a dataset, one partition per stored part.

        The service lists the version's parts (its Parquet row groups); nothing else is
        downloaded until a computation needs it, and then only the parts and the columns
        it uses, each fetched with this client's token. ``ddf.head()`` reads one part;
        ``ddf.amount.sum().compute()`` reads the ``amount`` column of every part. The
        version is fixed when the frame is made: a new version does not change it.

        Parameters
        ----------
        name : str
            The dataset's name.
        version : int, optional
            A version number; by default the current version.
        columns : list of str or str, optional
            Only these columns, in this order. By default all columns.

        Returns
        -------
        dask.dataframe.DataFrame

        Raises
        ------
        DatapilotError
            If the name is invalid, the dataset or version does not exist (or is not
            visible to you), or a column is unknown; a part that cannot be read raises
            it when the computation runs.
        """

    @runs(_calls.aggregate)
    def aggregate(
        self,
        name: str,
        metrics: dict[str, Any],
        group_by: list[str] | str | None = None,
        time_bucket: dict[str, str] | tuple[str, str] | None = None,
        filter: str | None = None,
        derive: dict[str, str] | None = None,
        sort: list[Any] | str | None = None,
        limit: int | None = None,
        other: bool = False,
        version: int | None = None,
    ) -> pd.DataFrame:
        """Aggregate a dataset on the service and return the answer as a DataFrame.

        The rows never leave the service: it groups, buckets and computes the metrics
        over the stored Parquet files (reading only the columns needed, skipping what the
        filter excludes) and sends back the groups, as Arrow.

        Parameters
        ----------
        name : str
            The dataset's name.
        metrics : dict
            Column -> list of metrics: ``count``, ``count_distinct``, ``sum``, ``mean``,
            ``median``, ``min``, ``max``, percentiles ``p90`` (``p99_9`` for 99.9) or
            ``{"percentile": 0.9}``; ``"*"`` counts rows: ``{"amount": ["sum", "p90"],
            "*": ["count"]}``. The answer's columns are ``amount_sum``, ``amount_p90``,
            ``count``.
        group_by : list of str or str, optional
            Columns whose values make the groups.
        time_bucket : dict or tuple, optional
            ``{"column": "day", "unit": "month"}`` or ``("day", "month")``: a date or
            timestamp column truncated to ``hour``, ``day``, ``week`` (ISO, from
            Monday), ``month``, ``quarter`` or ``year``; the answer keeps the column's
            name.
        filter : str, optional
            Rows to keep, in Datapilot's expression language:
            ``"day >= '2025-03-01' and region not in ('x', 'y') and amount is not null"``.
            Comparisons, ``and``/``or``/``not``, ``in``, ``is [not] null``, arithmetic,
            date parts (``year(day) = 2025``) and string functions.
        derive : dict, optional
            New columns from expressions, usable everywhere above:
            ``{"revenue": "amount * units"}``.
        sort : list, optional
            The answer's columns to order by, ``"-name"`` for descending:
            ``["-amount_sum"]``. By default groups come in key order (time buckets in time
            order), or largest first (by the first metric) when ``limit`` is set.
        limit : int, optional
            The most groups: the top ones in the ``sort`` order. With a time bucket and
            ``group_by``, the most series, ranked over the whole range.
        other : bool
            With ``limit`` and ``group_by``: sum up the groups past the limit as one more
            group (null keys, ``other`` true), its metrics computed from its rows.
        version : int, optional
            A version number; by default the current version.

        Returns
        -------
        pandas.DataFrame
            One row per group (and time bucket).

        Raises
        ------
        DatapilotError
            If the dataset or version does not exist (or is not visible to you), or the
            aggregation is refused (the message names the field; for a filter,
            ``details["position"]`` is where it went wrong).
        """

    @runs(_calls.chart)
    def chart(
        self,
        name: str,
        chart_type: str | None = None,
        x: str | None = None,
        y: str | None = None,
        group: str | None = None,
        columns: list[str] | None = None,
        aggregation: str | None = None,
        time_bucket: str | None = None,
        filter: str | None = None,
        limit: int | None = None,
        bins: int | None = None,
        title: str | None = None,
        version: int | None = None,
    ) -> Any:
        """A chart of a dataset, as a HoloViews object (Bokeh backend).

        The service aggregates the data and answers a chart spec, the same one that
        draws the chart in web pages and thumbnails; this builds it with HoloViews.
        Leave out the type or the columns and the service recommends them from the
        columns' types and cardinalities (a date and a measure: a line; a category and
        a measure: bars; two measures: a scatter plot; one measure: a histogram), and
        says why in ``chart.recommendation["reason"]``.

        Parameters
        ----------
        name : str
            The dataset's name.
        chart_type : str, optional
            The kind of chart: ``bar``, ``line``, ``area``, ``scatter``, ``histogram``,
            ``box``, ``heatmap`` or ``pie``.
        x, y, group : str, optional
            The column along x, the measure (on y; a heatmap's cells), and the column
            whose values make series (a heatmap's second axis).
        columns : list of str, optional
            Up to three columns whose roles the service chooses (instead of x, y,
            group).
        aggregation : str, optional
            How ``y`` is summed up per x value: ``sum`` (the default), ``mean``,
            ``median``, ``min``, ``max``, ``count`` or ``count_distinct``; rows are
            counted without ``y``.
        time_bucket : {"hour", "day", "week", "month", "quarter", "year"}, optional
            The bucket of a date or time along x; by default the finest that gives at
            most 400 points.
        filter : str, optional
            Rows to keep, in the expression language of :meth:`aggregate`.
        limit : int, optional
            The most bars, slices or series; the rest become "other".
        bins : int, optional
            A histogram's bins (30 by default).
        title : str, optional
            A title instead of the one made from the columns.
        version : int, optional
            A version number; by default the current version.

        Returns
        -------
        holoviews.Element or holoviews.Overlay
            The chart; its ``spec`` and ``recommendation`` attributes hold what the
            service answered.

        Raises
        ------
        DatapilotError
            If the request is refused: an unknown column, a measure that is not
            numeric, too many categories for a pie (the message names the problem), or
            a dataset that does not exist or is not visible to you.
        """

    @runs(_calls.insights)
    def insights(self, name: str, version: int | None = None, summary: bool = False) -> Insights:
        """The ranked insights of a dataset, each from a named statistical test.

        Trends, level shifts, cycles, outliers, correlations, dominant categories,
        categories apart from the rest, missing values, repeated rows. Each comes with its
        numbers (statistic, p-value after the multiple-testing correction, effect size), a
        sentence that quotes them and a chart; a large dataset is sampled, and each
        insight says on how many rows it was computed. The service computes them once per
        version.

        Parameters
        ----------
        name : str
            The dataset's name.
        version : int, optional
            A version number; by default the current version.
        summary : bool
            Also ask the service's narrator (when the hub has one) for a short summary.

        Returns
        -------
        Insights
            A list of the insights, strongest first; Jupyter shows them with their
            charts. ``.chart(i)`` is insight ``i``'s chart as a HoloViews object,
            ``.frame()`` the list as a DataFrame.

        Raises
        ------
        DatapilotError
            If the dataset does not exist (or is not visible to you), your role may not
            run insights, or the insights rate limit is reached.
        """

    @runs(_calls.save)
    def save(self, df: pd.DataFrame, name: str, mode: str = "create") -> DatasetInfo:
        """Store a DataFrame as a dataset and wait until the service has ingested it.

        The frame is written to a temporary Parquet file with pyarrow, uploaded, and
        the ingestion job is followed until it ends (with a progress bar when it takes
        a while). A named index is stored as a column; an unnamed index is dropped.
        Interrupting the wait does not stop the job on the service.

        Parameters
        ----------
        df : pandas.DataFrame
            The data. The service normalises column names to lower snake_case.
        name : str
            The dataset's name: a lowercase letter, then up to 62 lowercase letters,
            digits or underscores.
        mode : {"create", "replace", "append"}
            ``"create"`` fails if the dataset exists; ``"replace"`` and ``"append"``
            make a new version holding these rows only, or the previous rows plus
            these.

        Returns
        -------
        DatasetInfo
            The dataset as the service describes it, a dict: ``name``, ``version``,
            ``rows``, ``columns`` (name, label, type, nullable, stats), ``report``,
            ``versions``. Jupyter shows it as a summary: its columns with their types
            and how each was read.

        Raises
        ------
        DatapilotError
            If the name or mode is invalid, the service refuses the upload, or the
            ingestion job fails (the message is the job's error).
        """

    @runs(_calls.upload)
    def upload(
        self,
        path: str | os.PathLike[str],
        name: str | None = None,
        mode: str = "create",
        options: dict[str, Any] | None = None,
    ) -> DatasetInfo:
        """Upload a local CSV, Excel or Parquet file as a dataset and wait for ingestion.

        The file is streamed from disk (with a progress bar when it is bigger than
        ``progress_threshold``); its content type is guessed from the extension.

        Parameters
        ----------
        path : str or os.PathLike
            The file to upload.
        name : str, optional
            The dataset's name; by default the file's stem normalised with
            :func:`name_from_path` (``Sales Report.csv`` → ``sales_report``).
        mode : {"create", "replace", "append"}
            As in :meth:`save`.
        options : dict, optional
            Reading options passed to the service's ingestion as JSON.

        Returns
        -------
        DatasetInfo
            The dataset as in :meth:`save`.

        Raises
        ------
        DatapilotError
            If the name or mode is invalid, the service refuses the file (unsupported
            type, too large, unreadable) or the ingestion job fails.
        FileNotFoundError
            If ``path`` does not exist.
        """

    @runs(_dashboards.publish)
    def publish(
        self,
        path: str | os.PathLike[str],
        kind: str = "voila",
        title: str | None = None,
        slug: str | None = None,
        description: str = "",
        files: list[str] | None = None,
        pins: dict[str, int | None] | None = None,
    ) -> DashboardInfo:
        """Publish a notebook as a read-only dashboard of the organization.

        The notebook is snapshotted with the files it reads (those named in ``files``,
        and those its code quotes that exist next to it, like ``"data/regions.csv"``): later
        edits change nothing until it is published again, as a new version.

        Parameters
        ----------
        path : str or os.PathLike
            The notebook (relative to the working directory, or absolute).
        kind : {"voila", "panel"}
            Served with Voilà (the notebook's outputs and widgets, no code) or as a Panel
            app (its ``.servable()`` objects).
        title : str, optional
            Default: the notebook's file name.
        slug : str, optional
            The last part of its address; default from the file name
            (``Sales Report.ipynb`` -> ``sales-report``).
        description : str
            A few sentences for the gallery.
        files : list of str, optional
            More files to include, relative to the notebook's folder.
        pins : dict, optional
            ``{"sales": 3}`` makes the dashboard's ``dp.load("sales")`` read version 3;
            ``{"sales": None}`` (or leaving it out) follows the latest version.

        Returns
        -------
        DashboardInfo
            The dashboard as the service describes it (a dict; ``url`` is its address).

        Raises
        ------
        DatapilotError
            If a name or file is refused, your role may not publish, the slug is someone
            else's dashboard, or a pinned version does not exist.
        """

    def publish_examples(self) -> list[DashboardInfo]:
        """Upload the sample dataset (once) and publish the two example dashboards.

        The dataset ``sample_sales`` and the dashboards ``example-sales-voila`` (Voilà
        with ipywidgets and HoloViews) and ``example-sales-panel`` (Panel) come with
        Datapilot (``notebooks/``); publishing again makes new versions.

        Returns
        -------
        list of DashboardInfo
        """
        return _dashboards.publish_examples(self)

    adatasets = asynchronous(datasets)
    aload = asynchronous(load)
    aload_dask = asynchronous(load_dask)
    aaggregate = asynchronous(aggregate)
    achart = asynchronous(chart)
    ainsights = asynchronous(insights)
    asave = asynchronous(save)
    aupload = asynchronous(upload)
    apublish = asynchronous(publish)

    # -- configuration and drivers --------------------------------------------------

    def transform(self, name: str, version: int | None = None) -> Transform:
        """Start a recipe on dataset ``name``: a builder of declarative steps.

        ``dp.transform("sales").dropna(["amount"]).filter("region != 'x'")`` builds the
        steps; ``.preview()`` runs them on a sample, ``.save("sales_clean")`` on the
        service's Dask cluster into a dataset, ``.save_recipe(...)`` keeps them by name.

        Parameters
        ----------
        name : str
            The source dataset.
        version : int, optional
            A version of it; by default the current one.

        Returns
        -------
        Transform
        """
        return Transform(self, name, version)

    def _check_config(self) -> str:
        """Return the organization slug, or raise saying which settings are missing."""
        missing = [
            (trait, env)
            for trait, env in (
                ("url", "DATAPILOT_URL"),
                ("token", "JUPYTERHUB_API_TOKEN"),
                ("org", "DATAPILOT_ORG"),
            )
            if not getattr(self, trait)
        ]
        if missing:
            envs = " and ".join(env for _, env in missing)
            args = ", ".join(f"{trait}=..." for trait, _ in missing)
            plural = "s" if len(missing) > 1 else ""
            raise DatapilotError(
                f"The Datapilot client is not configured: set the environment variable{plural}"
                f" {envs} (JupyterHub user servers get them from the spawner), or pass"
                f" {args} to DatapilotClient.",
                code="not_configured",
                details={"missing": [env for _, env in missing]},
            )
        return validate_org(self.org)

    def _client_options(self) -> dict[str, Any]:
        """Keyword arguments shared by the sync and async httpx clients."""
        return {
            "base_url": f"{self.url}api/v1/",
            "headers": {"Authorization": f"token {self.token}"},
            "timeout": self.timeout,
        }

    def _run(self, flow: _flow.Flow[T]) -> T:
        """Run a flow with blocking I/O."""
        return _flow.run(self, flow)

    async def _arun(self, flow: _flow.Flow[T]) -> T:
        """Run a flow on the event loop."""
        return await _flow.arun(self, flow)


def _with_slash(url: str) -> str:
    """``url`` without surrounding blanks and ending in ``/`` (unless empty)."""
    url = str(url).strip()
    return url if not url or url.endswith("/") else url + "/"
