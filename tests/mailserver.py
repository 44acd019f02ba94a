"""A real SMTP server (aiosmtpd) on loopback that keeps what it receives, and the fixtures of
the tests that read mail (a plugin of tests/conftest.py): `mail_port`, a free loopback port
for the settings' CONSENTRY_SMTP_URL (tests/dsr/mailcodes.with_mail), and `mailbox`, the
server listening on it for the test."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session

from tests.servers import free_port


class Mailbox:
    """What an SMTP server on loopback received: one envelope per mail."""

    def __init__(self) -> None:
        self.received: list[Envelope] = []

    async def handle_DATA(self, _server: SMTP, _session: Session, envelope: Envelope) -> str:
        self.received.append(envelope)
        return "250 OK"

    def texts(self) -> list[str]:
        """Each mail as its whole text (headers and body)."""
        return [bytes(e.content or b"").decode() for e in self.received]

    def wait_for(self, count: int, seconds: float = 15) -> list[str]:
        """The texts once `count` mails have arrived (a sender in the background)."""
        deadline = time.monotonic() + seconds
        while len(self.received) < count:
            assert time.monotonic() < deadline, f"{len(self.received)} mails, not {count}"
            time.sleep(0.05)
        return self.texts()


@contextlib.contextmanager
def smtp_server(port: int) -> Iterator[Mailbox]:
    """A real SMTP server (aiosmtpd) on 127.0.0.1:`port` while the block runs."""
    mailbox = Mailbox()
    controller = Controller(mailbox, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield mailbox
    finally:
        controller.stop()


@pytest.fixture
def mail_port() -> int:
    return free_port()


@pytest.fixture
def mailbox(mail_port: int) -> Iterator[Mailbox]:
    with smtp_server(mail_port) as box:
        yield box
