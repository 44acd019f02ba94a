"""The blind index: a keyed HMAC of an identity, the only form in which identities are looked up."""

from __future__ import annotations

import hashlib
import hmac

from consentry.subjects.models import Identity


class BlindIndex:
    """HMAC-SHA256 under a secret from `keys/`; the inner state is prepared once (hot path)."""

    __slots__ = ("_base",)

    def __init__(self, key: bytes) -> None:
        if len(key) < 32:
            raise ValueError("the blind-index key must be at least 32 bytes")
        self._base = hmac.new(key, digestmod=hashlib.sha256)

    def of(self, identity: Identity) -> bytes:
        """32 bytes that identify `identity` to whoever holds the key, and to nobody else."""
        mac = self._base.copy()
        # The type is part of the input so equal strings of two types never collide.
        mac.update(identity.type.value.encode() + b"\x00" + identity.value.encode())
        return mac.digest()
