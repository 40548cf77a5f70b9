//! The embedders a memory can be opened with: a local sentence-transformers model
//! (`SentenceEmbedder`, the library's `model` feature) and the model-free hashing one.

use std::sync::Arc;

use pyo3::prelude::*;

use cairn::Embedder;

use crate::errors::{IntoPy, invalid};

/// A sentence-transformers (BERT-family) model run locally with candle, read from a
/// model directory (`config.json`, `tokenizer.json`, `model.safetensors`, ...).
#[pyclass(frozen, module = "cairn._native", name = "SentenceEmbedder")]
pub(crate) struct PySentenceEmbedder {
    inner: Arc<cairn::SentenceEmbedder>,
}

#[pymethods]
impl PySentenceEmbedder {
    /// Loads the model in `path`; `threads` caps the threads one embedding call uses.
    #[new]
    #[pyo3(signature = (path, *, query_prefix=None, passage_prefix=None, threads=None))]
    fn new(
        py: Python<'_>,
        path: std::path::PathBuf,
        query_prefix: Option<String>,
        passage_prefix: Option<String>,
        threads: Option<usize>,
    ) -> PyResult<Self> {
        let built = py.detach(|| {
            let mut builder = cairn::SentenceEmbedder::builder(&path);
            if let Some(prefix) = query_prefix {
                builder = builder.query_prefix(prefix);
            }
            if let Some(prefix) = passage_prefix {
                builder = builder.passage_prefix(prefix);
            }
            if let Some(threads) = threads {
                builder = builder.threads(threads);
            }
            builder.build()
        });
        Ok(PySentenceEmbedder {
            inner: Arc::new(built.py_err(py)?),
        })
    }

    /// The model's name (from its directory).
    #[getter]
    fn name(&self) -> &str {
        self.inner.name()
    }

    /// The id stored in a memory's file with its vectors.
    #[getter]
    fn id(&self) -> &str {
        self.inner.id()
    }

    /// The length of its vectors.
    #[getter]
    fn dimension(&self) -> usize {
        self.inner.dimension()
    }

    /// The query's vector (as a search embeds it).
    fn embed_query(&self, py: Python<'_>, text: &str) -> PyResult<Vec<f32>> {
        let vector = py.detach(|| self.inner.embed_query(text)).py_err(py)?;
        Ok(vector.to_vec())
    }

    /// One vector per passage.
    fn embed_passages(&self, py: Python<'_>, texts: Vec<String>) -> PyResult<Vec<Vec<f32>>> {
        let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
        let matrix = py.detach(|| self.inner.embed_passages(&refs)).py_err(py)?;
        Ok(matrix.rows().into_iter().map(|r| r.to_vec()).collect())
    }

    fn __repr__(&self) -> String {
        format!(
            "SentenceEmbedder(name={:?}, dimension={})",
            self.inner.name(),
            self.inner.dimension()
        )
    }
}

/// Feature hashing of words into a fixed number of dimensions: no model, no download;
/// for tests and tiny installs (it finds shared words, not meaning).
#[pyclass(frozen, module = "cairn._native", name = "HashingEmbedder")]
pub(crate) struct PyHashingEmbedder {
    inner: Arc<cairn::HashingEmbedder>,
}

#[pymethods]
impl PyHashingEmbedder {
    /// A hashing embedder of `dimension` dimensions.
    #[new]
    #[pyo3(signature = (dimension=256))]
    fn new(py: Python<'_>, dimension: usize) -> PyResult<Self> {
        Ok(PyHashingEmbedder {
            inner: Arc::new(cairn::HashingEmbedder::new(dimension).py_err(py)?),
        })
    }

    /// The id stored in a memory's file with its vectors.
    #[getter]
    fn id(&self) -> &str {
        self.inner.id()
    }

    /// The length of its vectors.
    #[getter]
    fn dimension(&self) -> usize {
        self.inner.dimension()
    }

    fn __repr__(&self) -> String {
        format!("HashingEmbedder(dimension={})", self.inner.dimension())
    }
}

/// The embedder behind an `embedder=` argument.
pub(crate) fn embedder_of(arg: &Bound<'_, PyAny>) -> PyResult<Arc<dyn Embedder>> {
    if let Ok(model) = arg.cast::<PySentenceEmbedder>() {
        return Ok(model.get().inner.clone());
    }
    if let Ok(hashing) = arg.cast::<PyHashingEmbedder>() {
        return Ok(hashing.get().inner.clone());
    }
    Err(invalid(
        arg.py(),
        "embedder",
        "expected a cairn.SentenceEmbedder or cairn.HashingEmbedder",
    ))
}
