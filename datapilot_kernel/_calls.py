"""The flow of each call, written once for the sync and the async methods.

Each function takes the client and the method's arguments and is a :data:`~._flow.Flow`:
it validates its arguments before its first request (so a bad name never reaches the
network), then yields the requests, pauses and work it needs.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any
from urllib.parse import quote

from ._display import DatasetInfo, ProgressReader, byte_bar, job_bar
from ._errors import raise_for_job
from ._flow import Flow, Request, Sleep, Work, call
from ._insights import Insights, holoviews_chart
from ._validation import (
    PARQUET_CONTENT_TYPE,
    content_type_for,
    filter_columns,
    name_from_path,
    validate_mode,
    validate_name,
)

if TYPE_CHECKING:
    import pandas as pd

    from ._client import DatapilotClient

TERMINAL_STATES = ("succeeded", "failed", "cancelled")
DATASET_LIST_COLUMNS = ["name", "version", "rows", "columns", "bytes", "updated"]
# downloads up to this size stay in memory; bigger ones spill to a temporary file
_SPOOL_MAX = 64 << 20
_POLL_START, _POLL_MAX, _POLL_FACTOR = 0.2, 1.0, 1.5


def datasets(client: DatapilotClient) -> Flow[pd.DataFrame]:
    """GET the organization's datasets as a DataFrame (:meth:`DatapilotClient.datasets`)."""
    org = client._check_config()
    response = yield from call(Request("GET", f"orgs/{org}/datasets"))
    return datasets_frame(response.json().get("datasets", []))


def load(
    client: DatapilotClient,
    name: str,
    version: int | None,
    columns: list[str] | str | None,
    filters: Any,
) -> Flow[pd.DataFrame]:
    """Download a dataset as Parquet and decode it (:meth:`DatapilotClient.load`)."""
    import tempfile

    validate_name(name)
    if isinstance(columns, str):
        columns = [columns]
    org = client._check_config()
    params = {"format": "parquet"}
    if version is None:
        # a dashboard published with pins reads the versions it was published with
        version = client.pins.get(name)
    if version is not None:
        params["version"] = str(int(version))
    if columns is not None:
        columns = list(columns)
        wanted = columns + [c for c in filter_columns(filters) if c not in columns]
        params["columns"] = ",".join(wanted)
    with tempfile.SpooledTemporaryFile(max_size=_SPOOL_MAX) as sink:
        request = Request(
            "GET", f"orgs/{org}/datasets/{name}/data", params=params, sink=sink, label=name
        )
        yield from call(request)
        sink.seek(0)
        frame = yield Work(lambda: read_parquet(sink, columns, filters))
    return frame  # type: ignore[no-any-return]


def aggregate(
    client: DatapilotClient,
    name: str,
    metrics: dict[str, Any],
    group_by: list[str] | str | None,
    time_bucket: dict[str, str] | tuple[str, str] | None,
    filter: str | None,
    derive: dict[str, str] | None,
    sort: list[Any] | str | None,
    limit: int | None,
    other: bool,
    version: int | None,
) -> Flow[pd.DataFrame]:
    """POST an aggregation, read its Arrow answer (:meth:`DatapilotClient.aggregate`)."""
    import tempfile

    validate_name(name)
    if isinstance(time_bucket, (tuple, list)):
        time_bucket = dict(zip(("column", "unit"), time_bucket, strict=True))
    body = {
        "metrics": metrics,
        "group_by": [group_by] if isinstance(group_by, str) else group_by,
        "time_bucket": time_bucket,
        "filter": filter,
        "derive": derive,
        "sort": sort,
        "limit": limit,
        "other": other or None,
        "version": version,
    }
    org = client._check_config()
    with tempfile.SpooledTemporaryFile(max_size=_SPOOL_MAX) as sink:
        request = Request(
            "POST",
            f"orgs/{org}/datasets/{name}/aggregate",
            params={"format": "arrow"},
            # the service refuses unknown fields and nulls alike: send what was given
            json={k: v for k, v in body.items() if v is not None},
            sink=sink,
            label=name,
        )
        yield from call(request)
        sink.seek(0)
        frame = yield Work(lambda: read_arrow(sink))
    return frame  # type: ignore[no-any-return]


def chart(
    client: DatapilotClient,
    name: str,
    chart_type: str | None,
    x: str | None,
    y: str | None,
    group: str | None,
    columns: list[str] | None,
    aggregation: str | None,
    time_bucket: str | None,
    filter: str | None,
    limit: int | None,
    bins: int | None,
    title: str | None,
    version: int | None,
) -> Flow[Any]:
    """POST a chart request, build its spec's HoloViews object (:meth:`DatapilotClient.chart`)."""
    validate_name(name)
    body = {
        "dataset": name,
        "chart_type": chart_type,
        "x": x,
        "y": y,
        "group": group,
        "columns": [columns] if isinstance(columns, str) else columns,
        "aggregation": aggregation,
        "time_bucket": time_bucket,
        "filter": filter,
        "limit": limit,
        "bins": bins,
        "title": title,
        "version": version,
    }
    org = client._check_config()
    response = yield from call(
        Request(
            "POST",
            f"orgs/{org}/visualizations/generate",
            json={k: v for k, v in body.items() if v is not None},
            label=name,
        )
    )
    answer = response.json()
    figure = yield Work(lambda: holoviews_chart(answer))
    return figure


def insights(
    client: DatapilotClient, name: str, version: int | None, summary: bool
) -> Flow[Insights]:
    """GET a dataset's ranked insights (:meth:`DatapilotClient.insights`)."""
    validate_name(name)
    org = client._check_config()
    params = {}
    if version is not None:
        params["version"] = str(int(version))
    if summary:
        params["summary"] = "true"
    response = yield from call(
        Request("GET", f"orgs/{org}/datasets/{name}/insights", params=params, label=name)
    )
    return Insights(response.json())


def save(client: DatapilotClient, df: pd.DataFrame, name: str, mode: str) -> Flow[dict[str, Any]]:
    """Write a DataFrame as Parquet and upload it (:meth:`DatapilotClient.save`)."""
    import tempfile

    validate_name(name)
    validate_mode(mode)
    org = client._check_config()
    with tempfile.TemporaryFile(suffix=".parquet") as f:
        yield Work(lambda: write_parquet(df, f))
        f.seek(0)
        info = yield from upload_file(
            client, org, f, f"{name}.parquet", PARQUET_CONTENT_TYPE, name, mode, None
        )
    return info


def upload(
    client: DatapilotClient,
    path: str | os.PathLike[str],
    name: str | None,
    mode: str,
    options: dict[str, Any] | None,
) -> Flow[dict[str, Any]]:
    """Upload a local file (:meth:`DatapilotClient.upload`)."""
    file = Path(path).expanduser()
    name = validate_name(name if name is not None else name_from_path(file))
    validate_mode(mode)
    org = client._check_config()
    with open(file, "rb") as f:
        info = yield from upload_file(
            client, org, f, file.name, content_type_for(file), name, mode, options
        )
    return info


def upload_file(
    client: DatapilotClient,
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
    bar = byte_bar(client, size, f"upload {name}")
    body: Any = f if bar is None else ProgressReader(f, bar)
    try:
        response = yield from call(
            Request(
                "POST",
                f"orgs/{org}/datasets",
                data=data,
                files={"file": (filename, body, content_type)},
            )
        )
    finally:
        if bar is not None:
            bar.close()
    yield from wait_for_job(client, org, response.json()["job"], f"{mode} {name}")
    info = yield from call(Request("GET", f"orgs/{org}/datasets/{name}"))
    return DatasetInfo(info.json())


def wait_for_job(
    client: DatapilotClient, org: str, job: dict[str, Any], label: str
) -> Flow[dict[str, Any]]:
    """Poll a job until it ends, backing off from 0.2 s to 1 s; raise unless it succeeded."""
    delay = _POLL_START
    bar = job_bar(client, label)
    try:
        while True:
            if bar is not None:
                bar.set_postfix_str(str(job.get("state", "")), refresh=False)
                # the service reports 0..1; update() takes the increment and redraws
                bar.update(max(float(job.get("progress") or 0.0) - bar.n, 0.0))
            if job.get("state") in TERMINAL_STATES:
                break
            yield Sleep(delay)
            delay = min(delay * _POLL_FACTOR, _POLL_MAX)
            response = yield from call(
                Request("GET", f"orgs/{org}/jobs/{quote(str(job['id']), safe='')}")
            )
            job = response.json()
    finally:
        if bar is not None:
            bar.close()
    raise_for_job(job)
    return job


# -- decoding and encoding ----------------------------------------------------------


def datasets_frame(rows: list[dict[str, Any]]) -> pd.DataFrame:
    """The datasets listing as a DataFrame, its known columns first, ``updated`` in UTC.

    Parameters
    ----------
    rows : list of dict
        The service's ``datasets``.
    """
    import pandas as pd

    frame = pd.DataFrame.from_records(rows)
    extra = [c for c in frame.columns if c not in DATASET_LIST_COLUMNS]
    frame = frame.reindex(columns=DATASET_LIST_COLUMNS + extra)
    frame["updated"] = pd.to_datetime(frame["updated"], utc=True, format="ISO8601")
    return frame


def read_parquet(f: IO[bytes], columns: list[str] | None, filters: Any) -> pd.DataFrame:
    """Decode a downloaded Parquet body, applying ``columns`` and DNF ``filters``."""
    import pyarrow.parquet as pq

    return pq.read_table(f, columns=columns, filters=filters).to_pandas()


def read_arrow(f: IO[bytes]) -> pd.DataFrame:
    """Decode an Arrow IPC stream (an aggregation's answer)."""
    import pyarrow as pa

    return pa.ipc.open_stream(f).read_all().to_pandas()


def write_parquet(df: pd.DataFrame, f: IO[bytes]) -> None:
    """Encode a DataFrame for :func:`save`."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    # preserve_index=None: a named index becomes a column, a RangeIndex is metadata
    # only, and any other index is written as __index_level_N__, which the service drops
    pq.write_table(pa.Table.from_pandas(df, preserve_index=None), f)
