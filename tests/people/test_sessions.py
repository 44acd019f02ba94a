"""Sessions: idle and absolute ends, last use written at most once a minute, sign-out,
disabling ends them, CSRF tokens."""

from __future__ import annotations

from dataclasses import replace

import pytest
from sqlalchemy import func, select

from consentry.errors import SessionInvalid, SignInFailed
from consentry.people.models import NewSession
from consentry.people.service import People
from consentry.runtime import Runtime
from consentry.storage.schema import person_sessions
from tests.consent.helpers import FakeClock, install_clock
from tests.people.helpers import CLIENT, EMAIL, PASSWORD, Enrolled, code, enrol


def _signed_in(runtime: Runtime, fake: FakeClock) -> tuple[Enrolled, NewSession]:
    ada = enrol(runtime.people, fake)
    return ada, runtime.people.sign_in(EMAIL, PASSWORD, code(ada.secret, fake), client=CLIENT)


def _last_seen(runtime: Runtime) -> list[object]:
    with runtime.store.read() as conn:
        return list(conn.execute(select(person_sessions.c.last_seen_at)).scalars())


def _sessions(runtime: Runtime) -> int:
    with runtime.store.read() as conn:
        return int(conn.execute(select(func.count()).select_from(person_sessions)).scalar_one())


def test_idle_30_minutes_ends_a_session(runtime: Runtime, monkeypatch: pytest.MonkeyPatch) -> None:
    fake = install_clock(monkeypatch)
    _, new = _signed_in(runtime, fake)
    fake.advance(minutes=29, seconds=59)
    assert runtime.people.check(new.token) is not None
    fake.advance(minutes=29, seconds=59)
    assert runtime.people.check(new.token) is not None  # the last check slid the window
    fake.advance(minutes=30)
    assert runtime.people.check(new.token) is None
    assert _sessions(runtime) == 0
    with pytest.raises(SessionInvalid):
        runtime.people.require(new.token)


def test_last_use_is_written_at_most_once_a_minute(
    runtime: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake = install_clock(monkeypatch)
    _, new = _signed_in(runtime, fake)
    opened = fake.moment
    fake.advance(seconds=59)
    runtime.people.check(new.token)
    assert _last_seen(runtime) == [opened]
    fake.advance(seconds=1)
    runtime.people.check(new.token)
    assert _last_seen(runtime) == [fake.moment]


def test_twelve_hours_end_a_session_however_busy(
    runtime: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake = install_clock(monkeypatch)
    _, new = _signed_in(runtime, fake)
    for _ in range(12 * 3 - 1):
        fake.advance(minutes=20)
        assert runtime.people.check(new.token) is not None
    fake.advance(minutes=19, seconds=59)
    assert runtime.people.check(new.token) is not None
    fake.advance(seconds=1)
    assert runtime.people.check(new.token) is None


def test_sign_out_ends_the_session(runtime: Runtime, monkeypatch: pytest.MonkeyPatch) -> None:
    fake = install_clock(monkeypatch)
    ada, new = _signed_in(runtime, fake)
    fake.advance(seconds=30)
    other = runtime.people.sign_in(EMAIL, PASSWORD, code(ada.secret, fake), client=CLIENT)
    assert runtime.people.sign_out(new.token, client=CLIENT)
    assert runtime.people.check(new.token) is None
    assert not runtime.people.sign_out(new.token, client=CLIENT)
    assert runtime.people.check(other.token) is not None


def test_disabling_a_person_ends_their_sessions(
    runtime: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake = install_clock(monkeypatch)
    ada, new = _signed_in(runtime, fake)
    grace = enrol(runtime.people, fake, email="grace.hopper@example.com")
    theirs = runtime.people.sign_in(grace.email, PASSWORD, code(grace.secret, fake), client=CLIENT)
    assert _sessions(runtime) == 2
    runtime.people.disable(ada.person_id, actor="cli")
    # Deleted at once, not merely refused when next presented.
    assert _sessions(runtime) == 1
    assert runtime.people.check(new.token) is None
    assert runtime.people.check(theirs.token) is not None
    fake.advance(seconds=30)
    with pytest.raises(SignInFailed):
        runtime.people.sign_in(EMAIL, PASSWORD, code(ada.secret, fake), client=CLIENT)


def test_unknown_and_malformed_tokens_open_nothing(
    runtime: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake = install_clock(monkeypatch)
    _, new = _signed_in(runtime, fake)
    for token in ("", "x", new.token[:-1], new.token + "x", "y" * 10_000, new.session.csrf_token):
        assert runtime.people.check(token) is None


def test_csrf_tokens(runtime: Runtime, monkeypatch: pytest.MonkeyPatch) -> None:
    fake = install_clock(monkeypatch)
    ada, new = _signed_in(runtime, fake)
    fake.advance(seconds=30)
    other = runtime.people.sign_in(EMAIL, PASSWORD, code(ada.secret, fake), client=CLIENT)
    session = runtime.people.require(new.token)
    assert People.csrf_ok(session, new.session.csrf_token)
    assert runtime.people.csrf_ok(session, session.csrf_token)
    assert not People.csrf_ok(session, other.session.csrf_token)
    assert not People.csrf_ok(session, "")
    assert not People.csrf_ok(session, new.session.csrf_token[:-1])
    assert not People.csrf_ok(replace(session, csrf_token="x"), new.session.csrf_token)
    assert new.session.csrf_token != other.session.csrf_token
