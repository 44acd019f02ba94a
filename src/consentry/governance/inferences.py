"""Model inferences (Art. 22): recorded against the subject's consent like events, output and
data slice sealed under the subject's key; contested, then reviewed by a person (Art. 22(3));
listed in the subject's access report with their logic, significance and consequences."""

from __future__ import annotations

import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import msgspec
from sqlalchemy import Connection

from consentry import clock
from consentry.audit import log as audit
from consentry.audit.events import AuditAction
from consentry.consent import policy
from consentry.consent.models import AutomatedDecisionBasis, Purpose, SubjectConsent
from consentry.consent.service import ConsentService
from consentry.errors import (
    AutomatedDecisionBasisRequired,
    ConsentExpired,
    EprivacyConsentRequired,
    ExplicitGrantRequired,
    InferenceAlreadyContested,
    InferenceNotContestable,
    InferenceNotContested,
    InferenceNotFound,
    InferenceRefused,
    NoConsent,
    ProcessingRestricted,
    SpecialCategoryDecisionRefused,
    SpecialCategoryNotAllowed,
    SubjectErased,
    UnknownInputEvent,
    UnknownPurpose,
)
from consentry.ingest.schemas import CompiledSchema, SchemaRegistry
from consentry.keys.envelope import Sealer
from consentry.storage import inferences as sql
from consentry.storage.configuration import config_version
from consentry.storage.engine import AnyRow, Store
from consentry.subjects.models import SubjectRef
from consentry.subjects.resolve import Subjects

_ENC = msgspec.json.Encoder(order="sorted")
_DEC = msgspec.json.Decoder()
# What a sealed blob is bound to, with the inference id: moved to another row, it no longer opens.
CONTENT_AAD = b"consentry:inference:"
REVIEW_AAD = b"consentry:inference-review:"

RECORDED = "recorded"
CONTESTED = "contested"
REVIEWED = "reviewed"

# Each code policy.inference_refusal gives, and the error that carries it.
REFUSALS: dict[str, type[InferenceRefused] | type[SubjectErased]] = {
    "subject_erased": SubjectErased,
    "restricted": ProcessingRestricted,
    "eprivacy_consent_required": EprivacyConsentRequired,
    "expired_consent": ConsentExpired,
    "no_consent": NoConsent,
    "special_category_not_allowed": SpecialCategoryNotAllowed,
    "automated_decision_basis_required": AutomatedDecisionBasisRequired,
    "explicit_grant_required": ExplicitGrantRequired,
    "special_category_decision_refused": SpecialCategoryDecisionRefused,
}

BASES = {
    AutomatedDecisionBasis.CONTRACT: "it is necessary for a contract with you (Art. 22(2)(a))",
    AutomatedDecisionBasis.LAW: "a law that lays down safeguards for you authorises it "
    "(Art. 22(2)(b))",
    AutomatedDecisionBasis.EXPLICIT_CONSENT: "you gave your explicit consent (Art. 22(2)(c))",
}


class Outcome(StrEnum):
    """What a person's review of a contested inference concluded (Art. 22(3))."""

    UPHELD = "upheld"
    OVERTURNED = "overturned"
    AMENDED = "amended"


@dataclass(frozen=True, slots=True)
class NewInference:
    model: str
    version: str
    purpose: str
    ref: SubjectRef
    event_ids: tuple[str, ...]
    # Any JSON: may be personal, so sealed (as `output`).
    data_slice: Any
    output: Any
    automated_decision: bool
    significant_effect: bool


def content_aad(inference_id: str) -> bytes:
    return CONTENT_AAD + inference_id.encode()


def review_aad(inference_id: str) -> bytes:
    return REVIEW_AAD + inference_id.encode()


class Inferences:
    """Records, contests and reviews inferences; every step audited, personal content sealed."""

    def __init__(
        self, store: Store, subjects: Subjects, consent: ConsentService, schemas: SchemaRegistry
    ) -> None:
        self.store = store
        self.subjects = subjects
        self.consent = consent
        self.schemas = schemas

    def record(self, new: NewInference, *, actor: str) -> dict[str, Any]:
        """Store the inference when the subject's consent and Art. 9 and 22 allow it; else
        raise the refusal's error (nothing stored, nobody created)."""
        with self.store.write() as conn:
            version = config_version(conn)
            purposes = self.consent.registry.all(conn, version)
            purpose = purposes.get(new.purpose)
            if purpose is None:
                raise UnknownPurpose(f"no purpose {new.purpose!r}", purpose=new.purpose)
            subject_id = self.subjects.resolve(conn, new.ref, actor=actor).subject.subject_id
            state = self.consent.cache.for_commit(conn, [subject_id]).get(
                subject_id, SubjectConsent(subject_id=subject_id)
            )
            wanted = list(dict.fromkeys(new.event_ids))
            rows = sql.input_events(conn, subject_id, wanted)
            if len(rows) < len(wanted):
                # The same answer for an id stored for nobody and one of another subject.
                raise UnknownInputEvent(
                    "an input event is not stored for this subject", subject_id=subject_id
                )
            special = purpose.special_category_condition is not None or special_inputs(
                rows, self.schemas.all(conn, version)
            )
            code = policy.inference_refusal(
                purpose,
                purposes,
                state,
                terminal=policy.terminal_only(new.ref),
                significant_decision=new.automated_decision and new.significant_effect,
                special_inputs=special,
                now=clock.now(),
            )
            if code is not None:
                raise REFUSALS[code](_REFUSAL_DETAIL[code], purpose=purpose.key)
            inference_id = "inf_" + secrets.token_hex(12)
            sealer = self.subjects.keys.sealer(conn, subject_id)
            content = {"output": new.output, "slice": new.data_slice}
            now = clock.now()
            values = {
                "inference_id": inference_id,
                "subject_id": subject_id,
                "purpose": purpose.key,
                "model": new.model,
                "model_version": new.version,
                "automated_decision": new.automated_decision,
                "significant_effect": new.significant_effect,
                "special_inputs": special,
                "input_events": _ENC.encode(wanted).decode(),
                "sealed": sealer.seal(_ENC.encode(content), content_aad(inference_id)),
                "created_at": now,
                "status": RECORDED,
            }
            sql.insert_inference(conn, values)
            self.consent.registry.mark_used(conn, [purpose.key], purposes)
            audit.record(
                conn,
                AuditAction.INFERENCE_RECORDED,
                actor=actor,
                subject_id=subject_id,
                details={
                    "inference_id": inference_id,
                    "purpose": purpose.key,
                    "model": new.model,
                    "version": new.version,
                    "automated_decision": new.automated_decision,
                    "significant_effect": new.significant_effect,
                    "special_inputs": special,
                    "inputs": len(wanted),
                },
            )
            row = sql.get_inference(conn, inference_id)
            return self._out(conn, _found(row, inference_id), purposes)

    def get(self, inference_id: str, *, actor: str) -> dict[str, Any]:
        """The inference with its output, inputs and review, opened: a read of personal data,
        audited (who read which inference of whom, never its content)."""
        with self.store.write() as conn:
            shown = self._opened(conn, inference_id)
            audit.record(
                conn,
                AuditAction.INFERENCE_READ,
                actor=actor,
                subject_id=shown["subject_id"],
                details={"inference_id": inference_id},
            )
            return shown

    def _show(self, inference_id: str) -> dict[str, Any]:
        """The inference opened, after a contest or a review (audited as that)."""
        with self.store.read() as conn:
            return self._opened(conn, inference_id)

    def _opened(self, conn: Connection, inference_id: str) -> dict[str, Any]:
        row = _found(sql.get_inference(conn, inference_id), inference_id)
        return self._out(conn, row, self.consent.registry.all(conn))

    def contest(self, inference_id: str, grounds: str | None, *, actor: str) -> dict[str, Any]:
        """Open a human review of an automated decision (Art. 22(3)); the subject's grounds,
        their point of view, sealed under their key."""
        with self.store.write() as conn:
            row = _found(sql.get_inference(conn, inference_id, lock=True), inference_id)
            if not row.automated_decision:
                raise InferenceNotContestable(
                    "only a decision made by automated means can be contested (Art. 22(3)); "
                    "object to the processing instead (Art. 21)",
                    inference_id=inference_id,
                )
            if row.status != RECORDED:
                raise InferenceAlreadyContested(
                    "the inference is contested already", inference_id=inference_id
                )
            sealer = self.subjects.keys.sealer(conn, row.subject_id)
            texts = {"grounds": grounds}
            sql.update_inference(
                conn,
                inference_id,
                {
                    "status": CONTESTED,
                    "contested_at": clock.now(),
                    "review_sealed": sealer.seal(_ENC.encode(texts), review_aad(inference_id)),
                },
            )
            audit.record(
                conn,
                AuditAction.INFERENCE_CONTESTED,
                actor=actor,
                subject_id=row.subject_id,
                details={"inference_id": inference_id},
            )
        return self._show(inference_id)

    def review(
        self, inference_id: str, outcome: Outcome, explanation: str, *, actor: str
    ) -> dict[str, Any]:
        """Record the outcome of the human review of a contested inference, by `actor` (the
        reviewer), with its explanation sealed under the subject's key."""
        with self.store.write() as conn:
            row = _found(sql.get_inference(conn, inference_id, lock=True), inference_id)
            if row.status != CONTESTED:
                raise InferenceNotContested(
                    "no review of this inference is open: contest it first",
                    inference_id=inference_id,
                )
            sealer = self.subjects.keys.sealer(conn, row.subject_id)
            texts = _open(sealer, row.review_sealed, review_aad(inference_id)) or {}
            texts["explanation"] = explanation
            sql.update_inference(
                conn,
                inference_id,
                {
                    "status": REVIEWED,
                    "reviewed_at": clock.now(),
                    "reviewer": actor,
                    "outcome": outcome.value,
                    "review_sealed": sealer.seal(_ENC.encode(texts), review_aad(inference_id)),
                },
            )
            audit.record(
                conn,
                AuditAction.INFERENCE_REVIEWED,
                actor=actor,
                subject_id=row.subject_id,
                details={"inference_id": inference_id, "outcome": outcome.value},
            )
        return self._show(inference_id)

    def _out(
        self, conn: Connection, row: AnyRow, purposes: Mapping[str, Purpose]
    ) -> dict[str, Any]:
        sealer = self.subjects.keys.sealer(conn, row.subject_id)
        item = report_item(row, sealer, purposes)
        if item["review"] is not None:
            # Staff see who reviewed; the subject's report says what was decided.
            item["review"]["reviewer"] = row.reviewer
        return {"subject_id": row.subject_id, **item}


def special_inputs(rows: Sequence[AnyRow], schemas: Mapping[str, CompiledSchema]) -> bool:
    """Whether an input event holds a special-category value (Art. 9/10): such a field, once
    kept, is always listed in the event's field_purposes (policy.field_purposes)."""
    for row in rows:
        schema = schemas.get(row.event_type)
        if schema is None or not schema.has_special or not row.field_purposes:
            continue
        kept: dict[str, Any] = _DEC.decode(row.field_purposes)
        if any(name in schema.fields and schema.fields[name].special for name in kept):
            return True
    return False


def report_item(row: AnyRow, sealer: Sealer, purposes: Mapping[str, Purpose]) -> dict[str, Any]:
    """The inference as the subject's access report lists it (Art. 15(1)(h)): what it was
    made from and what it said, opened, with the logic involved (the purpose's description:
    docs/decisions.md), its significance and its envisaged consequences."""
    inference_id = row.inference_id
    content = _open(sealer, row.sealed, content_aad(inference_id)) or {}
    texts = _open(sealer, row.review_sealed, review_aad(inference_id)) or {}
    purpose = purposes.get(row.purpose)
    review = None
    if row.status != RECORDED:
        review = {
            "contested_at": clock.rfc3339(row.contested_at),
            "grounds": texts.get("grounds"),
            "reviewed_at": clock.rfc3339(row.reviewed_at) if row.reviewed_at else None,
            "outcome": row.outcome,
            "explanation": texts.get("explanation"),
        }
    return {
        "inference_id": inference_id,
        "model": row.model,
        "version": row.model_version,
        "purpose": row.purpose,
        "created_at": clock.rfc3339(row.created_at),
        "inputs": {"event_ids": _DEC.decode(row.input_events), "slice": content.get("slice")},
        "output": content.get("output"),
        "automated_decision": row.automated_decision,
        "significant_effect": row.significant_effect,
        "special_inputs": row.special_inputs,
        "logic": _logic(row, purpose),
        "significance": _significance(row, purpose),
        "consequences": _consequences(row, purpose),
        "status": row.status,
        "review": review,
    }


def _logic(row: AnyRow, purpose: Purpose | None) -> str:
    model = f"model {row.model!r}, version {row.model_version!r}"
    if purpose is None or not purpose.description:
        name = row.purpose if purpose is None else purpose.name
        return f"Made by {model}, for the purpose {name!r}."
    return f"Made by {model}. {purpose.description}"


def _significance(row: AnyRow, purpose: Purpose | None) -> str:
    if not row.automated_decision:
        return (
            "An inference (a prediction, score or classification) used in this processing; "
            "no decision about you is made by automated means alone."
        )
    if not row.significant_effect:
        return (
            "A decision made by automated means that has no legal or similarly significant "
            "effect on you."
        )
    basis = None if purpose is None else purpose.automated_decision_basis
    why = "" if basis is None else f", made because {BASES[basis]}"
    return (
        "A decision made by automated means alone that has legal effects on you or similarly "
        f"significantly affects you (Art. 22(1)){why}."
    )


def _consequences(row: AnyRow, purpose: Purpose | None) -> str:
    name = row.purpose if purpose is None else purpose.name
    applied = f"The output shown is applied to you for {name!r}"
    if not row.automated_decision:
        return f"{applied}, together with other information and the judgement of our staff."
    return (
        f"{applied} as it stands. You may obtain human intervention, express your point of "
        "view and contest the decision (Art. 22(3)): a person reviews it and records the outcome."
    )


def _open(sealer: Sealer, blob: bytes | None, aad: bytes) -> dict[str, Any] | None:
    if blob is None:
        return None
    opened: dict[str, Any] = _DEC.decode(sealer.open(bytes(blob), aad))
    return opened


def _found(row: AnyRow | None, inference_id: str) -> AnyRow:
    if row is None:
        raise InferenceNotFound(f"no inference {inference_id}", inference_id=inference_id)
    return row


_REFUSAL_DETAIL = {
    "subject_erased": "the subject has been erased",
    "restricted": "processing of the subject's data is restricted (Art. 18)",
    "eprivacy_consent_required": "a subject known only by cookie or device ids needs a "
    "consent or strictly necessary purpose (ePrivacy Art. 5(3))",
    "expired_consent": "the subject's consent to the purpose has expired",
    "no_consent": "the subject does not allow the purpose",
    "special_category_not_allowed": "an input is special-category data (Art. 9), which this "
    "purpose may not process for this subject",
    "automated_decision_basis_required": "a significant automated decision needs the purpose's "
    "automated_decision_basis (Art. 22(2))",
    "explicit_grant_required": "the purpose's automated decisions rest on explicit consent "
    "(Art. 22(2)(c)); the subject's grant was not explicit",
    "special_category_decision_refused": "a significant automated decision on special-category "
    "data needs condition a or g of Art. 9(2) (Art. 22(4))",
}
