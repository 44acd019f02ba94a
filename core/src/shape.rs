//! An accepted event's stored shape: which of its values are kept in clear
//! (`events.properties`) and which are sealed under the subject's key (`events.sealed`), each
//! set written as the stored JSON (sorted keys, [`crate::json`]'s spelling), from the event's
//! minimisation plan (worked out once per shape of event by the caller).

use std::fmt;

use crate::json::{self, Time};

/// One value of an event, as the stored JSON spells it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Value<'a> {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(&'a str),
    Time(Time),
}

/// Why a row could not be written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ShapeError {
    /// A value stored JSON cannot hold (NaN or an infinity).
    NotFinite(String),
}

impl fmt::Display for ShapeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NotFinite(field) => write!(f, "{field}: a number that is not finite"),
        }
    }
}

impl std::error::Error for ShapeError {}

/// Where a kept field's stored value comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// The value as sent (the field is kept as it is).
    Sent,
    /// The value its treatment gave (pseudonymised, tokenised, redacted).
    Treated,
}

/// A kept field: its name, where its value comes from, and whether it is sealed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Kept {
    pub name: String,
    pub source: Source,
    pub sealed: bool,
}

/// The kept fields of one shape of event, in stored (sorted) order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RowPlan {
    fields: Vec<Kept>,
}

impl RowPlan {
    /// The plan of these kept fields (in any order); `None` when a name comes twice (which
    /// value would be stored, the one sent or the treated one, would be a guess).
    pub fn new(mut fields: Vec<Kept>) -> Option<Self> {
        fields.sort_by(|a, b| a.name.cmp(&b.name));
        if fields.windows(2).any(|pair| pair[0].name == pair[1].name) {
            return None;
        }
        Some(Self { fields })
    }

    /// The kept fields in stored order.
    pub fn fields(&self) -> &[Kept] {
        &self.fields
    }

    /// The stored JSON of the values kept in clear and of those to seal (`None` when the event
    /// has none to seal). `value(n, out)` puts the value of `fields()[n]` into `out`.
    pub fn encode<E>(
        &self,
        mut value: impl FnMut(usize, ValueOut<'_>) -> Result<(), E>,
    ) -> Result<(Vec<u8>, Option<Vec<u8>>), E> {
        let mut clear = Vec::with_capacity(64);
        let mut personal = Vec::new();
        clear.push(b'{');
        personal.push(b'{');
        for (n, kept) in self.fields.iter().enumerate() {
            let out = if kept.sealed {
                &mut personal
            } else {
                &mut clear
            };
            if out.len() > 1 {
                out.push(b',');
            }
            json::write_str(out, &kept.name);
            out.push(b':');
            value(
                n,
                ValueOut {
                    out,
                    field: &kept.name,
                },
            )?;
        }
        clear.push(b'}');
        if personal.len() == 1 {
            return Ok((clear, None));
        }
        personal.push(b'}');
        Ok((clear, Some(personal)))
    }
}

/// Where one field's value is written.
pub struct ValueOut<'a> {
    out: &'a mut Vec<u8>,
    field: &'a str,
}

impl ValueOut<'_> {
    /// Writes the value.
    pub fn put(self, value: &Value<'_>) -> Result<(), ShapeError> {
        write_value(self.out, value, self.field)
    }

    /// The field's name.
    pub fn field(&self) -> &str {
        self.field
    }
}

fn write_value(out: &mut Vec<u8>, value: &Value<'_>, field: &str) -> Result<(), ShapeError> {
    match value {
        Value::Null => out.extend_from_slice(b"null"),
        Value::Bool(b) => json::write_bool(out, *b),
        Value::Int(i) => json::write_i64(out, *i),
        Value::Float(f) => {
            json::write_f64(out, *f).ok_or_else(|| ShapeError::NotFinite(field.to_owned()))?
        }
        Value::Str(s) => json::write_str(out, s),
        Value::Time(t) => json::write_time(out, t),
    }
    Ok(())
}

/// `events.subject_key`: 60 bits of the subject id's random part (its characters 4 to 18 as
/// hexadecimal), `None` for an id without them.
pub fn subject_key(subject_id: &str) -> Option<i64> {
    let part = subject_id.get(4..19)?;
    if !part.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    i64::from_str_radix(part, 16).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kept(name: &str, source: Source, sealed: bool) -> Kept {
        Kept {
            name: name.to_owned(),
            source,
            sealed,
        }
    }

    fn encode(plan: &RowPlan, values: &[Value<'static>]) -> (String, Option<String>) {
        let (clear, personal) = plan.encode(|n, out| out.put(&values[n])).unwrap();
        (
            String::from_utf8(clear).unwrap(),
            personal.map(|p| String::from_utf8(p).unwrap()),
        )
    }

    #[test]
    fn clear_and_sealed_values_in_sorted_order() {
        let plan = RowPlan::new(vec![
            kept("page", Source::Sent, false),
            kept("email", Source::Treated, true),
            kept("amount", Source::Sent, false),
            kept("city", Source::Sent, true),
        ])
        .unwrap();
        let names: Vec<_> = plan.fields().iter().map(|k| k.name.as_str()).collect();
        assert_eq!(names, ["amount", "city", "email", "page"]);
        let (clear, personal) = encode(
            &plan,
            &[
                Value::Float(12.5),
                Value::Str("Leeds"),
                Value::Str("tok_x"),
                Value::Str("/a"),
            ],
        );
        assert_eq!(clear, r#"{"amount":12.5,"page":"/a"}"#);
        assert_eq!(personal.unwrap(), r#"{"city":"Leeds","email":"tok_x"}"#);
    }

    #[test]
    fn nothing_to_seal_and_nothing_kept() {
        let plan = RowPlan::new(vec![kept("n", Source::Sent, false)]).unwrap();
        assert_eq!(
            encode(&plan, &[Value::Int(-3)]),
            ("{\"n\":-3}".into(), None)
        );
        let empty = RowPlan::new(vec![]).unwrap();
        assert_eq!(encode(&empty, &[]), ("{}".into(), None));
        let sealed_only = RowPlan::new(vec![kept("b", Source::Sent, true)]).unwrap();
        assert_eq!(
            encode(&sealed_only, &[Value::Bool(true)]),
            ("{}".into(), Some("{\"b\":true}".into()))
        );
    }

    #[test]
    fn a_value_json_cannot_hold_is_refused() {
        let plan = RowPlan::new(vec![kept("x", Source::Sent, false)]).unwrap();
        let refused = plan.encode(|_, out| out.put(&Value::Float(f64::NAN)));
        assert_eq!(refused.unwrap_err(), ShapeError::NotFinite("x".into()));
    }

    #[test]
    fn a_field_named_twice_is_refused() {
        assert!(RowPlan::new(vec![
            kept("email", Source::Sent, false),
            kept("email", Source::Treated, true),
        ])
        .is_none());
    }

    #[test]
    fn subject_keys() {
        assert_eq!(
            subject_key("sub_0123456789abcdefXYZ"),
            Some(0x0012_3456_789a_bcde)
        );
        assert_eq!(subject_key("sub_short"), None);
        assert_eq!(subject_key("sub_0123456789abcdg"), None);
    }
}
