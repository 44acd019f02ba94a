"""Decode and encode IAB TCF v2.2 TC strings (core, disclosed/allowed vendors, publisher TC)."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta

from consentry.consent.tcf_segments import (
    BitReader,
    BitWriter,
    PublisherRestriction,
    RestrictionType,
    TCFDecodeError,
    TCFEncodeError,
    read_restrictions,
    read_vendor_section,
    segment_bits,
    write_restrictions,
    write_vendor_section,
)

__all__ = [
    "MAX_TC_STRING_LENGTH",
    "PublisherRestriction",
    "PublisherTC",
    "RestrictionType",
    "TCFDecodeError",
    "TCFEncodeError",
    "TCString",
    "decode",
    "encode",
]

# Real strings are a few hundred characters; a full 65535-vendor bitfield in two sections
# is about 22 KiB. The cap bounds the work a hostile input can cause.
MAX_TC_STRING_LENGTH = 64 * 1024

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_DECISECOND = timedelta(milliseconds=100)
_SEGMENT_DISCLOSED = 1
_SEGMENT_ALLOWED = 2
_SEGMENT_PUBLISHER_TC = 3


@dataclass(frozen=True, slots=True, kw_only=True)
class PublisherTC:
    """The publisher TC segment (segment type 3)."""

    purposes_consent: frozenset[int] = frozenset()
    purposes_li_transparency: frozenset[int] = frozenset()
    num_custom_purposes: int = 0
    custom_purposes_consent: frozenset[int] = frozenset()
    custom_purposes_li_transparency: frozenset[int] = frozenset()


@dataclass(frozen=True, slots=True, kw_only=True)
class TCString:
    """Every field of a decoded TC string.

    Only the meaning is kept, not incidental encoding choices: MaxVendorId is the highest
    id present and bitfield vs range form is re-derived on encode (see
    write_vendor_section). The optional segments are None when absent from the string.
    """

    version: int = 2
    created: datetime
    last_updated: datetime
    cmp_id: int
    cmp_version: int
    consent_screen: int
    consent_language: str
    vendor_list_version: int
    # Exposed unchecked: whether a policy version is acceptable is the caller's decision.
    policy_version: int
    is_service_specific: bool
    use_non_standard_texts: bool
    special_feature_opt_ins: frozenset[int]
    purposes_consent: frozenset[int]
    purposes_li_transparency: frozenset[int]
    purpose_one_treatment: bool
    publisher_cc: str
    vendor_consents: frozenset[int]
    vendor_legitimate_interests: frozenset[int]
    publisher_restrictions: tuple[PublisherRestriction, ...] = ()
    disclosed_vendors: frozenset[int] | None = None
    # Segment type 2 ("allowed vendors") was dropped from the v2.2 specification but is
    # still written by older CMPs and by the reference library.
    allowed_vendors: frozenset[int] | None = None
    publisher_tc: PublisherTC | None = None
    # Segments of a type this module does not know (4-7), kept verbatim without padding
    # so that re-encoding does not silently drop them.
    unknown_segments: tuple[str, ...] = ()


def _read_core(reader: BitReader) -> TCString:
    version = reader.uint(6, "Version")
    if version != 2:
        raise TCFDecodeError(f"unsupported TC string version {version}")
    created = _EPOCH + reader.uint(36, "Created") * _DECISECOND
    last_updated = _EPOCH + reader.uint(36, "LastUpdated") * _DECISECOND
    result = TCString(
        version=version,
        created=created,
        last_updated=last_updated,
        cmp_id=reader.uint(12, "CmpId"),
        cmp_version=reader.uint(12, "CmpVersion"),
        consent_screen=reader.uint(6, "ConsentScreen"),
        consent_language=reader.letters("ConsentLanguage"),
        vendor_list_version=reader.uint(12, "VendorListVersion"),
        policy_version=reader.uint(6, "TcfPolicyVersion"),
        is_service_specific=reader.flag("IsServiceSpecific"),
        use_non_standard_texts=reader.flag("UseNonStandardTexts"),
        special_feature_opt_ins=reader.id_set(12, "SpecialFeatureOptIns"),
        purposes_consent=reader.id_set(24, "PurposesConsent"),
        purposes_li_transparency=reader.id_set(24, "PurposesLITransparency"),
        purpose_one_treatment=reader.flag("PurposeOneTreatment"),
        publisher_cc=reader.letters("PublisherCC"),
        vendor_consents=read_vendor_section(reader, "vendor consents"),
        vendor_legitimate_interests=read_vendor_section(reader, "vendor legitimate interests"),
        publisher_restrictions=read_restrictions(reader),
    )
    reader.finish()
    return result


def _read_publisher_tc(reader: BitReader) -> PublisherTC:
    consent = reader.id_set(24, "PubPurposesConsent")
    li_transparency = reader.id_set(24, "PubPurposesLITransparency")
    custom = reader.uint(6, "NumCustomPurposes")
    return PublisherTC(
        purposes_consent=consent,
        purposes_li_transparency=li_transparency,
        num_custom_purposes=custom,
        custom_purposes_consent=reader.id_set(custom, "CustomPurposesConsent"),
        custom_purposes_li_transparency=reader.id_set(custom, "CustomPurposesLITransparency"),
    )


def decode(tc_string: str) -> TCString:
    """Decode a TC string, raising TCFDecodeError (and nothing else) if it is malformed."""
    if not isinstance(tc_string, str):
        raise TCFDecodeError(f"TC string must be str, not {type(tc_string).__name__}")
    if not tc_string:
        raise TCFDecodeError("TC string is empty")
    if len(tc_string) > MAX_TC_STRING_LENGTH:
        raise TCFDecodeError(f"TC string is longer than {MAX_TC_STRING_LENGTH} characters")
    texts = tc_string.split(".")
    core = _read_core(BitReader(segment_bits(texts[0], "core segment"), "core segment"))
    disclosed: frozenset[int] | None = None
    allowed: frozenset[int] | None = None
    publisher: PublisherTC | None = None
    unknown: list[str] = []
    seen: set[int] = set()
    for position, text in enumerate(texts[1:], start=2):
        what = f"segment {position}"
        reader = BitReader(segment_bits(text, what), what)
        kind = reader.uint(3, "SegmentType")
        if kind == 0:
            raise TCFDecodeError(f"{what} is a second core segment")
        if kind > _SEGMENT_PUBLISHER_TC:
            # Layout unknown, so the well-formed base64url that segment_bits checked is
            # all that can be asked of it; such types may also repeat.
            unknown.append(text.rstrip("="))
            continue
        if kind in seen:
            raise TCFDecodeError(f"{what} repeats segment type {kind}")
        seen.add(kind)
        if kind == _SEGMENT_DISCLOSED:
            disclosed = read_vendor_section(reader, "disclosed vendors")
        elif kind == _SEGMENT_ALLOWED:
            allowed = read_vendor_section(reader, "allowed vendors")
        else:
            publisher = _read_publisher_tc(reader)
        reader.finish()
    if len(texts) == 1:
        return core
    return replace(
        core,
        disclosed_vendors=disclosed,
        allowed_vendors=allowed,
        publisher_tc=publisher,
        unknown_segments=tuple(unknown),
    )


def _deciseconds(moment: datetime, field: str) -> int:
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise TCFEncodeError(f"{field} must be a timezone-aware datetime")
    micros = (moment - _EPOCH) // timedelta(microseconds=1)
    # Round half up, like the reference library's Math.round(milliseconds / 100).
    return (micros + 50_000) // 100_000


def _encode_core(tc: TCString) -> str:
    if tc.version != 2:
        raise TCFEncodeError(f"only version 2 can be encoded, not {tc.version}")
    writer = BitWriter()
    writer.uint(tc.version, 6, "version")
    writer.uint(_deciseconds(tc.created, "created"), 36, "created")
    writer.uint(_deciseconds(tc.last_updated, "last_updated"), 36, "last_updated")
    writer.uint(tc.cmp_id, 12, "cmp_id")
    writer.uint(tc.cmp_version, 12, "cmp_version")
    writer.uint(tc.consent_screen, 6, "consent_screen")
    writer.letters(tc.consent_language, "consent_language")
    writer.uint(tc.vendor_list_version, 12, "vendor_list_version")
    writer.uint(tc.policy_version, 6, "policy_version")
    writer.flag(tc.is_service_specific)
    writer.flag(tc.use_non_standard_texts)
    writer.id_set(tc.special_feature_opt_ins, 12, "special_feature_opt_ins")
    writer.id_set(tc.purposes_consent, 24, "purposes_consent")
    writer.id_set(tc.purposes_li_transparency, 24, "purposes_li_transparency")
    writer.flag(tc.purpose_one_treatment)
    writer.letters(tc.publisher_cc, "publisher_cc")
    write_vendor_section(writer, tc.vendor_consents, "vendor_consents")
    write_vendor_section(writer, tc.vendor_legitimate_interests, "vendor_legitimate_interests")
    write_restrictions(writer, tc.publisher_restrictions)
    return writer.to_segment()


def _encode_vendor_segment(kind: int, ids: frozenset[int], field: str) -> str:
    writer = BitWriter()
    writer.uint(kind, 3, "segment type")
    write_vendor_section(writer, ids, field)
    return writer.to_segment()


def _encode_publisher_tc(pub: PublisherTC) -> str:
    writer = BitWriter()
    writer.uint(_SEGMENT_PUBLISHER_TC, 3, "segment type")
    writer.id_set(pub.purposes_consent, 24, "publisher purposes_consent")
    writer.id_set(pub.purposes_li_transparency, 24, "publisher purposes_li_transparency")
    writer.uint(pub.num_custom_purposes, 6, "num_custom_purposes")
    count = pub.num_custom_purposes
    writer.id_set(pub.custom_purposes_consent, count, "custom_purposes_consent")
    writer.id_set(pub.custom_purposes_li_transparency, count, "custom_purposes_li_transparency")
    return writer.to_segment()


def _check_unknown_segment(text: str) -> None:
    try:
        bits = segment_bits(text, "unknown segment")
    except TCFDecodeError as error:
        raise TCFEncodeError(str(error)) from error
    if "=" in text or int(bits[:3], 2) < 4:
        raise TCFEncodeError(f"unknown segment {text!r} must be unpadded and of type 4-7")


def encode(tc: TCString) -> str:
    """Encode a TCString, raising TCFEncodeError if a field does not fit the format.

    Segments are written in the order the reference library uses: core, disclosed
    vendors, allowed vendors, publisher TC, then any unknown segments as they came.
    """
    # encode(decode(s)) == s holds for every string @iabtcf/core produces. Other encoders
    # may make choices the decoded meaning does not keep, and those strings come back in
    # the library's canonical form instead: a MaxVendorId above the highest id present,
    # the other of bitfield/range than the library would pick, adjacent or single-id
    # ranges it would have merged or written as singles, a different segment order,
    # more zero padding than needed to reach 24 bits, or base64 '=' padding.
    parts = [_encode_core(tc)]
    if tc.disclosed_vendors is not None:
        parts.append(
            _encode_vendor_segment(_SEGMENT_DISCLOSED, tc.disclosed_vendors, "disclosed_vendors")
        )
    if tc.allowed_vendors is not None:
        parts.append(
            _encode_vendor_segment(_SEGMENT_ALLOWED, tc.allowed_vendors, "allowed_vendors")
        )
    if tc.publisher_tc is not None:
        parts.append(_encode_publisher_tc(tc.publisher_tc))
    for text in tc.unknown_segments:
        _check_unknown_segment(text)
        parts.append(text)
    return ".".join(parts)
