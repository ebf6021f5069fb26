"""The parts of a dataset version, one per Parquet row group, read one at a time.

A reader that works partition by partition (``dp.load_dask`` in a kernel) lists the
parts once, then fetches each one only when its computation needs it: a part is the
unit Parquet itself can read without the rest of the file, so serving one costs one
row group's read, whatever the size of the version.
"""

from __future__ import annotations

import base64
import io
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from ..errors import DatapilotError, bad_request
from ..storage import parquet_writer
from ._identity import OrgContext
from .datasets import DatasetService


def _row_groups(datasets: DatasetService, path: str) -> list[tuple[str, int, Any]]:
    """``(file, row group, row group metadata)`` of a version's files, in reading order."""
    found = []
    for file in datasets.storage.files(path):
        if not file.endswith(".parquet"):
            continue
        with datasets.storage.open(file, "rb") as f:
            meta = pq.read_metadata(f)
        found.extend((file, i, meta.row_group(i)) for i in range(meta.num_row_groups))
    return found


def _schema(datasets: DatasetService, path: str) -> pa.Schema:
    files = [f for f in datasets.storage.files(path) if f.endswith(".parquet")]
    with datasets.storage.open(files[0], "rb") as f:
        return pq.read_schema(f).remove_metadata()


def list_parts(datasets: DatasetService, ctx: OrgContext, name: str, version: int | None) -> dict:
    """The parts of a version and its Arrow schema (``data:read``).

    Parameters
    ----------
    datasets : DatasetService
        Resolves the dataset in the caller's organization.
    ctx : OrgContext
        The caller.
    name : str
        The dataset.
    version : int, optional
        By default the current version; the answer names the version, so that the
        parts are then read from that one even if another becomes current meanwhile.

    Returns
    -------
    dict
        ``{"name", "version", "rows", "columns", "schema", "parts": [{"part", "rows",
        "bytes"}]}``; ``schema`` is the Arrow IPC schema, base64-encoded (what an empty
        frame of the right types is made from).
    """
    info = datasets.version_info(ctx, name, version)
    groups = _row_groups(datasets, info["path"])
    schema = _schema(datasets, info["path"])
    return {
        "name": name,
        "version": info["version"],
        "rows": info["rows"],
        "columns": schema.names,
        "schema": base64.b64encode(schema.serialize().to_pybytes()).decode(),
        "parts": [
            {"part": i, "rows": meta.num_rows, "bytes": meta.total_byte_size}
            for i, (_, _, meta) in enumerate(groups)
        ],
    }


def read_part(
    datasets: DatasetService,
    ctx: OrgContext,
    name: str,
    version: int | None,
    part: int,
    columns: list[str] | None,
) -> tuple[int, bytes]:
    """One part of a version as a Parquet file (``data:read``).

    Parameters
    ----------
    datasets : DatasetService
        Resolves the dataset in the caller's organization.
    ctx : OrgContext
        The caller.
    name : str
        The dataset.
    version : int, optional
        By default the current version.
    part : int
        The part's number in :func:`list_parts`.
    columns : list of str, optional
        Only these columns, in this order.

    Returns
    -------
    tuple
        The version read and the Parquet bytes.
    """
    info = datasets.version_info(ctx, name, version)
    schema = _schema(datasets, info["path"])
    if columns is not None:
        unknown = [c for c in columns if c not in schema.names]
        if unknown:
            raise bad_request(
                "columns", f"Unknown column(s): {', '.join(unknown)}.", code="unknown_column"
            )
    groups = _row_groups(datasets, info["path"])
    if not 0 <= part < len(groups):
        raise DatapilotError(
            404,
            "not_found",
            f"Version {info['version']} of {name!r} has {len(groups)} parts; no part {part}.",
            part=part,
        )
    file, group, _ = groups[part]
    with datasets.storage.open(file, "rb") as f:
        table = pq.ParquetFile(f).read_row_group(group, columns=columns)
    sink = io.BytesIO()
    with parquet_writer(sink, table.schema) as writer:
        writer.write_table(table)
    return info["version"], sink.getvalue()
