"""Resolution of a subject reference to one subject, creating it when the caller may."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Sequence
from typing import Any

from sqlalchemy import Connection

from consentry import clock
from consentry.audit import log as audit
from consentry.audit.events import AuditAction
from consentry.errors import IdentityConflict, SubjectNotFound
from consentry.keys.envelope import Sealer
from consentry.keys.subject_keys import SubjectKeys
from consentry.storage import subjects as sql
from consentry.storage.errors import ConstraintViolation
from consentry.subjects.blind_index import BlindIndex
from consentry.subjects.models import (
    Identity,
    IdentityType,
    Jurisdiction,
    Resolution,
    Subject,
    SubjectRef,
)
from consentry.subjects.refs import SUBJECT_ID

_RACE_RETRIES = 3
# Identities looked up per query (two bound parameters each).
_LOOKUP_SLICE = 400


def new_subject_id() -> str:
    return "sub_" + secrets.token_hex(12)


class Subjects:
    """Subject look-up and creation; identity values only ever leave here sealed."""

    def __init__(self, blind_index: BlindIndex, keys: SubjectKeys, tombstone_key: bytes) -> None:
        self.blind_index = blind_index
        self.keys = keys
        self._tombstone = hmac.new(tombstone_key, digestmod=hashlib.sha256)

    def tombstone(self, blind_index: bytes) -> bytes:
        """The keyed hash that outlives an erased identity: it names no subject, and only
        the holder of the tombstone key can tell which identity it stands for."""
        mac = self._tombstone.copy()
        mac.update(blind_index)
        return mac.digest()

    def tombstoned(self, conn: Connection, idents: Sequence[Identity]) -> bool:
        """Whether any of these identities belonged to a person since erased."""
        hashes = [self.tombstone(self.blind_index.of(i)) for i in idents]
        return bool(sql.known_tombstones(conn, hashes))

    def clear_tombstone(self, conn: Connection, subject_id: str, *, actor: str) -> None:
        """The person consented anew: their identities are no longer refused."""
        hashes = [self.tombstone(b) for b in sql.blind_indexes(conn, subject_id)]
        sql.delete_tombstones(conn, hashes)
        sql.clear_erasure(conn, subject_id)
        audit.record(
            conn, AuditAction.SUBJECT_TOMBSTONE_CLEARED, actor=actor, subject_id=subject_id
        )

    def get(self, conn: Connection, subject_id: str) -> Subject:
        row = sql.get_subject(conn, subject_id) if SUBJECT_ID.fullmatch(subject_id) else None
        if row is None:
            raise SubjectNotFound(f"no subject {subject_id}", subject_id=subject_id)
        return _subject(row)

    def find(self, conn: Connection, ref: SubjectRef) -> Subject | None:
        """The subject `ref` names, or None when nobody is known by it (never creates)."""
        if ref.subject_id is not None:
            if not SUBJECT_ID.fullmatch(ref.subject_id):
                return None
            row = sql.get_subject(conn, ref.subject_id)
            return None if row is None else _subject(row)
        owners = self._owners(conn, ref.identities)
        subject_id = _single_owner(owners)
        return None if subject_id is None else self.get(conn, subject_id)

    def resolve(
        self,
        conn: Connection,
        ref: SubjectRef,
        *,
        actor: str,
        jurisdiction: Jurisdiction | None = None,
    ) -> Resolution:
        """The subject `ref` names, created (with its data key) when its identities are new.

        Identities of the reference not yet known are added to the subject found by the
        others; identities that belong to two different subjects are refused
        (IdentityConflict), since merging people is not a side effect anyone asked for.
        """
        if ref.subject_id is not None:
            subject, created = self.get(conn, ref.subject_id), False
        else:
            subject, created = self._by_identities(conn, ref.identities, actor, jurisdiction)
        changed = False
        if jurisdiction is not None and not created:
            settled = self.settle_jurisdiction(conn, subject, jurisdiction, actor=actor)
            changed = settled.jurisdiction != subject.jurisdiction
            subject = settled
        return Resolution(subject=subject, created=created, jurisdiction_changed=changed)

    def settle_jurisdiction(
        self, conn: Connection, subject: Subject, jurisdiction: Jurisdiction, *, actor: str
    ) -> Subject:
        """The subject, as read in this transaction, under `jurisdiction` (changed and audited
        when it differs)."""
        if jurisdiction == subject.jurisdiction:
            return subject
        sql.set_jurisdiction(conn, subject.subject_id, jurisdiction.value)
        audit.record(
            conn,
            AuditAction.SUBJECT_JURISDICTION_SET,
            actor=actor,
            subject_id=subject.subject_id,
            details={"jurisdiction": jurisdiction.value},
        )
        return Subject(subject.subject_id, jurisdiction, subject.created_at)

    def known_owners(
        self, conn: Connection, refs: list[SubjectRef]
    ) -> dict[SubjectRef, str | None]:
        """For references by identities: the subject every identity of a reference already
        belongs to, or None (someone new, a new identity, or two people): one query for all."""
        keyed = {
            ref: [(i.type.value, self.blind_index.of(i)) for i in ref.identities] for ref in refs
        }
        found = sql.find_by_blind_index(conn, [k for keys in keyed.values() for k in keys])
        owners: dict[SubjectRef, str | None] = {}
        for ref, keys in keyed.items():
            subjects = {found.get(k) for k in keys}
            owners[ref] = subjects.pop() if len(subjects) == 1 else None
        return owners

    def _by_identities(
        self,
        conn: Connection,
        idents: tuple[Identity, ...],
        actor: str,
        jurisdiction: Jurisdiction | None,
    ) -> tuple[Subject, bool]:
        # Two transactions may introduce the same new person at once; the unique blind index
        # lets one win, and the other, rolled back to its savepoint, finds the winner.
        for _attempt in range(_RACE_RETRIES):
            owners = self._owners(conn, idents)
            subject_id = _single_owner(owners)
            missing = [i for i in idents if owners.get(i) is None]
            new_id = new_subject_id() if subject_id is None else None
            try:
                with conn.begin_nested():
                    if new_id is not None:
                        # A person met again after an erasure is refused until they consent
                        # anew (API.md, Erasure): the new subject starts as a tombstone.
                        erasure = "tombstone" if self.tombstoned(conn, idents) else None
                        subject = self._create(conn, new_id, actor, jurisdiction, erasure)
                    else:
                        subject = self.get(conn, str(subject_id))
                    self._add_identities(conn, subject.subject_id, missing, actor=actor)
            except ConstraintViolation:
                if new_id is not None:
                    self.keys.forget(new_id)
                continue
            return subject, new_id is not None
        raise IdentityConflict("the identities were claimed by another request meanwhile")

    def others(
        self, conn: Connection, subject_id: str, idents: Sequence[Identity]
    ) -> set[Identity]:
        """Which of `idents` identify somebody other than `subject_id`: an identity of
        another subject, or of a person since erased (its tombstone)."""
        items = [(i, self.blind_index.of(i)) for i in set(idents)]
        found: set[Identity] = set()
        # In slices: a page of events may hold thousands of values, past a driver's limit
        # on bound parameters.
        for start in range(0, len(items), _LOOKUP_SLICE):
            part = [(i, b, self.tombstone(b)) for i, b in items[start : start + _LOOKUP_SLICE]]
            owners = sql.find_by_blind_index(conn, [(i.type.value, b) for i, b, _ in part])
            tombs = sql.known_tombstones(conn, [t for _, _, t in part])
            found |= {
                i
                for i, b, t in part
                if owners.get((i.type.value, b), subject_id) != subject_id or t in tombs
            }
        return found

    def identities(self, conn: Connection, subject_id: str) -> list[Identity]:
        """The subject's identities in clear (raises SubjectKeyDestroyed after an erasure)."""
        sealer = self.keys.sealer(conn, subject_id)
        return [
            Identity(
                IdentityType(row.type),
                sealer.open(row.value_ct, identity_aad(subject_id, row.type)).decode(),
            )
            for row in sql.list_identities(conn, subject_id)
        ]

    def opened(self, sealer: Sealer, subject_id: str, rows: Sequence[Any]) -> list[Identity]:
        """Identity rows (with `type` and `value_ct`) of the subject, in clear."""
        return [
            Identity(
                IdentityType(row.type),
                sealer.open(bytes(row.value_ct), identity_aad(subject_id, row.type)).decode(),
            )
            for row in rows
        ]

    def identity_types(self, conn: Connection, subject_id: str) -> list[str]:
        return [row.type for row in sql.list_identities(conn, subject_id)]

    def _owners(self, conn: Connection, idents: tuple[Identity, ...]) -> dict[Identity, str | None]:
        keyed = {i: (i.type.value, self.blind_index.of(i)) for i in idents}
        found = sql.find_by_blind_index(conn, list(keyed.values()))
        return {i: found.get(key) for i, key in keyed.items()}

    def _create(
        self,
        conn: Connection,
        subject_id: str,
        actor: str,
        jurisdiction: Jurisdiction | None,
        erasure: str | None = None,
    ) -> Subject:
        now = clock.now()
        sql.insert_subject(
            conn, subject_id, jurisdiction.value if jurisdiction else None, now, erasure
        )
        self.keys.create(conn, subject_id)
        audit.record(
            conn,
            AuditAction.SUBJECT_CREATED,
            actor=actor,
            subject_id=subject_id,
            details={"jurisdiction": jurisdiction.value if jurisdiction else None}
            | ({"tombstone": True} if erasure else {}),
        )
        return Subject(subject_id, jurisdiction, now)

    def _add_identities(
        self, conn: Connection, subject_id: str, idents: list[Identity], *, actor: str
    ) -> None:
        if not idents:
            return
        sealer: Sealer = self.keys.sealer(conn, subject_id)
        now = clock.now()
        for identity in idents:
            sql.insert_identity(
                conn,
                subject_id,
                identity.type.value,
                self.blind_index.of(identity),
                sealer.seal(identity.value.encode(), identity_aad(subject_id, identity.type.value)),
                now,
            )
            audit.record(
                conn,
                AuditAction.SUBJECT_IDENTITY_ADDED,
                actor=actor,
                subject_id=subject_id,
                details={"type": identity.type.value},
            )


def _single_owner(owners: dict[Identity, str | None]) -> str | None:
    distinct = {s for s in owners.values() if s is not None}
    if len(distinct) > 1:
        raise IdentityConflict(
            "the identities given belong to different subjects", count=len(distinct)
        )
    return distinct.pop() if distinct else None


def _subject(row: Any) -> Subject:
    jurisdiction = Jurisdiction(row.jurisdiction) if row.jurisdiction else None
    return Subject(row.subject_id, jurisdiction, row.created_at)


def identity_aad(subject_id: str, type_: str) -> bytes:
    """What a sealed identity value is bound to (stored: the spelling never changes): moved to
    another subject or type, it no longer opens."""
    return f"consentry:identity:{subject_id}:{type_}".encode()
