//! The checks that confirm or reject a candidate: each takes the text (code points) and the
//! candidate `text[start..end]`, and gives the PII's `(start, end)`, possibly moved, or None.
//! Character classes are Python's: `is_alnum` is `str.isalnum`, `is_word` the regex `\w`.

use super::tables::{ALNUM, ALPHA};

fn in_table(table: &[(u32, u32)], c: char) -> bool {
    let cp = c as u32;
    table
        .binary_search_by(|&(lo, hi)| {
            if hi < cp {
                std::cmp::Ordering::Less
            } else if lo > cp {
                std::cmp::Ordering::Greater
            } else {
                std::cmp::Ordering::Equal
            }
        })
        .is_ok()
}

/// Python's `str.isalnum()` of one character.
pub fn is_alnum(c: char) -> bool {
    if c.is_ascii() {
        c.is_ascii_alphanumeric()
    } else {
        in_table(&ALNUM, c)
    }
}

/// Python's `str.isalpha()` of one character.
pub fn is_alpha(c: char) -> bool {
    if c.is_ascii() {
        c.is_ascii_alphabetic()
    } else {
        in_table(&ALPHA, c)
    }
}

/// The regex class `\w` (Unicode): alphanumeric or "_".
pub fn is_word(c: char) -> bool {
    c == '_' || is_alnum(c)
}

pub fn digit(t: &[char], i: usize) -> bool {
    t.get(i).is_some_and(char::is_ascii_digit)
}

pub fn is(t: &[char], i: usize, c: char) -> bool {
    t.get(i) == Some(&c)
}

pub fn one_of(t: &[char], i: usize, set: &str) -> bool {
    t.get(i).is_some_and(|c| set.contains(*c))
}

/// How many ASCII digits start at `i`.
pub fn digits_at(t: &[char], i: usize) -> usize {
    t.get(i..).map_or(0, |rest| {
        rest.iter().take_while(|c| c.is_ascii_digit()).count()
    })
}

/// True when text[i] may begin a token: not inside a word or a longer number, nor right after
/// a placeholder ("http://192.0.2.1" is fine).
pub fn starts_token(t: &[char], i: usize) -> bool {
    if i == 0 {
        return true;
    }
    let before = t[i - 1];
    if before == '/' {
        return i == 1 || !(is_alnum(t[i - 2]) || "_>".contains(t[i - 2]));
    }
    !(is_alnum(before) || "_.+@>-".contains(before))
}

/// A character as the case-insensitive word match sees it (Python's `(?i)` for the letters
/// of the words below: "ſ" is an "s", the Kelvin sign a "k", "İ" and "ı" an "i").
fn fold(c: char) -> char {
    match c {
        'A'..='Z' => c.to_ascii_lowercase(),
        '\u{17F}' => 's',
        '\u{212A}' => 'k',
        '\u{130}' | '\u{131}' => 'i',
        'É' => 'é',
        'Ó' => 'ó',
        _ => c,
    }
}

/// Words that make a bare run of digits a phone number ("1" stands for [eé], "2" for [óo]).
pub const PHONE_WORDS: &[&str] = &[
    "phone",
    "tel",
    "mobile",
    "cell",
    "call",
    "ring",
    "text",
    "sms",
    "whatsapp",
    "handy",
    "num1r",
    "portable",
    "m2vil",
    "cellulare",
    "mobiel",
    "kom2rk",
];
/// Words that make nine bare digits an SSN.
pub const SSN_WORDS: &[&str] = &["ssn", "social"];

fn word_at(t: &[char], i: usize, end: usize, word: &str) -> bool {
    let Some(window) = t.get(i..end) else {
        return false;
    };
    window.len() >= word.len()
        && word.chars().zip(window).all(|(w, &c)| {
            let c = fold(c);
            match w {
                '1' => c == 'e' || c == 'é',
                '2' => c == 'o' || c == 'ó',
                _ => c == w,
            }
        })
}

/// True when one of `words` starts a word among the 32 characters before text[start]. The
/// look stops at a placeholder, so that a second redaction finds nothing new.
pub fn said_before(t: &[char], start: usize, words: &[&str]) -> bool {
    let mut floor = start.saturating_sub(32);
    if let Some(gt) = t[floor..start].iter().rposition(|&c| c == '>') {
        floor += gt + 1;
    }
    (floor..start).any(|i| {
        let free = i == 0 || !(is_word(t[i - 1]) || t[i - 1] == '<' || t[i - 1] == '>');
        free && words.iter().any(|w| word_at(t, i, start, w))
    })
}

// --- cards, IBANs, IP addresses, SSNs, NI numbers -------------------------------------------

/// True when the ASCII digits pass the Luhn (mod 10) check.
pub fn luhn_ok(digits: &[u8]) -> bool {
    const DOUBLE: [u32; 10] = [0, 2, 4, 6, 8, 1, 3, 5, 7, 9];
    let total: u32 = digits
        .iter()
        .rev()
        .enumerate()
        .map(|(i, &d)| {
            let d = u32::from(d - b'0');
            if i % 2 == 1 {
                DOUBLE[d as usize]
            } else {
                d
            }
        })
        .sum();
    total.is_multiple_of(10)
}

/// Issuer identification: Visa 13/16/19, Amex 15, Mastercard 16; other issuers 14-19.
pub fn card_brand_ok(digits: &[u8]) -> bool {
    let n = digits.len();
    let prefix = |k: usize| -> u32 {
        digits[..k]
            .iter()
            .fold(0, |acc, &d| acc * 10 + u32::from(d - b'0'))
    };
    if digits[0] == b'4' {
        return matches!(n, 13 | 16 | 19);
    }
    if matches!(prefix(2), 34 | 37) {
        return n == 15;
    }
    if (51..=55).contains(&prefix(2)) || (2221..=2720).contains(&prefix(4)) {
        return n == 16;
    }
    matches!(digits[0], b'3'..=b'6') && n >= 14
}

/// A payment card number: 13-19 digits, issuer lengths, Luhn.
pub fn card(t: &[char], start: usize, end: usize) -> Option<(usize, usize)> {
    let digits: Vec<u8> = t[start..end]
        .iter()
        .filter(|c| c.is_ascii_digit())
        .map(|&c| c as u8)
        .collect();
    ((13..=19).contains(&digits.len()) && card_brand_ok(&digits) && luhn_ok(&digits))
        .then_some((start, end))
}

/// ISO 13616 registry: total IBAN length per country (SWIFT IBAN Registry).
const IBAN_LENGTHS: &str = "AD24 AE23 AL28 AT20 AZ28 BA20 BE16 BG22 BH22 BI27 BR29 BY28 CH21 \
    CR22 CY28 CZ24 DE22 DJ27 DK18 DO28 EE20 EG29 ES24 FI18 FK18 FO18 FR27 GB22 GE22 GI23 GL18 \
    GR27 GT28 HN28 HR21 HU28 IE22 IL23 IQ23 IS26 IT27 JO30 KW30 KZ20 LB28 LC32 LI21 LT20 LU20 \
    LV21 LY25 MC27 MD24 ME22 MK19 MN20 MR27 MT31 MU30 NI28 NL18 NO15 OM23 PK24 PL28 PS29 PT25 \
    QA29 RO24 RS22 RU33 SA24 SC31 SD18 SE24 SI19 SK24 SM27 SO23 ST25 SV28 TL23 TN24 TR26 UA29 \
    VA22 VG24 XK20 YE30";

/// The IBAN length of a country (upper-case code), if it has IBANs.
pub fn iban_length(country: &[u8]) -> Option<usize> {
    IBAN_LENGTHS.split_whitespace().find_map(|entry| {
        let entry = entry.as_bytes();
        (entry[..2] == *country)
            .then(|| usize::from(entry[2] - b'0') * 10 + usize::from(entry[3] - b'0'))
    })
}

/// True for an upper-case IBAN without spaces: known country, its length, mod-97 remainder 1.
pub fn iban_ok(compact: &[u8]) -> bool {
    if compact.len() < 4
        || !compact.iter().all(u8::is_ascii_alphanumeric)
        || iban_length(&compact[..2]) != Some(compact.len())
    {
        return false;
    }
    let mut remainder: u32 = 0;
    for &c in compact[4..].iter().chain(&compact[..4]) {
        let value = u32::from(if c.is_ascii_digit() {
            c - b'0'
        } else {
            c.to_ascii_uppercase() - b'A' + 10
        });
        remainder = if value < 10 {
            (remainder * 10 + value) % 97
        } else {
            (remainder * 100 + value) % 97
        };
    }
    remainder == 1
}

/// An IBAN whose check digits start at text[start], its country code before them. The
/// candidate may run on into the next word ("... 7034 with"): the country's length ends it.
pub fn iban(t: &[char], start: usize, end: usize) -> Option<(usize, usize)> {
    let first = start.checked_sub(2)?;
    let country = [
        t[first].to_ascii_uppercase() as u8,
        t[first + 1].to_ascii_uppercase() as u8,
    ];
    let length = iban_length(&country).unwrap_or(0);
    let (mut stop, mut count) = (first, 0);
    while stop < end && count < length {
        count += usize::from(t[stop] != ' ');
        stop += 1;
    }
    if count < length || (stop < end && t[stop] != ' ') {
        return None;
    }
    let compact: Vec<u8> = t[first..stop]
        .iter()
        .filter(|&&c| c != ' ')
        .map(|&c| {
            if c.is_ascii() {
                c.to_ascii_uppercase() as u8
            } else {
                0
            }
        })
        .collect();
    iban_ok(&compact).then_some((first, stop))
}

/// A dotted-quad IPv4 address as Python's `ipaddress` reads it (no octet over 255, no
/// leading zeros).
pub fn ip4_ok(s: &[char]) -> bool {
    let mut parts = 0;
    for octet in s.split(|&c| c == '.') {
        parts += 1;
        if octet.is_empty()
            || octet.len() > 3
            || !octet.iter().all(char::is_ascii_digit)
            || (octet.len() > 1 && octet[0] == '0')
        {
            return false;
        }
        let value = octet
            .iter()
            .fold(0u32, |acc, &c| acc * 10 + (c as u32 - '0' as u32));
        if value > 255 {
            return false;
        }
    }
    parts == 4
}

pub fn ip4(t: &[char], start: usize, end: usize) -> Option<(usize, usize)> {
    ip4_ok(&t[start..end]).then_some((start, end))
}

/// An IPv6 address as Python's `ipaddress.IPv6Address` reads it.
pub fn ip6_ok(s: &[char]) -> bool {
    let mut parts: Vec<&[char]> = s.split(|&c| c == ':').collect();
    if parts.len() < 3 {
        return false;
    }
    let last = parts[parts.len() - 1];
    if last.contains(&'.') {
        if !ip4_ok(last) {
            return false;
        }
        parts.pop();
        // Two non-empty hextets stand in for the IPv4 suffix.
        parts.push(&['0']);
        parts.push(&['0']);
    }
    if parts.len() > 9 {
        return false;
    }
    let mut skip = None;
    for (i, part) in parts.iter().enumerate().take(parts.len() - 1).skip(1) {
        if part.is_empty() {
            if skip.is_some() {
                return false;
            }
            skip = Some(i);
        }
    }
    let n = parts.len();
    let (hi, lo) = if let Some(skip) = skip {
        let (mut hi, mut lo) = (skip, n - skip - 1);
        if parts[0].is_empty() {
            hi -= 1;
            if hi != 0 {
                return false;
            }
        }
        if parts[n - 1].is_empty() {
            lo -= 1;
            if lo != 0 {
                return false;
            }
        }
        if 8 < hi + lo + 1 {
            return false;
        }
        (hi, lo)
    } else {
        if n != 8 || parts[0].is_empty() || parts[n - 1].is_empty() {
            return false;
        }
        (n, 0)
    };
    let hextet =
        |p: &[char]| !p.is_empty() && p.len() <= 4 && p.iter().all(char::is_ascii_hexdigit);
    parts[..hi].iter().all(|p| hextet(p)) && parts[n - lo..].iter().all(|p| hextet(p))
}

/// An IPv6 address whose first ":" is text[start]: its first group is found leftwards.
pub fn ip6(t: &[char], start: usize, end: usize) -> Option<(usize, usize)> {
    let mut first = start;
    while first + 4 > start && first > 0 && t[first - 1].is_ascii_hexdigit() {
        first -= 1;
    }
    let candidate = &t[first..end];
    // Clock times ("10:30:00") and MAC addresses fail the parse; "::" alone is no address.
    if !starts_token(t, first) || (first > 0 && t[first - 1] == ':') || candidate == [':', ':'] {
        return None;
    }
    ip6_ok(candidate).then_some((first, end))
}

/// SSA rules: no area 000, 666 or 9xx, no group 00, no serial 0000. Nine digits without
/// separators are an SSN only after a word that says so.
pub fn ssn(t: &[char], start: usize, end: usize) -> Option<(usize, usize)> {
    let c = &t[start..end];
    let digits: Vec<char> = if c.len() == 9 {
        if !said_before(t, start, SSN_WORDS) {
            return None;
        }
        c.to_vec()
    } else {
        c[..3]
            .iter()
            .chain(&c[4..6])
            .chain(&c[7..])
            .copied()
            .collect()
    };
    let (area, group, serial) = (&digits[..3], &digits[3..5], &digits[5..]);
    if area == ['0', '0', '0']
        || area == ['6', '6', '6']
        || area[0] == '9'
        || group == ['0', '0']
        || serial == ['0', '0', '0', '0']
    {
        return None;
    }
    Some((start, end))
}

/// A National Insurance number whose digits start at text[start]. HMRC rules: no D, F, I,
/// Q, U, V in the prefix, nor O second; some pairs never issued; suffix A to D.
pub fn nino(t: &[char], start: usize, end: usize) -> Option<(usize, usize)> {
    let first = if t[start - 1] == ' ' {
        start - 3
    } else {
        start - 2
    };
    let (a, b) = (
        t[first].to_ascii_uppercase(),
        t[first + 1].to_ascii_uppercase(),
    );
    let pair: String = [a, b].iter().collect();
    if "DFIQUV".contains(a)
        || "DFIOQUV".contains(b)
        || ["BG", "GB", "KN", "NK", "NT", "TN", "ZZ"].contains(&pair.as_str())
    {
        return None;
    }
    Some((first, end))
}

fn local_char(c: char) -> bool {
    is_alnum(c) || "._%+'-".contains(c)
}

/// An address whose "@" is text[start]: dot-atom local part (found leftwards, at most 64
/// characters), domain labels not starting or ending with "-", an alphabetic TLD.
pub fn email(t: &[char], start: usize, end: usize) -> Option<(usize, usize)> {
    let floor = start.saturating_sub(64);
    let mut first = start;
    while first > floor && local_char(t[first - 1]) {
        first -= 1;
    }
    if first > 0 && local_char(t[first - 1]) {
        return None; // a local part longer than 64 characters
    }
    // A local part never holds "..", and neither may the dots stripped before it: otherwise
    // "a@b.cc..d@e.ff" would read differently once its first address became "<EMAIL>".
    if t[first..start].windows(2).any(|w| w == ['.', '.']) {
        return None;
    }
    while first < start && (t[first] == '.' || t[first] == '\'') {
        first += 1;
    }
    if first == start || t[start - 1] == '.' {
        return None;
    }
    let domain = &t[start + 1..end];
    let labels: Vec<&[char]> = domain.split(|&c| c == '.').collect();
    let tld = labels[labels.len() - 1];
    if tld.len() < 2
        || !tld.iter().all(|&c| is_alpha(c))
        || labels
            .iter()
            .any(|l| l.first() == Some(&'-') || l.last() == Some(&'-'))
    {
        return None;
    }
    Some((first, end))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chars(s: &str) -> Vec<char> {
        s.chars().collect()
    }

    #[test]
    fn python_character_classes() {
        assert!(is_alnum('é') && is_alnum('²') && is_alnum('½') && is_alnum('٣'));
        assert!(!is_alnum('\u{301}') && !is_alnum('Ⓐ') && !is_alnum('_') && !is_alnum('\u{FFFD}'));
        assert!(is_word('_') && is_alpha('ß') && !is_alpha('²'));
    }

    #[test]
    fn luhn() {
        assert!(luhn_ok(b"79927398713"));
        assert!(!luhn_ok(b"79927398710"));
        for (i, d) in b"4111111111111111".iter().enumerate() {
            for other in b'0'..=b'9' {
                if other != *d {
                    let mut wrong = *b"4111111111111111";
                    wrong[i] = other;
                    assert!(!luhn_ok(&wrong));
                }
            }
        }
    }

    #[test]
    fn card_brands_and_lengths() {
        for (digits, ok) in [
            ("4111111111111111", true),
            ("4222222222222", true),
            ("378282246310005", true),
            ("5555555555554444", true),
            ("2223003122003222", true),
            ("6011111111111117", true),
            ("4111111111111", false),
            ("37828224631000", false),
            ("5555555555554444000", false),
            ("1234567812345670", false),
            ("411111111111", false),
        ] {
            let t = chars(digits);
            assert_eq!(card(&t, 0, t.len()).is_some(), ok, "{digits}");
        }
        let t = chars("4111 1111 1111 1111");
        assert!(card(&t, 0, t.len()).is_some());
    }

    #[test]
    fn iban_mod_97() {
        for iban in [
            "GB82WEST12345698765432",
            "DE89370400440532013000",
            "FR1420041010050500013M02606",
            "NL91ABNA0417164300",
            "NO9386011117947",
        ] {
            assert!(iban_ok(iban.as_bytes()), "{iban}");
            let mut wrong = iban.as_bytes().to_vec();
            wrong[5] = if wrong[5] == b'9' { b'8' } else { b'9' };
            assert!(!iban_ok(&wrong), "{iban}");
        }
        assert!(!iban_ok(b"GB82WEST1234569876543"));
        assert!(!iban_ok(b"XX82WEST12345698765432"));
        let t = chars("BE68 5390 0754 7034 with");
        assert_eq!(iban(&t, 2, t.len()), Some((0, 19)));
        let t = chars("BE68 5390 0754 7035");
        assert_eq!(iban(&t, 2, 19), None);
    }

    #[test]
    fn ipv4() {
        for (s, ok) in [
            ("192.0.2.1", true),
            ("255.255.255.255", true),
            ("0.0.0.0", true),
            ("256.1.1.1", false),
            ("192.0.2.01", false),
            ("1.2.3", false),
            ("1.2.3.4.5", false),
        ] {
            assert_eq!(ip4_ok(&chars(s)), ok, "{s}");
        }
    }

    #[test]
    fn ipv6() {
        for (s, ok) in [
            ("2001:db8::1", true),
            ("::1", true),
            ("::", true),
            ("fe80::1:2", true),
            ("::ffff:192.0.2.1", true),
            ("1:2:3:4:5:6:7:8", true),
            ("1:2:3:4:5:6:7::", true),
            ("1:2:3:4:5:6:192.0.2.1", true),
            ("1:2:3:4:5:6:7:8:9", false),
            ("1::2::3", false),
            ("10:30:00", false),
            ("00:1a:2b:3c:4d:5e", false),
            (":1:2:3:4:5:6:7", false),
            ("1:2:3:4:5:6:7:", false),
            ("12345::1", false),
            ("::ffff:192.0.2.01", false),
            ("1:2:3:4:5:6:7:8::", false),
        ] {
            assert_eq!(ip6_ok(&chars(s)), ok, "{s}");
        }
        let t = chars("x2001:db8::1");
        assert_eq!(ip6(&t, 5, t.len()), None);
        let t = chars("2001:db8::1");
        assert_eq!(ip6(&t, 4, t.len()), Some((0, 11)));
    }

    #[test]
    fn ssn_rules() {
        for (text, start, ok) in [
            ("123-45-6789", 0, true),
            ("000-12-3456", 0, false),
            ("666-12-3456", 0, false),
            ("912-12-3456", 0, false),
            ("123-00-4567", 0, false),
            ("123-45-0000", 0, false),
            ("123456789", 0, false),
            ("SSN 123456789", 4, true),
            ("social: 123456789", 8, true),
            ("ſsn 123456789", 4, true),
        ] {
            let t = chars(text);
            assert_eq!(ssn(&t, start, t.len()).is_some(), ok, "{text}");
        }
    }

    #[test]
    fn nino_rules() {
        for (text, start, ok) in [
            ("AB123456C", 2, true),
            ("AB 12 34 56 C", 3, true),
            ("DA123456C", 2, false),
            ("AO123456C", 2, false),
            ("GB123456C", 2, false),
            ("ZZ123456C", 2, false),
        ] {
            let t = chars(text);
            assert_eq!(nino(&t, start, t.len()).is_some(), ok, "{text}");
        }
    }

    #[test]
    fn email_parts() {
        let found = |s: &str| {
            let t = chars(s);
            let at = s.chars().position(|c| c == '@').unwrap();
            email(&t, at, t.len()).map(|(a, b)| t[a..b].iter().collect::<String>())
        };
        assert_eq!(
            found("'o'brien@example.net").as_deref(),
            Some("o'brien@example.net")
        );
        assert_eq!(found("ana.@example.com"), None);
        assert_eq!(found("ana..lee@example.com"), None);
        assert_eq!(found("ana@-example.com"), None);
        assert_eq!(found("ana@example.c0m"), None);
        assert_eq!(found(&format!("{}@example.com", "a".repeat(65))), None);
        assert_eq!(found("zoë@example.de").as_deref(), Some("zoë@example.de"));
    }

    #[test]
    fn words_said_before() {
        let t = chars("ssn: 1");
        assert!(said_before(&t, 5, SSN_WORDS));
        let far = chars(&format!("ssn{}1", " ".repeat(40)));
        assert!(!said_before(&far, far.len() - 1, SSN_WORDS));
        let t = chars("ssn <SSN> 1");
        assert!(!said_before(&t, 10, SSN_WORDS));
        let t = chars("Handynummer 1");
        assert!(said_before(&t, 12, PHONE_WORDS));
        let t = chars("xphone 1");
        assert!(!said_before(&t, 7, PHONE_WORDS));
        let t = chars("NÚMERO 1");
        assert!(!said_before(&t, 7, PHONE_WORDS));
        let t = chars("NÉMERO numÉro 1");
        assert!(said_before(&t, 14, PHONE_WORDS));
    }
}
