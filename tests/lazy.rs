//! Cheap open memories (issue 15 item 1): an open does not open the index or start
//! threads; many open memories share a few background workers; a dropped memory is
//! closed at once and holds nothing.
//!
//! Threads and descriptors are counted for the whole process (`/proc/self`), so the
//! tests of this file run one at a time.

use std::path::Path;
use std::time::{Duration, Instant};

use cairn::{Memory, SearchOptions, Tenants};
use parking_lot::Mutex;

static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

fn threads() -> usize {
    std::fs::read_dir("/proc/self/task").unwrap().count()
}

fn fds() -> usize {
    std::fs::read_dir("/proc/self/fd").unwrap().count()
}

/// Waits (generously) for `reached`; the condition is what the test asserts, not how
/// fast it becomes true.
fn eventually(what: &str, mut reached: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !reached() {
        assert!(Instant::now() < deadline, "never reached: {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn searchable(memory: &Memory, text: &str) -> bool {
    memory
        .search(text, &SearchOptions::new().read_your_writes(true).depth(0))
        .unwrap()
        .iter()
        .any(|hit| hit.text.contains(text))
}

fn index_folder(path: &Path) -> std::path::PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(".index");
    name.into()
}

#[test]
fn a_memory_only_read_opens_no_index_until_a_search() {
    let _one = ONE_AT_A_TIME.lock();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("m.db");
    {
        let memory = Memory::open(&path).unwrap();
        memory.add_triple(("Ann", "works at", "Acme")).unwrap();
        memory.sync().unwrap();
    }
    std::fs::remove_dir_all(index_folder(&path)).unwrap();
    let before = threads();
    let memory = Memory::open(&path).unwrap();
    assert!(memory.resolve("ann").unwrap().is_some());
    assert_eq!(memory.stats().unwrap().relations, 1);
    assert!(
        !index_folder(&path).exists(),
        "reads opened (and created) the index"
    );
    assert!(threads() <= before, "an open and reads started threads");
    // The first search opens it, rebuilt from the change log.
    memory.sync().unwrap();
    assert!(index_folder(&path).exists());
    assert!(searchable(&memory, "Acme"));
}

#[test]
fn many_open_memories_share_a_few_threads_and_all_get_indexed() {
    let _one = ONE_AT_A_TIME.lock();
    const N: usize = 40;
    let dir = tempfile::tempdir().unwrap();
    // Start the shared workers first, so the baseline counts them.
    let warm = Memory::ephemeral().unwrap();
    warm.add_triple(("Warm", "up", "Workers")).unwrap();
    warm.sync().unwrap();
    drop(warm);
    let (threads_before, fds_before) = (threads(), fds());

    let tenants = Tenants::open_with(dir.path(), cairn::Options::default(), N).unwrap();
    let memories: Vec<Memory> = (0..N)
        .map(|i| tenants.get(&format!("t{i}")).unwrap())
        .collect();
    assert!(
        threads() <= threads_before,
        "opening {N} memories started {} threads",
        threads() - threads_before
    );
    for (i, memory) in memories.iter().enumerate() {
        for k in 0..5 {
            memory
                .add_triple((format!("Person {i}-{k}").as_str(), "works at", "Acme"))
                .unwrap();
        }
    }
    // Nobody waits for them: the shared workers index every memory on their own.
    for (i, memory) in memories.iter().enumerate() {
        let probe = memory.clone();
        let text = format!("Person {i}-4");
        eventually(&format!("memory {i} indexed"), || {
            probe
                .search(&text, &SearchOptions::new().depth(0))
                .unwrap()
                .iter()
                .any(|hit| hit.text.contains(&text))
        });
    }
    for memory in &memories {
        memory.sync().unwrap();
    }
    // Each memory holds tantivy's writer while it has work, and gives it (and its
    // threads) back when idle: what stays is the shared workers, never threads per memory.
    eventually("idle memories hold no threads", || {
        threads() <= threads_before + 2
    });
    drop(memories);
    drop(tenants);
    assert!(
        fds() <= fds_before + 2,
        "closed memories kept descriptors: {} before, {} after",
        fds_before,
        fds()
    );
}

#[test]
fn a_dropped_memory_is_closed_at_once_and_its_tenant_can_be_dropped() {
    let _one = ONE_AT_A_TIME.lock();
    let dir = tempfile::tempdir().unwrap();
    let tenants = Tenants::open(dir.path()).unwrap();
    for round in 0..20 {
        let memory = tenants.get("busy").unwrap();
        // Work queued for the shared workers, and an index open with its writer.
        for k in 0..50 {
            memory
                .add_triple((format!("E{round}-{k}").as_str(), "r", "X"))
                .unwrap();
        }
        assert!(searchable(&memory, &format!("E{round}-49")));
        memory.add_triple(("Last", "r", "X")).unwrap();
        drop(memory);
        // The drop takes the tenant's lock exclusively: the workers hold nothing of it.
        assert!(tenants.drop_tenant("busy").unwrap(), "round {round}");
        assert!(!dir.path().join("busy.db").exists());
    }
}

#[test]
fn work_left_at_close_is_indexed_by_the_next_open() {
    let _one = ONE_AT_A_TIME.lock();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("m.db");
    for round in 0..10 {
        let memory = Memory::open(&path).unwrap();
        memory
            .add_triple((format!("Round {round}").as_str(), "r", "X"))
            .unwrap();
        // Dropped at once: its indexing may not have run.
    }
    let memory = Memory::open(&path).unwrap();
    memory.sync().unwrap();
    for round in 0..10 {
        assert!(
            searchable(&memory, &format!("Round {round}")),
            "round {round}"
        );
    }
    let report = memory.verify(cairn::VerifyMode::Full).unwrap();
    assert!(report.is_ok(), "{report:?}");
}
