//! The vector channel's search alone: exact f32 search against cairn's fast path (an
//! inverted-file probe of two-level k-means lists, scored exactly: `src/index/nearest.rs`,
//! `src/index/partition.rs`), time and recall.
//!
//! Run with `cargo bench --bench vectors`. Prints `>>>` summary lines:
//!
//! 1. `flops`: the machine's multiply-add rate for the exact scan's own code on an
//!    in-cache set (64 rows), so each scan's arithmetic floor (n·d multiply-adds at that
//!    rate) is measured in the same run.
//! 2. For each data set and size: per-query time of the exact scan and of the fast path
//!    (interleaved query by query), their ratio, the floor, and the fast path's recall
//!    against exact search at k = 10, 50 and 100 (100 is what a search with limit 20
//!    asks the vector channel for), plus recall@10 / @50 at other probe depths, and the
//!    time to build the index (partition training included).
//!
//! Data sets: `random` (unit vectors uniform on the sphere: no structure, the worst case
//! for any sketch or index); `hashing` (`HashingEmbedder::new(384)` of the 100,000 chunk
//! texts of `benches/synthetic/`, queried by its 200 queries); `minilm` (real
//! all-MiniLM-L6-v2 vectors of the LoCoMo turns and HotpotQA paragraphs in
//! `../shared/data/`, queried by their questions, when `CAIRN_MODEL` names the model: they
//! are embedded once and kept in `target/minilm-vectors/`); `minilm-derived` (100,000
//! rows made from those: each the normalized sum of one real row, 0.3 of another and a
//! little noise — a stand-in for a large memory with a real model's geometry, since
//! embedding 100,000 texts on this machine takes most of an hour).
//!
//! Environment: `CAIRN_VECTORS_SIZES=10000,100000,1000000` (the random set's sizes);
//! `CAIRN_VECTORS_QUERIES=n` (queries per set, default 200).

mod common;
// Shared with benches/search.rs; this bench uses only its chunk texts and queries.
#[allow(dead_code)]
mod synthetic;

use std::time::{Duration, Instant};

use cairn::ndarray::{Array1, Array2, ArrayView1};
use cairn::{Embedder, HashingEmbedder, VectorIndex};
use common::{Samples, ms, recall, summarize};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use synthetic::Synthetic;

const DIMENSION: usize = 384;
const KS: [usize; 3] = [10, 50, 100];

fn env_list(name: &str, default: &[usize]) -> Vec<usize> {
    std::env::var(name)
        .ok()
        .map(|v| v.split(',').filter_map(|s| s.trim().parse().ok()).collect())
        .filter(|v: &Vec<usize>| !v.is_empty())
        .unwrap_or_else(|| default.to_vec())
}

/// Multiply-adds per second of `top_k_exact` on 64 rows that stay in cache.
fn flop_rate() -> f64 {
    let mut rng = StdRng::seed_from_u64(1);
    let rows = random_rows(&mut rng, 64);
    let index = index_of(&rows);
    let query = rows.row(0).to_owned();
    let reps = 20_000;
    let mut best = Duration::MAX;
    for _ in 0..5 {
        let start = Instant::now();
        for _ in 0..reps {
            std::hint::black_box(index.top_k_exact(query.view(), 1));
        }
        best = best.min(start.elapsed());
    }
    (64 * DIMENSION * reps) as f64 / best.as_secs_f64()
}

/// `n` unit vectors uniform on the sphere (normalized Gaussians, by Box-Muller).
fn random_rows(rng: &mut StdRng, n: usize) -> Array2<f32> {
    let mut rows = Array2::zeros((n, DIMENSION));
    for mut row in rows.rows_mut() {
        for pair in row.as_slice_mut().unwrap().chunks_mut(2) {
            let (u, v): (f64, f64) = (rng.random_range(1e-12..1.0), rng.random());
            let r = (-2.0 * u.ln()).sqrt();
            let angle = std::f64::consts::TAU * v;
            pair[0] = (r * angle.cos()) as f32;
            if let Some(second) = pair.get_mut(1) {
                *second = (r * angle.sin()) as f32;
            }
        }
        let norm = row.dot(&row).sqrt();
        row /= norm;
    }
    rows
}

/// The rows under ids `0..n`, as the vector cache loads them (partition training
/// included); prints the time it took.
fn index_of(rows: &Array2<f32>) -> VectorIndex {
    let start = Instant::now();
    let mut index = VectorIndex::new(rows.ncols());
    for (id, row) in (0..).zip(rows.rows()) {
        index.push(id, row).unwrap();
    }
    println!(
        "indexed {} rows ({} lists, the largest of {} rows) in {}",
        index.len(),
        index.lists(),
        index.largest_list(),
        ms(start.elapsed())
    );
    index
}

fn measure(name: &str, index: &VectorIndex, queries: &[Array1<f32>], floor_rate: f64) {
    let n = index.len();
    let (mut exact_times, mut fast_times) = (Samples::default(), Samples::default());
    let mut recalls = [0.0_f64; KS.len()];
    // One untimed pass warms caches; then exact and fast alternate query by query.
    for q in queries.iter().take(5) {
        std::hint::black_box(index.top_k_exact(q.view(), 100));
        std::hint::black_box(index.top_k(q.view(), 100));
    }
    for q in queries {
        let start = Instant::now();
        let exact = index.top_k_exact(q.view(), 100);
        exact_times.push(start.elapsed());
        let start = Instant::now();
        let fast = index.top_k(q.view(), 100);
        fast_times.push(start.elapsed());
        for (slot, &k) in recalls.iter_mut().zip(&KS) {
            let fast_k = if k == 100 {
                fast.clone()
            } else {
                index.top_k(q.view(), k)
            };
            *slot += recall(&exact[..k.min(exact.len())], &fast_k);
        }
    }
    let nq = queries.len() as f64;
    let floor = Duration::from_secs_f64((n * index.dimension()) as f64 / floor_rate);
    let recall_text: Vec<String> = KS
        .iter()
        .zip(recalls)
        .map(|(k, r)| format!("recall@{k} {:.3}", r / nq))
        .collect();
    summarize(format!(
        "vectors {name}: n = {n}, d = {}, {} queries, k = 100: exact {}; fast {}; exact/fast \
         p50 {:.1}x; arithmetic floor of the exact scan (n·d multiply-adds at the measured \
         rate) {}, exact p50 / floor {:.2}; fast p50 / floor {:.2}; fast path vs exact: {}",
        index.dimension(),
        queries.len(),
        exact_times.describe(),
        fast_times.describe(),
        exact_times.p(50.0).as_secs_f64() / fast_times.p(50.0).as_secs_f64(),
        ms(floor),
        exact_times.p(50.0).as_secs_f64() / floor.as_secs_f64(),
        fast_times.p(50.0).as_secs_f64() / floor.as_secs_f64(),
        recall_text.join(", "),
    ));
    depth_sweep(name, index, queries);
}

/// Recall@10 and @50 of the partitioned path when it scores 1/48 to 1/6 of the rows
/// (the default is 1/`PROBE_SHARE`), and its time.
fn depth_sweep(name: &str, index: &VectorIndex, queries: &[Array1<f32>]) {
    if index.lists() == 0 {
        return;
    }
    let mut parts = Vec::new();
    for share in [48, 24, 12, 6] {
        let rows = index.len() / share;
        let (mut r10, mut r50) = (0.0, 0.0);
        let mut times = Samples::default();
        for q in queries {
            let exact = index.top_k_exact(q.view(), 50);
            let start = Instant::now();
            let fast = index.top_k_probed(q.view(), 50, rows);
            times.push(start.elapsed());
            r50 += recall(&exact, &fast);
            r10 += recall(
                &exact[..10.min(exact.len())],
                &index.top_k_probed(q.view(), 10, rows),
            );
        }
        let nq = queries.len() as f64;
        parts.push(format!(
            "1/{share} of the rows ({rows}) scored: recall@10 {:.3}, @50 {:.3}, p50 {}",
            r10 / nq,
            r50 / nq,
            ms(times.p(50.0))
        ));
    }
    summarize(format!(
        "vectors {name}, {} lists, probe depth: {}",
        index.lists(),
        parts.join("; ")
    ));
}

fn embed_rows(embedder: &HashingEmbedder, texts: &[&str]) -> Array2<f32> {
    let mut rows = Array2::zeros((texts.len(), embedder.dimension()));
    for (batch, mut out) in texts
        .chunks(256)
        .zip(rows.axis_chunks_iter_mut(cairn::ndarray::Axis(0), 256))
    {
        out.assign(&embedder.embed_passages(batch).unwrap());
    }
    rows
}

fn queries_of(rows: &Array2<f32>, n: usize) -> Vec<Array1<f32>> {
    rows.rows()
        .into_iter()
        .take(n)
        .map(|r: ArrayView1<'_, f32>| r.to_owned())
        .collect()
}

fn main() {
    let nq = env_list("CAIRN_VECTORS_QUERIES", &[200])[0];
    let rate = flop_rate();
    summarize(format!(
        "flops: the exact scan's code on 64 in-cache rows of {DIMENSION}: {:.2} G multiply-adds/s \
         (best of 5 runs of 20,000 scans); one core",
        rate / 1e9
    ));

    let syn = Synthetic::new();
    let embedder = HashingEmbedder::new(DIMENSION).unwrap();
    let t = Instant::now();
    let chunks = syn.chunks();
    let texts: Vec<&str> = chunks.iter().map(String::as_str).collect();
    let rows = embed_rows(&embedder, &texts);
    let query_texts: Vec<String> = syn.queries().into_iter().map(|q| q.text).collect();
    let query_refs: Vec<&str> = query_texts.iter().map(String::as_str).collect();
    let queries = queries_of(&embed_rows(&embedder, &query_refs), nq);
    println!("embedded {} chunks in {}", rows.nrows(), ms(t.elapsed()));
    measure(
        "hashing (HashingEmbedder 384 of the synthetic chunks)",
        &index_of(&rows),
        &queries,
        rate,
    );
    drop(rows);

    #[cfg(feature = "model")]
    if let Some((corpus, queries)) = minilm::vectors() {
        let queries = queries_of(&queries, nq.max(200));
        measure(
            "minilm (all-MiniLM-L6-v2 of the LoCoMo turns and HotpotQA paragraphs, queried by their questions)",
            &index_of(&corpus),
            &queries,
            rate,
        );
        let derived = minilm::derived(&corpus, 100_000);
        measure(
            "minilm-derived (100,000 rows made from the real ones), real queries",
            &index_of(&derived),
            &queries,
            rate,
        );
    }

    let mut rng = StdRng::seed_from_u64(7);
    let queries = queries_of(&random_rows(&mut rng, nq), nq);
    for n in env_list("CAIRN_VECTORS_SIZES", &[10_000, 100_000, 1_000_000]) {
        let index = index_of(&random_rows(&mut rng, n));
        measure(
            &format!("random (unit vectors on the sphere) at {n}"),
            &index,
            &queries,
            rate,
        );
    }
    common::print_summary();
}

/// Real all-MiniLM-L6-v2 vectors of the development sets, embedded once per machine.
#[cfg(feature = "model")]
mod minilm {
    use std::path::{Path, PathBuf};
    use std::time::Instant;

    use cairn::ndarray::Array2;
    use cairn::{Embedder, SentenceEmbedder};
    use rand::rngs::StdRng;
    use rand::{Rng, SeedableRng};
    use serde_json::Value;

    use super::{DIMENSION, random_rows};

    /// (corpus, queries) from the cache in `target/minilm-vectors/`, embedding them
    /// first if the cache is missing; `None` without `CAIRN_MODEL` or the data sets.
    pub fn vectors() -> Option<(Array2<f32>, Array2<f32>)> {
        let model = std::env::var("CAIRN_MODEL").ok()?;
        let cache = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/minilm-vectors");
        if let (Some(c), Some(q)) = (
            read(&cache.join("corpus.f32")),
            read(&cache.join("queries.f32")),
        ) {
            return Some((c, q));
        }
        let (passages, questions) = texts()?;
        let embedder = SentenceEmbedder::open(&model).ok()?;
        let start = Instant::now();
        let refs: Vec<&str> = passages.iter().map(String::as_str).collect();
        let corpus = embed(&refs, |batch| embedder.embed_passages(batch).ok());
        let queries = embed(
            &questions.iter().map(String::as_str).collect::<Vec<_>>(),
            |batch| {
                let rows: Option<Vec<_>> =
                    batch.iter().map(|q| embedder.embed_query(q).ok()).collect();
                let rows = rows?;
                let flat: Vec<f32> = rows.iter().flat_map(|r| r.iter().copied()).collect();
                Array2::from_shape_vec((rows.len(), DIMENSION), flat).ok()
            },
        );
        let (corpus, queries) = (corpus?, queries?);
        println!(
            "embedded {} passages and {} questions with {} in {:.1} s",
            corpus.nrows(),
            queries.nrows(),
            embedder.id(),
            start.elapsed().as_secs_f64()
        );
        std::fs::create_dir_all(&cache).ok()?;
        write(&cache.join("corpus.f32"), &corpus)?;
        write(&cache.join("queries.f32"), &queries)?;
        Some((corpus, queries))
    }

    /// `n` rows, each the normalized sum of a real row, 0.3 of another and Gaussian
    /// noise of norm about 0.1.
    pub fn derived(real: &Array2<f32>, n: usize) -> Array2<f32> {
        let mut rng = StdRng::seed_from_u64(11);
        let noise = random_rows(&mut rng, n);
        let mut rows = Array2::zeros((n, DIMENSION));
        for (mut row, noise) in rows.rows_mut().into_iter().zip(noise.rows()) {
            let a = real.row(rng.random_range(0..real.nrows()));
            let b = real.row(rng.random_range(0..real.nrows()));
            row.assign(&(&a + &(&b * 0.3) + &(&noise * 0.1)));
            let norm = row.dot(&row).sqrt();
            row /= norm;
        }
        rows
    }

    fn embed(texts: &[&str], run: impl Fn(&[&str]) -> Option<Array2<f32>>) -> Option<Array2<f32>> {
        let mut rows = Vec::with_capacity(texts.len() * DIMENSION);
        for batch in texts.chunks(32) {
            rows.extend(run(batch)?.iter().copied());
        }
        Array2::from_shape_vec((texts.len(), DIMENSION), rows).ok()
    }

    /// LoCoMo turns and HotpotQA paragraphs (distinct), then both sets' questions.
    fn texts() -> Option<(Vec<String>, Vec<String>)> {
        let data = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/data");
        let locomo: Value =
            serde_json::from_slice(&std::fs::read(data.join("locomo/locomo10.json")).ok()?).ok()?;
        let hotpot: Value = serde_json::from_slice(
            &std::fs::read(data.join("hotpotqa/hotpot_train_100.json")).ok()?,
        )
        .ok()?;
        let (mut passages, mut questions) = (Vec::new(), Vec::new());
        for sample in locomo.as_array()? {
            for (key, session) in sample["conversation"].as_object()? {
                if !key.starts_with("session_") || key.ends_with("date_time") {
                    continue;
                }
                for turn in session.as_array().into_iter().flatten() {
                    if let (Some(speaker), Some(text)) =
                        (turn["speaker"].as_str(), turn["text"].as_str())
                    {
                        passages.push(format!("{speaker}: {text}"));
                    }
                }
            }
            for qa in sample["qa"].as_array().into_iter().flatten() {
                questions.extend(qa["question"].as_str().map(str::to_owned));
            }
        }
        let mut seen = std::collections::HashSet::new();
        for q in hotpot.as_array()? {
            questions.extend(q["question"].as_str().map(str::to_owned));
            for paragraph in q["context"].as_array().into_iter().flatten() {
                let title = paragraph[0].as_str().unwrap_or_default();
                let text: Vec<&str> = paragraph[1]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(Value::as_str)
                    .collect();
                let text = format!("{title}\n{}", text.join(""));
                if seen.insert(text.clone()) {
                    passages.push(text);
                }
            }
        }
        Some((passages, questions))
    }

    fn read(path: &Path) -> Option<Array2<f32>> {
        let bytes = std::fs::read(path).ok()?;
        let values: Vec<f32> = bytes
            .as_chunks::<4>()
            .0
            .iter()
            .map(|b| f32::from_le_bytes(*b))
            .collect();
        Array2::from_shape_vec((values.len() / DIMENSION, DIMENSION), values).ok()
    }

    fn write(path: &Path, rows: &Array2<f32>) -> Option<()> {
        let bytes: Vec<u8> = rows.iter().flat_map(|v| v.to_le_bytes()).collect();
        std::fs::write(path, bytes).ok()
    }
}
