"""The port through which requests, and consent withdrawals, reach downstream systems: cancel
a subject's pending deliveries, send rights notices (Art. 19), learn which systems have
acknowledged them.

Requests and the consent service (a withdrawal or denial) need only this Protocol; the data map
and delivery implement it. `NoSystems` is the implementation for a store without a data map:
nothing to cancel, nobody to tell.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from sqlalchemy import Connection

from consentry.consent.models import LedgerEntry, Purpose, SubjectConsent
from consentry.dsr.models import NoticeKind


class Downstream(Protocol):
    def cancel_pending(
        self, conn: Connection, subject_id: str, purposes: Sequence[str] | None, *, actor: str
    ) -> int:
        """Cancel the subject's deliveries not yet made, for `purposes` (None: all); returns
        how many were cancelled. Runs (and is audited) in the caller's transaction."""
        ...

    def notify(
        self,
        conn: Connection,
        subject_id: str,
        kind: NoticeKind,
        *,
        request_id: str | None,
        purposes: Sequence[str] | None,
        actor: str,
        corrected: Sequence[tuple[str, str]] = (),
        jurisdiction: str | None = None,
        forward: bool = False,
    ) -> list[str]:
        """Queue a `kind` notice to every system that received the subject's data (for
        `purposes`, None: any); returns the ids of the systems that must acknowledge it.
        Queued (and audited) in the caller's transaction, sent after it commits. `corrected`:
        a rectification's (identity type, new value) pairs, each sent only to systems that
        declare its data category. `jurisdiction`: the subject's, for the rules that depend on
        it (a US-CA purge request is forwarded by service providers, contractors and third
        parties). `forward`: every recipient is to pass the notice on (a withdrawal of a
        sale or share)."""
        ...

    def consent_changed(
        self,
        conn: Connection,
        state: SubjectConsent,
        entries: Sequence[LedgerEntry],
        purposes: Mapping[str, Purpose],
        *,
        actor: str,
    ) -> list[str]:
        """A ledger change: `entries` just appended (any state: granted, denied, withdrawn,
        expired), leaving the subject at `state`. Every writer of ledger entries calls this in
        the transaction that appends them, so that systems asking for consent events get a
        `consent_updated` in ledger order. Returns the ids of the systems it was queued to."""
        ...

    def acknowledgements(self, conn: Connection, request_id: str) -> list[dict[str, Any]]:
        """Per system sent notices of `request_id` (by system id): `system_id`, `kind` and
        `sent_at` of its latest notice, `acknowledged_at` (RFC 3339; None while one of its
        notices of the request is unanswered). The one record of whether a request's
        recipients have acknowledged it: a 2xx from their rights endpoint, or by hand."""
        ...

    def notices_of(self, conn: Connection, request_id: str) -> list[dict[str, Any]]:
        """The notices of `request_id`: `notice_id`, `system_id`, `type`, `status`,
        `acknowledged_at`, `overdue`."""
        ...

    def recipients(self, conn: Connection, subject_id: str) -> list[dict[str, Any]]:
        """The systems that received the subject's data: `system_id`, `name`, `region`,
        `transfer_mechanism`, `safeguard` (in words, Art. 15(2)), `purposes` (Art. 15(1)(c))."""
        ...

    def acknowledge(self, conn: Connection, request_id: str, system_id: str, *, actor: str) -> int:
        """An operator's acknowledgement for `system_id` of the notices of `request_id`;
        returns how many notices it answered."""
        ...


class NoSystems:
    """A store with no data map: no delivery is pending and no system received anything."""

    def cancel_pending(
        self, conn: Connection, subject_id: str, purposes: Sequence[str] | None, *, actor: str
    ) -> int:
        return 0

    def notify(
        self,
        conn: Connection,
        subject_id: str,
        kind: NoticeKind,
        *,
        request_id: str | None,
        purposes: Sequence[str] | None,
        actor: str,
        corrected: Sequence[tuple[str, str]] = (),
        jurisdiction: str | None = None,
        forward: bool = False,
    ) -> list[str]:
        return []

    def consent_changed(
        self,
        conn: Connection,
        state: SubjectConsent,
        entries: Sequence[LedgerEntry],
        purposes: Mapping[str, Purpose],
        *,
        actor: str,
    ) -> list[str]:
        return []

    def acknowledgements(self, conn: Connection, request_id: str) -> list[dict[str, Any]]:
        return []

    def notices_of(self, conn: Connection, request_id: str) -> list[dict[str, Any]]:
        return []

    def recipients(self, conn: Connection, subject_id: str) -> list[dict[str, Any]]:
        return []

    def acknowledge(self, conn: Connection, request_id: str, system_id: str, *, actor: str) -> int:
        return 0
