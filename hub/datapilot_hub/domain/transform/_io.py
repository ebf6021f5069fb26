"""The one place where Dask tasks touch storage: reading sources, writing the output.

Everything a task does with files goes through here, so the transport can change (a
scoped storage gateway for an external scheduler's workers) without touching the
recipe code. A source version is read one Parquet row group per partition, as pandas
frames backed by Arrow; the output is written one Parquet file per partition into the
version's directory, which is invisible until the catalog commit publishes it.

Two transports, chosen by :func:`datapilot_hub.compute.storage_gateway`:

- embedded LocalCluster: the workers are the service's own processes and get the
  service's :class:`~datapilot_hub.storage.Storage`;
- external scheduler: the tasks get a :class:`GatewayFiles` instead, the gateway's URL
  and a capability that reads exactly the source version's files and writes only under
  the output's directory (:mod:`._gateway`); no credential of the service's storage is
  ever in the graph.
"""

from __future__ import annotations

import io
import os
import tempfile
from typing import IO, Any

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from ... import compute
from ...storage import Storage, parquet_writer
from ._gateway import org_of

# a part read through the gateway comes in pieces of this size (pyarrow asks for the
# footer, then each column chunk: one request each, rounded up to this)
_READ_BLOCK = 4 << 20
# an output file is buffered in memory up to this size, then in a temporary file
_SPOOL_MAX = 32 << 20


def read_sources(storage: Storage, versions: list[dict[str, Any]]) -> list[Any]:
    """A lazy dask DataFrame for each dataset version.

    Parameters
    ----------
    storage : Storage
        Where the organization's files are.
    versions : list of dict
        Each as :meth:`DatasetService.version_info` gives it (``path``, ``schema``).
    """
    return [read_source(storage, v) for v in versions]


def read_source(storage: Storage, version: dict[str, Any]) -> Any:
    """A lazy dask DataFrame of one dataset version, a partition per row group."""
    import dask.dataframe as dd

    files = [f for f in storage.files(version["path"]) if f.endswith(".parquet")]
    parts: list[tuple[str, int | None]] = []
    schema = None
    for path in files:
        with storage.open(path, "rb") as f:
            meta = pq.ParquetFile(f).metadata
        schema = schema or meta.schema.to_arrow_schema()
        parts += [(path, i) for i in range(meta.num_row_groups)]
    if schema is None:
        raise FileNotFoundError(f"no Parquet file under {version['path']}")
    if not parts:
        parts = [(files[0], None)]
    empty = _frame(schema.empty_table())
    files_for_tasks = task_storage(storage, version["path"], read=files)
    return dd.from_map(
        _read_part, parts, storage=files_for_tasks, meta=empty, enforce_metadata=False
    )


def _read_part(part: tuple[str, int | None], storage: Storage) -> pd.DataFrame:
    path, group = part
    with storage.open(path, "rb") as f:
        pf = pq.ParquetFile(f)
        table = pf.schema_arrow.empty_table() if group is None else pf.read_row_group(group)
    return _frame(table)


def _frame(table: pa.Table) -> pd.DataFrame:
    # dictionary-encoded text is plain text to the steps
    columns = [
        c.cast(c.type.value_type) if pa.types.is_dictionary(c.type) else c for c in table.columns
    ]
    table = pa.Table.from_arrays(columns, names=table.column_names)
    return table.to_pandas(types_mapper=pd.ArrowDtype, ignore_metadata=True)


#: While this file is in a version's directory, its job still wants the files written there.
LEASE = ".writing"


def open_output(storage: Storage, out_dir: str) -> None:
    """Mark ``out_dir`` as being written (see :func:`write_output`)."""
    storage.write_atomic(f"{out_dir}/{LEASE}", b"")


def close_output(storage: Storage, out_dir: str) -> None:
    """The job is done writing: its files stay, no more come (before the publication)."""
    storage.remove(f"{out_dir}/{LEASE}")


def write_output(ddf: Any, storage: Storage, out_dir: str, schema: pa.Schema) -> list[Any]:
    """One delayed write per partition of ``ddf``: ``out_dir/part-00000.parquet``...

    Each gives ``{"rows", "stats": {column: {"nulls", "min", "max"}}}``; an empty
    partition writes no file, except the first (a version has at least one file).
    A write writes only while the directory's lease (:func:`open_output`) is there: a
    task that was already running when its job was cancelled, and so ran on, leaves no
    file in a directory the job runner has removed.

    Parameters
    ----------
    ddf : dask.dataframe.DataFrame
        What the recipe makes.
    storage : Storage
        Where to write.
    out_dir : str
        The version's directory (relative to the storage root).
    schema : pyarrow.Schema
        The output's columns and types; every file has exactly these.
    """
    from dask import delayed

    files_for_tasks = task_storage(storage, out_dir, write_prefix=out_dir)
    write = delayed(_write_part, pure=False)
    return [
        write(part, files_for_tasks, f"{out_dir}/part-{i:05d}.parquet", schema, i == 0)
        for i, part in enumerate(ddf.to_delayed())
    ]


def _write_part(
    frame: pd.DataFrame, storage: Storage, path: str, schema: pa.Schema, always: bool
) -> dict[str, Any]:
    table = pa.Table.from_pandas(frame, preserve_index=False)
    table = pa.Table.from_arrays([table.column(f.name).cast(f.type) for f in schema], schema=schema)
    lease = f"{path.rsplit('/', 1)[0]}/{LEASE}"
    if (table.num_rows or always) and storage.exists(lease):
        with storage.open(path, "wb") as out, parquet_writer(out, schema) as writer:
            writer.write_table(table, row_group_size=256 * 1024)
        if not storage.exists(lease):
            storage.remove(path)
    return {"rows": table.num_rows, "stats": _stats(table)}


def _stats(table: pa.Table) -> dict[str, dict[str, Any]]:
    stats = {}
    for f, col in zip(table.schema, table.columns, strict=True):
        entry: dict[str, Any] = {"nulls": col.null_count, "min": None, "max": None}
        if table.num_rows and not (
            pa.types.is_string(f.type)
            or pa.types.is_large_string(f.type)
            or pa.types.is_boolean(f.type)
        ):
            mm = pc.min_max(col)
            entry["min"], entry["max"] = mm["min"].as_py(), mm["max"].as_py()
        stats[f.name] = entry
    return stats


# ---- the transport ----------------------------------------------------------------------


def task_storage(
    storage: Storage, path: str, read: list[str] = (), write_prefix: str | None = None
) -> Any:
    """What the tasks open files with: ``storage`` itself for the service's own workers,
    else a :class:`GatewayFiles` whose capability allows exactly ``read`` and writes
    under ``write_prefix``.

    A write capability is tied to the job that records ``write_prefix`` as its output
    (and so are the read capabilities the same thread issued for its sources): all end
    with that job.

    Parameters
    ----------
    storage : Storage
        The service's storage.
    path : str
        A path of the organization the capability is for.
    read : list of str
        Files the tasks read.
    write_prefix : str, optional
        The directory the tasks write into.
    """
    gateway = compute.storage_gateway()
    if gateway is None:
        return storage
    org_id = org_of(path)
    job_id = None
    if write_prefix is not None:
        job_id = gateway.job_writing(org_id, write_prefix)
        if job_id is not None:
            gateway.bind_thread_grants(org_id, job_id)
    token = gateway.issue(org_id, read=list(read), write_prefix=write_prefix, job_id=job_id)
    return GatewayFiles(gateway.files_url, token)


class GatewayFiles:
    """Files through the service's storage gateway, with one job's capability.

    What a task on an external scheduler's worker gets instead of the storage: picklable,
    holding only a URL and a token that opens the files granted to the job.

    Parameters
    ----------
    url : str
        ``{service}api/v1/gateway/files``.
    token : str
        The capability.
    timeout : float
        Seconds per network operation.
    """

    def __init__(self, url: str, token: str, timeout: float = 120.0) -> None:
        self.url = url
        self.token = token
        self.timeout = timeout

    def __repr__(self) -> str:
        return f"<GatewayFiles {self.url}>"

    def __dask_tokenize__(self) -> tuple:
        return ("GatewayFiles", self.url, self.token)

    def _headers(self) -> dict[str, str]:
        return {"X-Datapilot-Capability": self.token}

    def exists(self, relpath: str) -> bool:
        """Whether a granted file exists (False for one not granted, or after the job)."""
        import httpx

        response = httpx.head(
            self.url, params={"path": relpath}, headers=self._headers(), timeout=self.timeout
        )
        if response.status_code == 404:
            return False
        response.raise_for_status()
        return True

    def remove(self, relpath: str) -> None:
        """Remove a file the capability may write; a missing one is not an error."""
        import httpx

        response = httpx.delete(
            self.url, params={"path": relpath}, headers=self._headers(), timeout=self.timeout
        )
        if response.status_code != 404:
            response.raise_for_status()

    def open(self, relpath: str, mode: str = "rb") -> IO:
        """A file for reading (``rb``: ranges fetched as read) or writing (``wb``: sent
        when closed)."""
        if mode == "rb":
            return io.BufferedReader(_RemoteReader(self, relpath), _READ_BLOCK)
        if mode == "wb":
            return _RemoteWriter(self, relpath)
        raise ValueError(f"mode must be 'rb' or 'wb', not {mode!r}")


def _raise_for(response: Any, relpath: str) -> None:
    if response.status_code == 404:
        raise FileNotFoundError(f"{relpath} (not granted, or the job is over)")
    response.raise_for_status()


class _RemoteReader(io.RawIOBase):
    """Random access to one file through the gateway, by HTTP ranges."""

    def __init__(self, files: GatewayFiles, relpath: str) -> None:
        import httpx

        self.files, self.relpath = files, relpath
        self.http = httpx.Client(headers=files._headers(), timeout=files.timeout)
        response = self.http.head(files.url, params={"path": relpath})
        _raise_for(response, relpath)
        self.size = int(response.headers["Content-Length"])
        self.pos = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self.pos

    def seek(self, offset: int, whence: int = os.SEEK_SET) -> int:
        base = {os.SEEK_SET: 0, os.SEEK_CUR: self.pos, os.SEEK_END: self.size}[whence]
        self.pos = max(0, base + offset)
        return self.pos

    def readinto(self, buffer: Any) -> int:
        want = min(len(buffer), self.size - self.pos)
        if want <= 0:
            return 0
        headers = {"Range": f"bytes={self.pos}-{self.pos + want - 1}"}
        response = self.http.get(self.files.url, params={"path": self.relpath}, headers=headers)
        _raise_for(response, self.relpath)
        data = response.content[:want]
        buffer[: len(data)] = data
        self.pos += len(data)
        return len(data)

    def close(self) -> None:
        if not self.closed:
            self.http.close()
        super().close()


class _RemoteWriter(io.RawIOBase):
    """A file written through the gateway: buffered here, sent whole when closed (the
    gateway stores it under a temporary name and renames it when complete)."""

    def __init__(self, files: GatewayFiles, relpath: str) -> None:
        self.files, self.relpath = files, relpath
        self.buffer = tempfile.SpooledTemporaryFile(max_size=_SPOOL_MAX)
        self.sent = False

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        return self.buffer.write(data)

    def tell(self) -> int:
        return self.buffer.tell()

    def close(self) -> None:
        if self.closed:
            return
        try:
            if not self.sent:
                self.sent = True
                self._send()
        finally:
            self.buffer.close()
            super().close()

    def _send(self) -> None:
        import httpx

        size = self.buffer.tell()
        self.buffer.seek(0)

        def chunks():
            while chunk := self.buffer.read(1 << 20):
                yield chunk

        headers = {**self.files._headers(), "Content-Length": str(size)}
        response = httpx.put(
            self.files.url,
            params={"path": self.relpath},
            content=chunks(),
            headers=headers,
            timeout=self.files.timeout,
        )
        _raise_for(response, self.relpath)
