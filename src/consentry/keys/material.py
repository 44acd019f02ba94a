"""Named secrets (blind-index key, pseudonym key, ...): random, stored wrapped by the KEK, so
they survive restarts and a change of master key re-wraps them without changing them."""

from __future__ import annotations

import secrets

from sqlalchemy import Connection

from consentry import clock
from consentry.keys.ring import KeyEncryptionKey
from consentry.storage import keys as sql

BLIND_INDEX = "blind_index"
PSEUDONYM = "pseudonym"
TOKEN_INDEX = "token_index"  # noqa: S105 - the name of a secret, not the secret
READ_PSEUDONYM = "read_pseudonym"  # per-purpose subject pseudonyms in reads and exports
DELIVERY_PSEUDONYM = "delivery_pseudonym"  # per-system subject pseudonyms in deliveries
# Seals what an erasure must keep (dsr/erasure.py), apart from any subject's data key.
RETENTION = "retention"
# Keys the hashes of erased identities (tombstones), so they link to no blind index.
TOMBSTONE = "tombstone"
# Seals the free text and new identity values data-subject requests carry.
REQUEST_NOTES = "request_notes"
# Signs portal links (dsr/entry.py): only Consentry mints and opens them.
PORTAL_LINKS = "portal_links"
# Derives portal sessions' CSRF tokens from their session tokens (dsr/portal.py).
PORTAL_SESSIONS = "portal_sessions"
# Seals outgoing mail (delivery/mail.py): its recipient, subject and text, until it is sent.
MAIL = "mail"
# Keys the hashes of portal codes, of the addresses they were sent to and of client addresses
# (dsr/codes.py): a 6-digit code hashed without a secret is found by trying them all.
PORTAL_CODES = "portal_codes"
# Seals the free text of the breach register (descriptions, facts, reasons: they may name
# people).
INCIDENT_NOTES = "incident_notes"
# Seals the reviews of impact assessments: the reviewer's name and the DPO's advice.
ASSESSMENT_NOTES = "assessment_notes"
# Keys the blind index of the e-mail addresses of people who sign in to the pages (people/).
PEOPLE_INDEX = "people_index"
# Seals those people's e-mail addresses and TOTP secrets, each bound to its person.
PEOPLE_NOTES = "people_notes"


def named_secret(conn: Connection, kek: KeyEncryptionKey, name: str) -> bytes:
    """The 32-byte secret called `name`, created on first use (race-safe across processes)."""
    aad = material_aad(name)
    row = sql.get_material(conn, name)
    if row is None:
        wrapped, kek_id = kek.wrap(secrets.token_bytes(32), aad)
        sql.insert_material_if_absent(conn, name, wrapped, kek_id, clock.now())
        row = sql.get_material(conn, name)
        if row is None:
            raise RuntimeError(f"secret {name} vanished while being created")
    return kek.open(row.wrapped_key, aad, row.kek_id)


def material_aad(name: str) -> bytes:
    """What binds a wrapped named secret to its name."""
    return b"consentry:material:" + name.encode()
