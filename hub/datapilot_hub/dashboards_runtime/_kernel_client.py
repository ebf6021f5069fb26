"""The kernel client Voilà uses here: it never waits on one poll of a socket for ever.

Voilà's executor (nbclient) waits for a cell's reply with one unbounded poll of the
kernel's shell socket. Now and then that poll was never woken although the reply had
come (the kernel idle, the page never ending; about one pre-started kernel's opening in
twenty here, with ipykernel 6 as with 7). A zmq socket's file descriptor signals edges,
and an edge consumed elsewhere leaves the message unnoticed until the next poll. So an
unbounded wait here polls in steps of a second and looks again; a message found waiting
after a step that saw none is logged, as the evidence of such a lost wake-up.
"""

from __future__ import annotations

import logging
from queue import Empty
from typing import Any

import zmq
from jupyter_client.asynchronous import AsyncKernelClient
from jupyter_client.channels import AsyncZMQSocketChannel
from traitlets import Type

log = logging.getLogger(__name__)

#: seconds between two looks at a socket while waiting without a timeout
POLL_STEP = 1.0


class SteppedChannel(AsyncZMQSocketChannel):
    """A kernel channel whose unbounded waits poll in steps of :data:`POLL_STEP`."""

    async def get_msg(self, timeout: float | None = None) -> dict[str, Any]:
        """Get a message, waiting at most ``timeout`` seconds (None: until one comes)."""
        if timeout is not None:
            return await super().get_msg(timeout)
        while True:
            try:
                return await super().get_msg(POLL_STEP)
            except Empty:
                if self.socket is not None and self.socket.get(zmq.EVENTS) & zmq.POLLIN:
                    log.warning("A kernel's message was waiting unnoticed; taken now")


class SteppedKernelClient(AsyncKernelClient):
    """Voilà's kernel client with :class:`SteppedChannel` for replies and outputs."""

    shell_channel_class = Type(SteppedChannel)  # type: ignore[assignment]
    iopub_channel_class = Type(SteppedChannel)  # type: ignore[assignment]
    control_channel_class = Type(SteppedChannel)  # type: ignore[assignment]
