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

/// One tenant's line of `Tenants.migrate_all`.
#[pyclass(frozen, module = "cairn._native", name = "TenantMigration")]
pub(crate) struct PyTenantMigration {
    /// The tenant id.
    #[pyo3(get)]
    id: String,
    /// Its schema version before (`None` when the header could not be read).
    #[pyo3(get)]
    from_version: Option<i64>,
    /// `"migrated"`, `"verified"` (already current), `"skipped"` (done by an earlier
    /// run) or `"failed"`.
    #[pyo3(get)]
    outcome: &'static str,
    /// Why it failed (`None` unless `outcome == "failed"`).
    #[pyo3(get)]
    error: Option<String>,
    /// How long it took.
    #[pyo3(get)]
    seconds: f64,
}

impl From<cairn::TenantMigration> for PyTenantMigration {
    fn from(t: cairn::TenantMigration) -> Self {
        let (outcome, error) = match t.outcome {
            cairn::MigrateOutcome::Migrated => ("migrated", None),
            cairn::MigrateOutcome::Verified => ("verified", None),
            cairn::MigrateOutcome::Skipped => ("skipped", None),
            cairn::MigrateOutcome::Failed { error } => ("failed", Some(error)),
            _ => (
                "failed",
                Some("an outcome these bindings do not know".to_owned()),
            ),
        };
        PyTenantMigration {
            id: t.id,
            from_version: t.from_version,
            outcome,
            error,
            seconds: t.time.as_secs_f64(),
        }
    }
}

#[pymethods]
impl PyTenantMigration {
    fn __repr__(&self) -> String {
        format!(
            "TenantMigration(id={:?}, outcome={:?}, from_version={:?})",
            self.id, self.outcome, self.from_version
        )
    }
}

/// What `Tenants.migrate_all` did: counts, and every tenant in id order.
#[pyclass(frozen, module = "cairn._native", name = "MigrateReport")]
pub(crate) struct PyMigrateReport {
    /// Tenants in the directory.
    #[pyo3(get)]
    total: usize,
    /// Migrated and verified.
    #[pyo3(get)]
    migrated: usize,
    /// At the current schema already, verified.
    #[pyo3(get)]
    verified: usize,
    /// Done by an earlier run.
    #[pyo3(get)]
    skipped: usize,
    /// Failed.
    #[pyo3(get)]
    failed: usize,
    /// Each tenant's line.
    tenants: Vec<Py<PyTenantMigration>>,
}

impl PyMigrateReport {
    /// The report as Python objects.
    pub(crate) fn new(py: Python<'_>, r: cairn::MigrateReport) -> PyResult<Self> {
        let tenants = r
            .tenants
            .into_iter()
            .map(|t| Py::new(py, PyTenantMigration::from(t)))
            .collect::<PyResult<_>>()?;
        Ok(PyMigrateReport {
            total: r.total,
            migrated: r.migrated,
            verified: r.verified,
            skipped: r.skipped,
            failed: r.failed,
            tenants,
        })
    }
}

#[pymethods]
impl PyMigrateReport {
    /// Each tenant's line, in id order.
    #[getter]
    fn tenants(&self, py: Python<'_>) -> Vec<Py<PyTenantMigration>> {
        self.tenants.iter().map(|t| t.clone_ref(py)).collect()
    }

    /// True when no tenant failed.
    #[getter]
    fn ok(&self) -> bool {
        self.failed == 0
    }

    fn __repr__(&self) -> String {
        format!(
            "MigrateReport(total={}, migrated={}, verified={}, skipped={}, failed={})",
            self.total, self.migrated, self.verified, self.skipped, self.failed
        )
    }
}
