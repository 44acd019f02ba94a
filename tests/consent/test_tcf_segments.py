"""consent/tcf_segments.py: bit reader and writer, vendor sections, publisher restrictions."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given
from hypothesis import strategies as st

from consentry.consent import tcf_segments as seg
from consentry.consent.tcf_segments import (
    BitReader,
    BitWriter,
    PublisherRestriction,
    RestrictionType,
    TCFDecodeError,
    TCFEncodeError,
)

vendor_ids = st.frozensets(st.integers(min_value=1, max_value=seg.MAX_VENDOR_ID), max_size=80)


def reader_of(writer: BitWriter) -> BitReader:
    return BitReader(seg.segment_bits(writer.to_segment(), "segment"), "segment")


def test_fields_written_are_the_fields_read() -> None:
    writer = BitWriter()
    writer.uint(5, 6, "a")
    writer.flag(True)
    writer.id_set({1, 4}, 5, "ids")
    writer.letters("GB", "country")
    writer.uint(2**16 - 1, 16, "b")
    reader = reader_of(writer)
    assert reader.uint(6, "a") == 5
    assert reader.flag("flag") is True
    assert reader.id_set(5, "ids") == frozenset({1, 4})
    assert reader.letters("country") == "GB"
    assert reader.uint(16, "b") == 2**16 - 1
    reader.finish()


def test_a_segment_is_whole_base64_quanta_without_padding() -> None:
    for bits in range(1, 50):
        writer = BitWriter()
        writer.id_set(set(), bits, "ids")
        segment = writer.to_segment()
        assert "=" not in segment
        assert len(segment) * 6 % seg.PAD_BITS == 0


def test_reading_past_the_end_is_truncation() -> None:
    reader = BitReader("101", "core segment")
    with pytest.raises(TCFDecodeError, match="core segment is truncated in Version"):
        reader.uint(4, "Version")
    with pytest.raises(TCFDecodeError, match="truncated"):
        BitReader("", "s").flag("f")
    with pytest.raises(TCFDecodeError, match="truncated"):
        BitReader("0" * 3, "s").id_set(4, "ids")


def test_finish_refuses_set_bits_or_long_padding_after_the_last_field() -> None:
    BitReader("0" * (seg.PAD_BITS - 1), "s").finish()
    with pytest.raises(TCFDecodeError, match="trailing data"):
        BitReader("0" * seg.PAD_BITS, "s").finish()
    with pytest.raises(TCFDecodeError, match="trailing data"):
        BitReader("001", "s").finish()


def test_letters_are_two_of_a_to_z() -> None:
    with pytest.raises(TCFDecodeError, match="two letters"):
        BitReader(format(26, "06b") + "000000", "s").letters("ConsentLanguage")
    for bad in ("gb", "G", "GBR", "G1"):
        with pytest.raises(TCFEncodeError):
            BitWriter().letters(bad, "ConsentLanguage")


def test_the_writer_refuses_values_its_fields_cannot_hold() -> None:
    with pytest.raises(TCFEncodeError, match="between 0 and 63"):
        BitWriter().uint(64, 6, "CmpVersion")
    with pytest.raises(TCFEncodeError):
        BitWriter().uint(-1, 6, "CmpVersion")
    with pytest.raises(TCFEncodeError, match=r"outside 1\.\.24"):
        BitWriter().id_set({25}, 24, "PurposesConsent")
    with pytest.raises(TCFEncodeError):
        BitWriter().id_set({0}, 24, "PurposesConsent")


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("", "empty"),
        ("===", "empty"),
        ("QUFB===", "padding"),
        ("QUFBQ=", "padding"),
        ("QU+B", "outside base64url"),
        ("QU/B", "outside base64url"),
        ("QU\u0661B", "outside base64url"),
    ],
)
def test_segment_bits_refuses_what_is_not_base64url(text: str, reason: str) -> None:
    with pytest.raises(TCFDecodeError, match=reason):
        seg.segment_bits(text, "segment")


def test_segment_bits_tolerates_correct_padding() -> None:
    assert seg.segment_bits("QQ==", "s") == seg.segment_bits("QQ", "s") == "010000010000"


def test_runs_group_consecutive_ids() -> None:
    assert seg.runs([]) == []
    assert seg.runs([1, 2, 3, 5, 7, 8]) == [(1, 3), (5, 5), (7, 8)]


@given(vendor_ids)
def test_runs_cover_exactly_the_ids(ids: frozenset[int]) -> None:
    spans = seg.runs(sorted(ids))
    covered = [i for first, last in spans for i in range(first, last + 1)]
    assert covered == sorted(ids)
    assert all(b[0] > a[1] + 1 for a, b in itertools.pairwise(spans))


@given(vendor_ids)
def test_a_vendor_section_round_trips(ids: frozenset[int]) -> None:
    writer = BitWriter()
    seg.write_vendor_section(writer, ids, "VendorConsents")
    reader = reader_of(writer)
    assert seg.read_vendor_section(reader, "VendorConsents") == ids
    reader.finish()


def test_the_vendor_section_form_follows_the_reference_encoder() -> None:
    def is_range(ids: set[int]) -> bool:
        writer = BitWriter()
        seg.write_vendor_section(writer, frozenset(ids), "v")
        reader = reader_of(writer)
        reader.uint(16, "MaxVendorId")
        return reader.flag("IsRangeEncoding")

    # Never ranges up to MaxVendorId 45, however sparse.
    assert not is_range({1, 45})
    # Ranges once their estimate is below MaxVendorId + 4 bits.
    assert is_range({1, 1000})
    assert not is_range(set(range(1, 100, 2)))


def test_vendor_ids_beyond_16_bits_are_refused() -> None:
    with pytest.raises(TCFEncodeError, match="between 1 and 65535"):
        seg.write_vendor_section(BitWriter(), frozenset({seg.MAX_VENDOR_ID + 1}), "v")


def _ranges(entries: list[tuple[int, int]], max_id: int) -> BitReader:
    writer = BitWriter()
    writer.uint(max_id, 16, "MaxVendorId")
    writer.flag(True)
    writer.uint(len(entries), 12, "NumEntries")
    for start, end in entries:
        writer.flag(start != end)
        writer.uint(start, 16, "start")
        if start != end:
            writer.uint(end, 16, "end")
    return reader_of(writer)


@pytest.mark.parametrize(
    ("entries", "max_id", "reason"),
    [
        ([(5, 9), (7, 12)], 20, "out of order or overlap"),
        ([(9, 9), (5, 5)], 20, "out of order or overlap"),
        ([(0, 0)], 20, "out of order or overlap"),
        ([(5, 3)], 20, "ends before it starts"),
        ([(5, 30)], 20, "beyond MaxVendorId 20"),
    ],
)
def test_range_entries_must_ascend_within_max_vendor_id(
    entries: list[tuple[int, int]], max_id: int, reason: str
) -> None:
    with pytest.raises(TCFDecodeError, match=reason):
        seg.read_vendor_section(_ranges(entries, max_id), "VendorConsents")


restrictions = st.lists(
    st.builds(
        PublisherRestriction,
        st.integers(min_value=1, max_value=63),
        st.sampled_from(RestrictionType),
        st.lists(st.integers(min_value=1, max_value=seg.MAX_VENDOR_ID), max_size=12, unique=True)
        .map(sorted)
        .map(lambda ids: tuple(seg.runs(ids))),
    ),
    max_size=6,
    unique_by=lambda r: (r.purpose_id, r.restriction_type),
).map(tuple)


@given(restrictions)
def test_publisher_restrictions_round_trip(items: tuple[PublisherRestriction, ...]) -> None:
    writer = BitWriter()
    seg.write_restrictions(writer, items)
    reader = reader_of(writer)
    assert seg.read_restrictions(reader) == items
    reader.finish()


def test_a_restriction_covers_its_expanded_ranges() -> None:
    item = PublisherRestriction(2, RestrictionType.REQUIRE_CONSENT, ((1, 3), (8, 8)))
    assert item.vendors == frozenset({1, 2, 3, 8})


@pytest.mark.parametrize(
    "items",
    [
        (PublisherRestriction(0, RestrictionType.NOT_ALLOWED, ()),),
        (
            PublisherRestriction(1, RestrictionType.NOT_ALLOWED, ()),
            PublisherRestriction(1, RestrictionType.NOT_ALLOWED, ((4, 4),)),
        ),
        (PublisherRestriction(1, RestrictionType.NOT_ALLOWED, ((5, 9), (9, 10))),),
        (PublisherRestriction(1, RestrictionType.NOT_ALLOWED, ((5, 4),)),),
    ],
)
def test_the_writer_refuses_restrictions_a_reader_would(
    items: tuple[PublisherRestriction, ...],
) -> None:
    with pytest.raises(TCFEncodeError):
        seg.write_restrictions(BitWriter(), items)


def _restriction_header(purpose: int, kind: int, repeat: int = 1) -> BitReader:
    writer = BitWriter()
    writer.uint(repeat, 12, "NumPubRestrictions")
    for _ in range(repeat):
        writer.uint(purpose, 6, "PurposeId")
        writer.uint(kind, 2, "RestrictionType")
        writer.uint(0, 12, "NumEntries")
    return reader_of(writer)


@pytest.mark.parametrize(
    ("purpose", "kind", "repeat", "reason"),
    [
        (0, 0, 1, "purpose 0"),
        (1, 3, 1, "undefined restriction type 3"),
        (2, 1, 2, "appears twice"),
    ],
)
def test_the_reader_refuses_bad_restrictions(
    purpose: int, kind: int, repeat: int, reason: str
) -> None:
    with pytest.raises(TCFDecodeError, match=reason):
        seg.read_restrictions(_restriction_header(purpose, kind, repeat))
