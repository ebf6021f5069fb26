"""How every call runs: a *flow* yields steps, and a sync or an async driver performs them.

A flow is a generator that yields the steps it needs (an HTTP request, a pause, some
CPU-bound work) and receives their results. The sync driver (:class:`httpx.Client`,
:func:`time.sleep`) and the async driver (:class:`httpx.AsyncClient`,
:func:`asyncio.sleep`, :func:`asyncio.to_thread`) run the same flows, so request
building, response handling and job polling exist once. httpx uses the same shape for
its own ``Auth.auth_flow``. The flows of the calls themselves are in :mod:`._calls`.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Generator
from dataclasses import dataclass
from typing import IO, TYPE_CHECKING, Any, TypeVar

from ._errors import DatapilotError

if TYPE_CHECKING:
    import httpx

    from ._client import DatapilotClient

T = TypeVar("T")

# only idempotent GETs are retried on 429, and never wait longer than this per retry
_MAX_RETRIES, _MAX_RETRY_AFTER = 3, 30.0


@dataclass
class Request:
    """An HTTP request to ``{url}api/v1/{path}``; the flow receives the response."""

    method: str
    path: str
    params: dict[str, str] | None = None
    data: dict[str, str] | None = None
    files: dict[str, tuple[str, IO[bytes], str]] | None = None
    json: Any = None
    # when set, a successful body is streamed into this file instead of memory
    sink: IO[bytes] | None = None
    label: str = ""


@dataclass
class Sleep:
    """Wait this many seconds; the flow receives None."""

    seconds: float


@dataclass
class Work:
    """CPU-bound work (Parquet encoding); async runs it in a thread. Receives its result."""

    func: Callable[[], Any]


Step = Request | Sleep | Work
Flow = Generator[Step, Any, T]


def call(request: Request) -> Flow[httpx.Response]:
    """Send one request; retry a rate-limited GET; raise DatapilotError on failure.

    Parameters
    ----------
    request : Request
        What to send.
    """
    for attempt in range(_MAX_RETRIES + 1):
        response = yield request
        if response.status_code == 429 and request.method == "GET" and attempt < _MAX_RETRIES:
            yield Sleep(retry_after(response))
            continue
        if not response.is_success:
            raise DatapilotError.from_response(response)
        break
    return response  # type: ignore[no-any-return]


def retry_after(response: httpx.Response) -> float:
    """Seconds a 429 asks us to wait (``Retry-After`` in seconds), within bounds.

    Parameters
    ----------
    response : httpx.Response
        The 429 answer.
    """
    try:
        seconds = float(response.headers.get("retry-after", "1"))
    except ValueError:
        seconds = 1.0
    return min(max(seconds, 0.0), _MAX_RETRY_AFTER)


# -- drivers ------------------------------------------------------------------------


def run(client: DatapilotClient, flow: Flow[T]) -> T:
    """Run a flow with blocking I/O.

    Parameters
    ----------
    client : DatapilotClient
        Whose URL, token, timeout and progress settings apply.
    flow : Flow
        The call.
    """
    import httpx

    try:
        step = next(flow)  # validation happens here, before any connection
        with httpx.Client(**client._client_options()) as http:
            while True:
                if isinstance(step, Request):
                    result: Any = _send(client, http, step)
                elif isinstance(step, Sleep):
                    time.sleep(step.seconds)
                    result = None
                else:
                    result = step.func()
                step = flow.send(result)
    except StopIteration as stop:
        return stop.value  # type: ignore[no-any-return]
    except httpx.TransportError as e:
        raise unreachable(client, e) from e
    finally:
        flow.close()


async def arun(client: DatapilotClient, flow: Flow[T]) -> T:
    """Run a flow on the event loop; CPU-bound work goes to a thread.

    Parameters
    ----------
    client : DatapilotClient
        Whose URL, token, timeout and progress settings apply.
    flow : Flow
        The call.
    """
    import asyncio

    import httpx

    try:
        step = next(flow)
        async with httpx.AsyncClient(**client._client_options()) as http:
            while True:
                if isinstance(step, Request):
                    result: Any = await _asend(client, http, step)
                elif isinstance(step, Sleep):
                    await asyncio.sleep(step.seconds)
                    result = None
                else:
                    result = await asyncio.to_thread(step.func)
                step = flow.send(result)
    except StopIteration as stop:
        return stop.value  # type: ignore[no-any-return]
    except httpx.TransportError as e:
        raise unreachable(client, e) from e
    finally:
        flow.close()


def unreachable(client: DatapilotClient, error: Exception) -> DatapilotError:
    """The error for a request that got no answer (refused, timed out, DNS...).

    Parameters
    ----------
    client : DatapilotClient
        Whose URL was tried.
    error : Exception
        httpx's transport error.
    """
    return DatapilotError(
        f"Could not reach the Datapilot service at {client.url}: {error or type(error).__name__}",
        code="unreachable",
        details={"url": client.url},
    )


def _send(client: DatapilotClient, http: httpx.Client, request: Request) -> httpx.Response:
    built = _build_request(http, request)
    response = http.send(built, stream=request.sink is not None)
    if request.sink is None:
        return response
    try:
        if response.is_success:
            download = _Download(client, request, response)
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


async def _asend(
    client: DatapilotClient, http: httpx.AsyncClient, request: Request
) -> httpx.Response:
    # multipart bodies from files are read synchronously in 64 KiB chunks by httpx
    built = _build_request(http, request)
    response = await http.send(built, stream=request.sink is not None)
    if request.sink is None:
        return response
    try:
        if response.is_success:
            download = _Download(client, request, response)
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


def _build_request(http: httpx.Client | httpx.AsyncClient, request: Request) -> httpx.Request:
    """The httpx request for a flow's request; relative paths join the ``base_url``."""
    return http.build_request(
        request.method,
        request.path,
        params=request.params,
        data=request.data,
        files=request.files,
        json=request.json,
    )


class _Download:
    """Writes a streamed body to a request's sink, with a bar when it is big."""

    def __init__(self, client: DatapilotClient, request: Request, response: httpx.Response) -> None:
        from ._display import byte_bar

        assert request.sink is not None
        self.sink = request.sink
        try:
            total: int | None = int(response.headers["content-length"])
        except (KeyError, ValueError):
            total = None
        self.bar = byte_bar(client, total, request.label)

    def write(self, chunk: bytes) -> None:
        self.sink.write(chunk)
        if self.bar is not None:
            self.bar.update(len(chunk))

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
