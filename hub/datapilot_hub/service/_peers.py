"""Who is on the other end of a loopback TCP connection: the account of the peer socket.

With isolation the data service takes connections only from the proxy and the hub,
which run as root; a kernel that dialled the service's port directly would otherwise
get past the proxy, and with it the one place that records a caller's address. TCP has
no SO_PEERCRED, but on Linux every socket of the machine is listed in /proc/net/tcp with
its owner, so the peer's end of a loopback connection can be looked up, as identd does.
"""

from __future__ import annotations

import ipaddress
import socket
from typing import Any

from tornado.httpserver import HTTPServer
from tornado.iostream import IOStream


def _decode(hex_addr: str) -> tuple[str, int]:
    # /proc/net/tcp prints the address as host-order 32-bit words and the port big-endian
    host, port = hex_addr.split(":")
    raw = bytes.fromhex(host)
    raw = b"".join(raw[i : i + 4][::-1] for i in range(0, len(raw), 4))
    return str(ipaddress.ip_address(raw)), int(port, 16)


def peer_uid(peer: tuple[str, int], local: tuple[str, int]) -> int | None:
    """The account owning the socket at ``peer`` that is connected to ``local``.

    Parameters
    ----------
    peer : (host, port)
        The remote end as the server sees it.
    local : (host, port)
        The server's end of the connection.

    Returns
    -------
    int or None
        The owner's id; None when the peer is not a socket of this machine.
    """
    want_peer = (str(ipaddress.ip_address(peer[0])), peer[1])
    want_local = (str(ipaddress.ip_address(local[0])), local[1])
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(table) as f:
                next(f)
                for line in f:
                    fields = line.split()
                    if _decode(fields[1]) == want_peer and _decode(fields[2]) == want_local:
                        return int(fields[7])
        except FileNotFoundError:
            continue
    return None


class PeerCheckingHTTPServer(HTTPServer):
    """An :class:`HTTPServer` that closes connections from accounts not in ``allowed_uids``.

    Parameters
    ----------
    *args, **kwargs
        As for :class:`HTTPServer`.
    allowed_uids : set of int, optional
        The accounts that may connect; None lets everyone in.
    """

    def initialize(self, *args: Any, allowed_uids: set[int] | None = None, **kwargs: Any) -> None:
        self.allowed_uids = allowed_uids
        super().initialize(*args, **kwargs)

    def handle_stream(self, stream: IOStream, address: tuple) -> None:
        if self.allowed_uids is not None:
            sock: socket.socket = stream.socket
            uid = peer_uid(address[:2], sock.getsockname()[:2])
            if uid not in self.allowed_uids:
                stream.close()
                return
        super().handle_stream(stream, address)
