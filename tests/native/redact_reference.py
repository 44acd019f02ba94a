"""The oracle for the core's redaction (core/src/redact): free-text PII recognizers as Consentry
ran them in Python before the core, one compiled regular-expression alternation (lookbehinds,
backreferences and possessive repetition) whose candidates are confirmed by their checks (Luhn,
ISO 13616 mod-97, `ipaddress`, the SSA and HMRC rules, the `phonenumbers` metadata). Only tests
use it (tests/native/test_redact.py compares its spans with the core's; tests/ingest/
test_recognizers.py tests its checks); the product calls the core (consentry.ingest.redact).
"""

from __future__ import annotations

import functools
import ipaddress
import re
from collections.abc import Callable
from typing import NamedTuple

import phonenumbers
from phonenumbers import COUNTRY_CODE_TO_REGION_CODE, PhoneNumber, ValidationResult

from consentry.ingest.redact import Kind, Span

# --- the checks ------------------------------------------------------------------------------

_NOT_BEFORE = "_.+@>-"  # what may not precede a token (START below)
_HEX = frozenset("0123456789abcdefABCDEF")
_LOCAL = frozenset("._%+'-")
# Confirms a candidate text[start:end]: (start, end) of the PII, possibly moved, or None.
Validator = Callable[[str, int, int], "tuple[int, int] | None"]


def starts_token(text: str, i: int) -> bool:
    """True when text[i] may begin a token (the rule redact.START writes as a pattern)."""
    if i == 0:
        return True
    before = text[i - 1]
    if before == "/":
        return i == 1 or not (text[i - 2].isalnum() or text[i - 2] in "_>")
    return not (before.isalnum() or before in _NOT_BEFORE)


# Words that make a bare run of digits a phone number or an SSN (see said_before).
_PHONE_WORDS = re.compile(
    r"(?i)(?<![\w<>])(?:phone|tel|mobile|cell|call|ring|text|sms|whatsapp|handy|num[eé]r|portable"
    r"|m[óo]vil|cellulare|mobiel|kom[óo]rk)"
)
_SSN_WORDS = re.compile(r"(?i)(?<![\w<>])(?:ssn|social)")


def said_before(text: str, start: int, words: re.Pattern[str]) -> bool:
    """True when one of `words` is among the 32 characters before text[start]."""
    # The look stops at a placeholder, so that a second redaction finds nothing new.
    floor = max(0, start - 32)
    floor = max(floor, text.rfind(">", floor, start) + 1)
    return words.search(text, floor, start) is not None


# --- cards, IBANs, IP addresses, SSNs, NI numbers ------------------------------------------

_LUHN_DOUBLE = (0, 2, 4, 6, 8, 1, 3, 5, 7, 9)


def luhn_ok(digits: str) -> bool:
    """True when the string of ASCII digits passes the Luhn (mod 10) check."""
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = ord(ch) - 48
        total += _LUHN_DOUBLE[d] if i % 2 else d
    return total % 10 == 0


def _card_brand_ok(digits: str) -> bool:
    # Issuer identification: Visa 13/16/19, Amex 15, Mastercard 16; other issuers 14-19.
    n = len(digits)
    if digits[0] == "4":
        return n in (13, 16, 19)
    if digits[:2] in ("34", "37"):
        return n == 15
    if "51" <= digits[:2] <= "55" or "2221" <= digits[:4] <= "2720":
        return n == 16
    return digits[0] in "3456" and n >= 14


def card(text: str, start: int, end: int) -> tuple[int, int] | None:
    """A payment card number: 13-19 digits, issuer lengths, Luhn."""
    digits = text[start:end].replace(" ", "").replace("-", "")
    if 13 <= len(digits) <= 19 and _card_brand_ok(digits) and luhn_ok(digits):
        return start, end
    return None


# ISO 13616 registry: total IBAN length per country (SWIFT IBAN Registry).
IBAN_LENGTHS: dict[str, int] = {
    cc: int(n)
    for cc, n in re.findall(
        r"([A-Z]{2})([0-9]{2})",
        "AD24 AE23 AL28 AT20 AZ28 BA20 BE16 BG22 BH22 BI27 BR29 BY28 CH21 CR22 CY28 CZ24 DE22 DJ27 "
        "DK18 DO28 EE20 EG29 ES24 FI18 FK18 FO18 FR27 GB22 GE22 GI23 GL18 GR27 GT28 HN28 HR21 HU28 "
        "IE22 IL23 IQ23 IS26 IT27 JO30 KW30 KZ20 LB28 LC32 LI21 LT20 LU20 LV21 LY25 MC27 MD24 ME22 "
        "MK19 MN20 MR27 MT31 MU30 NI28 NL18 NO15 OM23 PK24 PL28 PS29 PT25 QA29 RO24 RS22 RU33 SA24 "
        "SC31 SD18 SE24 SI19 SK24 SM27 SO23 ST25 SV28 TL23 TN24 TR26 UA29 VA22 VG24 XK20 YE30",
    )
}


def iban_ok(compact: str) -> bool:
    """True for an IBAN without spaces: known country, its length, mod-97 remainder 1."""
    if IBAN_LENGTHS.get(compact[:2]) != len(compact) or not compact.isascii():
        return False
    rearranged = compact[4:] + compact[:4]
    return int("".join(str(int(ch, 36)) for ch in rearranged)) % 97 == 1


def iban(text: str, start: int, end: int) -> tuple[int, int] | None:
    """An IBAN whose check digits start at text[start], its country code before them. The
    candidate may run on into the next word ("... 7034 with"): the country's length ends it."""
    first = start - 2
    length = IBAN_LENGTHS.get(text[first:start].upper(), 0)
    stop, count = first, 0
    while stop < end and count < length:
        count += text[stop] != " "
        stop += 1
    if count < length or (stop < end and text[stop] != " "):
        return None
    return (first, stop) if iban_ok(text[first:stop].replace(" ", "").upper()) else None


def ip4(text: str, start: int, end: int) -> tuple[int, int] | None:
    """A dotted-quad IPv4 address (no octet over 255, no leading zeros)."""
    try:
        ipaddress.IPv4Address(text[start:end])
    except ValueError:
        return None
    return start, end


def ip6(text: str, start: int, end: int) -> tuple[int, int] | None:
    """An IPv6 address whose first ":" is text[start]: its first group is found leftwards."""
    first = start
    while first > start - 4 and first > 0 and text[first - 1] in _HEX:
        first -= 1
    candidate = text[first:end]
    # Clock times ("10:30:00") and MAC addresses fail the parse; "::" alone is no address.
    if not starts_token(text, first) or text[first - 1 : first] == ":" or candidate == "::":
        return None
    try:
        ipaddress.IPv6Address(candidate)
    except ValueError:
        return None
    return first, end


def ssn(text: str, start: int, end: int) -> tuple[int, int] | None:
    """SSA rules: no area 000, 666 or 9xx, no group 00, no serial 0000. Nine digits without
    separators are an SSN only after a word that says so."""
    digits = text[start:end]
    if len(digits) == 9:
        if not said_before(text, start, _SSN_WORDS):
            return None
    else:
        digits = digits[:3] + digits[4:6] + digits[7:]
    area, group, serial = digits[:3], digits[3:5], digits[5:]
    if area in ("000", "666") or area[0] == "9" or group == "00" or serial == "0000":
        return None
    return start, end


_NINO_FIRST_BAD = frozenset("DFIQUV")
_NINO_SECOND_BAD = frozenset("DFIOQUV")
_NINO_PREFIX_BAD = frozenset({"BG", "GB", "KN", "NK", "NT", "TN", "ZZ"})


def nino(text: str, start: int, end: int) -> tuple[int, int] | None:
    """A National Insurance number whose digits start at text[start]. HMRC rules: no D, F, I,
    Q, U, V in the prefix, nor O second; some pairs never issued; suffix A to D."""
    first = start - 3 if text[start - 1] == " " else start - 2
    prefix = text[first : first + 2].upper()
    if prefix[0] in _NINO_FIRST_BAD or prefix[1] in _NINO_SECOND_BAD or prefix in _NINO_PREFIX_BAD:
        return None
    return first, end


def email(text: str, start: int, end: int) -> tuple[int, int] | None:
    """An address whose "@" is text[start]: dot-atom local part (found leftwards, at most 64
    characters), domain labels not starting or ending with "-", an alphabetic TLD."""
    first, floor = start, max(0, start - 64)
    while first > floor and (text[first - 1].isalnum() or text[first - 1] in _LOCAL):
        first -= 1
    if first > 0 and (text[first - 1].isalnum() or text[first - 1] in _LOCAL):
        return None  # a local part longer than 64 characters
    # A local part never holds "..", and neither may the dots stripped before it: otherwise
    # "a@b.cc..d@e.ff" would read differently once its first address became "<EMAIL>".
    if ".." in text[first:start]:
        return None
    while first < start and text[first] in ".'":
        first += 1
    local = text[first:start]
    if not local or local.endswith("."):
        return None
    labels = text[start + 1 : end].split(".")
    tld = labels[-1]
    if len(tld) < 2 or not tld.isalpha() or any(lb[0] == "-" or lb[-1] == "-" for lb in labels):
        return None
    return first, end


# --- phone numbers ----------------------------------------------------------------------------

# National formats, as digit-group lengths (trunk prefix included), per region. A run of digits
# becomes a phone number only in one of these shapes or in E.164 form: "13/01/2024",
# "2024-118734" and "12:30" have none of them.
_SHAPES: dict[str, tuple[tuple[int, ...], ...]] = {
    "GB": ((11,), (5, 6), (5, 3, 3), (3, 4, 4), (4, 3, 4), (4, 7), (3, 8), (5, 5), (4, 6),
           (4, 3, 3)),
    "US": ((3, 3, 4), (1, 3, 3, 4), (10,), (11,)),
    "DE": ((3, 7), (3, 8), (4, 7), (4, 8), (4, 6), (5, 5), (5, 6), (3, 5, 3), (4, 4, 3),
           (3, 4, 4), (4, 4, 4), (10,), (11,), (12,)),
    "FR": ((2, 2, 2, 2, 2), (10,)),
    "IT": ((2, 4, 4), (3, 3, 4), (3, 7), (2, 8), (3, 4, 3), (10,)),
    "ES": ((3, 3, 3), (3, 2, 2, 2), (2, 3, 2, 2), (9,)),
    "NL": ((3, 7), (2, 8), (3, 3, 4), (2, 4, 4), (3, 3, 2, 2), (2, 2, 2, 2, 2), (10,)),
    "PL": ((3, 3, 3), (2, 3, 2, 2), (9,)),
}  # fmt: skip
_REGIONS_BY_SHAPE: dict[tuple[int, ...], tuple[str, ...]] = {}
for _region, _shapes in _SHAPES.items():
    for _shape in _shapes:
        _REGIONS_BY_SHAPE[_shape] = (*_REGIONS_BY_SHAPE.get(_shape, ()), _region)
_NO_TRUNK_PREFIX = frozenset({"IT", "ES", "PL"})
_CALLING_CODE = {region: phonenumbers.country_code_for_region(region) for region in _SHAPES}
_DIGIT_RUN = re.compile(r"[0-9]+")
_NOT_DIGITS = str.maketrans("", "", " ()+-./")


def _possible(calling_code: int, nsn: str, *, in_service: bool = False) -> bool:
    # Possible (right length for the country), not valid: fictional ranges such as
    # +44 7700 900xxx are not in service, and a redactor must still hide them. Unless the
    # digits alone are weak evidence (`in_service`), when the range must be one in use.
    if not in_service:
        return _possible_length(calling_code, len(nsn))
    zeros = len(nsn) - len(nsn.lstrip("0"))
    number = PhoneNumber(
        country_code=calling_code,
        national_number=int(nsn),
        italian_leading_zero=True if zeros else None,
        number_of_leading_zeros=zeros if zeros > 1 else None,
    )
    return bool(phonenumbers.is_valid_number(number))


@functools.cache
def _possible_length(calling_code: int, length: int) -> bool:
    # phonenumbers' possibility check reads only the length of the national significant
    # number (its documented contract), so one answer per country code and length holds.
    number = PhoneNumber(country_code=calling_code, national_number=int("1" * length))
    reason = phonenumbers.is_possible_number_with_reason(number)
    return bool(reason == ValidationResult.IS_POSSIBLE)


def _national_number(region: str, digits: str) -> str | None:
    """The national significant number of `digits` dialled within `region`, or None."""
    first = digits[0]
    if region in ("GB", "DE", "FR", "NL"):
        return digits[1:] if first == "0" and digits[1] != "0" else None
    if region == "US":
        nsn = digits[1:] if len(digits) == 11 and first == "1" else digits
        return nsn if len(nsn) == 10 and nsn[0] in "23456789" and nsn[3] in "23456789" else None
    if region == "IT":
        return digits if first in "03" else None
    if region == "ES":
        return digits if first in "6789" else None
    return digits if first != "0" else None  # PL


def _national_ok(text: str, start: int, digits: str, shape: tuple[int, ...]) -> bool:
    # A bare run of digits without a trunk prefix ("2015550123") is as likely an order number:
    # it is a phone number only after a word that says so.
    if (
        len(shape) == 1
        and not (digits[0] == "0" and digits[1] != "0")
        and not said_before(text, start, _PHONE_WORDS)
    ):
        return False
    for region in _REGIONS_BY_SHAPE.get(shape, ()):
        # Groups of four digits are a German mobile number (015x, 016x, 017x) or a longer
        # number's parts: the end of a mistyped IBAN or card.
        if region == "DE" and shape[:2] == (4, 4) and not digits.startswith(("015", "016", "017")):
            continue
        nsn = _national_number(region, digits)
        # Without a trunk prefix ("612 345 678", "347 123 4567"), nine or ten digits in
        # groups could be anything (a parcel number): the number must be in a range in use.
        in_service = region in _NO_TRUNK_PREFIX
        if nsn is not None and _possible(_CALLING_CODE[region], nsn, in_service=in_service):
            return True
    return False


def _international_ok(digits: str) -> bool:
    for size in (1, 2, 3):
        code = int(digits[:size])
        if code in COUNTRY_CODE_TO_REGION_CODE:
            nsn = digits[size:]
            # "+44 07700 900123": a trunk prefix written after the country code by habit.
            if nsn[:1] == "0" and code != 39 and not _possible(code, nsn):
                nsn = nsn[1:]
            return len(nsn) >= 4 and _possible(code, nsn)
    return False


def phone_national(text: str, start: int, end: int) -> tuple[int, int] | None:
    """A phone number in a national format of GB, US, DE, FR, IT, ES, NL or PL."""
    return _phone(text, start, end, international=False)


def phone_international(text: str, start: int, end: int) -> tuple[int, int] | None:
    """A phone number after "+" or "00" and a country calling code."""
    return _phone(text, start, end, international=True)


def _phone(text: str, start: int, end: int, *, international: bool) -> tuple[int, int] | None:
    """The longest phone number that text[start:end] begins with.

    A candidate may run on into a following number ("07700 900123 2 times"): digit groups are
    dropped from its end until what is left is a possible number.
    """
    candidate = text[start:end]
    # The shortest numbers: 8 digits after "+"; 9 in a national format.
    if len(candidate.translate(_NOT_DIGITS)) < (8 if international else 9):
        return None
    if international:
        # "+44 (0)20 ...": the trunk prefix in brackets is not dialled from abroad.
        candidate = candidate.replace("(0)", "(")
    groups = _DIGIT_RUN.findall(candidate)
    for count in range(len(groups), 0, -1):
        digits = "".join(groups[:count])
        if international:
            digits = digits[2:] if digits[0] == "0" else digits
            ok = 8 <= len(digits) <= 15 and _international_ok(digits)
        else:
            shape = tuple(len(group) for group in groups[:count])
            ok = 9 <= len(digits) <= 13 and _national_ok(text, start, digits, shape)
        if ok:
            if count == len(groups):
                return start, end
            runs = [
                r
                for r in _DIGIT_RUN.finditer(text, start, end)
                if r.group() != "0"
                or not international
                or text[r.start() - 1 : r.end() + 1] != "(0)"
            ]
            return start, runs[count - 1].end()
    return None


# --- the scan ------------------------------------------------------------------------------


class Branch(NamedTuple):
    """One kind of candidate: its first character, the rest of its pattern, its check."""

    kind: Kind
    first: str
    rest: str
    check: Validator
    # Found at a character inside it ("@", ":", the first digit) and extended leftwards by its
    # check, rather than where a token starts.
    anchored: bool = False


# Every candidate's first character is one of these; the scan skips all others in C, so text
# without digits, "+", "(", "@" or ":" costs next to nothing.
FIRST = r"[0-9+(@:]"
# Candidates start where a token starts: not inside a word or a longer number ("ORD-2024-...",
# "v1.2.3.4", "13/01/2024", but "http://192.0.2.1" is fine), nor right after a placeholder, so
# that redacting twice changes nothing (starts_token is the same rule). Checked
# once the first character is consumed, hence the widths of 2 and 3.
START = r"(?<![\w.+@>-].)(?<![\w>]/.)"
# ... and end where the token ends (a number may be followed by a full stop, not by ".5"). "<"
# and ">" count as part of a word: redacted text must not give a candidate more room.
_END = r"(?![\w<]|[./-][0-9<])"
_LETTERS = r"(?<![\w.+@>-])[A-Za-z]{2}"  # two letters that start a token

# In priority order: where two candidates start at the same place, the first that validates
# wins (an IBAN over the digits inside it, a card or an SSN over a phone shape).
BRANCHES: dict[str, Branch] = {
    "EMAIL": Branch(
        Kind.EMAIL, "@", r"[\w-]{1,63}(?:\.[\w-]{1,63}){1,8}(?![\w<-]|\.[\w<-])", email, True
    ),
    "IP6": Branch(
        Kind.IP,
        ":",
        r"(?:[0-9A-Fa-f]{0,4}:){1,6}+(?:[0-9]{1,3}(?:\.[0-9]{1,3}){3}|[0-9A-Fa-f]{1,4})?"
        r"(?![\w<:]|\.[0-9<])",
        ip6,
        True,
    ),
    "IBAN": Branch(
        Kind.IBAN,
        "[0-9]",
        rf"(?<={_LETTERS}[0-9])[0-9](?:[ ]?[A-Za-z0-9]{{4}}){{2,8}}+(?:[ ]?[A-Za-z0-9]{{1,3}})?"
        r"(?![\w<])",
        iban,
        True,
    ),
    "UK_NINO": Branch(
        Kind.UK_NINO,
        "[0-9]",
        rf"(?:(?<={_LETTERS}[0-9])|(?<={_LETTERS} [0-9]))"
        r"[0-9][ ]?[0-9]{2}[ ]?[0-9]{2}[ ]?[A-Da-d](?![\w<])",
        nino,
        True,
    ),
    "CARD": Branch(
        Kind.CARD,
        "[0-9]",
        r"(?:[0-9]{12,18}+|[0-9]{3}(?P<cs>[ -])[0-9]{4}(?P=cs)[0-9]{4}(?P=cs)[0-9]{1,4}"
        r"(?:(?P=cs)[0-9]{1,3})?|[0-9]{3}(?P<ca>[ -])[0-9]{6}(?P=ca)[0-9]{4,5})" + _END,
        card,
    ),
    "US_SSN": Branch(
        Kind.US_SSN,
        "[0-9]",
        r"[0-9]{2}(?:(?P<ss>[- ])[0-9]{2}(?P=ss)|[0-9]{2})[0-9]{4}" + _END,
        ssn,
    ),
    "IP4": Branch(Kind.IP, "[0-9]", r"[0-9]{0,2}(?:\.[0-9]{1,3}){3}(?![\w<]|\.[0-9<])", ip4),
    "PHONE_INTL": Branch(
        Kind.PHONE,
        "[+0]",
        # Not "00" right after another group of digits: "2223 0031 2200 3224" is one number.
        r"(?:(?<=\+)|(?<![0-9][ ./-]0)(?<=0)0)[1-9][0-9]{0,2}(?:[ .-]?\(0\))?"
        r"(?:[ ./-]?\(?[0-9]{1,6}+\)?){1,7}" + _END,
        phone_international,
    ),
    "PHONE_NAT": Branch(
        Kind.PHONE,
        "[0-9(]",
        r"(?:(?<=\()[0-9]{1,12}+|(?<=[0-9])[0-9]{0,11}+)"
        r"(?:(?:\)[ ]?|\)?[ ./-]| / )[0-9]{1,12}+){0,5}" + _END,
        phone_national,
    ),
}


def _pattern(names: tuple[str, ...]) -> str:
    """One alternation over `names` (in priority order), after the shared first character."""
    anchored: list[str] = []
    grouped: list[tuple[str, list[str]]] = []  # branches wanting the same first character
    for name in names:
        branch = BRANCHES[name]
        body = f"(?P<{name}>{branch.rest})"
        if branch.anchored:
            anchored.append(f"(?<={branch.first}){body}")
        elif grouped and grouped[-1][0] == branch.first:
            grouped[-1][1].append(body)
        else:
            grouped.append((branch.first, [body]))
    alternatives = anchored
    if grouped:
        token = "|".join(f"(?<={first})(?:{'|'.join(group)})" for first, group in grouped)
        alternatives.append(f"{START}(?:{token})")
    return f"{FIRST}(?:{'|'.join(alternatives)})"


_ORDER = tuple(BRANCHES)
_CANDIDATES = re.compile(_pattern(_ORDER))
# Each branch alone, to try the later ones where an earlier one matched but did not validate.
_ALONE = {name: re.compile(_pattern((name,))) for name in _ORDER}
_LATER = {name: _ORDER[i + 1 :] for i, name in enumerate(_ORDER)}


def find(text: str) -> list[Span]:
    """The PII spans of `text`, in order and not overlapping. Never raises; linear time."""
    spans: list[Span] = []
    search = _CANDIDATES.search
    pos = 0
    while (m := search(text, pos)) is not None:
        start = m.start()
        name = m.lastgroup or ""
        found = BRANCHES[name].check(text, start, m.end())
        if found is None:
            for later in _LATER[name]:
                alone = _ALONE[later].match(text, start)
                if alone is not None and (found := BRANCHES[later].check(text, start, alone.end())):
                    name = later
                    break
        if found is None:
            pos = start + 1
            continue
        first, end = found
        # An anchored candidate is confirmed after what precedes its anchor was scanned: it
        # takes over any span found there (the phone number that is an e-mail's local part).
        while spans and spans[-1].end > first:
            first = min(first, spans.pop().start)
        spans.append(Span(first, end, BRANCHES[name].kind))
        pos = end
    return spans


def redact(text: str) -> str:
    """`text` with each PII span replaced by its placeholder (`<EMAIL>`, `<PHONE>`, ...)."""
    spans = find(text)
    if not spans:
        return text
    parts: list[str] = []
    pos = 0
    for span in spans:
        parts.append(text[pos : span.start])
        parts.append(f"<{span.kind}>")
        pos = span.end
    parts.append(text[pos:])
    return "".join(parts)
