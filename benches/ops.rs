//! Operations (issue 5): online backup of a 1 GB memory and what it costs 4 concurrent
//! writers, `verify` quick and full in seconds per GB, and tenant memories: cold open
//! latency and 1,000 tenants touched round-robin through a cache of 64.
//!
//! Run with
//!
//! ```sh
//! CARGO_TARGET_DIR=/tmp/target-bench cargo bench --bench ops
//! ```
//!
//! or, once built, the binary directly (same figures, no cargo on the machine's cores):
//! `/tmp/target-bench/release/deps/ops-<hash>` (`cargo bench --bench ops --no-run`
//! prints its path). Either way the cached dataset lives in `<target>/cairn-bench/`
//! (`$CARGO_TARGET_DIR`, else the target folder the binary is in).
//!
//! Parts, each printing `>>>` summary lines (and all of them again at the end):
//!
//! 1. `dataset`: a memory whose SQLite file holds at least 1.0e9 bytes, written through
//!    the public API in rounds of one `apply` (5,000 triples among 100,000 synthetic
//!    entities and 1,000 observations) and 4 `add_units` calls of 500 units (~1.6 KB of
//!    synthetic text each), until the file reaches the size, waiting for the index
//!    every 10 rounds; `Durability::Normal`, deterministic (seeded). Built once into
//!    `<target>/cairn-bench/ops-1g-v1.db` with a `.done` marker, reused by later runs
//!    (delete both to rebuild); the first run spends several minutes on it and prints
//!    the build time.
//! 2. `verify`: `Memory::verify(Quick)` and `verify(Full)`, a few times each, on a
//!    scratch copy of the dataset (copied just before, so the OS page cache is warm);
//!    median, and seconds per GB (1 GB = 1e9 bytes of the database file). For reference,
//!    SQLite's own `PRAGMA quick_check` and `integrity_check` on the same file through a
//!    bare rusqlite connection (cairn's default page cache and `mmap_size`), once each.
//! 3. `backup`: on the same scratch copy, `Memory::backup` to a file in the same folder
//!    (same disk) with no writers; then 4 writer threads (clones of the same `Memory`,
//!    single `add_triple` / `observe` calls with new names, in turn) for a fixed window
//!    without a backup, then the same writers during one `Memory::backup` (the window is
//!    the whole call: the copy, its fsync, the rename and the destination's
//!    `integrity_check`), then without again. Prints writes/s of each and the ratio of
//!    writes/s during the backup to the mean of the two windows without.
//! 4. `tenants`: in a fresh folder, creates N tenant memories (20 triples and 5
//!    observations each) through `Tenants`, then
//!    (a) cold `Tenants::get` of a tenant that is not open: each batch of 50 opens uses a
//!    fresh `Tenants` whose cache has room, so every measured `get` opens the file and
//!    none closes another; also `get` plus a first `resolve`, and the mean close; beside
//!    it the floor, a bare rusqlite open of a tenant's file plus one query of its schema
//!    version, and the ratio of the two;
//!    (b) closing one memory (`Memory::open_with`, one call, then the timed drop of the
//!    last handle) after a `resolve`, after an `add_triple`, and after an `add_triple`
//!    and a read-your-writes search (its index open);
//!    (c) the process's threads, resident memory and open descriptors with 64 tenants
//!    open, only read, then also written, searched and synced, then idle 5 s later (and
//!    the CPU the idle process uses in 3 s), per open memory against the process before
//!    (and the threads by name);
//!    (d) all N tenants touched round-robin through one `Tenants` with a cache of 64
//!    after one untimed pass, a touch being `get` + one `resolve` (a read), `get` + one
//!    `add_triple` (a write), or `get` + one `search`; for comparison, the first 64
//!    tenants touched the same way (every `get` a cache hit). The round-robin runs from
//!    1 thread and from 4 threads sharing the `Tenants`. Round-robin over more tenants
//!    than an LRU cache holds misses on every touch, so (d) is an open plus a close of
//!    the least recently used memory per touch;
//!    (e) `Tenants::list` of a directory of 10,000 tenants (hard links to one tenant's
//!    file, each with a lock file and an index folder).
//!    The load average is printed before and after.
//!
//! Scratch copies and tenant folders are created under `<target>/cairn-bench/` (the
//! same disk as the dataset, not tmpfs) and deleted afterwards.
//!
//! Environment (for a quick smoke run, e.g. `CAIRN_BENCH_OPS_GB=0.05
//! CAIRN_BENCH_TENANTS=100 CAIRN_BENCH_OPS_WINDOW_SECS=2`):
//!
//! - `CAIRN_BENCH_OPS=verify,backup,tenants`: the parts to run (default all);
//! - `CAIRN_BENCH_OPS_GB=1`: the dataset's minimum size in GB; other sizes are cached
//!   under their own name (`ops-0.05g-v1.db`);
//! - `CAIRN_BENCH_OPS_WINDOW_SECS=10`: each writer window without a backup;
//! - `CAIRN_BENCH_OPS_REPS=3`: runs of each `verify` mode;
//! - `CAIRN_BENCH_TENANTS=1000`, `CAIRN_BENCH_TENANT_PASSES=3` (timed round-robin
//!   passes), `CAIRN_BENCH_COLD_OPENS=500` (measured cold opens and closes of each kind,
//!   at least 200 for a p99), `CAIRN_BENCH_LIST_TENANTS=10000` (tenants for `list`).
//!
//! On the 2-core machine of `docs/benchmarks.md`, building the 1 GB dataset took about
//! 14 minutes (most of it waiting for the search index), and a run on the cached dataset
//! about 7 minutes. Percentiles are nearest-rank over the samples of this run.

mod common;
// Only the names and words of the synthetic memory are used here.
#[allow(dead_code)]
mod synthetic;

use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Barrier;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use cairn::{
    BackupReport, Batch, Durability, Memory, Options, SearchOptions, Tenants, Unit, VerifyMode,
};
use common::{
    Samples, bench_dir, copy_memory, dir_size, load_average, machine, mib, ms, print_summary,
    proc_memory, remove_memory_files, summarize, sync_fully, with_suffix,
};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rusqlite::{Connection, OpenFlags};
use synthetic::{PREDICATES, Synthetic};

/// Bump when the dataset's content changes; cached files are named after it.
const DATASET_VERSION: u32 = 1;
const SEED: u64 = 0x00ca_1262_0005;
const GB: f64 = 1e9;

/// One round of the dataset: one `apply` of triples and observations ...
const ROUND_TRIPLES: usize = 5_000;
const ROUND_OBSERVATIONS: usize = 1_000;
/// ... and this many `add_units` calls ...
const ROUND_DOCUMENTS: usize = 4;
/// ... of this many units ...
const UNITS_PER_DOCUMENT: usize = 500;
/// ... each made of this many synthetic paragraphs of 40–80 words.
const PARAGRAPHS_PER_UNIT: usize = 4;
/// Probability that a triple's end is one of the synthetic hub entities.
const HUB_P: f64 = 0.01;
/// The build waits for the index every this many rounds, so the indexer's backlog stays
/// short.
const SYNC_EVERY_ROUNDS: u64 = 10;

const WRITERS: usize = 4;
/// Writers run this long after they start before their calls are counted.
const WRITER_WARM_UP: Duration = Duration::from_millis(500);

/// The cache of the round-robin measurement.
const TENANT_CACHE: usize = 64;
/// Cold opens per fresh `Tenants` (below its capacity: no open closes another).
const COLD_BATCH: usize = 50;
const TENANT_TRIPLES: usize = 20;
const TENANT_OBSERVATIONS: usize = 5;

// ----- configuration ------------------------------------------------------------------

fn env_or<T: FromStr>(name: &str, default: T) -> T {
    match std::env::var(name) {
        Ok(v) if !v.trim().is_empty() => v
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("{name}={v:?} does not parse")),
        _ => default,
    }
}

struct Config {
    parts: Vec<String>,
    gb: f64,
    window: Duration,
    verify_reps: usize,
    tenants: usize,
    tenant_passes: usize,
    cold_opens: usize,
    /// Tenants on disk for the `list` measurement.
    list_tenants: usize,
}

impl Config {
    fn from_env() -> Config {
        let parts: String = env_or("CAIRN_BENCH_OPS", "verify,backup,tenants".to_owned());
        Config {
            parts: parts.split(',').map(|s| s.trim().to_owned()).collect(),
            gb: env_or("CAIRN_BENCH_OPS_GB", 1.0),
            window: Duration::from_secs_f64(env_or("CAIRN_BENCH_OPS_WINDOW_SECS", 10.0)),
            verify_reps: env_or("CAIRN_BENCH_OPS_REPS", 3usize).max(1),
            tenants: env_or("CAIRN_BENCH_TENANTS", 1000usize).max(1),
            tenant_passes: env_or("CAIRN_BENCH_TENANT_PASSES", 3usize).max(1),
            cold_opens: env_or("CAIRN_BENCH_COLD_OPENS", 500usize).max(1),
            list_tenants: env_or("CAIRN_BENCH_LIST_TENANTS", 10_000usize).max(1),
        }
    }

    fn part(&self, name: &str) -> bool {
        self.parts.iter().any(|p| p == name)
    }

    fn target_bytes(&self) -> u64 {
        (self.gb * GB) as u64
    }
}

fn options() -> Options {
    Options::new().durability(Durability::Normal)
}

fn open(db: &Path) -> Memory {
    Memory::open_with(db, options()).expect("open memory")
}

fn gb(bytes: u64) -> f64 {
    bytes as f64 / GB
}

fn per_sec(n: u64, elapsed: Duration) -> f64 {
    n as f64 / elapsed.as_secs_f64().max(1e-9)
}

// ----- 1. the dataset -----------------------------------------------------------------

/// What one round writes: triples and observations (entity indices into the synthetic
/// names) and the units of its documents.
struct Round {
    triples: Vec<(usize, &'static str, usize)>,
    observations: Vec<(usize, String)>,
    documents: Vec<Vec<String>>,
}

fn generate_round(syn: &Synthetic, round: u64) -> Round {
    let mut rng = StdRng::seed_from_u64(SEED ^ round.wrapping_mul(0x9e37_79b9_7f4a_7c15));
    let triples = (0..ROUND_TRIPLES)
        .map(|_| {
            let subject = syn.pick_entity(&mut rng, HUB_P);
            let mut object = syn.pick_entity(&mut rng, HUB_P);
            while object == subject {
                object = syn.pick_entity(&mut rng, HUB_P);
            }
            let predicate = PREDICATES[rng.random_range(0..PREDICATES.len())];
            (subject, predicate, object)
        })
        .collect();
    let observations = (0..ROUND_OBSERVATIONS)
        .map(|_| {
            let entity = syn.pick_entity(&mut rng, HUB_P);
            let words = rng.random_range(10..=30);
            let text: Vec<&str> = (0..words).map(|_| syn.text_word(&mut rng)).collect();
            (entity, text.join(" "))
        })
        .collect();
    let documents = (0..ROUND_DOCUMENTS)
        .map(|_| {
            (0..UNITS_PER_DOCUMENT)
                .map(|_| {
                    let paragraphs: Vec<String> = (0..PARAGRAPHS_PER_UNIT)
                        .map(|_| syn.chunk_text(&mut rng))
                        .collect();
                    paragraphs.join("\n\n")
                })
                .collect()
        })
        .collect();
    Round {
        triples,
        observations,
        documents,
    }
}

fn write_round(memory: &Memory, syn: &Synthetic, round: u64, content: &Round) {
    let name = |i: usize| syn.entities[i].as_str();
    let mut batch = Batch::new();
    for &(subject, predicate, object) in &content.triples {
        batch.triple((name(subject), predicate, name(object)));
    }
    for (entity, text) in &content.observations {
        batch.observe(name(*entity), text.as_str());
    }
    memory.apply(&batch).expect("apply");
    for (d, texts) in content.documents.iter().enumerate() {
        let units: Vec<Unit> = texts.iter().map(|t| Unit::new(t.as_str())).collect();
        memory
            .add_units(&format!("ops/{round}/{d}"), &units)
            .expect("add_units");
    }
}

/// The database's size as of its newest commit (WAL included): `page_count × page_size`.
fn logical_bytes(conn: &Connection) -> u64 {
    conn.query_row(
        "SELECT page_count * page_size FROM pragma_page_count(), pragma_page_size()",
        [],
        |r| r.get::<_, i64>(0),
    )
    .expect("page_count") as u64
}

fn dataset_path(cfg: &Config) -> PathBuf {
    bench_dir().join(format!("ops-{}g-v{DATASET_VERSION}.db", cfg.gb))
}

/// The cached dataset, built if it is missing, unfinished or too small.
fn ensure_dataset(cfg: &Config) -> PathBuf {
    let db = dataset_path(cfg);
    let done = with_suffix(&db, ".done");
    let size = dir_size(&db);
    if done.exists() && size >= cfg.target_bytes() {
        let built = std::fs::read_to_string(&done).unwrap_or_default();
        summarize(format!(
            "dataset: reused {} ({size} bytes = {:.3} GB, index {}; delete it and its .done \
             to rebuild); built by an earlier run: {}",
            db.display(),
            gb(size),
            mib(dir_size(&with_suffix(&db, ".index"))),
            built.trim(),
        ));
        return db;
    }
    build_dataset(&db, cfg.target_bytes());
    db
}

/// Time spent building the dataset, by activity.
#[derive(Default)]
struct BuildTimes {
    rounds: u64,
    generating: Duration,
    writing: Duration,
    waiting_for_index: Duration,
}

/// Writes rounds until the file reaches `target` bytes, waiting for the index every
/// `SYNC_EVERY_ROUNDS` rounds and at the end.
fn load_rounds(memory: &Memory, target: u64) -> BuildTimes {
    let start = Instant::now();
    let syn = Synthetic::new();
    let size = Connection::open_with_flags(memory.path(), OpenFlags::SQLITE_OPEN_READ_ONLY)
        .expect("open a size reader");
    let mut times = BuildTimes::default();
    while logical_bytes(&size) < target {
        let t = Instant::now();
        let content = generate_round(&syn, times.rounds);
        times.generating += t.elapsed();
        let t = Instant::now();
        write_round(memory, &syn, times.rounds, &content);
        times.writing += t.elapsed();
        times.rounds += 1;
        if times.rounds.is_multiple_of(SYNC_EVERY_ROUNDS) {
            times.waiting_for_index += sync_fully(memory);
            print_build_progress(times.rounds, logical_bytes(&size), target, start.elapsed());
        }
    }
    times.waiting_for_index += sync_fully(memory);
    times
}

fn build_dataset(db: &Path, target: u64) {
    std::fs::create_dir_all(db.parent().unwrap()).unwrap();
    remove_memory_files(db);
    println!("building {} (at least {target} bytes) ...", db.display());
    let start = Instant::now();
    let memory = open(db);
    let times = load_rounds(&memory, target);
    let stats = memory.stats().unwrap();
    // Closing checkpoints the WAL into the file.
    drop(memory);
    let total = start.elapsed();
    let bytes = dir_size(db);
    assert!(
        bytes >= target,
        "{} holds {bytes} bytes after closing, less than {target} (WAL left: {} bytes)",
        db.display(),
        dir_size(&with_suffix(db, "-wal")),
    );
    let line = format!(
        "{} rounds in {:.0} s: {:.0} s writing through the API, {:.0} s generating text, \
         {:.0} s waiting for the index (sync every {SYNC_EVERY_ROUNDS} rounds and at the end); \
         {bytes} bytes = {:.3} GB, index {}; {stats:?}",
        times.rounds,
        total.as_secs_f64(),
        times.writing.as_secs_f64(),
        times.generating.as_secs_f64(),
        times.waiting_for_index.as_secs_f64(),
        gb(bytes),
        mib(dir_size(&with_suffix(db, ".index"))),
    );
    std::fs::write(with_suffix(db, ".done"), format!("{line}\n")).unwrap();
    summarize(format!("dataset: built {}: {line}", db.display()));
}

fn print_build_progress(rounds: u64, bytes: u64, target: u64, elapsed: Duration) {
    println!(
        "  {rounds} rounds: {} of {} in {:.0} s ({:.1} MB/s)",
        mib(bytes),
        mib(target),
        elapsed.as_secs_f64(),
        bytes as f64 / 1e6 / elapsed.as_secs_f64()
    );
}

/// A scratch copy of the dataset in `work`, opened, its index caught up.
fn open_scratch_copy(db: &Path, work: &Path) -> Memory {
    let _ = std::fs::remove_dir_all(work);
    std::fs::create_dir_all(work).unwrap();
    let copy = work.join("ops.db");
    let t = Instant::now();
    copy_memory(db, &copy).expect("copy the dataset");
    println!(
        "copied the dataset to {} in {}",
        copy.display(),
        ms(t.elapsed())
    );
    let memory = open(&copy);
    sync_fully(&memory);
    memory
}

// ----- 2. verify ----------------------------------------------------------------------

fn verify_part(memory: &Memory, reps: usize) {
    let bytes = dir_size(memory.path());
    let wal = dir_size(&with_suffix(memory.path(), "-wal"));
    for mode in [VerifyMode::Quick, VerifyMode::Full] {
        let mut times = Samples::default();
        let mut compared = true;
        for _ in 0..reps {
            let t = Instant::now();
            let report = memory.verify(mode).expect("verify");
            times.push(t.elapsed());
            assert!(report.is_ok(), "{mode:?}: {:?}", report.problems);
            compared &= report.index_compared;
        }
        let median = times.p(50.0).as_secs_f64();
        let runs: Vec<String> = times
            .0
            .iter()
            .map(|d| format!("{:.2}", d.as_secs_f64()))
            .collect();
        summarize(format!(
            "verify {mode:?}: median {median:.2} s of {reps} runs ({} s) on a {bytes}-byte file \
             ({:.3} GB; WAL {wal} bytes) = {:.2} s/GB; no problems{}; OS page cache warm (the \
             file was copied just before)",
            runs.join(", "),
            gb(bytes),
            median / gb(bytes),
            match (mode, compared) {
                (VerifyMode::Full, true) => ", index counts compared",
                (VerifyMode::Full, false) => ", index counts NOT compared",
                _ => "",
            },
        ));
    }
}

/// Seconds a bare read-only connection, with cairn's default page cache and memory
/// mapping, takes to run `pragma` on `db` and read all its result lines (which must be
/// `ok`).
fn bare_pragma_secs(db: &Path, pragma: &str) -> f64 {
    let conn = Connection::open_with_flags(db, OpenFlags::SQLITE_OPEN_READ_ONLY).unwrap();
    conn.execute_batch("PRAGMA cache_size = -16384; PRAGMA mmap_size = 1073741824;")
        .unwrap();
    let start = Instant::now();
    let mut stmt = conn.prepare(&format!("PRAGMA {pragma}")).unwrap();
    let lines: Vec<String> = stmt
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<rusqlite::Result<_>>()
        .unwrap();
    let secs = start.elapsed().as_secs_f64();
    assert_eq!(lines, ["ok"], "PRAGMA {pragma}");
    secs
}

fn bare_sqlite_reference(db: &Path) {
    let bytes = dir_size(db);
    let checks: Vec<String> = ["quick_check", "integrity_check"]
        .iter()
        .map(|pragma| {
            let secs = bare_pragma_secs(db, pragma);
            format!("PRAGMA {pragma} {secs:.2} s = {:.2} s/GB", secs / gb(bytes))
        })
        .collect();
    summarize(format!(
        "for reference, bare SQLite on the same file (a read-only rusqlite connection with \
         cairn's default 16 MiB page cache and 1 GiB mmap_size), once each: {}",
        checks.join("; ")
    ));
}

// ----- 3. backup under writers ----------------------------------------------------------

#[derive(Default)]
struct WriteCounts {
    calls: AtomicU64,
    errors: AtomicU64,
}

/// One writer's loop: in turn a triple between two new names, then an observation about
/// the second (so each call writes one new entity at least).
fn writer(memory: &Memory, label: &str, t: usize, stop: &AtomicBool, counts: &WriteCounts) {
    let item = |n: u64| format!("{label} writer {t} item {n}");
    let mut n = 0u64;
    while !stop.load(Ordering::Relaxed) {
        let result = if n.is_multiple_of(2) {
            memory
                .add_triple((item(n).as_str(), "precedes", item(n + 1).as_str()))
                .map(drop)
        } else {
            let text = format!("written by {label} writer {t} as call {n} of its loop");
            memory.observe(item(n).as_str(), &text).map(drop)
        };
        match result {
            Ok(()) => {
                counts.calls.fetch_add(1, Ordering::Relaxed);
            }
            Err(e) => {
                if counts.errors.fetch_add(1, Ordering::Relaxed) < 5 {
                    eprintln!("writer {t}: {e}");
                }
            }
        }
        n += 1;
    }
}

/// What the writers did while `during` ran.
struct WriterWindow<R> {
    result: R,
    elapsed: Duration,
    calls: u64,
    errors: u64,
}

impl<R> WriterWindow<R> {
    fn rate(&self) -> f64 {
        per_sec(self.calls, self.elapsed)
    }
}

/// Runs `during` on this thread while `WRITERS` threads write through clones of
/// `memory`; counts only the calls that completed while `during` ran (the writers start
/// `WRITER_WARM_UP` earlier). Waits for the index to catch up afterwards, so the next
/// measurement does not pay for this one's indexing.
fn with_writers<R>(memory: &Memory, label: &str, during: impl FnOnce() -> R) -> WriterWindow<R> {
    let stop = AtomicBool::new(false);
    let counts = WriteCounts::default();
    let barrier = Barrier::new(WRITERS + 1);
    let window = std::thread::scope(|s| {
        for t in 0..WRITERS {
            let (memory, stop, counts, barrier) = (memory.clone(), &stop, &counts, &barrier);
            s.spawn(move || {
                // Opens this thread's connection before the writes start.
                memory.resolve("warm up").unwrap();
                barrier.wait();
                writer(&memory, label, t, stop, counts);
            });
        }
        barrier.wait();
        std::thread::sleep(WRITER_WARM_UP);
        let (calls, errors) = (
            counts.calls.load(Ordering::Relaxed),
            counts.errors.load(Ordering::Relaxed),
        );
        let start = Instant::now();
        let result = during();
        let elapsed = start.elapsed();
        let window = WriterWindow {
            result,
            elapsed,
            calls: counts.calls.load(Ordering::Relaxed) - calls,
            errors: counts.errors.load(Ordering::Relaxed) - errors,
        };
        stop.store(true, Ordering::Relaxed);
        window
    });
    sync_fully(memory);
    window
}

/// `Memory::backup` to `dest`, timed by the wall clock; the backup is deleted afterwards.
fn timed_backup(memory: &Memory, dest: &Path) -> (BackupReport, Duration) {
    let start = Instant::now();
    let report = memory.backup(dest).expect("backup");
    let wall = start.elapsed();
    remove_memory_files(dest);
    (report, wall)
}

fn describe_backup(report: &BackupReport, wall: Duration) -> String {
    format!(
        "{:.2} s wall clock for the whole call ({:.2} s copying, the rest fsync, rename and \
         the destination's integrity_check), {} bytes = {:.3} GB, {:.0} MB/s over the whole \
         call",
        wall.as_secs_f64(),
        report.copy_time.as_secs_f64(),
        report.bytes,
        gb(report.bytes),
        report.bytes as f64 / 1e6 / wall.as_secs_f64(),
    )
}

fn describe_writers<R>(window: &WriterWindow<R>) -> String {
    format!(
        "{:.0} writes/s ({} calls in {:.2} s, {} errors)",
        window.rate(),
        window.calls,
        window.elapsed.as_secs_f64(),
        window.errors
    )
}

fn backup_part(memory: &Memory, work: &Path, window: Duration) {
    let dest = work.join("backup.db");
    let (report, wall) = timed_backup(memory, &dest);
    summarize(format!(
        "backup alone (no writers) of a {}-byte file to the same disk: {}",
        dir_size(memory.path()),
        describe_backup(&report, wall)
    ));

    let before = with_writers(memory, "before", || std::thread::sleep(window));
    let during = with_writers(memory, "during", || timed_backup(memory, &dest));
    let wal_after = dir_size(&with_suffix(memory.path(), "-wal"));
    let after = with_writers(memory, "after", || std::thread::sleep(window));
    let (report, wall) = &during.result;
    let without = (before.rate() + after.rate()) / 2.0;
    summarize(format!(
        "backup with {WRITERS} writer threads running (single add_triple / observe calls, new \
         names): {}",
        describe_backup(report, *wall)
    ));
    summarize(format!(
        "{WRITERS} writers: without backup {} before and {} after (mean {without:.0} writes/s); \
         during the backup {}; ratio during / without = {:.2}; WAL after the backup window \
         {}",
        describe_writers(&before),
        describe_writers(&after),
        describe_writers(&during),
        during.rate() / without,
        mib(wal_after),
    ));
}

// ----- 4. tenants -------------------------------------------------------------------------

fn tenant_ids(n: usize) -> Vec<String> {
    (0..n).map(|i| format!("tenant-{i:05}")).collect()
}

/// A tenant's initial data: the same shape for every tenant; `Member 0` always exists.
fn tenant_batch(tenant: usize) -> Batch<'static> {
    let mut batch = Batch::new();
    for k in 0..TENANT_TRIPLES {
        batch.triple((
            format!("Member {k}"),
            PREDICATES[(tenant + k) % PREDICATES.len()],
            format!("Project {}", k % 7),
        ));
    }
    for k in 0..TENANT_OBSERVATIONS {
        batch.observe(
            format!("Member {k}"),
            format!("Member {k} of tenant {tenant} joined in year {}", 2000 + k),
        );
    }
    batch
}

fn create_tenants(dir: &Path, ids: &[String]) {
    let start = Instant::now();
    let tenants = Tenants::open_with(dir, options(), TENANT_CACHE).unwrap();
    for (i, id) in ids.iter().enumerate() {
        let memory = tenants.create(id).expect("create tenant");
        memory.apply(&tenant_batch(i)).expect("tenant data");
        sync_fully(&memory);
        if (i + 1) % 200 == 0 {
            println!(
                "  {} tenants created in {:.1} s",
                i + 1,
                start.elapsed().as_secs_f64()
            );
        }
    }
    drop(tenants);
    let elapsed = start.elapsed();
    let bytes = dir_size(dir);
    summarize(format!(
        "tenants: created {} (each {TENANT_TRIPLES} triples, {TENANT_OBSERVATIONS} observations, \
         one apply, index synced) in {:.1} s = {:.0} tenants/s; {} on disk, {:.0} KiB per \
         tenant (file, WAL and index)",
        ids.len(),
        elapsed.as_secs_f64(),
        per_sec(ids.len() as u64, elapsed),
        mib(bytes),
        bytes as f64 / 1024.0 / ids.len() as f64,
    ));
}

/// The floor of a cold open: a bare rusqlite connection to a tenant's file (no cairn
/// pragmas) and one query of its schema version, then closing it.
fn bare_opens(ids: &[String], dir: &Path, samples: usize) -> Samples {
    let mut opens = Samples::default();
    for k in 0..samples {
        let path = dir.join(format!("{}.db", ids[k % ids.len()]));
        let start = Instant::now();
        let conn = Connection::open_with_flags(&path, OpenFlags::SQLITE_OPEN_READ_WRITE).unwrap();
        let version: i64 = conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .unwrap();
        assert!(version > 0);
        opens.push(start.elapsed());
        drop(conn);
    }
    opens
}

/// The floor of a written touch: a bare rusqlite connection to a tenant's file, one
/// small write transaction in WAL mode with `synchronous=NORMAL`, then closing it (the
/// last connection: SQLite checkpoints and deletes the WAL). Scratch copies of the first
/// tenants, so the tenants stay as they are.
fn bare_write_cycles(ids: &[String], dir: &Path, samples: usize) -> Samples {
    let scratch = tempfile::Builder::new()
        .prefix("ops-bare-")
        .tempdir_in(bench_dir())
        .unwrap();
    let copies: Vec<PathBuf> = ids
        .iter()
        .take(50)
        .map(|id| {
            let to = scratch.path().join(format!("{id}.db"));
            std::fs::copy(dir.join(format!("{id}.db")), &to).unwrap();
            to
        })
        .collect();
    let mut cycles = Samples::default();
    for k in 0..samples {
        let start = Instant::now();
        let conn = Connection::open_with_flags(
            &copies[k % copies.len()],
            OpenFlags::SQLITE_OPEN_READ_WRITE,
        )
        .unwrap();
        conn.pragma_update(None, "synchronous", "NORMAL").unwrap();
        conn.execute(
            "INSERT INTO meta(key, value) VALUES ('bench', ?1)
             ON CONFLICT(key) DO UPDATE SET value = excluded.value",
            [k as i64],
        )
        .unwrap();
        drop(conn);
        cycles.push(start.elapsed());
    }
    cycles
}

/// Cold `get`s: batches of fresh `Tenants` whose cache has room, so every `get` opens a
/// memory that is not open in this process and none closes another.
fn cold_opens(dir: &Path, ids: &[String], samples: usize) {
    let bare = bare_opens(ids, dir, samples);
    let batch = COLD_BATCH.min(ids.len());
    let (mut get, mut get_and_resolve) = (Samples::default(), Samples::default());
    let (mut closing, mut closed) = (Duration::ZERO, 0usize);
    let mut next = 0usize;
    while get.0.len() < samples {
        let tenants = Tenants::open_with(dir, options(), TENANT_CACHE).unwrap();
        for _ in 0..batch.min(samples - get.0.len()) {
            let id = &ids[next % ids.len()];
            next += 1;
            let start = Instant::now();
            let memory = tenants.get(id).expect("get");
            get.push(start.elapsed());
            assert!(memory.resolve("Member 0").unwrap().is_some());
            get_and_resolve.push(start.elapsed());
            closed += 1;
        }
        let t = Instant::now();
        drop(tenants);
        closing += t.elapsed();
    }
    summarize(format!(
        "tenant cold open (Tenants::get of a tenant not open in the process, cache not full, \
         OS page cache warm): {}; get + a first resolve: {}; closing (dropping the Tenants) \
         {} per memory",
        get.describe(),
        get_and_resolve.describe(),
        ms(closing / closed.max(1) as u32),
    ));
    summarize(format!(
        "the floor: a bare rusqlite open of a tenant's file + one query (PRAGMA \
         user_version): {}; cold Tenants::get / bare, p50 {:.2}, p99 {:.2}",
        bare.describe(),
        get.p(50.0).as_secs_f64() / bare.p(50.0).as_secs_f64(),
        get.p(99.0).as_secs_f64() / bare.p(99.0).as_secs_f64(),
    ));
    summarize(format!(
        "the floor of a written touch: a bare rusqlite open + one INSERT (WAL, NORMAL) + \
         close, no cairn: {}",
        bare_write_cycles(ids, dir, samples).describe(),
    ));
}

/// Closing one memory (dropping its last handle) after a read, after a write, and after
/// a write and a search (its index open, tantivy's writer held): `samples` of each, each
/// memory opened with `Memory::open_with` just before.
fn closes(dir: &Path, ids: &[String], samples: usize) {
    for (what, touch) in [
        ("a resolve", Touch::Resolve),
        ("an add_triple", Touch::AddTriple),
        ("an add_triple and a read-your-writes search", Touch::Search),
    ] {
        let mut close = Samples::default();
        for k in 0..samples {
            let path = dir.join(format!("{}.db", ids[k % ids.len()]));
            let memory = Memory::open_with(&path, options()).expect("open");
            match touch {
                Touch::Resolve => Touch::Resolve.run(&memory, 0),
                Touch::AddTriple => Touch::AddTriple.run(&memory, 1_000_000 + k),
                Touch::Search => {
                    Touch::AddTriple.run(&memory, 2_000_000 + k);
                    let found = memory
                        .search(
                            "visitor",
                            &SearchOptions::new().read_your_writes(true).depth(0),
                        )
                        .expect("search");
                    assert!(!found.is_empty());
                }
            }
            let start = Instant::now();
            drop(memory);
            close.push(start.elapsed());
        }
        summarize(format!(
            "close of a memory (its last handle dropped) after {what}: {}",
            close.describe()
        ));
    }
}

/// Threads, resident memory and open descriptors of this process.
#[derive(Clone, Copy)]
struct Footprint {
    threads: usize,
    rss: u64,
    fds: usize,
}

impl Footprint {
    fn now() -> Footprint {
        let count = |dir: &str| std::fs::read_dir(dir).map_or(0, |d| d.count());
        Footprint {
            threads: count("/proc/self/task"),
            rss: proc_memory("self", "VmRSS").unwrap_or(0),
            fds: count("/proc/self/fd"),
        }
    }

    fn describe(&self, base: &Footprint, open: usize) -> String {
        let per = |now: f64, base: f64| (now - base) / open.max(1) as f64;
        format!(
            "{} threads, RSS {}, {} fds; per open memory {:+.2} threads, {:+.0} KiB RSS, \
             {:+.2} fds",
            self.threads,
            mib(self.rss),
            self.fds,
            per(self.threads as f64, base.threads as f64),
            per(self.rss as f64, base.rss as f64) / 1024.0,
            per(self.fds as f64, base.fds as f64),
        )
    }
}

/// User plus system CPU time of this process so far (`/proc/self/stat`, 100 ticks/s).
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // After the command name in parentheses: state is field 3, utime 14, stime 15.
    let rest = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    (ticks(11) + ticks(12)) / 100.0
}

/// The process's threads by name (`/proc/self/task/*/comm`), most frequent first.
fn thread_names() -> String {
    let mut names: std::collections::BTreeMap<String, usize> = Default::default();
    for entry in std::fs::read_dir("/proc/self/task")
        .into_iter()
        .flatten()
        .flatten()
    {
        let comm = std::fs::read_to_string(entry.path().join("comm")).unwrap_or_default();
        *names.entry(comm.trim().to_owned()).or_default() += 1;
    }
    let mut names: Vec<_> = names.into_iter().collect();
    names.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    names
        .iter()
        .map(|(name, n)| format!("{name} x{n}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The process with `TENANT_CACHE` tenants open in one `Tenants`: only read, then each
/// also written and searched (index open), then the same after 3 s idle.
fn footprint(dir: &Path, ids: &[String]) {
    let open = TENANT_CACHE.min(ids.len());
    let base = Footprint::now();
    summarize(format!(
        "process before opening tenants: {} threads, RSS {}, {} fds ({})",
        base.threads,
        mib(base.rss),
        base.fds,
        thread_names()
    ));
    let tenants = Tenants::open_with(dir, options(), TENANT_CACHE).unwrap();
    for id in &ids[..open] {
        Touch::Resolve.run(&tenants.get(id).unwrap(), 0);
    }
    summarize(format!(
        "{open} tenants open, each read (resolve): {}",
        Footprint::now().describe(&base, open)
    ));
    for (k, id) in ids[..open].iter().enumerate() {
        let memory = tenants.get(id).unwrap();
        Touch::AddTriple.run(&memory, 3_000_000 + k);
        Touch::Search.run(&memory, 0);
    }
    for id in &ids[..open] {
        tenants.get(id).unwrap().sync().unwrap();
    }
    summarize(format!(
        "{open} tenants open, each also written, searched and synced (index open, \
         tantivy's writer held): {} ({})",
        Footprint::now().describe(&base, open),
        thread_names()
    ));
    // Past the writers' idle time (2 s): what open, idle memories cost.
    std::thread::sleep(Duration::from_secs(5));
    let cpu_before = cpu_seconds();
    std::thread::sleep(Duration::from_secs(3));
    summarize(format!(
        "the same 5 s later (idle): {} ({}); the process used {:.3} s of CPU in the next \
         3 s (the idle polls of {open} open indexes)",
        Footprint::now().describe(&base, open),
        thread_names(),
        cpu_seconds() - cpu_before,
    ));
    drop(tenants);
    summarize(format!(
        "after closing them: {}",
        Footprint::now().describe(&base, open)
    ));
}

/// `Tenants::list` of a directory of `n` tenants: each a hard link to one tenant's file
/// (so the directory holds `n` real entries without `n` copies), its lock file and an
/// index folder, as a directory of tenants that were opened has.
fn list_time(source: &Path, n: usize) {
    let dir = tempfile::Builder::new()
        .prefix("ops-list-")
        .tempdir_in(bench_dir())
        .unwrap();
    for id in tenant_ids(n) {
        let path = dir.path().join(format!("{id}.db"));
        std::fs::hard_link(source, &path).unwrap();
        std::fs::write(with_suffix(&path, ".lock"), b"").unwrap();
        std::fs::create_dir(with_suffix(&path, ".index")).unwrap();
    }
    let tenants = Tenants::open(dir.path()).unwrap();
    let mut times = Samples::default();
    for _ in 0..5 {
        let start = Instant::now();
        let listed = tenants.list().unwrap();
        times.push(start.elapsed());
        assert_eq!(listed.len(), n);
    }
    summarize(format!(
        "Tenants::list of {n} tenants on disk ({} directory entries), 5 runs: {}",
        n * 3,
        times.describe()
    ));
}

/// What one round-robin touch does after `Tenants::get`.
#[derive(Clone, Copy)]
enum Touch {
    Resolve,
    AddTriple,
    Search,
}

impl Touch {
    fn run(self, memory: &Memory, pass: usize) {
        match self {
            Touch::Resolve => {
                assert!(memory.resolve("Member 0").unwrap().is_some());
            }
            Touch::AddTriple => {
                let visitor = format!("Visitor {pass}");
                memory
                    .add_triple((visitor.as_str(), "touched", "Member 0"))
                    .expect("add_triple");
            }
            Touch::Search => {
                let hits = memory
                    .search("member project", &SearchOptions::new())
                    .expect("search");
                assert!(!hits.is_empty());
            }
        }
    }

    fn describe(self) -> &'static str {
        match self {
            Touch::Resolve => "get + resolve (a read)",
            Touch::AddTriple => "get + add_triple (a write, new subject per pass)",
            Touch::Search => "get + search (BM25 and graph, default options)",
        }
    }
}

/// `passes` timed round-robin passes over `ids` through one `Tenants` with a cache of
/// `TENANT_CACHE`, after one untimed pass, from `threads` threads sharing the `Tenants`
/// (each walks every id, starting `ids.len() / threads` apart, so they touch different
/// tenants at once); the handle is dropped after each touch, so an evicted memory really
/// closes.
fn round_robin(dir: &Path, ids: &[String], passes: usize, touch: Touch, threads: usize) -> String {
    let tenants = Tenants::open_with(dir, options(), TENANT_CACHE).unwrap();
    for id in ids {
        touch.run(&tenants.get(id).expect("get"), 0);
    }
    let start = Instant::now();
    let per_thread: Vec<(Samples, Samples)> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..threads)
            .map(|t| {
                let tenants = &tenants;
                scope.spawn(move || {
                    let (mut latencies, mut gets) = (Samples::default(), Samples::default());
                    let offset = ids.len() * t / threads;
                    for pass in 1..=passes {
                        for k in 0..ids.len() {
                            let id = &ids[(offset + k) % ids.len()];
                            let t0 = Instant::now();
                            let memory = tenants.get(id).expect("get");
                            gets.push(t0.elapsed());
                            // A subject per pass and thread: every touch writes a new triple.
                            touch.run(&memory, pass * threads + t);
                            drop(memory);
                            latencies.push(t0.elapsed());
                        }
                    }
                    (latencies, gets)
                })
            })
            .collect();
        workers.into_iter().map(|w| w.join().unwrap()).collect()
    });
    let elapsed = start.elapsed();
    let (mut latencies, mut gets) = (Samples::default(), Samples::default());
    for (l, g) in per_thread {
        latencies.0.extend(l.0);
        gets.0.extend(g.0);
    }
    let open = tenants.open_count();
    drop(tenants);
    format!(
        "{} tenants round-robin through a cache of {TENANT_CACHE}, {}, {threads} thread(s): \
         {:.0} operations/s ({} touches in {:.3} s after 1 untimed pass; {open} open at the \
         end); per touch {}; of which Tenants::get (on a miss: an open, and with the cache \
         full the close of the least recently used memory) {}",
        ids.len(),
        touch.describe(),
        per_sec(latencies.0.len() as u64, elapsed),
        latencies.0.len(),
        elapsed.as_secs_f64(),
        latencies.describe(),
        gets.describe(),
    )
}

fn tenants_part(cfg: &Config) {
    std::fs::create_dir_all(bench_dir()).unwrap();
    let dir = tempfile::Builder::new()
        .prefix("ops-tenants-")
        .tempdir_in(bench_dir())
        .unwrap();
    let ids = tenant_ids(cfg.tenants);
    create_tenants(dir.path(), &ids);
    summarize(format!(
        "load average before the tenant figures: {}",
        load_average()
    ));
    cold_opens(dir.path(), &ids, cfg.cold_opens);
    closes(dir.path(), &ids, cfg.cold_opens);
    footprint(dir.path(), &ids);
    for threads in [1, 4] {
        for touch in [Touch::Resolve, Touch::AddTriple, Touch::Search] {
            summarize(round_robin(
                dir.path(),
                &ids,
                cfg.tenant_passes,
                touch,
                threads,
            ));
        }
    }
    // For comparison: as many touches, all of them cache hits.
    let hot = &ids[..TENANT_CACHE.min(ids.len())];
    let hot_passes = cfg.tenant_passes * ids.len().div_ceil(hot.len());
    summarize(format!(
        "for comparison, all hits: {}",
        round_robin(dir.path(), hot, hot_passes, Touch::Resolve, 1)
    ));
    list_time(&dir.path().join(format!("{}.db", ids[0])), cfg.list_tenants);
    summarize(format!(
        "load average after the tenant figures: {}",
        load_average()
    ));
}

// ----- main -------------------------------------------------------------------------------

fn main() {
    let cfg = Config::from_env();
    summarize(format!("machine: {}", machine()));
    if cfg.part("verify") || cfg.part("backup") {
        let db = ensure_dataset(&cfg);
        let work = bench_dir().join(format!("ops-work-{}", std::process::id()));
        let memory = open_scratch_copy(&db, &work);
        if cfg.part("verify") {
            verify_part(&memory, cfg.verify_reps);
            bare_sqlite_reference(memory.path());
        }
        if cfg.part("backup") {
            backup_part(&memory, &work, cfg.window);
        }
        drop(memory);
        let _ = std::fs::remove_dir_all(&work);
    }
    if cfg.part("tenants") {
        tenants_part(&cfg);
    }
    print_summary();
}
