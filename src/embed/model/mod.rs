//! [`SentenceEmbedder`]: a local sentence-transformers model (BERT family) run on the CPU:
//! candle reads the weights, [`forward`] runs them.

mod files;
mod forward;

use std::borrow::Cow;
use std::path::{Path, PathBuf};

use candle_core::{DType, Device};
use candle_nn::VarBuilder;
use ndarray::{Array1, Array2, ArrayView2, ArrayViewMut1};
use sha2::Digest;
use tokenizers::{Encoding, Tokenizer, TruncationParams};

use crate::embed::Embedder;
use crate::error::{Error, ModelProblem, Result};
pub use cairn_kernels::QueryPrecision;
use files::ModelFiles;
use forward::Encoder;

/// Bumped whenever this code changes the vectors a model gives (pooling, truncation,
/// how prefixes are joined), so stored vectors of the old code are refused.
const SCHEME: &str = "cairn-st-v1";

/// At most this many texts go through the model at once.
const MAX_BATCH_TEXTS: usize = 32;

/// At most this many tokens (counted as if the batch were padded to its longest text,
/// which bounds the real count) go through the model at once: the widest activations of
/// a batch take `tokens × intermediate_size` floats (4,096 × 1,536 × 4 B = 25 MB).
const MAX_BATCH_TOKENS: usize = 4096;

/// No text needs more bytes than this per token to fill the model's window: bytes past
/// `max_tokens × MAX_BYTES_PER_TOKEN` are not tokenized, which bounds the time a huge
/// text costs.
const MAX_BYTES_PER_TOKEN: usize = 64;

/// Intra-op threads by default, chosen by measurement on a 2-core machine (see
/// `docs/benchmarks.md`, "Embedding").
const DEFAULT_THREADS: usize = 2;

/// Runs a BERT-family [sentence-transformers] model from a local directory: no download,
/// no network, the CPU only.
///
/// The directory holds `config.json`, `model.safetensors`, `tokenizer.json`,
/// `1_Pooling/config.json` (mean pooling; other poolings are refused) and
/// `sentence_bert_config.json` (`max_seq_length`: texts are truncated there, and never
/// beyond the model's `max_position_embeddings`). A text's vector is the mean of its
/// token vectors over the attention mask, L2-normalized, as sentence-transformers
/// computes it. Texts are embedded in bounded batches sorted by length, none padded: the
/// forward pass (`src/embed/model/forward.rs`) runs each text over its own tokens.
///
/// Queries and passages may carry different prefixes (e5 and bge models want
/// `"query: "` and `"passage: "`): they are read from the `prompts` of
/// `config_sentence_transformers.json` when it has them, and can be set with the
/// [builder](SentenceEmbedder::builder).
///
/// The [`id`](Embedder::id) names the model and a SHA-256 fingerprint of everything that
/// decides its vectors (configuration, weights, tokenizer, pooling, truncation, prefixes),
/// so a memory refuses a different model or a different configuration of the same one.
///
/// ```no_run
/// use std::sync::Arc;
/// use cairn::{Embedder, Options, SentenceEmbedder};
///
/// let model = SentenceEmbedder::builder("models/e5-small-v2")
///     .query_prefix("query: ")
///     .passage_prefix("passage: ")
///     .build()?;
/// assert_eq!(model.dimension(), 384);
/// let options = Options::new().embedder(Arc::new(model));
/// # Ok::<(), cairn::Error>(())
/// ```
///
/// [sentence-transformers]: https://www.sbert.net
pub struct SentenceEmbedder {
    encoder: Encoder,
    tokenizer: Tokenizer,
    id: String,
    name: String,
    dimension: usize,
    max_tokens: usize,
    query_prefix: String,
    passage_prefix: String,
    query_precision: QueryPrecision,
    threads: rayon::ThreadPool,
}

/// Options of a [`SentenceEmbedder`]; made by [`SentenceEmbedder::builder`].
#[derive(Debug, Clone)]
#[must_use]
pub struct SentenceEmbedderBuilder {
    dir: PathBuf,
    query_prefix: Option<String>,
    passage_prefix: Option<String>,
    query_precision: QueryPrecision,
    threads: usize,
}

impl SentenceEmbedder {
    /// The model in `dir`, with the prefixes its own files name (if any).
    pub fn open(dir: impl AsRef<Path>) -> Result<Self> {
        Self::builder(dir).build()
    }

    /// Options for the model in `dir`; [`SentenceEmbedderBuilder::build`] loads it.
    pub fn builder(dir: impl AsRef<Path>) -> SentenceEmbedderBuilder {
        SentenceEmbedderBuilder {
            dir: dir.as_ref().to_path_buf(),
            query_prefix: None,
            passage_prefix: None,
            query_precision: QueryPrecision::default(),
            threads: DEFAULT_THREADS,
        }
    }

    /// The model's name, from its `config.json`.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The most tokens of a text that are embedded (special tokens included); the rest
    /// is cut off.
    pub fn max_tokens(&self) -> usize {
        self.max_tokens
    }

    /// The text put before every query.
    pub fn query_prefix(&self) -> &str {
        &self.query_prefix
    }

    /// The text put before every stored text.
    pub fn passage_prefix(&self) -> &str {
        &self.passage_prefix
    }

    /// The precision of the weights a query's embedding reads.
    pub fn query_precision(&self) -> QueryPrecision {
        self.query_precision
    }

    /// How many tokens the model sees for `text` as a passage (prefix and special
    /// tokens included, after truncation).
    pub fn count_tokens(&self, text: &str) -> Result<usize> {
        Ok(self
            .encode(&[self.with_prefix(&self.passage_prefix, text)])?
            .first()
            .map_or(0, Encoding::len))
    }

    fn with_prefix<'t>(&self, prefix: &str, text: &'t str) -> Cow<'t, str> {
        let text = cut(text, self.max_tokens.saturating_mul(MAX_BYTES_PER_TOKEN));
        if prefix.is_empty() {
            Cow::Borrowed(text)
        } else {
            Cow::Owned(format!("{prefix}{text}"))
        }
    }

    fn encode(&self, texts: &[Cow<'_, str>]) -> Result<Vec<Encoding>> {
        let failed = |e| Error::Inference(format!("tokenizer: {e}"));
        if let [text] = texts {
            // One text (a query): the batch call would hand it to a parallel loop.
            return Ok(vec![
                self.tokenizer
                    .encode_fast(text.as_ref(), true)
                    .map_err(failed)?,
            ]);
        }
        let inputs: Vec<&str> = texts.iter().map(AsRef::as_ref).collect();
        self.tokenizer
            .encode_batch_fast(inputs, true)
            .map_err(failed)
    }

    /// Embeds `texts` with `prefix`, one row each, on this embedder's threads (the
    /// tokenizer's parallel loops and the matrix products both run in its pool).
    /// `query` reads the weights in the query precision.
    fn embed_with(&self, prefix: &str, texts: &[&str], query: bool) -> Result<Array2<f32>> {
        let mut rows = Array2::zeros((texts.len(), self.dimension));
        self.threads
            .install(|| self.embed_into(prefix, texts, query, &mut rows))?;
        Ok(rows)
    }

    fn embed_into(
        &self,
        prefix: &str,
        texts: &[&str],
        query: bool,
        out: &mut Array2<f32>,
    ) -> Result<()> {
        let prefixed: Vec<Cow<'_, str>> =
            texts.iter().map(|t| self.with_prefix(prefix, t)).collect();
        let encodings = self.encode(&prefixed)?;
        let mut order: Vec<usize> = (0..encodings.len()).collect();
        order.sort_by_key(|&i| encodings.get(i).map_or(0, Encoding::len));
        for batch in batches(&order, |i| encodings.get(i).map_or(0, Encoding::len)) {
            let group: Vec<&Encoding> = batch.iter().filter_map(|&i| encodings.get(i)).collect();
            let pooled = self.forward(&group, self.threads.current_num_threads(), query)?;
            for (&i, row) in batch.iter().zip(pooled.rows()) {
                out.row_mut(i).assign(&row);
            }
        }
        Ok(())
    }

    /// The pooled, normalized vectors of one batch (no padding: the encoder runs each
    /// text over its own tokens), in at most `tasks` parallel parts.
    fn forward(&self, batch: &[&Encoding], tasks: usize, query: bool) -> Result<Array2<f32>> {
        let ids: Vec<&[u32]> = batch.iter().map(|e| e.get_ids()).collect();
        let hidden = self.encoder.forward(&ids, tasks, query)?;
        let tokens: usize = ids.iter().map(|t| t.len()).sum();
        if hidden.dim() != (tokens, self.dimension) {
            return Err(Error::Inference(format!(
                "model {} returned {:?} values for {tokens} tokens of width {}",
                self.name,
                hidden.dim(),
                self.dimension
            )));
        }
        let mut pooled = Array2::zeros((batch.len(), self.dimension));
        let mut start = 0;
        for (encoding, row) in batch.iter().zip(pooled.rows_mut()) {
            let end = start + encoding.len();
            let states = hidden.slice_axis(ndarray::Axis(0), ndarray::Slice::from(start..end));
            mean_pool(states, encoding.get_attention_mask(), row);
            start = end;
        }
        Ok(pooled)
    }
}

/// The mean of the token vectors (`states`, one row per token) whose `mask` is set,
/// L2-normalized.
fn mean_pool(states: ArrayView2<'_, f32>, mask: &[u32], mut row: ArrayViewMut1<'_, f32>) {
    let mut sum = vec![0.0_f64; row.len()];
    for (token, _) in states
        .rows()
        .into_iter()
        .zip(mask)
        .filter(|(_, m)| **m != 0)
    {
        for (total, &value) in sum.iter_mut().zip(token) {
            *total += f64::from(value);
        }
    }
    // The mean's divisor cancels in the normalization; only the direction is kept.
    let norm = sum.iter().map(|x| x * x).sum::<f64>().sqrt();
    if norm > 0.0 {
        for (out, total) in row.iter_mut().zip(&sum) {
            *out = (total / norm) as f32;
        }
    }
}

/// Splits `order` (indices sorted by length) into consecutive batches of at most
/// [`MAX_BATCH_TEXTS`] texts and [`MAX_BATCH_TOKENS`] padded tokens (a single text
/// longer than that still goes, alone).
fn batches(order: &[usize], length: impl Fn(usize) -> usize) -> Vec<&[usize]> {
    let mut out = Vec::new();
    let mut start = 0;
    for end in 1..=order.len() {
        let size = end - start;
        // Sorted by length, so the last text of a batch is its longest.
        let padded = order.get(end - 1).map_or(0, |&i| length(i)) * size;
        if size > 1 && (size > MAX_BATCH_TEXTS || padded > MAX_BATCH_TOKENS) {
            out.push(&order[start..end - 1]);
            start = end - 1;
        }
    }
    if start < order.len() {
        out.push(&order[start..]);
    }
    out
}

/// The longest prefix of `text` of at most `max` bytes that ends on a character boundary.
fn cut(text: &str, max: usize) -> &str {
    if text.len() <= max {
        return text;
    }
    let end = (0..=max)
        .rev()
        .find(|&at| text.is_char_boundary(at))
        .unwrap_or(0);
    &text[..end]
}

impl Embedder for SentenceEmbedder {
    fn id(&self) -> &str {
        &self.id
    }

    fn dimension(&self) -> usize {
        self.dimension
    }

    fn embed_passages(&self, texts: &[&str]) -> Result<Array2<f32>> {
        self.embed_with(&self.passage_prefix, texts, false)
    }

    fn embed_query(&self, query: &str) -> Result<Array1<f32>> {
        let rows = self.embed_with(&self.query_prefix, &[query], true)?;
        Ok(rows.row(0).to_owned())
    }
}

impl std::fmt::Debug for SentenceEmbedder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SentenceEmbedder")
            .field("id", &self.id)
            .field("dimension", &self.dimension)
            .field("max_tokens", &self.max_tokens)
            .field("query_prefix", &self.query_prefix)
            .field("passage_prefix", &self.passage_prefix)
            .field("query_precision", &self.query_precision)
            .field("threads", &self.threads.current_num_threads())
            .finish_non_exhaustive()
    }
}

impl SentenceEmbedderBuilder {
    /// Put `prefix` before every query (e.g. `"query: "` for e5 models), instead of the
    /// model's own `prompts["query"]`; `""` puts none.
    pub fn query_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.query_prefix = Some(prefix.into());
        self
    }

    /// Put `prefix` before every stored text (e.g. `"passage: "`), instead of the
    /// model's own `prompts["passage"]` (or `["document"]`); `""` puts none.
    pub fn passage_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.passage_prefix = Some(prefix.into());
        self
    }

    /// Read the weights in `precision` for a query's embedding (default
    /// [`QueryPrecision::Bf16`]). Passages are always embedded with the f32 weights, so
    /// the stored vectors, and the [`id`](Embedder::id), do not depend on this. Every
    /// reference text embedded as a query is within cosine 0.999 of its reference vector
    /// in each precision (`tests/model.rs`; measured least: bf16 0.99998, int8 0.99906). The reduced weights are a second copy (2 bytes per weight for
    /// bf16, 1 for int8) held beside the f32 ones.
    pub fn query_precision(mut self, precision: QueryPrecision) -> Self {
        self.query_precision = precision;
        self
    }

    /// Run the model on `threads` threads (at least 1; default 2). They are this
    /// embedder's own, apart from any other thread pool of the process.
    pub fn threads(mut self, threads: usize) -> Self {
        self.threads = threads.max(1);
        self
    }

    /// Reads, checks and loads the model. Fails with [`Error::Model`] naming the file
    /// when one is missing, unreadable, malformed or asks for what is not implemented.
    pub fn build(self) -> Result<SentenceEmbedder> {
        let ModelFiles {
            config,
            weights,
            mut tokenizer,
            name,
            max_tokens,
            query_prompt,
            passage_prompt,
            mut digest,
        } = ModelFiles::read(&self.dir)?;
        let query_prefix = self.query_prefix.or(query_prompt).unwrap_or_default();
        let passage_prefix = self.passage_prefix.or(passage_prompt).unwrap_or_default();
        for part in [SCHEME, &query_prefix, &passage_prefix] {
            digest.update((part.len() as u64).to_le_bytes());
            digest.update(part.as_bytes());
        }
        let fingerprint: String = digest
            .finalize()
            .iter()
            .take(8)
            .map(|b| format!("{b:02x}"))
            .collect();

        let tokenizer_path = self.dir.join(files::TOKENIZER);
        tokenizer
            .with_truncation(Some(TruncationParams {
                max_length: max_tokens,
                ..TruncationParams::default()
            }))
            .map_err(|e| Error::model(&tokenizer_path, ModelProblem::Malformed(e.to_string())))?;
        // Nothing is padded: the forward pass takes each text at its own length.
        tokenizer.with_padding(None);

        let weights_path = self.dir.join(files::WEIGHTS);
        let malformed_weights = |e: candle_core::Error| {
            Error::model(&weights_path, ModelProblem::Malformed(e.to_string()))
        };
        let vb = VarBuilder::from_buffered_safetensors(weights, DType::F32, &Device::Cpu)
            .map_err(malformed_weights)?;
        let encoder =
            Encoder::load(&vb, &config, self.query_precision).map_err(malformed_weights)?;
        let threads = rayon::ThreadPoolBuilder::new()
            .num_threads(self.threads)
            .thread_name(|i| format!("cairn-embed-{i}"))
            .build()
            .map_err(|e| Error::Inference(format!("cannot start the model's threads: {e}")))?;
        Ok(SentenceEmbedder {
            encoder,
            tokenizer,
            id: format!("st-{name}-{}d-{fingerprint}", config.hidden_size),
            name,
            dimension: config.hidden_size,
            max_tokens,
            query_prefix,
            passage_prefix,
            query_precision: self.query_precision,
            threads,
        })
    }
}

#[cfg(test)]
mod tests {
    use ndarray::Array2;

    use super::*;

    #[test]
    fn batches_are_bounded_by_texts_and_padded_tokens() {
        let lengths = [3_usize, 5, 5, 100, 300, 300, 5000];
        let order: Vec<usize> = (0..lengths.len()).collect();
        let got = batches(&order, |i| lengths[i]);
        // 4 × 100 = 400 fits; adding a 300 makes 5 × 300 = 1500 (fits), two: 6 × 300
        // = 1800 fits; 5000 alone exceeds the bound and still goes alone.
        assert_eq!(got, vec![&[0, 1, 2, 3, 4, 5][..], &[6][..]]);

        let many: Vec<usize> = (0..70).collect();
        let got = batches(&many, |_| 10);
        assert_eq!(
            got.iter().map(|b| b.len()).collect::<Vec<_>>(),
            vec![32, 32, 6]
        );
        let long = batches(&many, |_| 256);
        assert!(long.iter().all(|b| b.len() * 256 <= MAX_BATCH_TOKENS));
        assert_eq!(long.iter().map(|b| b.len()).sum::<usize>(), 70);
        assert!(batches(&[], |_| 1).is_empty());
    }

    #[test]
    fn mean_pool_averages_masked_tokens_and_normalizes() {
        let states = ndarray::array![[1.0, 0.0], [3.0, 4.0], [100.0, 100.0]];
        let mut out = Array2::zeros((1, 2));
        mean_pool(states.view(), &[1, 1, 0], out.row_mut(0));
        // Mean of (1, 0) and (3, 4) is (2, 2); the padding token is ignored.
        let half = 0.5_f32.sqrt();
        assert!((out[[0, 0]] - half).abs() < 1e-6 && (out[[0, 1]] - half).abs() < 1e-6);
        let mut zero = Array2::zeros((1, 2));
        mean_pool(states.view(), &[0, 0, 0], zero.row_mut(0));
        assert!(zero.iter().all(|&x| x == 0.0));
    }

    #[test]
    fn cut_keeps_whole_characters() {
        assert_eq!(cut("abc", 10), "abc");
        assert_eq!(cut("abc", 2), "ab");
        assert_eq!(cut("é", 1), "");
        assert_eq!(cut("aé", 2), "a");
    }
}
