"""Field classification (API.md, Governance): for each field of sample events, a suggested
fideslang data category, treatment and confidence, from the field's name and from the
redaction recognizers run over its sample values. A suggestion, never a decision: the schema
an operator writes is what ingest enforces, and ingest screens the values of fields declared
non-personal anyway (FieldSpec.screened)."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from consentry.errors import InvalidRequest
from consentry.ingest.models import FieldSpec, FieldType, Treatment, is_personal
from consentry.ingest.redact import Kind, find
from consentry.ingest.schemas import NAME, TREATABLE

MAX_SAMPLES = 1000
MAX_VALUE_CHARS = 10_000
NON_PERSONAL = "system.operations"

# What a value the recognizers find whole is.
_KIND_CATEGORY = {
    Kind.EMAIL: "user.contact.email",
    Kind.PHONE: "user.contact.phone_number",
    Kind.CARD: "user.financial.credit_card",
    Kind.IBAN: "user.financial.bank_account",
    Kind.IP: "user.device.ip_address",
    Kind.US_SSN: "user.government_id.national_identification_number",
    Kind.UK_NINO: "user.government_id.national_identification_number",
}
_FREE_TEXT = "user.content"

# Names, as lower-case words (camelCase and snake_case split), that say what a field holds:
# (words that must all be among the name's words, category, strength). The first rule that
# matches wins, so the specific come before the general ("ip address" before "address").
_NAME_RULES: tuple[tuple[frozenset[str], str, float], ...] = tuple(
    (frozenset(words.split()), category, strength)
    for words, category, strength in (
        ("email", "user.contact.email", 0.9),
        ("mail", "user.contact.email", 0.8),
        ("phone", "user.contact.phone_number", 0.9),
        ("mobile", "user.contact.phone_number", 0.8),
        ("telephone", "user.contact.phone_number", 0.9),
        ("tel", "user.contact.phone_number", 0.8),
        ("msisdn", "user.contact.phone_number", 0.9),
        ("fax", "user.contact.fax_number", 0.9),
        ("ip", "user.device.ip_address", 0.9),
        ("ipv4", "user.device.ip_address", 0.9),
        ("ipv6", "user.device.ip_address", 0.9),
        ("iban", "user.financial.bank_account", 0.9),
        ("account number", "user.financial.bank_account", 0.8),
        ("bank account", "user.financial.bank_account", 0.9),
        ("sort code", "user.financial.bank_account", 0.8),
        ("card number", "user.financial.credit_card", 0.9),
        ("pan", "user.financial.credit_card", 0.7),
        ("ssn", "user.government_id.national_identification_number", 0.9),
        ("nino", "user.government_id.national_identification_number", 0.9),
        ("national id", "user.government_id.national_identification_number", 0.9),
        ("passport", "user.government_id.passport_number", 0.9),
        ("licence", "user.government_id.drivers_license_number", 0.7),
        ("license", "user.government_id.drivers_license_number", 0.7),
        ("first name", "user.name.first", 0.9),
        ("given name", "user.name.first", 0.9),
        ("firstname", "user.name.first", 0.9),
        ("forename", "user.name.first", 0.9),
        ("last name", "user.name.last", 0.9),
        ("lastname", "user.name.last", 0.9),
        ("surname", "user.name.last", 0.9),
        ("family name", "user.name.last", 0.9),
        ("full name", "user.name", 0.9),
        ("fullname", "user.name", 0.9),
        ("customer name", "user.name", 0.8),
        ("contact name", "user.name", 0.8),
        ("username", "user.account.username", 0.8),
        ("user name", "user.account.username", 0.8),
        ("login", "user.account.username", 0.6),
        ("password", "user.authorization.password", 0.9),
        ("passcode", "user.authorization.credentials", 0.9),
        ("pin", "user.authorization.credentials", 0.6),
        ("postcode", "user.contact.address.postal_code", 0.9),
        ("zip", "user.contact.address.postal_code", 0.8),
        ("postal", "user.contact.address.postal_code", 0.8),
        ("street", "user.contact.address.street", 0.9),
        ("address", "user.contact.address", 0.7),
        ("city", "user.contact.address.city", 0.7),
        ("sex", "user.demographic.gender", 0.8),
        ("birth", "user.demographic.date_of_birth", 0.9),
        ("birthday", "user.demographic.date_of_birth", 0.9),
        ("birthdate", "user.demographic.date_of_birth", 0.9),
        ("dob", "user.demographic.date_of_birth", 0.9),
        ("age", "user.demographic.age_range", 0.7),
        ("gender", "user.demographic.gender", 0.9),
        ("religion", "user.demographic.religious_belief", 0.9),
        ("religious", "user.demographic.religious_belief", 0.9),
        ("ethnicity", "user.demographic.race_ethnicity", 0.9),
        ("race", "user.demographic.race_ethnicity", 0.6),
        ("political", "user.demographic.political_opinion", 0.9),
        ("sexual", "user.demographic.sexual_orientation", 0.9),
        ("orientation", "user.demographic.sexual_orientation", 0.6),
        ("marital", "user.demographic.marital_status", 0.9),
        ("diagnosis", "user.health_and_medical", 0.9),
        ("health", "user.health_and_medical", 0.8),
        ("medical", "user.health_and_medical", 0.9),
        ("medication", "user.health_and_medical", 0.9),
        ("allergy", "user.health_and_medical", 0.9),
        ("allergies", "user.health_and_medical", 0.9),
        ("symptom", "user.health_and_medical", 0.9),
        ("symptoms", "user.health_and_medical", 0.9),
        ("fingerprint", "user.biometric.fingerprint", 0.9),
        ("biometric", "user.biometric", 0.9),
        ("voiceprint", "user.biometric.voice", 0.9),
        ("criminal", "user.criminal_history", 0.9),
        ("conviction", "user.criminal_history", 0.9),
        ("convictions", "user.criminal_history", 0.9),
        ("latitude", "user.location.precise", 0.9),
        ("longitude", "user.location.precise", 0.9),
        ("lat", "user.location.precise", 0.8),
        ("lng", "user.location.precise", 0.8),
        ("lon", "user.location.precise", 0.8),
        ("gps", "user.location.precise", 0.9),
        ("geo", "user.location", 0.7),
        ("location", "user.location", 0.7),
        ("device id", "user.device.device_id", 0.9),
        ("idfa", "user.device.device_id", 0.9),
        ("gaid", "user.device.device_id", 0.9),
        ("cookie", "user.device.cookie_id", 0.8),
        ("anonymous id", "user.device.cookie_id", 0.8),
        ("visitor id", "user.device.cookie_id", 0.8),
        ("user id", "user.unique_id", 0.9),
        ("customer id", "user.unique_id", 0.9),
        ("member id", "user.unique_id", 0.9),
        ("person id", "user.unique_id", 0.9),
        ("account id", "user.unique_id", 0.8),
        ("uid", "user.unique_id", 0.7),
        ("job title", "user.job_title", 0.9),
        ("occupation", "user.job_title", 0.8),
        ("employer", "user.workplace", 0.8),
        ("company", "user.workplace", 0.5),
        ("language", "user.demographic.language", 0.6),
        ("locale", "user.demographic.language", 0.6),
        ("search", "user.behavior.search_history", 0.7),
        ("query", "user.behavior.search_history", 0.6),
        ("url", "user.behavior.browsing_history", 0.6),
        ("page", "user.behavior.browsing_history", 0.6),
        ("path", "user.behavior.browsing_history", 0.5),
        ("referrer", "user.behavior.browsing_history", 0.6),
        ("referer", "user.behavior.browsing_history", 0.6),
        ("order id", "user.behavior.purchase_history", 0.5),
        ("order number", "user.behavior.purchase_history", 0.5),
        ("product", "user.behavior.purchase_history", 0.5),
        ("sku", "user.behavior.purchase_history", 0.5),
        ("amount", "user.behavior.purchase_history", 0.5),
        ("price", "user.behavior.purchase_history", 0.5),
        ("message", _FREE_TEXT, 0.8),
        ("comment", _FREE_TEXT, 0.8),
        ("comments", _FREE_TEXT, 0.8),
        ("text", _FREE_TEXT, 0.7),
        ("body", _FREE_TEXT, 0.6),
        ("note", _FREE_TEXT, 0.7),
        ("notes", _FREE_TEXT, 0.7),
        ("transcript", _FREE_TEXT, 0.9),
        ("feedback", _FREE_TEXT, 0.8),
        ("review", _FREE_TEXT, 0.6),
        ("chat", _FREE_TEXT, 0.7),
        ("description", _FREE_TEXT, 0.6),
        ("subject", _FREE_TEXT, 0.5),
    )
)

# The treatment suggested for a category, by its longest listed prefix: identifiers are
# pseudonymised (joins still work), what must come back only under audit is tokenised,
# secrets dropped, free text redacted; other personal data is kept, sealed under the subject's
# key (FieldSpec.sealed), and the non-personal kept in clear.
_TREATMENTS = {
    "user.contact.email": Treatment.PSEUDONYMISE,
    "user.contact.phone_number": Treatment.PSEUDONYMISE,
    "user.contact.fax_number": Treatment.PSEUDONYMISE,
    "user.name": Treatment.PSEUDONYMISE,
    "user.unique_id": Treatment.PSEUDONYMISE,
    "user.device": Treatment.PSEUDONYMISE,
    "user.account.username": Treatment.PSEUDONYMISE,
    "user.financial": Treatment.TOKENISE,
    "user.government_id": Treatment.TOKENISE,
    "user.authorization": Treatment.DROP,
    "user.content": Treatment.REDACT,
    "user.behavior.search_history": Treatment.REDACT,
}
_LONGEST_FIRST = sorted(_TREATMENTS, key=len, reverse=True)
_WORD = re.compile(r"[A-Z]?[a-z]+|[A-Z]+(?![a-z])|\d+")
# The share of a field's sample values the recognizers must find whole before the values alone
# name the category.
_WHOLE_SHARE = 0.5


@dataclass(frozen=True, slots=True)
class Suggestion:
    """What a field looks like it holds."""

    name: str
    type: FieldType | None
    category: str
    treatment: Treatment
    confidence: float
    # Why: "name", and what the recognizers found in how many of the values looked at.
    reasons: list[str] = field(default_factory=list)
    found: dict[str, int] = field(default_factory=dict)
    values: int = 0
    declared: FieldSpec | None = None

    @property
    def personal(self) -> bool:
        return is_personal(self.category)


def classify(
    samples: Sequence[Mapping[str, Any]], declared: Mapping[str, FieldSpec] | None = None
) -> list[Suggestion]:
    """A suggestion per field of the samples (and of the declared schema, if any), in the order
    first seen. InvalidRequest when a sample's key is not a field name."""
    by_field: dict[str, list[Any]] = {name: [] for name in declared or {}}
    for n, sample in enumerate(samples[:MAX_SAMPLES]):
        for name, value in sample.items():
            # The key was sent and may itself be personal: never repeated.
            if not NAME.fullmatch(name):
                raise InvalidRequest(f"samples[{n}]: a property name is not a field name")
            if value is not None and not isinstance(value, str | int | float | bool):
                raise InvalidRequest(
                    f"samples[{n}]: a value is not a string, number, boolean or null"
                )
            by_field.setdefault(name, []).append(value)
    return [_suggest(name, values, (declared or {}).get(name)) for name, values in by_field.items()]


def _suggest(name: str, values: list[Any], declared: FieldSpec | None) -> Suggestion:
    ftype = _type_of(values) or (declared.type if declared else None)
    texts = [v[:MAX_VALUE_CHARS] for v in values if isinstance(v, str) and v.strip()]
    whole: Counter[Kind] = Counter()
    within: Counter[Kind] = Counter()
    inside = 0
    for text in texts:
        spans = find(text)
        stripped = text.strip()
        if len(spans) == 1 and text[spans[0].start : spans[0].end].strip() == stripped:
            whole[spans[0].kind] += 1
        elif spans:
            inside += 1
            within.update(span.kind for span in spans)
    reasons: list[str] = []
    named = _by_name(name)
    category, confidence = NON_PERSONAL, 0.3 if not texts else 0.5
    if named is not None:
        category, confidence = named
        reasons.append("name")
    if whole:
        kind, count = whole.most_common(1)[0]
        share = count / len(texts)
        if share >= _WHOLE_SHARE:
            seen = _KIND_CATEGORY[kind]
            reasons.append(f"values: {kind.value} in {count} of {len(texts)}")
            if named is not None and _related(seen, named[0]):
                category = max(seen, named[0], key=len)
                confidence = 1 - (1 - named[1]) * (1 - share)
            else:
                category, confidence = seen, 0.5 + 0.45 * share
    if inside:
        share = inside / len(texts)
        reasons.append(f"values: personal data inside the text of {inside} of {len(texts)}")
        if category in (NON_PERSONAL, _FREE_TEXT):
            prior = confidence if category == _FREE_TEXT else 0.0
            category, confidence = _FREE_TEXT, 1 - (1 - prior) * (1 - (0.5 + 0.45 * share))
    elif named is not None and texts and not whole and named[0] in _KIND_CATEGORY.values():
        # A name the recognizers could confirm, over values in which they find nothing.
        confidence *= 0.6
        reasons.append(f"values: nothing recognised in {len(texts)}")
    treatment = _treatment(category, ftype)
    if inside and treatment is Treatment.KEEP and ftype is FieldType.STRING:
        # Text with personal data inside it: kept with what the recognizers find redacted.
        treatment = Treatment.REDACT
    found = Counter({k.value: n for k, n in whole.items()}) + Counter(
        {k.value: n for k, n in within.items()}
    )
    return Suggestion(
        name,
        ftype,
        category,
        treatment,
        round(min(confidence, 0.99), 2),
        reasons,
        dict(sorted(found.items())),
        len(texts),
        declared,
    )


def _by_name(name: str) -> tuple[str, float] | None:
    words = {w.lower() for w in _WORD.findall(name)}
    for needed, category, strength in _NAME_RULES:
        if needed <= words:
            return category, strength
    return None


def _related(a: str, b: str) -> bool:
    return a == b or a.startswith(b + ".") or b.startswith(a + ".")


def _treatment(category: str, ftype: FieldType | None) -> Treatment:
    """The category's treatment (its longest listed prefix), if the type allows it."""
    treatment = Treatment.KEEP
    for prefix in _LONGEST_FIRST:
        if category == prefix or category.startswith(prefix + "."):
            treatment = _TREATMENTS[prefix]
            break
    if ftype is not None and ftype not in TREATABLE[treatment]:
        # A number or a time cannot be redacted or pseudonymised: kept, sealed when personal.
        return Treatment.KEEP
    return treatment


def _type_of(values: list[Any]) -> FieldType | None:
    """The schema type that fits every non-null value, if one does."""
    kinds = set()
    for value in values:
        if value is None:
            continue
        if isinstance(value, bool):
            kinds.add(FieldType.BOOLEAN)
        elif isinstance(value, int):
            kinds.add(FieldType.INTEGER)
        elif isinstance(value, float):
            kinds.add(FieldType.NUMBER)
        elif isinstance(value, str):
            kinds.add(FieldType.TIMESTAMP if _is_time(value) else FieldType.STRING)
        else:
            return None
    if kinds == {FieldType.INTEGER, FieldType.NUMBER}:
        return FieldType.NUMBER
    if kinds == {FieldType.STRING, FieldType.TIMESTAMP}:
        return FieldType.STRING
    return kinds.pop() if len(kinds) == 1 else None


def _is_time(value: str) -> bool:
    if len(value) < 20 or value[4] != "-" or "T" not in value:
        return False
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return False
    return moment.tzinfo is not None


def to_json(suggestion: Suggestion) -> dict[str, Any]:
    """A suggestion as `POST /v1/schemas/{event_type}/classify` answers it."""
    out: dict[str, Any] = {
        "type": suggestion.type.value if suggestion.type else None,
        "category": suggestion.category,
        "treatment": suggestion.treatment.value,
        "confidence": suggestion.confidence,
        "personal": suggestion.personal,
        "reasons": suggestion.reasons,
        "found": suggestion.found,
        "values": suggestion.values,
    }
    declared = suggestion.declared
    if declared is not None:
        out["declared"] = {"category": declared.category, "treatment": declared.treatment.value}
        # Declared non-personal and kept in clear, where the evidence says personal: ingest
        # redacts what the recognizers find in it, and counts it (FieldSpec.screened).
        out["misclassified"] = suggestion.personal and not declared.personal
    return out
