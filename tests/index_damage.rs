//! A self-healing index (issue 12, item 5): every kind of damage to the derived index is
//! found, the damaged folder is moved aside and the index is rebuilt from the file with
//! no manual step; writes succeed throughout, and a search answers either hits or the
//! typed `IndexRebuilding` error, never a raw tantivy error.

mod common;

use common::damage::{
    damaged_folders, filled, index_file_named, index_files, index_files_ending, index_folder,
};

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use cairn::{Memory, SearchOptions, Unit, VerifyMode};

/// How long a repair may take on a slow, shared CI machine.
const REPAIR_BUDGET: Duration = Duration::from_secs(60);

/// A write whose text only the index finds (a chunk: no name lookup in the file reaches
/// it), made while the index is damaged.
fn write_new_chunk(memory: &Memory) {
    memory
        .add_units(
            "harbour",
            &[Unit::new("the harbour master counted seventeen gulls")],
        )
        .expect("a write while the index is damaged");
}

/// `rm -r` of a folder the indexer may be writing into (a merge, a commit): retried
/// until it is gone.
fn delete_while_in_use(folder: &Path) {
    let deadline = Instant::now() + REPAIR_BUDGET;
    while let Err(e) = std::fs::remove_dir_all(folder) {
        if e.kind() == std::io::ErrorKind::NotFound {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "cannot delete {}: {e}",
            folder.display()
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Searches `query` until a hit's text contains `expected`; every answer in between must
/// be hits or `IndexRebuilding`. Returns how many answers were `IndexRebuilding`.
fn search_until_found(memory: &Memory, query: &str, expected: &str) -> usize {
    let options = SearchOptions::new().limit(20);
    let deadline = Instant::now() + REPAIR_BUDGET;
    let mut rebuilding = 0;
    loop {
        match memory.search(query, &options) {
            Ok(hits) if hits.iter().any(|h| h.text.contains(expected)) => return rebuilding,
            Ok(_) => {}
            Err(e) if e.is_index_rebuilding() => {
                assert!(e.is_retryable(), "{e}");
                rebuilding += 1;
            }
            Err(e) => panic!("search {query:?} failed with an untyped error: {e}"),
        }
        assert!(
            Instant::now() < deadline,
            "{query:?} never found {expected:?} within {REPAIR_BUDGET:?}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Opens the damaged memory, writes, and checks that old and new facts are found, that
/// the damaged folder was moved aside, and that `verify(Full)` reported the damage once
/// and the index caught up with the file.
fn assert_repaired_after_open(path: &Path) {
    let memory = common::options()
        .open(path)
        .expect("open with a damaged index");
    write_new_chunk(&memory);
    search_until_found(&memory, "seventeen gulls", "seventeen gulls");
    search_until_found(&memory, "lighthouse keeper", "Lighthouse Keeper");
    search_until_found(&memory, "lamp storm", "lit the lamp");
    assert_eq!(
        damaged_folders(path).len(),
        1,
        "the damaged index was moved aside"
    );
    let report = memory.verify(VerifyMode::Full).unwrap();
    assert!(
        report.problems.iter().any(|p| p.check == "index_damage"),
        "verify reports the damage it repaired: {:?}",
        report.problems
    );
    assert!(report.index_compared && report.index_seq == report.last_seq);
    drop(memory);
    // Repaired for good: the next process finds nothing wrong.
    let memory = common::reopen_verified(path).unwrap();
    search_until_found(&memory, "seventeen gulls", "seventeen gulls");
}

#[test]
fn a_segment_file_truncated_by_half_is_rebuilt() {
    let dir = tempfile::tempdir().unwrap();
    let path = filled(dir.path());
    // The largest file of a segment the last commit lists (a merged-away segment's
    // files may linger until tantivy collects them; damage there harms nothing).
    let meta = std::fs::read_to_string(index_file_named(&path, "meta.json"))
        .unwrap()
        .replace('-', "");
    let largest = index_files(&path)
        .into_iter()
        .filter(|p| {
            let stem = p.file_stem().unwrap().to_string_lossy().into_owned();
            !stem.is_empty() && !stem.starts_with('.') && meta.contains(&stem)
        })
        .max_by_key(|p| std::fs::metadata(p).unwrap().len())
        .expect("a live segment file");
    let bytes = std::fs::read(&largest).unwrap();
    // Written as a new file renamed over the old one: truncating the old inode in place
    // would be a SIGBUS in any thread still mapping it (tantivy maps segment files, and
    // a merge of the closed memory may still be finishing in this test process).
    let half = largest.with_extension("half");
    std::fs::write(&half, &bytes[..bytes.len() / 2]).unwrap();
    std::fs::rename(&half, &largest).unwrap();
    assert_repaired_after_open(&path);
}

#[test]
fn a_garbage_meta_json_is_rebuilt() {
    let dir = tempfile::tempdir().unwrap();
    let path = filled(dir.path());
    std::fs::write(index_file_named(&path, "meta.json"), b"{ not json \x00\xff").unwrap();
    assert_repaired_after_open(&path);
}

#[test]
fn a_missing_store_file_is_rebuilt() {
    let dir = tempfile::tempdir().unwrap();
    let path = filled(dir.path());
    for store in index_files_ending(&path, "store") {
        std::fs::remove_file(store).unwrap();
    }
    assert_repaired_after_open(&path);
}

#[test]
fn an_index_folder_deleted_under_an_open_memory_is_rebuilt() {
    let dir = tempfile::tempdir().unwrap();
    let path = filled(dir.path());
    let memory = common::options().open(&path).unwrap();
    search_until_found(&memory, "lighthouse keeper", "Lighthouse Keeper");
    delete_while_in_use(&index_folder(&path));
    write_new_chunk(&memory);
    search_until_found(&memory, "seventeen gulls", "seventeen gulls");
    search_until_found(&memory, "lamp storm", "lit the lamp");
    assert!(index_folder(&path).exists(), "a new index was built");
    memory.sync().unwrap();
    drop(memory);
    let memory = common::reopen_verified(&path).unwrap();
    search_until_found(&memory, "seventeen gulls", "seventeen gulls");
}

/// Two handles opened separately on one file share one index folder as two processes
/// do: one holds tantivy's writer, the other follows its commits. Whichever finds the
/// folder deleted, both end up searching the new index.
#[test]
fn a_deleted_folder_is_rebuilt_for_a_follower_too() {
    let dir = tempfile::tempdir().unwrap();
    let path = filled(dir.path());
    let first = common::options().open(&path).unwrap();
    let second = common::options().open(&path).unwrap();
    search_until_found(&first, "lamp storm", "lit the lamp");
    search_until_found(&second, "lamp storm", "lit the lamp");
    delete_while_in_use(&index_folder(&path));
    write_new_chunk(&first);
    search_until_found(&second, "seventeen gulls", "seventeen gulls");
    search_until_found(&first, "seventeen gulls", "seventeen gulls");
    second
        .add_units("harbour", &[Unit::new("the pilot boat left at dawn")])
        .unwrap();
    search_until_found(&first, "pilot boat dawn", "pilot boat");
    search_until_found(&second, "pilot boat dawn", "pilot boat");
    search_until_found(&second, "lamp storm", "lit the lamp");
}

#[test]
fn another_memorys_file_copied_over_the_file_is_reindexed() {
    let dir = tempfile::tempdir().unwrap();
    let path = filled(dir.path());
    let other = dir.path().join("other.db");
    let memory = common::options().open(&other).unwrap();
    for i in 0..40 {
        memory
            .add_triple((format!("Comet {i}").as_str(), "passed", "Jupiter"))
            .unwrap();
    }
    memory.sync().unwrap();
    drop(memory);
    for suffix in ["", "-wal", "-shm"] {
        let from = PathBuf::from(format!("{}{suffix}", other.display()));
        let to = PathBuf::from(format!("{}{suffix}", path.display()));
        let _ = std::fs::remove_file(&to);
        if from.exists() {
            std::fs::copy(&from, &to).unwrap();
        }
    }
    let memory = common::options().open(&path).unwrap();
    memory.add_triple(("Comet 99", "passed", "Saturn")).unwrap();
    search_until_found(&memory, "comet 7", "Comet 7");
    search_until_found(&memory, "comet 99", "Comet 99");
    memory.sync().unwrap();
    let options = SearchOptions::new().read_your_writes(true);
    assert!(
        memory
            .search("lighthouse keeper", &options)
            .unwrap()
            .is_empty(),
        "the old file's rows are gone from the index"
    );
    let report = memory.verify(VerifyMode::Full).unwrap();
    assert!(
        report.problems.iter().any(|p| p.check == "index_history"),
        "verify reports the history mismatch: {:?}",
        report.problems
    );
}

#[test]
fn repeated_damage_keeps_a_bounded_number_of_damaged_folders() {
    let dir = tempfile::tempdir().unwrap();
    let path = filled(dir.path());
    for round in 0..4 {
        std::fs::write(index_file_named(&path, "meta.json"), b"garbage").unwrap();
        let memory = common::options().open(&path).unwrap();
        search_until_found(&memory, "lighthouse keeper", "Lighthouse Keeper");
        memory.sync().unwrap();
        drop(memory);
        let kept = damaged_folders(&path).len();
        assert!(
            (1..=2).contains(&kept),
            "round {round}: {kept} damaged folders"
        );
    }
}
