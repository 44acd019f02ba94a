//! The binding of consentry_core::decode: an events batch decoded in one call (GIL released
//! for the reading), compiled property schemas, and the forms of one event used alone.

use std::collections::HashMap;
use std::sync::Arc;

use consentry_core::decode::{self, json::Problem, schema, time::Time};
use pyo3::create_exception;
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDateTime, PyDelta, PyDict, PyString, PyTzInfo};

use crate::Data;

create_exception!(
    _core,
    BatchRefused,
    PyValueError,
    "A batch (or JSON body) refused whole: args are (code, detail), the code one of API.md's."
);

fn refused(problem: Problem) -> PyErr {
    BatchRefused::new_err((problem.code, problem.detail))
}

/// An event schema compiled for its `properties`: each field's name, type and whether it is
/// required, in the schema's order, and the fields whose strings are screened (schema::Field).
#[pyclass(frozen, module = "consentry._core")]
pub struct Properties {
    inner: Arc<schema::Schema>,
    /// The field names as Python strings, interned once (the keys of every decoded dict).
    names: Vec<Py<PyString>>,
}

#[pymethods]
impl Properties {
    #[new]
    #[pyo3(signature = (fields, screen = Vec::new()))]
    fn new(
        py: Python<'_>,
        fields: Vec<(String, String, bool)>,
        screen: Vec<String>,
    ) -> PyResult<Self> {
        if let Some(name) = screen.iter().find(|s| !fields.iter().any(|f| &f.0 == *s)) {
            return Err(PyValueError::new_err(format!(
                "no field {name:?} to screen"
            )));
        }
        let mut out = Vec::with_capacity(fields.len());
        for (name, kind, required) in &fields {
            let kind = schema::FieldType::from_name(kind)
                .ok_or_else(|| PyValueError::new_err(format!("no field type {kind:?}")))?;
            out.push(schema::Field {
                name: name.clone(),
                kind,
                required: *required,
                screen: screen.contains(name),
            });
        }
        Ok(Self {
            inner: Arc::new(schema::Schema::new(out)),
            names: fields
                .iter()
                .map(|f| PyString::intern(py, &f.0).unbind())
                .collect(),
        })
    }

    /// (None, None, values, redacted) for properties that fit the schema, else (code, detail,
    /// None, None); `redacted` names the screened fields whose values were redacted, or None.
    fn check<'py>(&self, py: Python<'py>, raw: Data) -> PyResult<Checked<'py>> {
        let inner = Arc::clone(&self.inner);
        let found = py.detach(|| decode::check_properties(&inner, &raw));
        checked(py, &self.names, found)
    }
}

type Checked<'py> = (
    Option<&'static str>,
    Option<String>,
    Option<Bound<'py, PyDict>>,
    Option<Vec<Py<PyString>>>,
);

/// Who an event is about, as sent.
#[pyclass(frozen, get_all, module = "consentry._core")]
pub struct Subject {
    subject_id: Option<String>,
    identities: Option<Vec<(String, String)>>,
}

/// An event's envelope; `properties` is the JSON text of its properties.
#[pyclass(frozen, get_all, module = "consentry._core")]
pub struct Event {
    pub(crate) event_id: Option<Py<PyAny>>,
    event_type: Option<Py<PyAny>>,
    pub(crate) occurred_at: Option<Py<PyAny>>,
    subject: Option<Py<Subject>>,
    consent_token: Option<Py<PyAny>>,
    gpc: bool,
    properties: Py<PyBytes>,
}

/// Time zones by offset in minutes, made once per call.
struct Zones<'py> {
    py: Python<'py>,
    made: HashMap<i32, Bound<'py, PyTzInfo>>,
}

impl<'py> Zones<'py> {
    fn new(py: Python<'py>) -> Self {
        Self {
            py,
            made: HashMap::new(),
        }
    }

    fn datetime(&mut self, t: &Time) -> PyResult<Bound<'py, PyAny>> {
        let zone = match t.offset {
            None => None,
            Some(minutes) => Some(match self.made.get(&minutes) {
                Some(zone) => zone.clone(),
                None => {
                    let zone = if minutes == 0 {
                        PyTzInfo::utc(self.py)?.to_owned()
                    } else {
                        PyTzInfo::fixed_offset(
                            self.py,
                            PyDelta::new(self.py, 0, minutes * 60, 0, true)?,
                        )?
                    };
                    self.made.insert(minutes, zone.clone());
                    zone
                }
            }),
        };
        Ok(PyDateTime::new(
            self.py,
            t.year,
            t.month,
            t.day,
            t.hour,
            t.minute,
            t.second,
            t.micro,
            zone.as_ref(),
        )?
        .into_any())
    }
}

fn checked<'py>(
    py: Python<'py>,
    names: &[Py<PyString>],
    found: Result<schema::Values, schema::Refusal>,
) -> PyResult<Checked<'py>> {
    checked_in(&mut Zones::new(py), names, found)
}

fn checked_in<'py>(
    zones: &mut Zones<'py>,
    names: &[Py<PyString>],
    found: Result<schema::Values, schema::Refusal>,
) -> PyResult<Checked<'py>> {
    let py = zones.py;
    match found {
        Err(refusal) => Ok((Some(refusal.code), Some(refusal.detail), None, None)),
        Ok(values) => {
            let dict = PyDict::new(py);
            let mut redacted = None;
            for (name, value) in names.iter().zip(values) {
                let Some(value) = value else { continue };
                let value = match value {
                    schema::Prop::Str(s) => s.into_pyobject(py)?.into_any(),
                    schema::Prop::Redacted(s) => {
                        redacted
                            .get_or_insert_with(Vec::new)
                            .push(name.clone_ref(py));
                        s.into_pyobject(py)?.into_any()
                    }
                    schema::Prop::Int(i) => i.into_pyobject(py)?.into_any(),
                    schema::Prop::Float(f) => f.into_pyobject(py)?.into_any(),
                    schema::Prop::Bool(b) => b.into_pyobject(py)?.to_owned().into_any(),
                    schema::Prop::Time(t) => zones.datetime(&t)?,
                };
                dict.set_item(name.bind(py), value)?;
            }
            Ok((None, None, Some(dict), redacted))
        }
    }
}

fn str_obj(py: Python<'_>, s: Option<String>) -> PyResult<Option<Py<PyAny>>> {
    s.map(|s| Ok(s.into_pyobject(py)?.into_any().unbind()))
        .transpose()
}

fn event_of(zones: &mut Zones<'_>, raw: &[u8], envelope: decode::Envelope) -> PyResult<Event> {
    let py = zones.py;
    let properties = match envelope.properties {
        Some((start, end)) => PyBytes::new(py, &raw[start..end]),
        None => PyBytes::new(py, b"{}"),
    };
    let subject = envelope
        .subject
        .map(|s| {
            Py::new(
                py,
                Subject {
                    subject_id: s.subject_id,
                    identities: s.identities,
                },
            )
        })
        .transpose()?;
    Ok(Event {
        event_id: str_obj(py, envelope.event_id)?,
        event_type: str_obj(py, envelope.event_type)?,
        occurred_at: envelope
            .occurred_at
            .map(|t| zones.datetime(&t).map(Bound::unbind))
            .transpose()?,
        subject,
        consent_token: str_obj(py, envelope.consent_token)?,
        gpc: envelope.gpc,
        properties: properties.unbind(),
    })
}

type Item<'py> = (
    Option<String>,
    Option<String>,
    Option<Event>,
    Option<Checked<'py>>,
    (usize, usize),
);

fn item<'py>(
    zones: &mut Zones<'py>,
    raw: &[u8],
    names: Option<&[Py<PyString>]>,
    decoded: decode::Decoded,
) -> PyResult<Item<'py>> {
    let event = decoded
        .envelope
        .map(|e| event_of(zones, raw, e))
        .transpose()?;
    let checked = match (decoded.checked, names) {
        (Some(found), Some(names)) => Some(checked_in(zones, names, found)?),
        _ => None,
    };
    Ok((
        decoded.event_id,
        decoded.invalid,
        event,
        checked,
        decoded.span,
    ))
}

/// The batch decoded: (gpc, one item per event), each item (event_id, invalid_event detail,
/// event, (code, detail, values, redacted) of its properties against `schemas[event_type]`, span).
/// BatchRefused when the batch is refused whole.
#[pyfunction]
pub fn decode_batch<'py>(
    py: Python<'py>,
    body: Data,
    latest: i64,
    schemas: HashMap<String, Bound<'py, Properties>>,
) -> PyResult<(bool, Vec<Item<'py>>)> {
    let by_type: HashMap<&str, &schema::Schema> = schemas
        .iter()
        .map(|(k, v)| (k.as_str(), &*v.get().inner))
        .collect();
    let batch = py
        .detach(|| decode::decode_batch(&body, latest, |t| by_type.get(t).copied()))
        .map_err(refused)?;
    let mut zones = Zones::new(py);
    let items = batch
        .events
        .into_iter()
        .map(|decoded| {
            let names = decoded
                .envelope
                .as_ref()
                .and_then(|e| e.event_type.as_deref())
                .and_then(|t| schemas.get(t))
                .map(|s| s.get().names.as_slice());
            item(&mut zones, &body, names, decoded)
        })
        .collect::<PyResult<Vec<_>>>()?;
    Ok((batch.gpc, items))
}

/// One event sent alone: (event_id, invalid_event detail, event).
#[pyfunction]
pub fn decode_event(
    py: Python<'_>,
    raw: Data,
    latest: i64,
) -> PyResult<(Option<String>, Option<String>, Option<Event>)> {
    let decoded = decode::decode_one(&raw, latest);
    let (event_id, invalid, event, _, _) = item(&mut Zones::new(py), &raw, None, decoded)?;
    Ok((event_id, invalid, event))
}

type SubjectRef = (Option<String>, Option<Vec<(String, String)>>);

/// Each event's subject as (subject_id, identities), or None where it cannot be read;
/// BatchRefused as decode_batch refuses a batch before reading its events.
#[pyfunction]
pub fn decode_subjects(py: Python<'_>, body: Data) -> PyResult<Vec<Option<SubjectRef>>> {
    let found = py.detach(|| decode::subjects(&body)).map_err(refused)?;
    Ok(found
        .into_iter()
        .map(|s| s.map(|s| (s.subject_id, s.identities)))
        .collect())
}

/// The event_id of an event that does not decode, for its result (at most 128 characters).
#[pyfunction]
pub fn event_id_of(raw: Data) -> Option<String> {
    let text = std::str::from_utf8(&raw).ok()?;
    decode::event_id_of(&decode::json::parse(text).result.ok()?)
}

/// The JSON rules of every route over `body`: (code, detail) of the first it breaks, or None.
#[pyfunction]
pub fn json_problem(py: Python<'_>, body: Data) -> Option<(&'static str, String)> {
    py.detach(|| decode::json::problem_of(&body))
        .map(|p| (p.code, p.detail))
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("BatchRefused", m.py().get_type::<BatchRefused>())?;
    m.add("MAX_EVENTS", decode::MAX_EVENTS)?;
    m.add("AHEAD_MINUTES", decode::AHEAD_MINUTES)?;
    m.add("MAX_JSON_DEPTH", decode::json::MAX_DEPTH)?;
    m.add_class::<Properties>()?;
    m.add_class::<Event>()?;
    m.add_class::<Subject>()?;
    m.add_function(wrap_pyfunction!(decode_batch, m)?)?;
    m.add_function(wrap_pyfunction!(decode_event, m)?)?;
    m.add_function(wrap_pyfunction!(decode_subjects, m)?)?;
    m.add_function(wrap_pyfunction!(json_problem, m)?)?;
    m.add_function(wrap_pyfunction!(event_id_of, m)?)?;
    Ok(())
}
