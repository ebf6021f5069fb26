"""Viewer tokens: what a dashboard's kernel reads data with, on behalf of its viewer.

A dashboard's code was written by its publisher but runs for whoever opens it, so its
kernel must read data as that viewer (the audit log names them) and may do nothing else:
the token is bound to one organization, carries only ``data:read`` (the viewer's own
role may allow more; the token never does), names the dashboard and expires within the
hour. It is not a JupyterHub token: the data service signs it with a key of its own
(HMAC-SHA256) and checks it on every call, together with the viewer's membership, so a
viewer who leaves the organization is refused at once.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import secrets
import time
from dataclasses import dataclass
from pathlib import Path

from datapilot_contract import VIEWER_TOKEN_PREFIX

#: what a viewer token may do, whatever the viewer's role allows
VIEWER_TOKEN_PERMISSIONS = frozenset({"data:read"})


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@dataclass(frozen=True)
class ViewerGrant:
    """What a valid viewer token says.

    Parameters
    ----------
    viewer : str
        The user who opened the dashboard.
    org : str
        The organization the token acts in (and only there).
    dashboard : str
        The dashboard's slug.
    expires : float
        When it stops working (seconds since the epoch).
    """

    viewer: str
    org: str
    dashboard: str
    expires: float


class ViewerTokens:
    """Mints and checks viewer tokens with one secret key.

    Parameters
    ----------
    key_file : path
        Where the key lives (made, mode 0600, when missing): tokens outlive a restart of
        the service and are shared by its replicas on one state directory.
    max_age : float
        How long a token works.
    """

    def __init__(self, key_file: str | os.PathLike[str], max_age: float = 3600) -> None:
        self.max_age = max_age
        path = Path(key_file)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            pass
        else:
            with os.fdopen(fd, "w") as f:
                f.write(secrets.token_hex(32))
        self._key = bytes.fromhex(path.read_text().strip())

    def _sign(self, payload: str) -> str:
        return _b64(hmac.new(self._key, payload.encode(), hashlib.sha256).digest())

    def mint(self, viewer: str, org: str, dashboard: str) -> tuple[str, float]:
        """A token for ``viewer`` reading ``org``'s data in ``dashboard``; and its expiry.

        Parameters
        ----------
        viewer : str
            The user opening the dashboard (already checked to be a member who may view).
        org : str
            The organization.
        dashboard : str
            The dashboard's slug.
        """
        expires = time.time() + self.max_age
        body = {"u": viewer, "o": org, "d": dashboard, "e": round(expires, 3)}
        payload = _b64(json.dumps(body, separators=(",", ":")).encode())
        return f"{VIEWER_TOKEN_PREFIX}{payload}.{self._sign(payload)}", expires

    def check(self, token: str) -> ViewerGrant | None:
        """The grant of a valid, unexpired token; None for anything else.

        Parameters
        ----------
        token : str
            What a caller sent as ``Authorization: token ...``.
        """
        if not token.startswith(VIEWER_TOKEN_PREFIX):
            return None
        payload, _, signature = token[len(VIEWER_TOKEN_PREFIX) :].partition(".")
        if not payload or not hmac.compare_digest(signature.encode(), self._sign(payload).encode()):
            return None
        try:
            body = json.loads(_unb64(payload))
            grant = ViewerGrant(str(body["u"]), str(body["o"]), str(body["d"]), float(body["e"]))
        except (ValueError, KeyError, TypeError):
            return None
        if grant.expires <= time.time():
            return None
        return grant
