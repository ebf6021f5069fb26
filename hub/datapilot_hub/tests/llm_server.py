"""A small server that speaks the OpenAI chat completions protocol, for the narrator tests.

It answers ``POST /v1/chat/completions`` with whatever :attr:`ChatServer.reply` returns
for the request, and keeps every request it was sent. It runs in a thread of the test
process, on a loopback port the data service (another process, another account) reaches.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Callable
from typing import Any

from tornado import web

from .utils import free_port


class ChatCompletionsHandler(web.RequestHandler):
    """``POST /v1/chat/completions``: the reply of the server's ``reply`` callable."""

    def post(self) -> None:
        server: ChatServer = self.settings["chat_server"]
        body = json.loads(self.request.body)
        server.requests.append(
            {"body": body, "authorization": self.request.headers.get("Authorization")}
        )
        text = server.reply(body)
        self.set_header("Content-Type", "application/json")
        self.finish(
            json.dumps(
                {
                    "id": f"chatcmpl-{len(server.requests)}",
                    "object": "chat.completion",
                    "created": int(time.time()),
                    "model": body.get("model"),
                    "choices": [
                        {
                            "index": 0,
                            "message": {"role": "assistant", "content": text},
                            "finish_reason": "stop",
                        }
                    ],
                    "usage": {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0},
                }
            )
        )


class ChatServer:
    """The server; ``reply(body) -> str`` decides each answer (tests set it)."""

    def __init__(self) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/v1"
        self.requests: list[dict[str, Any]] = []
        self.reply: Callable[[dict[str, Any]], str] = lambda body: "Nothing to say."
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> ChatServer:
        self._thread.start()
        self._ready.wait(10)
        return self

    def _run(self) -> None:
        asyncio.run(self._serve())

    async def _serve(self) -> None:
        app = web.Application([(r"/v1/chat/completions", ChatCompletionsHandler)], chat_server=self)
        server = app.listen(self.port, "127.0.0.1")
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        self._ready.set()
        await self._stop.wait()
        server.stop()

    def stop(self) -> None:
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(10)
