"""What the privacy portal shows a customer of their consent: each purpose that needs it, in
plain language, its state, the notice text it was granted (or refused) under, and the notice
a new grant is given under."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection

from consentry.consent.checks import Checks
from consentry.consent.models import Purpose, State
from consentry.consent.purposes import PurposeRegistry
from consentry.storage import consent as sql
from consentry.storage.engine import AnyRow


@dataclass(frozen=True, slots=True)
class Choice:
    key: str
    name: str
    description: str
    # granted, denied, withdrawn, expired; None: never asked.
    state: State | None
    updated_at: datetime | None
    expires_at: datetime | None
    # The text of the notice the current state was recorded under (None: none recorded).
    notice_text: str | None
    # The newest notice naming the purpose: (id, version, text); a grant is given under it.
    offered: tuple[str, str, str] | None


def choices(
    conn: Connection, registry: PurposeRegistry, checks: Checks, subject_id: str, now: datetime
) -> list[Choice]:
    """The subject's choices, one per purpose based on consent, in purpose order; a grant
    past its expiry shows as expired."""
    state = checks.state(conn, subject_id)
    newest = sql.notices_newest_first(conn)
    by_sha = {row.sha256: row.text for row in newest}
    out = []
    for key, purpose in sorted(registry.all(conn).items()):
        if not purpose.needs_consent:
            continue
        held = state.purposes.get(key)
        current = held.state if held else None
        if held and current is State.GRANTED and held.expires_at and held.expires_at <= now:
            current = State.EXPIRED
        offered = _offered(newest, key)
        out.append(
            Choice(
                key,
                purpose.name,
                _plain(purpose),
                current,
                held.updated_at if held else None,
                held.expires_at if held else None,
                by_sha.get(held.notice_sha256) if held and held.notice_sha256 else None,
                offered,
            )
        )
    return out


def _plain(purpose: Purpose) -> str:
    return purpose.description or f"{purpose.name}: kept {purpose.retention_days} days."


def offered(conn: Connection, key: str) -> tuple[str, str, str] | None:
    """The notice a grant of `key` is given under: the newest naming it (id, version, text)."""
    return _offered(sql.notices_newest_first(conn), key)


def _offered(newest: Sequence[AnyRow], key: str) -> tuple[str, str, str] | None:
    return next(
        (
            (str(r.notice_id), str(r.version), str(r.text))
            for r in newest
            if key in json.loads(r.purposes)
        ),
        None,
    )
