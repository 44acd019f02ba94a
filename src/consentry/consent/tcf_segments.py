"""Bit-level building blocks shared by the TCF v2 TC-string decoder and encoder."""

from __future__ import annotations

import base64
import re
from collections.abc import Iterable
from dataclasses import dataclass
from enum import IntEnum
from itertools import compress

__all__ = [
    "BitReader",
    "BitWriter",
    "PublisherRestriction",
    "RestrictionType",
    "TCFDecodeError",
    "TCFEncodeError",
    "read_restrictions",
    "read_vendor_section",
    "segment_bits",
    "write_restrictions",
    "write_vendor_section",
]

_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
_CHAR_TO_BITS = str.maketrans({c: format(i, "06b") for i, c in enumerate(_ALPHABET)})
# Explicit ranges rather than \w or \d: those also match non-ASCII letters and digits.
_SEGMENT_BODY = re.compile(r"[A-Za-z0-9_-]+")
_BIT_VALUES = bytes.maketrans(b"01", b"\x00\x01")

# Encoders pad each segment to the least common multiple of 6 (a base64 character) and
# 8 (a byte); more zero bits than that cannot be padding, only appended data.
PAD_BITS = 24
MAX_VENDOR_ID = (1 << 16) - 1


class TCFDecodeError(ValueError):
    """A TC string could not be decoded; the message gives a short reason."""


class TCFEncodeError(ValueError):
    """A TCString holds a value that the TC string format cannot carry."""


class RestrictionType(IntEnum):
    """How a publisher restriction changes a vendor's legal basis for a purpose."""

    NOT_ALLOWED = 0
    REQUIRE_CONSENT = 1
    REQUIRE_LI = 2


@dataclass(frozen=True, slots=True)
class PublisherRestriction:
    """One publisher restriction: a purpose, a restriction type, and the vendors it covers."""

    purpose_id: int
    restriction_type: RestrictionType
    # Kept as the encoded (start, end) entries rather than a vendor set: encoders group
    # vendors using the GVL (ids absent from the GVL may be swallowed into a range), which
    # the string does not carry, so only the entries themselves re-encode byte for byte.
    vendor_ranges: tuple[tuple[int, int], ...]

    @property
    def vendors(self) -> frozenset[int]:
        """Every vendor id covered by the entries, ranges expanded."""
        out: set[int] = set()
        for start, end in self.vendor_ranges:
            out.update(range(start, end + 1))
        return frozenset(out)


def segment_bits(text: str, what: str) -> str:
    """Return one base64url segment (padding tolerated) as a string of '0'/'1'."""
    body = text.rstrip("=")
    padding = len(text) - len(body)
    if not body:
        raise TCFDecodeError(f"{what} is empty")
    if padding and (padding > 2 or len(text) % 4):
        raise TCFDecodeError(f"{what} has malformed base64 padding")
    if _SEGMENT_BODY.fullmatch(body) is None:
        raise TCFDecodeError(f"{what} contains a character outside base64url")
    return body.translate(_CHAR_TO_BITS)


class BitReader:
    """Sequential reader over a '0'/'1' string that reports truncation as TCFDecodeError."""

    __slots__ = ("_bits", "_pos", "_what")

    def __init__(self, bits: str, what: str) -> None:
        self._bits = bits
        self._pos = 0
        self._what = what

    def _take(self, count: int, field: str) -> str:
        end = self._pos + count
        if end > len(self._bits):
            raise TCFDecodeError(f"{self._what} is truncated in {field}")
        chunk = self._bits[self._pos : end]
        self._pos = end
        return chunk

    def uint(self, count: int, field: str) -> int:
        # _take inlined: this is the decoder's innermost call.
        start = self._pos
        end = start + count
        if end > len(self._bits):
            raise TCFDecodeError(f"{self._what} is truncated in {field}")
        self._pos = end
        return int(self._bits[start:end], 2)

    def flag(self, field: str) -> bool:
        start = self._pos
        if start >= len(self._bits):
            raise TCFDecodeError(f"{self._what} is truncated in {field}")
        self._pos = start + 1
        return self._bits[start] == "1"

    def id_set(self, count: int, field: str) -> frozenset[int]:
        """Read a bitfield in which bit i (from 1) being set means id i is present."""
        chunk = self._take(count, field).encode("ascii").translate(_BIT_VALUES)
        # compress() walks the 0/1 bytes in C; a Python loop here dominated decode time.
        return frozenset(compress(range(1, count + 1), chunk))

    def letters(self, field: str) -> str:
        first = self.uint(6, field)
        second = self.uint(6, field)
        if first > 25 or second > 25:
            raise TCFDecodeError(f"{field} is not two letters A-Z")
        return chr(65 + first) + chr(65 + second)

    def finish(self) -> None:
        """Refuse anything after the last field except short zero padding."""
        rest = self._bits[self._pos :]
        if "1" in rest or len(rest) >= PAD_BITS:
            raise TCFDecodeError(f"{self._what} has trailing data after its last field")


class BitWriter:
    """Accumulates fixed-width fields and renders them as one unpadded base64url segment."""

    __slots__ = ("_parts",)

    def __init__(self) -> None:
        self._parts: list[str] = []

    def uint(self, value: int, count: int, field: str) -> None:
        if not 0 <= value < (1 << count):
            raise TCFEncodeError(f"{field} must be between 0 and {(1 << count) - 1}")
        self._parts.append(format(value, f"0{count}b"))

    def flag(self, value: bool) -> None:
        self._parts.append("1" if value else "0")

    def id_set(self, ids: Iterable[int], count: int, field: str) -> None:
        bits = ["0"] * count
        for item in ids:
            if not 1 <= item <= count:
                raise TCFEncodeError(f"{field} holds id {item}, outside 1..{count}")
            bits[item - 1] = "1"
        self._parts.append("".join(bits))

    def letters(self, text: str, field: str) -> None:
        if len(text) != 2 or not all("A" <= c <= "Z" for c in text):
            raise TCFEncodeError(f"{field} must be two upper-case letters A-Z, got {text!r}")
        self.uint(ord(text[0]) - 65, 6, field)
        self.uint(ord(text[1]) - 65, 6, field)

    def to_segment(self) -> str:
        bits = "".join(self._parts)
        bits += "0" * (-len(bits) % PAD_BITS)
        # A multiple of 24 bits is whole bytes and whole base64 quanta: no '=' appears.
        raw = int(bits, 2).to_bytes(len(bits) // 8, "big")
        return base64.urlsafe_b64encode(raw).decode("ascii")


def _read_ranges(reader: BitReader, field: str, max_id: int) -> tuple[tuple[int, int], ...]:
    count = reader.uint(12, f"{field} NumEntries")
    entries: list[tuple[int, int]] = []
    previous_end = 0
    for _ in range(count):
        is_range = reader.flag(f"{field} IsARange")
        start = reader.uint(16, f"{field} StartOrOnlyVendorId")
        end = reader.uint(16, f"{field} EndVendorId") if is_range else start
        # Ascending, disjoint entries are what every encoder writes; accepting overlaps
        # would let a short string expand into an arbitrarily large amount of work.
        if start <= previous_end:
            raise TCFDecodeError(f"{field} range entries are out of order or overlap")
        if end < start:
            raise TCFDecodeError(f"{field} range entry ends before it starts")
        if end > max_id:
            raise TCFDecodeError(f"{field} range entry goes beyond MaxVendorId {max_id}")
        entries.append((start, end))
        previous_end = end
    return tuple(entries)


def read_vendor_section(reader: BitReader, field: str) -> frozenset[int]:
    """Read MaxVendorId, IsRangeEncoding and then a bitfield or range entries."""
    max_id = reader.uint(16, f"{field} MaxVendorId")
    if not reader.flag(f"{field} IsRangeEncoding"):
        return reader.id_set(max_id, field)
    ids: set[int] = set()
    for start, end in _read_ranges(reader, field, max_id):
        ids.update(range(start, end + 1))
    return frozenset(ids)


def runs(ordered: list[int]) -> list[tuple[int, int]]:
    """Sorted ids as (first, last) runs of consecutive ids."""
    found: list[tuple[int, int]] = []
    for item in ordered:
        if found and found[-1][1] + 1 == item:
            found[-1] = (found[-1][0], item)
        else:
            found.append((item, item))
    return found


def _write_ranges(writer: BitWriter, entries: list[tuple[int, int]], field: str) -> None:
    writer.uint(len(entries), 12, f"{field} NumEntries")
    for start, end in entries:
        writer.flag(start != end)
        writer.uint(start, 16, field)
        if start != end:
            writer.uint(end, 16, field)


def write_vendor_section(writer: BitWriter, ids: frozenset[int], field: str) -> None:
    """Write a vendor section choosing bitfield or ranges exactly as @iabtcf/core does."""
    ordered = sorted(ids)
    if ordered and not (ordered[0] >= 1 and ordered[-1] <= MAX_VENDOR_ID):
        raise TCFEncodeError(f"{field} vendor ids must be between 1 and {MAX_VENDOR_ID}")
    max_id = ordered[-1] if ordered else 0
    writer.uint(max_id, 16, f"{field} MaxVendorId")
    spans = runs(ordered)
    # The reference library estimates the range form while walking ids 1..MaxVendorId:
    # 29 header bits, then 17 bits when a multi-id run opens and 16 when any run closes
    # (so a single id is counted as 16 although it takes 17), and it compares the
    # estimate taken *before* the last id with the bitfield's 17 + MaxVendorId bits; it
    # also never uses ranges when MaxVendorId <= 45. The closing id always adds 16, so
    # the comparison reduces to: estimated cost of all runs < MaxVendorId + 4. Mirroring
    # that (rather than picking the truly shorter form) is what makes strings it produced
    # re-encode byte for byte.
    cost = sum(16 if start == end else 33 for start, end in spans)
    if max_id > 45 and cost < max_id + 4:
        writer.flag(True)
        _write_ranges(writer, spans, field)
    else:
        writer.flag(False)
        writer.id_set(ordered, max_id, field)


def read_restrictions(reader: BitReader) -> tuple[PublisherRestriction, ...]:
    """Read the core segment's publisher restrictions section."""
    count = reader.uint(12, "NumPubRestrictions")
    seen: set[tuple[int, int]] = set()
    out: list[PublisherRestriction] = []
    for _ in range(count):
        purpose = reader.uint(6, "publisher restriction PurposeId")
        kind = reader.uint(2, "publisher restriction RestrictionType")
        if purpose == 0:
            raise TCFDecodeError("publisher restriction names purpose 0")
        if kind == 3:
            raise TCFDecodeError("publisher restriction uses undefined restriction type 3")
        if (purpose, kind) in seen:
            raise TCFDecodeError(f"publisher restriction {purpose}/{kind} appears twice")
        seen.add((purpose, kind))
        entries = _read_ranges(reader, "publisher restriction", MAX_VENDOR_ID)
        out.append(PublisherRestriction(purpose, RestrictionType(kind), entries))
    return tuple(out)


def write_restrictions(writer: BitWriter, restrictions: tuple[PublisherRestriction, ...]) -> None:
    """Write the publisher restrictions section in the order given."""
    writer.uint(len(restrictions), 12, "NumPubRestrictions")
    seen: set[tuple[int, int]] = set()
    for item in restrictions:
        key = (item.purpose_id, int(item.restriction_type))
        if key in seen:
            raise TCFEncodeError(f"publisher restriction {key[0]}/{key[1]} appears twice")
        seen.add(key)
        if item.purpose_id == 0:
            raise TCFEncodeError("publisher restriction purpose_id must be at least 1")
        writer.uint(item.purpose_id, 6, "publisher restriction purpose_id")
        if key[1] not in (0, 1, 2):
            raise TCFEncodeError("publisher restriction_type must be 0, 1 or 2")
        writer.uint(key[1], 2, "publisher restriction_type")
        previous_end = 0
        for start, end in item.vendor_ranges:
            if not previous_end < start <= end <= MAX_VENDOR_ID:
                raise TCFEncodeError(
                    "publisher restriction vendor_ranges must be ascending, disjoint "
                    f"(start, end) pairs within 1..{MAX_VENDOR_ID}"
                )
            previous_end = end
        _write_ranges(writer, list(item.vendor_ranges), "publisher restriction")
