//! cairn's one `Error` as Python exceptions.
//!
//! The exception classes are defined in Python (`cairn/_errors.py`): a native module
//! can only declare single-base exceptions, and `InvalidInputError` must be both a
//! `cairn.Error` and a `ValueError`. Each class is looked up once and cached.

use pyo3::exceptions::PyRuntimeError;
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::PyType;

/// The Python exception classes, by the name `cairn._errors` defines them under.
struct Classes {
    base: PyOnceLock<Py<PyType>>,
    busy: PyOnceLock<Py<PyType>>,
    invalid: PyOnceLock<Py<PyType>>,
    not_found: PyOnceLock<Py<PyType>>,
    alias_taken: PyOnceLock<Py<PyType>>,
    outcome_unknown: PyOnceLock<Py<PyType>>,
    read_only: PyOnceLock<Py<PyType>>,
    index_lag: PyOnceLock<Py<PyType>>,
    index_rebuilding: PyOnceLock<Py<PyType>>,
    file: PyOnceLock<Py<PyType>>,
    in_use: PyOnceLock<Py<PyType>>,
    archived: PyOnceLock<Py<PyType>>,
    moved: PyOnceLock<Py<PyType>>,
    embedder_mismatch: PyOnceLock<Py<PyType>>,
    model: PyOnceLock<Py<PyType>>,
}

static CLASSES: Classes = Classes {
    base: PyOnceLock::new(),
    busy: PyOnceLock::new(),
    invalid: PyOnceLock::new(),
    not_found: PyOnceLock::new(),
    alias_taken: PyOnceLock::new(),
    outcome_unknown: PyOnceLock::new(),
    read_only: PyOnceLock::new(),
    index_lag: PyOnceLock::new(),
    index_rebuilding: PyOnceLock::new(),
    file: PyOnceLock::new(),
    in_use: PyOnceLock::new(),
    archived: PyOnceLock::new(),
    moved: PyOnceLock::new(),
    embedder_mismatch: PyOnceLock::new(),
    model: PyOnceLock::new(),
};

/// The Python exception for `error`, with its details as attributes.
pub(crate) fn to_py(py: Python<'_>, error: cairn::Error) -> PyErr {
    match build(py, &error) {
        Ok(err) => err,
        // Only if `cairn._errors` cannot be imported (a broken install): still say what
        // went wrong.
        Err(import) => PyRuntimeError::new_err(format!("{error} (and: {import})")),
    }
}

/// Extension: `map_err(err)` for results of the library inside a `py.detach` closure.
pub(crate) trait IntoPy<T> {
    /// The library's error as a Python exception.
    fn py_err(self, py: Python<'_>) -> PyResult<T>;
}

impl<T> IntoPy<T> for cairn::Result<T> {
    fn py_err(self, py: Python<'_>) -> PyResult<T> {
        self.map_err(|e| to_py(py, e))
    }
}

/// A Python `InvalidInputError` for an argument the bindings themselves refuse (a bad
/// `kinds` entry, an unknown format name), shaped like the library's own.
pub(crate) fn invalid(py: Python<'_>, field: &'static str, reason: impl Into<String>) -> PyErr {
    to_py(
        py,
        cairn::Error::InvalidInput {
            what: field,
            reason: reason.into(),
        },
    )
}

fn build(py: Python<'_>, error: &cairn::Error) -> PyResult<PyErr> {
    use cairn::Error as E;
    let c = &CLASSES;
    let class = match error {
        E::Busy { .. } => (&c.busy, "BusyError"),
        E::InvalidName { .. } | E::InvalidInput { .. } | E::InvalidBatchItem { .. } => {
            (&c.invalid, "InvalidInputError")
        }
        E::InvalidLine { .. } => (&c.invalid, "InvalidInputError"),
        E::NotFound { .. } => (&c.not_found, "NotFoundError"),
        E::AliasTaken { .. } => (&c.alias_taken, "AliasTakenError"),
        E::OutcomeUnknown { .. } => (&c.outcome_unknown, "OutcomeUnknownError"),
        E::ReadOnly => (&c.read_only, "ReadOnlyError"),
        E::IndexLag { .. } => (&c.index_lag, "IndexLagError"),
        E::IndexRebuilding { .. } => (&c.index_rebuilding, "IndexRebuildingError"),
        E::NotADatabase { .. }
        | E::ForeignDatabase { .. }
        | E::NewerSchema { .. }
        | E::NeedsMigration { .. } => (&c.file, "FileError"),
        E::InUse { .. } => (&c.in_use, "InUseError"),
        E::Archived { .. } => (&c.archived, "ArchivedError"),
        E::Moved { .. } => (&c.moved, "MovedError"),
        E::EmbedderMismatch { .. } => (&c.embedder_mismatch, "EmbedderMismatchError"),
        E::Model { .. } | E::Inference(_) => (&c.model, "ModelError"),
        // A shared commit that failed for a reason only the first writer saw in full is
        // retryable exactly when the original was; the message is all that is left.
        E::SharedCommit { .. } if error.is_outcome_unknown() => {
            (&c.outcome_unknown, "OutcomeUnknownError")
        }
        _ => (&c.base, "Error"),
    };
    let (cell, name) = class;
    let class = cell.import(py, "cairn._errors", name)?;
    let exception = class.call1((error.to_string(),))?;
    exception.setattr("retryable", error.is_retryable())?;
    set_details(&exception, error)?;
    Ok(PyErr::from_value(exception))
}

/// The variant's fields as attributes (`field`, `reason`, `index`, `key`, ...), so a
/// caller can branch on what was wrong without parsing the message.
fn set_details(exception: &Bound<'_, PyAny>, error: &cairn::Error) -> PyResult<()> {
    use cairn::Error as E;
    match error {
        E::InvalidName { what, name, reason } => {
            exception.setattr("field", what.as_ref())?;
            exception.setattr("reason", reason.to_string())?;
            exception.setattr("name", name)?;
        }
        E::InvalidInput { what, reason } => {
            exception.setattr("field", *what)?;
            exception.setattr("reason", reason)?;
        }
        E::InvalidBatchItem { index, source } => {
            set_details(exception, source)?;
            exception.setattr("index", *index)?;
        }
        E::InvalidLine { line, reason } => {
            exception.setattr("field", "line")?;
            exception.setattr("reason", reason)?;
            exception.setattr("line", *line)?;
        }
        E::NotFound { what, key } => {
            exception.setattr("what", *what)?;
            exception.setattr("key", key)?;
        }
        E::AliasTaken { key, owner } => {
            exception.setattr("key", key)?;
            exception.setattr("owner", *owner)?;
        }
        E::Busy { waited } => exception.setattr("waited", waited.as_secs_f64())?,
        E::IndexLag { behind, waited } => {
            exception.setattr("behind", *behind)?;
            exception.setattr("waited", waited.as_secs_f64())?;
        }
        E::IndexRebuilding { indexed, of } => {
            exception.setattr("indexed", *indexed)?;
            exception.setattr("of", *of)?;
        }
        E::InUse { path, reason } => {
            exception.setattr("path", path.to_string_lossy())?;
            exception.setattr("reason", reason)?;
        }
        E::Archived { path, archive } => {
            exception.setattr("path", path.to_string_lossy())?;
            exception.setattr("archive", archive.to_string_lossy())?;
        }
        E::Moved { path, to } => {
            exception.setattr("path", path.to_string_lossy())?;
            exception.setattr("to", to)?;
        }
        E::NotADatabase { path } | E::ForeignDatabase { path, .. } | E::Model { path, .. } => {
            exception.setattr("path", path.to_string_lossy())?
        }
        _ => {}
    }
    Ok(())
}
