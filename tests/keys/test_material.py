"""keys/material.py: named secrets, random once, stored wrapped by the KEK, bound to their name."""

from __future__ import annotations

import secrets
import threading

import pytest
from sqlalchemy import select, update

from consentry.errors import KeyUnwrapFailed
from consentry.keys.material import named_secret
from consentry.keys.ring import KeyEncryptionKey
from consentry.runtime import Runtime
from consentry.settings import Settings
from consentry.storage.schema import key_material


def secret(rt: Runtime, name: str, kek: KeyEncryptionKey | None = None) -> bytes:
    with rt.store.write() as conn:
        return named_secret(conn, kek or rt.kek, name)


def stored(rt: Runtime, name: str) -> tuple[bytes, str]:
    with rt.store.read() as conn:
        row = conn.execute(select(key_material).where(key_material.c.name == name)).one()
    return bytes(row.wrapped_key), str(row.kek_id)


def test_a_secret_is_made_once_and_the_same_ever_after(settings: Settings) -> None:
    rt = Runtime(settings)
    try:
        first = secret(rt, "test_secret")
        assert len(first) == 32
        assert secret(rt, "test_secret") == first
        assert secret(rt, "other_secret") != first
    finally:
        rt.close()
    restarted = Runtime(settings)
    try:
        assert secret(restarted, "test_secret") == first
    finally:
        restarted.close()


def test_a_secret_is_stored_wrapped_by_the_kek_and_bound_to_its_name(runtime: Runtime) -> None:
    value = secret(runtime, "test_secret")
    wrapped, kek_id = stored(runtime, "test_secret")
    assert value not in wrapped
    assert kek_id == runtime.kek.kek_id
    # The associated data is stored with every wrapped secret: its spelling never changes.
    assert runtime.kek.open(wrapped, b"consentry:material:test_secret") == value
    with pytest.raises(KeyUnwrapFailed):
        runtime.kek.open(wrapped, b"consentry:material:other_secret")


def test_a_secret_moved_to_another_name_does_not_open(runtime: Runtime) -> None:
    secret(runtime, "test_secret")
    secret(runtime, "other_secret")
    wrapped, _ = stored(runtime, "test_secret")
    with runtime.store.write() as conn:
        conn.execute(
            update(key_material)
            .where(key_material.c.name == "other_secret")
            .values(wrapped_key=wrapped)
        )
    with pytest.raises(KeyUnwrapFailed):
        secret(runtime, "other_secret")


def test_another_master_key_is_named_not_guessed_at(runtime: Runtime) -> None:
    secret(runtime, "test_secret")
    other = KeyEncryptionKey.of(secrets.token_bytes(32))
    with pytest.raises(KeyUnwrapFailed) as caught:
        secret(runtime, "test_secret", other)
    assert "does not match this data directory" in caught.value.detail


def test_concurrent_first_uses_agree_on_one_secret(runtime: Runtime) -> None:
    threads = 6
    start = threading.Barrier(threads)
    got: list[bytes] = []
    lock = threading.Lock()

    def first_use() -> None:
        start.wait()
        value = secret(runtime, "raced_secret")
        with lock:
            got.append(value)

    workers = [threading.Thread(target=first_use) for _ in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    assert len(got) == threads
    assert len(set(got)) == 1
