//! Multi-process load on one file: 4 writer processes (single calls at full speed:
//! triples, observations, units) and 4 searcher processes (read-your-writes on, as the MCP
//! server searches), for 60 s by default.
//!
//! ```sh
//! cargo bench --bench load                      # 60 s
//! CAIRN_LOAD_SECS=600 cargo bench --bench load  # the 10-minute soak
//! ```
//!
//! Prints writes/s, search p50/p99, the index lag (how long `sync()` waits in a process
//! that writes nothing: commit in one process → visible in another), the WAL's largest
//! size (sampled every 20 ms by the parent), each process's peak RSS, and how long each
//! process took to close its memory after its last call. The process roles are this
//! same binary, re-run with `CAIRN_LOAD_ROLE` set.

mod common;

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use cairn::{Memory, SearchOptions, Unit};
use common::{mib, ms, percentile, summarize};
use serde_json::{Value, json};

const WRITERS: usize = 4;
const SEARCHERS: usize = 4;
/// Words the writers use and the searchers look for.
const WORDS: [&str; 16] = [
    "invoice", "meeting", "calendar", "acme", "widget", "flight", "hotel", "budget", "launch",
    "review", "contract", "partner", "roadmap", "hiring", "offsite", "customer",
];

fn main() {
    match std::env::var("CAIRN_LOAD_ROLE").as_deref() {
        Ok("writer") => writer(),
        Ok("searcher") => searcher(),
        _ => parent(),
    }
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

/// Peak resident set of this process, from `/proc/self/status` (`VmHWM`), in bytes.
fn peak_rss() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmHWM:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        })
        .map_or(0, |kib| kib * 1024)
}

/// Closes `memory` and says how long that took.
fn close(memory: Memory) -> Duration {
    let start = Instant::now();
    drop(memory);
    start.elapsed()
}

fn writer() {
    let memory = Memory::open(db_path()).expect("open");
    let me = index();
    let deadline = Instant::now() + seconds();
    let mut writes = 0u64;
    let mut errors = 0u64;
    let mut i = 0usize;
    while Instant::now() < deadline {
        let word = WORDS[(i + me) % WORDS.len()];
        let other = WORDS[(i * 7 + 3) % WORDS.len()];
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
    let exit = close(memory);
    println!(
        "{}",
        json!({ "role": "writer", "writes": writes, "errors": errors, "rss": rss,
                "exit_ms": exit.as_secs_f64() * 1e3 })
    );
}

fn searcher() {
    let memory = Memory::open(db_path()).expect("open");
    let me = index();
    let deadline = Instant::now() + seconds();
    let options = SearchOptions::new().limit(20).read_your_writes(true);
    let mut latencies = Vec::new();
    let mut lags = Vec::new();
    let mut errors = 0u64;
    let mut i = 0usize;
    while Instant::now() < deadline {
        let query = format!(
            "what about the {} {}",
            WORDS[(i + me) % WORDS.len()],
            WORDS[(i * 5 + 1) % WORDS.len()]
        );
        let start = Instant::now();
        match memory.search(&query, &options) {
            Ok(_) => latencies.push(start.elapsed()),
            Err(_) => errors += 1,
        }
        if i.is_multiple_of(20) {
            // This process writes nothing: sync() waits exactly for the other
            // processes' commits to become visible here.
            let start = Instant::now();
            if memory.sync().is_ok() {
                lags.push(start.elapsed());
            }
        }
        i += 1;
    }
    let rss = peak_rss();
    let exit = close(memory);
    let ms_list = |v: &[Duration]| v.iter().map(|d| d.as_secs_f64() * 1e3).collect::<Vec<_>>();
    println!(
        "{}",
        json!({ "role": "searcher", "latencies_ms": ms_list(&latencies), "lags_ms": ms_list(&lags),
                "errors": errors, "rss": rss, "exit_ms": exit.as_secs_f64() * 1e3 })
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

fn parent() {
    let dir = tempfile::tempdir().expect("temp dir");
    let db = dir.path().join("load.db");
    drop(Memory::open(&db).expect("create"));
    let wal = PathBuf::from(format!("{}-wal", db.display()));
    let duration = seconds();
    println!(
        "{WRITERS} writer and {SEARCHERS} searcher processes on one file for {}s",
        duration.as_secs()
    );
    let start = Instant::now();
    let mut children: Vec<(String, Child)> = Vec::new();
    for i in 0..WRITERS {
        children.push((format!("writer {i}"), spawn("writer", &db, i)));
    }
    for i in 0..SEARCHERS {
        children.push((format!("searcher {i}"), spawn("searcher", &db, i)));
    }
    let mut wal_max = 0u64;
    let mut wal_samples = Vec::new();
    while start.elapsed() < duration + Duration::from_secs(5)
        && children
            .iter_mut()
            .any(|(_, c)| c.try_wait().ok().flatten().is_none())
    {
        let size = std::fs::metadata(&wal).map_or(0, |m| m.len());
        wal_max = wal_max.max(size);
        wal_samples.push((start.elapsed().as_secs(), size));
        std::thread::sleep(Duration::from_millis(20));
    }
    let mut reports = Vec::new();
    for (name, mut child) in children {
        let mut out = String::new();
        if let Some(mut stdout) = child.stdout.take() {
            let _ = stdout.read_to_string(&mut out);
        }
        let status = child.wait().expect("wait");
        let report: Value = out
            .lines()
            .rev()
            .find_map(|l| serde_json::from_str(l).ok())
            .unwrap_or_else(|| panic!("{name} ({status}) printed no report: {out}"));
        reports.push((name, report));
    }
    let elapsed = duration.as_secs_f64();

    let writes: u64 = reports
        .iter()
        .filter_map(|(_, r)| r["writes"].as_u64())
        .sum();
    let write_errors: u64 = reports
        .iter()
        .filter(|(_, r)| r["role"] == "writer")
        .filter_map(|(_, r)| r["errors"].as_u64())
        .sum();
    let collect = |key: &str| -> Vec<Duration> {
        let mut all: Vec<Duration> = reports
            .iter()
            .filter_map(|(_, r)| r[key].as_array())
            .flatten()
            .filter_map(Value::as_f64)
            .map(|ms| Duration::from_secs_f64(ms / 1e3))
            .collect();
        all.sort();
        all
    };
    let searches = collect("latencies_ms");
    let lags = collect("lags_ms");
    let search_errors: u64 = reports
        .iter()
        .filter(|(_, r)| r["role"] == "searcher")
        .filter_map(|(_, r)| r["errors"].as_u64())
        .sum();
    println!("per process:");
    for (name, r) in &reports {
        println!(
            "  {name:<11} peak RSS {:>8}  exit after last call {:>8.1} ms",
            mib(r["rss"].as_u64().unwrap_or(0)),
            r["exit_ms"].as_f64().unwrap_or(f64::NAN)
        );
    }
    let exit_max = reports
        .iter()
        .filter_map(|(_, r)| r["exit_ms"].as_f64())
        .fold(0.0, f64::max);
    // The WAL over time, a line per tenth of the run: flat means bounded.
    let step = (duration.as_secs() / 10).max(1);
    let mut over_time = Vec::new();
    for t in (0..=duration.as_secs()).step_by(step as usize) {
        let max_in = wal_samples
            .iter()
            .filter(|(s, _)| *s >= t && *s < t + step)
            .map(|(_, b)| *b)
            .max()
            .unwrap_or(0);
        over_time.push(format!("{t}s {}", mib(max_in)));
    }
    println!("WAL max per interval: {}", over_time.join(", "));
    summarize(format!(
        "writes: {:.0}/s ({writes} in {elapsed:.0} s, {write_errors} errors) from {WRITERS} processes",
        writes as f64 / elapsed
    ));
    if !searches.is_empty() {
        summarize(format!(
            "search (read-your-writes) p50 {} p99 {} over {} searches, {search_errors} errors (target p99 <= 50 ms)",
            ms(percentile(&searches, 50.0)),
            ms(percentile(&searches, 99.0)),
            searches.len()
        ));
    }
    if !lags.is_empty() {
        summarize(format!(
            "index lag (sync in a process that writes nothing) p50 {} p99 {} max {} (target p99 <= 250 ms)",
            ms(percentile(&lags, 50.0)),
            ms(percentile(&lags, 99.0)),
            ms(*lags.last().unwrap_or(&Duration::ZERO))
        ));
    }
    summarize(format!("WAL max {} (target <= 64 MiB)", mib(wal_max)));
    summarize(format!(
        "exit after the last call: max {exit_max:.1} ms (target <= 200 ms)"
    ));
    common::print_summary();
}
