"""The key-encryption key ring: the active KEK wraps, and every KEK still holding rows unwraps,
each row naming its KEK by id, so reads go on while a master rotation re-wraps them."""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence

from consentry.errors import KeyUnwrapFailed
from consentry.keys.pkcs11 import Pkcs11Keys
from consentry.keys.sources import EnvKeys, FileKeys, KeySource, KeyStore, LocalKey
from consentry.settings import Settings

# How often a process looks in its key store for a newer active key (a rotation started by
# another process): after this, it wraps new keys under the new one.
REFRESH_SECONDS = 2.0


def key_store(settings: Settings) -> KeyStore:
    """The key store the settings name: a PKCS#11 token when CONSENTRY_PKCS11_MODULE is set,
    else CONSENTRY_MASTER_KEY when set, else the development file in the data directory."""
    if settings.pkcs11_module:
        return Pkcs11Keys(
            settings.pkcs11_module,
            settings.pkcs11_token,
            settings.pkcs11_pin,
            settings.pkcs11_key_label,
            lock_dir=settings.data_dir,
        )
    if settings.master_key:
        return EnvKeys(settings.master_key)
    return FileKeys(settings.data_dir)


class _Fixed:
    """A store of one key, never rotated (tests, tools)."""

    name = "fixed"

    def __init__(self, key: bytes) -> None:
        self._key = LocalKey(key)

    def load(self) -> Sequence[KeySource]:
        return [self._key]

    def create(self, replacing: str | None = None) -> KeySource:
        raise KeyUnwrapFailed("a fixed key cannot be rotated")

    def retire(self, key_id: str) -> bool:
        return False

    def close(self) -> None:
        pass


class KeyEncryptionKey:
    """The root of every key: wraps every data key, named secret, signing key and stored
    secret under the active KEK, and opens each under the KEK whose id its row records."""

    def __init__(self, store: KeyStore, refresh_seconds: float = REFRESH_SECONDS) -> None:
        self.store = store
        self._refresh_seconds = refresh_seconds
        self._lock = threading.Lock()
        self._active: KeySource
        self._by_id: dict[str, KeySource] = {}
        self._checked = 0.0
        self.refresh()

    @classmethod
    def of(cls, key: bytes) -> KeyEncryptionKey:
        """A ring of the one in-memory key `key` (32 bytes)."""
        return cls(_Fixed(key))

    @property
    def kek_id(self) -> str:
        """The id of the active KEK, stored beside what it wraps."""
        self._maybe_refresh()
        return self._active.key_id

    @property
    def key_ids(self) -> list[str]:
        """Every KEK id the store holds, the active one first."""
        with self._lock:
            return [self._active.key_id] + [k for k in self._by_id if k != self._active.key_id]

    def seal(self, plaintext: bytes, aad: bytes) -> bytes:
        """Wrap under the active KEK (its id: `kek_id`)."""
        self._maybe_refresh()
        return self._active.wrap(plaintext, aad)

    def wrap(self, plaintext: bytes, aad: bytes) -> tuple[bytes, str]:
        """Wrap under the active KEK; the blob and that KEK's id, read together."""
        self._maybe_refresh()
        active = self._active
        return active.wrap(plaintext, aad), active.key_id

    def open(self, blob: bytes, aad: bytes, kek_id: str | None = None) -> bytes:
        """Unwrap under the KEK `kek_id` (default: the active one). KeyUnwrapFailed when that
        KEK is not in the store (the wrong CONSENTRY_MASTER_KEY) or the blob was altered."""
        return self.source(kek_id).unwrap(bytes(blob), aad)

    def source(self, kek_id: str | None) -> KeySource:
        """The KEK `kek_id`, looking in the store again once when it is not known yet."""
        if kek_id is None:
            return self._active
        found = self._by_id.get(kek_id)
        if found is None:
            self.refresh()
            found = self._by_id.get(kek_id)
        if found is None:
            raise KeyUnwrapFailed(
                f"kek_id {kek_id} is not in the {self.store.name} key store: the master key "
                "(CONSENTRY_MASTER_KEY, the key file or the PKCS#11 token) does not match "
                "this data directory"
            )
        return found

    def refresh(self) -> None:
        """Read the store's keys again (a rotation elsewhere may have added one)."""
        keys = list(self.store.load())
        if not keys:
            raise KeyUnwrapFailed(f"the {self.store.name} key store holds no key")
        with self._lock:
            self._active = keys[0]
            self._by_id = {key.key_id: key for key in keys}
            self._checked = time.monotonic()

    def close(self) -> None:
        self.store.close()

    def _maybe_refresh(self) -> None:
        if self.store.name in ("fixed", "env"):
            return
        if time.monotonic() - self._checked >= self._refresh_seconds:
            self.refresh()
