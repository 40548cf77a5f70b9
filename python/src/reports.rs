//! Reports of whole-memory operations: import, verify, backup.

use pyo3::prelude::*;

/// What `Memory.import_jsonl` read and wrote.
#[pyclass(frozen, module = "cairn._native", name = "ImportReport")]
pub(crate) struct PyImportReport {
    /// The format read: `"cairn"` or `"memory-jsonl"`.
    #[pyo3(get)]
    format: &'static str,
    /// Lines read.
    #[pyo3(get)]
    lines: u64,
    /// Records written.
    #[pyo3(get)]
    records: u64,
    /// Lines skipped (`skip_invalid=True`).
    #[pyo3(get)]
    skipped: u64,
    /// `(line, reason)` of the first skipped lines.
    #[pyo3(get)]
    skipped_lines: Vec<(u64, String)>,
}

impl From<cairn::ImportReport> for PyImportReport {
    fn from(r: cairn::ImportReport) -> Self {
        PyImportReport {
            format: r.format,
            lines: r.lines,
            records: r.records,
            skipped: r.skipped,
            skipped_lines: r.skipped_lines,
        }
    }
}

#[pymethods]
impl PyImportReport {
    fn __repr__(&self) -> String {
        format!(
            "ImportReport(format={:?}, lines={}, records={}, skipped={})",
            self.format, self.lines, self.records, self.skipped
        )
    }
}

/// What `Memory.verify` found: `ok` is true when `problems` is empty.
#[pyclass(frozen, module = "cairn._native", name = "VerifyReport")]
pub(crate) struct PyVerifyReport {
    /// `"quick"` or `"full"`.
    #[pyo3(get)]
    mode: &'static str,
    /// The file's schema version.
    #[pyo3(get)]
    schema_version: i64,
    /// The newest change-log position.
    #[pyo3(get)]
    last_seq: i64,
    /// The change-log position the search index has applied.
    #[pyo3(get)]
    index_seq: i64,
    /// `(check, detail)` for every problem found.
    #[pyo3(get)]
    problems: Vec<(&'static str, String)>,
}

impl From<cairn::VerifyReport> for PyVerifyReport {
    fn from(r: cairn::VerifyReport) -> Self {
        PyVerifyReport {
            mode: match r.mode {
                cairn::VerifyMode::Quick => "quick",
                _ => "full",
            },
            schema_version: r.schema_version,
            last_seq: r.last_seq,
            index_seq: r.index_seq,
            problems: r
                .problems
                .into_iter()
                .map(|p| (p.check, p.detail))
                .collect(),
        }
    }
}

#[pymethods]
impl PyVerifyReport {
    /// No problems found.
    #[getter]
    fn ok(&self) -> bool {
        self.problems.is_empty()
    }

    fn __bool__(&self) -> bool {
        self.problems.is_empty()
    }

    fn __repr__(&self) -> String {
        format!(
            "VerifyReport(mode={:?}, ok={}, problems={:?})",
            self.mode,
            if self.problems.is_empty() {
                "True"
            } else {
                "False"
            },
            self.problems
        )
    }
}

/// What `Memory.backup` (and `Tenants.export`) copied.
#[pyclass(frozen, module = "cairn._native", name = "BackupReport")]
pub(crate) struct PyBackupReport {
    /// The backup file.
    #[pyo3(get)]
    path: std::path::PathBuf,
    /// Its size in bytes.
    #[pyo3(get)]
    bytes: u64,
    /// The change-log position it holds.
    #[pyo3(get)]
    last_seq: i64,
    /// Seconds the copy took.
    #[pyo3(get)]
    seconds: f64,
}

impl From<cairn::BackupReport> for PyBackupReport {
    fn from(r: cairn::BackupReport) -> Self {
        PyBackupReport {
            path: r.path,
            bytes: r.bytes,
            last_seq: r.last_seq,
            seconds: r.copy_time.as_secs_f64(),
        }
    }
}

#[pymethods]
impl PyBackupReport {
    fn __repr__(&self) -> String {
        format!(
            "BackupReport(path={:?}, bytes={}, last_seq={})",
            self.path, self.bytes, self.last_seq
        )
    }
}
