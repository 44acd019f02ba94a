"""Every act on an account is audited by person id, in the transaction that does it; no entry
holds the e-mail, a password, a secret or a token."""

from __future__ import annotations

import json
import re

import pytest

from consentry.errors import AccountLocked, SignInFailed
from consentry.people.models import PersonRole
from consentry.runtime import Runtime
from tests.consent.helpers import install_clock
from tests.people.helpers import (
    CLIENT,
    EMAIL,
    PASSWORD,
    audit_rows,
    code,
    secret_of,
    token_of,
)


def test_the_whole_life_of_an_account_is_audited_without_the_email(
    runtime: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake = install_clock(monkeypatch)
    enrolment = runtime.people.create(EMAIL, PersonRole.DPO, actor="cli")
    person_id = enrolment.person_id
    token = token_of(enrolment)
    setup = runtime.people.set_password(token, PASSWORD)
    runtime.people.confirm_totp(token, code(setup.secret, fake))
    fake.advance(seconds=30)
    new = runtime.people.sign_in(EMAIL, PASSWORD, code(setup.secret, fake), client=CLIENT)
    runtime.people.sign_out(new.token, client=CLIENT)
    with pytest.raises(SignInFailed):
        runtime.people.sign_in("grace.hopper@example.com", PASSWORD, "123456", client=CLIENT)
    for _ in range(4):
        with pytest.raises(SignInFailed):
            runtime.people.sign_in(EMAIL, "wrong password!", "123456", client=CLIENT)
    with pytest.raises(AccountLocked):
        runtime.people.sign_in(EMAIL, "wrong password!", "123456", client=CLIENT)
    runtime.people.disable(person_id, actor="cli")

    rows = audit_rows(runtime.store)
    actions = [r.action for r in rows]
    assert actions == [
        "person:created",
        "person:password:set",
        "person:totp:confirmed",
        "person:signed_in",
        "person:signed_out",
        "person:sign_in:failed",
        *["person:sign_in:failed"] * 5,
        "person:locked",
        "person:disabled",
    ]
    details = [json.loads(r.details) for r in rows]
    unknown = details[5]
    # The client address only as a keyed hash, the same each time.
    assert set(unknown) == {"client", "reason"}
    assert unknown["reason"] == "unknown"
    assert CLIENT not in rows[5].details
    assert re.fullmatch(r"[0-9a-f]{32}", unknown["client"])
    assert {d.get("client") for d in details if "client" in d} == {unknown["client"]}
    assert rows[5].actor == "anonymous"
    assert all(d["person_id"] == person_id for i, d in enumerate(details) if i != 5)
    assert [d["reason"] for d in details[6:11]] == ["password"] * 5
    assert details[0]["role"] == "dpo"
    assert rows[0].actor == "cli"
    assert rows[3].actor == f"person:{person_id}"
    assert all(r.subject_id is None for r in rows)

    written = " ".join(r.details + r.actor for r in rows).lower()
    for needle in (
        EMAIL,
        "ada.lovelace",
        "grace.hopper",
        "example.com",
        PASSWORD,
        "wrong password",
        setup.secret,
        secret_of(setup.uri),
        token,
        new.token,
        new.session.csrf_token,
    ):
        assert needle.lower() not in written, needle
