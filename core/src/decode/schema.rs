//! An event schema compiled for validating `properties`: each field's type and whether it is
//! required. The first problem in document order is reported (a key the schema does not have
//! is never repeated); a missing required field is looked for once every key is read.

use std::collections::HashMap;

use super::json::{Node, Value};
use super::time::{self, Time};
use crate::redact;

/// A field's type in an event schema.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldType {
    String,
    Integer,
    Number,
    Boolean,
    Timestamp,
}

impl FieldType {
    /// The type as the schema spells it (API.md, Schemas).
    pub fn from_name(name: &str) -> Option<Self> {
        Some(match name {
            "string" => Self::String,
            "integer" => Self::Integer,
            "number" => Self::Number,
            "boolean" => Self::Boolean,
            "timestamp" => Self::Timestamp,
            _ => return None,
        })
    }

    /// The type as a detail names it.
    fn detail_name(self) -> &'static str {
        match self {
            Self::String => "str",
            Self::Integer => "int",
            Self::Number => "float",
            Self::Boolean => "bool",
            Self::Timestamp => "datetime",
        }
    }
}

/// A decoded property value.
#[derive(Debug, Clone, PartialEq)]
pub enum Prop {
    Str(String),
    Int(i64),
    Float(f64),
    Bool(bool),
    /// Always with an offset.
    Time(Time),
    /// A string of a screened field in which the recognizers found personal data, with each
    /// finding replaced by its placeholder (`<EMAIL>`, ...): the value as it is kept.
    Redacted(String),
}

/// A field of a compiled schema.
#[derive(Debug, Clone)]
pub struct Field {
    pub name: String,
    pub kind: FieldType,
    pub required: bool,
    /// Kept in clear under a non-personal category: its strings are screened by the
    /// recognizers, and what they find is redacted before the value goes anywhere (API.md,
    /// Governance: a declaration never lets personal data through in clear).
    pub screen: bool,
}

/// The code and detail refusing an event's properties.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub code: &'static str,
    pub detail: String,
}

pub const UNKNOWN_FIELD: &str = "unknown_field";
pub const MISSING_FIELD: &str = "missing_field";
pub const INVALID_FIELD: &str = "invalid_field";

fn invalid(detail: String) -> Refusal {
    Refusal {
        code: INVALID_FIELD,
        detail,
    }
}

/// Each field's value in the schema's field order; None for a field absent or null.
pub type Values = Vec<Option<Prop>>;

/// A schema compiled once per schema version.
#[derive(Debug, Clone)]
pub struct Schema {
    fields: Vec<Field>,
    index: HashMap<String, usize>,
}

impl Schema {
    pub fn new(fields: Vec<Field>) -> Self {
        let index = fields
            .iter()
            .enumerate()
            .map(|(i, f)| (f.name.clone(), i))
            .collect();
        Self { fields, index }
    }

    pub fn fields(&self) -> &[Field] {
        &self.fields
    }

    /// The properties decoded against the schema, or the first problem.
    pub fn check(&self, node: &Node<'_>) -> Result<Values, Refusal> {
        let Value::Object(pairs) = &node.value else {
            return Err(invalid(format!(
                "properties: expected object, got {}",
                node.kind()
            )));
        };
        // API.md's order: unknown_field, then missing_field, then invalid_field (each the
        // first in the document, or in the schema for a missing one).
        let mut given = vec![false; self.fields.len()];
        let mut at = Vec::with_capacity(pairs.len());
        for (key, value) in pairs {
            let Some(&i) = self.index.get(key.as_ref()) else {
                // The key was sent by the client and may itself be personal: never repeated.
                return Err(Refusal {
                    code: UNKNOWN_FIELD,
                    detail: "properties: a property not in the schema".into(),
                });
            };
            given[i] = true;
            at.push((i, value));
        }
        if let Some(field) = self
            .fields
            .iter()
            .zip(&given)
            .find_map(|(f, g)| (f.required && !g).then_some(f))
        {
            return Err(Refusal {
                code: MISSING_FIELD,
                detail: format!("properties.{} is required", field.name),
            });
        }
        let mut values: Values = vec![None; self.fields.len()];
        for (i, value) in at {
            let field = &self.fields[i];
            values[i] = if value.value == Value::Null && !field.required {
                None
            } else {
                Some(convert(field, value)?)
            };
        }
        Ok(values)
    }
}

fn convert(field: &Field, node: &Node<'_>) -> Result<Prop, Refusal> {
    let name = &field.name;
    let prop = match (field.kind, &node.value) {
        (FieldType::String, Value::Str(s)) if field.screen => match redact::redact(s) {
            Some(redacted) => Prop::Redacted(redacted),
            None => Prop::Str(s.to_string()),
        },
        (FieldType::String, Value::Str(s)) => Prop::Str(s.to_string()),
        (FieldType::Integer, Value::Int(i)) => Prop::Int(*i),
        (FieldType::Number, Value::Int(i)) => Prop::Float(*i as f64),
        (FieldType::Number, Value::Float(f) | Value::BigInt { approx: f, .. }) if f.is_finite() => {
            Prop::Float(*f)
        }
        (FieldType::Boolean, Value::Bool(b)) => Prop::Bool(*b),
        (FieldType::Timestamp, Value::Str(s)) => match time::parse(s) {
            Some(t) if t.offset.is_some() => Prop::Time(t),
            _ => {
                return Err(invalid(format!(
                    "properties.{name}: expected an RFC 3339 time with a time zone"
                )))
            }
        },
        (FieldType::Integer | FieldType::Number, Value::BigInt { .. }) => {
            return Err(invalid(format!(
                "properties.{name}: an integer beyond signed 64 bits"
            )))
        }
        (FieldType::Number, Value::Float(_)) => {
            return Err(invalid(format!(
                "properties.{name}: a number beyond the range of a 64-bit float"
            )))
        }
        (kind, _) => {
            return Err(invalid(format!(
                "properties.{name}: expected {}, got {}",
                kind.detail_name(),
                node.kind()
            )))
        }
    };
    Ok(prop)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decode::json::parse;

    fn schema() -> Schema {
        Schema::new(vec![
            Field {
                name: "url".into(),
                kind: FieldType::String,
                required: true,
                screen: true,
            },
            Field {
                name: "count".into(),
                kind: FieldType::Integer,
                required: false,
                screen: false,
            },
            Field {
                name: "at".into(),
                kind: FieldType::Timestamp,
                required: false,
                screen: false,
            },
        ])
    }

    fn check(text: &str) -> Result<Values, Refusal> {
        schema().check(&parse(text).result.unwrap())
    }

    #[test]
    fn values_in_schema_order_nulls_left_out() {
        let values = check(r#"{"count": 2, "url": "/", "at": null}"#).unwrap();
        assert_eq!(
            values,
            vec![Some(Prop::Str("/".into())), Some(Prop::Int(2)), None]
        );
    }

    #[test]
    fn a_screened_string_is_kept_redacted_and_marked() {
        let values =
            check(r#"{"url": "/u/ana@example.com?tel=+447700900123", "count": 1}"#).unwrap();
        assert_eq!(
            values[0],
            Some(Prop::Redacted("/u/<EMAIL>?tel=<PHONE>".into()))
        );
        let plain = check(r#"{"url": "/checkout/2"}"#).unwrap();
        assert_eq!(plain[0], Some(Prop::Str("/checkout/2".into())));
    }

    #[test]
    fn unknown_then_missing_then_invalid_as_api_md_orders_them() {
        let code = |t: &str| check(t).unwrap_err().code;
        assert_eq!(
            code(r#"{"count": "x", "zzz": 1, "url": "/"}"#),
            UNKNOWN_FIELD
        );
        assert_eq!(code(r#"{"count": "x"}"#), MISSING_FIELD);
        assert_eq!(code(r#"{"url": 5, "count": "x"}"#), INVALID_FIELD);
    }

    #[test]
    fn the_first_problem_in_document_order() {
        let detail = |t: &str| check(t).unwrap_err().detail;
        assert_eq!(detail("{}"), "properties.url is required");
        assert_eq!(
            detail(r#"{"url": 5}"#),
            "properties.url: expected str, got int"
        );
        assert_eq!(
            detail(r#"{"ana@example.com": 1, "url": 5}"#),
            "properties: a property not in the schema"
        );
        assert_eq!(
            detail(r#"{"url": "/", "count": 1.0}"#),
            "properties.count: expected int, got float"
        );
        assert_eq!(
            detail(r#"{"url": "/", "at": "2026-01-01T10:00:00"}"#),
            "properties.at: expected an RFC 3339 time with a time zone"
        );
        assert_eq!(detail("[]"), "properties: expected object, got array");
    }
}
