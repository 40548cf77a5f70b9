//! Crash consistency: a child process writes triples and observations and reports every
//! acknowledged write over a pipe; the parent SIGKILLs it at random moments, then checks
//! the file: integrity and `verify` pass, every acknowledged write is there, at most the
//! one in-flight write beyond them, no name stored twice, and the index catches up.
//! The checker is shown to catch a planted bug: a child that acknowledges before it
//! commits. A third variant writes every step with an idempotency key and, after each
//! kill, repeats the in-flight write: it lands exactly once, whether the killed child's
//! commit made it or not.

mod common;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::time::{Duration, Instant};

use cairn::{Batch, Durability, Episode, Memory, Options, Recorded, VerifyMode};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// The child: writes until killed. Round `r` writes `P{r}-{i}` –knows→ `P{r}-{i+1}`
/// for even steps and an observation on `P{r}-{i}` for odd ones, printing `ACK {i}`
/// after each write returned (or, with `CAIRN_CRASH_EARLY_ACK`, before it started).
#[test]
#[ignore = "entry point for child processes spawned by other tests"]
fn child_process() {
    let path = std::env::var("CAIRN_CHILD_DB").expect("CAIRN_CHILD_DB");
    let round: u64 = std::env::var("CAIRN_CHILD_SEED").unwrap().parse().unwrap();
    let task = std::env::var("CAIRN_CHILD_TASK").unwrap_or_default();
    let durability = match task.as_str() {
        "normal" => Durability::Normal,
        _ => Durability::Full,
    };
    let keyed = task == "keyed";
    let early = std::env::var_os("CAIRN_CRASH_EARLY_ACK").is_some();
    let memory = common::options()
        .durability(durability)
        .open(&path)
        .unwrap();
    println!("READY");
    for i in 0u64.. {
        if early {
            println!("ACK {i}");
        }
        if keyed {
            record(&memory, round, i);
        } else {
            write(&memory, round, i);
        }
        if !early {
            println!("ACK {i}");
        }
    }
}

fn name(round: u64, i: u64) -> String {
    format!("P{round}-{i}")
}

fn write(memory: &Memory, round: u64, i: u64) {
    if i.is_multiple_of(2) {
        let (s, o) = (name(round, i), name(round, i + 1));
        memory
            .add_triple((s.as_str(), "knows", o.as_str()))
            .unwrap();
    } else {
        memory
            .observe(name(round, i - 1).as_str(), &format!("fact {i}"))
            .unwrap();
    }
}

/// Write `i` of `round` as an idempotent batch: its key names the step.
fn record(memory: &Memory, round: u64, i: u64) -> Recorded {
    let episode = Episode::new("crash-test").idempotency_key(format!("{round}-{i}"));
    let (s, o) = (name(round, i), name(round, i + 1));
    let fact = format!("fact {i}");
    let subject = name(round, i - i % 2);
    let mut batch = Batch::new();
    if i.is_multiple_of(2) {
        batch.triple((s.as_str(), "knows", o.as_str()));
    } else {
        batch.observe(subject.as_str(), fact.as_str());
    }
    memory.record(&episode, &batch).unwrap()
}

/// Repeats the write that was in flight when the child died, with its key, and checks
/// it is stored exactly once: replayed if the child's commit landed, written if not.
fn repeat_in_flight(memory: &Memory, round: u64, i: u64) -> Result<(), String> {
    let landed = is_stored(memory, round, i);
    let again = record(memory, round, i);
    if again.replayed != landed {
        return Err(format!(
            "write {i}: stored before the repeat: {landed}, replayed: {}",
            again.replayed
        ));
    }
    let episodes = memory.episodes_by_agent("crash-test").unwrap();
    let key = format!("{round}-{i}");
    let copies = episodes
        .iter()
        .filter(|e| e.idempotency_key.as_deref() == Some(key.as_str()))
        .count();
    if copies != 1 {
        return Err(format!("write {i}: {copies} episodes carry its key"));
    }
    if let Some(relation) = again.report.relations.first() {
        let mentions = memory.relation(*relation).unwrap().map(|r| r.mentions);
        if mentions != Some(1) {
            return Err(format!(
                "write {i}: the triple counts {mentions:?} mentions"
            ));
        }
    }
    Ok(())
}

/// Whether write `i` of `round` is in the memory.
fn is_stored(memory: &Memory, round: u64, i: u64) -> bool {
    let subject = if i.is_multiple_of(2) { i } else { i - 1 };
    let Some(id) = memory.resolve(&name(round, subject)).unwrap() else {
        return false;
    };
    if i.is_multiple_of(2) {
        memory
            .outgoing(id)
            .unwrap()
            .iter()
            .any(|r| r.object_name == name(round, i + 1))
    } else {
        let text = format!("fact {i}");
        memory
            .observations(id)
            .unwrap()
            .iter()
            .any(|o| o.text == text)
    }
}

/// Runs one child round on `path`, kills it after `delay` of writing, and returns the
/// acknowledged write numbers.
fn run_and_kill(path: &Path, round: u64, task: &str, early: bool, delay: Duration) -> Vec<u64> {
    let mut command = common::child_command(task, path, round);
    command.stderr(std::process::Stdio::null());
    if early {
        command.env("CAIRN_CRASH_EARLY_ACK", "1");
    }
    let mut child = command.spawn().expect("spawn child");
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    // Wait until it has opened the memory, then let it write for `delay`.
    for line in lines.by_ref() {
        if line.unwrap().contains("READY") {
            break;
        }
    }
    let reader = std::thread::spawn(move || {
        lines
            .map_while(Result::ok)
            .filter_map(|l| l.strip_prefix("ACK ").and_then(|n| n.parse().ok()))
            .collect::<Vec<u64>>()
    });
    std::thread::sleep(delay);
    child.kill().expect("SIGKILL"); // std sends SIGKILL on unix
    child.wait().unwrap();
    reader.join().unwrap()
}

/// Checks the file after a kill; `Err` describes the first broken promise.
fn check_after_kill(path: &Path, round: u64, acked: &[u64], task: &str) -> Result<(), String> {
    let strict = task != "normal";
    let keyed = task == "keyed";
    common::assert_file_is_sound(path);
    let memory = Options::new().open(path).map_err(|e| e.to_string())?;
    let report = memory.verify(VerifyMode::Full).map_err(|e| e.to_string())?;
    if !report.is_ok() {
        return Err(format!("verify: {:?}", report.problems));
    }
    if !report.index_compared || report.index_seq != report.last_seq {
        return Err("the index did not catch up".into());
    }
    let stats = memory.stats().unwrap();
    if stats.aliases != stats.entities {
        return Err(format!(
            "{} entities but {} names: a name stored twice or lost",
            stats.entities, stats.aliases
        ));
    }
    if !strict {
        return Ok(());
    }
    if let Some(lost) = acked.iter().find(|&&i| !is_stored(&memory, round, i)) {
        return Err(format!(
            "round {round}: acknowledged write {lost} is missing"
        ));
    }
    // Beyond the last acknowledged write, at most the one in flight may have landed.
    let next = acked.last().map_or(0, |&i| i + 1);
    if is_stored(&memory, round, next + 1) {
        return Err(format!(
            "round {round}: write {} landed, never in flight",
            next + 1
        ));
    }
    if keyed {
        if let Some(&last) = acked.last()
            && !record(&memory, round, last).replayed
        {
            return Err(format!("acknowledged write {last} was written again"));
        }
        repeat_in_flight(&memory, round, next)?;
    }
    Ok(())
}

fn kill_loop(task: &str, rounds: u64, seed: u64) -> (u64, u64) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("crash.db");
    let mut rng = StdRng::seed_from_u64(seed);
    let (mut kills, mut acked) = (0, 0);
    for round in 0..rounds {
        let delay = Duration::from_millis(rng.random_range(5..120));
        let acks = run_and_kill(&path, round, task, false, delay);
        kills += 1;
        acked += acks.len() as u64;
        if let Err(e) = check_after_kill(&path, round, &acks, task) {
            panic!("after kill {kills} ({} acknowledged): {e}", acks.len());
        }
    }
    (kills, acked)
}

#[test]
fn sigkill_loses_no_acknowledged_write_with_full_durability() {
    let started = Instant::now();
    let (kills, acked) = kill_loop("full", 50, 7);
    assert_eq!(kills, 50);
    assert!(
        acked > 50,
        "the children got to write ({acked} acknowledged)"
    );
    eprintln!(
        "50 kills, {acked} acknowledged writes, {:?}",
        started.elapsed()
    );
}

#[test]
fn sigkill_with_normal_durability_keeps_the_file_sound() {
    let (kills, _) = kill_loop("normal", 15, 11);
    assert_eq!(kills, 15);
}

#[test]
fn a_keyed_write_repeated_after_a_kill_lands_exactly_once() {
    let (kills, acked) = kill_loop("keyed", 20, 13);
    assert_eq!(kills, 20);
    assert!(
        acked > 20,
        "the children got to write ({acked} acknowledged)"
    );
}

/// The checker must fail a writer that acknowledges before it commits.
#[test]
fn the_checker_catches_an_early_acknowledgement() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("early.db");
    let mut rng = StdRng::seed_from_u64(3);
    for round in 0..40 {
        let delay = Duration::from_millis(rng.random_range(5..120));
        let acks = run_and_kill(&path, round, "full", true, delay);
        if check_after_kill(&path, round, &acks, "full").is_err() {
            return; // caught
        }
    }
    panic!("40 kills of a child that acknowledges early, and the checker never noticed");
}
