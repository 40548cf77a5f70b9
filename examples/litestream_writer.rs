//! A writer for Litestream crash drills: it opens a memory for replication
//! ([`CheckpointPolicy::Replicated`], [`Durability::Full`]) and records numbered writes
//! until it is killed, printing one line per acknowledged write:
//!
//! ```text
//! ack <n> <unix time in ms> [replayed]
//! ```
//!
//! Write `n` is one [`Memory::record`] call: an episode of agent `litestream-writer`
//! with idempotency key `w-<n>` and one observation. `record` rather than `add_triple`
//! because the key makes every write both findable in a restored copy (`SELECT
//! idempotency_key FROM episode`) and safe to repeat: a write in flight when the process
//! was killed may or may not have committed, so a restarted writer starts again at the
//! first *unacknowledged* number, and `record` either writes it or finds it (`replayed`).
//!
//! ```sh
//! cargo run --example litestream_writer -- PATH [START [RATE]]
//! #   START  the first write number (default 1); after a crash: last acked + 1
//! #   RATE   writes per second at most (default 0: as fast as commits go)
//! ```
//!
//! `scripts/litestream-drill.sh` runs it under Litestream; see `docs/litestream.md`.

use std::io::Write;
use std::process::ExitCode;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use cairn::{Batch, CheckpointPolicy, Durability, Episode, Memory, Options, Recorded};

const AGENT: &str = "litestream-writer";

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("litestream_writer: {message}");
            ExitCode::FAILURE
        }
    }
}

fn run() -> Result<(), String> {
    let mut args = std::env::args().skip(1);
    let usage = "usage: litestream_writer PATH [START [RATE]]";
    let path = args.next().ok_or(usage)?;
    let start: u64 = number(args.next(), 1, "START")?;
    let rate: u64 = number(args.next(), 0, "RATE")?;
    let pause = (rate > 0).then(|| Duration::from_secs_f64(1.0 / rate as f64));

    let options = Options::new()
        .checkpoint_policy(CheckpointPolicy::Replicated)
        .durability(Durability::Full);
    let memory = Memory::open_with(&path, options).map_err(|e| format!("open {path}: {e}"))?;
    let wal = memory.wal_status();
    eprintln!(
        "litestream_writer: {path}: policy {}, wal {} bytes, from write {start}",
        wal.policy.as_str(),
        wal.wal_bytes
    );

    let mut out = std::io::stdout().lock();
    let mut next_at = Instant::now();
    for n in start.. {
        let recorded = write(&memory, n)?;
        let ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis());
        let replayed = if recorded.replayed { " replayed" } else { "" };
        writeln!(out, "ack {n} {ms}{replayed}")
            .and_then(|()| out.flush())
            .map_err(|e| format!("stdout: {e}"))?;
        if let Some(pause) = pause {
            next_at += pause;
            std::thread::sleep(next_at.saturating_duration_since(Instant::now()));
        }
    }
    Ok(())
}

/// Records write `n`. A busy database or a commit of unknown outcome is retried with the
/// same key: the retry writes it, or finds it written and reports `replayed`.
fn write(memory: &Memory, n: u64) -> Result<Recorded, String> {
    let episode = Episode::new(AGENT).idempotency_key(format!("w-{n}"));
    let mut batch = Batch::new();
    batch.observe("litestream drill", format!("write {n}"));
    let mut attempt = 1;
    loop {
        match memory.record(&episode, &batch) {
            Ok(recorded) => return Ok(recorded),
            Err(e) if attempt < 5 && (e.is_outcome_unknown() || e.is_retryable()) => {
                eprintln!("litestream_writer: write {n}: {e}; retrying with the same key");
                std::thread::sleep(Duration::from_millis(100 * attempt));
                attempt += 1;
            }
            Err(e) => return Err(format!("write {n}: {e}")),
        }
    }
}

fn number(arg: Option<String>, default: u64, name: &str) -> Result<u64, String> {
    arg.map_or(Ok(default), |s| {
        s.parse()
            .map_err(|_| format!("{name} must be a whole number, not {s:?}"))
    })
}
