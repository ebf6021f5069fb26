"""The one place where Dask tasks touch storage: reading sources, writing the output.

Everything a task does with files goes through here, so the transport can change (a
scoped storage gateway for an external scheduler's workers) without touching the
recipe code. A source version is read one Parquet row group per partition, as pandas
frames backed by Arrow; the output is written one Parquet file per partition into the
version's directory, which is invisible until the catalog commit publishes it.
"""

from __future__ import annotations

from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from ...storage import Storage, parquet_writer


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
    return dd.from_map(_read_part, parts, storage=storage, meta=empty, enforce_metadata=False)


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


def write_output(ddf: Any, storage: Storage, out_dir: str, schema: pa.Schema) -> list[Any]:
    """One delayed write per partition of ``ddf``: ``out_dir/part-00000.parquet``...

    Each gives ``{"rows", "stats": {column: {"nulls", "min", "max"}}}``; an empty
    partition writes no file, except the first (a version has at least one file).

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

    write = delayed(_write_part, pure=False)
    return [
        write(part, storage, f"{out_dir}/part-{i:05d}.parquet", schema, i == 0)
        for i, part in enumerate(ddf.to_delayed())
    ]


def _write_part(
    frame: pd.DataFrame, storage: Storage, path: str, schema: pa.Schema, always: bool
) -> dict[str, Any]:
    table = pa.Table.from_pandas(frame, preserve_index=False)
    table = pa.Table.from_arrays([table.column(f.name).cast(f.type) for f in schema], schema=schema)
    if table.num_rows or always:
        with storage.open(path, "wb") as out, parquet_writer(out, schema) as writer:
            writer.write_table(table, row_group_size=256 * 1024)
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
