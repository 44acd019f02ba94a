"""Other persons' data inside a subject's events and consent evidence (Art. 15(4), 20(4)):
redacted from the access report and the portable copy, the subject's own identities kept."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import phonenumbers
from sqlalchemy import Connection

from consentry.errors import InvalidIdentity
from consentry.ingest.redact import Kind, find
from consentry.subjects.models import Identity, IdentityType
from consentry.subjects.normalise import normalise
from consentry.subjects.resolve import Subjects

OTHER_PERSON = "<OTHER_PERSON>"
NOTE = (
    "Other persons' data inside your events and the evidence of your consents is left out of "
    "this copy (Art. 15(4), Art. 20(4)): e-mail addresses and phone numbers other than yours "
    "are replaced by <EMAIL> and <PHONE>, and a value that is another person's identifier by "
    "<OTHER_PERSON>."
)
# Whole personal values are looked up as these: e-mail addresses and phone numbers are found
# inside any text by the recognizers, these identifiers have no shape to be found by. Values
# of fields whose category is not `user.*` are declared by the schema to be about no person
# (and are stored in clear): they are not looked up, so a report costs a look-up per
# distinct personal value, not per value.
_WHOLE = (
    IdentityType.CUSTOMER_ID,
    IdentityType.ACCOUNT_ID,
    IdentityType.DEVICE_ID,
    IdentityType.COOKIE_ID,
)
# What the recognizers find that can be told from the subject's own identities. Card numbers,
# IBANs, IP addresses, SSNs and NI numbers in the subject's own events are theirs as far as
# anything stored can tell, and stay.
_ATTRIBUTABLE = {Kind.EMAIL: IdentityType.EMAIL, Kind.PHONE: IdentityType.PHONE}


class Others:
    """Redacts the other persons' data in a subject's report items, a page at a time."""

    def __init__(
        self,
        conn: Connection,
        subjects: Subjects,
        subject_id: str,
        own: Sequence[Identity],
        phone_region: str,
    ) -> None:
        self._conn = conn
        self._subjects = subjects
        self._subject_id = subject_id
        self._own = set(own)
        # A phone number written in national form is read in the default region and in the
        # regions of the subject's own numbers: "07700 900123" is theirs if +447700900123 is.
        regions = {phone_region} if phone_region else set()
        for identity in own:
            if identity.type is IdentityType.PHONE:
                # By country code, not by the number's range: reserved fictional ranges
                # belong to no region.
                code = phonenumbers.parse(identity.value, None).country_code
                regions.update(phonenumbers.region_codes_for_country_code(code or 0))
        self._regions = sorted(r for r in regions if r != phonenumbers.UNKNOWN_REGION)

    def page(self, items: list[dict[str, Any]], personal: Sequence[set[str]]) -> None:
        """Redact in place the properties of a page of report items; `personal`: the names
        of each item's personal values (its schema's `user.*` fields, sealed or tokenised),
        the only ones looked up as identifiers, once for the whole page."""
        known = self._known(
            {
                value
                for item, names in zip(items, personal, strict=True)
                for name in names
                if isinstance(value := item["properties"].get(name), str)
            }
        )
        # Values repeat across a page ("web", a URL): each distinct one is scanned once.
        scanned: dict[str, str] = {}
        for item, names in zip(items, personal, strict=True):
            properties = item["properties"]
            for name, value in properties.items():
                if not isinstance(value, str):
                    continue
                if name in names and value in known:
                    properties[name] = OTHER_PERSON
                    continue
                text = scanned.get(value)
                if text is None:
                    text = scanned[value] = self._text(value)
                properties[name] = text

    def values(self, values: Sequence[Any]) -> list[Any]:
        """Redacted copies of free JSON values of the subject's result (the evidence of
        consent entries), at any depth: no schema says which of their strings are about a
        person, so each string, object keys included, is looked up whole as an identifier
        (one look-up for all of them) and scanned."""
        strings: set[str] = set()
        for value in values:
            _strings(value, strings)
        known = self._known(strings)
        scanned: dict[str, str] = {}

        def redacted(value: Any) -> Any:
            if isinstance(value, str):
                if value in known:
                    return OTHER_PERSON
                text = scanned.get(value)
                if text is None:
                    text = scanned[value] = self._text(value)
                return text
            if isinstance(value, list):
                return [redacted(v) for v in value]
            if isinstance(value, dict):
                out: dict[str, Any] = {}
                for key, item in value.items():
                    name = redacted(key)
                    # Two keys redacted alike both stay: neither value is dropped.
                    n = 2
                    unique = name
                    while unique in out:
                        unique = f"{name} ({n})"
                        n += 1
                    out[unique] = redacted(item)
                return out
            return value

        return [redacted(v) for v in values]

    def _known(self, values: set[str]) -> set[str]:
        """Which of `values` are, whole, an identifier of another person."""
        candidates = {v: ids for v in values if (ids := self._whole(v))}
        others = self._subjects.others(
            self._conn, self._subject_id, [i for ids in candidates.values() for i in ids]
        )
        return {v for v, ids in candidates.items() if not others.isdisjoint(ids)}

    def _whole(self, value: str) -> list[Identity]:
        """The identifiers `value` may be, none when it is one of the subject's own."""
        out = []
        for type_ in _WHOLE:
            try:
                identity = normalise(type_, value)
            except InvalidIdentity:
                return []
            if identity in self._own:
                return []
            out.append(identity)
        return out

    def _text(self, text: str) -> str:
        parts: list[str] = []
        pos = 0
        for span in find(text):
            type_ = _ATTRIBUTABLE.get(span.kind)
            if type_ is None or self._is_own(type_, text[span.start : span.end]):
                continue
            parts.append(text[pos : span.start])
            parts.append(f"<{span.kind}>")
            pos = span.end
        if not parts:
            return text
        parts.append(text[pos:])
        return "".join(parts)

    def _is_own(self, type_: IdentityType, found: str) -> bool:
        for region in ("", *self._regions) if type_ is IdentityType.PHONE else ("",):
            try:
                if normalise(type_, found, region) in self._own:
                    return True
            except InvalidIdentity:
                continue
        return False


def _strings(value: Any, into: set[str]) -> None:
    """Every string in a JSON value, object keys included, added to `into`."""
    if isinstance(value, str):
        into.add(value)
    elif isinstance(value, list):
        for item in value:
            _strings(item, into)
    elif isinstance(value, dict):
        into.update(value)
        for item in value.values():
            _strings(item, into)
