"""DuckDB, sandboxed, running an aggregation's query over a version's Parquet files.

Why DuckDB (measured by ``benchmarks/aggregate.py``, figures in the README): on 10M rows
pyarrow's dataset scan and ``Table.group_by`` took 0.7 to 1.8 times DuckDB's time on sums
and counts and 1.6 times on medians and percentiles, which its group_by only
approximates; pandas took 1.6 to 8 times. DuckDB also computes count distinct and the
window functions of the top-N ranking, spills to disk what does not fit in memory (so
Dask is not needed for a group-by on one machine), and skips row groups by their Parquet
statistics (its plan shows "Row Groups Scanned: 4 / 79" for a one-month filter on two
years).

Every query gets a connection of its own, locked down before the query runs: no
extension is installed or loaded, the file system is off but for the directory of the
version it reads and the spill directory (``enable_external_access = false`` with
``allowed_directories``), and the configuration is locked, so even a query we built
wrongly could not read another version's, or another organization's, files.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import pyarrow as pa

from ...errors import DatapilotError
from ...storage import Storage
from ._plan import Plan


def _sql_string(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


class Engine:
    """Runs :class:`~._plan.Plan` queries with DuckDB.

    Parameters
    ----------
    storage : Storage
        Where the versions' Parquet files are.
    memory_limit : str
        DuckDB's ``memory_limit`` per query (``"1GB"``); past it, DuckDB spills.
    threads : int
        Threads per query; 0 for DuckDB's default (the machine's cores).
    temp_dir : str, optional
        Where DuckDB spills; by default it does not spill to disk.
    """

    def __init__(
        self, storage: Storage, memory_limit: str = "1GB", threads: int = 0, temp_dir: str = ""
    ) -> None:
        self.storage = storage
        self.memory_limit = memory_limit
        self.threads = threads
        self.temp_dir = temp_dir

    def connect(self, files: Sequence[str] = ()) -> Any:
        """A new DuckDB connection, locked down (see the module's docstring).

        Parameters
        ----------
        files : sequence of str
            The relative storage paths it may read (their directories, on local storage).
        """
        import duckdb

        config: dict[str, Any] = {
            "autoinstall_known_extensions": False,
            "autoload_known_extensions": False,
            "memory_limit": self.memory_limit,
        }
        if self.threads:
            config["threads"] = self.threads
        if self.temp_dir:
            config["temp_directory"] = self.temp_dir
        con = duckdb.connect(config=config)
        # buckets of timestamps with a zone are cut in UTC, as the service stores them
        con.execute("SET TimeZone = 'UTC'")
        allowed = (
            sorted({os.path.dirname(self.storage.full_path(f)) + "/" for f in files})
            if self.storage.is_local
            else []
        )
        if self.temp_dir:
            allowed.append(self.temp_dir.rstrip("/") + "/")
        con.execute(f"SET allowed_directories = [{', '.join(map(_sql_string, allowed))}]")
        con.execute("SET enable_external_access = false")
        con.execute("SET lock_configuration = true")
        return con

    def _source(self, con: Any, files: list[str]) -> None:
        """Make ``__source`` read ``files`` (relative storage paths) on this connection."""
        if self.storage.is_local:
            paths = ", ".join(_sql_string(self.storage.full_path(f)) for f in files)
            # a view is inlined into the query: projections and filters reach the scan
            con.execute(f"CREATE TEMP VIEW __source AS SELECT * FROM read_parquet([{paths}])")
            return
        # remote storage: an Arrow dataset through fsspec; DuckDB pushes the projection
        # and the filter into its scanner, which also skips row groups by statistics
        import pyarrow.dataset as ds
        from pyarrow.fs import FSSpecHandler, PyFileSystem

        dataset = ds.dataset(
            [self.storage.full_path(f) for f in files],
            format="parquet",
            filesystem=PyFileSystem(FSSpecHandler(self.storage.fs)),
        )
        con.register("__source", dataset)

    def run(self, plan: Plan, files: list[str]) -> pa.Table:
        """The answer of a plan over a version's Parquet files (blocking).

        Raises
        ------
        DatapilotError
            422 when the data does not fit the computation (a sum past 64 bits) or the
            query needs more memory than ``memory_limit`` and has nowhere to spill.

        Parameters
        ----------
        plan : Plan
            The query.
        files : list of str
            The version's Parquet files, relative storage paths.
        """
        import duckdb

        con = self.connect(files)
        try:
            self._source(con, files)
            return con.sql(plan.sql, params=plan.params).to_arrow_table()
        except duckdb.OutOfMemoryException:
            raise DatapilotError(
                422,
                "out_of_memory",
                f"The aggregation needs more than the {self.memory_limit} of memory an"
                " aggregation may use; group by fewer or coarser columns, or filter first.",
                limit=self.memory_limit,
            ) from None
        except duckdb.DataError as e:
            # the data does not fit the computation: a sum past 64 bits, a bad cast
            first = str(e).splitlines()[0]
            raise DatapilotError(
                422, "unprocessable", f"The data cannot be aggregated this way: {first}"
            ) from None
        finally:
            con.close()

    def explain(self, plan: Plan, files: list[str]) -> str:
        """DuckDB's ``EXPLAIN ANALYZE`` of a plan: what the scan read and skipped.

        Parameters
        ----------
        plan : Plan
            The query.
        files : list of str
            The version's Parquet files.
        """
        con = self.connect(files)
        try:
            self._source(con, files)
            rows = con.execute(f"EXPLAIN ANALYZE {plan.sql}", plan.params).fetchall()
            return "\n".join(row[1] for row in rows)
        finally:
            con.close()
