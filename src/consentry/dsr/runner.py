"""Runs verified requests in the background, a step per transaction, resuming from the step
stored with each request after a restart; also the scheduler (overdue, withdrawal purge,
consent expiry)."""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

from sqlalchemy import Connection

from consentry import clock
from consentry.audit.log import SYSTEM_ACTOR
from consentry.consent.expiry import Expiry
from consentry.dsr import awaiting, rectification
from consentry.dsr.erasure import Erasure
from consentry.dsr.models import DOWNLOADABLE, FINAL, Request, RequestType, Status, Step
from consentry.dsr.records import Notes, advance, level_met, load
from consentry.dsr.requests import Requests
from consentry.errors import ConsentryError
from consentry.periodic import Lease, Periodic
from consentry.storage import requests as sql
from consentry.storage.engine import Store
from consentry.storage.errors import StorageFailure

log = logging.getLogger(__name__)
ACTOR = SYSTEM_ACTOR


_PAGE = 100
# How long one runner transaction takes further requests in (it holds the writer meanwhile).
_BATCH_SECONDS = 0.05


class Runner:
    """`run_pending()` does one pass; `start()` repeats it every `interval` seconds in a
    thread. Passes in one process never overlap; with a `lease`, background passes of all
    the processes on the database never do either; and any pass (`consentry requests run`
    beside a server) takes a step under the request's row lock, from the step it reads
    there."""

    def __init__(
        self,
        store: Store,
        requests: Requests,
        erasure: Erasure,
        notes: Notes,
        interval: float,
        *,
        expiry: Expiry | None = None,
        lease: Lease | None = None,
    ) -> None:
        self.store = store
        self.expiry = expiry
        self.requests = requests
        self.erasure = erasure
        self.notes = notes
        self.interval = interval
        self._lock = threading.Lock()
        self._periodic = Periodic("dsr-runner", interval, self.run_pending, lease)
        self._purged = False

    def start(self) -> None:
        self._periodic.start()

    def stop(self) -> None:
        self._periodic.stop()

    def run_pending(self) -> dict[str, Any]:
        """One pass: overdue marks, each runnable request's next steps, withdrawal purge,
        consent expiry."""
        with self._lock:
            done: dict[str, Any] = {"overdue": self.requests.mark_overdue(actor=ACTOR)}
            self._purged = False
            done["advanced"] = 0
            after = None
            # Every runnable request, a page at a time: requests waiting for downstream
            # acknowledgements (days, maybe) never hold back newer ones.
            while True:
                with self.store.read() as conn:
                    page = sql.runnable(conn, _PAGE, after)
                done["advanced"] += self._run_page([request_id for _, request_id in page])
                if len(page) < _PAGE:
                    break
                after = page[-1]
            if self._purged:
                # Once per pass: what the erasures deleted leaves no page image in the WAL.
                self.store.checkpoint()
            done["withdrawals"] = self.erasure.purge_withdrawals(actor=ACTOR)
            # Before the next pass's requests: an erasure waiting for a topic completes there.
            done["topic_waits_passed"] = self.erasure.topic_waits_passed(actor=ACTOR)
            if self.expiry is not None:
                # Last: a pass that fails here has done the rest (it is tried again next pass).
                done["expired"] = self.expiry.expire_due(clock.now(), actor=ACTOR)
            return done

    def _run_page(self, request_ids: list[str]) -> int:
        """Take each request through as many steps as it can go now; returns the steps
        taken. On SQLite (one writer: a transaction each would queue behind ingest) several
        requests share a transaction while it is younger than _BATCH_SECONDS, each step in a
        savepoint of its own; on PostgreSQL each request has its own, so that no transaction
        holds the rows of several subjects in an order ingest could cross."""
        steps = 0
        waiting = list(reversed(request_ids))
        batch = _BATCH_SECONDS if self.store.dialect == "sqlite" else 0.0
        while waiting:
            with self.store.write() as conn:
                started = time.monotonic()
                steps += self._run(conn, waiting.pop())
                while waiting and time.monotonic() - started < batch:
                    steps += self._run(conn, waiting.pop())
        return steps

    def _run(self, conn: Connection, request_id: str) -> int:
        """Take the request through as many steps as it can go now; returns how many (a mark
        a step writes reaches the consent cache once the transaction commits: consent/marks)."""
        steps = 0
        for _ in range(4):
            try:
                with conn.begin_nested():
                    after = self._step(conn, request_id)
            except ConsentryError as exc:
                with conn.begin_nested():
                    self._fail(conn, request_id, exc.code)
                return steps + 1
            except Exception as exc:
                # Rolled back to its savepoint: the requests beside it still commit, this one
                # is tried again at the next pass. The type only: a message may quote data.
                cause = exc.driver_error if isinstance(exc, StorageFailure) else type(exc).__name__
                log.warning("a request step failed: %s", cause)
                return steps
            if after is None:
                return steps
            steps += 1
            if after.status in FINAL:
                # Nothing left to do: no statement just to read that back.
                return steps
        return steps

    def _step(self, conn: Connection, request_id: str) -> Request | None:
        """The request after its next step, None when it has none to take now."""
        purged = False
        request = load(conn, request_id, lock=True)
        if request.status in FINAL:
            return None
        # A direct-marketing objection needs no verification: it may wait for
        # acknowledgements without one (nothing is disclosed nor destroyed by that wait).
        if request.verified_at is None and request.step is not Step.NOTIFIED:
            return None
        subject_id = request.subject_id
        step = request.step
        if subject_id is None or self._below_level(conn, request):
            return None
        if request.type is RequestType.ERASURE and step is Step.NEW:
            # Verified but not shredded (a process stopped in between): shred now.
            self.erasure.shred(conn, subject_id, request_id=request_id, actor=ACTOR)
            request = advance(conn, request, Status.IN_PROGRESS, actor=ACTOR, step=Step.SHREDDED)
        elif request.type is RequestType.ERASURE and step is Step.SHREDDED:
            self.erasure.purge(conn, subject_id, request_id=request_id, actor=ACTOR)
            request = advance(conn, request, Status.IN_PROGRESS, actor=ACTOR, step=Step.PURGED)
            request = awaiting.finish(conn, self.requests.downstream, request, actor=ACTOR)
            purged = True
        elif request.type is RequestType.RECTIFICATION and step is Step.NEW:
            changes = self.notes.read(conn, request_id).get("changes", [])
            rectification.rectify(
                conn,
                self.requests.subjects,
                self.requests.downstream,
                subject_id,
                changes,
                request_id=request_id,
                actor=ACTOR,
            )
            sql.update_request(conn, request_id, {"notes_ct": None})
            request = awaiting.finish(conn, self.requests.downstream, request, actor=ACTOR)
        elif request.type in {RequestType.ACCESS, RequestType.PORTABILITY} and step is Step.NEW:
            # The result is built when it is read (GET .../result), from what is stored
            # then, so nothing personal is written twice.
            request = advance(conn, request, Status.COMPLETED, actor=ACTOR, step=Step.DONE)
        elif step is Step.NOTIFIED:
            before = request.status
            after = awaiting.complete_if_acknowledged(
                conn, self.requests.downstream, request, actor=ACTOR
            )
            return after if after.status is not before else None
        else:
            return None
        if purged:
            self._purged = True
        return request

    def _below_level(self, conn: Connection, request: Request) -> bool:
        """Whether an access or portability request, verified, falls short of the level its
        subject needs now (became US-CA since): it waits, `verified` below the level it
        shows, for an operator's verification; nothing is disclosed meanwhile."""
        if request.type not in DOWNLOADABLE or request.step is not Step.NEW:
            return False
        return not level_met(self.requests.required_now(conn, request, actor=ACTOR))

    def _fail(self, conn: Connection, request_id: str, code: str) -> None:
        request = load(conn, request_id, lock=True)
        if request.status not in FINAL:
            advance(
                conn,
                request,
                Status.FAILED,
                actor=ACTOR,
                step=Step.DONE,
                values={"reason": code},
            )
