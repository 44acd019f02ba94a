"""keys/pkcs11.py: a key-encryption key that never leaves a SoftHSM2 token."""

from __future__ import annotations

import multiprocessing
from multiprocessing.synchronize import Barrier
from pathlib import Path
from typing import Any

import pytest

from consentry.errors import InvalidSetting, KeyUnwrapFailed
from consentry.keys import pkcs11 as pkcs11_source
from consentry.keys.pkcs11 import Pkcs11Keys
from consentry.keys.ring import KeyEncryptionKey
from consentry.runtime import Runtime
from consentry.settings import Settings
from tests.softhsm import Token

AAD = b"consentry:test"


def store(token: Token, label: str | None = None) -> Pkcs11Keys:
    return Pkcs11Keys(token.module, token.label, token.pin, label or token.key_label())


def test_the_first_start_makes_one_key_that_cannot_leave_the_token(softhsm: Token) -> None:
    import pkcs11  # noqa: PLC0415 - the tests' own look into the token

    keys = store(softhsm)
    try:
        (first,) = keys.load()
        (again,) = keys.load()
        assert again.key_id == first.key_id
        handle = first._handle  # type: ignore[attr-defined]
        assert handle[pkcs11.Attribute.SENSITIVE] is True
        assert handle[pkcs11.Attribute.EXTRACTABLE] is False
        with pytest.raises(pkcs11.PKCS11Error):
            handle[pkcs11.Attribute.VALUE]
    finally:
        keys.close()


def test_wrap_and_unwrap_happen_in_the_token(softhsm: Token) -> None:
    keys = store(softhsm)
    try:
        ring = KeyEncryptionKey(keys)
        data_key = bytes(range(32))
        blob, kek_id = ring.wrap(data_key, AAD)
        assert blob[:1] == b"\x02"
        assert data_key not in blob
        assert ring.open(blob, AAD, kek_id) == data_key
        with pytest.raises(KeyUnwrapFailed):
            ring.open(blob, b"consentry:elsewhere", kek_id)
        altered = blob[:-1] + bytes([blob[-1] ^ 1])
        with pytest.raises(KeyUnwrapFailed):
            ring.open(altered, AAD, kek_id)
    finally:
        keys.close()


def test_a_new_version_becomes_active_and_the_old_one_still_unwraps(softhsm: Token) -> None:
    keys = store(softhsm)
    try:
        ring = KeyEncryptionKey(keys)
        blob, old = ring.wrap(b"k" * 32, AAD)
        keys.create()
        ring.refresh()
        assert ring.kek_id != old
        assert ring.key_ids == [ring.kek_id, old]
        assert ring.open(blob, AAD, old) == b"k" * 32
        assert keys.retire(old)
        ring.refresh()
        assert ring.key_ids == [ring.kek_id]
        with pytest.raises(KeyUnwrapFailed):
            ring.open(blob, AAD, old)
    finally:
        keys.close()


def test_an_unknown_token_is_an_invalid_setting_that_shows_no_pin(softhsm: Token) -> None:
    with pytest.raises(InvalidSetting) as caught:
        Pkcs11Keys(softhsm.module, "no-such-token", softhsm.pin, "kek")
    assert "no-such-token" in caught.value.detail
    assert softhsm.pin not in caught.value.detail


def test_no_key_encryption_key_is_written_to_the_data_directory(
    softhsm: Token, sqlite_settings: Settings
) -> None:
    import dataclasses  # noqa: PLC0415

    settings = dataclasses.replace(
        sqlite_settings,
        master_key="",
        pkcs11_module=softhsm.module,
        pkcs11_token=softhsm.label,
        pkcs11_pin=softhsm.pin,
        pkcs11_key_label=softhsm.key_label(),
    )
    runtime = Runtime(settings)
    try:
        assert runtime.kek.store.name == "pkcs11"
    finally:
        runtime.close()
    assert not (settings.data_dir / "master.key").exists()


def test_the_pin_is_redacted_where_settings_are_shown() -> None:
    settings = Settings(pkcs11_module="/x.so", pkcs11_token="t", pkcs11_pin="135791")
    shown = {name: value for name, value, _ in settings.described()}
    assert shown["CONSENTRY_PKCS11_PIN"] != "135791"
    with pytest.raises(InvalidSetting):
        Settings.from_env({"CONSENTRY_PKCS11_MODULE": "/x.so"})


def _first_start(token: Token, label: str, barrier: Barrier, blobs: Any, opened: Any) -> None:
    """One process starting on the token: load the KEK, wrap, then open every process's blob."""
    import os  # noqa: PLC0415

    keys = store(token, label)
    try:
        barrier.wait()
        ring = KeyEncryptionKey(keys)
        blob, kek_id = ring.wrap(os.urandom(32), AAD)
        blobs[os.getpid()] = (blob, kek_id)
        barrier.wait()
        for blob, kek_id in dict(blobs).values():
            ring.open(blob, AAD, kek_id)
        opened[os.getpid()] = True
    finally:
        keys.close()


def test_processes_starting_together_on_an_empty_token_make_one_key(softhsm: Token) -> None:
    import pkcs11  # noqa: PLC0415 - the tests' own look into the token

    label = softhsm.key_label()
    context = multiprocessing.get_context("spawn")
    count = 4
    with context.Manager() as manager:
        blobs, opened = manager.dict(), manager.dict()
        barrier = context.Barrier(count)
        procs = [
            context.Process(target=_first_start, args=(softhsm, label, barrier, blobs, opened))
            for _ in range(count)
        ]
        for proc in procs:
            proc.start()
        for proc in procs:
            proc.join(60)
        assert [proc.exitcode for proc in procs] == [0] * count
        assert len(opened) == count
        assert len({kek_id for _, kek_id in blobs.values()}) == 1
    keys = store(softhsm, label)
    try:
        keys.load()
        session = keys._session
        found = list(session.get_objects({pkcs11.Attribute.LABEL: label}))
        assert len(found) == 1
    finally:
        keys.close()


def _start_and_stop(token: Token, label: str) -> str:
    """A process starting on the token and stopping: the active key's id, or what failed."""
    try:
        keys = store(token, label)
    except InvalidSetting as exc:
        return str(exc)
    try:
        return keys.load()[0].key_id
    finally:
        keys.close()


def test_many_processes_opening_the_token_at_once_all_find_it(softhsm: Token) -> None:
    # A login rewrites a file-backed token's flags; a process opening the token meanwhile
    # would not find it (NoSuchToken) without the token's lock file.
    label = softhsm.key_label()
    with multiprocessing.get_context("spawn").Pool(8) as pool:
        found = pool.starmap(_start_and_stop, [(softhsm, label)] * 48, chunksize=1)
    assert len(set(found)) == 1, sorted(set(found))
    keys = store(softhsm, label)
    try:
        assert found[0] == keys.load()[0].key_id
    finally:
        keys.close()


def test_a_lock_file_held_too_long_is_an_error_naming_it(tmp_path: Path) -> None:
    """A process stuck in the token (a hung login) holding its lock file stops the others
    with a clear error after a while, not for ever."""
    path = tmp_path / "token.lock"
    with (
        pkcs11_source._token_lock(path),
        pytest.raises(InvalidSetting, match="lock file"),
        pkcs11_source._token_lock(path, wait=0.2),
    ):
        pass
    with pkcs11_source._token_lock(path, wait=0.2):
        pass


def test_two_keys_of_one_id_in_the_token_are_refused(softhsm: Token) -> None:
    import pkcs11  # noqa: PLC0415

    keys = store(softhsm)
    try:
        (made,) = keys.load()
        with keys._lock:
            keys._session.generate_key(
                pkcs11.KeyType.AES,
                256,
                label=keys._label,
                id=made.object_id,  # type: ignore[attr-defined]
                store=True,
                template={pkcs11.Attribute.SENSITIVE: True, pkcs11.Attribute.EXTRACTABLE: False},
            )
        with pytest.raises(InvalidSetting) as caught:
            keys.load()
        assert "ambiguous" in caught.value.detail
    finally:
        keys.close()


def test_two_rotations_at_once_make_one_new_key(softhsm: Token) -> None:
    first = store(softhsm)
    second = store(softhsm, first._label)
    try:
        (old,) = first.load()
        made = first.create(replacing=old.key_id)
        again = second.create(replacing=old.key_id)
        assert again.key_id == made.key_id
        assert [k.key_id for k in second.load()] == [made.key_id, old.key_id]
    finally:
        first.close()
        second.close()
