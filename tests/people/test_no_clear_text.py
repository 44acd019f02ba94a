"""No e-mail, password, TOTP secret or token of a person is in the SQLite files in clear."""

from __future__ import annotations

from pathlib import Path

import pytest

from consentry.people.models import PersonRole
from consentry.runtime import Runtime
from tests.consent.helpers import install_clock
from tests.people.helpers import CLIENT, EMAIL, PASSWORD, code, token_of


def _files(data_dir: Path) -> bytes:
    return b"".join(p.read_bytes() for p in sorted(data_dir.rglob("*")) if p.is_file())


def _forms(text: str) -> list[bytes]:
    return [
        form.encode(encoding)
        for form in {text, text.lower(), text.upper()}
        for encoding in ("utf-8", "utf-16-le")
    ]


def test_the_sqlite_files_hold_nothing_of_a_person_in_clear(
    sqlite_runtime: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    runtime = sqlite_runtime
    fake = install_clock(monkeypatch)
    enrolment = runtime.people.create(EMAIL, PersonRole.ADMIN, actor="cli")
    token = token_of(enrolment)
    setup = runtime.people.set_password(token, PASSWORD)
    runtime.people.confirm_totp(token, code(setup.secret, fake))
    fake.advance(seconds=30)
    new = runtime.people.sign_in(EMAIL, PASSWORD, code(setup.secret, fake), client=CLIENT)
    fake.advance(minutes=2)
    assert runtime.people.check(new.token) is not None
    # The data is there, sealed: the search below is not vacuous.
    assert runtime.people.get(enrolment.person_id).email == EMAIL.lower()
    blob = _files(runtime.settings.data_dir)
    assert enrolment.person_id.encode() in blob
    assert b"$argon2id$" in blob
    for secret in (
        EMAIL,
        "ada.lovelace",
        PASSWORD,
        setup.secret,
        token,
        new.token,
        new.session.csrf_token,
    ):
        for form in _forms(secret):
            assert form not in blob, secret
    runtime.store.checkpoint()
    blob = _files(runtime.settings.data_dir)
    for form in _forms(EMAIL) + _forms(setup.secret) + _forms(new.token):
        assert form not in blob
