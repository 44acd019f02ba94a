//! The candidate shapes, tried at each character that can start one, in priority order: where
//! two start at the same place, the first that its check confirms wins (an IBAN over the
//! digits inside it, a card or an SSN over a phone shape).
//!
//! Each shape is matched as the bounded regular expression it is written as in the comment
//! above its function (Python syntax, matched at the shape's first character), with that
//! engine's preferences: greedy repetition tries the longest first, alternatives in order,
//! possessive (`{m,n}+`) repetition never gives back. Every repetition is bounded, so the work
//! at one position is bounded and a scan is linear in the length of the text.

#[cfg(test)]
use super::check::starts_token;
use super::check::{self, digit, digits_at, is, is_word, one_of};
use super::{phone, Kind};

/// A character that may not directly precede a token ("ORD-2024-...", "v1.2.3.4").
fn not_before(c: char) -> bool {
    is_word(c) || ".+@>-".contains(c)
}

/// `(?<![\w.+@>-].)(?<![\w>]/.)` checked after text[p]: candidates start where a token starts,
/// not inside a word or a longer number, nor right after a placeholder (so that redacting twice
/// changes nothing); "http://192.0.2.1" is fine.
fn token_start(t: &[char], p: usize) -> bool {
    if p >= 1 && not_before(t[p - 1]) {
        return false;
    }
    !(p >= 2 && t[p - 1] == '/' && (is_word(t[p - 2]) || t[p - 2] == '>'))
}

/// `(?<![\w.+@>-])[A-Za-z]{2}` ending at `x`: two letters that start a token.
fn letters_before(t: &[char], x: usize) -> bool {
    x >= 2
        && t[x - 2].is_ascii_alphabetic()
        && t[x - 1].is_ascii_alphabetic()
        && !(x >= 3 && not_before(t[x - 3]))
}

/// `(?![\w<]|[./-][0-9<])`: a number ends where its token ends ("." may follow, not ".5"; "<"
/// and ">" count as part of a word, so that redacted text gives a candidate no more room).
fn number_end(t: &[char], e: usize) -> bool {
    match t.get(e) {
        None => true,
        Some(&c) => {
            !(is_word(c)
                || c == '<'
                || ("./-".contains(c)
                    && t.get(e + 1)
                        .is_some_and(|d| d.is_ascii_digit() || *d == '<')))
        }
    }
}

/// `(?![\w<]|\.[0-9<])`, and with `colon` `(?![\w<:]|\.[0-9<])`.
fn address_end(t: &[char], e: usize, colon: bool) -> bool {
    match t.get(e) {
        None => true,
        Some(&c) => {
            !(is_word(c)
                || c == '<'
                || (colon && c == ':')
                || (c == '.'
                    && t.get(e + 1)
                        .is_some_and(|d| d.is_ascii_digit() || *d == '<')))
        }
    }
}

/// `(?![\w<])`.
fn word_end(t: &[char], e: usize) -> bool {
    t.get(e).is_none_or(|&c| !(is_word(c) || c == '<'))
}

fn word_or_dash(c: char) -> bool {
    is_word(c) || c == '-'
}

fn run(t: &[char], i: usize, f: impl Fn(char) -> bool) -> usize {
    t.get(i..)
        .map_or(0, |rest| rest.iter().take_while(|&&c| f(c)).count())
}

fn all_digits(t: &[char], i: usize, n: usize) -> bool {
    digits_at(t, i) >= n
}

/// `@[\w-]{1,63}(?:\.[\w-]{1,63}){1,8}(?![\w<-]|\.[\w<-])`
fn email(t: &[char], p: usize) -> Option<usize> {
    if !is(t, p, '@') {
        return None;
    }
    let first = run(t, p + 1, word_or_dash);
    if first == 0 || first > 63 {
        return None;
    }
    let mut pos = p + 1 + first;
    let mut ends = [0usize; 8];
    let mut count = 0;
    while count < 8 && is(t, pos, '.') {
        let n = run(t, pos + 1, word_or_dash);
        if n == 0 {
            break;
        }
        pos += 1 + n.min(63);
        ends[count] = pos;
        count += 1;
        if n > 63 {
            break;
        }
    }
    let free = |e: usize| match t.get(e) {
        None => true,
        Some(&c) => {
            !(word_or_dash(c)
                || c == '<'
                || (c == '.' && t.get(e + 1).is_some_and(|&d| word_or_dash(d) || d == '<')))
        }
    };
    ends[..count].iter().rev().copied().find(|&e| free(e))
}

/// `:(?:[0-9A-Fa-f]{0,4}:){1,6}+(?:[0-9]{1,3}(?:\.[0-9]{1,3}){3}|[0-9A-Fa-f]{1,4})?`
/// `(?![\w<:]|\.[0-9<])`
fn ip6(t: &[char], p: usize) -> Option<usize> {
    if !is(t, p, ':') {
        return None;
    }
    let mut q = p + 1;
    let mut groups = 0;
    while groups < 6 {
        let h = run(t, q, |c| c.is_ascii_hexdigit());
        if h <= 4 && is(t, q + h, ':') {
            q += h + 1;
            groups += 1;
        } else {
            break;
        }
    }
    if groups == 0 {
        return None;
    }
    // A dotted quad: four runs of one to three digits.
    let mut e = q;
    let mut quad = true;
    for i in 0..4 {
        let n = digits_at(t, e);
        if !(1..=3).contains(&n) {
            quad = false;
            break;
        }
        e += n;
        if i < 3 {
            if !is(t, e, '.') {
                quad = false;
                break;
            }
            e += 1;
        }
    }
    if quad && address_end(t, e, true) {
        return Some(e);
    }
    let h = run(t, q, |c| c.is_ascii_hexdigit()).min(4);
    (1..=h)
        .rev()
        .map(|k| q + k)
        .chain([q])
        .find(|&e| address_end(t, e, true))
}

/// `[0-9](?<=LETTERS[0-9])[0-9](?:[ ]?[A-Za-z0-9]{4}){2,8}+(?:[ ]?[A-Za-z0-9]{1,3})?(?![\w<])`
fn iban(t: &[char], p: usize) -> Option<usize> {
    if !(digit(t, p) && letters_before(t, p) && digit(t, p + 1)) {
        return None;
    }
    let alnum = |i: usize, n: usize| run(t, i, |c| c.is_ascii_alphanumeric()) >= n;
    let mut q = p + 2;
    let mut groups = 0;
    while groups < 8 {
        let r = if is(t, q, ' ') { q + 1 } else { q };
        if !alnum(r, 4) {
            break;
        }
        q = r + 4;
        groups += 1;
    }
    if groups < 2 {
        return None;
    }
    if is(t, q, ' ') {
        if let Some(e) = (1..=3)
            .rev()
            .filter(|&k| alnum(q + 1, k))
            .map(|k| q + 1 + k)
            .find(|&e| word_end(t, e))
        {
            return Some(e);
        }
    }
    (1..=3)
        .rev()
        .filter(|&k| alnum(q, k))
        .map(|k| q + k)
        .chain([q])
        .find(|&e| word_end(t, e))
}

/// `[0-9](?:(?<=LETTERS[0-9])|(?<=LETTERS [0-9]))[0-9][ ]?[0-9]{2}[ ]?[0-9]{2}[ ]?[A-Da-d]`
/// `(?![\w<])`
fn nino(t: &[char], p: usize) -> Option<usize> {
    if !digit(t, p)
        || !(letters_before(t, p) || (p >= 1 && t[p - 1] == ' ' && letters_before(t, p - 1)))
        || !digit(t, p + 1)
    {
        return None;
    }
    let mut q = p + 2;
    for _ in 0..2 {
        if is(t, q, ' ') {
            q += 1;
        }
        if !all_digits(t, q, 2) {
            return None;
        }
        q += 2;
    }
    if is(t, q, ' ') {
        q += 1;
    }
    if !t.get(q).is_some_and(|c| matches!(c, 'A'..='D' | 'a'..='d')) {
        return None;
    }
    word_end(t, q + 1).then_some(q + 1)
}

/// `[0-9](?:[0-9]{12,18}+|[0-9]{3}(?P<s>[ -])[0-9]{4}(?P=s)[0-9]{4}(?P=s)[0-9]{1,4}`
/// `(?:(?P=s)[0-9]{1,3})?|[0-9]{3}(?P<a>[ -])[0-9]{6}(?P=a)[0-9]{4,5})` and a number's end
fn card(t: &[char], p: usize) -> Option<usize> {
    let q = p + 1;
    let n = digits_at(t, q);
    if n >= 12 && number_end(t, q + n.min(18)) {
        return Some(q + n.min(18));
    }
    if n != 3 || !one_of(t, q + 3, " -") {
        return None;
    }
    let s = t[q + 3];
    if digits_at(t, q + 4) == 4 && is(t, q + 8, s) && digits_at(t, q + 9) == 4 && is(t, q + 13, s) {
        let last = digits_at(t, q + 14).min(4);
        for k in (1..=last).rev() {
            let pos = q + 14 + k;
            if is(t, pos, s) {
                let more = digits_at(t, pos + 1).min(3);
                if let Some(e) = (1..=more)
                    .rev()
                    .map(|j| pos + 1 + j)
                    .find(|&e| number_end(t, e))
                {
                    return Some(e);
                }
            }
            if number_end(t, pos) {
                return Some(pos);
            }
        }
    }
    if all_digits(t, q + 4, 6) && is(t, q + 10, s) {
        let last = digits_at(t, q + 11).min(5);
        return (4..=last)
            .rev()
            .map(|k| q + 11 + k)
            .find(|&e| number_end(t, e));
    }
    None
}

/// `[0-9][0-9]{2}(?:(?P<s>[- ])[0-9]{2}(?P=s)|[0-9]{2})[0-9]{4}` and a number's end
fn ssn(t: &[char], p: usize) -> Option<usize> {
    let q = p + 1;
    if !all_digits(t, q, 2) {
        return None;
    }
    if one_of(t, q + 2, "- ") {
        let s = t[q + 2];
        if all_digits(t, q + 3, 2) && is(t, q + 5, s) && all_digits(t, q + 6, 4) {
            let e = q + 10;
            if number_end(t, e) {
                return Some(e);
            }
        }
    }
    (all_digits(t, q + 2, 6) && number_end(t, q + 8)).then_some(q + 8)
}

/// `[0-9][0-9]{0,2}(?:\.[0-9]{1,3}){3}(?![\w<]|\.[0-9<])`
fn ip4(t: &[char], p: usize) -> Option<usize> {
    fn dots(t: &[char], pos: usize, left: usize) -> Option<usize> {
        if left == 0 {
            return address_end(t, pos, false).then_some(pos);
        }
        if !is(t, pos, '.') {
            return None;
        }
        let n = digits_at(t, pos + 1).min(3);
        (1..=n).rev().find_map(|k| dots(t, pos + 1 + k, left - 1))
    }
    let q = p + 1;
    let n = digits_at(t, q).min(2);
    (0..=n).rev().find_map(|k| dots(t, q + k, 3))
}

/// The ends of `[ ./-]?\(?[0-9]{1,6}+\)?` at `q`, in the order they are tried.
fn intl_group(t: &[char], q: usize) -> Vec<usize> {
    let mut ends = Vec::with_capacity(2);
    let seps: &[usize] = if one_of(t, q, " ./-") { &[1, 0] } else { &[0] };
    for &s in seps {
        let a = q + s;
        let opens: &[usize] = if is(t, a, '(') { &[1, 0] } else { &[0] };
        for &o in opens {
            let b = a + o;
            let n = digits_at(t, b).min(6);
            if n == 0 {
                continue;
            }
            let c = b + n;
            if is(t, c, ')') {
                ends.push(c + 1);
            }
            ends.push(c);
        }
    }
    ends
}

/// `(?:[ ./-]?\(?[0-9]{1,6}+\)?){done..7}` then a number's end.
fn intl_groups(t: &[char], q: usize, done: usize) -> Option<usize> {
    if done < 7 {
        for e in intl_group(t, q) {
            if let Some(end) = intl_groups(t, e, done + 1) {
                return Some(end);
            }
        }
    }
    (done >= 1 && number_end(t, q)).then_some(q)
}

/// `[+0](?:(?<=\+)|(?<![0-9][ ./-]0)(?<=0)0)[1-9][0-9]{0,2}(?:[ .-]?\(0\))?`
/// `(?:[ ./-]?\(?[0-9]{1,6}+\)?){1,7}` and a number's end
fn phone_intl(t: &[char], p: usize) -> Option<usize> {
    let q = match t[p] {
        '+' => p + 1,
        '0' if is(t, p + 1, '0') && !(p >= 2 && digit(t, p - 2) && one_of(t, p - 1, " ./-")) => {
            p + 2
        }
        _ => return None,
    };
    if !t.get(q).is_some_and(|c| matches!(c, '1'..='9')) {
        return None;
    }
    let q = q + 1;
    let n = digits_at(t, q).min(2);
    let trunk = |i: usize| t.get(i..i + 3) == Some(&['(', '0', ')'][..]);
    for k in (0..=n).rev() {
        let pos = q + k;
        let mut starts = [None, None, Some(pos)];
        if one_of(t, pos, " .-") && trunk(pos + 1) {
            starts[0] = Some(pos + 4);
        }
        if trunk(pos) {
            starts[1] = Some(pos + 3);
        }
        for start in starts.into_iter().flatten() {
            if let Some(e) = intl_groups(t, start, 0) {
                return Some(e);
            }
        }
    }
    None
}

/// The ends of `(?:\)[ ]?|\)?[ ./-]| / )[0-9]{1,12}+` at `q`, in the order they are tried.
fn national_group(t: &[char], q: usize) -> Vec<usize> {
    let mut seps = Vec::with_capacity(5);
    if is(t, q, ')') {
        if is(t, q + 1, ' ') {
            seps.push(q + 2);
        }
        seps.push(q + 1);
        if one_of(t, q + 1, " ./-") {
            seps.push(q + 2);
        }
    }
    if one_of(t, q, " ./-") {
        seps.push(q + 1);
    }
    if t.get(q..q + 3) == Some(&[' ', '/', ' '][..]) {
        seps.push(q + 3);
    }
    seps.into_iter()
        .filter_map(|a| {
            let n = digits_at(t, a).min(12);
            (n > 0).then_some(a + n)
        })
        .collect()
}

/// `(?:(?:\)[ ]?|\)?[ ./-]| / )[0-9]{1,12}+){done..5}` then a number's end.
fn national_groups(t: &[char], q: usize, done: usize) -> Option<usize> {
    if done < 5 {
        for e in national_group(t, q) {
            if let Some(end) = national_groups(t, e, done + 1) {
                return Some(end);
            }
        }
    }
    number_end(t, q).then_some(q)
}

/// `[0-9(](?:(?<=\()[0-9]{1,12}+|(?<=[0-9])[0-9]{0,11}+)`
/// `(?:(?:\)[ ]?|\)?[ ./-]| / )[0-9]{1,12}+){0,5}` and a number's end
fn phone_national(t: &[char], p: usize) -> Option<usize> {
    let q = p + 1;
    let n = digits_at(t, q);
    let first = if t[p] == '(' {
        if n == 0 {
            return None;
        }
        q + n.min(12)
    } else {
        q + n.min(11)
    };
    national_groups(t, first, 0)
}

type Shape = fn(&[char], usize) -> Option<usize>;
type Check = fn(&[char], usize, usize) -> Option<(usize, usize)>;
type First = fn(char) -> bool;

fn at(c: char) -> bool {
    c == '@'
}
fn colon(c: char) -> bool {
    c == ':'
}
fn digit_char(c: char) -> bool {
    c.is_ascii_digit()
}
fn plus_or_zero(c: char) -> bool {
    c == '+' || c == '0'
}
fn digit_or_paren(c: char) -> bool {
    c == '(' || c.is_ascii_digit()
}

/// The shapes in priority order: found at a character inside them ("@", ":", the check
/// digits), or (`token`) only where a token starts.
const SHAPES: [(Kind, bool, First, Shape, Check); 9] = [
    (Kind::Email, false, at, email, check::email),
    (Kind::Ip, false, colon, ip6, check::ip6),
    (Kind::Iban, false, digit_char, iban, check::iban),
    (Kind::UkNino, false, digit_char, nino, check::nino),
    (Kind::Card, true, digit_char, card, check::card),
    (Kind::UsSsn, true, digit_char, ssn, check::ssn),
    (Kind::Ip, true, digit_char, ip4, check::ip4),
    (
        Kind::Phone,
        true,
        plus_or_zero,
        phone_intl,
        phone::international,
    ),
    (
        Kind::Phone,
        true,
        digit_or_paren,
        phone_national,
        phone::national,
    ),
];

/// The first candidate at text[p] that its check confirms: (start, end, kind).
pub fn confirmed(t: &[char], p: usize) -> Option<(usize, usize, Kind)> {
    let c = t[p];
    let token = c != '@' && c != ':' && token_start(t, p);
    for (kind, needs_token, first, shape, check) in SHAPES {
        if (needs_token && !token) || !first(c) {
            continue;
        }
        if let Some(end) = shape(t, p) {
            if let Some((start, end)) = check(t, p, end) {
                return Some((start, end, kind));
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chars(s: &str) -> Vec<char> {
        s.chars().collect()
    }

    #[test]
    fn starts_are_the_tokens_rule() {
        for text in [
            "abc", " abc", "xabc", "_abc", "a.bc", "/abc", "a/bc", " /bc", "(abc",
        ] {
            let t = chars(text);
            for p in 1..t.len() {
                // token_start at p is starts_token at p (after the first character).
                assert_eq!(token_start(&t, p), starts_token(&t, p), "{text} {p}");
            }
        }
    }

    #[test]
    fn shapes_end_where_the_pattern_would() {
        let t = chars("+44 7700 900123 (0)a");
        assert_eq!(phone_intl(&t, 0), Some(18));
        let t = chars("0161 496 0123abc");
        assert_eq!(phone_national(&t, 0), Some(8));
        let t = chars("4111 1111 1111 1111 12/26");
        assert_eq!(card(&t, 0), Some(19));
        let t = chars("::ffff:192.0.2.1");
        assert_eq!(ip6(&t, 0), Some(16));
        let t = chars("1.2.3.4.5");
        assert_eq!(ip4(&t, 0), None);
        let t = chars("GB82 WEST 1234 5698 7654 32 x");
        assert_eq!(iban(&t, 2), Some(27));
    }
}
