//! A batch's accepted events shaped in one pass: each subject's decision about one schema
//! (which fields are kept, for which purposes, treated how, sealed or not), planned once by
//! the caller for every field of the schema ([`FieldPlan`]), narrowed here to the fields each
//! event has ([`FieldPlan::shape`]); the pure treatments (keyed pseudonyms, redaction) done
//! here ([`Treat::apply`]), each distinct value once a batch ([`Treated`]).

use std::collections::HashMap;

use crate::json;
use crate::pseudonym::Pseudonymiser;
use crate::redact;
use crate::shape::{Kept, RowPlan, Source};

/// What is done to a kept field's value before it is stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Treat {
    /// Stored as sent.
    Keep,
    /// Keyed HMAC-SHA256 of the field and the value's text ([`Pseudonymiser::field`]).
    Pseudonymise,
    /// Free-text PII replaced by placeholders ([`redact::redact`]).
    Redact,
    /// A token from the vault, worked out by the caller (it needs storage).
    Token,
}

impl Treat {
    /// The treatment by its name in a schema (`drop` is no kept field's).
    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "keep" => Some(Self::Keep),
            "pseudonymise" => Some(Self::Pseudonymise),
            "redact" => Some(Self::Redact),
            "tokenise" => Some(Self::Token),
            _ => None,
        }
    }

    /// The value's treated text; `None` for [`Treat::Keep`] and [`Treat::Token`], and for a
    /// text redaction leaves as it is.
    pub fn apply(self, pseudonyms: &Pseudonymiser, field: &str, text: &str) -> Option<String> {
        match self {
            Self::Pseudonymise => Some(pseudonyms.field(field, text)),
            Self::Redact => redact::redact(text),
            Self::Keep | Self::Token => None,
        }
    }
}

/// A field one decision keeps: its name, treatment, whether it is sealed, and the purposes it
/// is shown to when narrowed from the event's (`None`: all of them).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Planned {
    pub name: String,
    pub treat: Treat,
    pub sealed: bool,
    pub restricted: Option<Vec<String>>,
}

/// Every field of one schema that one decision keeps, in the schema's order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldPlan {
    fields: Vec<Planned>,
}

/// The stored shape of the events of one decision that have the same fields: their row plan,
/// which planned field each of its fields is (`fields()[n]` of the row plan is
/// `planned[n]`), and `events.field_purposes` (JSON, `None` when no field is narrowed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Shape {
    pub row: RowPlan,
    pub planned: Vec<usize>,
    pub field_purposes: Option<String>,
}

impl FieldPlan {
    /// The plan of these fields; `None` when a name comes twice.
    pub fn new(fields: Vec<Planned>) -> Option<Self> {
        let mut names: Vec<&str> = fields.iter().map(|f| f.name.as_str()).collect();
        names.sort_unstable();
        if names.windows(2).any(|pair| pair[0] == pair[1]) {
            return None;
        }
        Some(Self { fields })
    }

    /// The kept fields, in the schema's order.
    pub fn fields(&self) -> &[Planned] {
        &self.fields
    }

    /// The shape of an event that has the planned fields `present` (indexes into `fields()`).
    pub fn shape(&self, present: &[usize]) -> Shape {
        let mut planned = present.to_vec();
        planned.sort_by(|a, b| self.fields[*a].name.cmp(&self.fields[*b].name));
        let kept = planned
            .iter()
            .map(|&n| {
                let f = &self.fields[n];
                Kept {
                    name: f.name.clone(),
                    source: if f.treat == Treat::Keep {
                        Source::Sent
                    } else {
                        Source::Treated
                    },
                    sealed: f.sealed,
                }
            })
            .collect();
        let row = RowPlan::new(kept).expect("the plan's names are distinct");
        let mut narrowed = planned
            .iter()
            .filter_map(|&n| {
                let f = &self.fields[n];
                f.restricted.as_ref().map(|r| (f.name.as_str(), r))
            })
            .peekable();
        let field_purposes = narrowed.peek().is_some().then(|| {
            let mut out = vec![b'{'];
            for (name, purposes) in narrowed {
                if out.len() > 1 {
                    out.push(b',');
                }
                json::write_str(&mut out, name);
                out.extend_from_slice(b":[");
                for (i, p) in purposes.iter().enumerate() {
                    if i > 0 {
                        out.push(b',');
                    }
                    json::write_str(&mut out, p);
                }
                out.push(b']');
            }
            out.push(b'}');
            String::from_utf8(out).expect("JSON of str is UTF-8")
        });
        Shape {
            row,
            planned,
            field_purposes,
        }
    }
}

/// The pure treatments of one batch, each distinct (treatment, field, text) worked out once.
pub struct Treated<'a> {
    pseudonyms: &'a Pseudonymiser,
    done: HashMap<(Treat, &'a str, &'a str), Option<String>>,
}

impl<'a> Treated<'a> {
    pub fn new(pseudonyms: &'a Pseudonymiser) -> Self {
        Self {
            pseudonyms,
            done: HashMap::new(),
        }
    }

    /// The treated text (`None`: the text itself).
    pub fn get(&mut self, treat: Treat, field: &'a str, text: &'a str) -> Option<&str> {
        let pseudonyms = self.pseudonyms;
        self.done
            .entry((treat, field, text))
            .or_insert_with(|| treat.apply(pseudonyms, field, text))
            .as_deref()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn planned(name: &str, treat: Treat, sealed: bool, restricted: Option<&[&str]>) -> Planned {
        Planned {
            name: name.into(),
            treat,
            sealed,
            restricted: restricted.map(|r| r.iter().map(|p| (*p).to_owned()).collect()),
        }
    }

    fn plan() -> FieldPlan {
        FieldPlan::new(vec![
            planned("url", Treat::Keep, false, None),
            planned("email", Treat::Pseudonymise, false, None),
            planned("offer", Treat::Keep, true, Some(&["b", "c"])),
            planned("note", Treat::Redact, true, Some(&["a"])),
        ])
        .unwrap()
    }

    #[test]
    fn an_event_is_shaped_by_the_fields_it_has() {
        let shape = plan().shape(&[0, 1, 2, 3]);
        let names: Vec<_> = shape.row.fields().iter().map(|k| k.name.as_str()).collect();
        assert_eq!(names, ["email", "note", "offer", "url"]);
        assert_eq!(shape.planned, [1, 3, 2, 0]);
        let sources: Vec<_> = shape.row.fields().iter().map(|k| k.source).collect();
        assert_eq!(
            sources,
            [Source::Treated, Source::Treated, Source::Sent, Source::Sent]
        );
        assert_eq!(
            shape.field_purposes.as_deref(),
            Some(r#"{"note":["a"],"offer":["b","c"]}"#)
        );
        let fewer = plan().shape(&[0, 1]);
        assert_eq!(fewer.field_purposes, None);
        assert_eq!(fewer.planned, [1, 0]);
        assert!(plan().shape(&[]).row.fields().is_empty());
    }

    #[test]
    fn a_name_planned_twice_is_refused() {
        assert!(FieldPlan::new(vec![
            planned("a", Treat::Keep, false, None),
            planned("a", Treat::Redact, true, None),
        ])
        .is_none());
    }

    #[test]
    fn treatments_are_worked_out_once_per_text() {
        let key = Pseudonymiser::new(b"k");
        let mut treated = Treated::new(&key);
        let once = treated.get(Treat::Pseudonymise, "email", "a@example.com");
        assert_eq!(once, Some(key.field("email", "a@example.com").as_str()));
        assert_eq!(
            treated.get(Treat::Redact, "note", "mail a@example.com"),
            Some("mail <EMAIL>")
        );
        assert_eq!(treated.get(Treat::Redact, "note", "nothing"), None);
        assert_eq!(treated.get(Treat::Keep, "url", "/a"), None);
        assert_eq!(treated.done.len(), 4);
        assert_eq!(Treat::from_name("tokenise"), Some(Treat::Token));
        assert_eq!(Treat::from_name("drop"), None);
    }
}
