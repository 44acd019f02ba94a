"""Accounts and enrolment: the link, the password policy, the second factor, one account per
e-mail, every refusal of a link the same."""

from __future__ import annotations

from datetime import timedelta

import pyotp
import pytest

from consentry.errors import (
    EnrolmentInvalid,
    EnrolmentOutOfOrder,
    InvalidEmail,
    PasswordRejected,
    PersonExists,
    PersonNotFound,
    SignInFailed,
    TotpCodeInvalid,
)
from consentry.people.models import PersonRole, PersonStatus
from consentry.runtime import Runtime
from tests.consent.helpers import install_clock
from tests.people.helpers import (
    CLIENT,
    EMAIL,
    PASSWORD,
    code,
    person_row,
    secret_of,
    token_of,
)


def test_create_makes_a_pending_account_and_a_24_hour_link(
    runtime: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake = install_clock(monkeypatch)
    enrolment = runtime.people.create(EMAIL, PersonRole.AUDITOR, actor="cli")
    assert enrolment.url.startswith("http://127.0.0.1:8000/enrol?token=")
    assert enrolment.expires_at == fake.moment + timedelta(hours=24)
    person = runtime.people.open_enrolment(token_of(enrolment))
    assert person.person_id == enrolment.person_id
    assert person.email == "ada.lovelace@example.com"
    assert person.role is PersonRole.AUDITOR
    assert person.status is PersonStatus.PENDING
    assert runtime.people.get(enrolment.person_id) == person


def test_enrolment_sets_a_password_then_confirms_a_totp_code(
    runtime: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake = install_clock(monkeypatch)
    token = token_of(runtime.people.create(EMAIL, PersonRole.DPO, actor="cli"))
    with pytest.raises(EnrolmentOutOfOrder):
        runtime.people.confirm_totp(token, "123456")
    setup = runtime.people.set_password(token, PASSWORD)
    assert setup.uri.startswith("otpauth://totp/Consentry:")
    assert "issuer=Consentry" in setup.uri
    assert setup.secret == secret_of(setup.uri)
    parsed = pyotp.parse_uri(setup.uri)
    assert isinstance(parsed, pyotp.TOTP)
    assert (parsed.digits, parsed.interval) == (6, 30)
    wrong = code(setup.secret, fake, steps=5)
    with pytest.raises(TotpCodeInvalid):
        runtime.people.confirm_totp(token, wrong)
    person = runtime.people.confirm_totp(token, code(setup.secret, fake))
    assert person.status is PersonStatus.ACTIVE
    assert person.enrolled_at == fake.moment
    # The link is used up: every step refuses it now, with the one code.
    for attempt in (
        lambda: runtime.people.open_enrolment(token),
        lambda: runtime.people.set_password(token, PASSWORD),
        lambda: runtime.people.confirm_totp(token, code(setup.secret, fake)),
    ):
        with pytest.raises(EnrolmentInvalid):
            attempt()


def test_until_the_second_factor_is_confirmed_the_account_cannot_sign_in(
    runtime: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake = install_clock(monkeypatch)
    token = token_of(runtime.people.create(EMAIL, PersonRole.DPO, actor="cli"))
    setup = runtime.people.set_password(token, PASSWORD)
    with pytest.raises(SignInFailed):
        runtime.people.sign_in(EMAIL, PASSWORD, code(setup.secret, fake), client=CLIENT)


def test_setting_the_password_again_makes_a_new_secret(
    runtime: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake = install_clock(monkeypatch)
    token = token_of(runtime.people.create(EMAIL, PersonRole.DPO, actor="cli"))
    first = runtime.people.set_password(token, PASSWORD)
    second = runtime.people.set_password(token, PASSWORD + "!")
    assert first.secret != second.secret
    with pytest.raises(TotpCodeInvalid):
        runtime.people.confirm_totp(token, code(first.secret, fake))
    runtime.people.confirm_totp(token, code(second.secret, fake))


@pytest.mark.parametrize(
    ("password", "reason"),
    [
        ("short pass", "too_short"),
        ("x" * 11, "too_short"),
        ("x" * 1025, "too_long"),
        ("my name is ada.lovelace!", "contains_email"),
        ("ADA.LOVELACE rules the engine", "contains_email"),
    ],
)
def test_the_password_policy_refuses(
    runtime: Runtime, password: str, reason: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    install_clock(monkeypatch)
    token = token_of(runtime.people.create(EMAIL, PersonRole.DPO, actor="cli"))
    with pytest.raises(PasswordRejected) as caught:
        runtime.people.set_password(token, password)
    assert caught.value.context["reason"] == reason
    assert (
        person_row(runtime.store, runtime.people.open_enrolment(token).person_id).password_hash
        is None
    )


def test_the_password_policy_accepts_its_limits(
    runtime: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    install_clock(monkeypatch)
    for length in (12, 1024):
        token = token_of(
            runtime.people.create(f"p{length}@example.com", PersonRole.DPO, actor="cli")
        )
        runtime.people.set_password(token, "y" * length)


def test_an_expired_or_unknown_link_is_refused_alike(
    runtime: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake = install_clock(monkeypatch)
    token = token_of(runtime.people.create(EMAIL, PersonRole.DPO, actor="cli"))
    fake.advance(hours=23, minutes=59)
    runtime.people.open_enrolment(token)
    fake.advance(minutes=1)
    errors = []
    for bad in (token, "not-a-token", token[:-1] + ("A" if token[-1] != "A" else "B"), "x" * 500):
        with pytest.raises(EnrolmentInvalid) as caught:
            runtime.people.open_enrolment(bad)
        errors.append((caught.value.code, caught.value.detail))
        with pytest.raises(EnrolmentInvalid):
            runtime.people.set_password(bad, PASSWORD)
    assert len(set(errors)) == 1


def test_a_disabled_account_cannot_enrol(runtime: Runtime, monkeypatch: pytest.MonkeyPatch) -> None:
    install_clock(monkeypatch)
    enrolment = runtime.people.create(EMAIL, PersonRole.DPO, actor="cli")
    runtime.people.disable(enrolment.person_id, actor="cli")
    with pytest.raises(EnrolmentInvalid):
        runtime.people.open_enrolment(token_of(enrolment))


def test_one_account_per_email(runtime: Runtime, monkeypatch: pytest.MonkeyPatch) -> None:
    install_clock(monkeypatch)
    runtime.people.create(EMAIL, PersonRole.DPO, actor="cli")
    with pytest.raises(PersonExists) as caught:
        runtime.people.create("  ada.lovelace@EXAMPLE.com ", PersonRole.ADMIN, actor="cli")
    assert caught.value.code == "person_exists"
    assert len(runtime.people.everyone()) == 1
    runtime.people.create("charles.babbage@example.com", PersonRole.ADMIN, actor="cli")
    assert len(runtime.people.everyone()) == 2


@pytest.mark.parametrize("email", ["", "ada", "@example.com", "ada@", "a da@example.com"])
def test_not_an_email_is_refused(runtime: Runtime, email: str) -> None:
    with pytest.raises(InvalidEmail):
        runtime.people.create(email, PersonRole.DPO, actor="cli")


def test_disable_of_an_unknown_person(runtime: Runtime) -> None:
    with pytest.raises(PersonNotFound):
        runtime.people.disable("per_000000000000000000000000", actor="cli")
    with pytest.raises(PersonNotFound):
        runtime.people.get("per_" + "0" * 100)
