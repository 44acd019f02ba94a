//! Free-text redaction: e-mail addresses, phone numbers (E.164 anywhere; national formats of
//! GB, US, DE, FR, IT, ES, NL and PL), payment card numbers, IBANs, IPv4 and IPv6 addresses,
//! US SSNs and UK NI numbers found in one pass over a text and replaced by `<EMAIL>`,
//! `<PHONE>`, `<CARD>`, `<IBAN>`, `<IP>`, `<US_SSN>` and `<UK_NINO>`.
//!
//! The scan ([`scan`]) visits each character that can start a candidate (a digit, `+`, `(`,
//! `@`, `:`) once and tries the candidate shapes there in priority order; each shape is a
//! bounded pattern, matched exactly as the regular expression it was first written as (the
//! Python oracle in tests/native/redact_reference.py), so a scan is linear in the length of the
//! text. A candidate counts only once its check ([`check`], [`phone`]) confirms it: Luhn and
//! issuer lengths for cards, ISO 13616 mod-97 for IBANs, the address grammars, the SSA and
//! HMRC allocation rules, libphonenumber's metadata for phone numbers.
//!
//! Offsets are code points, as Python counts them: the text is scanned as `char`s.

mod check;
pub mod phone;
mod scan;
#[rustfmt::skip]
mod tables;

/// What a span is; its placeholder in redacted text is `<KIND>`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Email,
    Phone,
    Card,
    Iban,
    Ip,
    UsSsn,
    UkNino,
}

impl Kind {
    /// The kind's name, as Python's `Kind` spells it.
    pub fn name(self) -> &'static str {
        match self {
            Self::Email => "EMAIL",
            Self::Phone => "PHONE",
            Self::Card => "CARD",
            Self::Iban => "IBAN",
            Self::Ip => "IP",
            Self::UsSsn => "US_SSN",
            Self::UkNino => "UK_NINO",
        }
    }

    /// `<NAME>`: what replaces a span of this kind.
    pub fn placeholder(self) -> &'static str {
        match self {
            Self::Email => "<EMAIL>",
            Self::Phone => "<PHONE>",
            Self::Card => "<CARD>",
            Self::Iban => "<IBAN>",
            Self::Ip => "<IP>",
            Self::UsSsn => "<US_SSN>",
            Self::UkNino => "<UK_NINO>",
        }
    }
}

/// PII of `kind` at `text[start..end]`, in code points.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Span {
    pub start: usize,
    pub end: usize,
    pub kind: Kind,
}

/// True when `b` can start a candidate: text without any of these bytes holds no PII.
fn may_start(b: u8) -> bool {
    matches!(b, b'0'..=b'9' | b'+' | b'(' | b'@' | b':')
}

/// The PII spans of `text` (as code points), in order and not overlapping. Linear time.
pub fn find(text: &[char]) -> Vec<Span> {
    let mut spans: Vec<Span> = Vec::new();
    let mut pos = 0;
    while pos < text.len() {
        let c = text[pos];
        if !(c.is_ascii() && may_start(c as u8)) {
            pos += 1;
            continue;
        }
        let Some((mut first, end, kind)) = scan::confirmed(text, pos) else {
            pos += 1;
            continue;
        };
        // A candidate found at a character inside it (an e-mail's "@") is confirmed after what
        // precedes it was scanned: it takes over any span found there (the phone number that
        // is an e-mail's local part).
        while let Some(last) = spans.last() {
            if last.end <= first {
                break;
            }
            first = first.min(last.start);
            spans.pop();
        }
        spans.push(Span {
            start: first,
            end,
            kind,
        });
        pos = end.max(pos + 1);
    }
    spans
}

/// The PII spans of a UTF-8 text, in code points.
pub fn find_str(text: &str) -> Vec<Span> {
    if !text.bytes().any(may_start) {
        return Vec::new();
    }
    let chars: Vec<char> = text.chars().collect();
    find(&chars)
}

/// `text` with each span replaced by its kind's placeholder; None when nothing was found.
pub fn redact(text: &str) -> Option<String> {
    if !text.bytes().any(may_start) {
        return None;
    }
    let chars: Vec<char> = text.chars().collect();
    let spans = find(&chars);
    if spans.is_empty() {
        return None;
    }
    Some(replace(&chars, &spans))
}

/// The characters with each span replaced by its placeholder.
pub fn replace(chars: &[char], spans: &[Span]) -> String {
    let mut out = String::with_capacity(chars.len() + 8 * spans.len());
    let mut pos = 0;
    for span in spans {
        out.extend(&chars[pos..span.start]);
        out.push_str(span.kind.placeholder());
        pos = span.end;
    }
    out.extend(&chars[pos..]);
    out
}

/// Each text redacted, in order: None where it holds nothing to redact.
pub fn redact_many<S: AsRef<str>>(texts: &[S]) -> Vec<Option<String>> {
    texts.iter().map(|t| redact(t.as_ref())).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kinds(text: &str) -> Vec<(&'static str, String)> {
        let chars: Vec<char> = text.chars().collect();
        find(&chars)
            .iter()
            .map(|s| (s.kind.name(), chars[s.start..s.end].iter().collect()))
            .collect()
    }

    #[test]
    fn every_kind_is_replaced_by_its_placeholder() {
        let text = "ana@example.com +44 7700 900123 4111 1111 1111 1111 \
                    GB82 WEST 1234 5698 7654 32 192.0.2.1 123-45-6789 AB 12 34 56 C";
        assert_eq!(
            redact(text).as_deref(),
            Some("<EMAIL> <PHONE> <CARD> <IBAN> <IP> <US_SSN> <UK_NINO>")
        );
    }

    #[test]
    fn text_without_pii_is_left_alone() {
        assert_eq!(redact("Thanks, the parcel arrived on time."), None);
        assert_eq!(redact("order 48213 on 13/01/2024"), None);
        assert_eq!(redact(""), None);
    }

    #[test]
    fn spans_are_code_points() {
        let text = "zoë, İstanbul: +90 212 555 0123";
        let spans = find_str(text);
        assert_eq!(spans.len(), 1);
        assert_eq!((spans[0].start, spans[0].end), (15, 31));
        assert_eq!(
            redact("Grüße an zoë@example.de").as_deref(),
            Some("Grüße an <EMAIL>")
        );
    }

    #[test]
    fn an_email_takes_over_the_phone_number_of_its_local_part() {
        assert_eq!(
            kinds("07700900123@example.com"),
            vec![("EMAIL", "07700900123@example.com".into())]
        );
    }

    #[test]
    fn a_phone_number_followed_by_a_count_is_cut_to_the_number() {
        assert_eq!(
            kinds("rang 07700 900123 3 times"),
            vec![("PHONE", "07700 900123".into())]
        );
    }

    #[test]
    fn redacting_twice_changes_nothing() {
        for text in [
            "ana@example.com4111111111111111",
            "<PHONE>@example.com",
            "0@0.aa:1::1",
            "0@0.AA..0@0.AA",
            "call 2015550123, ssn 123456789",
        ] {
            let once = redact(text).unwrap_or_else(|| text.to_owned());
            assert_eq!(redact(&once), None, "{text}");
        }
    }

    #[test]
    fn adversarial_text_is_linear() {
        for unit in [
            "1", "1 ", "00", "12-", "@", "a@", "1@", ":", "1:", "+1", "(1) ", "AB1 ",
        ] {
            let text = unit.repeat(200_000 / unit.len());
            let started = std::time::Instant::now();
            let _ = redact(&text);
            assert!(started.elapsed().as_secs_f64() < 5.0, "{unit:?}");
        }
    }
}
