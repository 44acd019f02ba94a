"""Portal e-mail codes on both back-ends, with a real SMTP server on loopback: a mailed code
opens the portal at `reasonable`; wrong, spent and expired codes are refused; an unknown
address gets the same answers and limits, and no mail; nothing of the address or the code is
stored or audited in clear."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from datetime import timedelta

import pytest

from consentry.dsr.codes import CodeRequested
from consentry.dsr.models import Level, Verification
from consentry.errors import PortalCodeInvalid, PortalCodesDisabled, RateLimited
from consentry.runtime import Runtime
from consentry.settings import Settings
from consentry.subjects.models import Identity, IdentityType, SubjectRef
from tests.consent.helpers import install_clock
from tests.dsr.mailcodes import (
    CLIENT,
    audit_text,
    code_in,
    everything_stored,
    known,
    other_than,
    sqlite_bytes,
    with_mail,
)
from tests.mailserver import Mailbox

LINA = "lina.codes@example.com"
NOBODY = "nobody.codes@example.com"


@pytest.fixture
def settings(settings: Settings, mail_port: int) -> Settings:
    return with_mail(settings, mail_port)


def mailed_code(rt: Runtime, mailbox: Mailbox, address: str, client: str = CLIENT) -> str:
    before = len(mailbox.received)
    rt.portal_codes.request(address, client=client)
    assert rt.mail.send_due().sent == 1
    assert len(mailbox.received) == before + 1
    assert mailbox.received[-1].rcpt_tos == [address]
    return code_in(mailbox.texts()[-1])


def outcome(call: Callable[..., object], *args: object, **kwargs: object) -> str:
    """What `call(*args, **kwargs)` answered, as its error code (or `ok`)."""
    try:
        call(*args, **kwargs)
    except (PortalCodeInvalid, RateLimited) as exc:
        return exc.code
    return "ok"


def test_a_mailed_code_opens_the_portal_at_reasonable(
    runtime: Runtime, mailbox: Mailbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    clock = install_clock(monkeypatch)
    subject_id = known(runtime, LINA)

    answer = runtime.portal_codes.request("  Lina.Codes@Example.com ", client=CLIENT)
    assert answer == CodeRequested(clock.moment + timedelta(minutes=10))
    assert runtime.mail.send_due().sent == 1
    (mail,) = mailbox.received
    assert mail.rcpt_tos == [LINA]
    assert mail.mail_from == "privacy@shop.example.com"
    text = mailbox.texts()[0]
    assert "Example Shop" in text
    code = code_in(text)
    assert code not in text.split("\r\n\r\n")[0], "the code is in the mail's headers"

    entry = runtime.portal_codes.check(LINA, code, client=CLIENT)
    assert entry.subject_id == subject_id
    assert entry.verification == Verification("portal_code", Level.REASONABLE, ("email",))
    assert entry.expires_at == clock.moment + timedelta(minutes=15)
    # A code opens once.
    with pytest.raises(PortalCodeInvalid):
        runtime.portal_codes.check(LINA, code, client=CLIENT)


def test_three_wrong_tries_spend_the_code(runtime: Runtime, mailbox: Mailbox) -> None:
    known(runtime, LINA)
    code = mailed_code(runtime, mailbox, LINA)
    for _ in range(2):
        with pytest.raises(PortalCodeInvalid):
            runtime.portal_codes.check(LINA, other_than(code), client=CLIENT)
    # Two wrong tries leave the code usable ...
    assert runtime.portal_codes.check(LINA, code, client=CLIENT).subject_id

    code = mailed_code(runtime, mailbox, LINA)
    for _ in range(3):
        with pytest.raises(PortalCodeInvalid):
            runtime.portal_codes.check(LINA, other_than(code), client=CLIENT)
    # ... the third spends it.
    with pytest.raises(PortalCodeInvalid):
        runtime.portal_codes.check(LINA, code, client=CLIENT)


def test_a_new_code_replaces_the_earlier_one(runtime: Runtime, mailbox: Mailbox) -> None:
    known(runtime, LINA)
    first = mailed_code(runtime, mailbox, LINA)
    second = mailed_code(runtime, mailbox, LINA)
    if first != second:
        with pytest.raises(PortalCodeInvalid):
            runtime.portal_codes.check(LINA, first, client=CLIENT)
    assert runtime.portal_codes.check(LINA, second, client=CLIENT).subject_id


def test_an_expired_code_is_refused(
    runtime: Runtime, mailbox: Mailbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    clock = install_clock(monkeypatch)
    known(runtime, LINA)
    code = mailed_code(runtime, mailbox, LINA)
    clock.advance(minutes=9, seconds=59)
    assert runtime.portal_codes.check(LINA, code, client=CLIENT).subject_id

    code = mailed_code(runtime, mailbox, LINA)
    clock.advance(minutes=10)
    with pytest.raises(PortalCodeInvalid):
        runtime.portal_codes.check(LINA, code, client=CLIENT)


def test_an_unknown_address_gets_the_same_answers_and_no_mail(
    runtime: Runtime, mailbox: Mailbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    install_clock(monkeypatch)
    known(runtime, LINA)
    for_known = runtime.portal_codes.request(LINA, client=CLIENT)
    for_nobody = runtime.portal_codes.request(NOBODY, client="198.51.100.7")
    assert for_nobody == for_known
    assert runtime.mail.send_due().sent == 1
    assert [m.rcpt_tos for m in mailbox.received] == [[LINA]]
    code = code_in(mailbox.texts()[0])

    with pytest.raises(PortalCodeInvalid) as wrong_known:
        runtime.portal_codes.check(LINA, other_than(code), client=CLIENT)
    with pytest.raises(PortalCodeInvalid) as wrong_nobody:
        runtime.portal_codes.check(NOBODY, code, client="198.51.100.7")
    assert wrong_nobody.value.detail == wrong_known.value.detail
    assert wrong_nobody.value.context == wrong_known.value.context
    # Nobody was created by asking.
    with runtime.store.read() as conn:
        assert runtime.subjects.find(conn, _ref(NOBODY)) is None


@pytest.mark.parametrize("address", [LINA, NOBODY])
def test_five_requests_an_hour_then_limited(
    runtime: Runtime, mailbox: Mailbox, monkeypatch: pytest.MonkeyPatch, address: str
) -> None:
    clock = install_clock(monkeypatch)
    known(runtime, LINA)
    for n in range(5):
        runtime.portal_codes.request(address, client=f"192.0.2.{n}")
        clock.advance(minutes=1)
    with pytest.raises(RateLimited) as limited:
        runtime.portal_codes.request(address, client="192.0.2.99")
    assert limited.value.code == "rate_limited"
    assert limited.value.context == {"retry_after": 55 * 60}
    clock.advance(minutes=55)
    runtime.portal_codes.request(address, client="192.0.2.99")

    # Per client address too: five addresses from one client, then the sixth is refused.
    for n in range(5):
        runtime.portal_codes.request(f"someone{n}@example.com", client="203.0.113.5")
    with pytest.raises(RateLimited):
        runtime.portal_codes.request(address, client="203.0.113.5")


def test_ten_failures_block_for_an_hour_known_or_not(
    runtime: Runtime, mailbox: Mailbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    clock = install_clock(monkeypatch)
    known(runtime, LINA)
    answers = {}
    for address in (LINA, NOBODY):
        runtime.portal_codes.request(address, client=CLIENT + address)
        seen = []
        for n in range(10):
            # From another client each time: the block is the address's.
            seen.append(outcome(runtime.portal_codes.check, address, "000000", client=f"c{n}"))
            clock.advance(minutes=1)
        seen.append(outcome(runtime.portal_codes.check, address, "000000", client="x"))
        seen.append(outcome(runtime.portal_codes.request, address, client="y"))
        answers[address] = seen
    assert answers[LINA] == answers[NOBODY]
    assert answers[LINA] == ["portal_code_invalid"] * 10 + ["rate_limited"] * 2

    clock.advance(minutes=51)
    assert outcome(runtime.portal_codes.request, LINA, client="y") == "ok"
    actions, _ = audit_text(runtime)
    assert actions.count("portal:code:blocked") == 2


def test_ten_failures_from_one_client_block_that_client(
    runtime: Runtime, mailbox: Mailbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    clock = install_clock(monkeypatch)
    known(runtime, LINA)
    for n in range(10):
        with pytest.raises(PortalCodeInvalid):
            runtime.portal_codes.check(f"someone{n}@example.com", "123456", client=CLIENT)
    # A code rightly mailed to another client's request cannot be tried from this one.
    code = mailed_code(runtime, mailbox, LINA, client="198.51.100.7")
    with pytest.raises(RateLimited) as limited:
        runtime.portal_codes.check(LINA, code, client=CLIENT)
    assert limited.value.context == {"retry_after": 3600}
    with pytest.raises(RateLimited):
        runtime.portal_codes.request(NOBODY, client=CLIENT)
    clock.advance(hours=1)
    code = mailed_code(runtime, mailbox, LINA, client="198.51.100.7")
    assert runtime.portal_codes.check(LINA, code, client=CLIENT).subject_id == known(runtime, LINA)


def _ref(address: str) -> SubjectRef:
    return SubjectRef(identities=(Identity(IdentityType.EMAIL, address),))


def test_nothing_of_the_address_or_the_code_is_stored_or_audited(
    runtime: Runtime, settings: Settings, mailbox: Mailbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A still clock: the microseconds of stored times cannot spell a 6-digit code by chance.
    install_clock(monkeypatch)
    subject_id = known(runtime, LINA)
    codes = []
    for client in (CLIENT, "198.51.100.7"):
        runtime.portal_codes.request(LINA, client=client)
        runtime.portal_codes.request(NOBODY, client=client)
        # Queued, not yet sent: sealed already.
        stored = everything_stored(runtime)
        assert "lina.codes" not in stored
        assert "nobody.codes" not in stored
        assert client not in stored
        assert runtime.mail.send_due().sent == 1
        codes.append(code_in(mailbox.texts()[-1]))
    with pytest.raises(PortalCodeInvalid):
        runtime.portal_codes.check(LINA, other_than(codes[-1]), client=CLIENT)
    runtime.portal_codes.check(LINA, codes[-1], client=CLIENT)

    stored = everything_stored(runtime)
    actions, audited = audit_text(runtime)
    assert {
        "portal:code:requested",
        "portal:code:refused",
        "portal:code:accepted",
    } <= set(actions)
    assert subject_id in audited
    for secret in ("lina.codes", "nobody.codes", "example.com", CLIENT, *codes):
        assert secret not in stored, secret
        assert secret not in audited, secret
    if not settings.db:
        files = sqlite_bytes(settings)
        assert b"lina.codes" not in files
        assert b"nobody.codes" not in files
        assert CLIENT.encode() not in files
        for code in codes:
            assert code.encode() not in files, "a code is in the SQLite file"


def test_codes_need_a_mail_server(settings: Settings) -> None:
    rt = Runtime(dataclasses.replace(settings, smtp_url=""))
    try:
        assert not rt.portal_codes.enabled
        with pytest.raises(PortalCodesDisabled):
            rt.portal_codes.request(LINA, client=CLIENT)
        with pytest.raises(PortalCodesDisabled):
            rt.portal_codes.check(LINA, "123456", client=CLIENT)
    finally:
        rt.close()
