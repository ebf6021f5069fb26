"""Invitation e-mails, when an SMTP server is configured (off by default).

Without one the invitation's link is shown once to copy and send, as always; with one,
an invitation made with an e-mail address is also sent there. A failed delivery never
fails the invitation: the link is still shown, with why the e-mail did not go.
"""

from __future__ import annotations

import logging
import smtplib
import ssl
from dataclasses import dataclass
from email.message import EmailMessage

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Mailer:
    """Sends invitation e-mails through one SMTP server.

    Parameters
    ----------
    host : str
        The SMTP server; empty turns e-mail off.
    port : int
        Its port (587 with STARTTLS, 25 without).
    sender : str
        The ``From`` address.
    user, password : str
        Credentials, when the server asks for them (after STARTTLS only).
    starttls : bool
        Upgrade the connection with STARTTLS before anything else is said.
    timeout : float
        Seconds to wait for the server.
    """

    host: str = ""
    port: int = 587
    sender: str = "datapilot@localhost"
    user: str = ""
    password: str = ""
    starttls: bool = True
    timeout: float = 20

    @property
    def enabled(self) -> bool:
        """Whether invitations are e-mailed."""
        return bool(self.host)

    def invitation(
        self, to: str, org_name: str, role: str, inviter: str, link: str, expires: str
    ) -> EmailMessage:
        """The e-mail of an invitation.

        Parameters
        ----------
        to : str
            The invited address.
        org_name, role, inviter : str
            What the invitation is for, and who made it.
        link : str
            The invitation's full URL (the only place its code travels).
        expires : str
            Until when it works, as a person reads it.
        """
        msg = EmailMessage()
        msg["From"] = self.sender
        msg["To"] = to
        msg["Subject"] = f"{inviter} invites you to {org_name} on Datapilot"
        msg.set_content(
            f"{inviter} invites you to join {org_name} on Datapilot as {role}.\n\n"
            f"Open this link to create your account (or log in) and join:\n\n    {link}\n\n"
            f"The link works once, until {expires}. If you did not expect it, ignore this"
            " e-mail.\n"
        )
        return msg

    def send(self, msg: EmailMessage) -> None:
        """Deliver one message (blocking: call it from a thread).

        Raises
        ------
        OSError, smtplib.SMTPException
            The server could not be reached or refused the message.
        """
        with smtplib.SMTP(self.host, self.port, timeout=self.timeout) as smtp:
            if self.starttls:
                smtp.starttls(context=ssl.create_default_context())
            if self.user:
                smtp.login(self.user, self.password)
            smtp.send_message(msg)
        log.info("Invitation e-mailed to %s", msg["To"])
