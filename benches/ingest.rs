//! Ingest and find-or-create throughput, against bare rusqlite on the same schema.
//!
//! Run with `cargo bench --bench ingest`. Four groups:
//!
//! 1. `batched_ingest`: 1,000 new triples per `Memory::apply`, and bare rusqlite writing
//!    the same rows (2 entities, 2 aliases, 1 relation, 3 change rows per triple) in one
//!    transaction with cached statements. Both sides start a fresh file every 100 batches.
//! 2. `single_triple_writes`: one `add_triple` call (= one transaction) per triple, all
//!    names new, from 1, 4 and 8 threads sharing one `Memory` (and 8 threads with
//!    `Durability::Full`); bare rusqlite with one transaction per triple as reference.
//! 3. `ensure_existing`: `ensure_entity` on names that already exist, from 2 threads, and
//!    bare rusqlite point lookups of the alias key (one connection per thread).
//! 4. `duplicate_hammer`: 16 threads x 2,000 `ensure_entity` calls over 500 names spelled
//!    in random variants, on a fresh file each iteration; exactly 500 entities must exist.
//!
//! Every database lives in a temporary directory on disk. After each group a summary line
//! is printed. Its figures are total elements / total timed time over every iteration
//! criterion ran for that benchmark (warm-up included), so both sides of a ratio are
//! measured in the same run, the same way. Results and analysis: `docs/benchmarks.md`.

mod common;

use std::path::Path;
use std::sync::Barrier;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use cairn::{Batch, Durability, Memory, Options};
use common::summarize;
use criterion::{Criterion, SamplingMode, Throughput};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rusqlite::Connection;

/// The schema cairn migrates a new file to; the bare-rusqlite baseline uses it verbatim.
const SCHEMA: &str = include_str!("../src/db/schema/0001_core.sql");

const PREDICATES: [&str; 8] = [
    "works at",
    "knows",
    "founded",
    "acquired",
    "based in",
    "invested in",
    "reports to",
    "partners with",
];

const BATCH_TRIPLES: u64 = 1_000;
const LOOKUP_NAMES: usize = 10_000;
const LOOKUP_THREADS: usize = 2;
const HAMMER_THREADS: usize = 16;
const HAMMER_CALLS_PER_THREAD: usize = 2_000;
const HAMMER_NAMES: usize = 500;

// ----- helpers ---------------------------------------------------------------------

/// Elements done and time spent over every iteration criterion ran for one benchmark.
#[derive(Default)]
struct Tally {
    elapsed: Duration,
    elements: u64,
}

impl Tally {
    fn add(&mut self, elapsed: Duration, elements: u64) {
        self.elapsed += elapsed;
        self.elements += elements;
    }

    fn per_sec(&self) -> f64 {
        self.elements as f64 / self.elapsed.as_secs_f64()
    }

    fn ran(&self) -> bool {
        self.elements > 0 && !self.elapsed.is_zero()
    }
}

/// `1234567.8` → `"1,234,568"`.
fn thousands(x: f64) -> String {
    let digits = format!("{:.0}", x.max(0.0));
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

fn now_millis() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

fn open_memory(dir: &Path, durability: Durability) -> Memory {
    Memory::open_with(dir.join("cairn.db"), Options::new().durability(durability))
        .expect("open cairn memory")
}

/// A plain rusqlite connection with the pragmas cairn uses (WAL, synchronous=NORMAL,
/// foreign_keys=ON, temp_store=MEMORY, 5 s busy timeout, 64 cached statements).
fn bare_connection(path: &Path) -> Connection {
    let conn = Connection::open(path).expect("open bare connection");
    conn.busy_timeout(Duration::from_secs(5)).unwrap();
    conn.set_prepared_statement_cache_capacity(64);
    let mode: String = conn
        .query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))
        .unwrap();
    assert_eq!(mode, "wal");
    conn.execute_batch(
        "PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON; PRAGMA temp_store = MEMORY",
    )
    .unwrap();
    conn
}

/// The share of `total` calls that thread `t` of `threads` makes.
fn share(total: u64, threads: usize, t: usize) -> u64 {
    let threads = threads as u64;
    let t = t as u64;
    total / threads + u64::from(t < total % threads)
}

/// Runs `total` calls split over `threads` threads. Each thread first builds its state
/// with `prepare` (untimed: opens connections, warms statement caches), then all start
/// together; the time is from the first thread's start to the last thread's end.
fn timed_threads<S>(
    threads: usize,
    total: u64,
    prepare: impl Fn(usize) -> S + Sync,
    call: impl Fn(&mut S, usize, u64) + Sync,
) -> Duration {
    let barrier = Barrier::new(threads);
    let spans: Vec<(Instant, Instant)> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                let (barrier, prepare, call) = (&barrier, &prepare, &call);
                s.spawn(move || {
                    let mut state = prepare(t);
                    barrier.wait();
                    let start = Instant::now();
                    for k in 0..share(total, threads, t) {
                        call(&mut state, t, k);
                    }
                    let end = Instant::now();
                    // `state` (connections, handles) is dropped after the clock stopped.
                    (start, end)
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("bench thread panicked"))
            .collect()
    });
    let start = spans.iter().map(|s| s.0).min().unwrap();
    let end = spans.iter().map(|s| s.1).max().unwrap();
    end - start
}

/// Subject and object names of triple `n`: always new.
fn triple_names(n: u64) -> (String, String) {
    (format!("Person {n}"), format!("Company {n}"))
}

fn predicate(n: u64) -> &'static str {
    PREDICATES[(n % PREDICATES.len() as u64) as usize]
}

// ----- 1. batched ingest -----------------------------------------------------------

/// What bare rusqlite writes for one batch: per triple 2 entities, 2 aliases (key =
/// lowercase name), 1 relation and 3 change rows, in one `BEGIN IMMEDIATE` transaction.
fn bare_ingest(
    conn: &Connection,
    triples: &[(String, String)],
    first: u64,
) -> rusqlite::Result<()> {
    conn.execute_batch("BEGIN IMMEDIATE")?;
    let at = now_millis();
    {
        let mut entity = conn.prepare_cached(
            "INSERT INTO entity(name, created_at, updated_at) VALUES (?1, ?2, ?2)",
        )?;
        let mut alias = conn.prepare_cached(
            "INSERT INTO alias(key, entity_id, name, created_at) VALUES (?1, ?2, ?3, ?4)",
        )?;
        let mut relation = conn.prepare_cached(
            "INSERT INTO relation(subject_id, predicate, predicate_key, object_id, first_seen, last_seen)
             VALUES (?1, ?2, ?3, ?4, ?5, ?5)",
        )?;
        let mut change =
            conn.prepare_cached("INSERT INTO change(at, op, target) VALUES (?1, ?2, ?3)")?;
        let mut new_entity = |name: &str| -> rusqlite::Result<i64> {
            entity.execute((name, at))?;
            let id = conn.last_insert_rowid();
            alias.execute((name.to_lowercase(), id, name, at))?;
            change.execute((at, "entity.create", id))?;
            Ok(id)
        };
        let mut ids = Vec::with_capacity(triples.len() * 2);
        for (subject, object) in triples {
            ids.push((new_entity(subject)?, new_entity(object)?));
        }
        for (i, (subject, object)) in ids.into_iter().enumerate() {
            let p = predicate(first + i as u64);
            relation.execute((subject, p, p.to_lowercase(), object, at))?;
            let id = conn.last_insert_rowid();
            change.execute((at, "relation.create", id))?;
        }
    }
    conn.execute_batch("COMMIT")
}

fn batch_names(counter: &AtomicU64) -> (u64, Vec<(String, String)>) {
    let first = counter.fetch_add(BATCH_TRIPLES, Ordering::Relaxed);
    (
        first,
        (first..first + BATCH_TRIPLES).map(triple_names).collect(),
    )
}

/// Batches written into one file before it is replaced by a fresh one (untimed), so both
/// sides of the comparison always write into files holding 0 to 100,000 triples,
/// however many batches criterion asks each of them for.
const BATCHES_PER_FILE: u64 = 100;

/// The current database of one side of the ingest comparison, rotated every
/// [`BATCHES_PER_FILE`] batches.
struct Rotating<T> {
    open: fn(&Path) -> T,
    // Declared before the directory so the connection closes before the files go.
    current: Option<(T, tempfile::TempDir)>,
    batches: u64,
}

impl<T> Rotating<T> {
    fn new(open: fn(&Path) -> T) -> Self {
        Rotating {
            open,
            current: None,
            batches: 0,
        }
    }

    /// The database to write the next batch into.
    fn next(&mut self) -> &T {
        if self.batches.is_multiple_of(BATCHES_PER_FILE) {
            self.current = None;
            let dir = tempfile::tempdir().unwrap();
            self.current = Some(((self.open)(dir.path()), dir));
        }
        self.batches += 1;
        &self.current.as_ref().unwrap().0
    }

    /// Batches written into the current file.
    fn batches_in_file(&self) -> u64 {
        match self.batches % BATCHES_PER_FILE {
            0 if self.batches > 0 => BATCHES_PER_FILE,
            n => n,
        }
    }

    fn get(&self) -> Option<&T> {
        self.current.as_ref().map(|c| &c.0)
    }
}

fn open_bare_ingest(dir: &Path) -> Connection {
    let conn = bare_connection(&dir.join("bare.db"));
    conn.execute_batch(SCHEMA).unwrap();
    conn
}

fn open_cairn_ingest(dir: &Path) -> Memory {
    open_memory(dir, Durability::Normal)
}

fn batched_ingest(c: &mut Criterion) {
    let mut group = c.benchmark_group("batched_ingest");
    group
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(5))
        .sampling_mode(SamplingMode::Flat)
        .throughput(Throughput::Elements(BATCH_TRIPLES));

    let mut memories = Rotating::new(open_cairn_ingest);
    let cairn_counter = AtomicU64::new(0);
    let mut cairn = Tally::default();
    group.bench_function("cairn_apply_1000_new_triples", |b| {
        b.iter_custom(|iters| {
            let mut elapsed = Duration::ZERO;
            for _ in 0..iters {
                let (first, names) = batch_names(&cairn_counter);
                let memory = memories.next();
                let start = Instant::now();
                let mut batch = Batch::new();
                for (i, (s, o)) in names.iter().enumerate() {
                    batch.triple((s.as_str(), predicate(first + i as u64), o.as_str()));
                }
                let report = memory.apply(&batch).expect("apply");
                elapsed += start.elapsed();
                assert_eq!(report.relations.len(), BATCH_TRIPLES as usize);
            }
            cairn.add(elapsed, iters * BATCH_TRIPLES);
            elapsed
        })
    });

    let mut conns = Rotating::new(open_bare_ingest);
    let bare_counter = AtomicU64::new(0);
    let mut bare = Tally::default();
    group.bench_function("bare_rusqlite_1000_new_triples", |b| {
        b.iter_custom(|iters| {
            let mut elapsed = Duration::ZERO;
            for _ in 0..iters {
                let (first, names) = batch_names(&bare_counter);
                let conn = conns.next();
                let start = Instant::now();
                bare_ingest(conn, &names, first).expect("bare ingest");
                elapsed += start.elapsed();
            }
            bare.add(elapsed, iters * BATCH_TRIPLES);
            elapsed
        })
    });
    group.finish();

    if let Some(memory) = memories.get() {
        // Every triple had two new names, so the counts must match exactly.
        let stats = memory.stats().unwrap();
        let triples = memories.batches_in_file() * BATCH_TRIPLES;
        assert_eq!(stats.entities, 2 * triples);
        assert_eq!(stats.aliases, 2 * triples);
        assert_eq!(stats.relations, triples);
        assert_eq!(stats.changes, 3 * triples);
    }
    if let Some(conn) = conns.get() {
        let relations: i64 = conn
            .query_row("SELECT count(*) FROM relation", [], |r| r.get(0))
            .unwrap();
        assert_eq!(relations as u64, conns.batches_in_file() * BATCH_TRIPLES);
    }
    if cairn.ran() && bare.ran() {
        summarize(format!(
            "batched ingest (1,000 new triples per apply, Normal): cairn {} triples/s, \
             bare rusqlite {} triples/s, ratio {:.2} (target >= 50,000 triples/s, ratio >= 0.5; \
             {} vs {} triples written, files rotated every {} triples)",
            thousands(cairn.per_sec()),
            thousands(bare.per_sec()),
            cairn.per_sec() / bare.per_sec(),
            thousands(cairn.elements as f64),
            thousands(bare.elements as f64),
            thousands((BATCHES_PER_FILE * BATCH_TRIPLES) as f64),
        ));
    }
}

// ----- 2. single-triple write calls --------------------------------------------------

fn single_triple_writes(c: &mut Criterion) {
    let mut group = c.benchmark_group("single_triple_writes");
    group
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(4))
        .throughput(Throughput::Elements(1));

    let cases = [
        (1, Durability::Normal),
        (4, Durability::Normal),
        (8, Durability::Normal),
        (8, Durability::Full),
    ];
    let mut results = Vec::new();
    let mut one_thread = f64::NAN;
    for (threads, durability) in cases {
        // A fresh file per case, so every case starts from the same size.
        let dir = tempfile::tempdir().unwrap();
        let memory = open_memory(dir.path(), durability);
        let counter = AtomicU64::new(0);
        let mut tally = Tally::default();
        let label = format!("{threads}_threads_{durability:?}").to_lowercase();
        group.bench_function(&label, |b| {
            b.iter_custom(|iters| {
                let elapsed = timed_threads(
                    threads,
                    iters,
                    |_| {
                        let memory = memory.clone();
                        // Opens this thread's connection before the clock starts.
                        memory.resolve("warm up").unwrap();
                        memory
                    },
                    |memory, _, _| {
                        let n = counter.fetch_add(1, Ordering::Relaxed);
                        let (s, o) = triple_names(n);
                        memory
                            .add_triple((s.as_str(), predicate(n), o.as_str()))
                            .expect("add_triple");
                    },
                );
                tally.add(elapsed, iters);
                elapsed
            })
        });
        if tally.ran() {
            let stats = memory.stats().unwrap();
            let triples = counter.load(Ordering::Relaxed);
            assert_eq!(stats.entities, 2 * triples);
            assert_eq!(stats.relations, triples);
            if threads == 1 {
                one_thread = tally.per_sec();
            }
            results.push(format!(
                "{threads} thread(s) {durability:?} {} triples/s",
                thousands(tally.per_sec())
            ));
        }
    }

    // Reference point: bare rusqlite, 1 thread, the same rows as `bare_ingest` writes for
    // one triple, one `BEGIN IMMEDIATE ... COMMIT` per triple, on a fresh file.
    let dir = tempfile::tempdir().unwrap();
    let conn = open_bare_ingest(dir.path());
    let counter = AtomicU64::new(0);
    let mut bare = Tally::default();
    group.bench_function("bare_rusqlite_1_thread_normal", |b| {
        b.iter_custom(|iters| {
            let start = Instant::now();
            for _ in 0..iters {
                let n = counter.fetch_add(1, Ordering::Relaxed);
                bare_ingest(&conn, &[triple_names(n)], n).expect("bare ingest");
            }
            let elapsed = start.elapsed();
            bare.add(elapsed, iters);
            elapsed
        })
    });
    group.finish();
    if !results.is_empty() {
        let reference = if bare.ran() {
            format!(
                "; bare rusqlite 1 thread, 1 transaction per triple: {} triples/s, \
                 cairn 1 thread / bare = {:.2}",
                thousands(bare.per_sec()),
                one_thread / bare.per_sec()
            )
        } else {
            String::new()
        };
        summarize(format!(
            "single-triple add_triple calls (all names new; each call returns after its commit, concurrent calls share commits): {}{reference} \
             (target >= 15,000 triples/s total at 8 threads Normal)",
            results.join("; ")
        ));
    }
}

// ----- 3. find-or-create of existing names -----------------------------------------

/// A random order over the names, one per thread (the same every run).
fn lookup_orders() -> Vec<Vec<u32>> {
    (0..LOOKUP_THREADS)
        .map(|t| {
            let mut rng = StdRng::seed_from_u64(42 + t as u64);
            (0..1 << 16)
                .map(|_| rng.random_range(0..LOOKUP_NAMES as u32))
                .collect()
        })
        .collect()
}

fn pick_name<'a>(names: &'a [String], order: &[u32], k: u64) -> &'a str {
    &names[order[k as usize % order.len()] as usize]
}

fn ensure_existing(c: &mut Criterion) {
    let mut group = c.benchmark_group("ensure_existing");
    group
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(4))
        .throughput(Throughput::Elements(1));

    let dir = tempfile::tempdir().unwrap();
    let memory = open_memory(dir.path(), Durability::Normal);
    let names: Vec<String> = (0..LOOKUP_NAMES).map(|i| format!("Entity {i}")).collect();
    memory
        .transaction(|| {
            for name in &names {
                memory.ensure_entity(name)?;
            }
            Ok(())
        })
        .unwrap();
    assert_eq!(memory.stats().unwrap().entities, LOOKUP_NAMES as u64);
    let orders = lookup_orders();
    let pick = |t: usize, k: u64| pick_name(&names, &orders[t], k);

    let mut cairn = Tally::default();
    group.bench_function("cairn_ensure_entity_2_threads", |b| {
        b.iter_custom(|iters| {
            let elapsed = timed_threads(
                LOOKUP_THREADS,
                iters,
                |_| {
                    let memory = memory.clone();
                    memory.ensure_entity(&names[0]).unwrap();
                    memory
                },
                |memory, t, k| {
                    std::hint::black_box(memory.ensure_entity(pick(t, k)).expect("ensure"));
                },
            );
            cairn.add(elapsed, iters);
            elapsed
        })
    });

    // Bare rusqlite on the very same file: one connection per thread, the alias key
    // computed with `to_lowercase` (what the names need), a cached point lookup.
    let mut bare = Tally::default();
    group.bench_function("bare_rusqlite_lookup_2_threads", |b| {
        b.iter_custom(|iters| {
            let elapsed = timed_threads(
                LOOKUP_THREADS,
                iters,
                |_| {
                    let conn = bare_connection(memory.path());
                    conn.prepare_cached("SELECT entity_id FROM alias WHERE key = ?1")
                        .unwrap();
                    conn
                },
                |conn, t, k| {
                    let key = pick(t, k).to_lowercase();
                    let id: i64 = conn
                        .prepare_cached("SELECT entity_id FROM alias WHERE key = ?1")
                        .unwrap()
                        .query_row([key], |r| r.get(0))
                        .expect("lookup");
                    std::hint::black_box(id);
                },
            );
            bare.add(elapsed, iters);
            elapsed
        })
    });
    group.finish();

    if cairn.ran() && bare.ran() {
        assert_eq!(memory.stats().unwrap().entities, LOOKUP_NAMES as u64);
        summarize(format!(
            "ensure_entity of existing names ({} names, {LOOKUP_THREADS} threads): cairn {} calls/s, \
             bare rusqlite lookup {} calls/s, ratio {:.2} (target >= 150,000 calls/s, ratio >= 0.6)",
            thousands(LOOKUP_NAMES as f64),
            thousands(cairn.per_sec()),
            thousands(bare.per_sec()),
            cairn.per_sec() / bare.per_sec(),
        ));
    }
}

// ----- 4. the duplicate hammer -------------------------------------------------------

const FIRST_WORDS: [&str; 10] = [
    "Acme",
    "Northwind",
    "Globex",
    "Initech",
    "Umbrella",
    "Stark",
    "Wayne",
    "Tyrell",
    "Cyberdyne",
    "Soylent",
];
const SECOND_WORDS: [&str; 5] = ["Corp", "Holdings", "Labs", "Trading Co", "Group"];

fn hammer_base(i: usize) -> String {
    format!(
        "{} {} {i}",
        FIRST_WORDS[i % FIRST_WORDS.len()],
        SECOND_WORDS[(i / FIRST_WORDS.len()) % SECOND_WORDS.len()]
    )
}

/// The fullwidth form of a printable ASCII character (`A` → `Ａ`).
fn fullwidth(c: char) -> char {
    char::from_u32(c as u32 - 0x21 + 0xFF01).unwrap_or(c)
}

/// A random spelling of `base`: every letter upper or lower case, some letters and digits
/// fullwidth, spaces doubled or replaced by no-break spaces, stray spaces at the ends.
fn variant(base: &str, rng: &mut StdRng) -> String {
    let mut out = String::with_capacity(base.len() * 3);
    if rng.random_bool(0.3) {
        out.push(' ');
    }
    for c in base.chars() {
        if c == ' ' {
            out.push_str(match rng.random_range(0..4) {
                0 => " ",
                1 => "  ",
                2 => "\u{a0}",
                _ => " \u{a0} ",
            });
            continue;
        }
        let c = if rng.random_bool(0.5) {
            c.to_ascii_uppercase()
        } else {
            c.to_ascii_lowercase()
        };
        out.push(if c.is_ascii_alphanumeric() && rng.random_bool(0.25) {
            fullwidth(c)
        } else {
            c
        });
    }
    if rng.random_bool(0.3) {
        out.push_str(" \u{a0}");
    }
    out
}

/// Per thread, the 2,000 spellings it will use, in order: thread `t`, call `k` names
/// entity `(7 t + k) % 500`, so every name is hit by every thread, in different orders.
fn hammer_calls() -> Vec<Vec<String>> {
    let mut rng = StdRng::seed_from_u64(7);
    let bases: Vec<String> = (0..HAMMER_NAMES).map(hammer_base).collect();
    let calls: Vec<Vec<String>> = (0..HAMMER_THREADS)
        .map(|t| {
            (0..HAMMER_CALLS_PER_THREAD)
                .map(|k| variant(&bases[(7 * t + k) % HAMMER_NAMES], &mut rng))
                .collect()
        })
        .collect();
    // Every spelling must reach its base name's key, or the assertion below is moot.
    for (t, thread) in calls.iter().enumerate() {
        for (k, name) in thread.iter().enumerate() {
            let base = &bases[(7 * t + k) % HAMMER_NAMES];
            assert_eq!(
                cairn::normalize_name(name).unwrap(),
                cairn::normalize_name(base).unwrap(),
                "{name:?}"
            );
        }
    }
    calls
}

fn duplicate_hammer(c: &mut Criterion) {
    let total = (HAMMER_THREADS * HAMMER_CALLS_PER_THREAD) as u64;
    let mut group = c.benchmark_group("duplicate_hammer");
    group
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(5))
        .sampling_mode(SamplingMode::Flat)
        .throughput(Throughput::Elements(total));

    let calls = hammer_calls();
    let mut tally = Tally::default();
    let mut files = 0u64;
    group.bench_function("16_threads_x_2000_variant_calls_500_names", |b| {
        b.iter_custom(|iters| {
            let mut elapsed = Duration::ZERO;
            for _ in 0..iters {
                let dir = tempfile::tempdir().unwrap();
                let memory = open_memory(dir.path(), Durability::Normal);
                elapsed += timed_threads(
                    HAMMER_THREADS,
                    total,
                    |_| {
                        let memory = memory.clone();
                        memory.resolve("warm up").unwrap();
                        memory
                    },
                    |memory, t, k| {
                        std::hint::black_box(
                            memory.ensure_entity(&calls[t][k as usize]).expect("ensure"),
                        );
                    },
                );
                let stats = memory.stats().unwrap();
                assert_eq!(
                    stats.entities, HAMMER_NAMES as u64,
                    "duplicate entities were created"
                );
                assert_eq!(stats.aliases, HAMMER_NAMES as u64);
                files += 1;
            }
            tally.add(elapsed, iters * total);
            elapsed
        })
    });
    group.finish();

    if tally.ran() {
        summarize(format!(
            "duplicate hammer ({HAMMER_THREADS} threads x {} ensure_entity calls, {HAMMER_NAMES} names \
             in random spellings, fresh file each): {} calls/s; exactly {HAMMER_NAMES} entities in \
             all {files} files",
            thousands(HAMMER_CALLS_PER_THREAD as f64),
            thousands(tally.per_sec()),
        ));
    }
}

fn main() {
    let mut criterion = Criterion::default().configure_from_args();
    batched_ingest(&mut criterion);
    single_triple_writes(&mut criterion);
    ensure_existing(&mut criterion);
    duplicate_hammer(&mut criterion);
    criterion.final_summary();
    common::print_summary();
}
