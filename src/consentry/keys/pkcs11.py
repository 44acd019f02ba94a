"""The PKCS#11 key source: key-encryption keys that never leave a token (an HSM, SoftHSM2);
keys are wrapped and unwrapped by AES-256-GCM inside it (C_Encrypt, C_Decrypt)."""

from __future__ import annotations

import hashlib
import secrets
import threading
from collections.abc import Sequence
from typing import Any

from consentry.errors import InvalidSetting, KeyUnwrapFailed
from consentry.keys.sources import KeySource

# Stored layout of a blob wrapped in a token: 0x02 || IV (12) || ciphertext+tag (16).
_VERSION = b"\x02"
_IV = 12


class TokenKey:
    """One AES-256 key object in the token, found by its label and CKA_ID."""

    __slots__ = ("_handle", "_lock", "_module", "key_id", "object_id")

    def __init__(self, module: Any, handle: Any, lock: threading.Lock, name: bytes) -> None:
        self._module = module
        self._handle = handle
        self._lock = lock
        self.object_id: bytes = handle[module.Attribute.ID]
        self.key_id = hashlib.sha256(
            b"consentry-kek-id-pkcs11\x00" + name + b"\x00" + self.object_id
        ).hexdigest()[:16]

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
    extractable)."""

    name = "pkcs11"

    def __init__(self, module_path: str, token: str, pin: str, label: str) -> None:
        try:
            import pkcs11  # noqa: PLC0415 - optional at import time: only this source needs it
        except ImportError:
            raise InvalidSetting("CONSENTRY_PKCS11_MODULE needs python-pkcs11 installed") from None
        self._module = pkcs11
        self._label = label
        self._name = token.encode() + b"\x00" + label.encode()
        self._opened = _open_session(pkcs11, module_path, token, pin)
        self._session = self._opened.session
        self._lock = self._opened.lock
        self._closed = False

    def load(self) -> Sequence[KeySource]:
        keys = self._keys()
        if not keys:
            return [self.create()]
        return keys

    def create(self) -> KeySource:
        known = self._keys()
        version = max((int(k.object_id) for k in known), default=0) + 1
        attribute = self._module.Attribute
        with self._lock:
            handle = self._session.generate_key(
                self._module.KeyType.AES,
                256,
                label=self._label,
                id=str(version).encode(),
                store=True,
                template={attribute.SENSITIVE: True, attribute.EXTRACTABLE: False},
            )
        return TokenKey(self._module, handle, self._lock, self._name)

    def retire(self, key_id: str) -> bool:
        for key in self._keys():
            if key.key_id == key_id:
                with self._lock:
                    key._handle.destroy()
        return True

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            _release(self._opened)

    def _keys(self) -> list[TokenKey]:
        """The labelled keys, newest (highest CKA_ID) first."""
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
        usable = [key for key in keys if key.object_id.isdigit()]
        return sorted(usable, key=lambda key: int(key.object_id), reverse=True)


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
