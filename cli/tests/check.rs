//! `cairn check --full` reports damage with exit 4 and says what it found; a damaged
//! index is repaired by the check.

#[path = "../../tests/common/mod.rs"]
mod common;

use std::path::Path;

use common::damage::{filled, index_file_named};
use std::process::{Command, Output};

fn check_full(db: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_cairn"))
        .arg("--db")
        .arg(db)
        .args(["check", "--full"])
        .env_remove("CAIRN_DB")
        .env_remove("CAIRN_MODEL")
        .output()
        .expect("run cairn")
}

#[test]
fn check_full_reports_a_damaged_index_with_exit_4_then_passes() {
    let dir = tempfile::tempdir().unwrap();
    let path = filled(dir.path());
    std::fs::write(index_file_named(&path, "meta.json"), b"garbage").unwrap();
    let out = check_full(&path);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(4), "{stdout}");
    assert!(stdout.contains("index_damage"), "{stdout}");
    // The check repaired it: the next one is clean.
    let again = check_full(&path);
    assert_eq!(
        again.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&again.stdout)
    );
}

#[test]
fn check_full_reports_a_garbage_sqlite_file_with_exit_4() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("garbage.db");
    let garbage: Vec<u8> = (0..64 * 1024u32).map(|i| (i * 7919 % 251) as u8).collect();
    std::fs::write(&path, garbage).unwrap();
    assert_check_full_says_damaged(&path);
}

#[test]
fn check_full_reports_a_malformed_sqlite_page_with_exit_4() {
    let dir = tempfile::tempdir().unwrap();
    let path = filled(dir.path());
    // Keep the header page (the file still looks like a cairn memory); garble the
    // pages after it.
    let mut bytes = std::fs::read(&path).unwrap();
    assert!(bytes.len() > 3 * 4096, "{} bytes", bytes.len());
    for (i, b) in bytes[4096..].iter_mut().enumerate() {
        *b = (i * 31 % 253) as u8;
    }
    std::fs::write(&path, bytes).unwrap();
    assert_check_full_says_damaged(&path);
}

/// `cairn check --full` of `path` exits 4 with a report that says DAMAGED.
fn assert_check_full_says_damaged(path: &std::path::Path) {
    let out = check_full(path);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(4),
        "stdout {stdout} stderr {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("DAMAGED"), "{stdout}");
}
