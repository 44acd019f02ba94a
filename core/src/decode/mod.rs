//! Decoding an events batch: the batch refused whole (the JSON rules of every route, then the
//! batch's own shape), else each event's envelope or the detail of its `invalid_event`, and
//! each event's properties against its schema. Details name fields and rules, never a value
//! or a key that was sent (API.md, Events).

pub mod json;
mod python;
pub mod schema;
pub mod time;

use json::{Node, Problem, Value};
use schema::{Refusal, Schema, Values};
use time::Time;

/// At most this many events a batch.
pub const MAX_EVENTS: usize = 1000;
/// An event_id is 1-128 characters.
pub const MAX_EVENT_ID: usize = 128;
/// Stored times are fixed-width text with four-digit years.
pub const MIN_YEAR: i64 = 1000;
/// How far ahead of the server's clock an occurred_at may be, in minutes (API.md, Retention).
pub const AHEAD_MINUTES: i64 = 5;

pub const BODY_NOT_OBJECT: &str = "body_not_object";
pub const INVALID_BATCH: &str = "invalid_batch";
pub const BATCH_TOO_LARGE: &str = "batch_too_large";

/// The detail of an event that is not JSON the API can read.
pub const UNREADABLE_EVENT: &str = "the event is not a JSON object the API can read";
/// The detail of properties that are not JSON the schema can read.
pub const UNREADABLE_PROPERTIES: &str = "properties is not a JSON object the schema can read";

/// Who an event is about, as sent.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Subject {
    pub subject_id: Option<String>,
    pub identities: Option<Vec<(String, String)>>,
}

/// An event's envelope, its `properties` left as they are (a span of the input).
#[derive(Debug, Clone, PartialEq)]
pub struct Envelope {
    pub event_id: Option<String>,
    pub event_type: Option<String>,
    pub occurred_at: Option<Time>,
    pub subject: Option<Subject>,
    pub consent_token: Option<String>,
    pub gpc: bool,
    /// Byte offsets of `properties` in the input; None when the event has none (`{}`).
    pub properties: Option<(usize, usize)>,
}

/// One event of a batch, decoded.
#[derive(Debug, Clone, PartialEq)]
pub struct Decoded {
    /// The event's byte offsets in the body.
    pub span: (usize, usize),
    /// The event_id for its result.
    pub event_id: Option<String>,
    /// The envelope, when the event has the envelope's shape (maybe incomplete).
    pub envelope: Option<Envelope>,
    /// The detail of its `invalid_event`, or None when it is complete.
    pub invalid: Option<String>,
    /// Its properties against its schema, when the caller gave one for its event_type.
    pub checked: Option<Result<Values, Refusal>>,
}

/// A batch decoded.
#[derive(Debug, Clone, PartialEq)]
pub struct Batch {
    pub gpc: bool,
    pub events: Vec<Decoded>,
}

/// The batch's own shape in a valid JSON document: its events (nodes) and gpc, or the detail.
fn shape<'n, 'a>(node: &'n Node<'a>) -> Result<(&'n [Node<'a>], bool), String> {
    let Value::Object(pairs) = &node.value else {
        return Err(format!("the value: expected object, got {}", node.kind()));
    };
    let (mut events, mut gpc) = (None, false);
    for (key, value) in pairs {
        match (key.as_ref(), &value.value) {
            ("events", Value::Array(items)) => events = Some(items.as_slice()),
            ("events", _) => return Err(format!("events: expected array, got {}", value.kind())),
            ("gpc", Value::Bool(b)) => gpc = *b,
            ("gpc", _) => return Err(format!("gpc: expected bool, got {}", value.kind())),
            _ => return Err("the event: a property not in the schema".into()),
        }
    }
    events
        .map(|e| (e, gpc))
        .ok_or_else(|| "events is required".into())
}

/// The batch's events and gpc, or the refusal of the whole batch (before any event is read).
fn batch_nodes<'n, 'a>(
    text: &'a str,
    root: &'n json::Parsed<'a>,
) -> Result<(&'n [Node<'a>], bool), Problem> {
    let shaped = match &root.result {
        Ok(node) => shape(node),
        Err(_) => Err(String::new()),
    };
    let (events, gpc) = match shaped {
        Ok(found) => found,
        Err(detail) => {
            if let Some(problem) = json::problem_of_parsed(text, root) {
                return Err(problem);
            }
            if json::lstrip(text.as_bytes()).first() != Some(&b'{') {
                return Err(Problem::new(
                    BODY_NOT_OBJECT,
                    "the body must be a JSON object",
                ));
            }
            return Err(Problem::new(
                INVALID_BATCH,
                format!("an events batch is {{\"events\": [...]}}: {detail}"),
            ));
        }
    };
    if events.len() > MAX_EVENTS {
        return Err(Problem::new(
            BATCH_TOO_LARGE,
            format!("at most {MAX_EVENTS} events a batch, not {}", events.len()),
        ));
    }
    Ok((events, gpc))
}

/// The JSON rules over one event of a batch that reads as strict JSON.
fn event_problem(node: &Node<'_>) -> Option<Problem> {
    if node.number_out_of_range() {
        Some(json::out_of_range())
    } else {
        json::within_limits(node)
    }
}

/// Decode a batch: refused whole (the JSON rules of every route, then the batch's shape and
/// size, then the JSON rules over each event in order), else each event decoded, complete or
/// not, and the properties of each complete event whose event_type `schema_of` knows checked
/// against it. `latest` is the latest occurred_at accepted, in microseconds since the epoch.
pub fn decode_batch<'s>(
    body: &[u8],
    latest: i64,
    schema_of: impl Fn(&str) -> Option<&'s Schema>,
) -> Result<Batch, Problem> {
    let text = json::text(body)?;
    let root = json::parse(text);
    let (nodes, gpc) = batch_nodes(text, &root)?;
    let events: Vec<Decoded> = nodes
        .iter()
        .map(|node| {
            let mut decoded = decode_event(node, latest);
            if let (None, Some(envelope)) = (&decoded.invalid, &decoded.envelope) {
                let schema = envelope.event_type.as_deref().and_then(&schema_of);
                decoded.checked = schema.map(|s| s.check(properties_node(node)));
            }
            decoded
        })
        .collect();
    // An event that decoded whole against its schema is within the rules already (nothing in
    // it nests deeper than the envelope, a number field holds a double); the others are checked.
    let unchecked = nodes
        .iter()
        .zip(&events)
        .filter(|(_, decoded)| !matches!(decoded.checked, Some(Ok(_))));
    if let Some(problem) = unchecked.map(|(node, _)| node).find_map(event_problem) {
        return Err(problem);
    }
    Ok(Batch { gpc, events })
}

static EMPTY: Node<'static> = Node {
    value: Value::Object(Vec::new()),
    start: 0,
    end: 0,
};

/// The event's properties (the last given), `{}` when it has none.
fn properties_node<'n, 'a>(event: &'n Node<'a>) -> &'n Node<'a> {
    if let Value::Object(pairs) = &event.value {
        if let Some((_, node)) = pairs.iter().rev().find(|(k, _)| k == "properties") {
            return node;
        }
    }
    &EMPTY
}

/// Check properties sent alone (an event's properties span) against a schema.
pub fn check_properties(schema: &Schema, raw: &[u8]) -> Result<Values, Refusal> {
    let parsed = std::str::from_utf8(raw).ok().map(json::parse);
    match parsed.map(|p| p.result) {
        Some(Ok(node)) => schema.check(&node),
        _ => Err(Refusal {
            code: schema::INVALID_FIELD,
            detail: UNREADABLE_PROPERTIES.into(),
        }),
    }
}

/// One event sent alone: decoded, or refused as not JSON.
pub fn decode_one(raw: &[u8], latest: i64) -> Decoded {
    let parsed = std::str::from_utf8(raw).ok().map(json::parse);
    match parsed.map(|p| p.result) {
        Some(Ok(node)) => decode_event(&node, latest),
        _ => Decoded {
            span: (0, raw.len()),
            event_id: None,
            envelope: None,
            invalid: Some(UNREADABLE_EVENT.into()),
            checked: None,
        },
    }
}

fn decode_event(node: &Node<'_>, latest: i64) -> Decoded {
    let span = (node.start, node.end);
    match envelope(node) {
        Ok(envelope) => Decoded {
            span,
            event_id: envelope.event_id.clone(),
            invalid: incomplete(&envelope, latest),
            envelope: Some(envelope),
            checked: None,
        },
        Err(detail) => Decoded {
            span,
            event_id: event_id_of(node),
            envelope: None,
            invalid: Some(detail),
            checked: None,
        },
    }
}

/// The event_id of an event that does not decode, for its result, if it has one.
pub fn event_id_of(node: &Node<'_>) -> Option<String> {
    let Value::Object(pairs) = &node.value else {
        return None;
    };
    match &pairs.iter().rev().find(|(k, _)| k == "event_id")?.1.value {
        Value::Str(s) => Some(s.chars().take(MAX_EVENT_ID).collect()),
        _ => None,
    }
}

fn optional_str(key: &str, node: &Node<'_>) -> Result<Option<String>, String> {
    match &node.value {
        Value::Str(s) => Ok(Some(s.to_string())),
        Value::Null => Ok(None),
        _ => Err(format!("{key}: expected str, got {}", node.kind())),
    }
}

fn required_str(path: &str, node: &Node<'_>) -> Result<String, String> {
    match &node.value {
        Value::Str(s) => Ok(s.to_string()),
        _ => Err(format!("{path}: expected str, got {}", node.kind())),
    }
}

/// The envelope's shape, or the detail of the first thing in it that does not fit.
fn envelope(node: &Node<'_>) -> Result<Envelope, String> {
    let Value::Object(pairs) = &node.value else {
        return Err(format!("the value: expected object, got {}", node.kind()));
    };
    let mut out = Envelope {
        event_id: None,
        event_type: None,
        occurred_at: None,
        subject: None,
        consent_token: None,
        gpc: false,
        properties: None,
    };
    for (key, value) in pairs {
        match key.as_ref() {
            "event_id" => out.event_id = optional_str("event_id", value)?,
            "event_type" => out.event_type = optional_str("event_type", value)?,
            "consent_token" => out.consent_token = optional_str("consent_token", value)?,
            "occurred_at" => {
                out.occurred_at = match &value.value {
                    Value::Null => None,
                    Value::Str(s) => Some(time::parse(s).ok_or_else(|| {
                        "occurred_at: expected an RFC 3339 time with a time zone".to_string()
                    })?),
                    _ => {
                        return Err(format!(
                            "occurred_at: expected datetime, got {}",
                            value.kind()
                        ))
                    }
                }
            }
            "subject" => out.subject = subject(value)?,
            "properties" => out.properties = Some((value.start, value.end)),
            "gpc" => match value.value {
                Value::Bool(b) => out.gpc = b,
                _ => return Err(format!("gpc: expected bool, got {}", value.kind())),
            },
            _ => return Err("the event: a property not in the schema".into()),
        }
    }
    Ok(out)
}

fn subject(node: &Node<'_>) -> Result<Option<Subject>, String> {
    let pairs = match &node.value {
        Value::Null => return Ok(None),
        Value::Object(pairs) => pairs,
        _ => return Err(format!("subject: expected object, got {}", node.kind())),
    };
    let mut out = Subject::default();
    for (key, value) in pairs {
        match key.as_ref() {
            "subject_id" => out.subject_id = optional_str("subject.subject_id", value)?,
            "identities" => out.identities = identities(value)?,
            _ => return Err("subject: a property not in the schema".into()),
        }
    }
    Ok(Some(out))
}

fn identities(node: &Node<'_>) -> Result<Option<Vec<(String, String)>>, String> {
    let items = match &node.value {
        Value::Null => return Ok(None),
        Value::Array(items) => items,
        _ => {
            return Err(format!(
                "subject.identities: expected array, got {}",
                node.kind()
            ))
        }
    };
    let mut out = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let at = format!("subject.identities[{i}]");
        let Value::Object(pairs) = &item.value else {
            return Err(format!("{at}: expected object, got {}", item.kind()));
        };
        let (mut kind, mut value): (Option<String>, Option<String>) = (None, None);
        for (key, field) in pairs {
            match key.as_ref() {
                "type" => kind = Some(required_str(&format!("{at}.type"), field)?),
                "value" => value = Some(required_str(&format!("{at}.value"), field)?),
                _ => return Err(format!("{at}: a property not in the schema")),
            }
        }
        match (kind, value) {
            (Some(kind), Some(value)) => out.push((kind, value)),
            (None, _) => return Err(format!("{at}.type is required")),
            (_, None) => return Err(format!("{at}.value is required")),
        }
    }
    Ok(Some(out))
}

/// Why the event lacks its id, type, time (with a zone, storable, not after `latest`) or
/// subject, or None (API.md: invalid_event).
fn incomplete(event: &Envelope, latest: i64) -> Option<String> {
    let id = event.event_id.as_deref().unwrap_or("");
    if id.is_empty() {
        return Some("event_id is missing".into());
    }
    if id.chars().count() > MAX_EVENT_ID || id.contains('\0') {
        return Some(format!(
            "event_id is 1-{MAX_EVENT_ID} characters, without NUL"
        ));
    }
    let kind = event.event_type.as_deref().unwrap_or("");
    if kind.is_empty() || kind.contains('\0') {
        return Some("event_type is missing".into());
    }
    if event.subject.is_none() {
        return Some("subject is missing".into());
    }
    let Some((at, utc)) = event
        .occurred_at
        .and_then(|t| t.epoch_micros().map(|us| (t, us)))
    else {
        return Some("occurred_at is missing or has no time zone".into());
    };
    let year = at.utc_year().unwrap_or(0);
    let reason = if !(1..=9999).contains(&year) {
        "has no UTC form within the years 1-9999".to_string()
    } else if year < MIN_YEAR {
        format!("is before the year {MIN_YEAR}")
    } else if utc > latest {
        format!("is more than {AHEAD_MINUTES} minutes ahead of the server's clock")
    } else {
        return None;
    };
    Some(format!("occurred_at {reason}"))
}

/// Each event's subject reference as a browser key's batch is scoped by it; None for an event
/// whose subject cannot be read. A batch that cannot be read at all is refused as by
/// `decode_batch` (before its events are read).
pub fn subjects(body: &[u8]) -> Result<Vec<Option<Subject>>, Problem> {
    let text = json::text(body)?;
    let root = json::parse(text);
    let (nodes, _gpc) = batch_nodes(text, &root)?;
    Ok(nodes.iter().map(subject_only).collect())
}

/// The subject of an event read for it alone (other keys ignored).
fn subject_only(node: &Node<'_>) -> Option<Subject> {
    let Value::Object(pairs) = &node.value else {
        return None;
    };
    let mut found = None;
    for (key, value) in pairs {
        if key == "subject" {
            found = subject(value).ok()?;
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    const LATEST: i64 = 1_767_268_800_000_000 + 300_000_000; // 2026-01-01T12:05:00Z

    fn event(extra: &str) -> String {
        format!(
            r#"{{"event_id": "e-1", "event_type": "page_view", "occurred_at": "2026-01-01T11:00:00Z",
            "subject": {{"identities": [{{"type": "email", "value": "ana@example.com"}}]}}{extra}}}"#
        )
    }

    fn batch(body: &str) -> Result<Batch, Problem> {
        decode_batch(body.as_bytes(), LATEST, |_| None)
    }

    #[test]
    fn a_batch_decodes_to_its_events() {
        let body = format!(
            r#"{{"events": [{}, {}], "gpc": true}}"#,
            event(""),
            event(r#", "gpc": true"#)
        );
        let decoded = batch(&body).unwrap();
        assert!(decoded.gpc);
        assert_eq!(decoded.events.len(), 2);
        let first = &decoded.events[0];
        assert_eq!(first.invalid, None);
        let envelope = first.envelope.as_ref().unwrap();
        assert_eq!(envelope.event_id.as_deref(), Some("e-1"));
        assert_eq!(
            envelope.subject.as_ref().unwrap().identities,
            Some(vec![("email".into(), "ana@example.com".into())])
        );
    }

    #[test]
    fn a_batch_is_refused_whole_with_its_code() {
        let code = |b: &str| batch(b).unwrap_err().code;
        assert_eq!(code(""), json::MALFORMED);
        assert_eq!(code("[]"), BODY_NOT_OBJECT);
        assert_eq!(code("{}"), INVALID_BATCH);
        assert_eq!(code(r#"{"events": [{"a": 1e400}]}"#), json::INVALID_NUMBER);
        let many = format!(r#"{{"events": [{}]}}"#, vec!["{}"; 1001].join(","));
        assert_eq!(code(&many), BATCH_TOO_LARGE);
        let detail = batch(r#"{"events": [], "ana@example.com": 1}"#)
            .unwrap_err()
            .detail;
        assert!(!detail.contains("ana@example.com"));
    }

    #[test]
    fn an_event_decoded_whole_is_not_checked_again() {
        let schema = Schema::new(vec![schema::Field {
            name: "amount".into(),
            kind: schema::FieldType::Number,
            required: true,
            screen: false,
        }]);
        let body = format!(
            r#"{{"events": [{}]}}"#,
            event(r#", "properties": {"amount": 9223372036854775808}"#)
        );
        let decoded = decode_batch(body.as_bytes(), LATEST, |_| Some(&schema)).unwrap();
        assert_eq!(
            decoded.events[0].checked,
            Some(Ok(vec![Some(schema::Prop::Float(
                9_223_372_036_854_775_808.0
            ))]))
        );
        // Without its schema, the same event breaks the rules, and the batch is refused.
        assert_eq!(batch(&body).unwrap_err().code, json::INVALID_NUMBER);
    }

    #[test]
    fn an_incomplete_event_has_its_reason() {
        let reason = |e: String| {
            batch(&format!(r#"{{"events": [{e}]}}"#)).unwrap().events[0]
                .invalid
                .clone()
        };
        assert_eq!(
            reason(event(r#", "occurred_at": "2026-01-01T12:06:00Z""#)).unwrap(),
            "occurred_at is more than 5 minutes ahead of the server's clock"
        );
        assert_eq!(
            reason(event(r#", "occurred_at": "0999-01-01T12:06:00Z""#)).unwrap(),
            "occurred_at is before the year 1000"
        );
        assert_eq!(
            reason(event(r#", "event_id": 5"#)).unwrap(),
            "event_id: expected str, got int"
        );
        assert_eq!(
            reason("[]".into()).unwrap(),
            "the value: expected object, got array"
        );
    }
}
