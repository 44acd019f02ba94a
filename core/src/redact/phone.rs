//! Phone numbers: a candidate is confirmed by libphonenumber's metadata (the tables in
//! tables.rs, generated from the pinned Python `phonenumbers` by scripts/redact_tables.py):
//! the possible lengths of each country calling code's national numbers, and, for the
//! countries whose national numbers are written without a trunk prefix (IT, ES, PL), the
//! number patterns of the ranges in service.

use std::sync::LazyLock;

use regex::Regex;

use super::check::said_before;
use super::check::PHONE_WORDS;
use super::tables::{POSSIBLE_LENGTHS, REGIONS};

/// One kind of number of a region (fixed line, mobile, toll free...): its national number
/// pattern and the lengths it allows (none listed: any).
pub struct Desc {
    pub pattern: &'static str,
    pub lengths: &'static [usize],
}

/// A region's metadata, as far as `is_valid_number` reads it.
pub struct Region {
    pub code: u16,
    pub name: &'static str,
    pub leading_digits: Option<&'static str>,
    pub general: Desc,
    pub types: &'static [Desc],
}

struct Compiled {
    code: u16,
    leading_digits: Option<Regex>,
    general: (Regex, &'static [usize]),
    types: Vec<(Regex, &'static [usize])>,
}

fn whole(pattern: &str) -> Regex {
    Regex::new(&format!("^(?:{pattern})$")).expect("libphonenumber pattern")
}

static COMPILED: LazyLock<Vec<Compiled>> = LazyLock::new(|| {
    REGIONS
        .iter()
        .map(|r| Compiled {
            code: r.code,
            leading_digits: r
                .leading_digits
                .map(|p| Regex::new(&format!("^(?:{p})")).expect("leading digits")),
            general: (whole(r.general.pattern), r.general.lengths),
            types: r
                .types
                .iter()
                .map(|d| (whole(d.pattern), d.lengths))
                .collect(),
        })
        .collect()
});

fn matches(desc: &(Regex, &[usize]), nsn: &str) -> bool {
    (desc.1.is_empty() || desc.1.contains(&nsn.len())) && desc.0.is_match(nsn)
}

fn is_known(region: &Compiled, nsn: &str) -> bool {
    matches(&region.general, nsn) && region.types.iter().any(|d| matches(d, nsn))
}

/// libphonenumber's `is_valid_number` for a national significant number under one of the
/// calling codes in tables.rs' REGIONS (IT and VA, ES, PL): in a range in service.
pub fn in_service(code: u16, nsn: &str) -> bool {
    // phonenumbers keeps a number as an integer and its count of leading zeros: all zeros
    // come back with one more.
    let nsn = if !nsn.is_empty() && nsn.bytes().all(|b| b == b'0') {
        format!("{nsn}0")
    } else {
        nsn.to_owned()
    };
    let regions: Vec<&Compiled> = COMPILED.iter().filter(|r| r.code == code).collect();
    let region = if regions.len() == 1 {
        Some(regions[0])
    } else {
        regions.into_iter().find(|r| match &r.leading_digits {
            Some(leading) => leading.is_match(&nsn),
            None => is_known(r, &nsn),
        })
    };
    region.is_some_and(|r| is_known(r, &nsn))
}

/// True when a national significant number of `length` digits is possible under the calling
/// code (libphonenumber's `is_possible_number`: the length alone).
pub fn possible_length(code: u16, length: usize) -> bool {
    length < 32
        && POSSIBLE_LENGTHS
            .binary_search_by_key(&code, |&(c, _)| c)
            .is_ok_and(|i| POSSIBLE_LENGTHS[i].1 & (1 << length) != 0)
}

fn is_calling_code(code: u16) -> bool {
    POSSIBLE_LENGTHS
        .binary_search_by_key(&code, |&(c, _)| c)
        .is_ok()
}

/// Possible (right length for the country), not valid: fictional ranges such as
/// +44 7700 900xxx are not in service, and a redactor must still hide them. Unless the digits
/// alone are weak evidence (`in_service`), when the range must be one in use.
fn possible(code: u16, nsn: &str, in_service_only: bool) -> bool {
    if in_service_only {
        in_service(code, nsn)
    } else {
        possible_length(code, nsn.len())
    }
}

/// National formats, as digit-group lengths (trunk prefix included), per region, with the
/// region's calling code. A run of digits becomes a phone number only in one of these shapes
/// or in E.164 form: "13/01/2024", "2024-118734" and "12:30" have none of them.
const SHAPES: &[(&str, u16, &[&[usize]])] = &[
    (
        "GB",
        44,
        &[
            &[11],
            &[5, 6],
            &[5, 3, 3],
            &[3, 4, 4],
            &[4, 3, 4],
            &[4, 7],
            &[3, 8],
            &[5, 5],
            &[4, 6],
            &[4, 3, 3],
        ],
    ),
    ("US", 1, &[&[3, 3, 4], &[1, 3, 3, 4], &[10], &[11]]),
    (
        "DE",
        49,
        &[
            &[3, 7],
            &[3, 8],
            &[4, 7],
            &[4, 8],
            &[4, 6],
            &[5, 5],
            &[5, 6],
            &[3, 5, 3],
            &[4, 4, 3],
            &[3, 4, 4],
            &[4, 4, 4],
            &[10],
            &[11],
            &[12],
        ],
    ),
    ("FR", 33, &[&[2, 2, 2, 2, 2], &[10]]),
    (
        "IT",
        39,
        &[&[2, 4, 4], &[3, 3, 4], &[3, 7], &[2, 8], &[3, 4, 3], &[10]],
    ),
    ("ES", 34, &[&[3, 3, 3], &[3, 2, 2, 2], &[2, 3, 2, 2], &[9]]),
    (
        "NL",
        31,
        &[
            &[3, 7],
            &[2, 8],
            &[3, 3, 4],
            &[2, 4, 4],
            &[3, 3, 2, 2],
            &[2, 2, 2, 2, 2],
            &[10],
        ],
    ),
    ("PL", 48, &[&[3, 3, 3], &[2, 3, 2, 2], &[9]]),
]; // fmt: skip

/// The national significant number of `digits` dialled within `region`, or None.
fn national_number<'a>(region: &str, digits: &'a str) -> Option<&'a str> {
    let d = digits.as_bytes();
    match region {
        "GB" | "DE" | "FR" | "NL" => (d[0] == b'0' && d[1] != b'0').then(|| &digits[1..]),
        "US" => {
            let nsn = if d.len() == 11 && d[0] == b'1' {
                &digits[1..]
            } else {
                digits
            };
            let n = nsn.as_bytes();
            let ok = |b: u8| (b'2'..=b'9').contains(&b);
            (n.len() == 10 && ok(n[0]) && ok(n[3])).then_some(nsn)
        }
        "IT" => matches!(d[0], b'0' | b'3').then_some(digits),
        "ES" => matches!(d[0], b'6'..=b'9').then_some(digits),
        _ => (d[0] != b'0').then_some(digits), // PL
    }
}

fn national_ok(t: &[char], start: usize, digits: &str, shape: &[usize]) -> bool {
    let d = digits.as_bytes();
    // A bare run of digits without a trunk prefix ("2015550123") is as likely an order
    // number: it is a phone number only after a word that says so.
    if shape.len() == 1 && !(d[0] == b'0' && d[1] != b'0') && !said_before(t, start, PHONE_WORDS) {
        return false;
    }
    for &(region, code, shapes) in SHAPES {
        if !shapes.contains(&shape) {
            continue;
        }
        // Groups of four digits are a German mobile number (015x, 016x, 017x) or a longer
        // number's parts: the end of a mistyped IBAN or card.
        if region == "DE"
            && shape.len() >= 2
            && shape[..2] == [4, 4]
            && !["015", "016", "017"].iter().any(|p| digits.starts_with(p))
        {
            continue;
        }
        // Without a trunk prefix ("612 345 678", "347 123 4567"), nine or ten digits in
        // groups could be anything (a parcel number): the number must be in a range in use.
        let in_service_only = matches!(region, "IT" | "ES" | "PL");
        if let Some(nsn) = national_number(region, digits) {
            if possible(code, nsn, in_service_only) {
                return true;
            }
        }
    }
    false
}

fn international_ok(digits: &str) -> bool {
    for size in 1..=3 {
        let Ok(code) = digits[..size].parse::<u16>() else {
            return false;
        };
        if is_calling_code(code) {
            let mut nsn = &digits[size..];
            // "+44 07700 900123": a trunk prefix written after the country code by habit.
            if nsn.starts_with('0') && code != 39 && !possible(code, nsn, false) {
                nsn = &nsn[1..];
            }
            return nsn.len() >= 4 && possible(code, nsn, false);
        }
    }
    false
}

/// Runs of ASCII digits in `t[start..end]`: (start, end) of each.
fn runs(t: &[char], start: usize, end: usize) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    let mut i = start;
    while i < end {
        if t[i].is_ascii_digit() {
            let s = i;
            while i < end && t[i].is_ascii_digit() {
                i += 1;
            }
            out.push((s, i));
        } else {
            i += 1;
        }
    }
    out
}

/// A phone number in a national format of GB, US, DE, FR, IT, ES, NL or PL.
pub fn national(t: &[char], start: usize, end: usize) -> Option<(usize, usize)> {
    phone(t, start, end, false)
}

/// A phone number after "+" or "00" and a country calling code.
pub fn international(t: &[char], start: usize, end: usize) -> Option<(usize, usize)> {
    phone(t, start, end, true)
}

/// The longest phone number that text[start..end] begins with. A candidate may run on into a
/// following number ("07700 900123 2 times"): digit groups are dropped from its end until
/// what is left is a possible number.
fn phone(t: &[char], start: usize, end: usize, intl: bool) -> Option<(usize, usize)> {
    let found = runs(t, start, end);
    // The shortest numbers: 8 digits after "+"; 9 in a national format.
    let total: usize = found.iter().map(|(a, b)| b - a).sum();
    if total < if intl { 8 } else { 9 } {
        return None;
    }
    // "+44 (0)20 ...": the trunk prefix in brackets is not dialled from abroad.
    let trunk = |&(a, b): &(usize, usize)| {
        intl && b == a + 1 && t[a] == '0' && a > 0 && t[a - 1] == '(' && t.get(b) == Some(&')')
    };
    // The groups of the candidate, each "(0)" in it gone (as the candidate's text reads).
    let groups: Vec<(usize, usize)> = found
        .iter()
        .copied()
        .filter(|&(a, b)| !(trunk(&(a, b)) && b < end && a > start))
        .collect();
    let strings: Vec<String> = groups
        .iter()
        .map(|&(a, b)| t[a..b].iter().collect())
        .collect();
    for count in (1..=groups.len()).rev() {
        let joined: String = strings[..count].concat();
        let ok = if intl {
            let digits = if joined.starts_with('0') {
                &joined[2.min(joined.len())..]
            } else {
                &joined[..]
            };
            (8..=15).contains(&digits.len()) && international_ok(digits)
        } else {
            let shape: Vec<usize> = groups[..count].iter().map(|(a, b)| b - a).collect();
            (9..=13).contains(&joined.len()) && national_ok(t, start, &joined, &shape)
        };
        if ok {
            if count == groups.len() {
                return Some((start, end));
            }
            let kept: Vec<&(usize, usize)> = found.iter().filter(|r| !trunk(r)).collect();
            return Some((start, kept[count - 1].1));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn whole(text: &str, intl: bool) -> Option<String> {
        let t: Vec<char> = text.chars().collect();
        let start = t
            .iter()
            .position(|c| c.is_ascii_digit() || *c == '+' || *c == '(')?;
        phone(&t, start, t.len(), intl).map(|(a, b)| t[a..b].iter().collect())
    }

    #[test]
    fn possible_lengths_from_the_metadata() {
        assert!(possible_length(44, 10) && possible_length(44, 9) && !possible_length(44, 11));
        assert!(possible_length(1, 10) && !possible_length(1, 9));
        assert!(!possible_length(999, 8));
        assert!(is_calling_code(353) && !is_calling_code(999));
    }

    #[test]
    fn ranges_in_service_for_it_es_pl() {
        assert!(in_service(39, "3471234567"));
        assert!(in_service(39, "0289012345"));
        assert!(in_service(34, "612345678"));
        assert!(in_service(34, "911234567"));
        assert!(!in_service(34, "500000000"));
        assert!(in_service(39, "0669812345"));
        assert!(in_service(48, "512345678"));
        assert!(in_service(48, "221234567"));
        assert!(!in_service(48, "112345678"));
        assert!(!in_service(39, "000000000"));
        assert!(!in_service(44, "7700900123")); // not one of the in-service tables
    }

    #[test]
    fn national_formats() {
        assert_eq!(
            whole("07700 900123", false).as_deref(),
            Some("07700 900123")
        );
        assert_eq!(
            whole("020 7946 0958", false).as_deref(),
            Some("020 7946 0958")
        );
        assert_eq!(
            whole("07700 900123 2", false).as_deref(),
            Some("07700 900123")
        );
        assert_eq!(whole("13/01/2024", false), None);
        assert_eq!(whole("2015550123", false), None);
        assert_eq!(
            whole("call 2015550123", false).as_deref(),
            Some("2015550123")
        );
        assert_eq!(whole("2024-118734", false), None);
    }

    #[test]
    fn international_formats() {
        for (text, ok) in [
            ("+44 7700 900123", true),
            ("+44 (0)20 7946 0958", true),
            ("0044 7700 900123", true),
            ("+44 07700 900123", true),
            ("+1 202 555 0143", true),
            ("+999 1234 5678", false),
            ("+44 12", false),
        ] {
            assert_eq!(whole(text, true).is_some(), ok, "{text}");
        }
    }
}
