//! The batch decoder on any bytes: it never panics; a batch it decodes re-validates (each
//! event alone decodes the same, is within the JSON rules unless it decoded whole against its
//! schema, and its properties check the same against the schema); a batch it refuses has a
//! code and a detail.
#![no_main]

use consentry_core::decode::{
    self, json,
    schema::{Field, FieldType, Schema},
};
use libfuzzer_sys::fuzz_target;

// 2026-01-01T12:05:00Z
const LATEST: i64 = 1_767_269_100_000_000;

fn schema() -> Schema {
    let field = |name: &str, kind, required| Field {
        name: name.into(),
        kind,
        required,
    };
    Schema::new(vec![
        field("url", FieldType::String, true),
        field("count", FieldType::Integer, false),
        field("amount", FieldType::Number, false),
        field("ok", FieldType::Boolean, false),
        field("at", FieldType::Timestamp, false),
    ])
}

fuzz_target!(|data: &[u8]| {
    let schema = schema();
    let found = decode::decode_batch(data, LATEST, |t| (t == "page_view").then_some(&schema));
    match found {
        Err(problem) => {
            assert!(!problem.code.is_empty() && !problem.detail.is_empty());
        }
        Ok(batch) => {
            assert!(batch.events.len() <= decode::MAX_EVENTS);
            assert_eq!(
                decode::subjects(data).map(|s| s.len()),
                Ok(batch.events.len())
            );
            for event in &batch.events {
                let raw = &data[event.span.0..event.span.1];
                if !matches!(event.checked, Some(Ok(_))) {
                    assert_eq!(json::problem_of(raw), None);
                }
                let alone = decode::decode_one(raw, LATEST);
                assert_eq!(alone.event_id, event.event_id);
                assert_eq!(alone.invalid, event.invalid);
                assert_eq!(alone.envelope.is_some(), event.envelope.is_some());
                if let (Some(envelope), Some(checked)) = (&event.envelope, &event.checked) {
                    let properties = envelope.properties.map_or(&b"{}"[..], |(s, e)| &data[s..e]);
                    assert_eq!(&decode::check_properties(&schema, properties), checked);
                }
            }
        }
    }
});
