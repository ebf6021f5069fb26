"""Dataset files through fsspec: a local directory by default, S3-compatible storage when set.

Every path is under the organization's prefix ``org-<id>/``; nothing outside this
module builds storage paths.
"""

from __future__ import annotations

import os
import posixpath
import threading
from typing import IO, Any

import fsspec
import pyarrow as pa
import pyarrow.parquet as pq
from fsspec.core import url_to_fs


class Storage:
    """Organization-prefixed file storage.

    Parameters
    ----------
    url : str
        fsspec URL of the root: a local path or ``s3://bucket/prefix``.
    storage_options : dict, optional
        Passed to the fsspec filesystem (credentials, ``endpoint_url``...).
    """

    def __init__(self, url: str, storage_options: dict[str, Any] | None = None) -> None:
        self.url = url
        self.fs, root = url_to_fs(url, **(storage_options or {}))
        self.root = root.rstrip("/")
        if self.is_local:
            self.fs.makedirs(self.root, exist_ok=True)

    def __repr__(self) -> str:
        return f"<Storage {self.url}>"

    @property
    def is_local(self) -> bool:
        """Whether files live on this machine's disk."""
        return "file" in self.fs.protocol

    def org_prefix(self, org_id: int) -> str:
        """The prefix every file of the organization lives under.

        Parameters
        ----------
        org_id : int
            The organization's catalog id.
        """
        return f"org-{int(org_id)}"

    def dataset_version_dir(self, org_id: int, dataset: str, version: int) -> str:
        """Relative directory of one dataset version's Parquet files.

        Parameters
        ----------
        org_id : int
            The organization's catalog id.
        dataset : str
            A validated dataset name.
        version : int
            The version number.
        """
        return f"{self.org_prefix(org_id)}/datasets/{dataset}/v{int(version)}"

    def dataset_dir(self, org_id: int, dataset: str) -> str:
        """Relative directory holding every version of a dataset."""
        return f"{self.org_prefix(org_id)}/datasets/{dataset}"

    def insights_path(self, org_id: int, dataset: str, version: int, key: str) -> str:
        """Where the insights of a dataset version are cached (removed with the dataset).

        Parameters
        ----------
        org_id : int
            The organization's catalog id.
        dataset : str
            A validated dataset name.
        version : int
            The version number.
        key : str
            What else the answer depends on (the finders' revision, the sample size), as
            ``[a-z0-9-]`` text.
        """
        return f"{self.dataset_dir(org_id, dataset)}/insights/v{int(version)}-{key}.json"

    def dashboard_dir(self, org_id: int, slug: str) -> str:
        """Relative directory holding every version of a dashboard.

        Parameters
        ----------
        org_id : int
            The organization's catalog id.
        slug : str
            A validated dashboard slug.
        """
        return f"{self.org_prefix(org_id)}/dashboards/{slug}"

    def dashboard_version_dir(self, org_id: int, slug: str, version: int) -> str:
        """Relative directory of one dashboard snapshot (the notebook and its files)."""
        return f"{self.dashboard_dir(org_id, slug)}/v{int(version)}"

    def dashboard_thumbnail_path(self, org_id: int, slug: str, version: int) -> str:
        """Where the thumbnail of a dashboard version is kept (outside its snapshot)."""
        return f"{self.dashboard_dir(org_id, slug)}/thumbnails/v{int(version)}.png"

    def write_atomic(self, relpath: str, data: bytes) -> None:
        """Write a whole file so that readers see the old one or the new one, never a part."""
        tmp = f"{relpath}.{os.getpid()}-{threading.get_ident()}.tmp"
        with self.open(tmp, "wb") as f:
            f.write(data)
        self.fs.mv(self.full_path(tmp), self.full_path(relpath))

    def full_path(self, relpath: str) -> str:
        """The filesystem path of a relative storage path (no escape from the root)."""
        norm = posixpath.normpath(relpath)
        if norm.startswith(("/", "..")) or "/../" in f"/{norm}/":
            raise ValueError(f"storage path escapes the root: {relpath!r}")
        return f"{self.root}/{norm}"

    def open(self, relpath: str, mode: str = "rb", **kwargs: Any) -> IO:
        """Open a file under the root; parent directories are created for writing."""
        path = self.full_path(relpath)
        if "w" in mode and self.is_local:
            self.fs.makedirs(posixpath.dirname(path), exist_ok=True)
        return self.fs.open(path, mode, **kwargs)

    def exists(self, relpath: str) -> bool:
        """Whether a file or directory exists."""
        return self.fs.exists(self.full_path(relpath))

    def size(self, relpath: str) -> int:
        """Total bytes of the files below a path."""
        return int(self.fs.du(self.full_path(relpath), total=True))

    def files(self, relpath: str) -> list[str]:
        """The files below a directory, as relative paths, sorted."""
        full = self.full_path(relpath)
        if not self.fs.exists(full):
            return []
        prefix = self.root + "/"
        return sorted(p[len(prefix) :] if p.startswith(prefix) else p for p in self.fs.find(full))

    def remove(self, relpath: str) -> None:
        """Remove a file or a directory tree; a missing one is not an error."""
        full = self.full_path(relpath)
        if self.fs.exists(full):
            self.fs.rm(full, recursive=True)
        self.fs.invalidate_cache()

    def check(self) -> dict[str, Any]:
        """A health check: the root can be listed."""
        self.fs.ls(self.root) if self.fs.exists(self.root) else None
        return {"status": "ok", "url": self.url}


def storage_from_config(config: Any) -> Storage:
    """Storage for a :class:`~datapilot_hub.configuration.DatapilotConfig`.

    Parameters
    ----------
    config : DatapilotConfig
        Where ``storage_url`` and ``s3_endpoint_url`` come from.
    """
    options: dict[str, Any] = {}
    protocol = fsspec.utils.get_protocol(config.storage_url)
    if protocol in ("s3", "s3a") and config.s3_endpoint_url:
        options["endpoint_url"] = config.s3_endpoint_url
    return Storage(config.storage_url, options)


def parquet_writer(sink, schema: pa.Schema) -> pq.ParquetWriter:
    """How Datapilot writes Parquet: zstd, dictionaries for text and date columns only.

    Measured on the ingestion benchmark: dictionaries on number and time columns of
    mostly distinct values cost a fifth of the write time and made the file bigger.
    """
    kinds = (pa.types.is_string, pa.types.is_large_string, pa.types.is_date)
    dictionary = [f.name for f in schema if any(kind(f.type) for kind in kinds)]
    return pq.ParquetWriter(sink, schema, compression="zstd", use_dictionary=dictionary)
