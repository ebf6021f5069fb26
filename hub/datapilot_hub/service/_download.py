"""Send a long answer as it is made: blocking work in a thread, each piece flushed as it comes."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

from tornado import web
from tornado.iostream import StreamClosedError


async def send_chunks(handler: web.RequestHandler, chunks: Iterator[bytes]) -> bool:
    """Write and flush the pieces of ``chunks``, then finish the answer.

    Each piece is made in a thread (encoding Parquet, reading the catalog), so a large
    answer neither blocks the IOLoop nor sits in memory. A client that closes the
    connection midway is no error of the service: the producer is closed, the handler's
    ``on_connection_close`` runs (the audit records the call as ``aborted``) and nothing
    is raised, so the log gets the request's one line instead of a traceback.

    Parameters
    ----------
    handler : tornado.web.RequestHandler
        The handler answering; its headers are set.
    chunks : iterator of bytes
        The pieces of the body, made by blocking work.

    Returns
    -------
    bool
        False when the client went away before the end.
    """
    loop = asyncio.get_running_loop()
    try:
        while (chunk := await loop.run_in_executor(None, next, chunks, None)) is not None:
            handler.write(chunk)
            await handler.flush()
    except StreamClosedError:
        close = getattr(chunks, "close", None)
        if close is not None:
            close()  # the open Parquet files and catalog reads of a generator
        handler.on_connection_close()
        return False
    handler.finish()
    return True
