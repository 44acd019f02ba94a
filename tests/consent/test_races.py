"""Rules that read the subject's state must hold when another worker writes it meanwhile.

PostgreSQL only: there two writers for one subject run at once and queue on the subject row
(on SQLite one writer runs at a time). The first writer's transaction is held open with the
row locked, so the second one is deterministically caught between its reads and its lock.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

from consentry.consent import notices
from consentry.consent.models import LegalBasis, Purpose
from consentry.consent.service import ConsentResult, ConsentWrite
from consentry.runtime import Runtime
from consentry.settings import Settings
from consentry.subjects.models import Identity, IdentityType, SubjectRef
from tests.conftest import ADMIN_KEY, MASTER_KEY, fresh_pg_database
from tests.consent.helpers import CONSENT_PURPOSES

ACTOR = "race-test"
WAITING = text(
    "SELECT count(*) FROM pg_stat_activity "
    "WHERE datname = current_database() AND wait_event_type = 'Lock'"
)


@pytest.fixture
def pg_settings(pg_url: str, tmp_path: Path) -> Settings:
    db = fresh_pg_database(pg_url)
    return Settings(data_dir=tmp_path / "data", db=db, admin_key=ADMIN_KEY, master_key=MASTER_KEY)


@pytest.fixture
def workers(pg_settings: Settings) -> Iterator[tuple[Runtime, Runtime]]:
    """Two workers (Runtimes) on one PostgreSQL store, with the notice published."""
    first = Runtime(pg_settings)
    with first.store.write() as conn:
        notices.publish(
            conn, first.purposes, "privacy", "1", "Notice.", list(CONSENT_PURPOSES), actor=ACTOR
        )
    second = Runtime(pg_settings)
    yield first, second
    first.close()
    second.close()


def subject(rt: Runtime, name: str) -> SubjectRef:
    ref = SubjectRef(identities=(Identity(IdentityType.EMAIL, f"{name}@example.com"),))
    with rt.store.write() as conn:
        return SubjectRef(subject_id=rt.subjects.resolve(conn, ref, actor=ACTOR).subject.subject_id)


def in_thread(work: Any) -> tuple[threading.Thread, dict[str, Any]]:
    outcome: dict[str, Any] = {}

    def run() -> None:
        try:
            outcome["result"] = work()
        except Exception as exc:  # handed to the test thread
            outcome["result"] = exc

    return threading.Thread(target=run), outcome


def wait_for_lock_waiter(rt: Runtime, thread: threading.Thread) -> None:
    """Return once another transaction waits for a lock; fail if none does within 10 s."""
    deadline = time.monotonic() + 10
    while thread.is_alive() and time.monotonic() < deadline:
        with rt.store.engine.connect() as probe:
            if probe.execute(WAITING).scalar_one() >= 1:
                return
        time.sleep(0.01)
    pytest.fail("the second writer never waited for the first")


def while_held(holder: Runtime, held: ConsentWrite, other: Runtime, late: ConsentWrite) -> Any:
    """Run `held` in `holder` up to its commit, start `late` in `other` and let it block on
    the subject row, then commit `held`. Returns what `late` answered (or raised)."""
    thread, outcome = in_thread(lambda: other.consent.record(late, actor=ACTOR))
    with holder.store.write() as conn:
        holder.consent._record(conn, held, ACTOR)  # held: not committed yet
        thread.start()
        wait_for_lock_waiter(holder, thread)
    thread.join(timeout=30)
    return outcome.get("result")


def test_a_grant_racing_a_gpc_opt_out_does_not_opt_back_in(
    workers: tuple[Runtime, Runtime],
) -> None:
    """API.md: after GPC "A later grant of such a purpose counts only with
    `evidence.opt_in_confirmed: true`", also when the GPC write came from another worker a
    moment earlier."""
    first, second = workers
    ref = subject(first, "racing.gpc")
    gpc = ConsentWrite(ref=ref, source="web", gpc=True)
    grant = ConsentWrite(
        ref=ref, purposes={"advertising": "granted"}, source="web", notice=("privacy", "1")
    )
    result = while_held(first, gpc, second, grant)
    assert isinstance(result, ConsentResult), result
    with first.store.read() as conn:
        state = first.consent.state(conn, str(ref.subject_id))
    assert state.gpc is True
    assert state.purposes["advertising"].source.value == "gpc"
    assert result.gpc_honored is True


def test_a_grant_racing_an_age_band_needs_parental_authorization(
    workers: tuple[Runtime, Runtime],
) -> None:
    """API.md: a grant below the digital consent age needs `evidence.parental_authorization`;
    "the age band is remembered for later grants", also one written by another worker."""
    first, second = workers
    ref = subject(first, "racing.child")
    band = ConsentWrite(ref=ref, purposes={"marketing": "denied"}, source="web", age_band="13_15")
    grant = ConsentWrite(
        ref=ref, purposes={"analytics": "granted"}, source="web", notice=("privacy", "1")
    )
    result = while_held(first, band, second, grant)
    assert not isinstance(result, ConsentResult), "the child's grant was recorded"
    assert getattr(result, "code", None) == "parental_authorization_required"


def test_the_same_notice_published_twice_at_once(workers: tuple[Runtime, Runtime]) -> None:
    """API.md: notice versions are immutable; re-publishing the same content is harmless,
    also when two workers do it at the same moment ("Bad input never gives a 500")."""
    first, second = workers

    def publish(rt: Runtime) -> Any:
        with rt.store.write() as conn:
            return notices.publish(
                conn, rt.purposes, "cookies", "1", "Cookie notice.", ["analytics"], actor=ACTOR
            )

    thread, outcome = in_thread(lambda: publish(second))
    with first.store.write() as conn:
        notices.publish(
            conn, first.purposes, "cookies", "1", "Cookie notice.", ["analytics"], actor=ACTOR
        )
        thread.start()
        wait_for_lock_waiter(first, thread)
    thread.join(timeout=30)
    result = outcome.get("result")
    assert isinstance(result, tuple), repr(result)
    assert result[0].sha256 == notices.text_sha256("Cookie notice.")


def test_the_same_purpose_created_twice_at_once(workers: tuple[Runtime, Runtime]) -> None:
    """API.md: `PUT /v1/purposes/{key}` creates or replaces; two workers doing it at the same
    moment both succeed, the later one replacing ("Bad input never gives a 500")."""
    first, second = workers
    purpose = Purpose(
        key="surveys", name="Surveys", legal_basis=LegalBasis.CONSENT, retention_days=30
    )

    def put(rt: Runtime) -> Any:
        with rt.store.write() as conn:
            return rt.purposes.put(conn, purpose, actor=ACTOR)

    thread, outcome = in_thread(lambda: put(second))
    with first.store.write() as conn:
        first.purposes.put(conn, purpose, actor=ACTOR)
        thread.start()
        wait_for_lock_waiter(first, thread)
    thread.join(timeout=30)
    result = outcome.get("result")
    assert isinstance(result, tuple), repr(result)
    assert result[0].key == "surveys"
