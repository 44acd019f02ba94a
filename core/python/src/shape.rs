//! Accepted events' rows (`consentry_core::shape`): the values read from each event's
//! Python dicts under its plan, written as stored JSON, the personal ones sealed under the
//! subject's key with the GIL released, and each row returned as the tuple the insert takes.

use consentry_core::json::{self, Time};
use consentry_core::seal;
use consentry_core::shape::{self, Kept, ShapeError, Source, Value};
use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{
    PyBool, PyBytes, PyDateAccess, PyDateTime, PyDelta, PyDeltaAccess, PyDict, PyFloat, PyInt,
    PyString, PyTimeAccess, PyTuple, PyTzInfo, PyTzInfoAccess,
};

use crate::{seal_error, Sealer};

/// One shape of event's row plan: the kept fields (from the values sent or the treated ones,
/// clear or sealed), and the columns every event of that shape shares.
#[pyclass(frozen, module = "consentry._core")]
pub(crate) struct RowPlan {
    inner: shape::RowPlan,
    /// Each field's name as a Python string, in `inner.fields()` order, to look values up.
    keys: Vec<Py<PyString>>,
    purposes_json: Py<PyAny>,
    field_purposes_json: Py<PyAny>,
    purpose_bits: Py<PyAny>,
}

#[pymethods]
impl RowPlan {
    /// `keep` and `treat`: (field, sealed) pairs, the values sent and the treated values.
    #[new]
    fn new(
        py: Python<'_>,
        keep: Vec<(String, bool)>,
        treat: Vec<(String, bool)>,
        purposes_json: Py<PyAny>,
        field_purposes_json: Py<PyAny>,
        purpose_bits: Py<PyAny>,
    ) -> PyResult<Self> {
        let kept = keep
            .into_iter()
            .map(|(name, sealed)| (name, Source::Sent, sealed))
            .chain(
                treat
                    .into_iter()
                    .map(|(name, sealed)| (name, Source::Treated, sealed)),
            )
            .map(|(name, source, sealed)| Kept {
                name,
                source,
                sealed,
            })
            .collect();
        let inner = shape::RowPlan::new(kept)
            .ok_or_else(|| PyValueError::new_err("a row plan names a field twice"))?;
        let keys = inner
            .fields()
            .iter()
            .map(|k| PyString::intern(py, &k.name).unbind())
            .collect();
        Ok(Self {
            inner,
            keys,
            purposes_json,
            field_purposes_json,
            purpose_bits,
        })
    }
}

fn shape_error(e: ShapeError) -> PyErr {
    PyValueError::new_err(e.to_string())
}

/// A Python value as stored JSON holds it.
pub(crate) fn value<'a>(v: &'a Bound<'_, PyAny>, field: &str) -> PyResult<Value<'a>> {
    if v.is_none() {
        Ok(Value::Null)
    } else if let Ok(s) = v.cast::<PyString>() {
        Ok(Value::Str(s.to_str()?))
    } else if let Ok(b) = v.cast::<PyBool>() {
        Ok(Value::Bool(b.is_true()))
    } else if let Ok(i) = v.cast::<PyInt>() {
        Ok(Value::Int(i.extract().map_err(|_| {
            PyValueError::new_err(format!("{field}: an integer beyond signed 64 bits"))
        })?))
    } else if let Ok(f) = v.cast::<PyFloat>() {
        Ok(Value::Float(f.value()))
    } else if let Ok(t) = v.cast::<PyDateTime>() {
        Ok(Value::Time(time(t)?))
    } else {
        Err(PyTypeError::new_err(format!(
            "{field}: a {} is not a value an event stores",
            v.get_type().name()?
        )))
    }
}

/// An aware datetime's calendar fields and offset.
pub(crate) fn time(t: &Bound<'_, PyDateTime>) -> PyResult<Time> {
    let tz = t
        .get_tzinfo()
        .ok_or_else(|| PyValueError::new_err("a time without a time zone"))?;
    let offset_seconds = if tz.is(PyTzInfo::utc(t.py())?) {
        0
    } else {
        let delta = tz.call_method1("utcoffset", (t,))?;
        let delta = delta.cast::<PyDelta>()?;
        delta.get_days() * 86_400 + delta.get_seconds()
    };
    Ok(Time {
        year: t.get_year(),
        month: t.get_month(),
        day: t.get_day(),
        hour: t.get_hour(),
        minute: t.get_minute(),
        second: t.get_second(),
        microsecond: t.get_microsecond(),
        offset_seconds,
    })
}

/// One accepted event: its plan, values sent, treated values, subject's sealer, id, type,
/// schema version, occurred_at and subject id.
type Item<'py> = (
    Bound<'py, RowPlan>,
    Bound<'py, PyDict>,
    Bound<'py, PyDict>,
    Bound<'py, Sealer>,
    Bound<'py, PyString>,
    Bound<'py, PyAny>,
    Bound<'py, PyAny>,
    Bound<'py, PyDateTime>,
    Bound<'py, PyString>,
);

/// Each event's row in `storage.ingest.EVENT_COLUMNS` order but for `received_at` (added by
/// `received`): event_id, event_type, schema_version, occurred_at (UTC text), subject_id,
/// purposes, properties (clear JSON), sealed (or None), field_purposes, purpose_bits,
/// subject_key. The personal values of the batch are sealed in one call, the GIL released.
#[pyfunction]
pub(crate) fn shape_events<'py>(
    py: Python<'py>,
    items: Vec<Item<'py>>,
) -> PyResult<Vec<Bound<'py, PyTuple>>> {
    let mut encoded = Vec::with_capacity(items.len());
    for (plan, sent, treated, _, _, _, _, occurred, subject_id) in &items {
        let plan = plan.get();
        let fields = plan.inner.fields();
        let (clear, personal) = plan.inner.encode(|n, out| -> PyResult<()> {
            let from = match fields[n].source {
                Source::Sent => sent,
                Source::Treated => treated,
            };
            let found = from.get_item(plan.keys[n].bind(py))?.ok_or_else(|| {
                PyValueError::new_err(format!("no value for the kept field {}", out.field()))
            })?;
            let found = value(&found, out.field())?;
            out.put(&found).map_err(shape_error)
        })?;
        let at = json::utc_text(&time(occurred)?)
            .ok_or_else(|| PyValueError::new_err("occurred_at falls outside years 1-9999"))?;
        let subject = subject_id.to_str()?;
        let key = shape::subject_key(subject)
            .ok_or_else(|| PyValueError::new_err("a subject id without its random part"))?;
        encoded.push((clear, personal, at, key));
    }
    let ids: Vec<&str> = items
        .iter()
        .map(|item| item.4.to_str())
        .collect::<PyResult<_>>()?;
    let jobs: Vec<(&seal::Sealer, &[u8], &str)> = items
        .iter()
        .zip(&encoded)
        .zip(&ids)
        .filter_map(|((item, (_, personal, _, _)), id)| {
            personal.as_deref().map(|p| (&item.3.get().inner, p, *id))
        })
        .collect();
    let mut sealed = py
        .detach(|| seal::seal_events(&jobs))
        .map_err(seal_error)?
        .into_iter();
    let none = py.None();
    items
        .iter()
        .zip(encoded)
        .map(|(item, (clear, personal, at, key))| {
            let (plan, _, _, _, event_id, event_type, version, _, subject_id) = item;
            let plan = plan.get();
            let blob = match personal {
                None => none.clone_ref(py).into_bound(py),
                Some(_) => {
                    PyBytes::new(py, &sealed.next().expect("one blob per sealed event")).into_any()
                }
            };
            PyTuple::new(
                py,
                [
                    event_id.clone().into_any(),
                    event_type.clone(),
                    version.clone(),
                    PyString::new(py, &at).into_any(),
                    subject_id.clone().into_any(),
                    plan.purposes_json.bind(py).clone(),
                    PyString::new(
                        py,
                        &String::from_utf8(clear)
                            .map_err(|e| PyValueError::new_err(e.to_string()))?,
                    )
                    .into_any(),
                    blob,
                    plan.field_purposes_json.bind(py).clone(),
                    plan.purpose_bits.bind(py).clone(),
                    key.into_pyobject(py)?.into_any(),
                ],
            )
        })
        .collect()
}

/// The rows of `shape_events` with `received_at` in its place (after occurred_at).
#[pyfunction]
pub(crate) fn received<'py>(
    py: Python<'py>,
    rows: Vec<Bound<'py, PyTuple>>,
    received_at: Bound<'py, PyString>,
) -> PyResult<Vec<Bound<'py, PyTuple>>> {
    rows.iter()
        .map(|row| {
            let mut items: Vec<Bound<'py, PyAny>> = row.iter().collect();
            if items.len() != 11 {
                return Err(PyValueError::new_err(
                    "a row of shape_events has 11 columns",
                ));
            }
            items.insert(4, received_at.clone().into_any());
            PyTuple::new(py, items)
        })
        .collect()
}

/// `events.subject_key` of a subject id: 60 bits of its random part.
#[pyfunction]
pub(crate) fn subject_key(subject_id: &str) -> PyResult<i64> {
    shape::subject_key(subject_id)
        .ok_or_else(|| PyValueError::new_err("a subject id without its random part"))
}
