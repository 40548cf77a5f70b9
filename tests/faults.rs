//! I/O faults: with libfiu's `fiu-run` (Debian package `fiu-utils`) failing a small
//! fraction of the write and sync calls, every write returns `Ok` or a typed I/O error,
//! never a panic on any thread, and the file verifies after reopening: every write that
//! returned `Ok` is in it, one that failed with `OutcomeUnknown` (its `COMMIT` failed) is
//! in it whole or not at all, and one that failed with any other error is not in it.
//!
//! How: the parent runs this test binary's `child_process` under `fiu-run -x` (libfiu's
//! POSIX preload library) once per round of [`ROUNDS`], all on one file. The child opens
//! the memory with `Durability::Full`, makes [`OPS`] writes (triples, observations,
//! batches) and reports each outcome; a panic hook records panics of every thread. After
//! each round the parent reopens the file without faults and checks it. The checker is
//! shown to catch a panic planted on a thread of the child's own. A third test creates
//! new memories under fault: each `open` either fails or leaves its file in WAL mode.
//!
//! Which calls fail: the bundled SQLite (unix VFS) writes the database and its WAL with
//! `pwrite64` and syncs with `fsync`; tantivy (the search index) writes with `write` and
//! syncs with `fdatasync`. `fiu-run -c` enables `posix/io/rw/pwrite`,
//! `posix/io/sync/fsync` and `posix/io/sync/fdatasync` from the child's start, so its
//! open is under fault too. `write` also carries the test harness's output and the
//! child's report, so the child turns `posix/io/rw/write` on only for its writes, through
//! libfiu's remote control (`fiu-ctrl` on its own pid; libfiu's control thread is exempt
//! from failure points, so the reply to the `disable` always arrives). A failing call
//! sets an errno libfiu picks among those the call may return (EIO, ENOSPC, EINTR...)
//! unless the round fixes one.

//!
//! These tests need a system tool, so a plain `cargo test` lists them as ignored; `.ci/run`
//! installs fiu-utils and runs them in its `faults` step:
//! `cargo test --test faults -- --ignored --skip child_process`. Without the tool they
//! fail, naming it.

mod common;

use std::io::Read;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::Path;
use std::process::Command;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use cairn::{Batch, Durability, Memory};

/// Writes per round.
const OPS: u64 = 150;
/// New files the `fresh-opens` child creates.
const FRESH_OPENS: u64 = 60;
/// How often the child tries to open a memory before it gives up.
const OPEN_ATTEMPTS: usize = 50;
/// Far beyond a round's normal few seconds: a child this slow hangs.
const CHILD_TIMEOUT: Duration = Duration::from_secs(120);

/// One child run: the failure points `fiu-run` enables from the start, and how often a
/// `write` fails while the child writes.
struct Round {
    start: &'static [&'static str],
    write: f64,
}

/// Probabilities are per call. A write is about a dozen `pwrite64`s and one `fsync`, so
/// each round fails some 10–20 % of its writes: plenty of both outcomes.
const ROUNDS: &[Round] = &[
    // SQLite's own calls only.
    Round {
        start: &[
            "enable_random name=posix/io/rw/pwrite,probability=0.01",
            "enable_random name=posix/io/sync/fsync,probability=0.02",
        ],
        write: 0.0,
    },
    // Every write and sync, SQLite's and the index's.
    Round {
        start: &[
            "enable_random name=posix/io/rw/pwrite,probability=0.01",
            "enable_random name=posix/io/sync/fsync,probability=0.02",
            "enable_random name=posix/io/sync/fdatasync,probability=0.05",
        ],
        write: 0.02,
    },
    // A full disk: failed writes say ENOSPC (28), and some writes are cut short.
    Round {
        start: &[
            "enable_random name=posix/io/rw/pwrite,probability=0.01,failinfo=28",
            "enable_random name=posix/io/rw/pwrite/reduce,probability=0.05",
            "enable_random name=posix/io/sync/fdatasync,probability=0.02",
        ],
        write: 0.02,
    },
    // Syncs only, often.
    Round {
        start: &[
            "enable_random name=posix/io/sync/fsync,probability=0.1",
            "enable_random name=posix/io/sync/fdatasync,probability=0.1",
        ],
        write: 0.0,
    },
];

/// Faults for the `fresh-opens` child: with a tenth of the `fsync`s failing, one hits the
/// commit that switches a new file to WAL in 10–40 % of the files (measured), so sixty
/// files all but surely include some.
const FRESH_OPEN_FAULTS: Round = Round {
    start: &["enable_random name=posix/io/sync/fsync,probability=0.1"],
    write: 0.0,
};

/// The kinds (see [`kind`]) an injected failure may surface as from a write: SQLite's
/// "disk I/O error" (`SQLITE_IOERR_*`) or "database or disk is full" (`ENOSPC`), before
/// `COMMIT` as `Sqlite` (nothing was written), from `COMMIT` as `OutcomeUnknown`.
const WRITE_ERRORS: &[&str] = &[
    "Sqlite/SystemIoFailure",
    "Sqlite/DiskFull",
    "OutcomeUnknown/SystemIoFailure",
    "OutcomeUnknown/DiskFull",
];
/// Opening also creates directories and opens the search index, whose I/O errors come
/// as `Io` and `Index`.
const OPEN_EXTRA_ERRORS: &[&str] = &["Io", "Index"];

/// The child, under fault: task `writes` opens the memory, writes and closes it; task
/// `fresh-opens` creates new memories. Then, with faults off, it reports one line per
/// outcome (`OPEN`, `OP`, `FRESH`, `CLOSE`, `PANIC`) and `END`.
#[test]
#[ignore = "entry point for child processes spawned by other tests"]
fn child_process() {
    let path = std::env::var("CAIRN_CHILD_DB").expect("CAIRN_CHILD_DB");
    let round: u64 = std::env::var("CAIRN_CHILD_SEED").unwrap().parse().unwrap();
    let write_faults: f64 = std::env::var("CAIRN_FAULT_WRITE").unwrap().parse().unwrap();
    let panics = record_panics();
    let mut report = Vec::new();
    let fresh_opens = std::env::var("CAIRN_CHILD_TASK").unwrap() == "fresh-opens";
    let memory = if fresh_opens {
        open_fresh_files(Path::new(&path), &mut report);
        None
    } else {
        open_under_faults(Path::new(&path), &mut report)
    };
    if write_faults > 0.0 {
        fiu_ctrl(&format!(
            "enable_random name=posix/io/rw/write,probability={write_faults}"
        ));
    }
    if let Some(memory) = memory {
        for i in 0..OPS {
            // Nothing is printed while faults are on: a failed write to stdout panics.
            report.push(
                match catch_unwind(AssertUnwindSafe(|| write(&memory, round, i))) {
                    Ok(Ok(())) => format!("OP\t{i}\tok"),
                    Ok(Err(e)) => format!("OP\t{i}\terr\t{}", describe(&e)),
                    Err(_) => format!("OP\t{i}\tpanic"),
                },
            );
        }
        if std::env::var_os("CAIRN_FAULT_PLANT_PANIC").is_some() {
            let _ = std::thread::spawn(|| panic!("planted panic")).join();
        }
        // Closing stops the indexer and checkpoints, also under fault; it can only panic.
        if catch_unwind(AssertUnwindSafe(|| drop(memory))).is_err() {
            report.push("CLOSE\tpanic".to_owned());
        }
    }
    if write_faults > 0.0 {
        fiu_ctrl("disable name=posix/io/rw/write");
    }
    // The harness may have printed "test child_process ... " without a line break.
    println!();
    for line in report {
        println!("{line}");
    }
    for panic in panics.lock().unwrap_or_else(PoisonError::into_inner).iter() {
        println!("PANIC\t{panic}");
    }
    println!("END");
}

fn open_under_faults(path: &Path, report: &mut Vec<String>) -> Option<Memory> {
    for _ in 0..OPEN_ATTEMPTS {
        let options = common::options()
            .durability(Durability::Full)
            // Checkpoints every few writes, so that the database file itself is written
            // (and synced) under fault, not only the WAL.
            .autocheckpoint_pages(20);
        match catch_unwind(AssertUnwindSafe(|| options.open(path))) {
            Ok(Ok(memory)) => return Some(memory),
            Ok(Err(e)) => report.push(format!("OPEN\terr\t{}", describe(&e))),
            Err(_) => report.push("OPEN\tpanic".to_owned()),
        }
    }
    None
}

/// Creates [`FRESH_OPENS`] new memories beside `path` and reports the journal mode each
/// file's header records once `open` returned.
fn open_fresh_files(path: &Path, report: &mut Vec<String>) {
    for k in 0..FRESH_OPENS {
        let fresh = path.with_extension(format!("{k}.db"));
        if let Some(memory) = open_under_faults(&fresh, report) {
            report.push(format!("FRESH\t{k}\t{}", journal_mode_in_header(&fresh)));
            if catch_unwind(AssertUnwindSafe(|| drop(memory))).is_err() {
                report.push("CLOSE\tpanic".to_owned());
            }
        }
    }
}

/// `wal` or `rollback`, from the file format's version numbers (header bytes 18 and 19:
/// 2 in WAL mode, 1 otherwise). Read with plain reads, which no failure point touches:
/// asking SQLite would map the WAL index, which can fail.
fn journal_mode_in_header(path: &Path) -> String {
    let mut header = [0; 20];
    std::fs::File::open(path)
        .and_then(|mut f| f.read_exact(&mut header))
        .expect("read the database header");
    match [header[18], header[19]] {
        [2, 2] => "wal".to_owned(),
        [1, 1] => "rollback".to_owned(),
        other => format!("{other:?}"),
    }
}

/// Records every panic, on any thread, without writing anything (stderr may be failing
/// too); the child reports them once faults are off.
fn record_panics() -> Arc<Mutex<Vec<String>>> {
    let panics = Arc::new(Mutex::new(Vec::new()));
    let record = Arc::clone(&panics);
    std::panic::set_hook(Box::new(move |info| {
        let thread = std::thread::current();
        let line = one_line(&format!("{}: {info}", thread.name().unwrap_or("unnamed")));
        record
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(line);
    }));
    panics
}

/// Sends `command` to this process's libfiu over the remote-control FIFO `fiu-run` set
/// up at `$FIU_CTRL_FIFO-<pid>`.
fn fiu_ctrl(command: &str) {
    let prefix = std::env::var("FIU_CTRL_FIFO").expect("FIU_CTRL_FIFO: not run by fiu-run");
    let output = Command::new("fiu-ctrl")
        .args(["-f", &prefix, "-c", command])
        .arg(std::process::id().to_string())
        // fiu-ctrl itself runs without fault injection.
        .env_remove("LD_PRELOAD")
        .env_remove("FIU_ENABLE")
        .env_remove("FIU_CTRL_FIFO")
        .output()
        .expect("run fiu-ctrl");
    // fiu-ctrl exits 0 even when it fails, but then says so.
    assert!(
        output.status.success() && output.stdout.is_empty() && output.stderr.is_empty(),
        "fiu-ctrl {command:?}: {output:?}"
    );
}

fn subject(round: u64, i: u64) -> String {
    format!("F{round}-{i}")
}

fn object(round: u64, i: u64) -> String {
    format!("F{round}-{i} object")
}

fn fact(round: u64, i: u64) -> String {
    format!("fact {round}-{i}")
}

/// Write `i` of `round`: a triple, an observation, or a batch of both, each on an
/// entity of its own, so what a write left behind can be told from the others'.
fn write(memory: &Memory, round: u64, i: u64) -> cairn::Result<()> {
    let (s, o, f) = (subject(round, i), object(round, i), fact(round, i));
    match i % 3 {
        0 => memory
            .add_triple((s.as_str(), "knows", o.as_str()))
            .map(drop),
        1 => memory.observe(s.as_str(), &f).map(drop),
        _ => {
            let mut batch = Batch::new();
            batch
                .triple((s.as_str(), "knows", o.as_str()))
                .observe(s.as_str(), &f);
            memory.apply(&batch).map(drop)
        }
    }
}

/// Whether write `i` of `round` is in the memory: `Ok(true)` whole, `Ok(false)` not at
/// all, `Err` partly (which no write may leave behind, failed or not).
fn stored(memory: &Memory, round: u64, i: u64) -> Result<bool, String> {
    let (s, o, f) = (subject(round, i), object(round, i), fact(round, i));
    let (wants_triple, wants_fact) = (i % 3 != 1, !i.is_multiple_of(3));
    let subject_id = memory.resolve(&s).unwrap();
    let object_id = memory.resolve(&o).unwrap();
    let Some(id) = subject_id else {
        return match object_id {
            Some(_) => Err(format!("{o:?} exists without {s:?}")),
            None => Ok(false),
        };
    };
    let has_triple = memory
        .outgoing(id)
        .unwrap()
        .iter()
        .any(|r| r.object_name == o);
    let has_fact = memory.observations(id).unwrap().iter().any(|x| x.text == f);
    let has_object = object_id.is_some();
    if (has_triple, has_object, has_fact) == (wants_triple, wants_triple, wants_fact) {
        Ok(true)
    } else {
        Err(format!(
            "{s:?} exists, but triple {has_triple}, object {has_object}, observation {has_fact}"
        ))
    }
}

/// `kind`, Display and Debug of an error, tab-separated on one line.
fn describe(e: &cairn::Error) -> String {
    format!(
        "{}\t{}\t{}",
        kind(e),
        one_line(&e.to_string()),
        one_line(&format!("{e:?}"))
    )
}

/// The variant's name, and for an error SQLite reported also its primary result code
/// (`Sqlite/SystemIoFailure`, `OutcomeUnknown/DiskFull`).
fn kind(e: &cairn::Error) -> String {
    // `Error` is non-exhaustive; its Debug starts with the variant's name.
    let variant: String = format!("{e:?}")
        .chars()
        .take_while(char::is_ascii_alphanumeric)
        .collect();
    let code = std::error::Error::source(e)
        .and_then(|s| s.downcast_ref::<rusqlite::Error>())
        .and_then(rusqlite::Error::sqlite_error_code);
    match code {
        Some(code) => format!("{variant}/{code:?}"),
        None => variant,
    }
}

fn one_line(text: &str) -> String {
    text.replace(['\n', '\t'], " ")
}

// ----- the parent ---------------------------------------------------------------------

/// An error the child reported: its kind, Display and Debug.
#[derive(Debug)]
struct Failure {
    kind: String,
    display: String,
    debug: String,
}

impl Failure {
    fn parse(fields: &[&str]) -> Failure {
        match fields {
            [kind, display, debug] => Failure {
                kind: (*kind).to_owned(),
                display: (*display).to_owned(),
                debug: (*debug).to_owned(),
            },
            _ => panic!("malformed error report {fields:?}"),
        }
    }
}

/// What one child reported.
#[derive(Default)]
struct Outcome {
    ok: Vec<u64>,
    failed: Vec<(u64, Failure)>,
    open_errors: Vec<Failure>,
    /// New files and the journal mode in their header.
    fresh: Vec<(u64, String)>,
    panics: Vec<String>,
    /// The child's stdout and stderr, for failure messages.
    transcript: String,
}

impl Outcome {
    fn parse(stdout: &str) -> Outcome {
        let mut outcome = Outcome::default();
        for line in stdout.lines() {
            let fields: Vec<&str> = line.split('\t').collect();
            match fields.as_slice() {
                ["OP", i, "ok"] => outcome.ok.push(i.parse().unwrap()),
                ["OP", i, "err", rest @ ..] => outcome
                    .failed
                    .push((i.parse().unwrap(), Failure::parse(rest))),
                ["OP", i, "panic"] => outcome.panics.push(format!("write {i} panicked")),
                ["OPEN", "err", rest @ ..] => outcome.open_errors.push(Failure::parse(rest)),
                ["OPEN", "panic"] => outcome.panics.push("open panicked".to_owned()),
                ["FRESH", k, mode] => outcome.fresh.push((k.parse().unwrap(), (*mode).to_owned())),
                ["CLOSE", "panic"] => outcome.panics.push("close panicked".to_owned()),
                ["PANIC", message] => outcome.panics.push((*message).to_owned()),
                _ => {} // the test harness's own lines
            }
        }
        outcome
    }
}

/// Fails, saying what to install, unless libfiu's tools are on the PATH.
fn require_fiu_utils() {
    for tool in ["fiu-run", "fiu-ctrl"] {
        if let Err(e) = Command::new(tool)
            .arg("-h")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status()
        {
            panic!(
                "cannot run {tool} ({e}): this test injects I/O faults with libfiu; \
                 install Debian's fiu-utils package (apt-get install fiu-utils)"
            );
        }
    }
}

/// Runs the child's `task` on `path` under the faults of `spec` (with `env` set for it)
/// and returns what it reported; fails if it did not finish (crashed, aborted, hung).
fn run_child(
    task: &str,
    path: &Path,
    round: u64,
    spec: &Round,
    control: &Path,
    env: &[(&str, &str)],
) -> Outcome {
    let mut launcher_args = vec!["-x".to_owned(), "-f".to_owned()];
    launcher_args.push(control.to_str().unwrap().to_owned());
    for command in spec.start {
        launcher_args.extend(["-c".to_owned(), (*command).to_owned()]);
    }
    let mut command = common::child_command_via("fiu-run", &launcher_args, task, path, round);
    command
        .env("CAIRN_FAULT_WRITE", spec.write.to_string())
        .envs(env.iter().copied());
    let mut child = command.spawn().expect("spawn fiu-run");
    let mut stdout = child.stdout.take().unwrap();
    let mut stderr = child.stderr.take().unwrap();
    let read_all = |pipe: &mut dyn Read| {
        let mut text = String::new();
        pipe.read_to_string(&mut text).map(|_| text)
    };
    let (stdout, stderr, status) = std::thread::scope(|scope| {
        let out = scope.spawn(|| read_all(&mut stdout));
        let err = scope.spawn(|| read_all(&mut stderr));
        let deadline = Instant::now() + CHILD_TIMEOUT;
        let status = loop {
            if let Some(status) = child.try_wait().unwrap() {
                break Some(status);
            }
            if Instant::now() > deadline {
                child.kill().unwrap();
                child.wait().unwrap();
                break None;
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        (
            out.join().unwrap().unwrap(),
            err.join().unwrap().unwrap(),
            status,
        )
    });
    let finished = status.is_some_and(|s| s.success()) && stdout.lines().any(|l| l == "END");
    assert!(
        finished,
        "round {round}: the child did not finish ({}):\n{stdout}\n{stderr}",
        status.map_or_else(|| format!("hung for {CHILD_TIMEOUT:?}"), |s| s.to_string())
    );
    Outcome {
        transcript: format!("{stdout}\n{stderr}"),
        ..Outcome::parse(&stdout)
    }
}

/// Fails on panics and on errors other than `expected` (for writes) or those an open may
/// also give.
fn assert_typed(outcome: &Outcome, what: &str) {
    assert!(
        outcome.panics.is_empty(),
        "{what}: panics under I/O faults: {:#?}",
        outcome.panics
    );
    for failure in &outcome.open_errors {
        assert!(
            WRITE_ERRORS
                .iter()
                .chain(OPEN_EXTRA_ERRORS)
                .any(|&k| k == failure.kind),
            "{what}: opening failed with an unexpected error: {failure:?}"
        );
    }
    for (i, failure) in &outcome.failed {
        assert!(
            WRITE_ERRORS.contains(&failure.kind.as_str()),
            "{what}: write {i} failed with an unexpected error: {failure:?}"
        );
    }
}

/// Failures per kind, with one message each.
fn summarize<'a>(failures: impl Iterator<Item = &'a Failure>) -> String {
    let mut kinds = std::collections::BTreeMap::<&str, (usize, &Failure)>::new();
    for failure in failures {
        kinds.entry(&failure.kind).or_insert((0, failure)).0 += 1;
    }
    kinds
        .iter()
        .map(|(kind, (n, example))| {
            format!("{n} × {kind} ({:?} / {})", example.display, example.debug)
        })
        .collect::<Vec<_>>()
        .join("; ")
}

#[test]
#[ignore = "needs fiu-run (fiu-utils): .ci/run's `faults` step runs it"]
fn io_faults_give_typed_errors_and_leave_a_sound_file() {
    require_fiu_utils();
    let started = Instant::now();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("faults.db");
    let control = dir.path().join("fiu-ctrl");
    let mut acknowledged = Vec::new();
    let (mut ok, mut failed) = (0, 0);
    for (round, spec) in (0u64..).zip(ROUNDS) {
        let outcome = run_child("writes", &path, round, spec, &control, &[]);
        assert_typed(&outcome, &format!("round {round}"));
        assert_eq!(
            (outcome.ok.len() + outcome.failed.len()) as u64,
            OPS,
            "round {round}: every write reports an outcome:\n{}",
            outcome.transcript
        );
        // Proof that faults were injected, and that writes still got through.
        assert!(
            !outcome.failed.is_empty(),
            "round {round}: no write failed; is libfiu's POSIX preload library \
             (fiu_posix_preload.so, from fiu-utils) installed where fiu-run looks?"
        );
        assert!(!outcome.ok.is_empty(), "round {round}: no write succeeded");

        let memory =
            common::reopen_verified(&path).unwrap_or_else(|e| panic!("after round {round}: {e}"));
        let stats = memory.stats().unwrap();
        assert_eq!(
            stats.aliases, stats.entities,
            "after round {round}: one name per entity"
        );
        acknowledged.extend(outcome.ok.iter().map(|&i| (round, i)));
        for &(r, i) in &acknowledged {
            assert_eq!(
                stored(&memory, r, i),
                Ok(true),
                "after round {round}: write {i} of round {r} returned Ok"
            );
        }
        // `OutcomeUnknown` leaves open whether the write is stored; any other error
        // means nothing of it was written.
        let mut landed = 0;
        for (i, failure) in &outcome.failed {
            let whole = stored(&memory, round, *i)
                .unwrap_or_else(|e| panic!("round {round}: failed write {i} left a part: {e}"));
            assert!(
                !whole || failure.kind.starts_with("OutcomeUnknown/"),
                "round {round}: write {i} is stored, but failed with {failure:?}"
            );
            landed += usize::from(whole);
            // An injected I/O failure carries the errno libfiu set (`sqlite3_system_errno`).
            if failure.kind.ends_with("/SystemIoFailure") {
                assert!(
                    failure.display.contains("(os error "),
                    "round {round}: write {i}'s I/O error does not name its errno: {failure:?}"
                );
            }
        }
        eprintln!(
            "round {round}: {} ok, {} failed ({landed} of them in the file after all): {}; \
             {} failed opens: {}",
            outcome.ok.len(),
            outcome.failed.len(),
            summarize(outcome.failed.iter().map(|(_, f)| f)),
            outcome.open_errors.len(),
            summarize(outcome.open_errors.iter()),
        );
        ok += outcome.ok.len();
        failed += outcome.failed.len();
    }
    eprintln!(
        "{} rounds: {ok} writes ok, {failed} failed, {:?}",
        ROUNDS.len(),
        started.elapsed()
    );
}

/// The checker must see a panic where the child has no `catch_unwind`: on another thread.
#[test]
#[ignore = "needs fiu-run (fiu-utils): .ci/run's `faults` step runs it"]
fn the_checker_catches_a_panic_on_another_thread() {
    require_fiu_utils();
    let dir = tempfile::tempdir().unwrap();
    let outcome = run_child(
        "writes",
        &dir.path().join("planted.db"),
        0,
        &ROUNDS[0],
        &dir.path().join("fiu-ctrl"),
        &[("CAIRN_FAULT_PLANT_PANIC", "1")],
    );
    assert!(
        outcome.panics.iter().any(|p| p.contains("planted panic")),
        "the planted panic went unnoticed: {:?}",
        outcome.panics
    );
}

/// Creating a memory under fault either fails or leaves the file in WAL mode: switching
/// to WAL is a write of its own, and its failure must not be lost.
#[test]
#[ignore = "needs fiu-run (fiu-utils): .ci/run's `faults` step runs it"]
fn a_new_memory_opened_under_faults_is_in_wal_mode_or_not_opened() {
    require_fiu_utils();
    let dir = tempfile::tempdir().unwrap();
    let outcome = run_child(
        "fresh-opens",
        &dir.path().join("fresh.db"),
        0,
        &FRESH_OPEN_FAULTS,
        &dir.path().join("fiu-ctrl"),
        &[],
    );
    assert_typed(&outcome, "fresh opens");
    assert_eq!(
        outcome.fresh.len() as u64,
        FRESH_OPENS,
        "every new memory got opened in the end:\n{}",
        outcome.transcript
    );
    assert!(
        !outcome.open_errors.is_empty(),
        "no open failed: were faults injected?"
    );
    eprintln!(
        "{FRESH_OPENS} new memories opened, {} opens failed: {}",
        outcome.open_errors.len(),
        summarize(outcome.open_errors.iter())
    );
    let not_wal: Vec<_> = outcome.fresh.iter().filter(|(_, m)| m != "wal").collect();
    assert!(
        not_wal.is_empty(),
        "open returned Ok, but {} of {FRESH_OPENS} new files are not in WAL mode \
         ({} opens failed): {not_wal:?}",
        not_wal.len(),
        outcome.open_errors.len()
    );
}
