"""What the client shows in a notebook: progress bars."""

from __future__ import annotations

import os
from typing import IO, TYPE_CHECKING

if TYPE_CHECKING:
    from tqdm import tqdm

    from ._client import DatapilotClient


def byte_bar(client: DatapilotClient, total: int | None, label: str) -> tqdm | None:
    """A bar over bytes, or None if progress is off or the transfer is small.

    Parameters
    ----------
    client : DatapilotClient
        Whose ``progress`` and ``progress_threshold`` apply.
    total : int or None
        Bytes to transfer, when known.
    label : str
        The bar's description.
    """
    if not client.progress or total is None or total <= client.progress_threshold:
        return None
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=label, unit="B", unit_scale=True, unit_divisor=1024, leave=False)


def job_bar(client: DatapilotClient, label: str) -> tqdm | None:
    """A 0..1 bar for a job, shown only once the job has taken half a second.

    Parameters
    ----------
    client : DatapilotClient
        Whose ``progress`` applies.
    label : str
        The bar's description.
    """
    if not client.progress:
        return None
    from tqdm.auto import tqdm

    return tqdm(
        total=1.0,
        desc=label,
        delay=0.5,
        leave=False,
        bar_format="{desc}: {percentage:3.0f}%|{bar}| {elapsed}{postfix}",
    )


class ProgressReader:
    """A file object for httpx's multipart body that advances a progress bar as it is read.

    Parameters
    ----------
    f : file object
        The file being uploaded.
    bar : tqdm
        The bar to advance.
    """

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
