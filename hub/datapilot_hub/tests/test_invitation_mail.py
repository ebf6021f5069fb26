"""Invitation e-mails through a real SMTP server (aiosmtpd on loopback), with a real hub.

Off by default (the other hubs of the suite have no SMTP server: their invitations say
``emailed: false``); here the data service is given one.
"""

from __future__ import annotations

import re
from email import message_from_bytes

import pytest
from aiosmtpd.controller import Controller

from .utils import form_xsrf, free_port, hub_login, running_hub

ADMIN_PASSWORD = "mail-test-admin-pw"


class Inbox:
    """aiosmtpd's handler: keeps every message it is given."""

    def __init__(self) -> None:
        self.messages = []

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 - aiosmtpd's name
        self.messages.append((envelope.rcpt_tos, message_from_bytes(envelope.content)))
        return "250 OK"


@pytest.fixture(scope="module")
def smtp():
    inbox = Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=free_port())
    controller.start()
    yield controller, inbox
    if controller.loop.is_running():  # (the last test stops it)
        controller.stop()


@pytest.fixture(scope="module")
def mail_hub(request, tmp_path_factory, smtp):
    controller, _ = smtp
    env = {
        "DATAPILOT_SMTP_HOST": "127.0.0.1",
        "DATAPILOT_SMTP_PORT": str(controller.port),
        "DATAPILOT_SMTP_STARTTLS": "0",
        "DATAPILOT_SMTP_FROM": "Datapilot <noreply@example.org>",
        "DATAPILOT_ADMIN_PASSWORD": ADMIN_PASSWORD,
    }
    with running_hub(request, tmp_path_factory, "sqlite", env=env, label="mail") as hub:
        hub.create_org("mailco", "Mail Co")
        yield hub


def test_an_invitation_with_an_address_is_emailed(mail_hub, smtp):
    _, inbox = smtp
    r = mail_hub.api(
        "POST",
        "/orgs/mailco/invitations",
        mail_hub.admin_token,
        json={"role": "analyst", "email": "new.person@example.org"},
    )
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["emailed"] is True
    (to, msg), *_ = inbox.messages[-1:]
    assert to == ["new.person@example.org"] and msg["From"] == "Datapilot <noreply@example.org>"
    assert "invites you to Mail Co" in msg["Subject"]
    text = msg.get_payload(decode=True).decode()
    # the full link, as the person opens it, and the role
    assert f"{mail_hub.url}{body['link']}" in text and "as analyst" in text
    # without an address nothing is sent
    sent = len(inbox.messages)
    r = mail_hub.api("POST", "/orgs/mailco/invitations", mail_hub.admin_token, json={})
    assert r.json()["emailed"] is False and "email_error" not in r.json()
    assert len(inbox.messages) == sent


def test_the_page_says_the_invitation_was_emailed(mail_hub, smtp):
    _, inbox = smtp
    browser = hub_login(mail_hub, "admin", ADMIN_PASSWORD)
    try:
        url = "/services/datapilot/orgs/mailco/invitations"
        page = browser.get(url)
        r = browser.post(
            url,
            data={
                "action": "create",
                "role": "viewer",
                "email": "viewer@example.org",
                "_xsrf": form_xsrf(page),
            },
        )
        assert r.status_code == 201
        assert "e-mailed to viewer@example.org" in r.text
        link = re.search(r'id="invitation-link"[^>]*value="([^"]+)"', r.text).group(1)
    finally:
        browser.close()
    to, msg = inbox.messages[-1]
    assert to == ["viewer@example.org"] and link in msg.get_payload(decode=True).decode()


def test_a_failed_delivery_keeps_the_invitation_and_says_why(mail_hub, smtp):
    """(The module's last test: the SMTP server is stopped for good.)"""
    controller, _ = smtp
    controller.stop()  # nothing listens there any more
    r = mail_hub.api(
        "POST",
        "/orgs/mailco/invitations",
        mail_hub.admin_token,
        json={"role": "viewer", "email": "lost@example.org"},
    )
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["emailed"] is False and "ConnectionRefusedError" in body["email_error"]
    # the invitation stands: its link is in the answer, and it is pending
    listed = mail_hub.api("GET", "/orgs/mailco/invitations", mail_hub.admin_token).json()
    assert [i["state"] for i in listed["invitations"] if i["id"] == body["id"]] == ["pending"]
    assert body["link"]
