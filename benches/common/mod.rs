//! Helpers shared by the `harness = false` benches: where cached datasets live, copying
//! and removing a memory's files, percentiles, the `>>>` summary lines, a description of
//! the machine and its load, and processes' memory from `/proc`. The CLI crate's benches
//! (`cli/benches/`) include this file too.
//!
//! Each bench uses a different subset.

#![allow(dead_code)] // each bench uses a different subset

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use cairn::Memory;

// ----- summary lines ---------------------------------------------------------------

/// The summary lines, printed again together at the end of the run.
static SUMMARY: Mutex<Vec<String>> = Mutex::new(Vec::new());

/// Prints `>>> line` and keeps it for [`print_summary`].
pub fn summarize(line: String) {
    println!("\n>>> {line}\n");
    SUMMARY.lock().unwrap().push(line);
}

/// Every [`summarize`]d line again, under `==== summary ====`.
pub fn print_summary() {
    let summary = SUMMARY.lock().unwrap();
    if !summary.is_empty() {
        println!("==== summary ====");
        for line in summary.iter() {
            println!("{line}");
        }
    }
}

// ----- formatting and statistics ----------------------------------------------------

pub fn ms(d: Duration) -> String {
    format!("{:.3} ms", d.as_secs_f64() * 1e3)
}

pub fn mib(bytes: u64) -> String {
    format!("{:.0} MiB", bytes as f64 / (1024.0 * 1024.0))
}

/// Nearest-rank percentile `p` (0–100] of sorted samples.
pub fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let n = sorted.len();
    let rank = ((p / 100.0) * n as f64).ceil() as usize;
    sorted[rank.clamp(1, n) - 1]
}

/// Latency samples of one measurement.
#[derive(Default)]
pub struct Samples(pub Vec<Duration>);

impl Samples {
    pub fn push(&mut self, d: Duration) {
        self.0.push(d);
    }

    pub fn sorted(&self) -> Vec<Duration> {
        let mut sorted = self.0.clone();
        sorted.sort();
        sorted
    }

    /// Nearest-rank percentile `p`; zero without samples.
    pub fn p(&self, p: f64) -> Duration {
        if self.0.is_empty() {
            return Duration::ZERO;
        }
        percentile(&self.sorted(), p)
    }

    pub fn mean(&self) -> Duration {
        self.0.iter().sum::<Duration>() / self.0.len().max(1) as u32
    }

    pub fn max(&self) -> Duration {
        self.0.iter().copied().max().unwrap_or_default()
    }

    /// `p50 x, p99 y (mean z, max w, n samples)`.
    pub fn describe(&self) -> String {
        if self.0.is_empty() {
            return "no samples".into();
        }
        format!(
            "p50 {}, p99 {} (mean {}, max {}, {} samples)",
            ms(self.p(50.0)),
            ms(self.p(99.0)),
            ms(self.mean()),
            ms(self.max()),
            self.0.len()
        )
    }
}

// ----- files ------------------------------------------------------------------------

/// `<target>/cairn-bench`: `$CARGO_TARGET_DIR`, else the target folder this bench binary
/// runs from (`<target>/release/deps/<bench>-<hash>`), else `./target`.
pub fn bench_dir() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .or_else(|| {
            let exe = std::env::current_exe().ok()?;
            Some(exe.parent()?.parent()?.parent()?.to_path_buf())
        })
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target"));
    target.join("cairn-bench")
}

/// `path` with `suffix` appended to its file name.
pub fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(suffix);
    PathBuf::from(s)
}

/// Removes the files of a cairn memory at `db`: the database, its WAL and shared memory,
/// a `.done` marker, and its index folder.
pub fn remove_memory_files(db: &Path) {
    for suffix in ["", "-wal", "-shm", ".done"] {
        let _ = std::fs::remove_file(with_suffix(db, suffix));
    }
    let _ = std::fs::remove_dir_all(with_suffix(db, ".index"));
}

/// Bytes in `path`, a file or a folder (recursively); 0 if missing.
pub fn dir_size(path: &Path) -> u64 {
    match std::fs::metadata(path) {
        Ok(m) if m.is_dir() => std::fs::read_dir(path)
            .map(|entries| entries.flatten().map(|e| dir_size(&e.path())).sum())
            .unwrap_or(0),
        Ok(m) => m.len(),
        Err(_) => 0,
    }
}

pub fn copy_dir(from: &Path, to: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(to)?;
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        let target = to.join(entry.file_name());
        if entry.file_type()?.is_dir() {
            copy_dir(&entry.path(), &target)?;
        } else {
            std::fs::copy(entry.path(), target)?;
        }
    }
    Ok(())
}

/// Copies a closed memory (its file, WAL if any, and index folder) to `to`, so that
/// opening the copy finds its index caught up instead of rebuilding it.
pub fn copy_memory(from: &Path, to: &Path) -> std::io::Result<()> {
    for suffix in ["", "-wal"] {
        let source = with_suffix(from, suffix);
        if source.exists() {
            std::fs::copy(&source, with_suffix(to, suffix))?;
        }
    }
    let index = with_suffix(from, ".index");
    if index.exists() {
        copy_dir(&index, &with_suffix(to, ".index"))?;
    }
    Ok(())
}

// ----- memories ---------------------------------------------------------------------

/// `sync`, repeated while it reports the index as behind or busy (each wait is bounded
/// at 60 s; a model embedding a large backlog takes longer).
pub fn sync_fully(memory: &Memory) -> Duration {
    let start = Instant::now();
    loop {
        match memory.sync() {
            Ok(()) => return start.elapsed(),
            Err(e) if e.is_retryable() => {
                println!(
                    "  (sync still waiting for the indexer after {:.0} s)",
                    start.elapsed().as_secs_f64()
                );
            }
            Err(e) => panic!("sync: {e}"),
        }
    }
}

// ----- the machine ------------------------------------------------------------------

/// The first `key: value` line of a `/proc` file whose key is `key`, trimmed.
fn proc_field(file: &str, key: &str) -> Option<String> {
    let text = std::fs::read_to_string(file).ok()?;
    text.lines().find_map(|line| {
        let (k, v) = line.split_once(':')?;
        (k.trim() == key).then(|| v.trim().to_owned())
    })
}

/// The output of a command, trimmed, if it ran and succeeded.
fn command_output(program: &str, args: &[&str]) -> Option<String> {
    let out = std::process::Command::new(program)
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

/// `/proc/loadavg`'s 1, 5 and 15 minute figures.
pub fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg").map_or_else(
        |_| "unknown".into(),
        |s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "),
    )
}

/// A `kB` field of `/proc/<pid>/status` (`pid` may be `self`) in bytes: `VmHWM` is the
/// peak resident set, `VmRSS` the current one. `None` once the process is gone.
pub fn proc_memory(pid: &str, key: &str) -> Option<u64> {
    let value = proc_field(&format!("/proc/{pid}/status"), key)?;
    let kib: u64 = value.trim_end_matches("kB").trim().parse().ok()?;
    Some(kib * 1024)
}

/// CPU count, CPU model, memory, the date and the source revision, for the record.
pub fn machine() -> String {
    let unknown = || "unknown".to_owned();
    let cpus = std::thread::available_parallelism().map_or(0, |n| n.get());
    format!(
        "nproc {cpus}, CPU `{}` (/proc/cpuinfo model name), MemTotal {}, date {}, source {}",
        proc_field("/proc/cpuinfo", "model name").unwrap_or_else(unknown),
        proc_field("/proc/meminfo", "MemTotal").unwrap_or_else(unknown),
        command_output("date", &["-u", "+%Y-%m-%d %H:%M UTC"]).unwrap_or_else(unknown),
        command_output("git", &["describe", "--always", "--dirty"]).unwrap_or_else(unknown),
    )
}

/// The share of the exact top k a fast nearest-neighbour result found, counting by score
/// so that ties at the k-th exact score are not held against it.
pub fn recall(exact: &[(i64, f32)], fast: &[(i64, f32)]) -> f64 {
    let Some(&(_, bar)) = exact.last() else {
        return 1.0;
    };
    let ids: std::collections::HashSet<i64> = exact.iter().map(|h| h.0).collect();
    let found = fast
        .iter()
        .filter(|h| ids.contains(&h.0) || h.1 >= bar)
        .count()
        .min(exact.len());
    found as f64 / exact.len() as f64
}
