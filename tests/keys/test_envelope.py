"""keys/envelope.py: where the key-encryption key comes from, and what AES-GCM sealing refuses."""

from __future__ import annotations

import base64
import dataclasses
import logging
import os
import secrets
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from consentry.errors import InvalidSetting, KeyUnwrapFailed
from consentry.keys.envelope import Sealer, nonces
from consentry.keys.ring import KeyEncryptionKey
from consentry.keys.sources import MASTER_KEY_FILE, FileKeys
from consentry.runtime import Runtime
from consentry.settings import Settings
from consentry.subjects.models import Identity, IdentityType
from consentry.subjects.refs import subject_ref
from tests.conftest import ADMIN_KEY, MASTER_KEY

ENVELOPE_LOGGER = "consentry.keys.sources"


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def raw_key(encoded: str) -> bytes:
    return base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4))


def is_kek_for(kek: KeyEncryptionKey, key: bytes) -> bool:
    """True when `kek` is AES-GCM under exactly `key`: it opens what that key sealed."""
    blob = Sealer(key).seal(b"probe", b"aad")
    try:
        return kek.open(blob, b"aad") == b"probe"
    except KeyUnwrapFailed:
        return False


@pytest.fixture
def open_umask() -> Iterator[None]:
    """A umask that narrows nothing, so any 0600/0700 seen was asked for explicitly."""
    previous = os.umask(0)
    try:
        yield
    finally:
        os.umask(previous)


def add_person(runtime: Runtime, email: str) -> str:
    with runtime.store.write() as conn:
        ref = subject_ref(None, [("email", email)])
        return runtime.subjects.resolve(conn, ref, actor="test").subject.subject_id


def read_identities(runtime: Runtime, subject_id: str) -> list[Identity]:
    with runtime.store.read() as conn:
        return runtime.subjects.identities(conn, subject_id)


# --- where the master key comes from -------------------------------------------------------


def test_master_key_from_the_environment(tmp_path: Path) -> None:
    settings = Settings.from_env(
        {"CONSENTRY_MASTER_KEY": MASTER_KEY, "CONSENTRY_DATA_DIR": str(tmp_path / "data")}
    )
    runtime = Runtime(settings)
    try:
        assert is_kek_for(runtime.kek, raw_key(MASTER_KEY))
        # A key given by the operator is never copied into the data directory.
        assert not (tmp_path / "data" / MASTER_KEY_FILE).exists()
    finally:
        runtime.close()


def test_absent_master_key_is_generated_0600_with_a_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, open_umask: None
) -> None:
    data_dir = tmp_path / "data"
    settings = Settings(data_dir=data_dir, admin_key=ADMIN_KEY)
    with caplog.at_level(logging.WARNING, logger=ENVELOPE_LOGGER):
        runtime = Runtime(settings)
    try:
        path = data_dir / MASTER_KEY_FILE
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        content = path.read_text()
        assert content.endswith("\n")
        key = raw_key(content.strip())
        assert len(key) == 32
        assert b64url(key) == content.strip()
        assert is_kek_for(runtime.kek, key)
        warnings = [
            r for r in caplog.records if r.name == ENVELOPE_LOGGER and r.levelno == logging.WARNING
        ]
        assert len(warnings) == 1
        message = warnings[0].getMessage()
        assert "CONSENTRY_MASTER_KEY" in message
        assert str(path) in message
        # The key itself never reaches a log.
        assert content.strip() not in caplog.text
    finally:
        runtime.close()


def test_generated_master_key_is_reused_on_the_next_start(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    settings = Settings(data_dir=tmp_path / "data", admin_key=ADMIN_KEY)
    first = Runtime(settings)
    try:
        subject_id = add_person(first, "reuse@example.com")
        kek_id = first.kek.kek_id
    finally:
        first.close()
    path = settings.data_dir / MASTER_KEY_FILE
    content, mode = path.read_text(), path.stat().st_mode

    caplog.clear()
    with caplog.at_level(logging.WARNING, logger=ENVELOPE_LOGGER):
        second = Runtime(settings)
    try:
        assert second.kek.kek_id == kek_id
        assert read_identities(second, subject_id) == [
            Identity(IdentityType.EMAIL, "reuse@example.com")
        ]
        assert [r for r in caplog.records if r.name == ENVELOPE_LOGGER] == []
        assert path.read_text() == content
        assert path.stat().st_mode == mode
    finally:
        second.close()


def test_generated_master_keys_differ_between_installs(tmp_path: Path) -> None:
    keys = []
    for name in ("one", "two"):
        KeyEncryptionKey(FileKeys(tmp_path / name))
        keys.append((tmp_path / name / MASTER_KEY_FILE).read_text())
    assert keys[0] != keys[1]


# --- refused master keys --------------------------------------------------------------------


@pytest.mark.parametrize(
    "value",
    [
        pytest.param("not base64 at all!", id="not-base64"),
        pytest.param("abcde", id="impossible-length"),
        pytest.param(b64url(secrets.token_bytes(16)), id="16-bytes"),
        pytest.param(b64url(secrets.token_bytes(31)), id="31-bytes"),
        pytest.param(b64url(secrets.token_bytes(33)), id="33-bytes"),
        pytest.param(b64url(secrets.token_bytes(64)), id="64-bytes"),
        pytest.param(MASTER_KEY + "\n", id="trailing-newline"),
        pytest.param(MASTER_KEY[:10] + "***" + MASTER_KEY[10:], id="stray-characters"),
        pytest.param(MASTER_KEY[:10] + " " + MASTER_KEY[11:], id="inner-space"),
    ],
)
def test_malformed_master_key_is_an_invalid_setting(tmp_path: Path, value: str) -> None:
    settings = Settings(data_dir=tmp_path / "data", master_key=value, admin_key=ADMIN_KEY)
    with pytest.raises(InvalidSetting) as caught:
        Runtime(settings)
    assert caught.value.code == "invalid_setting"
    assert "CONSENTRY_MASTER_KEY" in caught.value.detail


def test_malformed_master_key_file_is_an_invalid_setting(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    path = data_dir / MASTER_KEY_FILE
    path.write_text(b64url(secrets.token_bytes(24)) + "\n")
    with pytest.raises(InvalidSetting) as caught:
        Runtime(Settings(data_dir=data_dir, admin_key=ADMIN_KEY))
    assert str(path) in caught.value.detail


# --- a master key that does not belong to the data --------------------------------------------


def test_a_different_master_key_fails_to_start_with_key_unwrap_failed(settings: Settings) -> None:
    first = Runtime(settings)
    try:
        subject_id = add_person(first, "owner@example.com")
    finally:
        first.close()

    # Another key: another CONSENTRY_MASTER_KEY, or another key (label) in the token.
    other = dataclasses.replace(
        settings,
        master_key=b64url(secrets.token_bytes(32)),
        pkcs11_key_label=settings.pkcs11_key_label + "-other",
    )
    with pytest.raises(KeyUnwrapFailed) as caught:
        Runtime(other)
    assert caught.value.code == "key_unwrap_failed"
    assert "CONSENTRY_MASTER_KEY" in caught.value.detail

    # The refused start changed nothing: the right key still opens everything.
    again = Runtime(settings)
    try:
        assert read_identities(again, subject_id) == [
            Identity(IdentityType.EMAIL, "owner@example.com")
        ]
    finally:
        again.close()


def test_a_generated_key_then_a_different_env_key_is_refused(sqlite_settings: Settings) -> None:
    generated = dataclasses.replace(sqlite_settings, master_key="")
    Runtime(generated).close()
    with pytest.raises(KeyUnwrapFailed):
        Runtime(sqlite_settings)


# --- sealing ----------------------------------------------------------------------------------

KEY = bytes(range(32))
AAD = b"consentry:identity:sub_0123:email"


def test_sealed_values_open_with_the_same_key_and_aad() -> None:
    sealer = Sealer(KEY)
    blob = sealer.seal(b"ana@example.com", AAD)
    assert b"ana@example.com" not in blob
    assert sealer.open(blob, AAD) == b"ana@example.com"
    assert Sealer(KEY).open(blob, AAD) == b"ana@example.com"
    # A fresh nonce each time: equal values do not give equal blobs.
    assert sealer.seal(b"ana@example.com", AAD) != blob


def test_nonces_drawn_for_a_batch_are_twelve_distinct_random_bytes() -> None:
    drawn = nonces(1000)
    assert len(drawn) == 1000
    assert {len(n) for n in drawn} == {12}
    assert len(set(drawn)) == 1000
    assert nonces(0) == []
    sealer = Sealer(KEY)
    blob = sealer.seal(b"ana@example.com", AAD, drawn[7])
    assert blob[1:13] == drawn[7]
    assert sealer.open(blob, AAD) == b"ana@example.com"
    with pytest.raises(ValueError, match="12 bytes"):
        sealer.seal(b"ana@example.com", AAD, drawn[7][:8])


def test_every_changed_byte_is_refused() -> None:
    sealer = Sealer(KEY)
    blob = sealer.seal(b"+447700900123", AAD)
    for position in range(len(blob)):
        changed = bytearray(blob)
        changed[position] ^= 0x01
        with pytest.raises(KeyUnwrapFailed):
            sealer.open(bytes(changed), AAD)


@pytest.mark.parametrize(
    "aad",
    [b"", b"consentry:identity:sub_0124:email", b"consentry:identity:sub_0123:phone", AAD + b"\0"],
)
def test_a_different_aad_is_refused(aad: bytes) -> None:
    sealer = Sealer(KEY)
    blob = sealer.seal(b"ana@example.com", AAD)
    with pytest.raises(KeyUnwrapFailed):
        sealer.open(blob, aad)


@pytest.mark.parametrize("cut", [0, 1, 13, 28, -1])
def test_truncated_blobs_are_refused(cut: int) -> None:
    sealer = Sealer(KEY)
    blob = sealer.seal(b"ana@example.com", AAD)
    with pytest.raises(KeyUnwrapFailed):
        sealer.open(blob[:cut], AAD)


def test_another_key_is_refused() -> None:
    blob = Sealer(KEY).seal(b"ana@example.com", AAD)
    with pytest.raises(KeyUnwrapFailed):
        Sealer(bytes(32)).open(blob, AAD)
    with pytest.raises(KeyUnwrapFailed):
        KeyEncryptionKey.of(secrets.token_bytes(32)).open(blob, AAD)


@pytest.mark.parametrize("length", [0, 16, 24, 31, 33])
def test_sealer_needs_a_256_bit_key(length: int) -> None:
    with pytest.raises(ValueError, match="32-byte"):
        Sealer(bytes(length))
