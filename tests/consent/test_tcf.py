"""Tests for the TCF v2.2 TC-string decoder and encoder."""

from __future__ import annotations

import json
import os
import shutil
import string
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from consentry.consent.tcf import (
    MAX_TC_STRING_LENGTH,
    PublisherRestriction,
    PublisherTC,
    RestrictionType,
    TCFDecodeError,
    TCFEncodeError,
    TCString,
    decode,
    encode,
)

VECTOR_DIR = Path(__file__).parent / "tcf"
VECTORS_FILE = VECTOR_DIR / "vectors.json"
VECTORS: list[dict[str, Any]] = json.loads(VECTORS_FILE.read_text(encoding="utf-8"))["vectors"]
B64 = string.ascii_uppercase + string.ascii_lowercase + string.digits + "-_"
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _ids(runs: str) -> frozenset[int]:
    """Parse the generator's "1-5,8" run notation."""
    out: set[int] = set()
    for part in filter(None, runs.split(",")):
        low, _, high = part.partition("-")
        out.update(range(int(low), int(high or low) + 1))
    return frozenset(out)


def _millis(moment: datetime) -> int:
    return (moment - EPOCH) // timedelta(milliseconds=1)


# --- vectors from the reference library -------------------------------------------------


@pytest.mark.parametrize("vector", VECTORS, ids=[f"v{i}" for i in range(len(VECTORS))])
def test_vector_decodes_to_library_fields(vector: dict[str, Any]) -> None:
    tc = decode(vector["tcString"])
    lib = vector["fields"]
    segments = vector["segments"]
    assert tc.version == lib["version"]
    assert _millis(tc.created) == lib["created"]
    assert _millis(tc.last_updated) == lib["lastUpdated"]
    assert tc.created.tzinfo is UTC
    assert tc.cmp_id == lib["cmpId"]
    assert tc.cmp_version == lib["cmpVersion"]
    assert tc.consent_screen == lib["consentScreen"]
    assert tc.consent_language == lib["consentLanguage"]
    assert tc.vendor_list_version == lib["vendorListVersion"]
    assert tc.policy_version == lib["policyVersion"]
    assert tc.is_service_specific is lib["isServiceSpecific"]
    assert tc.use_non_standard_texts is lib["useNonStandardStacks"]
    assert tc.special_feature_opt_ins == frozenset(lib["specialFeatureOptins"])
    assert tc.purposes_consent == frozenset(lib["purposeConsents"])
    assert tc.purposes_li_transparency == frozenset(lib["purposeLegitimateInterests"])
    assert tc.purpose_one_treatment is lib["purposeOneTreatment"]
    assert tc.publisher_cc == lib["publisherCountryCode"]
    assert tc.vendor_consents == _ids(lib["vendorConsents"])
    assert tc.vendor_legitimate_interests == _ids(lib["vendorLegitimateInterests"])
    assert [
        (r.purpose_id, int(r.restriction_type), r.vendors) for r in tc.publisher_restrictions
    ] == [
        (r["purposeId"], r["restrictionType"], _ids(r["vendors"]))
        for r in lib["publisherRestrictions"]
    ]
    # The library reports an absent segment as empty vectors; here absence is None.
    assert (tc.disclosed_vendors is not None) == ("vendorsDisclosed" in segments)
    assert (tc.disclosed_vendors or frozenset()) == _ids(lib["vendorsDisclosed"])
    assert (tc.allowed_vendors is not None) == ("vendorsAllowed" in segments)
    assert (tc.allowed_vendors or frozenset()) == _ids(lib["vendorsAllowed"])
    assert (tc.publisher_tc is not None) == ("publisherTC" in segments)
    pub = tc.publisher_tc or PublisherTC()
    assert pub.purposes_consent == frozenset(lib["publisherConsents"])
    assert pub.purposes_li_transparency == frozenset(lib["publisherLegitimateInterests"])
    assert pub.num_custom_purposes == lib["numCustomPurposes"]
    assert pub.custom_purposes_consent == frozenset(lib["publisherCustomConsents"])
    assert pub.custom_purposes_li_transparency == frozenset(
        lib["publisherCustomLegitimateInterests"]
    )
    assert tc.unknown_segments == ()


@pytest.mark.parametrize("vector", VECTORS, ids=[f"v{i}" for i in range(len(VECTORS))])
def test_vector_round_trips_byte_exact(vector: dict[str, Any]) -> None:
    assert encode(decode(vector["tcString"])) == vector["tcString"]


def test_vectors_cover_the_interesting_choices() -> None:
    """Guards against a regenerated corpus that silently lost variety."""
    encodings = {(k, v) for vec in VECTORS for k, v in vec["encodings"].items()}
    for section in ("vendorConsents", "vendorLegitimateInterests", "vendorsDisclosed"):
        assert (section, "range") in encodings
        assert (section, "bitfield") in encodings
    shapes = {"+".join(vec["segments"]) for vec in VECTORS}
    assert {"core", "core+vendorsDisclosed", "core+publisherTC"} <= shapes
    assert "core+vendorsDisclosed+vendorsAllowed+publisherTC" in shapes
    assert {vec["fields"]["policyVersion"] for vec in VECTORS} == {2, 3, 4, 5}
    assert sum(bool(vec["fields"]["publisherRestrictions"]) for vec in VECTORS) > 50
    assert len(VECTORS) >= 300


@pytest.mark.skipif(
    os.environ.get("CONSENTRY_TCF_REGEN") != "1", reason="set CONSENTRY_TCF_REGEN=1 to run node"
)
def test_regenerated_vectors_match_committed(tmp_path: Path) -> None:
    node = shutil.which("node")
    npm = shutil.which("npm")
    if node is None or npm is None:
        pytest.fail("CONSENTRY_TCF_REGEN=1 needs node and npm on PATH")
    if not (VECTOR_DIR / "node_modules" / "@iabtcf" / "core").is_dir():
        subprocess.run([npm, "ci", "--no-audit", "--no-fund"], cwd=VECTOR_DIR, check=True)
    out = tmp_path / "vectors.json"
    subprocess.run([node, str(VECTOR_DIR / "make_vectors.mjs"), str(out)], check=True)
    assert out.read_text(encoding="utf-8") == VECTORS_FILE.read_text(encoding="utf-8")


# --- hand-built strings -----------------------------------------------------------------


def _f(value: int, width: int) -> str:
    return format(value, f"0{width}b")


def _b64(bits: str, pad_to: int = 24) -> str:
    bits += "0" * (-len(bits) % pad_to)
    return "".join(B64[int(bits[i : i + 6], 2)] for i in range(0, len(bits), 6))


EMPTY_VENDORS = _f(0, 16) + "0"


def _entries(entries: list[tuple[int, int]]) -> str:
    bits = _f(len(entries), 12)
    for start, end in entries:
        bits += "0" + _f(start, 16) if start == end else "1" + _f(start, 16) + _f(end, 16)
    return bits


def _ranges(max_id: int, entries: list[tuple[int, int]]) -> str:
    return _f(max_id, 16) + "1" + _entries(entries)


def _restrictions(*items: tuple[int, int, list[tuple[int, int]]]) -> str:
    bits = _f(len(items), 12)
    for purpose, kind, entries in items:
        bits += _f(purpose, 6) + _f(kind, 2) + _entries(entries)
    return bits


def _core(
    *,
    version: int = 2,
    language: tuple[int, int] = (4, 13),
    consents: str = EMPTY_VENDORS,
    legit: str = EMPTY_VENDORS,
    restrictions: str = _f(0, 12),
    policy: int = 4,
) -> str:
    return (
        _f(version, 6)
        + _f(16_000_000_000, 36) * 2
        + _f(7, 12)
        + _f(1, 12)
        + _f(0, 6)
        + _f(language[0], 6)
        + _f(language[1], 6)
        + _f(100, 12)
        + _f(policy, 6)
        + "00"
        + "0" * 12
        + "1" * 24
        + "0" * 24
        + "0"
        + _f(3, 6)
        + _f(4, 6)
        + consents
        + legit
        + restrictions
    )


GOOD = _b64(_core(consents=_ranges(10, [(2, 4), (7, 7)])))
DISCLOSED = _b64("001" + _ranges(5, [(1, 5)]))


def test_hand_built_baseline_decodes() -> None:
    tc = decode(GOOD)
    assert tc.vendor_consents == {2, 3, 4, 7}
    assert tc.consent_language == "EN"
    assert tc.publisher_cc == "DE"
    assert tc.purposes_consent == frozenset(range(1, 25))
    assert tc.created == datetime(2020, 9, 13, 12, 26, 40, tzinfo=UTC)
    assert decode(GOOD + "." + DISCLOSED).disclosed_vendors == frozenset({1, 2, 3, 4, 5})


def test_padding_is_tolerated() -> None:
    bits = _core(consents=_ranges(10, [(2, 4), (7, 7)]))
    short = _b64(bits, pad_to=6)
    assert len(short) % 4 == 2
    assert decode(short + "==") == decode(short) == decode(_b64(bits))


def test_unknown_segment_is_kept_and_re_encoded() -> None:
    canonical = encode(decode(GOOD))
    # GOOD itself uses ranges where the reference library would pick a bitfield.
    assert canonical != GOOD
    tc = decode(canonical + ".gAB=.zz")
    assert tc.unknown_segments == ("gAB", "zz")
    assert encode(tc) == canonical + ".gAB.zz"


@pytest.mark.parametrize("policy", [0, 2, 3, 4, 5, 63])
def test_policy_version_is_reported_not_judged(policy: int) -> None:
    assert decode(_b64(_core(policy=policy))).policy_version == policy


def test_restriction_vendors_expand_ranges() -> None:
    tc = decode(_b64(_core(restrictions=_restrictions((3, 1, [(5, 8), (11, 11)])))))
    (restriction,) = tc.publisher_restrictions
    assert restriction.restriction_type is RestrictionType.REQUIRE_CONSENT
    assert restriction.vendor_ranges == ((5, 8), (11, 11))
    assert restriction.vendors == {5, 6, 7, 8, 11}


MALFORMED: list[tuple[object, str]] = [
    ("", "empty"),
    (None, "must be str"),
    (123, "must be str"),
    (b"CPAAAA", "must be str"),
    ("C" * (MAX_TC_STRING_LENGTH + 1), "longer than"),
    (GOOD[:10] + "!" + GOOD[11:], "outside base64url"),
    (" " + GOOD, "outside base64url"),
    (GOOD + "\u0663", "outside base64url"),
    (GOOD + "===", "padding"),
    (GOOD + "A=", "padding"),
    ("=" + GOOD, "outside base64url"),
    (GOOD + ".", "empty"),
    (GOOD + "..", "empty"),
    ("." + GOOD, "empty"),
    (_b64(_core(version=1)), "version 1"),
    (_b64(_core(version=3)), "version 3"),
    (GOOD[:20], "truncated"),
    (GOOD[:36], "truncated"),
    (GOOD + ".I", "truncated"),
    (GOOD + "." + DISCLOSED[:2], "truncated"),
    (_b64(_core(language=(4, 26))), "ConsentLanguage"),
    (_b64(_core() + "001"), "trailing"),
    (_b64(_core() + "0" * 24), "trailing"),
    (GOOD + "AAAA", "trailing"),
    (_b64(_core(consents=_ranges(10, [(5, 6), (2, 3)]))), "out of order"),
    (_b64(_core(consents=_ranges(10, [(2, 5), (5, 6)]))), "overlap"),
    (_b64(_core(consents=_ranges(10, [(3, 3), (3, 3)]))), "overlap"),
    (_b64(_core(consents=_ranges(10, [(0, 3)]))), "out of order"),
    (_b64(_core(consents=_ranges(10, [(6, 4)]))), "ends before"),
    (_b64(_core(legit=_ranges(10, [(2, 11)]))), "beyond MaxVendorId"),
    (_b64(_core(legit=_ranges(10, [(11, 11)]))), "beyond MaxVendorId"),
    (_b64(_core(restrictions=_restrictions((0, 1, [(1, 1)])))), "purpose 0"),
    (_b64(_core(restrictions=_restrictions((2, 3, [(1, 1)])))), "type 3"),
    (_b64(_core(restrictions=_restrictions((2, 1, []), (2, 1, [])))), "twice"),
    (_b64(_core(restrictions=_restrictions((2, 1, [(9, 9), (1, 4)])))), "out of order"),
    (_b64(_core(restrictions=_f(3, 12))), "truncated"),
    (GOOD + "." + GOOD, "second core"),
    (GOOD + "." + DISCLOSED + "." + DISCLOSED, "repeats segment type 1"),
    (GOOD + ".g!", "outside base64url"),
    (GOOD + "." + _b64("011" + "0" * 48 + _f(2, 6) + "11" + "1" * 20), "trailing"),
    (GOOD + "." + _b64("001" + _ranges(5, [(1, 5)]) + "1"), "trailing"),
]


@pytest.mark.parametrize(("bad", "reason"), MALFORMED, ids=[r for _, r in MALFORMED])
def test_malformed_input_is_refused(bad: object, reason: str) -> None:
    with pytest.raises(TCFDecodeError, match=reason) as info:
        decode(bad)  # type: ignore[arg-type]
    assert isinstance(info.value, ValueError)


def test_every_prefix_of_a_vector_decodes_or_is_refused() -> None:
    text = max((v["tcString"] for v in VECTORS), key=len)
    for end in range(len(text)):
        _decode_or_refuse(text[:end])


# --- encoder validation -----------------------------------------------------------------

BASE = decode(GOOD)


@pytest.mark.parametrize(
    "changes",
    [
        {"version": 1},
        {"cmp_id": 4096},
        {"cmp_version": -1},
        {"created": datetime(2020, 1, 1)},
        {"created": datetime(1960, 1, 1, tzinfo=UTC)},
        {"consent_language": "en"},
        {"publisher_cc": "DEU"},
        {"purposes_consent": frozenset({25})},
        {"special_feature_opt_ins": frozenset({0})},
        {"vendor_consents": frozenset({65536})},
        {"publisher_restrictions": (PublisherRestriction(0, RestrictionType(1), ()),)},
        {"publisher_restrictions": (PublisherRestriction(1, RestrictionType(1), ((5, 4),)),)},
        {
            "publisher_restrictions": (
                PublisherRestriction(1, RestrictionType(1), ((1, 4), (4, 5))),
            )
        },
        {"publisher_restrictions": (PublisherRestriction(1, RestrictionType(1), ()),) * 2},
        {
            "publisher_tc": PublisherTC(
                num_custom_purposes=2, custom_purposes_consent=frozenset({3})
            )
        },
        {"unknown_segments": ("AAAA",)},
        {"unknown_segments": ("gA==",)},
        {"unknown_segments": ("g!",)},
    ],
)
def test_encode_refuses_values_the_format_cannot_carry(changes: dict[str, Any]) -> None:
    fields = {name: getattr(BASE, name) for name in TCString.__dataclass_fields__}
    fields.update(changes)
    with pytest.raises(TCFEncodeError):
        encode(TCString(**fields))


def test_encode_rounds_to_deciseconds_like_the_library() -> None:
    fields = {name: getattr(BASE, name) for name in TCString.__dataclass_fields__}
    fields["created"] = datetime(2024, 5, 1, 12, 0, 0, 150_000, tzinfo=UTC)
    fields["last_updated"] = datetime(2024, 5, 1, 12, 0, 0, 149_999, tzinfo=UTC)
    tc = decode(encode(TCString(**fields)))
    assert tc.created == datetime(2024, 5, 1, 12, 0, 0, 200_000, tzinfo=UTC)
    assert tc.last_updated == datetime(2024, 5, 1, 12, 0, 0, 100_000, tzinfo=UTC)


# --- property tests ---------------------------------------------------------------------


def _sets(limit: int) -> st.SearchStrategy[frozenset[int]]:
    return st.frozensets(st.integers(1, limit), max_size=limit)


vendor_sets = st.one_of(
    st.frozensets(st.integers(1, 120), max_size=120),
    st.frozensets(st.integers(1, 65535), max_size=30),
    st.builds(
        lambda start, length, extra: frozenset(range(start, start + length)) | extra,
        st.integers(1, 60000),
        st.integers(0, 3000),
        st.frozensets(st.integers(1, 2000), max_size=20),
    ),
)


@st.composite
def vendor_ranges(draw: st.DrawFn) -> tuple[tuple[int, int], ...]:
    out: list[tuple[int, int]] = []
    end = 0
    for gap, span in draw(st.lists(st.tuples(st.integers(1, 300), st.integers(0, 40)))):
        start = end + gap
        if start + span > 65535:
            break
        end = start + span
        out.append((start, end))
    return tuple(out)


@st.composite
def restriction_tuples(draw: st.DrawFn) -> tuple[PublisherRestriction, ...]:
    keys = draw(
        st.lists(
            st.tuples(st.integers(1, 63), st.sampled_from(RestrictionType)),
            unique=True,
            max_size=6,
        )
    )
    return tuple(PublisherRestriction(p, t, draw(vendor_ranges())) for p, t in keys)


publisher_tcs = st.integers(0, 63).flatmap(
    lambda n: st.builds(
        PublisherTC,
        purposes_consent=_sets(24),
        purposes_li_transparency=_sets(24),
        num_custom_purposes=st.just(n),
        custom_purposes_consent=st.frozensets(st.integers(1, max(n, 1)), max_size=n),
        custom_purposes_li_transparency=st.frozensets(st.integers(1, max(n, 1)), max_size=n),
    )
)

moments = st.integers(0, 2**36 - 1).map(lambda ds: EPOCH + ds * timedelta(milliseconds=100))
letter_pairs = st.text(alphabet=string.ascii_uppercase, min_size=2, max_size=2)
unknown_segments = st.builds(
    lambda head, tail: head + tail,
    st.sampled_from(B64[32:]),
    st.text(alphabet=B64, max_size=16),
)

tc_strings = st.builds(
    TCString,
    created=moments,
    last_updated=moments,
    cmp_id=st.integers(0, 4095),
    cmp_version=st.integers(0, 4095),
    consent_screen=st.integers(0, 63),
    consent_language=letter_pairs,
    vendor_list_version=st.integers(0, 4095),
    policy_version=st.integers(0, 63),
    is_service_specific=st.booleans(),
    use_non_standard_texts=st.booleans(),
    special_feature_opt_ins=_sets(12),
    purposes_consent=_sets(24),
    purposes_li_transparency=_sets(24),
    purpose_one_treatment=st.booleans(),
    publisher_cc=letter_pairs,
    vendor_consents=vendor_sets,
    vendor_legitimate_interests=vendor_sets,
    publisher_restrictions=restriction_tuples(),
    disclosed_vendors=st.none() | vendor_sets,
    allowed_vendors=st.none() | vendor_sets,
    publisher_tc=st.none() | publisher_tcs,
    unknown_segments=st.lists(unknown_segments, max_size=2).map(tuple),
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(tc_strings)
def test_decode_inverts_encode(tc: TCString) -> None:
    text = encode(tc)
    assert decode(text) == tc
    assert encode(decode(text)) == text


def _decode_or_refuse(text: str) -> None:
    """Decode must succeed or raise TCFDecodeError; a success must survive a round trip."""
    try:
        tc = decode(text)
    except TCFDecodeError:
        return
    assert decode(encode(tc)) == tc


@settings(max_examples=500, deadline=None)
@given(st.text())
def test_arbitrary_text_never_crashes(text: str) -> None:
    _decode_or_refuse(text)


@settings(max_examples=500, deadline=None)
@given(st.text(alphabet=B64 + ".=", max_size=300))
def test_arbitrary_base64_never_crashes(text: str) -> None:
    _decode_or_refuse("C" + text)


@settings(max_examples=500, deadline=None)
@given(st.sampled_from(VECTORS), st.data())
def test_bit_flips_and_truncations_never_crash(vector: dict[str, Any], data: st.DataObject) -> None:
    chars = list(vector["tcString"])
    for _ in range(data.draw(st.integers(1, 4))):
        index = data.draw(st.integers(0, len(chars) - 1))
        if chars[index] != ".":
            bit = data.draw(st.integers(0, 5))
            chars[index] = B64[B64.index(chars[index]) ^ (1 << bit)]
    text = "".join(chars)
    _decode_or_refuse(text)
    _decode_or_refuse(text[: data.draw(st.integers(0, len(text)))])
