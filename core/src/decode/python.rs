//! Which rule a body the strict reader refused breaks, and where: the kinds told apart as
//! Python's `json` module tells them (the rules were first written with it, and a malformed
//! body's detail names the line and column it reports). This path is rare: only a body that
//! is not strict JSON comes here.

use super::json::{
    big_int, too_deep, Problem, INT_CHARS, INVALID_NUMBER, INVALID_UTF8, MALFORMED, MAX_DEPTH,
    RECURSION,
};

enum Stop {
    /// Not JSON, at this character.
    Syntax(usize),
    /// NaN, Infinity or -Infinity.
    NonFinite,
    Recursion,
    /// An integer with more digits than Python reads.
    LongInt,
}

#[derive(Default)]
struct Seen {
    depth: usize,
    big_int: bool,
    lone_surrogate: bool,
}

/// The problem of a UTF-8 text the strict reader refused.
pub fn problem(text: &str) -> Problem {
    // A byte order mark is dropped before reading (Python's json detects utf-8-sig).
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let chars: Vec<char> = text.chars().collect();
    let mut scanner = Scanner {
        s: &chars,
        seen: Seen::default(),
    };
    match scanner.document() {
        Err(Stop::Syntax(pos)) => {
            let line = chars[..pos].iter().filter(|c| **c == '\n').count() + 1;
            let last = chars[..pos].iter().rposition(|c| *c == '\n');
            let column = last.map_or(pos + 1, |at| pos - at);
            Problem::new(
                MALFORMED,
                format!("the body is not valid JSON (line {line}, column {column})"),
            )
        }
        Err(Stop::NonFinite) => {
            Problem::new(INVALID_NUMBER, "NaN and Infinity are not JSON numbers")
        }
        Err(Stop::Recursion) => too_deep(),
        Err(Stop::LongInt) => big_int(),
        Ok(()) => {
            let seen = scanner.seen;
            if seen.depth > MAX_DEPTH {
                too_deep()
            } else if seen.big_int {
                big_int()
            } else if seen.lone_surrogate {
                Problem::new(
                    INVALID_UTF8,
                    "a string holds a lone surrogate escape: it is not UTF-8",
                )
            } else {
                Problem::new(MALFORMED, "the body is not valid JSON")
            }
        }
    }
}

struct Scanner<'a> {
    s: &'a [char],
    seen: Seen,
}

fn is_ws(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\n' | '\r')
}

impl Scanner<'_> {
    fn at(&self, i: usize) -> Option<char> {
        self.s.get(i).copied()
    }

    fn skip_ws(&self, mut i: usize) -> usize {
        while self.at(i).is_some_and(is_ws) {
            i += 1;
        }
        i
    }

    fn starts(&self, i: usize, word: &str) -> bool {
        let n = word.chars().count();
        i + n <= self.s.len() && self.s[i..i + n].iter().copied().eq(word.chars())
    }

    fn document(&mut self) -> Result<(), Stop> {
        let start = self.skip_ws(0);
        let end = self.value(start, 0)?;
        let end = self.skip_ws(end);
        if end != self.s.len() {
            return Err(Stop::Syntax(end));
        }
        Ok(())
    }

    /// One value at `i`; the index after it.
    fn value(&mut self, i: usize, depth: usize) -> Result<usize, Stop> {
        let c = self.at(i).ok_or(Stop::Syntax(i))?;
        match c {
            '"' => self.string(i + 1),
            '{' | '[' => {
                let depth = depth + 1;
                if depth > RECURSION {
                    return Err(Stop::Recursion);
                }
                self.seen.depth = self.seen.depth.max(depth);
                if c == '{' {
                    self.object(i + 1, depth)
                } else {
                    self.array(i + 1, depth)
                }
            }
            'n' if self.starts(i, "null") => Ok(i + 4),
            't' if self.starts(i, "true") => Ok(i + 4),
            'f' if self.starts(i, "false") => Ok(i + 5),
            'N' if self.starts(i, "NaN") => Err(Stop::NonFinite),
            'I' if self.starts(i, "Infinity") => Err(Stop::NonFinite),
            '-' if self.starts(i, "-Infinity") => Err(Stop::NonFinite),
            _ => self.number(i),
        }
    }

    fn digit(&self, i: usize) -> bool {
        self.at(i).is_some_and(|c| c.is_ascii_digit())
    }

    fn number(&mut self, start: usize) -> Result<usize, Stop> {
        let mut i = start;
        if self.at(i) == Some('-') {
            i += 1;
        }
        match self.at(i) {
            Some('1'..='9') => {
                while self.digit(i) {
                    i += 1;
                }
            }
            Some('0') => i += 1,
            _ => return Err(Stop::Syntax(start)),
        }
        let mut float = false;
        if self.at(i) == Some('.') && self.digit(i + 1) {
            float = true;
            i += 2;
            while self.digit(i) {
                i += 1;
            }
        }
        if matches!(self.at(i), Some('e' | 'E')) {
            let e = i;
            i += 1;
            if matches!(self.at(i), Some('-' | '+')) {
                i += 1;
            }
            let digits = i;
            while self.digit(i) {
                i += 1;
            }
            if i > digits {
                float = true;
            } else {
                i = e;
            }
        }
        if !float {
            let literal: String = self.s[start..i].iter().collect();
            let digits = literal.trim_start_matches('-').len();
            if digits > INT_CHARS {
                return Err(Stop::LongInt);
            }
            if literal.parse::<i64>().is_err() {
                self.seen.big_int = true;
            }
        }
        Ok(i)
    }

    fn hex(&self, from: usize) -> Option<u32> {
        let mut v = 0;
        for k in 0..4 {
            v = v * 16 + self.at(from + k)?.to_digit(16)?;
        }
        Some(v)
    }

    /// A string whose opening quote is just before `begin + 1`... `end` is just after it.
    fn string(&mut self, end: usize) -> Result<usize, Stop> {
        let begin = end - 1;
        let len = self.s.len();
        let mut end = end;
        loop {
            let mut next = end;
            let mut c = None;
            while next < len {
                let d = self.s[next];
                if d == '"' || d == '\\' {
                    c = Some(d);
                    break;
                }
                if (d as u32) <= 0x1f {
                    return Err(Stop::Syntax(next));
                }
                next += 1;
            }
            match c {
                None => return Err(Stop::Syntax(begin)),
                Some('"') => return Ok(next + 1),
                _ => {}
            }
            next += 1;
            if next == len {
                return Err(Stop::Syntax(begin));
            }
            let c = self.s[next];
            if c != 'u' {
                end = next + 1;
                if !matches!(c, '"' | '\\' | '/' | 'b' | 'f' | 'n' | 'r' | 't') {
                    return Err(Stop::Syntax(end - 2));
                }
                continue;
            }
            next += 1;
            end = next + 4;
            if end >= len {
                return Err(Stop::Syntax(next - 1));
            }
            let high = self.hex(next).ok_or(Stop::Syntax(end - 5))?;
            let mut lone = (0xd800..0xe000).contains(&high);
            if (0xd800..0xdc00).contains(&high)
                && end + 6 < len
                && self.s[end] == '\\'
                && self.s[end + 1] == 'u'
            {
                let low = self.hex(end + 2).ok_or(Stop::Syntax(end + 1))?;
                if (0xdc00..0xe000).contains(&low) {
                    lone = false;
                    end += 6;
                }
            }
            if lone {
                self.seen.lone_surrogate = true;
            }
        }
    }

    fn object(&mut self, i: usize, depth: usize) -> Result<usize, Stop> {
        let mut i = self.skip_ws(i);
        if self.at(i) == Some('}') {
            return Ok(i + 1);
        }
        loop {
            if self.at(i) != Some('"') {
                return Err(Stop::Syntax(i));
            }
            i = self.string(i + 1)?;
            i = self.skip_ws(i);
            if self.at(i) != Some(':') {
                return Err(Stop::Syntax(i));
            }
            i = self.skip_ws(i + 1);
            i = self.value(i, depth)?;
            i = self.skip_ws(i);
            match self.at(i) {
                Some('}') => return Ok(i + 1),
                Some(',') => i = self.skip_ws(i + 1),
                _ => return Err(Stop::Syntax(i)),
            }
        }
    }

    fn array(&mut self, i: usize, depth: usize) -> Result<usize, Stop> {
        let mut i = self.skip_ws(i);
        if self.at(i) == Some(']') {
            return Ok(i + 1);
        }
        loop {
            i = self.value(i, depth)?;
            i = self.skip_ws(i);
            match self.at(i) {
                Some(']') => return Ok(i + 1),
                Some(',') => i = self.skip_ws(i + 1),
                _ => return Err(Stop::Syntax(i)),
            }
        }
    }
}
