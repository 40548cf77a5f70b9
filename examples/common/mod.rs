//! Shared by the evaluation examples (`locomo.rs`, `hotpotqa.rs`): the `--model DIR`
//! argument and an embedder that remembers what it embedded, so a study that ingests the
//! same texts for every variant runs the model once per text.

use std::collections::HashMap;
use std::sync::Arc;

use cairn::{Embedder, Error};
use ndarray::{Array1, Array2};
use parking_lot::Mutex;

/// The model directory from `--model DIR`, or from `CAIRN_MODEL` when the flag is absent.
pub fn model_dir(args: &[String]) -> Option<String> {
    args.iter()
        .position(|a| a == "--model")
        .and_then(|i| args.get(i + 1).cloned())
        .or_else(|| std::env::var("CAIRN_MODEL").ok())
}

/// The positional argument (a data file), skipping flags and the value of `--model`.
pub fn positional(args: &[String]) -> Option<&String> {
    args.iter()
        .enumerate()
        .find(|(i, a)| !a.starts_with("--") && (*i == 0 || args[i - 1] != "--model"))
        .map(|(_, a)| a)
}

/// The sentence-transformers model named by [`model_dir`], wrapped in a [`Memo`].
pub fn model(args: &[String]) -> Result<Option<Arc<Memo>>, Error> {
    let Some(dir) = model_dir(args) else {
        return Ok(None);
    };
    let embedder = cairn::SentenceEmbedder::open(&dir)?;
    eprintln!(
        "model: {} ({} dimensions) from {dir}",
        embedder.id(),
        embedder.dimension()
    );
    Ok(Some(Arc::new(Memo::new(Arc::new(embedder)))))
}

/// Remembers every passage and query vector of the embedder it wraps. Vectors are the
/// wrapped embedder's own (same id, same values), so results equal an uncached run.
pub struct Memo {
    inner: Arc<dyn Embedder>,
    passages: Mutex<HashMap<String, Array1<f32>>>,
    queries: Mutex<HashMap<String, Array1<f32>>>,
}

impl Memo {
    /// Wraps `inner` with empty caches.
    pub fn new(inner: Arc<dyn Embedder>) -> Self {
        Memo {
            inner,
            passages: Mutex::new(HashMap::new()),
            queries: Mutex::new(HashMap::new()),
        }
    }
}

impl Embedder for Memo {
    fn id(&self) -> &str {
        self.inner.id()
    }

    fn dimension(&self) -> usize {
        self.inner.dimension()
    }

    fn embed_passages(&self, texts: &[&str]) -> Result<Array2<f32>, Error> {
        let missing: Vec<&str> = {
            let cache = self.passages.lock();
            texts
                .iter()
                .copied()
                .filter(|t| !cache.contains_key(*t))
                .collect()
        };
        if !missing.is_empty() {
            let rows = self.inner.embed_passages(&missing)?;
            let mut cache = self.passages.lock();
            for (text, row) in missing.iter().zip(rows.rows()) {
                cache.insert((*text).to_owned(), row.to_owned());
            }
        }
        let cache = self.passages.lock();
        let mut out = Array2::zeros((texts.len(), self.dimension()));
        for (i, text) in texts.iter().enumerate() {
            if let Some(row) = cache.get(*text) {
                out.row_mut(i).assign(row);
            }
        }
        Ok(out)
    }

    fn embed_query(&self, query: &str) -> Result<Array1<f32>, Error> {
        if let Some(row) = self.queries.lock().get(query) {
            return Ok(row.clone());
        }
        let row = self.inner.embed_query(query)?;
        self.queries.lock().insert(query.to_owned(), row.clone());
        Ok(row)
    }
}

/// `memory.sync()`, waited out: a model embeds a large ingest for longer than one call's
/// budget, which `sync` reports as [`Error::IndexLag`].
pub fn settle(memory: &cairn::Memory) -> Result<(), Error> {
    loop {
        match memory.sync() {
            Err(Error::IndexLag { behind, .. }) => eprintln!("index {behind} changes behind"),
            done => return done,
        }
    }
}
