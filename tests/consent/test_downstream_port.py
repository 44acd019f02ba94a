"""A denial or withdrawal reaches downstream systems through the Downstream port the service
is built with (dsr/downstream.py): pending deliveries cancelled, `consent_withdrawn` notices
queued, to be passed on when a withdrawn purpose was a sale or share."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import Connection

from consentry.consent.service import ConsentService, ConsentWrite
from consentry.dsr.downstream import NoSystems
from consentry.dsr.models import NoticeKind
from consentry.runtime import Runtime
from consentry.subjects.refs import subject_ref


class Recorded(NoSystems):
    """No systems, but every call kept."""

    def __init__(self) -> None:
        self.calls: list[tuple[object, ...]] = []

    def cancel_pending(
        self, conn: Connection, subject_id: str, purposes: Sequence[str] | None, *, actor: str
    ) -> int:
        assert conn.in_transaction()
        self.calls.append(("cancel", subject_id, list(purposes or ()), actor))
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
        assert conn.in_transaction()
        self.calls.append(("notify", subject_id, kind, request_id, list(purposes or ()), forward))
        return []


def test_denials_and_withdrawals_go_through_the_port(runtime: Runtime) -> None:
    port = Recorded()
    rt = runtime
    service = ConsentService(
        rt.settings,
        rt.store,
        rt.subjects,
        rt.purposes,
        rt.consent_cache,
        rt.signing_keys,
        port,
    )
    with rt.store.read() as conn:
        purposes = rt.purposes.all(conn)
    sold = sorted(k for k, p in purposes.items() if p.sale_or_share and p.needs_consent)
    kept = sorted(k for k, p in purposes.items() if not p.sale_or_share and p.needs_consent)
    assert sold
    assert kept
    ref = subject_ref(None, [("email", "dee@example.com")])

    denied = service.record(ConsentWrite(ref=ref, purposes={kept[0]: "denied"}), actor="test")
    subject_id = denied.state.subject_id
    assert port.calls == [
        ("cancel", subject_id, [kept[0]], "test"),
        ("notify", subject_id, NoticeKind.CONSENT_WITHDRAWN, None, [kept[0]], False),
    ]

    port.calls.clear()
    service.withdraw(ref, [sold[0], kept[0]], "api", gpc=False, actor="test")
    both = sorted([sold[0], kept[0]])
    assert port.calls == [
        ("cancel", subject_id, both, "test"),
        ("notify", subject_id, NoticeKind.CONSENT_WITHDRAWN, None, both, True),
    ]
