"""Per-subject data keys: one AES-256 key per customer, wrapped by the KEK; destroying it
makes everything sealed under it unreadable (crypto-shredding)."""

from __future__ import annotations

import hashlib
import hmac
import secrets
import threading
from collections import OrderedDict
from collections.abc import Collection

from sqlalchemy import Connection

from consentry import clock
from consentry.errors import SubjectKeyDestroyed
from consentry.keys.envelope import Sealer
from consentry.keys.ring import KeyEncryptionKey
from consentry.storage import keys as sql

_CACHE_SIZE = 50_000
# Subject ids per key query (well under the bound-parameter limits of both back-ends).
_FETCH = 900


class SubjectKeys:
    """Creates, opens and destroys subject data keys, keeping recently used ones unwrapped."""

    def __init__(self, kek: KeyEncryptionKey) -> None:
        self._kek = kek
        self._cache: OrderedDict[str, Sealer] = OrderedDict()
        self._lock = threading.Lock()

    def create(self, conn: Connection, subject_id: str) -> Sealer:
        """Generate and store a new key for a new subject."""
        key = secrets.token_bytes(32)
        wrapped, kek_id = self._kek.wrap(key, subject_key_aad(subject_id))
        sql.insert_subject_key(conn, subject_id, wrapped, kek_id, clock.now())
        sealer = Sealer(key)
        self._remember(subject_id, sealer)
        return sealer

    def sealer(self, conn: Connection, subject_id: str) -> Sealer:
        """The subject's key; raise SubjectKeyDestroyed when it no longer exists."""
        held = self.cached(subject_id)
        if held is not None:
            return held
        row = sql.get_subject_key(conn, subject_id)
        if row is None:
            raise SubjectKeyDestroyed(f"the data key of subject {subject_id} has been destroyed")
        sealer = Sealer(self._kek.open(row.wrapped_key, subject_key_aad(subject_id), row.kek_id))
        self._remember(subject_id, sealer)
        return sealer

    def open_many(self, conn: Connection, subject_ids: Collection[str]) -> dict[str, Sealer]:
        """The keys of those of `subject_ids` whose key exists in `conn`'s snapshot, each
        unwrapped once, fetched in batches. Not taken from (nor put in) the cache, which may
        hold a key another process has since destroyed: a read decides from its snapshot."""
        wanted = sorted(subject_ids)
        opened: dict[str, Sealer] = {}
        for start in range(0, len(wanted), _FETCH):
            for row in sql.get_subject_keys(conn, wanted[start : start + _FETCH]):
                key = self._kek.open(
                    bytes(row.wrapped_key), subject_key_aad(row.subject_id), row.kek_id
                )
                opened[row.subject_id] = Sealer(key)
        return opened

    def cached(self, subject_id: str) -> Sealer | None:
        """The subject's key when it is held unwrapped, without touching storage."""
        with self._lock:
            sealer = self._cache.get(subject_id)
            if sealer is not None:
                self._cache.move_to_end(subject_id)
            return sealer

    def keyed_hash(self, conn: Connection, subject_id: str, data: bytes) -> str:
        """HMAC-SHA256 of `data` under a key derived from the subject's data key: comparable
        while the key lives, meaningless once it is destroyed (audit of rectifications)."""
        row = sql.get_subject_key(conn, subject_id)
        if row is None:
            raise SubjectKeyDestroyed(f"the data key of subject {subject_id} has been destroyed")
        key = self._kek.open(row.wrapped_key, subject_key_aad(subject_id), row.kek_id)
        derived = hmac.digest(key, b"consentry:keyed-hash", hashlib.sha256)
        return hmac.new(derived, data, hashlib.sha256).hexdigest()

    def destroy(self, conn: Connection, subject_id: str) -> bool:
        """Delete the subject's key for good; True when there was one to delete."""
        with self._lock:
            self._cache.pop(subject_id, None)
        return sql.delete_subject_key(conn, subject_id)

    def forget(self, subject_id: str) -> None:
        """Drop the unwrapped key from memory (after a rollback, or another process's erasure)."""
        with self._lock:
            self._cache.pop(subject_id, None)

    def _remember(self, subject_id: str, sealer: Sealer) -> None:
        with self._lock:
            self._cache[subject_id] = sealer
            if len(self._cache) > _CACHE_SIZE:
                self._cache.popitem(last=False)


def subject_key_aad(subject_id: str) -> bytes:
    """What binds a wrapped data key to its subject."""
    return b"consentry:subject-key:" + subject_id.encode()
