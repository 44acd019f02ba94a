//! JSON as the API reads it: one strict reader (RFC 8259: no NaN, no trailing comma, no lone
//! surrogate escape) building a tree whose every node knows its span in the input, and the
//! JSON rules of every route (`problem_of`): empty, not UTF-8, not JSON, nested deeper than
//! `MAX_DEPTH`, a number beyond a double or an integer beyond signed 64 bits.

use std::borrow::Cow;

/// Objects and arrays inside each other; the deepest body the API defines has 6 levels.
pub const MAX_DEPTH: usize = 32;
/// How deep a reader goes before it gives up on the input as too deep whatever else is wrong
/// with it (the recursion limit of the Python readers the rules were first written with).
pub const RECURSION: usize = 950;
/// An integer literal longer than this (sign included) is refused as a number out of range.
pub const INT_CHARS: usize = 4300;

/// A JSON value.
#[derive(Debug, Clone, PartialEq)]
pub enum Value<'a> {
    Null,
    Bool(bool),
    Int(i64),
    /// An integer beyond signed 64 bits (`approx` the nearest double, infinite past one);
    /// `long` when its literal is over `INT_CHARS`.
    BigInt {
        long: bool,
        approx: f64,
    },
    /// A number with a fraction or an exponent; infinite when it is beyond a double.
    Float(f64),
    Str(Cow<'a, str>),
    Array(Vec<Node<'a>>),
    Object(Vec<(Cow<'a, str>, Node<'a>)>),
}

/// A value and where it is in the input (byte offsets, end exclusive).
#[derive(Debug, Clone, PartialEq)]
pub struct Node<'a> {
    pub value: Value<'a>,
    pub start: usize,
    pub end: usize,
}

impl Node<'_> {
    /// The JSON type's name as the API's details spell it.
    pub fn kind(&self) -> &'static str {
        match self.value {
            Value::Null => "null",
            Value::Bool(_) => "bool",
            Value::Int(_) | Value::BigInt { .. } => "int",
            Value::Float(_) => "float",
            Value::Str(_) => "str",
            Value::Array(_) => "array",
            Value::Object(_) => "object",
        }
    }

    /// Objects and arrays nested in this one, itself included (0 for a scalar).
    pub fn depth(&self) -> usize {
        match &self.value {
            Value::Array(items) => 1 + items.iter().map(Node::depth).max().unwrap_or(0),
            Value::Object(pairs) => 1 + pairs.iter().map(|(_, n)| n.depth()).max().unwrap_or(0),
            _ => 0,
        }
    }

    /// Whether a number in it is beyond a double, or an integer literal is over INT_CHARS.
    pub fn number_out_of_range(&self) -> bool {
        match &self.value {
            Value::Float(f) => !f.is_finite(),
            Value::BigInt { long, .. } => *long,
            Value::Array(items) => items.iter().any(Node::number_out_of_range),
            Value::Object(pairs) => pairs.iter().any(|(_, n)| n.number_out_of_range()),
            _ => false,
        }
    }

    /// Whether an integer in it is beyond signed 64 bits.
    pub fn big_int(&self) -> bool {
        match &self.value {
            Value::BigInt { .. } => true,
            Value::Array(items) => items.iter().any(Node::big_int),
            Value::Object(pairs) => pairs.iter().any(|(_, n)| n.big_int()),
            _ => false,
        }
    }
}

/// Why the strict reader stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fail {
    Syntax,
    Recursion,
}

/// What the strict reader made of an input.
#[derive(Debug)]
pub struct Parsed<'a> {
    pub result: Result<Node<'a>, Fail>,
    /// A number out of range (see `Node::number_out_of_range`) was read before the reader
    /// stopped, or anywhere when it did not.
    pub number_first: bool,
}

/// A refusal of a JSON body, with the code of API.md and its detail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub code: &'static str,
    pub detail: String,
}

impl Problem {
    pub fn new(code: &'static str, detail: impl Into<String>) -> Self {
        Self {
            code,
            detail: detail.into(),
        }
    }
}

pub const MALFORMED: &str = "malformed_json";
pub const INVALID_UTF8: &str = "invalid_utf8";
pub const TOO_DEEP: &str = "json_too_deep";
pub const INVALID_NUMBER: &str = "invalid_number";

pub(crate) fn too_deep() -> Problem {
    Problem::new(
        TOO_DEEP,
        format!("objects and arrays nest at most {MAX_DEPTH} levels deep"),
    )
}

pub(crate) fn big_int() -> Problem {
    Problem::new(INVALID_NUMBER, "an integer is beyond signed 64 bits")
}

pub(crate) fn out_of_range() -> Problem {
    Problem::new(
        INVALID_NUMBER,
        "a number is beyond the range of a 64-bit float or integer",
    )
}

/// Whitespace as a byte string's strip() knows it.
pub fn is_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | b'\r' | 0x0b | 0x0c)
}

/// The input without leading whitespace (strip()'s).
pub fn lstrip(body: &[u8]) -> &[u8] {
    let start = body
        .iter()
        .position(|b| !is_space(*b))
        .unwrap_or(body.len());
    &body[start..]
}

/// The refusal of an empty body or one that is not UTF-8, else the text.
pub fn text(body: &[u8]) -> Result<&str, Problem> {
    if lstrip(body).is_empty() {
        return Err(Problem::new(
            MALFORMED,
            "the body is empty: send a JSON object",
        ));
    }
    std::str::from_utf8(body).map_err(|e| {
        Problem::new(
            INVALID_UTF8,
            format!("the body is not UTF-8 (byte {})", e.valid_up_to()),
        )
    })
}

/// What is wrong with `body` as a JSON document, or None when it is acceptable. The rules,
/// in the order they are tested: empty, not UTF-8, not JSON (or a lone surrogate escape, or
/// NaN/Infinity), nested deeper than MAX_DEPTH, a number beyond a double or an integer beyond
/// signed 64 bits.
pub fn problem_of(body: &[u8]) -> Option<Problem> {
    let text = match text(body) {
        Ok(text) => text,
        Err(problem) => return Some(problem),
    };
    problem_of_parsed(text, &parse(text))
}

/// `problem_of` for a text already read by `parse`.
pub fn problem_of_parsed(text: &str, parsed: &Parsed<'_>) -> Option<Problem> {
    if parsed.number_first {
        return Some(out_of_range());
    }
    match &parsed.result {
        Err(Fail::Recursion) => Some(too_deep()),
        Err(Fail::Syntax) => Some(crate::decode::python::problem(text)),
        Ok(node) => within_limits(node),
    }
}

/// Too deep first, else an integer beyond signed 64 bits (a number out of range is the
/// reader's to find).
pub fn within_limits(node: &Node<'_>) -> Option<Problem> {
    if node.depth() > MAX_DEPTH {
        Some(too_deep())
    } else if node.big_int() {
        Some(big_int())
    } else {
        None
    }
}

/// Read `text` strictly.
pub fn parse(text: &str) -> Parsed<'_> {
    let mut reader = Reader {
        text,
        s: text.as_bytes(),
        pos: 0,
        number_first: false,
    };
    let result = reader.document();
    Parsed {
        result,
        number_first: reader.number_first,
    }
}

struct Reader<'a> {
    text: &'a str,
    s: &'a [u8],
    pos: usize,
    number_first: bool,
}

impl<'a> Reader<'a> {
    fn document(&mut self) -> Result<Node<'a>, Fail> {
        self.ws();
        let node = self.value(0)?;
        self.ws();
        if self.pos != self.s.len() {
            return Err(Fail::Syntax);
        }
        Ok(node)
    }

    fn peek(&self) -> Option<u8> {
        self.s.get(self.pos).copied()
    }

    fn ws(&mut self) {
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.peek() {
            self.pos += 1;
        }
    }

    fn value(&mut self, depth: usize) -> Result<Node<'a>, Fail> {
        let start = self.pos;
        let value = match self.peek().ok_or(Fail::Syntax)? {
            b'{' => self.object(depth + 1)?,
            b'[' => self.array(depth + 1)?,
            b'"' => Value::Str(self.string()?),
            b't' => self.literal(b"true", Value::Bool(true))?,
            b'f' => self.literal(b"false", Value::Bool(false))?,
            b'n' => self.literal(b"null", Value::Null)?,
            b'-' | b'0'..=b'9' => self.number()?,
            _ => return Err(Fail::Syntax),
        };
        Ok(Node {
            value,
            start,
            end: self.pos,
        })
    }

    fn literal(&mut self, word: &[u8], value: Value<'a>) -> Result<Value<'a>, Fail> {
        if self.s[self.pos..].starts_with(word) {
            self.pos += word.len();
            Ok(value)
        } else {
            Err(Fail::Syntax)
        }
    }

    fn enter(depth: usize) -> Result<(), Fail> {
        if depth > RECURSION {
            Err(Fail::Recursion)
        } else {
            Ok(())
        }
    }

    fn object(&mut self, depth: usize) -> Result<Value<'a>, Fail> {
        Self::enter(depth)?;
        self.pos += 1;
        let mut pairs = Vec::new();
        self.ws();
        if self.peek() == Some(b'}') {
            self.pos += 1;
            return Ok(Value::Object(pairs));
        }
        loop {
            if self.peek() != Some(b'"') {
                return Err(Fail::Syntax);
            }
            let key = self.string()?;
            self.ws();
            if self.peek() != Some(b':') {
                return Err(Fail::Syntax);
            }
            self.pos += 1;
            self.ws();
            let node = self.value(depth)?;
            pairs.push((key, node));
            self.ws();
            match self.peek() {
                Some(b',') => {
                    self.pos += 1;
                    self.ws();
                }
                Some(b'}') => {
                    self.pos += 1;
                    return Ok(Value::Object(pairs));
                }
                _ => return Err(Fail::Syntax),
            }
        }
    }

    fn array(&mut self, depth: usize) -> Result<Value<'a>, Fail> {
        Self::enter(depth)?;
        self.pos += 1;
        let mut items = Vec::new();
        self.ws();
        if self.peek() == Some(b']') {
            self.pos += 1;
            return Ok(Value::Array(items));
        }
        loop {
            items.push(self.value(depth)?);
            self.ws();
            match self.peek() {
                Some(b',') => {
                    self.pos += 1;
                    self.ws();
                }
                Some(b']') => {
                    self.pos += 1;
                    return Ok(Value::Array(items));
                }
                _ => return Err(Fail::Syntax),
            }
        }
    }

    fn digits(&mut self) -> usize {
        let start = self.pos;
        while let Some(b'0'..=b'9') = self.peek() {
            self.pos += 1;
        }
        self.pos - start
    }

    fn number(&mut self) -> Result<Value<'a>, Fail> {
        let start = self.pos;
        if self.peek() == Some(b'-') {
            self.pos += 1;
        }
        match self.peek() {
            Some(b'0') => self.pos += 1,
            Some(b'1'..=b'9') => {
                self.digits();
            }
            _ => return Err(Fail::Syntax),
        }
        let mut float = false;
        if self.peek() == Some(b'.') {
            self.pos += 1;
            if self.digits() == 0 {
                return Err(Fail::Syntax);
            }
            float = true;
        }
        if let Some(b'e' | b'E') = self.peek() {
            self.pos += 1;
            if let Some(b'+' | b'-') = self.peek() {
                self.pos += 1;
            }
            if self.digits() == 0 {
                return Err(Fail::Syntax);
            }
            float = true;
        }
        let literal = &self.text[start..self.pos];
        let value = if float {
            let f: f64 = literal.parse().map_err(|_| Fail::Syntax)?;
            if !f.is_finite() {
                self.number_first = true;
            }
            Value::Float(f)
        } else if let Ok(i) = literal.parse::<i64>() {
            Value::Int(i)
        } else {
            let long = literal.len() > INT_CHARS;
            if long {
                self.number_first = true;
            }
            let approx = literal.parse().unwrap_or(f64::INFINITY);
            Value::BigInt { long, approx }
        };
        Ok(value)
    }

    fn hex4(&mut self) -> Result<u32, Fail> {
        let digits = self.s.get(self.pos..self.pos + 4).ok_or(Fail::Syntax)?;
        let mut v = 0u32;
        for d in digits {
            v = v * 16 + char::from(*d).to_digit(16).ok_or(Fail::Syntax)?;
        }
        self.pos += 4;
        Ok(v)
    }

    fn string(&mut self) -> Result<Cow<'a, str>, Fail> {
        self.pos += 1;
        let start = self.pos;
        loop {
            match self.peek().ok_or(Fail::Syntax)? {
                b'"' => {
                    let text = &self.text[start..self.pos];
                    self.pos += 1;
                    return Ok(Cow::Borrowed(text));
                }
                b'\\' => break,
                0..=0x1f => return Err(Fail::Syntax),
                _ => self.pos += 1,
            }
        }
        let mut out = String::from(&self.text[start..self.pos]);
        loop {
            let run = self.pos;
            loop {
                match self.peek().ok_or(Fail::Syntax)? {
                    b'"' | b'\\' => break,
                    0..=0x1f => return Err(Fail::Syntax),
                    _ => self.pos += 1,
                }
            }
            out.push_str(&self.text[run..self.pos]);
            if self.peek() == Some(b'"') {
                self.pos += 1;
                return Ok(Cow::Owned(out));
            }
            self.pos += 1;
            let escaped = self.peek().ok_or(Fail::Syntax)?;
            self.pos += 1;
            let c = match escaped {
                b'"' => '"',
                b'\\' => '\\',
                b'/' => '/',
                b'b' => '\u{8}',
                b'f' => '\u{c}',
                b'n' => '\n',
                b'r' => '\r',
                b't' => '\t',
                b'u' => {
                    let high = self.hex4()?;
                    let code = if (0xd800..0xdc00).contains(&high) {
                        if !self.s[self.pos..].starts_with(b"\\u") {
                            return Err(Fail::Syntax);
                        }
                        self.pos += 2;
                        let low = self.hex4()?;
                        if !(0xdc00..0xe000).contains(&low) {
                            return Err(Fail::Syntax);
                        }
                        0x10000 + ((high - 0xd800) << 10) + (low - 0xdc00)
                    } else {
                        high
                    };
                    char::from_u32(code).ok_or(Fail::Syntax)?
                }
                _ => return Err(Fail::Syntax),
            };
            out.push(c);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn code(body: &[u8]) -> Option<&'static str> {
        problem_of(body).map(|p| p.code)
    }

    #[test]
    fn acceptable_json_has_no_problem() {
        assert_eq!(
            code(br#"{"a": [1, -2.5e3, "x\u00e9\ud83d\ude00", null, true]}"#),
            None
        );
        assert_eq!(code(b"[-9223372036854775808, 9223372036854775807]"), None);
    }

    #[test]
    fn each_rule_has_its_code() {
        assert_eq!(code(b"  "), Some(MALFORMED));
        assert_eq!(code(b"\"\xff\""), Some(INVALID_UTF8));
        assert_eq!(code(b"[1,]"), Some(MALFORMED));
        assert_eq!(code(b"[NaN]"), Some(INVALID_NUMBER));
        assert_eq!(code(b"[1e400]"), Some(INVALID_NUMBER));
        assert_eq!(code(b"9223372036854775808"), Some(INVALID_NUMBER));
        assert_eq!(code(br#"["\ud800"]"#), Some(INVALID_UTF8));
        let deep = format!("{}{}", "[".repeat(33), "]".repeat(33));
        assert_eq!(code(deep.as_bytes()), Some(TOO_DEEP));
        let ok = format!("{}{}", "[".repeat(32), "]".repeat(32));
        assert_eq!(code(ok.as_bytes()), None);
    }

    #[test]
    fn a_syntax_error_names_its_line_and_column() {
        let found = problem_of(b"{\n  \"a\": 1,\n  \"b\": }").unwrap();
        assert_eq!(
            found.detail,
            "the body is not valid JSON (line 3, column 8)"
        );
    }
}
