"""Master and signing key rotation: online, batched and resumable re-wrap of everything the
key-encryption key wraps, then the old key retired once nothing is wrapped under it."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import Connection

from consentry import clock
from consentry.audit import log as audit
from consentry.audit.events import AuditAction
from consentry.auth.identity import wrap_aad as identity_aad
from consentry.governance.datamap import wrap_aad as system_aad
from consentry.keys.material import material_aad
from consentry.keys.ring import REFRESH_SECONDS, KeyEncryptionKey
from consentry.keys.signing import SigningKeys, signing_aad
from consentry.keys.subject_keys import subject_key_aad
from consentry.storage import keys as sql
from consentry.storage.engine import Store

# What binds each table's blobs to their rows (each owner's own AAD).
_AAD: dict[str, Callable[[str], bytes]] = {
    "subject_keys": subject_key_aad,
    "key_material": material_aad,
    "signing_keys": signing_aad,
    "identity_secrets": identity_aad,
    "systems": system_aad,
}
BATCH = 2_000
# How long a KEK nothing is wrapped under stays in its store before a later `finish` destroys
# it: longer than any transaction (a stream batch holds one for tens of seconds), so a row that
# a transaction opened before the rotation wraps under the old key and commits after the
# re-wrap pass is re-wrapped by that later run, never left under a destroyed key.
GRACE_SECONDS = 600.0


@dataclass(frozen=True, slots=True)
class Outcome:
    kek_id: str
    rewrapped: int
    retired: tuple[str, ...]
    kept: tuple[str, ...]  # retired keys only the operator can remove (CONSENTRY_MASTER_KEY)
    retiring: tuple[str, ...] = ()  # unused, kept until their grace period has passed


class MasterRotation:
    """Re-wraps every wrapped row under the active KEK; a run killed half way is resumed by
    running it again (rows name their KEK, so what is done is never done twice)."""

    def __init__(
        self,
        store: Store,
        kek: KeyEncryptionKey,
        *,
        actor: str,
        batch: int = BATCH,
        settle_seconds: float = REFRESH_SECONDS * 1.5,
        grace_seconds: float = GRACE_SECONDS,
    ) -> None:
        self._store = store
        self._kek = kek
        self._actor = actor
        self._batch = batch
        # Long enough for every other process to see the new key as active and stop wrapping
        # under the old one (ring.REFRESH_SECONDS).
        self._settle = settle_seconds
        self._grace = timedelta(seconds=grace_seconds)

    def start(self) -> str:
        """Put a new KEK in use, unless a rotation onto the active one is unfinished (then it
        is resumed: rows still under an older KEK, or an older KEK not retired yet); returns
        the active KEK id."""
        if self.pending() == 0 and len(self._kek.key_ids) == 1:
            self._kek.store.create(replacing=self._kek.kek_id)
            self._kek.refresh()
        with self._store.write() as conn:
            note_master_key(conn, self._kek)
            audit.record(
                conn,
                AuditAction.MASTER_KEY_ROTATION_STARTED,
                actor=self._actor,
                details={"kek_id": self._kek.kek_id, "source": self._kek.store.name},
            )
        return self._kek.kek_id

    def pending(self) -> int:
        """Rows wrapped under any KEK but the active one."""
        active = self._kek.kek_id
        with self._store.read() as conn:
            return sum(sql.count_wrapped_not_under(conn, w, active) for w in sql.WRAPPED)

    def rewrap(self, progress: Callable[[int], None] = lambda done: None) -> int:
        """Re-wrap, a batch per transaction, until no row is under an older KEK; `progress`
        gets the rows done by each batch. Returns how many were re-wrapped."""
        done = 0
        while True:
            moved = sum(self._pass(w, progress) for w in sql.WRAPPED)
            done += moved
            if moved == 0:
                return done

    def finish(self, progress: Callable[[int], None] = lambda done: None) -> Outcome:
        """Wait for other processes to wrap under the new KEK, re-wrap what they wrapped under
        the old one meanwhile, then retire in two steps every KEK nothing is wrapped under:
        marked retiring (master_keys.retired_at) on the first run, destroyed by a run once
        the grace period has passed since (a transaction still open may yet commit a row
        wrapped under it; that run re-wraps such rows first)."""
        rewrapped = self.rewrap(progress)
        time.sleep(self._settle)
        rewrapped += self.rewrap(progress)
        active = self._kek.kek_id
        retired: list[str] = []
        kept: list[str] = []
        retiring: list[str] = []
        with self._store.write() as conn:
            in_use = sql.wrapped_kek_ids(conn)
            now = clock.now()
            for kek_id in self._kek.key_ids:
                if kek_id == active or kek_id in in_use:
                    continue
                since = sql.mark_master_key_retiring(conn, kek_id, now)
                if now - since < self._grace:
                    retiring.append(kek_id)
                    continue
                destroyed = self._kek.store.retire(kek_id)
                (retired if destroyed else kept).append(kek_id)
                audit.record(
                    conn,
                    AuditAction.MASTER_KEY_RETIRED,
                    actor=self._actor,
                    details={"kek_id": kek_id, "destroyed": destroyed},
                )
        self._kek.refresh()
        return Outcome(active, rewrapped, tuple(retired), tuple(kept), tuple(retiring))

    def _pass(self, wrapped: sql.Wrapped, progress: Callable[[int], None]) -> int:
        aad = _AAD[wrapped.name]
        after: str | None = None
        moved = 0
        while True:
            with self._store.write() as conn:
                new = self._kek.kek_id
                rows = sql.wrapped_batch(conn, wrapped, new, after, self._batch)
                if not rows:
                    return moved
                changes = []
                for row in rows:
                    key = self._kek.open(bytes(row.blob), aad(row.key), row.kek_id)
                    blob, kek_id = self._kek.wrap(key, aad(row.key))
                    changes.append((row.key, row.kek_id, blob, kek_id))
                sql.rewrap(conn, wrapped, changes)
            after = rows[-1].key
            moved += len(rows)
            progress(len(rows))


def note_master_key(conn: Connection, kek: KeyEncryptionKey) -> None:
    """Record the active KEK as in use (its age is the master key's age): from when it first
    wrapped a named secret, for a database older than this record, else from now."""
    since = sql.material_first_wrapped(conn, kek.kek_id) or clock.now()
    sql.record_master_key(conn, kek.kek_id, since)


def rotate_signing(conn: Connection, keys: SigningKeys, *, actor: str) -> str:
    """A new active signing key, published at once; the earlier ones stay in the JWKS (their
    tokens and signed heads keep verifying). Returns the new `kid`."""
    previous = keys.active.kid
    made = keys.rotate(conn)
    audit.record(
        conn,
        AuditAction.SIGNING_KEY_ROTATED,
        actor=actor,
        details={"kid": made.kid, "previous_kid": previous},
    )
    return made.kid
