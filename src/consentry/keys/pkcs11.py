"""The PKCS#11 key source: key-encryption keys that never leave a token (an HSM, SoftHSM2);
keys are wrapped and unwrapped by AES-256-GCM inside it (C_Encrypt, C_Decrypt)."""

from __future__ import annotations

import fcntl
import hashlib
import os
import secrets
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from consentry.errors import InvalidSetting, KeyUnwrapFailed
from consentry.keys.sources import KeySource

# Stored layout of a blob wrapped in a token: 0x02 || IV (12) || ciphertext+tag (16).
_VERSION = b"\x02"
_IV = 12
# CKA_ID of a key made here: its version, a dot, 16 random bytes in hex, so two keys made at
# once never share an id (and a kek_id); a bare version (b"1") is a key made before.
_RANDOM_ID = 16


class TokenKey:
    """One AES-256 key object in the token, found by its label and CKA_ID."""

    __slots__ = ("_handle", "_lock", "_module", "key_id", "object_id", "version")

    def __init__(self, module: Any, handle: Any, lock: threading.Lock, name: bytes) -> None:
        self._module = module
        self._handle = handle
        self._lock = lock
        self.object_id: bytes = handle[module.Attribute.ID]
        self.key_id = hashlib.sha256(
            b"consentry-kek-id-pkcs11\x00" + name + b"\x00" + self.object_id
        ).hexdigest()[:16]
        number = self.object_id.split(b".", 1)[0]
        self.version = int(number) if number.isdigit() else None

    def wrap(self, key: bytes, aad: bytes) -> bytes:
        iv = secrets.token_bytes(_IV)
        with self._lock:
            sealed = self._handle.encrypt(key, **self._gcm(iv, aad))
        return _VERSION + iv + bytes(sealed)

    def unwrap(self, blob: bytes, aad: bytes) -> bytes:
        if len(blob) < 1 + _IV + 16 or blob[:1] != _VERSION:
            raise KeyUnwrapFailed("not a blob wrapped in a PKCS#11 token")
        iv = blob[1 : 1 + _IV]
        try:
            with self._lock:
                opened = self._handle.decrypt(blob[1 + _IV :], **self._gcm(iv, aad))
        except self._module.PKCS11Error:
            raise KeyUnwrapFailed("the token refused to unwrap the key") from None
        return bytes(opened)

    def _gcm(self, iv: bytes, aad: bytes) -> dict[str, Any]:
        """CKM_AES_GCM with this IV, the AAD and a 128-bit tag."""
        params = self._module.mechanisms.GCMParams(iv, aad, 128)
        return {"mechanism": self._module.Mechanism.AES_GCM, "mechanism_param": params}


class Pkcs11Keys:
    """The token's AES keys labelled CONSENTRY_PKCS11_KEY_LABEL, versioned by CKA_ID (1, 2,
    ...; the highest is active); on first start one is made in the token (sensitive, not
    extractable). The token is opened, and keys are made and destroyed, under a lock file (in
    `lock_dir`, by default the temporary directory) named after the module and token: a
    file-backed token (SoftHSM2) is rewritten by a login or a new key, and a process reading
    it at that moment does not find it; and processes starting together make one key."""

    name = "pkcs11"

    def __init__(
        self, module_path: str, token: str, pin: str, label: str, lock_dir: Path | None = None
    ) -> None:
        try:
            import pkcs11  # noqa: PLC0415 - optional at import time: only this source needs it
        except ImportError:
            raise InvalidSetting("CONSENTRY_PKCS11_MODULE needs python-pkcs11 installed") from None
        self._module = pkcs11
        self._label = label
        self._name = token.encode() + b"\x00" + label.encode()
        digest = hashlib.sha256(f"{module_path}\x00{token}".encode()).hexdigest()[:16]
        where = lock_dir if lock_dir is not None else Path(tempfile.gettempdir())
        self._lock_path = where / f"consentry-pkcs11-{digest}.lock"
        with _token_lock(self._lock_path):
            self._opened = _open_session(pkcs11, module_path, token, pin)
        self._session = self._opened.session
        self._lock = self._opened.lock
        self._closed = False

    def load(self) -> Sequence[KeySource]:
        keys = self._keys()
        if not keys:
            with _token_lock(self._lock_path):
                keys = self._keys() or [self._generate(1)]
        return keys

    def create(self, replacing: str | None = None) -> KeySource:
        with _token_lock(self._lock_path):
            known = self._keys()
            if replacing is not None and known and known[0].key_id != replacing:
                return known[0]  # another run made a new key meanwhile: that one is active
            return self._generate(max((k.version or 0 for k in known), default=0) + 1)

    def retire(self, key_id: str) -> bool:
        with _token_lock(self._lock_path):
            for key in self._keys():
                if key.key_id == key_id:
                    with self._lock:
                        key._handle.destroy()
        return True

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            _release(self._opened)

    def _generate(self, version: int) -> TokenKey:
        attribute = self._module.Attribute
        object_id = f"{version}.{secrets.token_hex(_RANDOM_ID)}".encode()
        with self._lock:
            handle = self._session.generate_key(
                self._module.KeyType.AES,
                256,
                label=self._label,
                id=object_id,
                store=True,
                template={attribute.SENSITIVE: True, attribute.EXTRACTABLE: False},
            )
        return TokenKey(self._module, handle, self._lock, self._name)

    def _keys(self) -> list[TokenKey]:
        """The labelled keys, newest (highest version) first; InvalidSetting when two share a
        version (which is active would be a guess) or an id (blobs would name either)."""
        attribute = self._module.Attribute
        with self._lock:
            found = list(
                self._session.get_objects(
                    {
                        attribute.LABEL: self._label,
                        attribute.CLASS: self._module.ObjectClass.SECRET_KEY,
                    }
                )
            )
        keys = [TokenKey(self._module, handle, self._lock, self._name) for handle in found]
        usable = [key for key in keys if key.version is not None]
        for seen in ({k.key_id for k in usable}, {k.version for k in usable}):
            if len(seen) != len(usable):
                raise InvalidSetting(
                    f"the PKCS#11 token holds {len(usable)} keys labelled {self._label!r} of "
                    "which two share a version or an id: which one wraps is ambiguous; keep "
                    "the one the database's rows name (kek_id) and remove the others"
                )
        return sorted(usable, key=lambda key: key.version or 0, reverse=True)


# How long a process waits for the token's lock file before it gives up with InvalidSetting
# (another process stuck in the module, a hung login, holds it).
LOCK_WAIT_SECONDS = 60.0


@contextmanager
def _token_lock(path: Path, wait: float = LOCK_WAIT_SECONDS) -> Iterator[None]:
    """Held while the token is opened or written: one process, one thread at a time."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)  # flock: per open file, so per thread too
    try:
        deadline = time.monotonic() + wait
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise InvalidSetting(
                        f"the PKCS#11 token's lock file {path} stayed held for {wait:g} s: "
                        "another process is stuck in the token"
                    ) from None
                time.sleep(0.05)
        yield
    finally:
        os.close(fd)


class _Opened:
    """A logged-in session shared by every key store of one token in this process: PKCS#11
    logs in per application, and closing one session's login would close all of them."""

    def __init__(self, key: tuple[str, str], session: Any) -> None:
        self.key = key
        self.session = session
        self.lock = threading.Lock()
        self.users = 0


_SESSIONS: dict[tuple[str, str], _Opened] = {}
_SESSIONS_LOCK = threading.Lock()


def _open_session(module: Any, module_path: str, token: str, pin: str) -> _Opened:
    key = (module_path, token)
    with _SESSIONS_LOCK:
        opened = _SESSIONS.get(key)
        if opened is None:
            try:
                found = module.lib(module_path).get_token(token_label=token)
                opened = _Opened(key, found.open(user_pin=pin, rw=True))
            except (RuntimeError, OSError) as exc:
                raise InvalidSetting(
                    f"CONSENTRY_PKCS11_MODULE/_TOKEN/_PIN: cannot open token {token!r} "
                    f"({type(exc).__name__})"
                ) from None
            _SESSIONS[key] = opened
        opened.users += 1
        return opened


def _release(opened: _Opened) -> None:
    with _SESSIONS_LOCK:
        opened.users -= 1
        if opened.users == 0:
            _SESSIONS.pop(opened.key, None)
            with opened.lock:
                opened.session.close()
