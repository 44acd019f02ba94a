"""The result of a data-subject request, read by whoever may read it (the API, the customer's
portal): the checks before anything is disclosed (completed, verified to the level its subject
needs now, the reader's own), the audit entry of the read, and the report or copy, streamed."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from consentry.audit import log as audit
from consentry.audit.events import AuditAction
from consentry.consent.purposes import PurposeRegistry
from consentry.dsr import categories
from consentry.dsr.access import Provided, Reports
from consentry.dsr.downstream import Downstream
from consentry.dsr.models import DOWNLOADABLE, Level, RequestType, Scope, Status
from consentry.dsr.records import level_met
from consentry.dsr.requests import Requests
from consentry.errors import RequestNotFound, ResultNotReady
from consentry.ingest.schemas import SchemaRegistry
from consentry.storage.engine import Store
from consentry.subjects.resolve import Subjects

# What a subject reading their own result must have proved in the session they read it in:
# control of an identity on record (a mailed code, a link sent to them), beside the request's
# own verification; a link minted with no verification discloses nothing (docs/decisions.md).
READER_LEVEL = Level.REASONABLE
JSON = "application/json"
CSV = "text/csv"


@dataclass(frozen=True, slots=True)
class Result:
    """A request's result: a JSON `document` (what was done, or a categories-only report), or
    a `stream` of bytes of `media_type` (the report or copy, streamed from the store)."""

    request_id: str
    type: RequestType
    media_type: str
    document: dict[str, Any] | None = None
    stream: Iterator[bytes] | None = None

    @property
    def extension(self) -> str:
        return "csv" if self.media_type == CSV else "json"

    def chunks(self) -> Iterator[bytes]:
        """The result as bytes: the stream, or the document encoded as the API encodes it."""
        if self.stream is not None:
            yield from self.stream
            return
        yield json.dumps(
            self.document, ensure_ascii=False, allow_nan=False, separators=(",", ":")
        ).encode()


class Results:
    """Reads results; every read that discloses is audited (`request:result:read`)."""

    def __init__(
        self,
        store: Store,
        requests: Requests,
        subjects: Subjects,
        purposes: PurposeRegistry,
        schemas: SchemaRegistry,
        downstream: Downstream,
        phone_region: str = "",
    ) -> None:
        self.store = store
        self.requests = requests
        self.reports = Reports(store, subjects, downstream, phone_region)
        self.subjects = subjects
        self.purposes = purposes
        self.schemas = schemas
        self.downstream = downstream

    def read(
        self,
        request_id: str,
        *,
        actor: str,
        csv: bool = False,
        subject_id: str | None = None,
        reader_level: Level = Level.NONE,
    ) -> Result:
        """The result of `request_id`, read by `actor`. ResultNotReady unless the request is
        completed (an erasure: verified) and verified to the level its subject needs now;
        SubjectErased (before the first byte) when its subject's data is gone. With
        `subject_id`, a subject reading their own report or copy: a request of anyone else,
        or one with no file for a result, is RequestNotFound, as one that does not exist
        (the subject learns nothing of others' requests). A portability copy is CSV when
        the request asked for CSV or `csv` is set, JSON otherwise. A subject reading their
        own is themselves verified to `reader_level` (the portal session's way in), which must
        reach READER_LEVEL (or the request's own level, if lower) whoever verified the
        request: ResultNotReady otherwise."""
        request = self.requests.get(request_id)
        if subject_id is not None and (
            request.subject_id != subject_id or request.type not in DOWNLOADABLE
        ):
            raise RequestNotFound(f"you have no report or copy numbered {request_id}")
        if request.status is not Status.COMPLETED and request.type is not RequestType.ERASURE:
            raise ResultNotReady(f"request {request_id} is {request.status.value}")
        if request.verified_at is None:
            raise ResultNotReady(f"request {request_id} is not verified")
        with self.store.write() as conn:
            # The level its subject needs as it is now: one who became US-CA after the
            # verification is not disclosed at `reasonable`.
            request = self.requests.required_now(conn, request, actor=actor)
            reader_met = subject_id is None or reader_level.rank >= min(
                request.required.rank, READER_LEVEL.rank
            )
            if level_met(request) and reader_met:
                audit.record(
                    conn,
                    AuditAction.REQUEST_RESULT_READ,
                    actor=actor,
                    subject_id=request.subject_id,
                    details={"request_id": request_id},
                )
        if not reader_met:
            raise ResultNotReady(
                "the report is disclosed to a session that proved control of an identity on "
                f"record; this session is verified at {reader_level.value}",
                required=READER_LEVEL.value,
            )
        if not level_met(request):
            raise ResultNotReady(
                f"request {request_id} is verified below the level its subject now needs "
                f"({request.required.value})"
            )
        if request.type not in DOWNLOADABLE or request.subject_id is None:
            done = {
                "request_id": request_id,
                "type": request.type.value,
                "status": request.status.value,
                "subject_found": request.subject_id is not None,
                **(request.result or {}),
                "downstream": self.requests.acks(request_id),
            }
            return Result(request_id, request.type, JSON, document=done)
        owner = request.subject_id
        with self.store.read() as conn:
            # Before the first byte: an erased subject's report is a SubjectErased, not a
            # broken stream; its categories report too, rather than one drawn from what the
            # erasure retained (docs/decisions.md).
            self.subjects.keys.sealer(conn, owner)
            purposes = self.purposes.all(conn)
            schemas = self.schemas.all(conn) if request.type is RequestType.PORTABILITY else None
        if request.scope is Scope.CATEGORIES:
            # What is held, from where, why and for whom: no value of it (regs §7062(b)).
            report = categories.report(
                self.store,
                self.downstream,
                self.schemas,
                self.purposes,
                owner,
                request_id=request_id,
            )
            return Result(request_id, request.type, JSON, document=report)
        if schemas is None:
            body = self.reports.access(owner, purposes, request_id=request_id)
            return Result(request_id, request.type, JSON, stream=body)
        provided = Provided(purposes, schemas)
        if request.format == "csv" or csv:
            return Result(
                request_id, request.type, CSV, stream=self.reports.portable_csv(owner, provided)
            )
        body = self.reports.portable_json(owner, provided, request_id=request_id)
        return Result(request_id, request.type, JSON, stream=body)
