"""What a browser key may act on: the one subject its request names in X-Consentry-Subject,
by cookie_id or device_id, or by a customer_id the site vouches for (API.md, Browser SDK)."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from urllib.parse import parse_qsl

from consentry.auth.limits import grants
from consentry.errors import ClaimNotAllowed, InvalidSubjectRef, SubjectNotAllowed
from consentry.subjects.models import Identity, IdentityType
from consentry.subjects.refs import subject_ref

HEADER = "X-Consentry-Subject"
# navigator.sendBeacon sets no header: an events batch sent that way carries the key and the
# subject in the query string (which the access log drops), its JSON as text/plain.
BEACON_PATH = "/v1/events"
BEACON_KEY = "consentry_key"
BEACON_SUBJECT = "consentry_subject"
# The identities a browser may name its visitor by; the rest need a secret key.
TYPES = frozenset({IdentityType.COOKIE_ID, IdentityType.DEVICE_ID, IdentityType.CUSTOMER_ID})
# The sources a grant through a browser key may give: the visitor's own channels.
GRANT_SOURCES = frozenset({"web", "app", "gpc", "tcf"})
PROOF = "identity_proof"
EXPIRES = "expires_at"
_MAX_HEADER = 4096
# verify(customer_id, expires_at, identity_proof): raises InvalidIdentityProof when wrong.
Verify = Callable[[str, str, str], None]


class Scope(StrEnum):
    """How a route a browser key may reach names its subject."""

    NONE = "none"  # purposes and notices: no subject at all
    BODY = "body"  # the body's `subject`
    EVENTS = "events"  # every event's `subject`
    PATH = "path"  # the path's {subject_id}


@dataclass(frozen=True, slots=True)
class Vouched:
    """The identities (normalised) a browser request names its one subject by."""

    identities: frozenset[Identity]

    def covers(self, subject_id: str | None, pairs: Sequence[tuple[str, str]] | None) -> None:
        """Accept a subject reference of the body made only of vouched identities; raise
        SubjectNotAllowed otherwise (a subject_id is never vouched for)."""
        if subject_id is not None:
            raise SubjectNotAllowed(
                f"a browser key names its subject by identities in {HEADER}, not by subject_id"
            )
        if not pairs:
            raise InvalidSubjectRef("a subject needs identities")
        ref = subject_ref(None, pairs)
        if not set(ref.identities) <= self.identities:
            raise SubjectNotAllowed(f"the request names another subject than {HEADER} does")


def vouched(header: str | None, verify: Verify) -> Vouched:
    """The subject `header` names (urlencoded: cookie_id=..., device_id=..., or customer_id=...
    with identity_proof=... and expires_at=...), its customer_id's proof checked."""
    if not header:
        raise SubjectNotAllowed(
            f"a browser key's request names its subject in {HEADER} "
            "(cookie_id, device_id, or customer_id with identity_proof and expires_at)"
        )
    if len(header) > _MAX_HEADER:
        raise InvalidSubjectRef(f"{HEADER} is longer than {_MAX_HEADER} characters")
    try:
        pairs = parse_qsl(header, keep_blank_values=True, strict_parsing=True, errors="strict")
    except (ValueError, UnicodeDecodeError):
        raise InvalidSubjectRef(f"{HEADER} is not urlencoded name=value pairs") from None
    fields: dict[str, str] = {}
    for name, value in pairs:
        if name in fields:
            raise InvalidSubjectRef(f"{HEADER} names {name} twice")
        fields[name] = value
    allowed = {t.value for t in TYPES} | {PROOF, EXPIRES}
    unknown = sorted(set(fields) - allowed)
    if unknown:
        raise InvalidSubjectRef(
            f"{HEADER} may name cookie_id, device_id and customer_id (with {PROOF} and "
            f"{EXPIRES}), not {', '.join(unknown)}"
        )
    identities = [(t, fields[t]) for t in sorted(fields) if t in {x.value for x in TYPES}]
    if not identities:
        raise InvalidSubjectRef(f"{HEADER} names no cookie_id, device_id or customer_id")
    customer = fields.get(IdentityType.CUSTOMER_ID.value)
    if customer is not None:
        if PROOF not in fields or EXPIRES not in fields:
            raise InvalidSubjectRef(f"a customer_id needs {PROOF} and {EXPIRES}")
        verify(customer, fields[EXPIRES], fields[PROOF])
    elif PROOF in fields or EXPIRES in fields:
        raise InvalidSubjectRef(f"{PROOF} and {EXPIRES} go with a customer_id")
    return Vouched(frozenset(subject_ref(None, identities).identities))


def check_body(vouched_subject: Vouched, body: object) -> None:
    """A JSON body's `subject` must be the vouched subject (the handler refuses a body without
    one), and a grant claims no more than a browser can vouch for (`check_grant`)."""
    if not isinstance(body, dict):
        return
    check_grant(body)
    if "subject" not in body:
        return
    subject_id, pairs = _wire_ref(body["subject"])
    vouched_subject.covers(subject_id, pairs)


def check_grant(body: dict[str, object]) -> None:
    """A consent write through a browser key that grants anything (a purpose, or a TC string):
    its source is one of the visitor's own channels (GRANT_SOURCES) and it carries no
    `evidence` (a parent's authorisation, a confirmed opt-in: only the site's server, with a
    secret key, may attest those). Denials and withdrawals are never held back by this."""
    if not grants(body):
        return
    source = body.get("source")
    if source not in GRANT_SOURCES:
        raise ClaimNotAllowed(
            f"a grant through a browser key has source {', '.join(sorted(GRANT_SOURCES))}"
        )
    if body.get("evidence") is not None:
        raise ClaimNotAllowed(
            "a grant through a browser key carries no evidence: the site's server attests it"
        )


def check_events(
    vouched_subject: Vouched,
    refs: Iterable[tuple[str | None, Sequence[tuple[str, str]] | None] | None],
) -> None:
    """Every event of the batch that names a subject names the vouched one (an event with
    none is refused by the pipeline as invalid_event)."""
    for ref in refs:
        if ref is not None:
            vouched_subject.covers(*ref)


def _wire_ref(raw: object) -> tuple[str | None, list[tuple[str, str]] | None]:
    if not isinstance(raw, dict):
        raise InvalidSubjectRef("subject must be an object")
    subject_id = raw.get("subject_id")
    if subject_id is not None and not isinstance(subject_id, str):
        raise InvalidSubjectRef("subject_id must be a string")
    identities = raw.get("identities")
    if identities is None:
        return subject_id, None
    if not isinstance(identities, list):
        raise InvalidSubjectRef("identities must be a list")
    pairs = []
    for item in identities:
        if not (
            isinstance(item, dict)
            and isinstance(item.get("type"), str)
            and isinstance(item.get("value"), str)
        ):
            raise InvalidSubjectRef("each identity is {type, value}")
        pairs.append((item["type"], item["value"]))
    return subject_id, pairs
