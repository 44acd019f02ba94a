"""Sign-in: both factors, one answer for every failure, the lock after 5 failures, codes used
once, argon2 work for unknown e-mails too, rehash on new parameters."""

from __future__ import annotations

from datetime import timedelta

import pytest
from argon2 import PasswordHasher

from consentry.errors import AccountLocked, SignInFailed
from consentry.keys.material import PEOPLE_INDEX, PEOPLE_NOTES, named_secret
from consentry.people import passwords
from consentry.people.models import PersonRole
from consentry.people.service import People
from consentry.runtime import Runtime
from tests.consent.helpers import FakeClock, install_clock
from tests.people.helpers import CLIENT, EMAIL, PASSWORD, code, enrol, person_row


def test_both_factors_open_a_session(runtime: Runtime, monkeypatch: pytest.MonkeyPatch) -> None:
    fake = install_clock(monkeypatch)
    ada = enrol(runtime.people, fake, role=PersonRole.OPERATOR)
    new = runtime.people.sign_in(EMAIL, PASSWORD, code(ada.secret, fake), client=CLIENT)
    assert new.session.person_id == ada.person_id
    assert new.session.role is PersonRole.OPERATOR
    assert new.session.expires_at == fake.moment + timedelta(hours=12)
    assert new.token
    assert new.session.csrf_token
    assert new.token != new.session.csrf_token
    assert runtime.people.check(new.token) == new.session


def test_the_email_is_matched_in_any_case(
    runtime: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake = install_clock(monkeypatch)
    ada = enrol(runtime.people, fake)
    new = runtime.people.sign_in(
        " ADA.LOVELACE@example.COM ", PASSWORD, code(ada.secret, fake), client=CLIENT
    )
    assert new.session.person_id == ada.person_id


def _refusal(people: People, email: str, password: str, totp: str) -> tuple[str, str, int]:
    with pytest.raises(SignInFailed) as caught:
        people.sign_in(email, password, totp, client=CLIENT)
    error = caught.value
    return (error.code, error.detail, len(error.context))


def test_unknown_email_wrong_password_and_wrong_code_are_one_error(
    runtime: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake = install_clock(monkeypatch)
    ada = enrol(runtime.people, fake)
    good = code(ada.secret, fake)
    refusals = {
        _refusal(runtime.people, "grace.hopper@example.com", PASSWORD, good),
        _refusal(runtime.people, EMAIL, PASSWORD + "x", good),
        _refusal(runtime.people, EMAIL, PASSWORD, code(ada.secret, fake, steps=3)),
        _refusal(runtime.people, EMAIL, PASSWORD, "12345"),
        _refusal(runtime.people, "not an address", PASSWORD, good),
    }
    assert refusals == {("sign_in_failed", "the e-mail, password or code is wrong", 0)}
    # None of them used the code: it still opens a session.
    runtime.people.sign_in(EMAIL, PASSWORD, good, client=CLIENT)


class CountingHasher(PasswordHasher):
    """argon2-cffi's hasher, counting the verifications it does."""

    verified = 0

    def verify(self, hash: str | bytes, password: str | bytes) -> bool:
        CountingHasher.verified += 1
        return super().verify(hash, password)


def _people(runtime: Runtime, hasher: PasswordHasher) -> People:
    with runtime.store.write() as conn:
        index = named_secret(conn, runtime.kek, PEOPLE_INDEX)
        notes = named_secret(conn, runtime.kek, PEOPLE_NOTES)
    return People(runtime.store, index, notes, "https://consentry.example.com", hasher)


def test_an_unknown_email_costs_the_same_argon2_work(
    runtime: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake = install_clock(monkeypatch)
    people = _people(runtime, CountingHasher(time_cost=1, memory_cost=1024, parallelism=1))
    ada = enrol(people, fake)
    CountingHasher.verified = 0
    with pytest.raises(SignInFailed):
        people.sign_in("grace.hopper@example.com", PASSWORD, "000000", client=CLIENT)
    assert CountingHasher.verified == 1
    with pytest.raises(SignInFailed):
        people.sign_in(EMAIL, PASSWORD + "x", code(ada.secret, fake), client=CLIENT)
    assert CountingHasher.verified == 2


def test_a_code_is_accepted_once(runtime: Runtime, monkeypatch: pytest.MonkeyPatch) -> None:
    fake = install_clock(monkeypatch)
    ada = enrol(runtime.people, fake)
    good = code(ada.secret, fake)
    runtime.people.sign_in(EMAIL, PASSWORD, good, client=CLIENT)
    with pytest.raises(SignInFailed):
        runtime.people.sign_in(EMAIL, PASSWORD, good, client=CLIENT)
    # Nor the step before it, once a later one was used (it is still within the drift).
    fake.advance(seconds=30)
    with pytest.raises(SignInFailed):
        runtime.people.sign_in(EMAIL, PASSWORD, good, client=CLIENT)
    runtime.people.sign_in(EMAIL, PASSWORD, code(ada.secret, fake), client=CLIENT)


def test_the_code_of_enrolment_cannot_sign_in(
    runtime: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake = install_clock(monkeypatch)
    ada = enrol(runtime.people, fake)
    fake.advance(seconds=-30)  # back to the step whose code confirmed the enrolment
    with pytest.raises(SignInFailed):
        runtime.people.sign_in(EMAIL, PASSWORD, code(ada.secret, fake), client=CLIENT)


def test_one_step_of_drift_either_way(runtime: Runtime, monkeypatch: pytest.MonkeyPatch) -> None:
    fake = install_clock(monkeypatch)
    ada = enrol(runtime.people, fake)
    fake.advance(minutes=5)
    with pytest.raises(SignInFailed):
        runtime.people.sign_in(EMAIL, PASSWORD, code(ada.secret, fake, steps=2), client=CLIENT)
    runtime.people.sign_in(EMAIL, PASSWORD, code(ada.secret, fake, steps=-1), client=CLIENT)
    fake.advance(minutes=5)
    runtime.people.sign_in(EMAIL, PASSWORD, code(ada.secret, fake, steps=1), client=CLIENT)


def _fail(people: People, fake: FakeClock, secret: str, times: int) -> None:
    for _ in range(times):
        with pytest.raises(SignInFailed):
            people.sign_in(EMAIL, "wrong " + PASSWORD, code(secret, fake), client=CLIENT)


def test_five_failures_lock_the_account_for_15_minutes(
    runtime: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake = install_clock(monkeypatch)
    ada = enrol(runtime.people, fake)
    _fail(runtime.people, fake, ada.secret, 4)
    with pytest.raises(AccountLocked) as caught:
        runtime.people.sign_in(EMAIL, PASSWORD, "000000", client=CLIENT)
    until = fake.moment + timedelta(minutes=15)
    assert caught.value.code == "account_locked"
    assert caught.value.context["unlocks_at"] == until.isoformat().replace("+00:00", "Z")
    # Locked: even both right factors are refused.
    fake.advance(minutes=14, seconds=59)
    with pytest.raises(AccountLocked):
        runtime.people.sign_in(EMAIL, PASSWORD, code(ada.secret, fake), client=CLIENT)
    fake.advance(seconds=1)
    new = runtime.people.sign_in(EMAIL, PASSWORD, code(ada.secret, fake), client=CLIENT)
    assert new.session.person_id == ada.person_id
    assert person_row(runtime.store, ada.person_id).locked_until is None


def test_wrong_codes_count_too(runtime: Runtime, monkeypatch: pytest.MonkeyPatch) -> None:
    fake = install_clock(monkeypatch)
    enrol(runtime.people, fake)
    for _ in range(4):
        with pytest.raises(SignInFailed):
            runtime.people.sign_in(EMAIL, PASSWORD, "000000", client=CLIENT)
    with pytest.raises(AccountLocked):
        runtime.people.sign_in(EMAIL, PASSWORD, "000000", client=CLIENT)


def test_a_success_resets_the_count(runtime: Runtime, monkeypatch: pytest.MonkeyPatch) -> None:
    fake = install_clock(monkeypatch)
    ada = enrol(runtime.people, fake)
    _fail(runtime.people, fake, ada.secret, 4)
    assert person_row(runtime.store, ada.person_id).failed_count == 4
    runtime.people.sign_in(EMAIL, PASSWORD, code(ada.secret, fake), client=CLIENT)
    assert person_row(runtime.store, ada.person_id).failed_count == 0
    fake.advance(seconds=30)
    _fail(runtime.people, fake, ada.secret, 4)
    runtime.people.sign_in(EMAIL, PASSWORD, code(ada.secret, fake), client=CLIENT)


def test_failures_of_an_unknown_email_lock_nothing(
    runtime: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake = install_clock(monkeypatch)
    ada = enrol(runtime.people, fake)
    for _ in range(6):
        with pytest.raises(SignInFailed):
            runtime.people.sign_in("grace.hopper@example.com", PASSWORD, "0", client=CLIENT)
    runtime.people.sign_in(EMAIL, PASSWORD, code(ada.secret, fake), client=CLIENT)


def test_a_hash_with_old_parameters_is_replaced_at_sign_in(
    runtime: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake = install_clock(monkeypatch)
    # The suite's hasher is the cheapest (tests/conftest.py); an older one cheaper still.
    weak = _people(runtime, PasswordHasher(time_cost=1, memory_cost=512, parallelism=1))
    ada = enrol(weak, fake)
    before = person_row(runtime.store, ada.person_id).password_hash
    assert before.startswith("$argon2id$v=19$m=512,t=1,p=1$")
    runtime.people.sign_in(EMAIL, PASSWORD, code(ada.secret, fake), client=CLIENT)
    after = person_row(runtime.store, ada.person_id).password_hash
    assert after.startswith("$argon2id$v=19$m=1024,t=1,p=1$")
    fake.advance(seconds=30)
    runtime.people.sign_in(EMAIL, PASSWORD, code(ada.secret, fake), client=CLIENT)
    assert person_row(runtime.store, ada.person_id).password_hash == after


def test_the_product_hashes_with_argon2_cffis_parameters(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(passwords, "PasswordHasher", PasswordHasher)
    assert passwords.Passwords().hash(PASSWORD).startswith("$argon2id$v=19$m=65536,t=3,p=4$")
