//! `consentry._core`: the PyO3 binding of consentry-core. Thin by design: it converts Python
//! values, releases the GIL (`Python::detach`) for the work of a batch, and calls the core.
//! What each function means is documented in the core and in `src/consentry/_core.pyi`.

mod batch;
mod decode;
mod shape;

use consentry_core::{pseudonym, seal};
use pyo3::buffer::PyBuffer;
use pyo3::create_exception;
use pyo3::exceptions::{PyOSError, PyValueError};
use pyo3::prelude::*;
use pyo3::pybacked::{PyBackedBytes, PyBackedStr};
use pyo3::types::PyBytes;
use std::ops::Deref;

mod redact;

create_exception!(
    _core,
    OpenError,
    PyValueError,
    "A sealed value that does not open: an unknown layout, an altered blob or associated \
     data, or another key."
);

/// Bytes from Python: `bytes` and `bytearray` borrowed, any other buffer (a `memoryview` of a
/// database column) copied.
pub(crate) enum Data {
    Backed(PyBackedBytes),
    Copied(Vec<u8>),
}

impl Deref for Data {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        match self {
            Self::Backed(b) => b,
            Self::Copied(v) => v,
        }
    }
}

impl<'a, 'py> FromPyObject<'a, 'py> for Data {
    type Error = PyErr;

    fn extract(obj: Borrowed<'a, 'py, PyAny>) -> PyResult<Self> {
        if let Ok(backed) = obj.extract::<PyBackedBytes>() {
            return Ok(Self::Backed(backed));
        }
        let buffer = PyBuffer::<u8>::get(&obj)?;
        Ok(Self::Copied(buffer.to_vec(obj.py())?))
    }
}

pub(crate) fn seal_error(e: seal::SealError) -> PyErr {
    match e {
        seal::SealError::Random(e) => PyOSError::new_err(e.to_string()),
        seal::SealError::TooLong => PyValueError::new_err(e.to_string()),
    }
}

fn same_length(what: &str, a: usize, b: usize) -> PyResult<()> {
    if a == b {
        Ok(())
    } else {
        Err(PyValueError::new_err(format!(
            "{what}: {a} and {b} items, not one for one"
        )))
    }
}

fn bytes_list<'py>(py: Python<'py>, blobs: Vec<Vec<u8>>) -> Vec<Bound<'py, PyBytes>> {
    blobs.iter().map(|b| PyBytes::new(py, b)).collect()
}

/// AES-256-GCM under one key, in Consentry's stored format (0x01 || nonce || ct || tag).
#[pyclass(frozen, module = "consentry._core")]
pub(crate) struct Sealer {
    pub(crate) inner: seal::Sealer,
}

#[pymethods]
impl Sealer {
    #[new]
    fn new(key: Data) -> PyResult<Self> {
        let inner = seal::Sealer::new(&key).map_err(|e| PyValueError::new_err(e.to_string()))?;
        Ok(Self { inner })
    }

    /// `plaintext` sealed under a fresh nonce from the OS random source, or under `nonce`, one
    /// of `nonces()` never used before.
    #[pyo3(signature = (plaintext, aad, nonce=None))]
    fn seal<'py>(
        &self,
        py: Python<'py>,
        plaintext: Data,
        aad: Data,
        nonce: Option<Data>,
    ) -> PyResult<Bound<'py, PyBytes>> {
        let blob = match nonce {
            None => self.inner.seal(&plaintext, &aad),
            Some(nonce) => {
                let nonce: &seal::Nonce = nonce[..].try_into().map_err(|_| {
                    PyValueError::new_err(format!(
                        "an AES-GCM nonce here is {} bytes",
                        seal::NONCE_LEN
                    ))
                })?;
                self.inner.seal_with_nonce(&plaintext, &aad, nonce)
            }
        }
        .map_err(seal_error)?;
        Ok(PyBytes::new(py, &blob))
    }

    /// The plaintext of `blob`; OpenError when it does not open under this key and `aad`.
    fn open<'py>(&self, py: Python<'py>, blob: Data, aad: Data) -> PyResult<Bound<'py, PyBytes>> {
        let plaintext = self
            .inner
            .open(&blob, &aad)
            .map_err(|e| OpenError::new_err(e.to_string()))?;
        Ok(PyBytes::new(py, &plaintext))
    }
}

/// Each plaintext sealed under its sealer with its associated data, in order.
#[pyfunction]
fn seal_batch<'py>(
    py: Python<'py>,
    sealers: Vec<Bound<'py, Sealer>>,
    plaintexts: Vec<Data>,
    aads: Vec<Data>,
) -> PyResult<Vec<Bound<'py, PyBytes>>> {
    same_length("sealers and plaintexts", sealers.len(), plaintexts.len())?;
    same_length("sealers and aads", sealers.len(), aads.len())?;
    let jobs: Vec<(&seal::Sealer, &[u8], &[u8])> = sealers
        .iter()
        .zip(&plaintexts)
        .zip(&aads)
        .map(|((s, p), a)| (&s.get().inner, &p[..], &a[..]))
        .collect();
    let sealed = py.detach(|| seal::seal_batch(&jobs)).map_err(seal_error)?;
    Ok(bytes_list(py, sealed))
}

/// Each event's personal values sealed under its subject's sealer and the event's
/// associated data, in order.
#[pyfunction]
fn seal_events<'py>(
    py: Python<'py>,
    sealers: Vec<Bound<'py, Sealer>>,
    plaintexts: Vec<Data>,
    event_ids: Vec<PyBackedStr>,
) -> PyResult<Vec<Bound<'py, PyBytes>>> {
    same_length("sealers and plaintexts", sealers.len(), plaintexts.len())?;
    same_length("sealers and event ids", sealers.len(), event_ids.len())?;
    let jobs: Vec<(&seal::Sealer, &[u8], &str)> = sealers
        .iter()
        .zip(&plaintexts)
        .zip(&event_ids)
        .map(|((s, p), e)| (&s.get().inner, &p[..], &e[..]))
        .collect();
    let sealed = py.detach(|| seal::seal_events(&jobs)).map_err(seal_error)?;
    Ok(bytes_list(py, sealed))
}

/// `count` nonces from one read of the OS random source.
#[pyfunction]
fn nonces<'py>(py: Python<'py>, count: usize) -> PyResult<Vec<Bound<'py, PyBytes>>> {
    let drawn = seal::nonces(count).map_err(|e| PyOSError::new_err(e.to_string()))?;
    Ok(drawn.iter().map(|n| PyBytes::new(py, n)).collect())
}

/// The associated data an event's sealed values are bound to.
#[pyfunction]
fn event_aad<'py>(py: Python<'py>, event_id: &str) -> Bound<'py, PyBytes> {
    PyBytes::new(py, &seal::event_aad(event_id))
}

/// Keyed HMAC-SHA256 pseudonyms under one key, lowercase hex.
#[pyclass(frozen, module = "consentry._core")]
pub(crate) struct Pseudonymiser {
    pub(crate) inner: pseudonym::Pseudonymiser,
}

#[pymethods]
impl Pseudonymiser {
    #[new]
    fn new(key: Data) -> Self {
        Self {
            inner: pseudonym::Pseudonymiser::new(&key),
        }
    }

    /// Under the key of one downstream system's pseudonyms, derived from `secret`.
    #[staticmethod]
    fn for_system(secret: Data, system_id: &str) -> Self {
        Self {
            inner: pseudonym::Pseudonymiser::for_system(&secret, system_id),
        }
    }

    /// Each field's value's pseudonym, in order.
    fn fields(
        &self,
        py: Python<'_>,
        fields: Vec<PyBackedStr>,
        values: Vec<PyBackedStr>,
    ) -> PyResult<Vec<String>> {
        same_length("fields and values", fields.len(), values.len())?;
        Ok(py.detach(|| {
            self.inner
                .fields(fields.iter().zip(&values).map(|(f, v)| (&f[..], &v[..])))
        }))
    }

    /// Each subject's pseudonym, in order.
    fn subjects(&self, py: Python<'_>, subject_ids: Vec<PyBackedStr>) -> Vec<String> {
        py.detach(|| self.inner.subjects(subject_ids.iter().map(|s| &s[..])))
    }

    /// One subject's pseudonym.
    fn subject(&self, subject_id: &str) -> String {
        self.inner.subject(subject_id)
    }
}

#[pymodule]
fn _core(m: &Bound<'_, PyModule>) -> PyResult<()> {
    decode::register(m)?;
    m.add_class::<Sealer>()?;
    m.add_class::<Pseudonymiser>()?;
    m.add_class::<batch::FieldPlan>()?;
    m.add_function(wrap_pyfunction!(batch::shape_batch, m)?)?;
    m.add_function(wrap_pyfunction!(shape::received, m)?)?;
    m.add_function(wrap_pyfunction!(shape::subject_key, m)?)?;
    m.add("OpenError", m.py().get_type::<OpenError>())?;
    m.add_function(wrap_pyfunction!(seal_batch, m)?)?;
    m.add_function(wrap_pyfunction!(seal_events, m)?)?;
    m.add_function(wrap_pyfunction!(event_aad, m)?)?;
    m.add_function(wrap_pyfunction!(nonces, m)?)?;
    m.add(
        "EVENT_AAD_PREFIX",
        PyBytes::new(m.py(), seal::EVENT_AAD_PREFIX),
    )?;
    m.add("NONCE_LEN", seal::NONCE_LEN)?;
    m.add("FORMAT", seal::FORMAT)?;
    redact::register(m)?;
    Ok(())
}
