"""Treatments: what happens to a field's value before anything is stored. Each is a small
class behind one registry; values are treated a batch at a time."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Protocol

from sqlalchemy import Connection

from consentry import clock, native
from consentry.ingest.models import Treatment
from consentry.ingest.redact import redact_many
from consentry.keys.envelope import Sealer
from consentry.storage import ingest as sql

TOKEN_PREFIX = "tok_"  # noqa: S105 - a label for tokens, not a secret


@dataclass(frozen=True, slots=True)
class Item:
    """One value to treat, with what a treatment may need to know about it."""

    subject_id: str
    field: str
    value: Any
    sealer: Sealer


class Treater(Protocol):
    kind: ClassVar[Treatment]
    # The result depends on the field and value alone (no subject, no storage): a pure
    # treater is a PureTreater, and may run before the batch's transaction.
    pure: ClassVar[bool]

    def treat(self, conn: Connection, items: Sequence[Item]) -> list[Any]:
        """The treated values, in order (DROPPED for a value that must not be stored)."""


class PureTreater(Treater, Protocol):
    """A treater whose `pure` is True."""

    def many(self, fields: list[str], values: list[Any]) -> list[Any]:
        """Each field's value treated, in order."""


DROPPED = object()


class Keep:
    kind: ClassVar[Treatment] = Treatment.KEEP
    pure: ClassVar[bool] = False

    def treat(self, conn: Connection, items: Sequence[Item]) -> list[Any]:
        return [item.value for item in items]


class Drop:
    kind: ClassVar[Treatment] = Treatment.DROP
    pure: ClassVar[bool] = False

    def treat(self, conn: Connection, items: Sequence[Item]) -> list[Any]:
        return [DROPPED] * len(items)


class Pseudonymise:
    """Keyed HMAC-SHA256 (never a plain or salted hash): stable across restarts and processes,
    irreversible without the key, and the same value gives the same pseudonym per field. The
    core computes it (core/src/pseudonym.rs: HMAC(key, field || 0x00 || str(value)), hex)."""

    kind: ClassVar[Treatment] = Treatment.PSEUDONYMISE
    pure: ClassVar[bool] = True

    def __init__(self, key: bytes) -> None:
        self._core = native.Pseudonymiser(key)

    @property
    def core(self) -> native.Pseudonymiser:
        """The key in the core, which pseudonymises the values of the rows it writes."""
        return self._core

    def many(self, fields: list[str], values: list[Any]) -> list[Any]:
        # A value's text is Python's str() of it (True -> "True", 1.0 -> "1.0"), as stored.
        return self._core.fields(fields, [str(value) for value in values])

    def treat(self, conn: Connection, items: Sequence[Item]) -> list[Any]:
        return self.many([item.field for item in items], [item.value for item in items])


class Tokenise:
    """A random token per (subject, field, value); the value is kept only in the vault,
    sealed under the subject's key, and comes back only through detokenize (audited)."""

    kind: ClassVar[Treatment] = Treatment.TOKENISE
    pure: ClassVar[bool] = False

    def __init__(self, index_key: bytes) -> None:
        self._index = hmac.new(index_key, digestmod=hashlib.sha256)

    def treat(self, conn: Connection, items: Sequence[Item]) -> list[Any]:
        indexes = [self._value_index(item) for item in items]
        known = sql.tokens_by_index(conn, list(set(indexes)))
        new_rows: list[dict[str, Any]] = []
        new_items = []
        now = clock.now()
        for item, index in zip(items, indexes, strict=True):
            if index in known:
                continue
            token = TOKEN_PREFIX + secrets.token_urlsafe(16)
            known[index] = token
            new_items.append(item)
            new_rows.append(
                {
                    "token": token,
                    "subject_id": item.subject_id,
                    "field": item.field,
                    "value_index": index,
                    "created_at": now,
                }
            )
        # The vault's values sealed in one call to the core, each under its subject's key.
        sealed = native.seal_batch(
            [item.sealer.native for item in new_items],
            [str(item.value).encode() for item in new_items],
            [token_aad(row["token"]) for row in new_rows],
        )
        for row, value_ct in zip(new_rows, sealed, strict=True):
            row["value_ct"] = value_ct
        sql.insert_tokens(conn, new_rows)
        return [known[index] for index in indexes]

    def _value_index(self, item: Item) -> bytes:
        mac = self._index.copy()
        mac.update(f"{item.subject_id}\x00{item.field}\x00{item.value}".encode())
        return mac.digest()


class Redact:
    """Free-text PII (e-mail, phone, card, IBAN, IP, SSN, NI number) replaced by `<EMAIL>`..."""

    kind: ClassVar[Treatment] = Treatment.REDACT
    pure: ClassVar[bool] = True

    def many(self, fields: list[str], values: list[Any]) -> list[Any]:
        return redact_many(values)

    def treat(self, conn: Connection, items: Sequence[Item]) -> list[Any]:
        return redact_many([item.value for item in items])


def token_aad(token: str) -> bytes:
    """What binds a vault ciphertext to its token."""
    return b"consentry:token:" + token.encode()


def registry(pseudonym_key: bytes, token_index_key: bytes) -> dict[Treatment, Treater]:
    """Every treatment by its name in a schema."""
    treaters: list[Treater] = [
        Keep(),
        Drop(),
        Pseudonymise(pseudonym_key),
        Tokenise(token_index_key),
        Redact(),
    ]
    return {t.kind: t for t in treaters}
