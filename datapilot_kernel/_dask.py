"""``dp.load_dask``: a lazy dask DataFrame whose partitions are a version's parts.

The service lists the parts of a version (its Parquet row groups) once; each partition
is then fetched from ``GET .../parts/{i}`` with the kernel's token when a computation
needs it, so ``ddf.head()`` reads one part and ``ddf.partitions[:2]`` two. Only the
columns a computation uses are fetched (dask pushes the projection into the reader).
"""

from __future__ import annotations

import base64
import io
from typing import TYPE_CHECKING, Any

from ._errors import DatapilotError

if TYPE_CHECKING:
    import dask.dataframe as dd
    import pandas as pd

# a rate-limited part is tried again this many times (the Retry-After it gives, at most 30 s)
_PART_RETRIES = 3


class PartReader:
    """Reads one part of a dataset version: a dask ``DataFrameIOFunction``.

    It holds the service URL and the kernel's token (never storage credentials), so the
    graph can run in the kernel's threads or on the user's own Dask workers alike.

    Parameters
    ----------
    url : str
        ``{service}api/v1/orgs/{org}/datasets/{name}/parts/``.
    token : str
        The JupyterHub API token the kernel uses.
    version : int
        The version whose parts are read (fixed when the frame was made).
    columns : list of str
        The columns to fetch.
    timeout : float
        Seconds per network operation.
    """

    def __init__(
        self, url: str, token: str, version: int, columns: list[str], timeout: float
    ) -> None:
        self.url = url
        self.token = token
        self.version = version
        self._columns = list(columns)
        self.timeout = timeout

    @property
    def columns(self) -> list[str]:
        """The columns fetched."""
        return self._columns

    def __dask_tokenize__(self) -> tuple:
        # (not the token: the same data read by another session is the same graph)
        return (self.url, self.version, tuple(self._columns))

    def project_columns(self, columns: list[str]) -> PartReader:
        """The same reader, fetching only ``columns``."""
        if list(columns) == self._columns:
            return self
        return PartReader(self.url, self.token, self.version, list(columns), self.timeout)

    def __call__(self, part: int) -> pd.DataFrame:
        """Fetch part ``part`` and decode it."""
        import time

        import httpx
        import pyarrow.parquet as pq

        from ._flow import retry_after

        params = {"version": str(self.version), "columns": ",".join(self._columns)}
        headers = {"Authorization": f"token {self.token}"}
        for attempt in range(_PART_RETRIES + 1):
            response = httpx.get(
                f"{self.url}{int(part)}", params=params, headers=headers, timeout=self.timeout
            )
            if response.status_code == 429 and attempt < _PART_RETRIES:
                time.sleep(retry_after(response))
                continue
            if not response.is_success:
                raise DatapilotError.from_response(response)
            break
        table = pq.read_table(io.BytesIO(response.content))
        return table.to_pandas()


def meta_frame(schema_b64: str, columns: list[str]) -> pd.DataFrame:
    """An empty frame with the columns and dtypes the parts decode to."""
    import pyarrow as pa

    schema = pa.ipc.read_schema(pa.py_buffer(base64.b64decode(schema_b64)))
    fields = [schema.field(c) for c in columns]
    return pa.schema(fields).empty_table().to_pandas()


def dask_frame(
    url: str, token: str, timeout: float, listing: dict[str, Any], columns: list[str] | None
) -> dd.DataFrame:
    """The lazy frame over the parts of a listing (``GET .../parts``).

    Parameters
    ----------
    url : str
        The URL of the dataset's parts, ending in ``/parts/``.
    token : str
        The kernel's token.
    timeout : float
        Seconds per network operation.
    listing : dict
        The service's answer: version, columns, schema, parts.
    columns : list of str or None
        The columns of the frame; by default all.
    """
    import dask.dataframe as dd

    wanted = list(listing["columns"]) if columns is None else list(columns)
    unknown = [c for c in wanted if c not in listing["columns"]]
    if unknown:
        raise DatapilotError(
            f"Unknown column(s): {', '.join(unknown)}.",
            code="unknown_column",
            details={"field": "columns", "columns": unknown},
        )
    reader = PartReader(url, token, listing["version"], wanted, timeout)
    meta = meta_frame(listing["schema"], wanted)
    parts = [p["part"] for p in listing["parts"]]
    if not parts:
        return dd.from_pandas(meta, npartitions=1)
    return dd.from_map(
        reader,
        parts,
        meta=meta,
        label=f"datapilot-{listing['name']}",
        # the dtypes come from the version's own schema: the parts match it
        enforce_metadata=False,
    )
