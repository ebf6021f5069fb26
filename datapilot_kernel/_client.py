"""The notebook client of the Datapilot data service.

Every call is written once, as a *flow*: a generator that yields the steps it needs
(an HTTP request, a pause, some CPU-bound work) and receives their results. A sync
driver (:class:`httpx.Client`, :func:`time.sleep`) and an async driver
(:class:`httpx.AsyncClient`, :func:`asyncio.sleep`, :func:`asyncio.to_thread`) run the
same flows, so request building, response handling and job polling exist once. httpx
uses the same shape for its own ``Auth.auth_flow``.

pandas, pyarrow, httpx, tqdm and asyncio are imported inside the functions that use them, so
``import datapilot_kernel`` stays cheap in every kernel that never calls it.
"""

from __future__ import annotations

import json
import os
import re
import threading
import time
import unicodedata
from collections.abc import Callable, Generator, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, TypeVar
from urllib.parse import quote

from traitlets import Bool, Float, Integer, Unicode, default, validate
from traitlets.config import Configurable

from datapilot_contract import ContractError, check_dataset_name, check_mode, check_org_slug

if TYPE_CHECKING:
    import httpx
    import pandas as pd
    from tqdm import tqdm

T = TypeVar("T")

TERMINAL_STATES = ("succeeded", "failed", "cancelled")
DATASET_LIST_COLUMNS = ["name", "version", "rows", "columns", "bytes", "updated"]
PARQUET_CONTENT_TYPE = "application/vnd.apache.parquet"
CONTENT_TYPES = {
    ".csv": "text/csv",
    ".tsv": "text/tab-separated-values",
    ".txt": "text/plain",
    ".parquet": PARQUET_CONTENT_TYPE,
    ".pq": PARQUET_CONTENT_TYPE,
    ".xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    ".xls": "application/vnd.ms-excel",
}
# downloads up to this size stay in memory; bigger ones spill to a temporary file
_SPOOL_MAX = 64 << 20
_POLL_START, _POLL_MAX, _POLL_FACTOR = 0.2, 1.0, 1.5
# only idempotent GETs are retried on 429, and never wait longer than this per retry
_MAX_RETRIES, _MAX_RETRY_AFTER = 3, 30.0


class DatapilotError(Exception):
    """A call to the Datapilot service failed, or could not be made.

    ``str(error)`` is the service's ``message``, a sentence meant for a person.

    Parameters
    ----------
    message : str
        What went wrong.
    status : int, optional
        HTTP status of the service's answer; None when the error was raised before any
        request (configuration, validation) or by a failed job.
    code : str, optional
        Machine-readable code, the service's ``error`` field (``"not_found"``,
        ``"invalid_name"``...), or one of the client's own: ``"not_configured"``,
        ``"invalid_name"`` (a dataset name, or the organization slug: ``details["field"]``
        says which), ``"invalid_mode"``, ``"job_failed"``,
        ``"job_cancelled"``, ``"unreachable"`` (no answer at all), or ``"http_<status>"``
        when the answer was not a Datapilot error body.
    details : dict, optional
        The service's ``details`` (a field name, a limit...), or the client's.
    """

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        code: str | None = None,
        details: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.code = code
        self.details: dict[str, Any] = details or {}

    @classmethod
    def from_response(cls, response: httpx.Response) -> DatapilotError:
        """The error a failed response stands for.

        Parameters
        ----------
        response : httpx.Response
            An answer with a status of 300 or more whose body has been read. Datapilot
            bodies are ``{"error", "message", "details"}``; JupyterHub's own (a bad token
            caught by the hub) have ``message`` only; anything else (an HTML page from
            a proxy) gives a message built from the status.
        """
        status = response.status_code
        body: Any = None
        try:
            body = response.json()
        except ValueError:
            pass
        if not isinstance(body, dict):
            body = {}
        message = body.get("message")
        if not isinstance(message, str) or not message:
            message = f"The Datapilot service answered {status} {response.reason_phrase}".rstrip()
            try:
                message += f" to {response.request.method} {response.request.url}."
            except RuntimeError:  # a response built without its request
                message += "."
        code = body.get("error")
        details = body.get("details")
        return cls(
            message,
            status=status,
            code=code if isinstance(code, str) and code else f"http_{status}",
            details=details if isinstance(details, dict) else {},
        )


def _checked(check: Callable[[Any, str], str], value: Any, field: str) -> str:
    """Run one of :mod:`datapilot_contract`'s checks; its refusal becomes a DatapilotError."""
    try:
        return check(value, field)
    except ContractError as e:
        raise DatapilotError(e.message, code=e.code, details={"field": e.field}) from None


def validate_name(name: Any) -> str:
    """Return ``name`` if it is a valid dataset name, else raise :class:`DatapilotError`.

    Parameters
    ----------
    name : str
        A lowercase letter, then up to 62 lowercase letters, digits or underscores.
    """
    return _checked(check_dataset_name, name, "name")


def validate_mode(mode: Any) -> str:
    """Return ``mode`` if it is a valid upload mode, else raise :class:`DatapilotError`.

    Parameters
    ----------
    mode : str
        ``"create"`` (fails if the dataset exists), ``"replace"`` (a new version with
        these rows only) or ``"append"`` (a new version with these rows added).
    """
    return _checked(check_mode, mode, "mode")


def name_from_path(path: str | os.PathLike[str]) -> str:
    """The dataset name a file uploads to by default: its stem, normalised.

    The stem is turned into lower snake_case ASCII the way the service normalises column
    names, so ``"Sales Report 2024.csv"`` becomes ``sales_report_2024``; a stem that
    does not start with a letter gets a ``d_`` prefix.

    Parameters
    ----------
    path : str or os.PathLike
        The local file.
    """
    stem = Path(path).name.split(".")[0]
    text = unicodedata.normalize("NFKD", stem).encode("ascii", "ignore").decode()
    name = re.sub(r"[^0-9a-zA-Z]+", "_", text).strip("_").lower() or "dataset"
    if not name[0].isalpha():
        name = f"d_{name}"
    return name[:63].rstrip("_")


def content_type_for(path: str | os.PathLike[str]) -> str:
    """The content type an upload of ``path`` is sent with, from its extension.

    Parameters
    ----------
    path : str or os.PathLike
        The local file; unknown extensions are sent as ``application/octet-stream`` and
        the service decides from the content.
    """
    return CONTENT_TYPES.get(Path(path).suffix.lower(), "application/octet-stream")


def filter_columns(filters: Any) -> list[str]:
    """The column names a pyarrow DNF filter refers to, in order of appearance.

    Parameters
    ----------
    filters : list of tuple, list of list of tuple, or None
        ``[("col", op, value), ...]`` (all must hold) or a list of such lists (any
        must hold). A :class:`pyarrow.compute.Expression` names no columns here.
    """
    if not isinstance(filters, (list, tuple)):
        return []
    clauses: Iterable[Any] = filters
    if (
        filters
        and isinstance(filters[0], (list, tuple))
        and filters[0]
        and not isinstance(filters[0][0], str)
    ):
        clauses = [clause for conjunction in filters for clause in conjunction]
    names: list[str] = []
    for clause in clauses:
        if isinstance(clause, (list, tuple)) and clause and isinstance(clause[0], str):
            if clause[0] not in names:
                names.append(clause[0])
    return names


def raise_for_job(job: dict[str, Any]) -> None:
    """Raise :class:`DatapilotError` if a finished job did not succeed.

    Parameters
    ----------
    job : dict
        The service's job model, ``{"id", "state", "progress", "error", ...}``.
    """
    if job.get("state") == "failed":
        raise DatapilotError(
            job.get("error") or f"Job {job.get('id')} failed.",
            code="job_failed",
            details={"job": job},
        )
    if job.get("state") == "cancelled":
        raise DatapilotError(
            f"Job {job.get('id')} was cancelled.", code="job_cancelled", details={"job": job}
        )


# -- the steps a flow yields --------------------------------------------------------


@dataclass
class _Request:
    """An HTTP request to ``{url}api/v1/{path}``; the flow receives the response."""

    method: str
    path: str
    params: dict[str, str] | None = None
    data: dict[str, str] | None = None
    files: dict[str, tuple[str, IO[bytes], str]] | None = None
    # when set, a successful body is streamed into this file instead of memory
    sink: IO[bytes] | None = None
    label: str = ""


@dataclass
class _Sleep:
    """Wait this many seconds; the flow receives None."""

    seconds: float


@dataclass
class _Work:
    """CPU-bound work (Parquet encoding); async runs it in a thread. Receives its result."""

    func: Callable[[], Any]


_Step = _Request | _Sleep | _Work
Flow = Generator[_Step, Any, T]


class _ProgressReader:
    """A file object for httpx's multipart body that advances a progress bar as it is read."""

    def __init__(self, f: IO[bytes], bar: tqdm) -> None:
        self._f = f
        self._bar = bar

    def read(self, size: int = -1) -> bytes:
        chunk = self._f.read(size)
        self._bar.update(len(chunk))
        return chunk

    def seek(self, offset: int, whence: int = os.SEEK_SET) -> int:
        # httpx rewinds before sending the body (again on a retried request)
        position = self._f.seek(offset, whence)
        if position == 0 and self._bar.n:
            self._bar.reset(self._bar.total)
        return position

    def tell(self) -> int:
        return self._f.tell()

    def fileno(self) -> int:
        return self._f.fileno()


class _Download:
    """Writes a streamed body to a request's sink, with a bar when it is big."""

    def __init__(
        self, client: DatapilotClient, request: _Request, response: httpx.Response
    ) -> None:
        assert request.sink is not None
        self.sink = request.sink
        try:
            total: int | None = int(response.headers["content-length"])
        except (KeyError, ValueError):
            total = None
        self.bar = client._byte_bar(total, request.label)

    def write(self, chunk: bytes) -> None:
        self.sink.write(chunk)
        if self.bar is not None:
            self.bar.update(len(chunk))

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


# -- the client ---------------------------------------------------------------------


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

        Defaults to ``$JUPYTERHUB_API_TOKEN``, which JupyterHub sets in every user
        server. Requests act with the permissions of the token's user.

        Example::

            c.DatapilotClient.token = os.environ["MY_DATAPILOT_TOKEN"]
        """,
    ).tag(config=True)

    @default("token")
    def _default_token(self) -> str:
        return os.environ.get("JUPYTERHUB_API_TOKEN", "")

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

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        # traitlets computes defaults on first access; settle them now so a client keeps
        # the environment it was created in
        for name in ("url", "token", "org"):
            getattr(self, name)

    # -- public calls: sync ---------------------------------------------------------

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
        return self._run(self._datasets_flow())

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
            A version number; by default the current version.
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
        return self._run(self._load_flow(name, version, columns, filters))

    def save(self, df: pd.DataFrame, name: str, mode: str = "create") -> dict[str, Any]:
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
        dict
            The dataset as the service describes it: ``name``, ``version``, ``rows``,
            ``columns`` (name, label, type, nullable, stats), ``report``, ``versions``.

        Raises
        ------
        DatapilotError
            If the name or mode is invalid, the service refuses the upload, or the
            ingestion job fails (the message is the job's error).
        """
        return self._run(self._save_flow(df, name, mode))

    def upload(
        self,
        path: str | os.PathLike[str],
        name: str | None = None,
        mode: str = "create",
        options: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
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
        dict
            The dataset as in :meth:`save`.

        Raises
        ------
        DatapilotError
            If the name or mode is invalid, the service refuses the file (unsupported
            type, too large, unreadable) or the ingestion job fails.
        FileNotFoundError
            If ``path`` does not exist.
        """
        return self._run(self._upload_flow(path, name, mode, options))

    # -- public calls: async --------------------------------------------------------

    async def adatasets(self) -> pd.DataFrame:
        """The organization's datasets, without blocking the event loop.

        Returns
        -------
        pandas.DataFrame
            As :meth:`datasets`.
        """
        return await self._arun(self._datasets_flow())

    async def aload(
        self,
        name: str,
        version: int | None = None,
        columns: list[str] | str | None = None,
        filters: Any = None,
    ) -> pd.DataFrame:
        """Read a dataset into a pandas DataFrame, without blocking the event loop.

        Parameters
        ----------
        name : str
            The dataset's name.
        version : int, optional
            A version number; by default the current version.
        columns : list of str or str, optional
            Only these columns.
        filters : list of tuple, list of list of tuple, or pyarrow.compute.Expression, optional
            pyarrow DNF filters applied on the client, as in :meth:`load`.

        Returns
        -------
        pandas.DataFrame
        """
        return await self._arun(self._load_flow(name, version, columns, filters))

    async def asave(self, df: pd.DataFrame, name: str, mode: str = "create") -> dict[str, Any]:
        """Store a DataFrame as a dataset, without blocking the event loop.

        Parameters
        ----------
        df : pandas.DataFrame
            The data.
        name : str
            The dataset's name.
        mode : {"create", "replace", "append"}
            As in :meth:`save`.

        Returns
        -------
        dict
            The dataset as in :meth:`save`.
        """
        return await self._arun(self._save_flow(df, name, mode))

    async def aupload(
        self,
        path: str | os.PathLike[str],
        name: str | None = None,
        mode: str = "create",
        options: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """Upload a local file as a dataset, without blocking the event loop.

        Parameters
        ----------
        path : str or os.PathLike
            The file to upload.
        name : str, optional
            The dataset's name; by default the file's normalised stem.
        mode : {"create", "replace", "append"}
            As in :meth:`save`.
        options : dict, optional
            Reading options passed to the service's ingestion.

        Returns
        -------
        dict
            The dataset as in :meth:`save`.
        """
        return await self._arun(self._upload_flow(path, name, mode, options))

    # -- flows: each call written once -----------------------------------------------

    def _datasets_flow(self) -> Flow[pd.DataFrame]:
        org = self._check_config()
        response = yield from self._call(_Request("GET", f"orgs/{org}/datasets"))
        return _datasets_frame(response.json().get("datasets", []))

    def _load_flow(
        self, name: str, version: int | None, columns: list[str] | str | None, filters: Any
    ) -> Flow[pd.DataFrame]:
        import tempfile

        validate_name(name)
        if isinstance(columns, str):
            columns = [columns]
        org = self._check_config()
        params = {"format": "parquet"}
        if version is not None:
            params["version"] = str(int(version))
        if columns is not None:
            columns = list(columns)
            wanted = columns + [c for c in filter_columns(filters) if c not in columns]
            params["columns"] = ",".join(wanted)
        with tempfile.SpooledTemporaryFile(max_size=_SPOOL_MAX) as sink:
            request = _Request(
                "GET", f"orgs/{org}/datasets/{name}/data", params=params, sink=sink, label=name
            )
            yield from self._call(request)
            sink.seek(0)
            frame = yield _Work(lambda: _read_parquet(sink, columns, filters))
        return frame

    def _save_flow(self, df: pd.DataFrame, name: str, mode: str) -> Flow[dict[str, Any]]:
        import tempfile

        validate_name(name)
        validate_mode(mode)
        org = self._check_config()
        with tempfile.TemporaryFile(suffix=".parquet") as f:
            yield _Work(lambda: _write_parquet(df, f))
            f.seek(0)
            info = yield from self._upload_file(
                org, f, f"{name}.parquet", PARQUET_CONTENT_TYPE, name, mode, None
            )
        return info

    def _upload_flow(
        self,
        path: str | os.PathLike[str],
        name: str | None,
        mode: str,
        options: dict[str, Any] | None,
    ) -> Flow[dict[str, Any]]:
        file = Path(path).expanduser()
        name = validate_name(name if name is not None else name_from_path(file))
        validate_mode(mode)
        org = self._check_config()
        with open(file, "rb") as f:
            info = yield from self._upload_file(
                org, f, file.name, content_type_for(file), name, mode, options
            )
        return info

    def _upload_file(
        self,
        org: str,
        f: IO[bytes],
        filename: str,
        content_type: str,
        name: str,
        mode: str,
        options: dict[str, Any] | None,
    ) -> Flow[dict[str, Any]]:
        """POST a file to the datasets, wait for its job, return the dataset's info."""
        data = {"name": name, "mode": mode}
        if options is not None:
            data["options"] = json.dumps(options)
        size = os.fstat(f.fileno()).st_size
        bar = self._byte_bar(size, f"upload {name}")
        body: Any = f if bar is None else _ProgressReader(f, bar)
        try:
            response = yield from self._call(
                _Request(
                    "POST",
                    f"orgs/{org}/datasets",
                    data=data,
                    files={"file": (filename, body, content_type)},
                )
            )
        finally:
            if bar is not None:
                bar.close()
        yield from self._wait_for_job(org, response.json()["job"], f"{mode} {name}")
        info = yield from self._call(_Request("GET", f"orgs/{org}/datasets/{name}"))
        return info.json()  # type: ignore[no-any-return]

    def _wait_for_job(self, org: str, job: dict[str, Any], label: str) -> Flow[dict[str, Any]]:
        """Poll a job until it ends, backing off from 0.2 s to 1 s; raise unless it succeeded."""
        delay = _POLL_START
        bar = self._job_bar(label)
        try:
            while True:
                if bar is not None:
                    bar.set_postfix_str(str(job.get("state", "")), refresh=False)
                    # the service reports 0..1; update() takes the increment and redraws
                    bar.update(max(float(job.get("progress") or 0.0) - bar.n, 0.0))
                if job.get("state") in TERMINAL_STATES:
                    break
                yield _Sleep(delay)
                delay = min(delay * _POLL_FACTOR, _POLL_MAX)
                response = yield from self._call(
                    _Request("GET", f"orgs/{org}/jobs/{quote(str(job['id']), safe='')}")
                )
                job = response.json()
        finally:
            if bar is not None:
                bar.close()
        raise_for_job(job)
        return job

    def _call(self, request: _Request) -> Flow[httpx.Response]:
        """Send one request; retry a rate-limited GET; raise DatapilotError on failure."""
        for attempt in range(_MAX_RETRIES + 1):
            response = yield request
            if response.status_code == 429 and request.method == "GET" and attempt < _MAX_RETRIES:
                yield _Sleep(_retry_after(response))
                continue
            if not response.is_success:
                raise DatapilotError.from_response(response)
            break
        return response  # type: ignore[no-any-return]

    # -- configuration and progress -------------------------------------------------

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
        return _checked(check_org_slug, self.org, "org")

    def _unreachable(self, error: Exception) -> DatapilotError:
        """The error for a request that got no answer (refused, timed out, DNS...)."""
        return DatapilotError(
            f"Could not reach the Datapilot service at {self.url}: {error or type(error).__name__}",
            code="unreachable",
            details={"url": self.url},
        )

    def _client_options(self) -> dict[str, Any]:
        """Keyword arguments shared by the sync and async httpx clients."""
        return {
            "base_url": f"{self.url}api/v1/",
            "headers": {"Authorization": f"token {self.token}"},
            "timeout": self.timeout,
        }

    def _byte_bar(self, total: int | None, label: str) -> tqdm | None:
        """A bar over bytes, or None if progress is off or the transfer is small."""
        if not self.progress or total is None or total <= self.progress_threshold:
            return None
        from tqdm.auto import tqdm

        return tqdm(
            total=total, desc=label, unit="B", unit_scale=True, unit_divisor=1024, leave=False
        )

    def _job_bar(self, label: str) -> tqdm | None:
        """A 0..1 bar for a job, shown only once the job has taken half a second."""
        if not self.progress:
            return None
        from tqdm.auto import tqdm

        return tqdm(
            total=1.0,
            desc=label,
            delay=0.5,
            leave=False,
            bar_format="{desc}: {percentage:3.0f}%|{bar}| {elapsed}{postfix}",
        )

    # -- drivers ----------------------------------------------------------------------

    def _run(self, flow: Flow[T]) -> T:
        """Run a flow with blocking I/O."""
        import httpx

        try:
            step = next(flow)  # validation happens here, before any connection
            with httpx.Client(**self._client_options()) as http:
                while True:
                    if isinstance(step, _Request):
                        result: Any = self._send(http, step)
                    elif isinstance(step, _Sleep):
                        time.sleep(step.seconds)
                        result = None
                    else:
                        result = step.func()
                    step = flow.send(result)
        except StopIteration as stop:
            return stop.value  # type: ignore[no-any-return]
        except httpx.TransportError as e:
            raise self._unreachable(e) from e
        finally:
            flow.close()

    async def _arun(self, flow: Flow[T]) -> T:
        """Run a flow on the event loop; CPU-bound work goes to a thread."""
        import asyncio

        import httpx

        try:
            step = next(flow)
            async with httpx.AsyncClient(**self._client_options()) as http:
                while True:
                    if isinstance(step, _Request):
                        result: Any = await self._asend(http, step)
                    elif isinstance(step, _Sleep):
                        await asyncio.sleep(step.seconds)
                        result = None
                    else:
                        result = await asyncio.to_thread(step.func)
                    step = flow.send(result)
        except StopIteration as stop:
            return stop.value  # type: ignore[no-any-return]
        except httpx.TransportError as e:
            raise self._unreachable(e) from e
        finally:
            flow.close()

    def _send(self, http: httpx.Client, request: _Request) -> httpx.Response:
        built = _build_request(http, request)
        response = http.send(built, stream=request.sink is not None)
        if request.sink is None:
            return response
        try:
            if response.is_success:
                download = _Download(self, request, response)
                try:
                    for chunk in response.iter_bytes():
                        download.write(chunk)
                finally:
                    download.close()
            else:
                response.read()  # the error body, for DatapilotError.from_response
        finally:
            response.close()
        return response

    async def _asend(self, http: httpx.AsyncClient, request: _Request) -> httpx.Response:
        # multipart bodies from files are read synchronously in 64 KiB chunks by httpx
        built = _build_request(http, request)
        response = await http.send(built, stream=request.sink is not None)
        if request.sink is None:
            return response
        try:
            if response.is_success:
                download = _Download(self, request, response)
                try:
                    async for chunk in response.aiter_bytes():
                        download.write(chunk)
                finally:
                    download.close()
            else:
                await response.aread()
        finally:
            await response.aclose()
        return response


def _build_request(http: httpx.Client | httpx.AsyncClient, request: _Request) -> httpx.Request:
    """The httpx request for a flow's request; relative paths join the ``base_url``."""
    return http.build_request(
        request.method,
        request.path,
        params=request.params,
        data=request.data,
        files=request.files,
    )


def _with_slash(url: str) -> str:
    """``url`` without surrounding blanks and ending in ``/`` (unless empty)."""
    url = str(url).strip()
    return url if not url or url.endswith("/") else url + "/"


def _retry_after(response: httpx.Response) -> float:
    """Seconds a 429 asks us to wait (``Retry-After`` in seconds), within bounds."""
    try:
        seconds = float(response.headers.get("retry-after", "1"))
    except ValueError:
        seconds = 1.0
    return min(max(seconds, 0.0), _MAX_RETRY_AFTER)


def _datasets_frame(rows: list[dict[str, Any]]) -> pd.DataFrame:
    import pandas as pd

    frame = pd.DataFrame.from_records(rows)
    extra = [c for c in frame.columns if c not in DATASET_LIST_COLUMNS]
    frame = frame.reindex(columns=DATASET_LIST_COLUMNS + extra)
    frame["updated"] = pd.to_datetime(frame["updated"], utc=True, format="ISO8601")
    return frame


def _read_parquet(f: IO[bytes], columns: list[str] | None, filters: Any) -> pd.DataFrame:
    import pyarrow.parquet as pq

    return pq.read_table(f, columns=columns, filters=filters).to_pandas()


def _write_parquet(df: pd.DataFrame, f: IO[bytes]) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    # preserve_index=None: a named index becomes a column, a RangeIndex is metadata
    # only, and any other index is written as __index_level_N__, which the service drops
    pq.write_table(pa.Table.from_pandas(df, preserve_index=None), f)


# -- the default client and module-level functions ----------------------------------

_default_client: DatapilotClient | None = None
_default_lock = threading.Lock()


def get_client() -> DatapilotClient:
    """The client the module-level functions use, created on first use.

    It reads its settings from the environment (and, in an IPython kernel, from
    ``c.DatapilotClient.*`` in the kernel's configuration) when it is created; call
    :func:`reset_client` after changing them.

    Returns
    -------
    DatapilotClient
    """
    global _default_client
    with _default_lock:
        if _default_client is None:
            _default_client = DatapilotClient(**_ipython_config())
        return _default_client


def reset_client(client: DatapilotClient | None = None) -> None:
    """Forget the default client, or make ``client`` the default.

    Parameters
    ----------
    client : DatapilotClient, optional
        The new default. Without it, the next call creates a fresh client that reads
        the environment again.
    """
    global _default_client
    with _default_lock:
        _default_client = client


def _ipython_config() -> dict[str, Any]:
    """``{"config": ...}`` of the running IPython shell, so ``c.DatapilotClient`` applies."""
    import sys

    ipython = sys.modules.get("IPython")
    shell = ipython.get_ipython() if ipython is not None else None
    return {"config": shell.config} if shell is not None else {}


def datasets() -> pd.DataFrame:
    """The organization's datasets, with the default client.

    See :meth:`DatapilotClient.datasets`.

    Returns
    -------
    pandas.DataFrame
        One row per dataset: ``name``, ``version``, ``rows``, ``columns``, ``bytes``,
        ``updated``.
    """
    return get_client().datasets()


def load(
    name: str,
    version: int | None = None,
    columns: list[str] | str | None = None,
    filters: Any = None,
) -> pd.DataFrame:
    """Read a dataset into a pandas DataFrame, with the default client.

    See :meth:`DatapilotClient.load`.

    Parameters
    ----------
    name : str
        The dataset's name.
    version : int, optional
        A version number; by default the current version.
    columns : list of str or str, optional
        Only these columns (selected by the service).
    filters : list of tuple, list of list of tuple, or pyarrow.compute.Expression, optional
        pyarrow DNF filters, applied on the client after download.

    Returns
    -------
    pandas.DataFrame
    """
    return get_client().load(name, version=version, columns=columns, filters=filters)


def save(df: pd.DataFrame, name: str, mode: str = "create") -> dict[str, Any]:
    """Store a DataFrame as a dataset and wait for ingestion, with the default client.

    See :meth:`DatapilotClient.save`.

    Parameters
    ----------
    df : pandas.DataFrame
        The data.
    name : str
        The dataset's name, ``[a-z][a-z0-9_]{0,62}``.
    mode : {"create", "replace", "append"}
        Create a new dataset, or add a version that replaces or appends rows.

    Returns
    -------
    dict
        The dataset's description.
    """
    return get_client().save(df, name, mode=mode)


def upload(
    path: str | os.PathLike[str],
    name: str | None = None,
    mode: str = "create",
    options: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Upload a local CSV, Excel or Parquet file as a dataset, with the default client.

    See :meth:`DatapilotClient.upload`.

    Parameters
    ----------
    path : str or os.PathLike
        The file to upload.
    name : str, optional
        The dataset's name; by default the file's normalised stem.
    mode : {"create", "replace", "append"}
        As in :func:`save`.
    options : dict, optional
        Reading options for the service's ingestion.

    Returns
    -------
    dict
        The dataset's description.
    """
    return get_client().upload(path, name=name, mode=mode, options=options)


async def adatasets() -> pd.DataFrame:
    """The organization's datasets, with the default client, without blocking.

    Returns
    -------
    pandas.DataFrame
        As :func:`datasets`.
    """
    return await get_client().adatasets()


async def aload(
    name: str,
    version: int | None = None,
    columns: list[str] | str | None = None,
    filters: Any = None,
) -> pd.DataFrame:
    """Read a dataset with the default client, without blocking the event loop.

    Parameters
    ----------
    name : str
        The dataset's name.
    version : int, optional
        A version number; by default the current version.
    columns : list of str or str, optional
        Only these columns.
    filters : list of tuple, list of list of tuple, or pyarrow.compute.Expression, optional
        pyarrow DNF filters, applied on the client after download.

    Returns
    -------
    pandas.DataFrame
    """
    return await get_client().aload(name, version=version, columns=columns, filters=filters)


async def asave(df: pd.DataFrame, name: str, mode: str = "create") -> dict[str, Any]:
    """Store a DataFrame with the default client, without blocking the event loop.

    Parameters
    ----------
    df : pandas.DataFrame
        The data.
    name : str
        The dataset's name.
    mode : {"create", "replace", "append"}
        As in :func:`save`.

    Returns
    -------
    dict
        The dataset's description.
    """
    return await get_client().asave(df, name, mode=mode)


async def aupload(
    path: str | os.PathLike[str],
    name: str | None = None,
    mode: str = "create",
    options: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Upload a local file with the default client, without blocking the event loop.

    Parameters
    ----------
    path : str or os.PathLike
        The file to upload.
    name : str, optional
        The dataset's name; by default the file's normalised stem.
    mode : {"create", "replace", "append"}
        As in :func:`save`.
    options : dict, optional
        Reading options for the service's ingestion.

    Returns
    -------
    dict
        The dataset's description.
    """
    return await get_client().aupload(path, name=name, mode=mode, options=options)
