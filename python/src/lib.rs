//! `cairn._native`: the PyO3 extension behind the `cairn` Python package.
//!
//! A thin layer over the library's public API. Every call converts its arguments while
//! attached to the interpreter, runs the library call with the GIL released
//! (`Python::detach`), and converts the result back, so Python threads write and search
//! in parallel. Errors become the exception classes of `cairn/_errors.py`. The
//! `cairn` command line (`cairn_cli::run`) is exposed as `_cli_main` for the package's
//! `cairn` script.
//!
//! The Python half (`python/cairn/`) re-exports these classes, adds the LangChain
//! retriever and the type stubs; see `docs/python.md`.

mod batch;
mod convert;
mod embed;
mod errors;
mod memory;
mod options;
mod reports;
mod tenants;
mod types;

use std::ffi::OsString;

use pyo3::prelude::*;

/// Runs one `cairn` command line (`argv[0]` is the program name) and returns its exit
/// code, with the GIL released (so `cairn mcp` can serve for hours).
#[pyfunction]
fn _cli_main(py: Python<'_>, argv: Vec<OsString>) -> u8 {
    py.detach(|| cairn_cli::run(argv))
}

/// The native module: classes and the command-line entry point.
#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<memory::PyMemory>()?;
    m.add_class::<batch::PyBatch>()?;
    m.add_class::<batch::PyBatchReport>()?;
    m.add_class::<types::PyHit>()?;
    m.add_class::<types::PyReason>()?;
    m.add_class::<types::PyContext>()?;
    m.add_class::<types::PyRelation>()?;
    m.add_class::<types::PyObservation>()?;
    m.add_class::<types::PyEntityView>()?;
    m.add_class::<types::PyEpisodeInfo>()?;
    m.add_class::<reports::PyImportReport>()?;
    m.add_class::<reports::PyVerifyReport>()?;
    m.add_class::<reports::PyBackupReport>()?;
    m.add_class::<reports::PyMigrateReport>()?;
    m.add_class::<reports::PyTenantMigration>()?;
    m.add_class::<tenants::PyTenants>()?;
    m.add_class::<embed::PySentenceEmbedder>()?;
    m.add_class::<embed::PyHashingEmbedder>()?;
    m.add_function(wrap_pyfunction!(_cli_main, m)?)?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    Ok(())
}
