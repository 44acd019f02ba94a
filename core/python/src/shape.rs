//! What the rows of accepted events are written from (`consentry_core::shape`): Python values
//! as stored JSON holds them, aware times, the `received_at` column and the subject key. The
//! rows themselves are written by `shape_batch` (batch.rs).

use consentry_core::json::Time;
use consentry_core::shape::{self, Value};
use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{
    PyBool, PyDateAccess, PyDateTime, PyDelta, PyDeltaAccess, PyFloat, PyInt, PyString,
    PyTimeAccess, PyTuple, PyTzInfo, PyTzInfoAccess,
};

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

/// The rows of `shape_batch` with `received_at` in its place (after occurred_at).
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
                return Err(PyValueError::new_err("a row of shape_batch has 11 columns"));
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
