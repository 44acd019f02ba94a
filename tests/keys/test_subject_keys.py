"""keys/subject_keys.py on both back-ends: data keys stored wrapped, and crypto-shredding."""

from __future__ import annotations

import pytest
from sqlalchemy import select, update

from consentry.errors import KeyUnwrapFailed, SubjectKeyDestroyed
from consentry.keys.envelope import Sealer
from consentry.runtime import Runtime
from consentry.settings import Settings
from consentry.storage.schema import identities, metadata, subject_keys
from consentry.subjects.models import Identity, IdentityType
from consentry.subjects.refs import subject_ref

PEOPLE = 20


def key_aad(subject_id: str) -> bytes:
    return b"consentry:subject-key:" + subject_id.encode()


def identity_aad(subject_id: str, type_: str) -> bytes:
    return f"consentry:identity:{subject_id}:{type_}".encode()


def person(n: int) -> tuple[Identity, Identity]:
    return (
        Identity(IdentityType.EMAIL, f"person{n:02d}@example.com"),
        Identity(IdentityType.PHONE, f"+4477009001{n:02d}"),
    )


def add_people(rt: Runtime, count: int) -> dict[str, tuple[Identity, Identity]]:
    people = {}
    with rt.store.write() as conn:
        for n in range(count):
            email, phone = person(n)
            ref = subject_ref(None, [("email", email.value), ("phone", phone.value)])
            resolution = rt.subjects.resolve(conn, ref, actor="test")
            assert resolution.created
            people[resolution.subject.subject_id] = (email, phone)
    return people


def readable(rt: Runtime, subject_id: str) -> set[Identity]:
    with rt.store.read() as conn:
        return set(rt.subjects.identities(conn, subject_id))


def destroy(rt: Runtime, subject_id: str) -> bool:
    with rt.store.write() as conn:
        return rt.subject_keys.destroy(conn, subject_id)


def destroy_then_fail(rt: Runtime, subject_id: str) -> None:
    with rt.store.write() as conn:
        destroyed = rt.subject_keys.destroy(conn, subject_id)
        raise RuntimeError(f"erasure aborted after destroyed={destroyed}")


def test_data_keys_are_stored_wrapped_by_the_kek(runtime: Runtime) -> None:
    people = add_people(runtime, 3)
    with runtime.store.read() as conn:
        rows = conn.execute(select(subject_keys)).all()
        sealed = conn.execute(select(identities)).all()
        every_table = [conn.execute(select(t)).all() for t in metadata.sorted_tables]
    assert {row.subject_id for row in rows} == set(people)

    raw_keys = []
    for row in rows:
        wrapped = bytes(row.wrapped_key)
        raw = runtime.kek.open(wrapped, key_aad(row.subject_id))
        assert len(raw) == 32
        assert raw not in wrapped
        # 0x01 || 12-byte nonce || 32-byte ciphertext || 16-byte tag
        assert len(wrapped) == 1 + 12 + 32 + 16
        assert row.kek_id == runtime.kek.kek_id
        raw_keys.append(raw)
        # The unwrapped key is really the one the subject's identities are sealed under.
        for identity in (i for i in sealed if i.subject_id == row.subject_id):
            value = Sealer(raw).open(
                bytes(identity.value_ct), identity_aad(row.subject_id, identity.type)
            )
            assert value.decode() in {i.value for i in people[row.subject_id]}
    assert len(set(raw_keys)) == len(raw_keys)

    # No raw data key appears anywhere in the database, in any column.
    for table_rows in every_table:
        for table_row in table_rows:
            for value in table_row:
                blob = value if isinstance(value, bytes) else str(value).encode()
                for raw in raw_keys:
                    assert raw not in blob


def test_a_wrapped_key_is_bound_to_its_subject(runtime: Runtime, settings: Settings) -> None:
    first, second = list(add_people(runtime, 2))
    with runtime.store.write() as conn:
        stolen = conn.execute(
            select(subject_keys.c.wrapped_key).where(subject_keys.c.subject_id == first)
        ).scalar_one()
        conn.execute(
            update(subject_keys)
            .where(subject_keys.c.subject_id == second)
            .values(wrapped_key=stolen)
        )
    fresh = Runtime(settings)
    try:
        with pytest.raises(KeyUnwrapFailed):
            readable(fresh, second)
        assert readable(fresh, first) == set(person(0))
    finally:
        fresh.close()


def test_destroying_one_key_shreds_only_that_subject(runtime: Runtime, settings: Settings) -> None:
    people = add_people(runtime, PEOPLE)
    ids = list(people)
    victim = ids[7]
    assert readable(runtime, victim) == set(people[victim])

    assert destroy(runtime, victim) is True

    with pytest.raises(SubjectKeyDestroyed) as caught:
        readable(runtime, victim)
    assert caught.value.code == "subject_key_destroyed"
    for subject_id in ids:
        if subject_id != victim:
            assert readable(runtime, subject_id) == set(people[subject_id])
    with runtime.store.read() as conn:
        remaining = conn.execute(select(subject_keys.c.subject_id)).scalars().all()
        # The ciphertext is still there; only the key that opens it is gone.
        left = conn.execute(select(identities).where(identities.c.subject_id == victim)).all()
    assert set(remaining) == set(ids) - {victim}
    assert len(left) == 2

    # A new process has no cache to help it.
    fresh = Runtime(settings)
    try:
        with pytest.raises(SubjectKeyDestroyed):
            readable(fresh, victim)
        with fresh.store.read() as conn, pytest.raises(SubjectKeyDestroyed):
            fresh.subject_keys.sealer(conn, victim)
        for subject_id in ids:
            if subject_id != victim:
                assert readable(fresh, subject_id) == set(people[subject_id])
    finally:
        fresh.close()


def test_destroy_is_idempotent(runtime: Runtime) -> None:
    (subject_id,) = add_people(runtime, 1)
    assert destroy(runtime, subject_id) is True
    assert destroy(runtime, subject_id) is False
    assert destroy(runtime, "sub_000000000000000000000000") is False
    with pytest.raises(SubjectKeyDestroyed):
        readable(runtime, subject_id)


def test_a_rolled_back_destroy_destroys_nothing(runtime: Runtime) -> None:
    (subject_id,) = add_people(runtime, 1)
    with pytest.raises(RuntimeError, match="destroyed=True"):
        destroy_then_fail(runtime, subject_id)
    assert readable(runtime, subject_id) == set(person(0))
