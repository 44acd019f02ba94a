"""Key sources: where key-encryption keys live (CONSENTRY_MASTER_KEY, the development file, a
PKCS#11 token), each behind one interface that wraps and unwraps keys without showing its own."""

from __future__ import annotations

import base64
import hashlib
import logging
import os
import re
import secrets
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol

from consentry.errors import InvalidSetting
from consentry.keys.envelope import Sealer

log = logging.getLogger(__name__)

MASTER_KEY_FILE = "master.key"


class KeySource(Protocol):
    """One key-encryption key. `wrap` and `unwrap` happen wherever the key lives (in memory, in
    a token, in a KMS); `key_id` (16 hex digits) is stored beside everything it wraps."""

    @property
    def key_id(self) -> str: ...

    def wrap(self, key: bytes, aad: bytes) -> bytes:
        """`key` encrypted and authenticated, bound to `aad`."""
        ...

    def unwrap(self, blob: bytes, aad: bytes) -> bytes:
        """What wrap() was given; KeyUnwrapFailed when the blob, its AAD or the key differ."""
        ...


class KeyStore(Protocol):
    """Where the key-encryption keys are kept: every version, the active one first."""

    name: str

    def load(self) -> Sequence[KeySource]:
        """Every key held, the active one (which wraps new keys) first."""
        ...

    def create(self, replacing: str | None = None) -> KeySource:
        """Make a new key the active one (a master rotation's first step); when `replacing`
        is given and the active key is already another (a rotation run at the same time made
        it), that key, not a new one."""
        ...

    def retire(self, key_id: str) -> bool:
        """Destroy the key `key_id` when this store may; False when only its operator can
        (an environment variable)."""
        ...

    def close(self) -> None:
        """Release what the store holds open (a token session)."""
        ...


class LocalKey:
    """A key held in this process's memory (CONSENTRY_MASTER_KEY or the development file):
    AES-256-GCM by the native core."""

    __slots__ = ("_sealer", "key_id")

    def __init__(self, key: bytes) -> None:
        self._sealer = Sealer(key)
        # Stored beside each wrapped key, so a wrong master key is named, not guessed at.
        self.key_id = hashlib.sha256(b"consentry-kek-id\x00" + key).hexdigest()[:16]

    def wrap(self, key: bytes, aad: bytes) -> bytes:
        return self._sealer.seal(key, aad)

    def unwrap(self, blob: bytes, aad: bytes) -> bytes:
        return self._sealer.open(blob, aad)


class EnvKeys:
    """CONSENTRY_MASTER_KEY: one key, or several separated by commas during a rotation (the
    new one first). Never written anywhere; only the operator adds or removes one."""

    name = "env"

    def __init__(self, value: str) -> None:
        self._value = value

    def load(self) -> Sequence[KeySource]:
        return [
            LocalKey(decode_key(part, "CONSENTRY_MASTER_KEY")) for part in self._value.split(",")
        ]

    def create(self, replacing: str | None = None) -> KeySource:
        raise InvalidSetting(
            "CONSENTRY_MASTER_KEY holds no new key: put a new key first, the current one after "
            "a comma (CONSENTRY_MASTER_KEY=new,current), in every process, then rotate"
        )

    def retire(self, key_id: str) -> bool:
        return False

    def close(self) -> None:
        pass


class FileKeys:
    """The development file `master.key` in the data directory (0600): one base64url key a
    line, the active one first; created with a warning when absent."""

    name = "file"

    def __init__(self, data_dir: Path) -> None:
        self.path = data_dir / MASTER_KEY_FILE

    def load(self) -> Sequence[KeySource]:
        if not self.path.exists():
            key = secrets.token_bytes(32)
            write_private_file(self.path, encode_key(key) + "\n")
            log.warning(
                "No CONSENTRY_MASTER_KEY set: generated a key-encryption key into %s. For "
                "development only: in production, keep the master key outside the data "
                "directory.",
                self.path,
            )
        return [LocalKey(key) for key in self._keys()]

    def create(self, replacing: str | None = None) -> KeySource:
        key = secrets.token_bytes(32)
        self._write([key, *self._keys()])
        return LocalKey(key)

    def retire(self, key_id: str) -> bool:
        self._write([key for key in self._keys() if LocalKey(key).key_id != key_id])
        return True

    def close(self) -> None:
        pass

    def _keys(self) -> list[bytes]:
        lines = self.path.read_text().split()
        return [decode_key(line, str(self.path)) for line in lines]

    def _write(self, keys: list[bytes]) -> None:
        """Replace the file atomically (a rotation killed mid-write leaves the old or the new
        file, never half of one)."""
        staged = self.path.with_name(self.path.name + ".new")
        staged.unlink(missing_ok=True)
        write_private_file(staged, "".join(encode_key(key) + "\n" for key in keys))
        os.replace(staged, self.path)


def decode_key(value: str, where: str) -> bytes:
    """32 bytes from base64url (43 characters, padding optional); InvalidSetting otherwise."""
    if not re.fullmatch(r"[A-Za-z0-9_-]{43}=?", value):
        raise InvalidSetting(f"{where} must hold 32 bytes (base64url, 43 characters)")
    key = base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))
    if len(key) != 32:
        raise InvalidSetting(f"{where} must hold 32 bytes (base64url, 43 characters)")
    return key


def encode_key(key: bytes) -> str:
    return base64.urlsafe_b64encode(key).decode().rstrip("=")


def write_private_file(path: Path, content: str) -> None:
    """Create `path` with mode 0600 atomically; never widen an existing file's mode."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(content)
