//! The checkpoint policies, observed on real files: a standalone memory empties its WAL
//! when idle; a replicated one never truncates or restarts the WAL (not on idle, not on
//! close), runs only the PASSIVE guard, and the file remembers its policy.

mod common;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use cairn::{CheckpointMode, CheckpointPolicy, CheckpointTrigger, Memory, Options};
use rusqlite::Connection;

fn wal_path(db: &Path) -> PathBuf {
    let mut wal = db.as_os_str().to_owned();
    wal.push("-wal");
    PathBuf::from(wal)
}

fn wal_len(db: &Path) -> u64 {
    std::fs::metadata(wal_path(db)).map_or(0, |m| m.len())
}

fn write_some(memory: &Memory, from: usize, n: usize) {
    for i in from..from + n {
        memory
            .add_triple((format!("Person {i}").as_str(), "knows", "Ann"))
            .unwrap();
    }
}

fn replicated() -> Options {
    common::options().checkpoint_policy(CheckpointPolicy::Replicated)
}

/// Polls `done` for up to `limit`; true once it holds. A correctness check with a
/// generous bound for a slow CI machine, not a timing measurement.
fn eventually(limit: Duration, mut done: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    while start.elapsed() < limit {
        if done() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    done()
}

#[test]
fn a_standalone_memory_truncates_its_wal_when_idle() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("m.db");
    let memory = Memory::open_with(&db, common::options()).unwrap();
    write_some(&memory, 0, 50);
    assert!(wal_len(&db) > 0, "the writes went to the WAL");
    // The run is recorded just after the checkpoint truncated the file: wait for both,
    // or a poll landing between the two sees an empty WAL and no run yet.
    assert!(
        eventually(Duration::from_secs(30), || wal_len(&db) == 0
            && memory.wal_status().last_run.is_some()),
        "the idle checkpoint emptied the WAL"
    );
    let status = memory.wal_status();
    let run = status.last_run.expect("the idle checkpoint is recorded");
    assert_eq!(
        (run.mode, run.trigger),
        (CheckpointMode::Truncate, CheckpointTrigger::Idle)
    );
    assert!(run.complete);
    assert!(status.last_checkpoint_at.is_some());
    assert_eq!(memory.stats().unwrap().relations, 50, "nothing lost by it");
}

#[test]
fn a_replicated_memory_never_truncates_and_keeps_its_wal_on_close() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("m.db");
    // A tiny autocheckpoint setting that a standalone memory would act on: replicated
    // mode must turn SQLite's automatic checkpoints off regardless.
    let memory = Memory::open_with(&db, replicated().autocheckpoint_pages(10)).unwrap();
    let main_file = std::fs::metadata(&db).unwrap();
    write_some(&memory, 0, 50);
    let before = wal_len(&db);
    assert!(before > 10 * 4096, "more than 10 pages were logged");
    std::thread::sleep(cairn_idle_wait());
    assert!(
        wal_len(&db) >= before,
        "no checkpoint shrank the WAL while idle"
    );
    let after = std::fs::metadata(&db).unwrap();
    assert_eq!(
        (after.len(), after.modified().unwrap()),
        (main_file.len(), main_file.modified().unwrap()),
        "no checkpoint wrote the main file"
    );
    assert_eq!(memory.wal_status().runs, 0, "no checkpoint ran at all");

    let run = memory.checkpoint().unwrap();
    assert_eq!(run.mode, CheckpointMode::Passive, "manual is PASSIVE too");
    assert!(wal_len(&db) >= before, "PASSIVE keeps the WAL file");
    drop(memory);
    assert!(
        wal_len(&db) > 0,
        "closing the last connection left the WAL for the replication tool"
    );
}

/// A little more than the idle period of a standalone memory, so a wrong policy would
/// have had its chance to truncate.
fn cairn_idle_wait() -> Duration {
    Duration::from_millis(2_500)
}

#[test]
fn the_replicated_guard_runs_passive_checkpoints_over_the_threshold() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("m.db");
    let memory = Memory::open_with(&db, replicated().wal_guard_bytes(64 * 1024)).unwrap();
    // A reader holding a snapshot stands in for Litestream's long read transaction:
    // the guard must neither wait for it nor fail the writers.
    let reader = Connection::open(&db).unwrap();
    reader
        .execute_batch("BEGIN; SELECT count(*) FROM entity;")
        .unwrap();
    let mut sizes = Vec::new();
    for round in 0..20 {
        write_some(&memory, round * 20, 20);
        sizes.push(wal_len(&db));
        std::thread::sleep(Duration::from_millis(60));
    }
    reader.execute_batch("COMMIT").unwrap();
    let status = memory.wal_status();
    assert!(status.guard_trips > 0, "the WAL passed 64 KiB: {status:?}");
    let run = status.last_run.unwrap();
    assert_eq!(
        (run.mode, run.trigger),
        (CheckpointMode::Passive, CheckpointTrigger::WalGuard)
    );
    assert!(
        sizes.windows(2).all(|w| w[1] >= w[0]),
        "the WAL was never truncated or restarted under the reader: {sizes:?}"
    );
    assert_eq!(memory.stats().unwrap().relations, 400);
}

#[test]
fn the_file_remembers_its_policy() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("m.db");
    drop(Memory::open_with(&db, replicated()).unwrap());
    let plain = Memory::open(&db).unwrap();
    assert_eq!(plain.wal_status().policy, CheckpointPolicy::Replicated);
    drop(plain);
    let back = Memory::open_with(
        &db,
        Options::new().checkpoint_policy(CheckpointPolicy::Standalone),
    )
    .unwrap();
    assert_eq!(back.wal_status().policy, CheckpointPolicy::Standalone);
    drop(back);
    assert_eq!(
        Memory::open(&db).unwrap().wal_status().policy,
        CheckpointPolicy::Standalone
    );
}

/// Steady load: readers always present, writers never pausing. The standalone limit keeps
/// the `-wal` file near `wal_limit_bytes` instead of letting it grow with the writes.
#[test]
fn a_standalone_wal_stays_bounded_under_steady_readers_and_writers() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("steady.db");
    let limit: u64 = 1 << 20;
    let memory = Options::new().wal_limit_bytes(limit).open(&path).unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let max_wal = Arc::new(AtomicU64::new(0));
    let mut threads = Vec::new();
    for r in 0..3 {
        let (m, stop) = (memory.clone(), Arc::clone(&stop));
        threads.push(std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                let _ = m.search(&format!("fact {r}"), &cairn::SearchOptions::new());
                let _ = m.stats();
            }
        }));
    }
    {
        let (stop, max_wal, path) = (Arc::clone(&stop), Arc::clone(&max_wal), path.clone());
        threads.push(std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                max_wal.fetch_max(wal_len(&path), Ordering::Relaxed);
                std::thread::sleep(Duration::from_millis(2));
            }
        }));
    }
    // About 4 MB of text, which with the index pages it touches is some 25 MB of WAL.
    let filler = "x".repeat(1_000);
    let writers: Vec<_> = (0..2)
        .map(|w| {
            let (m, filler) = (memory.clone(), filler.clone());
            std::thread::spawn(move || {
                for i in 0..2_000 {
                    m.observe(
                        format!("Writer {w}").as_str(),
                        &format!("fact {i} {filler}"),
                    )
                    .unwrap();
                }
            })
        })
        .collect();
    for w in writers {
        w.join().unwrap();
    }
    stop.store(true, Ordering::Relaxed);
    for t in threads {
        t.join().unwrap();
    }
    let seen = max_wal.load(Ordering::Relaxed);
    let status = memory.wal_status();
    assert!(status.guard_trips > 0, "{status:?}");
    // Without the limit the WAL of a 24 MB run of this test reached 150 MB (measured
    // once: 149,803,232 bytes); with it, the writes between two tries come on top.
    assert!(
        seen <= 8 * limit,
        "the WAL reached {seen} bytes with a limit of {limit}"
    );
}
