"""Signed tree heads: Ed25519 over the canonical JSON of size, root and time, every one kept."""

from __future__ import annotations

import asyncio
import base64
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection

from consentry import clock
from consentry.audit.auditor import head_message
from consentry.audit.tree import open_tree
from consentry.keys.signing import SigningKeys
from consentry.storage import audit as sql
from consentry.storage.engine import AnyRow, Store

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class TreeHead:
    size: int
    root_hash: str
    signed_at: str
    signature: str
    kid: str

    def as_json(self) -> dict[str, Any]:
        """The head as GET /v1/audit/head returns it."""
        return {
            "size": self.size,
            "root_hash": self.root_hash,
            "signed_at": self.signed_at,
            "signature": self.signature,
            "kid": self.kid,
        }

    @classmethod
    def from_row(cls, row: AnyRow) -> TreeHead:
        return cls(row.size, row.root_hash, row.signed_at, row.signature, row.kid)


def latest(conn: Connection) -> TreeHead | None:
    """The head signed last, if any."""
    row = sql.latest_head(conn)
    return None if row is None else TreeHead.from_row(row)


def sign_if_grown(conn: Connection, keys: SigningKeys, *, gap: float = 0.0) -> TreeHead:
    """Sign and store a head for the current tree unless the latest head already covers it,
    or (with `gap`) was signed less than `gap` seconds ago; return the latest head either way.
    Holds the appends' lock, so heads are stored in size order and each names a size and root
    that were the log's when it was signed, and two processes signing at once see each
    other's head."""
    tree = open_tree(conn, lock=True)
    last = latest(conn)
    if last is not None and last.size == tree.size:
        return last
    now = clock.now()
    # Held back only by a head signed within `gap` by this clock: a clock behind the last
    # head's (another host's, or stepped back) holds nothing back, or heads would stop.
    if (
        last is not None
        and gap
        and timedelta(0) <= now - datetime.fromisoformat(last.signed_at) < timedelta(seconds=gap)
    ):
        return last
    key = keys.active
    root = tree.root().hex()
    signed_at = clock.rfc3339(now)
    if last is not None and signed_at <= last.signed_at:
        # One clock for every process is not guaranteed; heads never go back in time.
        signed_at = last.signed_at
    signature = key.sign(head_message(tree.size, root, signed_at))
    head = TreeHead(tree.size, root, signed_at, _b64url(signature), key.kid)
    sql.insert_head(
        conn,
        size=head.size,
        root_hash=head.root_hash,
        signed_at=head.signed_at,
        kid=head.kid,
        signature=head.signature,
    )
    return head


# Of the interval, the least time between two background heads: a process's own heads come
# an interval apart (and some), so only another process's head, signed in the same interval,
# holds one back.
_GAP = 0.9


class HeadSigner:
    """Signs a new head whenever the log has grown, checking every `interval` seconds; with
    several processes on one database, a head an interval at most (each process checks, so
    heads go on while any process runs)."""

    def __init__(self, store: Store, keys: SigningKeys, interval: float) -> None:
        self._store = store
        self._keys = keys
        self.interval = interval

    def sign_now(self) -> TreeHead:
        """Sign a head for the log as it is now (if it has grown) and return the latest."""
        with self._store.write() as conn:
            return sign_if_grown(conn, self._keys)

    def sign_due(self) -> TreeHead:
        """The background round: a head for the log as it is now if it has grown and no
        process has signed one within this interval; the latest head either way."""
        with self._store.write() as conn:
            return sign_if_grown(conn, self._keys, gap=self.interval * _GAP)

    async def run(self) -> None:
        """Sign in the background until cancelled; a failed round is logged and retried.
        Cancelled while a round is signing, it returns only once that round has ended: the
        thread holds a database connection, and the caller closes the store next."""
        while True:
            await asyncio.sleep(self.interval)
            signing = asyncio.ensure_future(asyncio.to_thread(self.sign_due))
            try:
                await asyncio.shield(signing)
            except asyncio.CancelledError:
                await asyncio.wait([signing])
                raise
            except Exception:  # the next round tries again; the server must keep serving
                log.exception("signing an audit tree head failed")


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")
