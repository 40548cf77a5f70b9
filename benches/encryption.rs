//! Encrypted vs plain: the cost of encryption at rest (feature `encryption`), as ratios of
//! throughput measured in the same run, the two sides interleaved round by round.
//!
//! Run with `cargo bench --features encryption --bench encryption`. Prints `>>>` lines:
//!
//! 1. `batched_ingest`: 1,000 new triples per `Memory::apply`, 20 batches into a fresh
//!    file, per side and round;
//! 2. `single_writes`: one `add_triple` call per triple (all names new) from 1 and from 4
//!    threads sharing one `Memory`, 500 calls each, into a fresh file;
//! 3. `hybrid_search`: default `search` (BM25 + graph, depth 2, limit 20) over 100 fixed
//!    queries on a memory of 20,000 triples over 10,000 entities, 2,000 observations and
//!    1,000 documents;
//! 4. `open`: the time to open that memory (and, encrypted, to rebuild its index in RAM:
//!    an encrypted memory never writes its index to disk) — and at 5x the size.
//!
//! Ratios are encrypted / plain throughput (target ≥ 0.7). Every file lives in
//! `<target>/cairn-bench/encryption/`. Results: `docs/benchmarks.md`.

mod common;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use cairn::{Batch, Document, Key, Memory, Options, SearchOptions};

const ROUNDS: usize = 3;
const BATCHES: usize = 20;
const BATCH_TRIPLES: usize = 1_000;
const WRITER_THREADS: usize = 4;
const CALLS_PER_THREAD: usize = 500;
const QUERIES: usize = 100;

const WORDS: [&str; 24] = [
    "alpha", "harbor", "copper", "violet", "summit", "lantern", "meadow", "quartz", "river",
    "falcon", "ember", "glacier", "orchard", "signal", "timber", "velvet", "canyon", "beacon",
    "marble", "nectar", "prairie", "saffron", "thunder", "willow",
];
const PREDICATES: [&str; 6] = [
    "works at",
    "knows",
    "founded",
    "based in",
    "invested in",
    "reports to",
];

#[derive(Clone, Copy, PartialEq)]
enum Side {
    Plain,
    Encrypted,
}

impl Side {
    fn options(self) -> Options {
        match self {
            Side::Plain => Options::new(),
            // A raw key: the sides differ by the cipher alone, not by a passphrase's
            // one-off stretching (measured separately in `open`).
            Side::Encrypted => Options::new().key(Key::raw([0x5a; 32])),
        }
    }

    fn name(self) -> &'static str {
        match self {
            Side::Plain => "plain",
            Side::Encrypted => "encrypted",
        }
    }
}

fn dir() -> PathBuf {
    let dir = common::bench_dir().join("encryption");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn fresh(side: Side, name: &str) -> PathBuf {
    let path = dir().join(format!("{name}-{}.db", side.name()));
    common::remove_memory_files(&path);
    let _ = std::fs::remove_file(common::with_suffix(&path, ".lock"));
    path
}

fn name(i: usize, salt: usize) -> String {
    format!(
        "{} {} {i}-{salt}",
        WORDS[i % WORDS.len()],
        WORDS[(i / WORDS.len() + salt) % WORDS.len()]
    )
}

/// Triples per second of `BATCHES` batches of new triples into a fresh file.
fn batched_ingest(side: Side, round: usize) -> f64 {
    let path = fresh(side, "batched");
    let memory = side.options().open(&path).unwrap();
    let mut spent = Duration::ZERO;
    for b in 0..BATCHES {
        let names: Vec<(String, String)> = (0..BATCH_TRIPLES)
            .map(|i| {
                let n = b * BATCH_TRIPLES + i;
                (name(n, round), name(n + 7, round + 1))
            })
            .collect();
        let mut batch = Batch::new();
        for (i, (s, o)) in names.iter().enumerate() {
            batch.triple((s.as_str(), PREDICATES[i % PREDICATES.len()], o.as_str()));
        }
        let start = Instant::now();
        memory.apply(&batch).unwrap();
        spent += start.elapsed();
    }
    (BATCHES * BATCH_TRIPLES) as f64 / spent.as_secs_f64()
}

/// Calls per second of single-triple `add_triple` calls from `threads` threads.
fn single_writes(side: Side, round: usize, threads: usize) -> f64 {
    let path = fresh(side, "single");
    let memory = side.options().open(&path).unwrap();
    let start = Instant::now();
    std::thread::scope(|s| {
        for t in 0..threads {
            let memory = memory.clone();
            s.spawn(move || {
                for i in 0..CALLS_PER_THREAD {
                    let n = t * CALLS_PER_THREAD + i;
                    let (subject, object) = (name(n, round), name(n + 3, round + 2));
                    memory
                        .add_triple((subject.as_str(), PREDICATES[n % 6], object.as_str()))
                        .unwrap();
                }
            });
        }
    });
    (threads * CALLS_PER_THREAD) as f64 / start.elapsed().as_secs_f64()
}

/// Fills a memory: `scale` × (20,000 triples, 2,000 observations, 1,000 documents).
fn build(side: Side, scale: usize) -> PathBuf {
    let path = fresh(side, &format!("search-x{scale}"));
    let memory = side.options().open(&path).unwrap();
    // 10,000 entities per scale step: most triples are new relations.
    let pool = 10_000 * scale;
    for part in 0..scale * 20 {
        let mut batch = Batch::new();
        let names: Vec<(String, String)> = (0..1_000)
            .map(|i| {
                let n = part * 1_000 + i;
                (name(n % pool, 0), name((n * 7 + 11) % pool, 0))
            })
            .collect();
        for (i, (s, o)) in names.iter().enumerate() {
            batch.triple((s.as_str(), PREDICATES[(part + i) % 6], o.as_str()));
        }
        let notes: Vec<(String, String)> = (0..100)
            .map(|i| {
                let n = part * 100 + i;
                let text = format!(
                    "{} is known for {} and {} near the {}",
                    name(n % pool, 0),
                    WORDS[n % 24],
                    WORDS[(n / 3) % 24],
                    WORDS[(n / 7) % 24]
                );
                (name(n % pool, 0), text)
            })
            .collect();
        for (entity, text) in &notes {
            batch.observe(entity.as_str(), text.as_str());
        }
        memory.apply(&batch).unwrap();
        for d in 0..50 {
            let n = part * 50 + d;
            let text = format!(
                "Report {n}. {} met {} at the {} {}. They discussed {} and {} for a while, \
                 then {} left for the {}.",
                name(n % pool, 0),
                name((n * 13) % pool, 0),
                WORDS[n % 24],
                WORDS[(n / 5) % 24],
                WORDS[(n / 2) % 24],
                WORDS[(n / 11) % 24],
                name((n * 3) % pool, 0),
                WORDS[(n / 17) % 24]
            );
            memory.add_document(&Document::new(text.as_str())).unwrap();
        }
    }
    memory.sync().unwrap();
    path
}

fn queries() -> Vec<String> {
    (0..QUERIES)
        .map(|i| match i % 3 {
            0 => name((i * 37) % 5_000, 0),
            1 => format!(
                "who met {} at the {}",
                name((i * 11) % 5_000, 0),
                WORDS[i % 24]
            ),
            _ => format!("{} {}", WORDS[i % 24], WORDS[(i * 5) % 24]),
        })
        .collect()
}

/// Searches per second over the fixed queries, after one warm-up pass.
fn hybrid_search(memory: &Memory, queries: &[String]) -> f64 {
    let options = SearchOptions::new();
    for q in queries {
        memory.search(q, &options).unwrap();
    }
    let start = Instant::now();
    for q in queries {
        memory.search(q, &options).unwrap();
    }
    queries.len() as f64 / start.elapsed().as_secs_f64()
}

/// How long opening the memory at `path` takes until it is searchable.
fn open_time(path: &Path, options: Options) -> Duration {
    let start = Instant::now();
    let memory = options.open(path).unwrap();
    memory.sync_searchable().unwrap();
    let took = start.elapsed();
    drop(memory);
    took
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn report(what: &str, unit: &str, plain: &[f64], encrypted: &[f64]) {
    let (p, e) = (median(plain.to_vec()), median(encrypted.to_vec()));
    println!(
        ">>> {what}: plain {p:.0} {unit}, encrypted {e:.0} {unit} (medians of {} rounds); ratio encrypted/plain {:.2}",
        plain.len(),
        e / p
    );
}

fn main() {
    println!(">>> load average before: {}", common::load_average());

    let (mut plain, mut encrypted) = (Vec::new(), Vec::new());
    for round in 0..ROUNDS {
        plain.push(batched_ingest(Side::Plain, round));
        encrypted.push(batched_ingest(Side::Encrypted, round));
    }
    report("batched_ingest", "triples/s", &plain, &encrypted);

    for threads in [1, WRITER_THREADS] {
        let (mut plain, mut encrypted) = (Vec::new(), Vec::new());
        for round in 0..ROUNDS {
            plain.push(single_writes(Side::Plain, round, threads));
            encrypted.push(single_writes(Side::Encrypted, round, threads));
        }
        let what = format!(
            "single_writes ({threads} thread{})",
            if threads == 1 { "" } else { "s" }
        );
        report(&what, "calls/s", &plain, &encrypted);
    }

    let built = Instant::now();
    let plain_path = build(Side::Plain, 1);
    let encrypted_path = build(Side::Encrypted, 1);
    println!(
        ">>> search memory: 20,000 triple calls, 2,000 observations, 1,000 documents per side (built in {:.1} s)",
        built.elapsed().as_secs_f64()
    );
    let queries = queries();
    let plain_memory = Side::Plain.options().open(&plain_path).unwrap();
    let encrypted_memory = Side::Encrypted.options().open(&encrypted_path).unwrap();
    let (mut plain, mut encrypted) = (Vec::new(), Vec::new());
    for _ in 0..ROUNDS {
        plain.push(hybrid_search(&plain_memory, &queries));
        encrypted.push(hybrid_search(&encrypted_memory, &queries));
    }
    drop((plain_memory, encrypted_memory));
    report("hybrid_search", "searches/s", &plain, &encrypted);

    for scale in [1, 5] {
        let (plain_path, encrypted_path) = if scale == 1 {
            (plain_path.clone(), encrypted_path.clone())
        } else {
            (build(Side::Plain, scale), build(Side::Encrypted, scale))
        };
        let size = std::fs::metadata(&encrypted_path).map_or(0, |m| m.len());
        let stats = Side::Plain
            .options()
            .open(&plain_path)
            .unwrap()
            .stats()
            .unwrap();
        let (mut plain, mut encrypted) = (Vec::new(), Vec::new());
        for _ in 0..ROUNDS {
            plain.push(open_time(&plain_path, Side::Plain.options()).as_secs_f64() * 1e3);
            encrypted
                .push(open_time(&encrypted_path, Side::Encrypted.options()).as_secs_f64() * 1e3);
        }
        println!(
            ">>> open x{scale} ({} entities, {} relations, {} observations, {} chunks; encrypted file {}): plain {:.0} ms (index folder), encrypted {:.0} ms (index rebuilt in RAM) (medians of {ROUNDS})",
            stats.entities,
            stats.relations,
            stats.observations,
            stats.chunks,
            common::mib(size),
            median(plain),
            median(encrypted)
        );
    }
    // A passphrase costs one PBKDF2 derivation (256,000 rounds) per open on top.
    let key = Key::passphrase("a passphrase for the benchmark");
    let path = fresh(Side::Encrypted, "passphrase");
    drop(Options::new().key(key).open(&path).unwrap());
    let again = open_time(
        &path,
        Options::new().key(Key::passphrase("a passphrase for the benchmark")),
    );
    println!(
        ">>> open of an empty memory with a passphrase (one key derivation): {:.0} ms",
        again.as_secs_f64() * 1e3
    );
    println!(">>> load average after: {}", common::load_average());
}
