//! Multi-process load on one file, for 60 s per part by default:
//!
//! 1. *library*: 4 writer processes (single calls at full speed: triples, observations,
//!    units) and 4 searcher processes (read-your-writes on, as the MCP server searches);
//! 2. *mcp*: the same through `cairn mcp` — 4 writer servers (single `create_entities`,
//!    `add_observations` and `create_relations` calls at full speed) and 4 searcher
//!    servers (`search_memory` and `search_nodes` in turn, which search with
//!    read-your-writes), each server a child process on the same file driven over its
//!    stdio by a thread of this bench that waits for each reply before the next call.
//!
//! ```sh
//! cargo bench --bench load                                       # both parts, 60 s each
//! CAIRN_LOAD_MODE=lib CAIRN_LOAD_SECS=600 cargo bench --bench load  # the 10-minute soak
//! CAIRN_LOAD_MODE=mcp cargo bench --bench load                   # the MCP part only
//! CAIRN_LOAD_TRACE=/tmp/t cargo bench --bench load  # each process's cairn debug events in /tmp/t
//! CAIRN_LOAD_MODE=lib CAIRN_LOAD_KEEP=1 cargo bench --bench load  # keep the library part's file
//! ```
//!
//! Each part prints writes/s, search p50/p99, the WAL's largest size (sampled every
//! 20 ms by the parent), each process's peak RSS (`VmHWM`), and how long each process
//! took to exit after its last call (library: closing the memory; MCP: from closing the
//! server's stdin to its exit). The library part also prints the index lag (how long
//! `sync_searchable()` waits in a process that writes nothing: commit in one process →
//! searchable in another) and the lag of the derived rows too (`sync()`: also the mention
//! links and vectors in the file). Two tables per tenth of the run show what stays flat:
//! the WAL's largest size and each process's largest RSS, split into `RssAnon` (heap) and
//! `RssFile` (mapped index segments and database pages, which grow with the data and
//! which the kernel can reclaim); and the search p50/p99 of that tenth beside the
//! memory's size at its start (entities, relations, observations, chunks, and the
//! index's segments). The library part's processes are this same binary, re-run with
//! `CAIRN_LOAD_ROLE` set.

#[path = "../../benches/common/mod.rs"]
mod common;
#[path = "common/stdio_mcp.rs"]
mod stdio_mcp;

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use cairn::{Memory, SearchOptions, Unit};
use common::{load_average, mib, ms, percentile, proc_memory, summarize};
use serde_json::{Value, json};
use stdio_mcp::StdioMcp;

const WRITERS: usize = 4;
const SEARCHERS: usize = 4;
/// Words the writers use and the searchers look for.
const WORDS: [&str; 16] = [
    "invoice", "meeting", "calendar", "acme", "widget", "flight", "hotel", "budget", "launch",
    "review", "contract", "partner", "roadmap", "hiring", "offsite", "customer",
];
/// How often the parent samples the WAL's size, and each process's RSS.
const WAL_EVERY: Duration = Duration::from_millis(20);
const RSS_EVERY: Duration = Duration::from_secs(1);

fn main() {
    if let Some(dir) = std::env::var_os("CAIRN_LOAD_TRACE") {
        trace_into(Path::new(&dir));
    }
    match std::env::var("CAIRN_LOAD_ROLE").as_deref() {
        Ok("writer") => writer(),
        Ok("searcher") => searcher(),
        _ => parent(),
    }
}

/// Writes this process's cairn debug events (lock waits, transactions, checkpoints,
/// index batches with their lag, searches) to `DIR/<role>-<pid>.log`.
fn trace_into(dir: &Path) {
    let role = std::env::var("CAIRN_LOAD_ROLE").unwrap_or_else(|_| "parent".into());
    let path = dir.join(format!("{role}-{}.log", std::process::id()));
    let file = std::fs::File::create(&path).expect("trace file");
    tracing_subscriber::fmt()
        .with_max_level(tracing::Level::DEBUG)
        .with_ansi(false)
        .with_writer(std::sync::Mutex::new(file))
        .init();
}

fn seconds() -> Duration {
    let secs = std::env::var("CAIRN_LOAD_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(60);
    Duration::from_secs(secs)
}

fn db_path() -> PathBuf {
    PathBuf::from(std::env::var("CAIRN_LOAD_DB").expect("CAIRN_LOAD_DB"))
}

fn index() -> usize {
    std::env::var("CAIRN_LOAD_INDEX")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0)
}

/// Peak resident set of this process, in bytes.
fn peak_rss() -> u64 {
    proc_memory("self", "VmHWM").unwrap_or(0)
}

/// Where this process's anonymous memory is now, in bytes, by kind of mapping (from
/// `/proc/self/smaps`): `heap` (the main malloc arena, `[heap]`), `unnamed` (anonymous
/// mappings: the other threads' malloc arenas, large allocations, thread stacks), `stack`
/// (the main thread's) and `file` (private copies of file pages: the binary's data);
/// and the CPU seconds it used (user + system, `/proc/self/stat`).
fn anon_breakdown() -> Value {
    let smaps = std::fs::read_to_string("/proc/self/smaps").unwrap_or_default();
    let (mut heap, mut unnamed, mut stack, mut file) = (0u64, 0u64, 0u64, 0u64);
    let mut kind = 0;
    for line in smaps.lines() {
        let fields: Vec<&str> = line.split_whitespace().collect();
        // A mapping's header: `start-end perms offset dev inode [path]`.
        if fields
            .first()
            .is_some_and(|f| f.contains('-') && !f.ends_with(':'))
        {
            kind = match fields.get(5) {
                Some(&"[heap]") => 0,
                Some(&"[stack]") => 2,
                None => 1,
                Some(_) => 3,
            };
        } else if fields.first() == Some(&"Anonymous:") {
            let bytes = fields
                .get(1)
                .and_then(|k| k.parse::<u64>().ok())
                .unwrap_or(0)
                * 1024;
            match kind {
                0 => heap += bytes,
                1 => unnamed += bytes,
                2 => stack += bytes,
                _ => file += bytes,
            }
        }
    }
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // utime and stime are fields 14 and 15, after the `(comm)` that may hold spaces.
    let after_comm = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    let ticks: Vec<f64> = after_comm
        .split_whitespace()
        .skip(11)
        .take(2)
        .filter_map(|t| t.parse().ok())
        .collect();
    // USER_HZ is 100 on Linux.
    let cpu_s = ticks.iter().sum::<f64>() / 100.0;
    json!({ "heap": heap, "unnamed": unnamed, "stack": stack, "file": file, "cpu_s": cpu_s })
}

/// Closes `memory` and says how long that took.
fn close(memory: Memory) -> Duration {
    let start = Instant::now();
    drop(memory);
    start.elapsed()
}

fn millis(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn ms_list(v: &[Duration]) -> Vec<f64> {
    v.iter().copied().map(millis).collect()
}

/// The words of writer `me`'s `i`-th call: its subject's word and another word.
fn words(me: usize, i: usize) -> (&'static str, &'static str) {
    (
        WORDS[(i + me) % WORDS.len()],
        WORDS[(i * 7 + 3) % WORDS.len()],
    )
}

/// Searcher `me`'s `i`-th query.
fn query(me: usize, i: usize) -> String {
    format!(
        "what about the {} {}",
        WORDS[(i + me) % WORDS.len()],
        WORDS[(i * 5 + 1) % WORDS.len()]
    )
}

// ----- part 1: library processes ----------------------------------------------------

fn writer() {
    let memory = Memory::open(db_path()).expect("open");
    let me = index();
    let deadline = Instant::now() + seconds();
    let mut writes = 0u64;
    let mut errors = 0u64;
    let mut i = 0usize;
    while Instant::now() < deadline {
        let (word, other) = words(me, i);
        let subject = format!("Agent{me} {word} {}", i % 500);
        let result = match i % 3 {
            0 => memory
                .add_triple((
                    subject.as_str(),
                    "mentions",
                    format!("{other} {}", i % 97).as_str(),
                ))
                .map(|_| ()),
            1 => memory
                .observe(subject.as_str(), &format!("noted the {other} at step {i}"))
                .map(|_| ()),
            _ => memory
                .add_units(
                    &format!("mail-{me}"),
                    &[Unit::new(format!("{subject} wrote about the {other} {i}"))],
                )
                .map(|_| ()),
        };
        match result {
            Ok(()) => writes += 1,
            Err(_) => errors += 1,
        }
        i += 1;
    }
    let rss = peak_rss();
    let anon = anon_breakdown();
    let exit = close(memory);
    println!(
        "{}",
        json!({ "role": "writer", "writes": writes, "errors": errors, "rss": rss,
                "anon": anon, "exit_ms": millis(exit) })
    );
}

fn searcher() {
    let memory = Memory::open(db_path()).expect("open");
    let me = index();
    let deadline = Instant::now() + seconds();
    let options = SearchOptions::new().limit(20).read_your_writes(true);
    let started = Instant::now();
    let mut latencies = Vec::new();
    // When each search started (ms since this process's start), for the per-step table.
    let mut started_at = Vec::new();
    let mut lags = Vec::new();
    let mut derived_lags = Vec::new();
    let (mut errors, mut first_error) = (0u64, None);
    let mut i = 0usize;
    while Instant::now() < deadline {
        let start = Instant::now();
        match memory.search(&query(me, i), &options) {
            Ok(_) => {
                latencies.push(start.elapsed());
                started_at.push(millis(start - started));
            }
            Err(e) => {
                errors += 1;
                first_error.get_or_insert(e.to_string());
            }
        }
        if i.is_multiple_of(20) {
            // This process writes nothing: sync_searchable() waits exactly for the other
            // processes' commits to become searchable here.
            let start = Instant::now();
            if memory.sync_searchable().is_ok() {
                lags.push(start.elapsed());
            }
        } else if i % 20 == 10 {
            // sync() also waits for their mention links and vectors to be in the file.
            let start = Instant::now();
            if memory.sync().is_ok() {
                derived_lags.push(start.elapsed());
            }
        }
        i += 1;
    }
    let rss = peak_rss();
    let anon = anon_breakdown();
    let exit = close(memory);
    println!(
        "{}",
        json!({ "role": "searcher", "anon": anon, "latencies_ms": ms_list(&latencies), "at_ms": started_at,
                "lags_ms": ms_list(&lags),
                "derived_lags_ms": ms_list(&derived_lags), "errors": errors, "first_error": first_error, "rss": rss,
                "exit_ms": millis(exit) })
    );
}

fn spawn(role: &str, db: &Path, index: usize) -> Child {
    Command::new(std::env::current_exe().expect("current exe"))
        .env("CAIRN_LOAD_ROLE", role)
        .env("CAIRN_LOAD_DB", db)
        .env("CAIRN_LOAD_INDEX", index.to_string())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawn")
}

/// The last JSON line `child` printed.
fn child_report(name: &str, mut child: Child) -> Value {
    let mut out = String::new();
    if let Some(mut stdout) = child.stdout.take() {
        let _ = stdout.read_to_string(&mut out);
    }
    let status = child.wait().expect("wait");
    out.lines()
        .rev()
        .find_map(|l| serde_json::from_str(l).ok())
        .unwrap_or_else(|| panic!("{name} ({status}) printed no report: {out}"))
}

fn library_part(duration: Duration) {
    let dir = tempfile::tempdir().expect("temp dir");
    let db = dir.path().join("load.db");
    drop(Memory::open(&db).expect("create"));
    println!(
        "\n== library: {WRITERS} writer and {SEARCHERS} searcher processes on one file for {}s (load average {})",
        duration.as_secs(),
        load_average()
    );
    let mut children: Vec<(String, Child)> = Vec::new();
    for i in 0..WRITERS {
        children.push((format!("writer {i}"), spawn("writer", &db, i)));
    }
    for i in 0..SEARCHERS {
        children.push((format!("searcher {i}"), spawn("searcher", &db, i)));
    }
    let pids = children.iter().map(|(n, c)| (n.clone(), c.id())).collect();
    let mut sampler = Sampler::new(&db, pids);
    sampler.run(duration, || {
        children
            .iter_mut()
            .any(|(_, c)| c.try_wait().ok().flatten().is_none())
    });
    let reports: Vec<(String, Value)> = children
        .into_iter()
        .map(|(name, child)| {
            let report = child_report(&name, child);
            (name, report)
        })
        .collect();
    report(
        "library",
        duration,
        &reports,
        &sampler,
        "exit after last call",
    );
    if std::env::var_os("CAIRN_LOAD_KEEP").is_some() {
        // For looking at a grown memory afterwards (a searcher alone under a profiler).
        println!("kept the memory: {}", dir.keep().join("load.db").display());
    }
}

// ----- part 2: cairn mcp servers ----------------------------------------------------

/// Writer `me`'s `i`-th call: every third step creates an entity, adds an observation
/// to it, and relates it to the next step's entity.
fn mcp_write(server: &mut StdioMcp, me: usize, i: usize) -> Result<Value, String> {
    let k = i / 3;
    let name = |k: usize| format!("Agent{me} {} {}", words(me, k).0, k % 500);
    let other = words(me, k).1;
    match i % 3 {
        0 => server.call(
            "create_entities",
            json!({"entities": [{"name": name(k), "entityType": "topic",
                   "observations": [format!("{} wrote about the {other} {i}", name(k))]}]}),
        ),
        1 => server.call(
            "add_observations",
            json!({"observations": [{"entityName": name(k),
                   "contents": [format!("noted the {other} at step {i}")]}]}),
        ),
        _ => server.call(
            "create_relations",
            json!({"relations": [{"from": name(k), "to": name(k + 1),
                   "relationType": "mentions"}]}),
        ),
    }
}

/// Reads the server's peak RSS, closes its stdin and adds both (`rss`, `exit_ms`: the
/// time until it exited) to `report`.
fn close_server(server: StdioMcp, report: &mut Value) {
    report["rss"] = json!(proc_memory(&server.pid().to_string(), "VmHWM").unwrap_or(0));
    report["exit_ms"] = json!(millis(server.close()));
}

/// Drives writer server `me` at full speed until `deadline`, then closes it.
fn mcp_writer(mut server: StdioMcp, me: usize, deadline: Instant) -> Value {
    let (mut writes, mut errors, mut first_error) = (0u64, 0u64, None);
    let mut i = 0usize;
    while Instant::now() < deadline {
        match mcp_write(&mut server, me, i) {
            Ok(_) => writes += 1,
            Err(e) => {
                errors += 1;
                first_error.get_or_insert(e);
            }
        }
        i += 1;
    }
    let mut report = json!({ "role": "writer", "writes": writes, "errors": errors,
                             "first_error": first_error });
    close_server(server, &mut report);
    report
}

/// Drives searcher server `me` until `deadline`: `search_memory` and `search_nodes` in
/// turn, then closes it.
fn mcp_searcher(mut server: StdioMcp, me: usize, deadline: Instant) -> Value {
    let (mut memory_calls, mut node_calls) = (Vec::new(), Vec::new());
    let (mut errors, mut first_error) = (0u64, None);
    let mut i = 0usize;
    while Instant::now() < deadline {
        let q = query(me, i / 2);
        let start = Instant::now();
        let result = if i.is_multiple_of(2) {
            server.call(
                "search_memory",
                json!({"query": q, "limit": 20, "depth": 2, "token_budget": 1000}),
            )
        } else {
            server.call("search_nodes", json!({"query": q, "limit": 10}))
        };
        let elapsed = start.elapsed();
        match result {
            Ok(_) if i.is_multiple_of(2) => memory_calls.push(elapsed),
            Ok(_) => node_calls.push(elapsed),
            Err(e) => {
                errors += 1;
                first_error.get_or_insert(e);
            }
        }
        i += 1;
    }
    let mut report = json!({ "role": "searcher", "latencies_ms": ms_list(&memory_calls),
                             "nodes_ms": ms_list(&node_calls), "errors": errors,
                             "first_error": first_error });
    close_server(server, &mut report);
    report
}

fn mcp_part(duration: Duration) {
    let dir = tempfile::tempdir().expect("temp dir");
    let db = dir.path().join("load-mcp.db");
    drop(Memory::open(&db).expect("create"));
    let bin = Path::new(env!("CARGO_BIN_EXE_cairn"));
    println!(
        "\n== mcp: {WRITERS} writer and {SEARCHERS} searcher `cairn mcp` servers on one file for {}s (load average {})",
        duration.as_secs(),
        load_average()
    );
    let servers: Vec<(String, StdioMcp)> = (0..WRITERS)
        .map(|i| format!("writer {i}"))
        .chain((0..SEARCHERS).map(|i| format!("searcher {i}")))
        .map(|name| (name, StdioMcp::start(bin, &db)))
        .collect();
    let pids = servers.iter().map(|(n, s)| (n.clone(), s.pid())).collect();
    let mut sampler = Sampler::new(&db, pids);
    let deadline = Instant::now() + duration;
    let drivers: Vec<(String, std::thread::JoinHandle<Value>)> = servers
        .into_iter()
        .enumerate()
        .map(|(i, (name, server))| {
            let driver = std::thread::spawn(move || {
                if i < WRITERS {
                    mcp_writer(server, i, deadline)
                } else {
                    mcp_searcher(server, i - WRITERS, deadline)
                }
            });
            (name, driver)
        })
        .collect();
    sampler.run(duration, || drivers.iter().any(|(_, d)| !d.is_finished()));
    let reports: Vec<(String, Value)> = drivers
        .into_iter()
        .map(|(name, d)| {
            let report = d
                .join()
                .unwrap_or_else(|_| panic!("{name}'s driver panicked"));
            (name, report)
        })
        .collect();
    report(
        "mcp",
        duration,
        &reports,
        &sampler,
        "exit after stdin closes",
    );
}

// ----- sampling and reporting -------------------------------------------------------

/// The WAL's size every [`WAL_EVERY`], each process's RSS every [`RSS_EVERY`] and the
/// memory's size at the start of every step (a tenth of the run), each with the second
/// of the run it was taken in.
struct Sampler {
    db: PathBuf,
    wal: PathBuf,
    pids: Vec<(String, u32)>,
    wal_samples: Vec<(u64, u64)>,
    /// Per sample, each process's memory (all zero once it exited).
    rss_samples: Vec<(u64, Vec<Rss>)>,
    /// The memory's rows and the index's segments, once per step.
    size_samples: Vec<(u64, Size)>,
}

/// One process's resident memory, from `/proc/<pid>/status`.
#[derive(Clone, Copy, Default)]
struct Rss {
    /// `VmRSS`: everything resident.
    total: u64,
    /// `RssAnon`: heap and stacks, what the process allocated.
    anon: u64,
    /// `RssFile`: pages of mapped files (the index's segments, the database through
    /// SQLite's mmap), resident while used and reclaimable by the kernel.
    file: u64,
}

/// How big the memory is: rows per table (read with a plain SQLite connection) and the
/// index's segment count (from its last commit's `meta.json`).
#[derive(Clone, Copy, Default)]
struct Size {
    entities: u64,
    relations: u64,
    observations: u64,
    chunks: u64,
    segments: Option<usize>,
}

/// The length of one row of the tables over time: a tenth of the run, at least 1 s.
fn step_of(duration: Duration) -> u64 {
    (duration.as_secs() / 10).max(1)
}

fn read_size(db: &Path) -> Size {
    let mut size = Size {
        segments: segment_count(db),
        ..Size::default()
    };
    let flags =
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let Ok(conn) = rusqlite::Connection::open_with_flags(db, flags) else {
        return size;
    };
    let _ = conn.busy_timeout(Duration::from_secs(5));
    let count = |table: &str| -> u64 {
        conn.query_row(&format!("SELECT count(*) FROM {table}"), [], |r| {
            r.get::<_, i64>(0)
        })
        .map_or(0, |n| n.max(0) as u64)
    };
    size.entities = count("entity");
    size.relations = count("relation");
    size.observations = count("observation");
    size.chunks = count("chunk");
    size
}

/// Segments in the index's last commit: `<db>.index/<schema version>/meta.json` lists
/// them.
fn segment_count(db: &Path) -> Option<usize> {
    let folder = common::with_suffix(db, ".index");
    std::fs::read_dir(folder).ok()?.flatten().find_map(|entry| {
        let text = std::fs::read_to_string(entry.path().join("meta.json")).ok()?;
        let meta: Value = serde_json::from_str(&text).ok()?;
        Some(meta["segments"].as_array()?.len())
    })
}

impl Sampler {
    fn new(db: &Path, pids: Vec<(String, u32)>) -> Sampler {
        Sampler {
            db: db.to_owned(),
            wal: common::with_suffix(db, "-wal"),
            pids,
            wal_samples: Vec::new(),
            rss_samples: Vec::new(),
            size_samples: Vec::new(),
        }
    }

    /// Samples while `alive` says some process still runs, for at most `duration` + 5 s.
    fn run(&mut self, duration: Duration, mut alive: impl FnMut() -> bool) {
        let start = Instant::now();
        let step = Duration::from_secs(step_of(duration));
        let (mut next_rss, mut next_size) = (start, start);
        while start.elapsed() < duration + Duration::from_secs(5) && alive() {
            let second = start.elapsed().as_secs();
            let size = std::fs::metadata(&self.wal).map_or(0, |m| m.len());
            self.wal_samples.push((second, size));
            if Instant::now() >= next_rss {
                let rss = self
                    .pids
                    .iter()
                    .map(|(_, pid)| {
                        let pid = pid.to_string();
                        let field = |key| proc_memory(&pid, key).unwrap_or(0);
                        Rss {
                            total: field("VmRSS"),
                            anon: field("RssAnon"),
                            file: field("RssFile"),
                        }
                    })
                    .collect();
                self.rss_samples.push((second, rss));
                next_rss += RSS_EVERY;
            }
            if Instant::now() >= next_size && start.elapsed() <= duration {
                self.size_samples.push((second, read_size(&self.db)));
                next_size += step;
            }
            std::thread::sleep(WAL_EVERY);
        }
        // The memory as the run left it.
        self.size_samples
            .push((start.elapsed().as_secs(), read_size(&self.db)));
    }

    fn wal_max(&self) -> u64 {
        self.wal_samples.iter().map(|s| s.1).max().unwrap_or(0)
    }

    /// Per tenth of the run: the WAL's largest size and each process's largest RSS,
    /// split into its anonymous part (heap) and its file-backed part (mapped index
    /// segments and database pages, which grow with the data and which the kernel can
    /// reclaim); then the searches of that tenth (p50, p99, count, from the searchers'
    /// `reports`) beside the memory's size at its start.
    fn print_over_time(&self, duration: Duration, reports: &[(String, Value)]) {
        let step = step_of(duration);
        let short: String = self
            .pids
            .iter()
            .map(|(name, _)| {
                let (role, n) = name.split_once(' ').unwrap_or((name, ""));
                format!("{:>5}", format!("{}{n}", &role[..1]))
            })
            .collect();
        println!(
            "largest per {step} s (MiB): from    WAL | RssAnon {short} | RssFile {short} | VmRSS {short}"
        );
        let mib_column = |bytes: u64| {
            // No sample: the process had exited.
            if bytes == 0 {
                "    -".to_owned()
            } else {
                format!("{:>5.0}", bytes as f64 / (1024.0 * 1024.0))
            }
        };
        let within = |s: u64, t: u64| s >= t && s < t + step;
        let steps: Vec<u64> = (0..=duration.as_secs()).step_by(step as usize).collect();
        for &t in &steps {
            let wal = self
                .wal_samples
                .iter()
                .filter(|s| within(s.0, t))
                .map(|s| s.1)
                .max()
                .unwrap_or(0);
            let largest = |p: usize, pick: fn(&Rss) -> u64| {
                self.rss_samples
                    .iter()
                    .filter(|s| within(s.0, t))
                    .map(|s| pick(&s.1[p]))
                    .max()
                    .unwrap_or(0)
            };
            let column = |pick: fn(&Rss) -> u64| -> String {
                (0..self.pids.len())
                    .map(|p| mib_column(largest(p, pick)))
                    .collect()
            };
            println!(
                "                          {t:>4}s {:>6.1} |         {} |         {} |       {}",
                wal as f64 / (1024.0 * 1024.0),
                column(|r| r.anon),
                column(|r| r.file),
                column(|r| r.total),
            );
        }
        // Every search with the second of the run it started in.
        let mut searches: Vec<(u64, Duration)> = Vec::new();
        for (_, r) in reports {
            let (Some(latencies), Some(at)) = (r["latencies_ms"].as_array(), r["at_ms"].as_array())
            else {
                continue;
            };
            for (latency, at) in latencies.iter().zip(at) {
                if let (Some(latency), Some(at)) = (latency.as_f64(), at.as_f64()) {
                    searches.push(((at / 1e3) as u64, Duration::from_secs_f64(latency / 1e3)));
                }
            }
        }
        println!(
            "per {step} s: from | search p50 p99 (ms) calls | at the start: entities relations observations chunks segments"
        );
        for &t in &steps {
            let mut these: Vec<Duration> = searches
                .iter()
                .filter(|s| within(s.0, t))
                .map(|s| s.1)
                .collect();
            these.sort();
            let latency = if these.is_empty() {
                "         -         -      0".to_owned()
            } else {
                format!(
                    "{:>10.1}{:>10.1}{:>7}",
                    millis(percentile(&these, 50.0)),
                    millis(percentile(&these, 99.0)),
                    these.len()
                )
            };
            // The size sampled in this step (its start), or at the end for the last row.
            let size = self
                .size_samples
                .iter()
                .find(|s| within(s.0, t))
                .or(self.size_samples.last().filter(|_| t == duration.as_secs()))
                .map_or_else(String::new, |(_, s)| {
                    format!(
                        "{:>9}{:>10}{:>13}{:>8}{:>9}",
                        s.entities,
                        s.relations,
                        s.observations,
                        s.chunks,
                        s.segments.map_or_else(|| "-".to_owned(), |n| n.to_string())
                    )
                });
            println!("      {t:>4}s | {latency} | {size}");
        }
    }
}

/// Every value of `key` (a list of milliseconds) across `reports`, sorted.
fn collect(reports: &[(String, Value)], key: &str) -> Vec<Duration> {
    let mut all: Vec<Duration> = reports
        .iter()
        .filter_map(|(_, r)| r[key].as_array())
        .flatten()
        .filter_map(Value::as_f64)
        .map(|ms| Duration::from_secs_f64(ms / 1e3))
        .collect();
    all.sort();
    all
}

/// The sum of `key` over the reports of processes in `role`.
fn total(reports: &[(String, Value)], role: &str, key: &str) -> u64 {
    reports
        .iter()
        .filter(|(_, r)| r["role"] == role)
        .filter_map(|(_, r)| r[key].as_u64())
        .sum()
}

/// `p50 x p99 y over n <what>`, or nothing without samples.
fn latency_line(part: &str, what: &str, samples: &[Duration], target: &str) {
    if let (Some(max), false) = (samples.last(), samples.is_empty()) {
        summarize(format!(
            "{part}: {what} p50 {} p99 {} max {} over {} calls{target}",
            ms(percentile(samples, 50.0)),
            ms(percentile(samples, 99.0)),
            ms(*max),
            samples.len()
        ));
    }
}

/// `; anon at the end: heap …, unnamed …, stack …, file …; CPU … s` from a library
/// process's [`anon_breakdown`], or nothing (an MCP server's report has none).
fn anon_line(anon: &Value) -> String {
    let Some(cpu) = anon["cpu_s"].as_f64() else {
        return String::new();
    };
    let part = |key: &str| {
        format!(
            "{:.1} MiB",
            anon[key].as_u64().unwrap_or(0) as f64 / (1024.0 * 1024.0)
        )
    };
    format!(
        "; anon at the end: heap {}, unnamed {}, stack {}, file {}; CPU {cpu:.0} s",
        part("heap"),
        part("unnamed"),
        part("stack"),
        part("file")
    )
}

/// Prints one part's figures from its processes' `reports` and the parent's samples.
fn report(
    part: &str,
    duration: Duration,
    reports: &[(String, Value)],
    sampler: &Sampler,
    exit: &str,
) {
    println!("load average after {part}: {}", load_average());
    println!("per process:");
    for (name, r) in reports {
        println!(
            "  {name:<11} peak RSS {:>8}  {exit} {:>8.1} ms{}",
            mib(r["rss"].as_u64().unwrap_or(0)),
            r["exit_ms"].as_f64().unwrap_or(f64::NAN),
            anon_line(&r["anon"])
        );
    }
    for (name, r) in reports {
        if let Some(e) = r["first_error"].as_str() {
            println!("  {name}: first error: {e}");
        }
    }
    sampler.print_over_time(duration, reports);
    let elapsed = duration.as_secs_f64();
    let writes = total(reports, "writer", "writes");
    summarize(format!(
        "{part}: writes {:.0}/s ({writes} in {elapsed:.0} s, {} errors) from {WRITERS} processes",
        writes as f64 / elapsed,
        total(reports, "writer", "errors")
    ));
    println!(
        "{part}: search errors: {}",
        total(reports, "searcher", "errors")
    );
    let search = if part == "mcp" {
        "search_memory"
    } else {
        "search (read-your-writes)"
    };
    latency_line(
        part,
        search,
        &collect(reports, "latencies_ms"),
        " (target p99 <= 50 ms)",
    );
    latency_line(part, "search_nodes", &collect(reports, "nodes_ms"), "");
    latency_line(
        part,
        "index lag (sync_searchable in a process that writes nothing)",
        &collect(reports, "lags_ms"),
        " (target p99 <= 250 ms)",
    );
    latency_line(
        part,
        "index + links lag (sync in a process that writes nothing)",
        &collect(reports, "derived_lags_ms"),
        "",
    );
    summarize(format!(
        "{part}: WAL max {} (target <= 64 MiB)",
        mib(sampler.wal_max())
    ));
    let rss_max = reports
        .iter()
        .filter_map(|(_, r)| r["rss"].as_u64())
        .max()
        .unwrap_or(0);
    let exit_max = reports
        .iter()
        .filter_map(|(_, r)| r["exit_ms"].as_f64())
        .fold(0.0, f64::max);
    summarize(format!(
        "{part}: peak RSS max {} per process; {exit}: max {exit_max:.1} ms (target <= 200 ms)",
        mib(rss_max)
    ));
}

fn parent() {
    let duration = seconds();
    let mode = std::env::var("CAIRN_LOAD_MODE").unwrap_or_else(|_| "both".into());
    println!("{}", common::machine());
    if matches!(mode.as_str(), "both" | "lib") {
        library_part(duration);
    }
    if matches!(mode.as_str(), "both" | "mcp") {
        mcp_part(duration);
    }
    assert!(
        matches!(mode.as_str(), "both" | "lib" | "mcp"),
        "CAIRN_LOAD_MODE is lib, mcp or both, not {mode:?}"
    );
    common::print_summary();
}
