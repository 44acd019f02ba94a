"""Treatments: pseudonyms are keyed and stable, tokens reversible only through detokenize
(tests/ingest/test_detokenize.py)."""

from __future__ import annotations

import hashlib

from consentry.ingest.models import Treatment
from consentry.ingest.treatments import DROPPED, Item
from consentry.runtime import Runtime
from consentry.settings import Settings
from consentry.storage.schema import token_vault
from consentry.subjects.models import IdentityType, SubjectRef
from consentry.subjects.normalise import normalise

EMAIL = "ana.tokens@example.com"


def new_subject(rt: Runtime, email: str) -> str:
    ref = SubjectRef(identities=(normalise(IdentityType.EMAIL, email),))
    with rt.store.write() as conn:
        return rt.subjects.resolve(conn, ref, actor="test").subject.subject_id


def treat(
    rt: Runtime, kind: Treatment, subject_id: str, field: str, values: list[object]
) -> list[object]:
    with rt.store.write() as conn:
        sealer = rt.subject_keys.sealer(conn, subject_id)
        items = [Item(subject_id, field, v, sealer) for v in values]
        return rt.treatments[kind].treat(conn, items)


def test_keep_and_drop(runtime: Runtime) -> None:
    sid = new_subject(runtime, EMAIL)
    assert treat(runtime, Treatment.KEEP, sid, "url", ["/a", 2]) == ["/a", 2]
    assert treat(runtime, Treatment.DROP, sid, "debug", [True]) == [DROPPED]


def test_pseudonyms_are_keyed_stable_and_per_field(settings: Settings) -> None:
    rt = Runtime(settings)
    try:
        sid = new_subject(rt, EMAIL)
        first = treat(rt, Treatment.PSEUDONYMISE, sid, "email", [EMAIL, EMAIL, "bo@example.com"])
        other_field = treat(rt, Treatment.PSEUDONYMISE, sid, "contact", [EMAIL])
    finally:
        rt.close()
    assert first[0] == first[1] != first[2]
    assert other_field[0] != first[0]
    # Never a plain hash of the value, with or without the field name.
    assert first[0] not in {
        hashlib.sha256(EMAIL.encode()).hexdigest(),
        hashlib.sha256(b"email\x00" + EMAIL.encode()).hexdigest(),
    }
    restarted = Runtime(settings)
    try:
        again = treat(restarted, Treatment.PSEUDONYMISE, sid, "email", [EMAIL])
    finally:
        restarted.close()
    assert again[0] == first[0]


def test_tokens_reuse_and_seal(runtime: Runtime) -> None:
    ana = new_subject(runtime, EMAIL)
    bo = new_subject(runtime, "bo.tokens@example.com")
    tokens = treat(runtime, Treatment.TOKENISE, ana, "card", ["4111111111111111"] * 2 + ["5500"])
    assert tokens[0] == tokens[1] != tokens[2]
    assert all(str(t).startswith("tok_") for t in tokens)
    # The same value of another subject is another token: tokens cannot join people.
    assert treat(runtime, Treatment.TOKENISE, bo, "card", ["4111111111111111"])[0] != tokens[0]
    with runtime.store.read() as conn:
        rows = conn.execute(token_vault.select()).all()
    assert len(rows) == 3
    for row in rows:
        assert b"4111111111111111" not in bytes(row.value_ct)
        assert b"4111111111111111" not in bytes(row.value_index)
