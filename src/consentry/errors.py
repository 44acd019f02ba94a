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


class NotFound(ConsentryError):
    code = "not_found"
    title = "Not found"


class SubjectNotFound(NotFound):
    code = "subject_not_found"
    title = "Subject not found"


class ApiKeyNotFound(NotFound):
    code = "api_key_not_found"
    title = "API key not found"


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
