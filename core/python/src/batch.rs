//! A batch's accepted events shaped in one call (`consentry_core::batch`): Python hands each
//! (subject, schema) decision's field plan, the subject's sealer and the events it decided;
//! the core narrows each plan to the fields each event has, treats the values (keyed
//! pseudonyms, redaction; tokens come worked out), writes the stored JSON and seals the
//! personal values, the GIL released for all of that, and returns the rows to insert.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use consentry_core::batch::{self, Planned, Shape, Treat, Treated};
use consentry_core::shape::{self as core_shape, Value};
use consentry_core::{json, seal};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDateTime, PyDict, PyInt, PyList, PyString, PyTuple};

use crate::decode::Event;
use crate::shape::{time, value};
use crate::{seal_error, Pseudonymiser, Sealer};

type Shaped = (Arc<Shape>, Option<Py<PyString>>);

/// How many sets of fields a plan keeps the shapes of: past it they are worked out again, so
/// a sender varying its optional fields cannot grow a plan without bound.
const SHAPES_MAX: usize = 1_024;

/// The fields of one schema that one decision keeps (its purposes, and for each field its
/// treatment, whether it is sealed and the purposes it is narrowed to), and the columns every
/// event of the decision shares.
#[pyclass(frozen, module = "consentry._core")]
pub(crate) struct FieldPlan {
    inner: batch::FieldPlan,
    /// Each planned field's name as a Python string, to look values up.
    keys: Vec<Py<PyString>>,
    purposes_json: Py<PyAny>,
    purpose_bits: Py<PyAny>,
    /// The shape of each set of fields met lately (at most SHAPES_MAX).
    shapes: Mutex<HashMap<Vec<usize>, Shaped>>,
}

#[pymethods]
impl FieldPlan {
    /// `fields`: (name, treatment, sealed, narrowed purposes or None) of each kept field.
    #[new]
    fn new(
        py: Python<'_>,
        fields: Vec<(String, String, bool, Option<Vec<String>>)>,
        purposes_json: Py<PyAny>,
        purpose_bits: Py<PyAny>,
    ) -> PyResult<Self> {
        let planned = fields
            .into_iter()
            .map(|(name, treat, sealed, restricted)| {
                let treat = Treat::from_name(&treat).ok_or_else(|| {
                    PyValueError::new_err(format!("no treatment {treat:?} keeps a field"))
                })?;
                Ok(Planned {
                    name,
                    treat,
                    sealed,
                    restricted,
                })
            })
            .collect::<PyResult<Vec<_>>>()?;
        let inner = batch::FieldPlan::new(planned)
            .ok_or_else(|| PyValueError::new_err("a field plan names a field twice"))?;
        let keys = inner
            .fields()
            .iter()
            .map(|f| PyString::intern(py, &f.name).unbind())
            .collect();
        Ok(Self {
            inner,
            keys,
            purposes_json,
            purpose_bits,
            shapes: Mutex::new(HashMap::new()),
        })
    }

    /// How many sets of fields' shapes the plan keeps now.
    #[getter]
    fn cached_shapes(&self) -> usize {
        self.shapes.lock().unwrap_or_else(|e| e.into_inner()).len()
    }
}

impl FieldPlan {
    fn shape(&self, py: Python<'_>, present: Vec<usize>) -> Shaped {
        let mut shapes = self.shapes.lock().unwrap_or_else(|e| e.into_inner());
        if shapes.len() >= SHAPES_MAX && !shapes.contains_key(&present) {
            shapes.clear();
        }
        let (shape, narrowed) = shapes.entry(present).or_insert_with_key(|present| {
            let shape = self.inner.shape(present);
            let narrowed = shape
                .field_purposes
                .as_deref()
                .map(|j| PyString::new(py, j).unbind());
            (Arc::new(shape), narrowed)
        });
        (
            Arc::clone(shape),
            narrowed.as_ref().map(|n| n.clone_ref(py)),
        )
    }
}

/// One decision: its field plan, the subject's sealer and id, the schema's event type and
/// version.
type Group<'py> = (
    Bound<'py, FieldPlan>,
    Bound<'py, Sealer>,
    Bound<'py, PyString>,
    Bound<'py, PyAny>,
    Bound<'py, PyAny>,
);

/// A value as the row is written from it: as sent, or a text to treat.
enum Slot<'a> {
    Sent(Value<'a>),
    Text(&'a str),
}

/// One event to shape, as read with the GIL held.
struct Pending<'py> {
    group: usize,
    shape: Shaped,
    event: Bound<'py, Event>,
    at: String,
}

/// The rows of the events at `order` (positions in the batch), in that order: each event's
/// decision is `groups[group_of[position]]`, its envelope `events[position]`, its properties
/// `values[position]` (a dict) and the tokens of its tokenised fields `tokens[position]`.
/// Each row is storage.ingest.EVENT_COLUMNS but received_at: event_id, event_type,
/// schema_version, occurred_at (UTC text), subject_id, purposes, properties (clear JSON),
/// sealed (or None), field_purposes, purpose_bits, subject_key.
#[pyfunction]
#[allow(clippy::too_many_arguments)]
pub(crate) fn shape_batch<'py>(
    py: Python<'py>,
    groups: Vec<Option<Group<'py>>>,
    order: Vec<usize>,
    group_of: Bound<'py, PyList>,
    events: Bound<'py, PyList>,
    values: Bound<'py, PyList>,
    tokens: HashMap<usize, Bound<'py, PyDict>>,
    pseudonyms: Bound<'py, Pseudonymiser>,
) -> PyResult<Vec<Bound<'py, PyTuple>>> {
    let keys: Vec<i64> = groups
        .iter()
        .map(|g| match g {
            None => Ok(0),
            Some(g) => core_shape::subject_key(g.2.to_str()?)
                .ok_or_else(|| PyValueError::new_err("a subject id without its random part")),
        })
        .collect::<PyResult<_>>()?;
    // The values each row is written from, in its row plan's order, held while they are read.
    let mut held: Vec<Bound<'py, PyAny>> = Vec::new();
    let mut pending: Vec<Pending<'py>> = Vec::with_capacity(order.len());
    let mut present = Vec::new();
    let mut found: Vec<Option<Bound<'py, PyAny>>> = Vec::new();
    for &position in &order {
        let group: usize = group_of.get_item(position)?.extract()?;
        let plan = groups
            .get(group)
            .and_then(Option::as_ref)
            .ok_or_else(|| PyValueError::new_err("an event of no decision of the batch"))?
            .0
            .get();
        let event = events.get_item(position)?.cast_into::<Event>()?;
        let sent = values.get_item(position)?;
        let sent = sent.cast::<PyDict>()?;
        let own_tokens = tokens.get(&position);
        present.clear();
        found.clear();
        for (n, (field, key)) in plan.inner.fields().iter().zip(&plan.keys).enumerate() {
            let Some(v) = sent.get_item(key.bind(py))? else {
                found.push(None);
                continue;
            };
            present.push(n);
            found.push(Some(match field.treat {
                Treat::Keep | Treat::Redact => v,
                Treat::Pseudonymise => {
                    // The pseudonym of a value's text, as Python's str() spells it.
                    if v.is_instance_of::<PyString>() {
                        v
                    } else {
                        v.str()?.into_any()
                    }
                }
                Treat::Token => own_tokens
                    .and_then(|t| t.get_item(key.bind(py)).transpose())
                    .transpose()?
                    .ok_or_else(|| {
                        PyValueError::new_err(format!("no token for the field {}", field.name))
                    })?,
            }));
        }
        let shape = plan.shape(py, present.clone());
        for &n in &shape.0.planned {
            held.push(found[n].take().expect("a present field has its value"));
        }
        let at = {
            let e = event.get();
            let occurred = e
                .occurred_at
                .as_ref()
                .ok_or_else(|| PyValueError::new_err("an event without occurred_at"))?
                .bind(py)
                .cast::<PyDateTime>()?;
            json::utc_text(&time(occurred)?)
                .ok_or_else(|| PyValueError::new_err("occurred_at falls outside years 1-9999"))?
        };
        pending.push(Pending {
            group,
            shape,
            event,
            at,
        });
    }
    // Read every value and id as the core takes them.
    let mut slots: Vec<Slot<'_>> = Vec::with_capacity(held.len());
    let mut next = 0;
    let mut ids: Vec<&str> = Vec::with_capacity(pending.len());
    for p in &pending {
        let plan = group(&groups, p.group).0.get();
        for &n in &p.shape.0.planned {
            let field = &plan.inner.fields()[n];
            let v = &held[next];
            next += 1;
            slots.push(match field.treat {
                Treat::Keep => Slot::Sent(value(v, &field.name)?),
                _ => Slot::Text(v.cast::<PyString>()?.to_str()?),
            });
        }
        let id = p
            .event
            .get()
            .event_id
            .as_ref()
            .ok_or_else(|| PyValueError::new_err("an event without event_id"))?
            .bind(py)
            .cast::<PyString>()?
            .to_str()?;
        ids.push(id);
    }
    let plans: Vec<Option<&batch::FieldPlan>> = groups
        .iter()
        .map(|g| g.as_ref().map(|g| &g.0.get().inner))
        .collect();
    let sealers: Vec<Option<&seal::Sealer>> = groups
        .iter()
        .map(|g| g.as_ref().map(|g| &g.1.get().inner))
        .collect();
    let shapes: Vec<(&Shape, usize)> = pending.iter().map(|p| (&*p.shape.0, p.group)).collect();
    let pseudonymiser = &pseudonyms.get().inner;
    let written = py
        .detach(|| write(&plans, &sealers, &shapes, &slots, &ids, pseudonymiser))
        .map_err(|e| match e {
            Failed::Shape(e) => PyValueError::new_err(e.to_string()),
            Failed::Seal(e) => seal_error(e),
        })?;
    let none = py.None();
    pending
        .iter()
        .zip(written)
        .map(|(p, (clear, blob))| {
            let (plan, _, subject_id, event_type, version) = group(&groups, p.group);
            let plan = plan.get();
            let e = p.event.get();
            let blob = match blob {
                None => none.clone_ref(py).into_bound(py),
                Some(b) => PyBytes::new(py, &b).into_any(),
            };
            let narrowed = match &p.shape.1 {
                None => none.clone_ref(py).into_bound(py),
                Some(n) => n.bind(py).clone().into_any(),
            };
            PyTuple::new(
                py,
                [
                    e.event_id
                        .as_ref()
                        .map_or_else(|| none.clone_ref(py), |i| i.clone_ref(py))
                        .into_bound(py),
                    event_type.clone(),
                    version.clone(),
                    PyString::new(py, &p.at).into_any(),
                    subject_id.clone().into_any(),
                    plan.purposes_json.bind(py).clone(),
                    PyString::new(
                        py,
                        std::str::from_utf8(&clear)
                            .map_err(|e| PyValueError::new_err(e.to_string()))?,
                    )
                    .into_any(),
                    blob,
                    narrowed,
                    plan.purpose_bits.bind(py).clone(),
                    PyInt::new(py, keys[p.group]).into_any(),
                ],
            )
        })
        .collect()
}

/// A decision an event was checked to have when it was read.
fn group<'a, 'py>(groups: &'a [Option<Group<'py>>], n: usize) -> &'a Group<'py> {
    groups[n]
        .as_ref()
        .expect("each event read has its decision")
}

/// An event's clear JSON, and its sealed blob when it has personal values to seal.
type Written = (Vec<u8>, Option<Vec<u8>>);

enum Failed {
    Shape(core_shape::ShapeError),
    Seal(seal::SealError),
}

/// Each event's clear JSON and sealed blob (None when it has nothing to seal), the values
/// treated, the batch's personal values sealed in one pass.
fn write(
    plans: &[Option<&batch::FieldPlan>],
    sealers: &[Option<&seal::Sealer>],
    shapes: &[(&Shape, usize)],
    slots: &[Slot<'_>],
    ids: &[&str],
    pseudonyms: &consentry_core::pseudonym::Pseudonymiser,
) -> Result<Vec<Written>, Failed> {
    let mut treated = Treated::new(pseudonyms);
    let mut next = 0;
    let mut encoded = Vec::with_capacity(shapes.len());
    for &(shape, group) in shapes {
        let fields = plans[group]
            .expect("an event's decision is planned")
            .fields();
        let start = next;
        next += shape.planned.len();
        let written = shape.row.encode(|n, out| match &slots[start + n] {
            Slot::Sent(v) => out.put(v),
            Slot::Text(text) => {
                let field = &fields[shape.planned[n]];
                let done = treated.get(field.treat, &field.name, text);
                out.put(&Value::Str(done.unwrap_or(*text)))
            }
        });
        encoded.push(written.map_err(Failed::Shape)?);
    }
    let jobs: Vec<(&seal::Sealer, &[u8], &str)> = encoded
        .iter()
        .zip(shapes)
        .zip(ids)
        .filter_map(|(((_, personal), (_, group)), id)| {
            personal.as_deref().map(|p| {
                let sealer = sealers[*group].expect("an event's decision has its sealer");
                (sealer, p, *id)
            })
        })
        .collect();
    let mut sealed = seal::seal_events(&jobs).map_err(Failed::Seal)?.into_iter();
    Ok(encoded
        .into_iter()
        .map(|(clear, personal)| {
            let blob = personal.map(|_| sealed.next().expect("one blob per sealed event"));
            (clear, blob)
        })
        .collect())
}
