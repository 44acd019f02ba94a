"""Outgoing mail: queued in the transaction that causes it, its recipient and text sealed at
rest, sent over SMTP by a background sender with retries, and emptied once sent or given up."""

from __future__ import annotations

import logging
import smtplib
import ssl
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.message import EmailMessage
from typing import Protocol
from urllib.parse import unquote, urlsplit

import msgspec
from sqlalchemy import Connection

from consentry import clock
from consentry.delivery.notices import backoff
from consentry.errors import InvalidSetting, KeyUnwrapFailed
from consentry.keys.envelope import Sealer
from consentry.periodic import Periodic
from consentry.storage import mail as sql
from consentry.storage.engine import Store

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 10
# The error of a mail whose sealed content does not open: given up at once.
UNREADABLE = "unreadable"
# How often the sender looks for mail to send.
SEND_INTERVAL_SECONDS = 1.0
# How long rows of finished mail (no content, only their status) are kept.
KEEP_FINISHED = timedelta(days=7)
_PORTS = {"smtp": 25, "smtp+starttls": 587, "smtps": 465}


def mail_aad(mail_id: str) -> bytes:
    """What a sealed mail is bound to: moved to another row, it no longer opens."""
    return b"consentry:mail:" + mail_id.encode()


@dataclass(frozen=True, slots=True)
class MailServer:
    """Where and how to hand mail over, read from CONSENTRY_SMTP_URL."""

    scheme: str
    host: str
    port: int
    username: str | None = None
    password: str | None = None

    @classmethod
    def from_url(cls, url: str) -> MailServer:
        """`smtp://host:port`, `smtp+starttls://user:pass@host:587` or `smtps://...`."""
        parts = urlsplit(url)
        if parts.scheme not in _PORTS or not parts.hostname:
            raise InvalidSetting(
                "CONSENTRY_SMTP_URL must be an smtp://, smtp+starttls:// or smtps:// URL"
            )
        try:
            port = parts.port or _PORTS[parts.scheme]
        except ValueError:
            raise InvalidSetting("CONSENTRY_SMTP_URL has an invalid port") from None
        user = unquote(parts.username) if parts.username else None
        password = unquote(parts.password) if parts.password else None
        return cls(parts.scheme, parts.hostname, port, user, password)


class Transport(Protocol):
    def send(self, message: EmailMessage) -> None:
        """Hand `message` over, or raise (OSError, smtplib.SMTPException) when it was not."""


class SmtpTransport:
    """One SMTP connection per pass of the sender, with TLS as the URL says."""

    def __init__(self, server: MailServer, timeout: float) -> None:
        self.server = server
        self.timeout = timeout

    def send(self, message: EmailMessage) -> None:
        server = self.server
        context = ssl.create_default_context()
        smtp: smtplib.SMTP
        if server.scheme == "smtps":
            smtp = smtplib.SMTP_SSL(server.host, server.port, timeout=self.timeout, context=context)
        else:
            smtp = smtplib.SMTP(server.host, server.port, timeout=self.timeout)
        with smtp:
            if server.scheme == "smtp+starttls":
                smtp.starttls(context=context)
            if server.username is not None:
                smtp.login(server.username, server.password or "")
            smtp.send_message(message)


def smtp_transport(url: str, timeout: float) -> SmtpTransport | None:
    """The transport CONSENTRY_SMTP_URL names, or None when it is empty (no mail is sent)."""
    return SmtpTransport(MailServer.from_url(url), timeout) if url else None


class _Content(msgspec.Struct, frozen=True):
    to: str
    subject: str
    text: str


@dataclass(frozen=True, slots=True)
class Sent:
    """What one pass of the sender did."""

    sent: int = 0
    retried: int = 0
    given_up: int = 0


class Mail:
    """The mail queue: `queue()` in the caller's transaction; `send_due()` sends (the
    background sender calls it every second while started; tests call it themselves)."""

    def __init__(
        self,
        store: Store,
        secret: bytes,
        sender: str,
        transport: Transport | None,
        retry_base: float,
        *,
        send_timeout: float = 10.0,
    ) -> None:
        self.store = store
        self._sealer = Sealer(secret)
        self.sender = sender
        self.transport = transport
        self.retry_base = retry_base
        # A claimed mail is left to its sender this long: its send ends well within it.
        self.lease = timedelta(seconds=send_timeout * 2 + 30)
        interval = SEND_INTERVAL_SECONDS if transport is not None else 0
        self._periodic = Periodic("consentry-mail", interval, self.send_due)

    @property
    def enabled(self) -> bool:
        """Whether a mail server is configured (mail queued without one is never sent)."""
        return self.transport is not None

    def queue(
        self, conn: Connection, to: str, subject: str, text: str, *, expires_at: datetime
    ) -> str:
        """Queue a plain-text mail to `to`, to be given up at `expires_at` if not sent by then;
        returns its id. Nothing of it is stored in clear."""
        mail_id = "ml_" + uuid.uuid4().hex
        content = msgspec.json.encode(_Content(to, subject, text))
        now = clock.now()
        sql.insert_mail(
            conn,
            {
                "mail_id": mail_id,
                "status": sql.PENDING,
                "attempts": 0,
                "next_at": now,
                "created_at": now,
                "expires_at": expires_at,
                "sealed": self._sealer.seal(content, mail_aad(mail_id)),
            },
        )
        return mail_id

    def send_due(self, limit: int = 20) -> Sent:
        """Send the mail that is due, one message each; a failure is tried again with backoff
        (doubling from CONSENTRY_RETRY_BASE_SECONDS), given up after MAX_ATTEMPTS or once past
        its use. A mail sent or given up keeps no content."""
        if self.transport is None:
            return Sent()
        # The sender looks every second: with nothing waiting, a read, not a write.
        with self.store.read() as conn:
            if not sql.anything_pending(conn):
                return Sent()
        now = clock.now()
        with self.store.write() as conn:
            given_up = sql.give_up_expired(conn, now)
            sql.delete_finished(conn, now - KEEP_FINISHED)
            due = sql.claim_due(conn, now, now + self.lease, limit)
        sent = retried = 0
        for row in due:
            message = self._message(row.mail_id, bytes(row.sealed))
            error = UNREADABLE if message is None else self._send(row.mail_id, message)
            with self.store.write() as conn:
                now = clock.now()
                if error is None:
                    sql.finish(conn, row.mail_id, sql.SENT, now)
                    sent += 1
                elif (
                    error == UNREADABLE or row.attempts + 1 >= MAX_ATTEMPTS or now >= row.expires_at
                ):
                    sql.finish(conn, row.mail_id, sql.FAILED, now, error)
                    given_up += 1
                else:
                    delay = timedelta(seconds=backoff(self.retry_base, row.attempts + 1))
                    sql.retry(conn, row.mail_id, now + delay, error)
                    retried += 1
        return Sent(sent, retried, given_up)

    def _message(self, mail_id: str, sealed: bytes) -> EmailMessage | None:
        """The mail in clear, or None when its content does not open (it was moved from its
        row, or the secret is not the one it was sealed under): never sendable."""
        try:
            opened = self._sealer.open(sealed, mail_aad(mail_id))
            content = msgspec.json.decode(opened, type=_Content)
        except (KeyUnwrapFailed, msgspec.DecodeError):
            log.error("mail %s does not open; given up", mail_id)
            return None
        message = EmailMessage()
        message["From"] = self.sender
        message["To"] = content.to
        message["Subject"] = content.subject
        message.set_content(content.text)
        return message

    def _send(self, mail_id: str, message: EmailMessage) -> str | None:
        """None when the message was handed over, else what went wrong (its exception's
        type: a server's message may quote the address)."""
        if self.transport is None:
            return "no mail server"
        try:
            self.transport.send(message)
        except (OSError, smtplib.SMTPException) as exc:
            log.warning("mail %s not sent: %s", mail_id, type(exc).__name__)
            return type(exc).__name__
        return None

    def start(self) -> None:
        """Send in the background from now on (only with a mail server)."""
        self._periodic.start()

    def stop(self) -> None:
        self._periodic.stop()
