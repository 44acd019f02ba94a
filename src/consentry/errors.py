"""The one exception tree: every domain failure is a ConsentryError with a stable code."""

from __future__ import annotations

from typing import Any, ClassVar


class ConsentryError(Exception):
    """Base of every failure the product reports; `code` is stable and documented."""

    code: ClassVar[str] = "internal_error"
    title: ClassVar[str] = "Internal error"

    def __init__(self, detail: str | None = None, **context: Any) -> None:
        self.detail = detail or self.title
        self.context = context
        super().__init__(self.detail)


class InvalidRequest(ConsentryError):
    """The request cannot be understood as it stands."""

    code = "invalid_request"
    title = "Invalid request"


class MalformedJSON(InvalidRequest):
    code = "malformed_json"
    title = "Malformed JSON body"


class InvalidUtf8(MalformedJSON):
    """JSON is UTF-8 (RFC 8259 section 8.1): invalid bytes, or a lone surrogate escape."""

    code = "invalid_utf8"
    title = "Body is not valid UTF-8"


class JsonTooDeep(MalformedJSON):
    code = "json_too_deep"
    title = "JSON nested too deep"


class InvalidNumber(MalformedJSON):
    """NaN or Infinity (not JSON), a number beyond a double's range, an integer beyond 64 bits."""

    code = "invalid_number"
    title = "Number out of range"


class BodyNotObject(InvalidRequest):
    code = "body_not_object"
    title = "The body is not a JSON object"


class BodyTimeout(InvalidRequest):
    code = "body_timeout"
    title = "The body did not arrive in time"


class HeadTimeout(InvalidRequest):
    """A connection that did not finish a request head in time (answered by the protocol)."""

    code = "head_timeout"
    title = "The request head did not arrive in time"


class MalformedHTTP(InvalidRequest):
    """Refused by the HTTP parser before the app sees it (a bad header, a URL too long, ...)."""

    code = "malformed_http_request"
    title = "Malformed HTTP request"


class UnknownField(InvalidRequest):
    code = "unknown_field"
    title = "Unknown field"


class PayloadTooLarge(InvalidRequest):
    code = "payload_too_large"
    title = "Request body too large"


class UnsupportedMediaType(InvalidRequest):
    code = "unsupported_media_type"
    title = "Unsupported media type"


class InvalidIdentity(InvalidRequest):
    code = "invalid_identity"
    title = "Invalid identity"


class UnknownIdentityType(InvalidIdentity):
    code = "unknown_identity_type"
    title = "Unknown identity type"


class EmptyIdentities(InvalidIdentity):
    code = "empty_identities"
    title = "No identities given"


class InvalidSubjectRef(InvalidRequest):
    code = "invalid_subject_ref"
    title = "Invalid subject reference"


class InvalidCursor(InvalidRequest):
    code = "invalid_cursor"
    title = "Invalid cursor"


class Unauthenticated(ConsentryError):
    code = "unauthenticated"
    title = "A valid API key is required"


class Forbidden(ConsentryError):
    code = "forbidden"
    title = "The API key's role lacks this right"


class OriginNotAllowed(Forbidden):
    """A browser key used without an Origin, or from one it does not list."""

    code = "origin_not_allowed"
    title = "The key is not honoured from this origin"


class ClaimNotAllowed(Forbidden):
    """A grant through a browser key that claims what a visitor's browser cannot vouch for: a
    source other than the visitor's own channels, or evidence (a parent's authorisation, a
    confirmed opt-in) that only the site's server may attest."""

    code = "claim_not_allowed"
    title = "A browser key cannot vouch for this"


class SubjectNotAllowed(Forbidden):
    """A browser key's request names another subject than the one it vouches for."""

    code = "subject_not_allowed"
    title = "The key may act only for the subject the request names"


class InvalidIdentityProof(Forbidden):
    """A customer_id's identity_proof that is wrong, expired or too far ahead."""

    code = "invalid_identity_proof"
    title = "Invalid identity proof"


class NotFound(ConsentryError):
    code = "not_found"
    title = "Not found"


class SubjectNotFound(NotFound):
    code = "subject_not_found"
    title = "Subject not found"


class PurposeNotFound(NotFound):
    code = "purpose_not_found"
    title = "Purpose not found"


class ApiKeyNotFound(NotFound):
    code = "api_key_not_found"
    title = "API key not found"


class NoticeNotFound(NotFound):
    code = "notice_not_found"
    title = "Notice not found"


class IdentitySecretNotFound(NotFound):
    code = "identity_secret_not_found"
    title = "Identity secret not found"


class MethodNotAllowed(ConsentryError):
    code = "method_not_allowed"
    title = "Method not allowed"


class Conflict(ConsentryError):
    code = "conflict"
    title = "Conflict"


class IdentityConflict(Conflict):
    code = "identity_conflict"
    title = "Identities belong to different subjects"


class SubjectKeyDestroyed(ConsentryError):
    """The subject's data key is gone (crypto-shredded): its ciphertext cannot be read."""

    code = "subject_key_destroyed"
    title = "Subject data key destroyed"


class KeyUnwrapFailed(ConsentryError):
    """A wrapped key does not open under the key-encryption key: wrong master key or tampering."""

    code = "key_unwrap_failed"
    title = "Key cannot be unwrapped"


class InvalidSetting(ConsentryError):
    code = "invalid_setting"
    title = "Invalid setting"


class StorageUnavailable(ConsentryError):
    code = "storage_unavailable"
    title = "Storage unavailable"


class InvalidSystem(InvalidRequest):
    code = "invalid_system"
    title = "Invalid system"


class InvalidEndpoint(InvalidSystem):
    code = "invalid_endpoint"
    title = "Invalid endpoint URL"


class EndpointNotAllowed(InvalidEndpoint):
    """A loopback, link-local or private address (CONSENTRY_ALLOW_PRIVATE_ENDPOINTS)."""

    code = "endpoint_not_allowed"
    title = "Endpoint address not allowed"


class InvalidRegion(InvalidSystem):
    code = "invalid_region"
    title = "Unknown region"


class InvalidTransferMechanism(InvalidSystem):
    code = "invalid_transfer_mechanism"
    title = "Unknown transfer mechanism"


class InvalidCcpaRole(InvalidSystem):
    code = "invalid_ccpa_role"
    title = "Unknown CCPA role"


class SystemNotFound(NotFound):
    code = "system_not_found"
    title = "System not found"


class InvalidConfigFile(InvalidRequest):
    """`consentry apply`: a configuration file that is not YAML, or not a mapping of ids."""

    code = "invalid_config_file"
    title = "Invalid configuration file"


class FieldNotFound(NotFound):
    """Lineage asked of a field its event type's schema does not have."""

    code = "field_not_found"
    title = "No such field in the schema"


class InvalidVendor(InvalidRequest):
    code = "invalid_vendor"
    title = "Invalid vendor"


class VendorNotFound(NotFound):
    code = "vendor_not_found"
    title = "Vendor not found"


class VendorInUse(Conflict):
    """A vendor that systems still name stays in the register (their DPA state comes from it)."""

    code = "vendor_in_use"
    title = "Vendor named by systems"


class MalformedYaml(InvalidRequest):
    code = "malformed_yaml"
    title = "Malformed YAML body"


class InvalidFideslang(InvalidRequest):
    """A fideslang document its own models refuse, or one Consentry cannot map (API.md,
    Governance: Interop with Fides)."""

    code = "invalid_fideslang"
    title = "Invalid fideslang"


class RightsNoticeNotFound(NotFound):
    code = "rights_notice_not_found"
    title = "Rights notice not found"


def all_error_classes() -> list[type[ConsentryError]]:
    """Every ConsentryError subclass, the base included, in a stable order."""
    seen: list[type[ConsentryError]] = []
    pending: list[type[ConsentryError]] = [ConsentryError]
    while pending:
        cls = pending.pop(0)
        if cls not in seen:
            seen.append(cls)
            pending.extend(cls.__subclasses__())
    return seen


class UnknownPurpose(InvalidRequest):
    code = "unknown_purpose"
    title = "Unknown purpose"


class InvalidPurpose(InvalidRequest):
    code = "invalid_purpose"
    title = "Invalid purpose definition"


class TopicHoldsRecords(Conflict):
    """A system would become a consumer of a consented topic, or a consumer's gate-relevant
    fields would change, while the topic holds records it may not read; the detail says when
    the last of them is gone (context: `topic`, `until`)."""

    code = "topic_holds_records"
    title = "The consented topic holds records this system may not read"


class LegalBasisLocked(Conflict):
    """A purpose's legal basis cannot change once a ledger entry, event or notice uses it."""

    code = "legal_basis_locked"
    title = "Legal basis locked"


class NoticeVersionConflict(Conflict):
    """A published notice version is immutable: it is the proof of what a customer saw."""

    code = "notice_version_conflict"
    title = "Notice version already published with other content"


class UnknownNotice(InvalidRequest):
    code = "unknown_notice"
    title = "Unknown notice or notice version"


class NoticeRequired(InvalidRequest):
    code = "notice_required"
    title = "A grant needs the notice the customer saw"


class NoticeMismatch(InvalidRequest):
    code = "notice_mismatch"
    title = "The notice does not cover the purpose"


class InvalidConsentState(InvalidRequest):
    code = "invalid_consent_state"
    title = "Consent state must be granted or denied"


class InvalidSource(InvalidRequest):
    code = "invalid_source"
    title = "Unknown consent source"


class InvalidAgeBand(InvalidRequest):
    code = "invalid_age_band"
    title = "Unknown age band"


class InvalidJurisdiction(InvalidRequest):
    code = "invalid_jurisdiction"
    title = "Unknown jurisdiction"


class ExplicitConsentRequired(InvalidRequest):
    code = "explicit_consent_required"
    title = "Explicit consent with evidence is required (Art. 9(2)(a))"


class ParentalAuthorizationRequired(InvalidRequest):
    code = "parental_authorization_required"
    title = "Parental authorisation is required below the digital consent age (Art. 8)"


class InvalidTCF(InvalidRequest):
    code = "invalid_tcf"
    title = "Malformed or unsupported TC string"


class NothingToRecord(InvalidRequest):
    code = "nothing_to_record"
    title = "The consent call names no purpose, TC string or GPC signal"


class InvalidSchema(InvalidRequest):
    code = "invalid_schema"
    title = "Invalid event schema"


class InvalidCategory(InvalidSchema):
    code = "invalid_category"
    title = "Not a fideslang data category"


class UnknownEventType(NotFound):
    code = "unknown_event_type"
    title = "No schema for this event type"


class InvalidBatch(InvalidRequest):
    code = "invalid_batch"
    title = "The body is not an events batch"


class BatchTooLarge(InvalidBatch):
    code = "batch_too_large"
    title = "Too many events in one batch"


class TooManyPurposes(Conflict):
    """Stored events carry their purposes as bits of one 63-bit mask."""

    code = "too_many_purposes"
    title = "Too many purposes"


class InvalidQuery(InvalidRequest):
    code = "invalid_query"
    title = "Invalid query"


class FieldNotReadable(InvalidQuery):
    """A field that cannot be grouped by or read for this purpose (sealed, or not its own)."""

    code = "field_not_readable"
    title = "Field not readable for this purpose"


class TooManyGroups(InvalidQuery):
    """A group_by that makes more distinct groups than one answer holds."""

    code = "too_many_groups"
    title = "Too many groups"


class InvalidPrivacyParameters(InvalidQuery):
    code = "invalid_dp_parameters"
    title = "Invalid differential privacy parameters"


class PrivacyBudgetExhausted(ConsentryError):
    code = "privacy_budget_exhausted"
    title = "Privacy budget exhausted"


class ExportNotFound(NotFound):
    code = "export_not_found"
    title = "No such export"


class ExportNotReady(Conflict):
    code = "export_not_ready"
    title = "Export not ready"


class ProofOutOfRange(InvalidRequest):
    """Positions that cannot form a proof: index >= size, first < 1 or first > second."""

    code = "proof_out_of_range"
    title = "No proof exists for these positions"


class TreeSizeUnknown(NotFound):
    """A proof asked about a tree larger than the audit log is now."""

    code = "tree_size_unknown"
    title = "The audit log has not reached that size"


class AuditTreeDamaged(ConsentryError):
    """A node the audit tree needs is missing or does not fit: the stored log was altered."""

    code = "audit_tree_damaged"
    title = "The stored audit tree is damaged"


class RequestNotFound(NotFound):
    code = "request_not_found"
    title = "No such data-subject request"


class InvalidTransition(Conflict):
    """The request's state does not allow that step (the table in dsr/models.py)."""

    code = "invalid_transition"
    title = "Not allowed in the request's current state"


class ExtensionNotAllowed(Conflict):
    code = "extension_not_allowed"
    title = "The deadline cannot be extended"


class IntegrityMismatch(Conflict):
    code = "integrity_mismatch"
    title = "old_sha256 does not match the current value"


class SubjectErased(Conflict):
    code = "subject_erased"
    title = "The subject has been erased"


class NotRestricted(Conflict):
    code = "not_restricted"
    title = "The subject is not restricted"


class ResultNotReady(Conflict):
    code = "result_not_ready"
    title = "The request has no result yet"


class VerificationRunning(Conflict):
    """A verification of the whole audit log asked for while this process runs one."""

    code = "verification_running"
    title = "The audit log is being verified"


class UnexpectedAcknowledgement(Conflict):
    code = "unexpected_acknowledgement"
    title = "That system owes this request no acknowledgement"


class DecisionNotPending(Conflict):
    code = "decision_not_pending"
    title = "No objection to that purpose awaits a decision"


class VerificationNotIndependent(InvalidRequest):
    """Regs §7060(h): a rectification is verified with information other than the value it
    corrects; the verification must say what it matched (`matched`)."""

    code = "verification_not_independent"
    title = "The verification matched the value being corrected"


class AgentProofRequired(InvalidRequest):
    """Regs §7063(a): a request made by an authorised agent carries the agent's proof of
    authorisation."""

    code = "agent_proof_required"
    title = "An authorised agent's request needs proof of authorisation"


class LinkLevelNotAllowed(InvalidRequest):
    """A portal link verifies at `high` only when the collector re-authenticated the customer
    (API.md, Portal entry)."""

    code = "link_level_not_allowed"
    title = "A portal link at that level needs re-authentication"


class PortalSessionInvalid(Unauthenticated):
    """No portal session, or one that ended (idle, past its lifetime, or signed out)."""

    code = "portal_session_invalid"
    title = "The portal session has ended"


class PortalLinkInvalid(Forbidden):
    """A portal link that is not one Consentry signed, or is past its 15 minutes."""

    code = "portal_link_invalid"
    title = "The portal link is not valid"


class PortalCodeInvalid(Forbidden):
    """A portal code that is wrong, past its 10 minutes, spent after 3 tries, or was never
    sent: the same answer whichever it is, and whether or not the address is known."""

    code = "portal_code_invalid"
    title = "The code is not valid"


class PortalCodesDisabled(NotFound):
    """E-mail codes asked for while no mail server is configured (CONSENTRY_SMTP_URL)."""

    code = "portal_codes_disabled"
    title = "E-mail codes are not offered"


class RateLimited(ConsentryError):
    """Over a limit (portal codes: 5 requests an hour, a one-hour block after 10 failures in
    a day); `retry_after` says in how many seconds to try again."""

    code = "rate_limited"
    title = "Too many requests"


class InvalidWindow(InvalidRequest):
    """A summary window whose `from` is after its `to` (API.md, Operations: summary)."""

    code = "invalid_window"
    title = "Invalid time window"


class InvalidIncident(InvalidRequest):
    """An incident's times in the future or out of order (context `field` and `rule`)."""

    code = "invalid_incident"
    title = "Invalid incident"


class NotNotifiableReasonRequired(InvalidIncident):
    """Risk `none` (no notice to the authority, Art. 33(1)) is recorded only with its reason."""

    code = "not_notifiable_reason_required"
    title = "A reason is required when the breach is not notifiable"


class UnknownSystem(InvalidRequest):
    code = "unknown_system"
    title = "Unknown system"


class IncidentNotFound(NotFound):
    code = "incident_not_found"
    title = "Incident not found"


class AssessmentNotFound(NotFound):
    code = "assessment_not_found"
    title = "Assessment not found"


class InvalidAssessment(InvalidRequest):
    """A review dated in the future (context `field`)."""

    code = "invalid_assessment"
    title = "Invalid assessment review"


class DpoAdviceRequired(InvalidAssessment):
    """An assessment is approved, rejected or sent to prior consultation only with the DPO's
    advice on record (Art. 35(2))."""

    code = "dpo_advice_required"
    title = "The DPO's advice is required"


class IncidentClosed(Conflict):
    code = "incident_closed"
    title = "The incident is closed"


class InvalidNotification(InvalidRequest):
    """A notification dated in the future or before the breach was detected."""

    code = "invalid_notification"
    title = "Invalid notification"


class UnknownNotificationRecipient(InvalidNotification):
    code = "unknown_notification_recipient"
    title = "Unknown notification recipient"


class DelayReasonsRequired(InvalidNotification):
    """A notice given after its deadline carries the reasons for the delay (Art. 33(1))."""

    code = "delay_reasons_required"
    title = "Delay reasons required"


class LateReasonRequired(InvalidRequest):
    """Closing an incident whose notice was late, or never given, needs a `late_reason`."""

    code = "late_reason_required"
    title = "Late reason required"


# People who sign in to the pages (people/).


class InvalidEmail(InvalidRequest):
    code = "invalid_email"
    title = "Not an e-mail address"


class PersonExists(Conflict):
    """An account for that e-mail address exists already (one account per address)."""

    code = "person_exists"
    title = "An account for that e-mail exists"


class PersonNotFound(NotFound):
    code = "person_not_found"
    title = "Person not found"


class EnrolmentInvalid(ConsentryError):
    """An enrolment link that is unknown, expired or used: one answer for all three, so a
    link's state tells nothing about the account."""

    code = "enrolment_invalid"
    title = "The enrolment link is not valid"


class EnrolmentOutOfOrder(Conflict):
    """The second factor is confirmed after the password is set, never before."""

    code = "enrolment_out_of_order"
    title = "Set a password first"


class PasswordRejected(InvalidRequest):
    """A password the policy refuses; `reason`: too_short, too_long or contains_email."""

    code = "password_rejected"
    title = "Password refused"


class TotpCodeInvalid(InvalidRequest):
    """At enrolment: the code is not the authenticator's current one (or was used)."""

    code = "totp_code_invalid"
    title = "The code is not valid"


class SignInFailed(Unauthenticated):
    """Unknown e-mail, wrong password or wrong code: one answer for all, on purpose."""

    code = "sign_in_failed"
    title = "Sign-in failed"


class AccountLocked(ConsentryError):
    """Too many failed sign-ins in a row; `unlocks_at` says when it may be tried again."""

    code = "account_locked"
    title = "Account locked"


class SessionInvalid(Unauthenticated):
    """No session, or one that ended (signed out, idle, past its lifetime, person disabled)."""

    code = "session_invalid"
    title = "Sign in again"


class InferenceRefused(Conflict):
    """A model inference the subject's consent or the law does not allow (Art. 6, 9, 22)."""

    code = "inference_refused"
    title = "The inference is not allowed"


class NoConsent(InferenceRefused):
    code = "no_consent"
    title = "The subject does not allow the purpose"


class ConsentExpired(InferenceRefused):
    code = "expired_consent"
    title = "The subject's consent to the purpose has expired"


class EprivacyConsentRequired(InferenceRefused):
    code = "eprivacy_consent_required"
    title = "A subject known only by terminal ids needs a consent or strictly necessary purpose"


class ProcessingRestricted(InferenceRefused):
    code = "restricted"
    title = "Processing of the subject's data is restricted"


class AutomatedDecisionBasisRequired(InferenceRefused):
    code = "automated_decision_basis_required"
    title = "The purpose has no basis for significant automated decisions"


class ExplicitGrantRequired(InferenceRefused):
    code = "explicit_grant_required"
    title = "The purpose's automated decisions rest on explicit consent, not given"


class SpecialCategoryNotAllowed(InferenceRefused):
    code = "special_category_not_allowed"
    title = "The purpose may not process this subject's special-category data"


class SpecialCategoryDecisionRefused(InferenceRefused):
    code = "special_category_decision_refused"
    title = "A significant automated decision on special-category data needs Art. 9(2)(a) or (g)"


class UnknownInputEvent(InvalidRequest):
    code = "unknown_input_event"
    title = "An input event is not stored for this subject"


class InferenceNotFound(NotFound):
    code = "inference_not_found"
    title = "No such inference"


class InferenceNotContestable(Conflict):
    code = "inference_not_contestable"
    title = "Only an automated decision can be contested"


class InferenceAlreadyContested(Conflict):
    code = "inference_already_contested"
    title = "The inference is contested already"


class InferenceNotContested(Conflict):
    code = "inference_not_contested"
    title = "No review of the inference is open"
