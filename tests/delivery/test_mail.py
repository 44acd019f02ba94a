"""The outgoing mail queue on both back-ends, with a real SMTP server on loopback: queued with
the transaction that causes it, sealed at rest, retried while the server is down, emptied
once sent or given up."""

from __future__ import annotations

from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select, update

from consentry import clock
from consentry.app import create_app
from consentry.delivery.mail import MAX_ATTEMPTS, MailServer, Sent
from consentry.errors import InvalidSetting
from consentry.runtime import Runtime
from consentry.settings import Settings
from consentry.storage.schema import outgoing_mail
from tests.consent.helpers import install_clock
from tests.dsr.mailcodes import CLIENT, code_in, everything_stored, known, with_mail
from tests.mailserver import Mailbox, smtp_server

LINA = "lina.mail@example.com"


@pytest.fixture
def settings(settings: Settings, mail_port: int) -> Settings:
    return with_mail(settings, mail_port)


def queue(rt: Runtime, minutes: float = 10) -> str:
    with rt.store.write() as conn:
        return rt.mail.queue(
            conn,
            LINA,
            "Hello",
            "The body, which names Lina.",
            expires_at=clock.now() + timedelta(minutes=minutes),
        )


def rows(rt: Runtime) -> list[tuple[str, int, bool]]:
    with rt.store.read() as conn:
        stmt = select(outgoing_mail.c.status, outgoing_mail.c.attempts, outgoing_mail.c.sealed)
        return [(r.status, r.attempts, r.sealed is not None) for r in conn.execute(stmt)]


def test_a_mail_is_sent_and_keeps_no_content(runtime: Runtime, mailbox: Mailbox) -> None:
    queue(runtime)
    assert rows(runtime) == [("pending", 0, True)]
    stored = everything_stored(runtime)
    assert "lina.mail" not in stored
    assert "names Lina" not in stored

    assert runtime.mail.send_due() == Sent(sent=1)
    (mail,) = mailbox.received
    assert mail.mail_from == "privacy@shop.example.com"
    assert mail.rcpt_tos == [LINA]
    assert "The body, which names Lina." in mailbox.texts()[0]
    assert rows(runtime) == [("sent", 1, False)]
    # Sent once only.
    assert runtime.mail.send_due() == Sent()
    assert len(mailbox.received) == 1


def failing_cause(rt: Runtime) -> None:
    with rt.store.write() as conn:
        rt.mail.queue(conn, LINA, "Hello", "Text.", expires_at=clock.now() + timedelta(1))
        raise RuntimeError("what caused the mail failed")


def test_mail_queued_in_a_transaction_rolled_back_is_never_sent(
    runtime: Runtime, mailbox: Mailbox
) -> None:
    with pytest.raises(RuntimeError):
        failing_cause(runtime)
    assert rows(runtime) == []
    assert runtime.mail.send_due() == Sent()
    assert mailbox.received == []


def test_a_code_mailed_while_the_server_is_down_arrives_once_it_is_up(
    runtime: Runtime, mail_port: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake = install_clock(monkeypatch)
    known(runtime, LINA)
    runtime.portal_codes.request(LINA, client=CLIENT)
    assert runtime.mail.send_due() == Sent(retried=1)
    assert rows(runtime) == [("pending", 1, True)]
    with smtp_server(mail_port) as mailbox:
        # Not before its backoff (under CONSENTRY_RETRY_BASE_SECONDS, 1 s) ...
        assert runtime.mail.send_due() == Sent()
        fake.advance(seconds=1)
        # ... then sent.
        assert runtime.mail.send_due() == Sent(sent=1)
        assert [m.rcpt_tos for m in mailbox.received] == [[LINA]]
    assert rows(runtime) == [("sent", 2, False)]
    code = code_in(mailbox.texts()[0])
    assert runtime.portal_codes.check(LINA, code, client=CLIENT).subject_id
    stored = everything_stored(runtime)
    assert "lina.mail" not in stored
    assert code not in stored


def test_mail_past_its_use_is_given_up_and_emptied(
    runtime: Runtime, mail_port: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake = install_clock(monkeypatch)
    queue(runtime, minutes=1)
    assert runtime.mail.send_due() == Sent(retried=1)
    fake.advance(minutes=2)
    with smtp_server(mail_port) as mailbox:
        assert runtime.mail.send_due() == Sent(given_up=1)
        assert mailbox.received == []
    assert rows(runtime) == [("failed", 1, False)]


def test_mail_is_given_up_after_its_attempts(
    runtime: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake = install_clock(monkeypatch)
    queue(runtime, minutes=60 * 24)
    for _ in range(MAX_ATTEMPTS - 1):
        assert runtime.mail.send_due() == Sent(retried=1)
        fake.advance(minutes=6)
    assert runtime.mail.send_due() == Sent(given_up=1)
    assert rows(runtime) == [("failed", MAX_ATTEMPTS, False)]


def test_sealed_content_moved_to_another_mail_does_not_open(
    runtime: Runtime, mailbox: Mailbox
) -> None:
    queue(runtime)
    queue(runtime)
    with runtime.store.write() as conn:
        first, second = conn.execute(
            select(outgoing_mail.c.seq, outgoing_mail.c.sealed).order_by(outgoing_mail.c.seq)
        ).all()
        conn.execute(
            update(outgoing_mail)
            .where(outgoing_mail.c.seq == second.seq)
            .values(sealed=first.sealed)
        )
    assert runtime.mail.send_due() == Sent(sent=1, given_up=1)
    assert len(mailbox.received) == 1
    assert sorted(rows(runtime)) == [("failed", 1, False), ("sent", 1, False)]


@pytest.mark.parametrize(
    ("url", "server"),
    [
        ("smtp://127.0.0.1:2525", MailServer("smtp", "127.0.0.1", 2525)),
        (
            "smtp+starttls://mailer:p%40ss@smtp.example.com",
            MailServer("smtp+starttls", "smtp.example.com", 587, "mailer", "p@ss"),
        ),
        ("smtps://smtp.example.com", MailServer("smtps", "smtp.example.com", 465)),
    ],
)
def test_the_mail_server_is_read_from_its_url(url: str, server: MailServer) -> None:
    assert MailServer.from_url(url) == server


def test_a_mail_server_url_without_a_host_is_refused() -> None:
    with pytest.raises(InvalidSetting, match="CONSENTRY_SMTP_URL"):
        MailServer.from_url("smtp://")


def test_the_server_sends_mail_in_the_background(settings: Settings, mailbox: Mailbox) -> None:
    with TestClient(create_app(settings)) as client:
        rt = client.app.state.runtime  # type: ignore[attr-defined]
        assert isinstance(rt, Runtime)
        queue(rt)
        mailbox.wait_for(1, seconds=10)
        assert [m.rcpt_tos for m in mailbox.received] == [[LINA]]
    assert rows_after(settings) == [("sent", 1, False)]


def rows_after(settings: Settings) -> list[tuple[str, int, bool]]:
    rt = Runtime(settings)
    try:
        return rows(rt)
    finally:
        rt.close()
