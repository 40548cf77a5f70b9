//! `cairn.Tenants`: a directory of memories, one file per tenant id.

use std::path::PathBuf;

use pyo3::prelude::*;

use crate::errors::IntoPy;
use crate::memory::PyMemory;
use crate::options::OpenArgs;
use crate::reports::{PyBackupReport, PyMigrateReport};

/// A directory of memories, one per tenant id (checked: letters, digits, `-`, `_`,
/// `.`), with a bounded cache of open handles (`capacity`).
#[pyclass(frozen, module = "cairn._native", name = "Tenants")]
pub(crate) struct PyTenants {
    inner: cairn::Tenants,
}

#[allow(clippy::too_many_arguments)]
#[pymethods]
impl PyTenants {
    /// Opens (creating if needed) the directory `dir`; every tenant is opened with the
    /// same options as `Memory(...)` takes.
    #[new]
    #[pyo3(signature = (dir, *, capacity=64, durability="normal", busy_timeout=5.0, read_only=false, pool_size=None, checkpoint_policy=None, embedder=None))]
    fn new(
        py: Python<'_>,
        dir: PathBuf,
        capacity: usize,
        durability: &str,
        busy_timeout: f64,
        read_only: bool,
        pool_size: Option<u32>,
        checkpoint_policy: Option<&str>,
        embedder: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Self> {
        let options = OpenArgs {
            durability,
            busy_timeout,
            read_only,
            pool_size,
            checkpoint_policy,
            embedder,
        }
        .options(py)?;
        let inner = py
            .detach(|| cairn::Tenants::open_with(&dir, options, capacity))
            .py_err(py)?;
        Ok(PyTenants { inner })
    }

    /// The tenant's memory, created on first use.
    fn get(&self, py: Python<'_>, id: &str) -> PyResult<PyMemory> {
        let memory = py.detach(|| self.inner.get(id)).py_err(py)?;
        Ok(PyMemory::wrap(memory))
    }

    /// Creates the tenant's memory; `InvalidInputError` if it exists.
    fn create(&self, py: Python<'_>, id: &str) -> PyResult<PyMemory> {
        let memory = py.detach(|| self.inner.create(id)).py_err(py)?;
        Ok(PyMemory::wrap(memory))
    }

    /// Every tenant id in the directory, sorted.
    fn list(&self, py: Python<'_>) -> PyResult<Vec<String>> {
        py.detach(|| self.inner.list()).py_err(py)
    }

    /// An online backup of the tenant's memory into the new file `dest`.
    fn export(&self, py: Python<'_>, id: &str, dest: PathBuf) -> PyResult<PyBackupReport> {
        let report = py.detach(|| self.inner.export(id, &dest)).py_err(py)?;
        Ok(PyBackupReport::from(report))
    }

    /// Deletes the tenant's memory and its index. Returns `False` if there was none.
    fn drop(&self, py: Python<'_>, id: &str) -> PyResult<bool> {
        py.detach(|| self.inner.drop_tenant(id)).py_err(py)
    }

    /// Archives the tenant into the new file `dest` (compacted, checked, synced) and
    /// drops its live files; `get` of the id then raises `ArchivedError` until
    /// `restore_archive` or `drop`. Writers are refused (`InUseError`) from the start.
    fn archive(&self, py: Python<'_>, id: &str, dest: PathBuf) -> PyResult<PyBackupReport> {
        let report = py.detach(|| self.inner.archive(id, &dest)).py_err(py)?;
        Ok(PyBackupReport::from(report))
    }

    /// Restores the archive (or backup) `src` as the tenant `id`, checked first; refused
    /// when the tenant exists.
    fn restore_archive(&self, py: Python<'_>, id: &str, src: PathBuf) -> PyResult<PyMemory> {
        let memory = py
            .detach(|| self.inner.restore_archive(id, &src))
            .py_err(py)?;
        Ok(PyMemory::wrap(memory))
    }

    /// Migrates every tenant to the current schema and verifies it, one at a time; a
    /// failed tenant is reported and the rest go on. Resumable: tenants done by an
    /// earlier run are skipped unless `redo`.
    #[pyo3(signature = (*, redo=false))]
    fn migrate_all(&self, py: Python<'_>, redo: bool) -> PyResult<PyMigrateReport> {
        let options = cairn::MigrateOptions::new().redo(redo);
        let report = py
            .detach(|| self.inner.migrate_all(&options, |_| {}))
            .py_err(py)?;
        PyMigrateReport::new(py, report)
    }

    /// How many tenant memories are open in the cache.
    #[getter]
    fn open_count(&self) -> usize {
        self.inner.open_count()
    }
}
