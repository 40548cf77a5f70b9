//! Concurrency claims, proved: many threads and several OS processes on one file end
//! with no duplicate entities, no lost writes and no error surfaced to any caller.

mod common;

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use cairn::{ChangeOp, ConnectionMode, EntityId, Memory, Seq};
use common::{assert_file_is_sound, base_names, join_readers, options, spawn_readers, variant};
use rand::SeedableRng;
use rand::rngs::StdRng;

const NAMES: usize = 500;
const THREADS: usize = 16;
const CALLS: usize = 2_000;

/// `threads` × `calls` find-or-create calls, each with a random spelling of one of the
/// names. Returns, per base name, the id every call for it got back.
fn hammer(
    memory: &Memory,
    names: &[String],
    threads: usize,
    calls: usize,
    seed: u64,
) -> HashMap<usize, EntityId> {
    let handles: Vec<_> = (0..threads)
        .map(|t| {
            let memory = memory.clone();
            let names = names.to_vec();
            std::thread::spawn(move || {
                let mut rng = StdRng::seed_from_u64(seed * 1000 + t as u64);
                let mut got = Vec::with_capacity(calls);
                for _ in 0..calls {
                    let i = rand::Rng::random_range(&mut rng, 0..names.len());
                    let spelling = variant(&names[i], &mut rng);
                    let id = memory
                        .ensure_entity(&spelling)
                        .unwrap_or_else(|e| panic!("ensure_entity({spelling:?}) failed: {e}"));
                    got.push((i, id));
                }
                got
            })
        })
        .collect();
    let mut ids: HashMap<usize, EntityId> = HashMap::new();
    for handle in handles {
        for (i, id) in handle.join().expect("a writer thread panicked") {
            let first = *ids.entry(i).or_insert(id);
            assert_eq!(first, id, "two ids for name {:?}", names[i]);
        }
    }
    ids
}

/// Exactly one entity per name, and every spelling resolves to it.
fn assert_one_entity_per_name(memory: &Memory, names: &[String]) {
    let stats = memory.stats().unwrap();
    assert_eq!(
        stats.entities,
        names.len() as u64,
        "duplicate or missing entities"
    );
    assert_eq!(stats.aliases, names.len() as u64);
    let mut rng = StdRng::seed_from_u64(99);
    for name in names {
        let id = memory
            .resolve(name)
            .unwrap()
            .unwrap_or_else(|| panic!("{name:?} missing"));
        for _ in 0..4 {
            let spelling = variant(name, &mut rng);
            assert_eq!(
                memory.resolve(&spelling).unwrap(),
                Some(id),
                "{spelling:?} vs {name:?}"
            );
        }
    }
}

#[test]
fn sixteen_threads_hammer_the_same_names() {
    for mode in [
        ConnectionMode::ThreadLocal,
        ConnectionMode::Pool { size: 4 },
    ] {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("hammer.db");
        let memory = options().connection_mode(mode).open(&path).unwrap();
        let names = base_names(NAMES);
        let stop = Arc::new(AtomicBool::new(false));
        let readers = spawn_readers(&memory, &names, &stop, 2);
        let ids = hammer(&memory, &names, THREADS, CALLS, 1);
        join_readers(&stop, readers);
        assert_eq!(ids.len(), NAMES, "every name was drawn at least once");
        assert_one_entity_per_name(&memory, &names);
        // One creation per entity in the change log, nothing else.
        let changes = memory.changes_since(Seq::from_raw(0), usize::MAX).unwrap();
        assert_eq!(changes.len(), NAMES);
        assert!(changes.iter().all(|c| c.op == ChangeOp::EntityCreated));
        drop(memory);
        assert_file_is_sound(&path);
    }
}

/// Entry point for the child processes of the multi-process tests; it is not a test by
/// itself, so it only runs when spawned with `--ignored`.
#[test]
#[ignore = "entry point for child processes spawned by other tests"]
fn child_process() {
    let path = std::env::var("CAIRN_CHILD_DB").expect("spawned without CAIRN_CHILD_DB");
    let seed: u64 = std::env::var("CAIRN_CHILD_SEED").unwrap().parse().unwrap();
    let memory = options().open(&path).unwrap();
    match std::env::var("CAIRN_CHILD_TASK").as_deref() {
        Ok("hammer") => child_hammer(&memory, seed),
        Ok("triples") => write_triples(&memory, seed as usize, THREADS_PER_PROCESS),
        other => panic!("unknown CAIRN_CHILD_TASK {other:?}"),
    }
}

fn child_hammer(memory: &Memory, seed: u64) {
    let names = base_names(NAMES);
    let ids = hammer(memory, &names, THREADS, CALLS, seed);
    // Report what this process saw, so the parent can compare across processes (libtest
    // may print its "test child_hammer ..." prefix on the same line).
    let mut lines: Vec<String> = ids.iter().map(|(i, id)| format!("{i}={id}")).collect();
    lines.sort();
    println!("CHILD-IDS {}", lines.join(","));
}

#[test]
fn four_processes_hammer_the_same_names() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("processes.db");
    let memory = options().open(&path).unwrap(); // creates and migrates the file
    let names = base_names(NAMES);
    let stop = Arc::new(AtomicBool::new(false));
    let readers = spawn_readers(&memory, &names, &stop, 2);
    let children: Vec<_> = (1..=4)
        .map(|seed| common::spawn_child("hammer", &path, seed))
        .collect();
    let mut seen: HashMap<String, String> = HashMap::new();
    for child in children {
        let stdout = wait_for_success(child);
        let report = stdout
            .lines()
            .find_map(|l| l.split_once("CHILD-IDS ").map(|(_, ids)| ids))
            .expect("child printed its ids");
        for pair in report.split(',') {
            let (name, id) = pair.split_once('=').unwrap();
            let first = seen.entry(name.to_owned()).or_insert_with(|| id.to_owned());
            assert_eq!(
                first, id,
                "processes disagree on the entity of name #{name}"
            );
        }
    }
    join_readers(&stop, readers);
    assert_one_entity_per_name(&memory, &names);
    drop(memory);
    assert_file_is_sound(&path);
}

fn wait_for_success(child: std::process::Child) -> String {
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "child failed: {}\n{stdout}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

const TRIPLE_THREADS: usize = 8;
const THREADS_PER_PROCESS: usize = 2;
const UNIQUE: usize = 500; // per writer thread
const SHARED: usize = 100; // triples shared by all writer threads, 5 times each per thread

/// `threads` writer threads (numbered from `first * threads`), each writing 1,000
/// triples: 500 of its own and 5 repeats of each of 100 shared triples, in random order
/// and random spellings.
fn write_triples(memory: &Memory, first: usize, threads: usize) {
    let handles: Vec<_> = (first * threads..(first + 1) * threads)
        .map(|t| {
            let memory = memory.clone();
            std::thread::spawn(move || {
                let mut rng = StdRng::seed_from_u64(t as u64);
                let mut calls: Vec<(String, String, String)> = (0..UNIQUE)
                    .map(|i| {
                        (
                            format!("agent {t} subject {i}"),
                            "mentions".to_owned(),
                            format!("agent {t} object {i}"),
                        )
                    })
                    .collect();
                for j in 0..SHARED {
                    for _ in 0..5 {
                        let subject = variant(&format!("Shared Subject {}", j % 20), &mut rng);
                        let predicate = ["likes", "LIKES", " likes ", "Likes"]
                            [rand::Rng::random_range(&mut rng, 0..4)];
                        let object = variant(&format!("Shared Object {j}"), &mut rng);
                        calls.push((subject, predicate.to_owned(), object));
                    }
                }
                rand::seq::SliceRandom::shuffle(calls.as_mut_slice(), &mut rng);
                for (s, p, o) in &calls {
                    let id = memory
                        .add_triple((s.as_str(), p.as_str(), o.as_str()))
                        .unwrap_or_else(|e| panic!("add_triple({s:?}, {p:?}, {o:?}): {e}"));
                    // Concurrent calls share commits: each must still get its own answer.
                    let stored = memory.relation(id).unwrap().expect("returned id exists");
                    let key = |n: &str| cairn::normalize_name(n).unwrap();
                    assert_eq!(key(&stored.subject_name), key(s), "id of another call");
                    assert_eq!(key(&stored.object_name), key(o), "id of another call");
                }
            })
        })
        .collect();
    for h in handles {
        h.join().expect("writer thread panicked");
    }
}

/// After `threads` writer threads of [`write_triples`] (in any number of processes):
/// relation rows, mention counts and change-log rows are exactly as expected.
fn assert_triples_exact(memory: &Memory, threads: usize) {
    let stats = memory.stats().unwrap();
    let shared_calls = threads * SHARED * 5;
    assert_eq!(stats.relations as usize, threads * UNIQUE + SHARED);
    let shared_entities = 20 + SHARED;
    assert_eq!(
        stats.entities as usize,
        threads * UNIQUE * 2 + shared_entities
    );
    for j in 0..SHARED {
        let s = memory
            .resolve(&format!("shared subject {}", j % 20))
            .unwrap()
            .unwrap();
        let o = memory
            .resolve(&format!("SHARED OBJECT {j}"))
            .unwrap()
            .unwrap();
        let rels: Vec<_> = memory
            .outgoing(s)
            .unwrap()
            .into_iter()
            .filter(|r| r.object == o)
            .collect();
        assert_eq!(rels.len(), 1, "one relation per shared triple");
        assert_eq!(
            rels[0].mentions as usize,
            threads * 5,
            "every repeat counted"
        );
    }
    let changes = memory.changes_since(Seq::from_raw(0), usize::MAX).unwrap();
    let count = |op| changes.iter().filter(|c| c.op == op).count();
    assert_eq!(count(ChangeOp::EntityCreated), stats.entities as usize);
    assert_eq!(count(ChangeOp::RelationCreated), threads * UNIQUE + SHARED);
    assert_eq!(count(ChangeOp::RelationMentioned), shared_calls - SHARED);
    assert_eq!(
        changes.len(),
        stats.entities as usize + threads * UNIQUE + shared_calls
    );
    assert!(
        changes.windows(2).all(|w| w[0].seq < w[1].seq),
        "seq strictly increasing"
    );
    assert_eq!(stats.changes as usize, changes.len());
}

/// 8 threads × 1,000 triples, half of them repeats of 100 shared triples.
#[test]
fn eight_threads_write_triples_with_repeats() {
    let memory = Memory::ephemeral_with(options()).unwrap();
    let shared_names: Vec<String> = (0..SHARED).map(|j| format!("Shared Object {j}")).collect();
    let stop = Arc::new(AtomicBool::new(false));
    let readers = spawn_readers(&memory, &shared_names, &stop, 2);
    write_triples(&memory, 0, TRIPLE_THREADS);
    join_readers(&stop, readers);
    assert_triples_exact(&memory, TRIPLE_THREADS);
}

/// The same triples from 4 OS processes × 2 threads: no write is lost across processes.
#[test]
fn four_processes_write_triples_with_repeats() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("triples.db");
    let memory = options().open(&path).unwrap();
    let shared_names: Vec<String> = (0..SHARED).map(|j| format!("Shared Object {j}")).collect();
    let stop = Arc::new(AtomicBool::new(false));
    let readers = spawn_readers(&memory, &shared_names, &stop, 2);
    let children: Vec<_> = (0..4)
        .map(|p| common::spawn_child("triples", &path, p))
        .collect();
    for child in children {
        wait_for_success(child);
    }
    join_readers(&stop, readers);
    assert_triples_exact(&memory, 4 * THREADS_PER_PROCESS);
    drop(memory);
    assert_file_is_sound(&path);
}
