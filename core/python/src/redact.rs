//! Free-text redaction (consentry_core::redact): `redact_many` for a batch, `redact` and `find`
//! for one text. The GIL is released for the scan. Spans are code points, as Python counts.

use consentry_core::redact;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PySlice, PyString};

/// A text as the core reads it: its UTF-8, or, for a str that has none (a lone surrogate),
/// its code points with each surrogate read as U+FFFD (no rule counts either as anything).
enum Text<'a> {
    Utf8(&'a str),
    CodePoints(Vec<char>),
}

enum Found {
    Nothing,
    Redacted(String),
    Spans(Vec<redact::Span>),
}

fn text<'a>(value: &'a Bound<'_, PyString>) -> PyResult<Text<'a>> {
    if let Ok(utf8) = value.to_str() {
        return Ok(Text::Utf8(utf8));
    }
    let encoded = value.call_method1("encode", ("utf-32-le", "surrogatepass"))?;
    let bytes = encoded.cast::<PyBytes>()?.as_bytes();
    Ok(Text::CodePoints(
        bytes
            .chunks_exact(4)
            .map(|c| {
                char::from_u32(u32::from_le_bytes([c[0], c[1], c[2], c[3]])).unwrap_or('\u{FFFD}')
            })
            .collect(),
    ))
}

fn scan(text: &Text<'_>) -> Found {
    match text {
        Text::Utf8(s) => redact::redact(s).map_or(Found::Nothing, Found::Redacted),
        Text::CodePoints(chars) => {
            let spans = redact::find(chars);
            if spans.is_empty() {
                Found::Nothing
            } else {
                Found::Spans(spans)
            }
        }
    }
}

/// The redacted str: the value itself when nothing was found.
fn result<'py>(value: &Bound<'py, PyString>, found: Found) -> PyResult<Bound<'py, PyString>> {
    let py = value.py();
    match found {
        Found::Nothing => Ok(value.clone()),
        Found::Redacted(s) => Ok(PyString::new(py, &s)),
        Found::Spans(spans) => {
            // Slices of the original keep its surrogates as they are.
            let mut parts: Vec<Bound<'py, PyAny>> = Vec::with_capacity(2 * spans.len() + 1);
            let mut pos = 0;
            let length = value.len()?;
            for span in &spans {
                parts.push(value.get_item(PySlice::new(
                    py,
                    pos as isize,
                    span.start as isize,
                    1,
                ))?);
                parts.push(PyString::new(py, span.kind.placeholder()).into_any());
                pos = span.end;
            }
            parts.push(value.get_item(PySlice::new(py, pos as isize, length as isize, 1))?);
            Ok(PyString::new(py, "")
                .call_method1("join", (parts,))?
                .cast_into::<PyString>()?)
        }
    }
}

/// Each value with its PII replaced by placeholders, in order (one call per batch).
#[pyfunction]
pub fn redact_many<'py>(
    py: Python<'py>,
    values: Vec<Bound<'py, PyString>>,
) -> PyResult<Vec<Bound<'py, PyString>>> {
    let texts = values.iter().map(text).collect::<PyResult<Vec<_>>>()?;
    let found: Vec<Found> = py.detach(|| texts.iter().map(scan).collect());
    values
        .iter()
        .zip(found)
        .map(|(value, found)| result(value, found))
        .collect()
}

/// One value with its PII replaced by placeholders (itself when it holds none).
#[pyfunction(name = "redact")]
pub fn redact_one<'py>(value: Bound<'py, PyString>) -> PyResult<Bound<'py, PyString>> {
    let found = {
        let text = text(&value)?;
        value.py().detach(|| scan(&text))
    };
    result(&value, found)
}

/// The PII spans of one text: (start, end, kind name), code points, in order.
#[pyfunction(name = "find")]
pub fn find_spans(
    py: Python<'_>,
    value: Bound<'_, PyString>,
) -> PyResult<Vec<(usize, usize, &'static str)>> {
    let text = text(&value)?;
    let spans = py.detach(|| match &text {
        Text::Utf8(s) => redact::find_str(s),
        Text::CodePoints(chars) => redact::find(chars),
    });
    Ok(spans
        .iter()
        .map(|s| (s.start, s.end, s.kind.name()))
        .collect())
}

/// Adds the functions to `consentry._core`.
pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(redact_many, m)?)?;
    m.add_function(wrap_pyfunction!(redact_one, m)?)?;
    m.add_function(wrap_pyfunction!(find_spans, m)?)?;
    Ok(())
}
