//! Every file and folder cairn creates is readable by its owner only, whatever the
//! umask: a child process with umask 0 creates a memory with its index, a backup, a
//! restored copy, a tenant and a tenant export, and checks every path while all of them
//! are still open (so the `-wal` and `-shm` files exist).
#![cfg(unix)]

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use cairn::{Memory, SearchOptions, Tenants};

/// Every path under `dir` with its permission bits.
fn modes(dir: &Path) -> Vec<(String, u32, bool)> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let entry = entry.unwrap();
        let meta = entry.metadata().unwrap();
        let name = entry.path().display().to_string();
        out.push((name, meta.permissions().mode() & 0o777, meta.is_dir()));
        if meta.is_dir() {
            out.extend(modes(&entry.path()));
        }
    }
    out
}

fn assert_owner_only(dir: &Path) -> usize {
    let all = modes(dir);
    for (path, mode, is_dir) in &all {
        let want = if *is_dir { 0o700 } else { 0o600 };
        assert_eq!(*mode, want, "{path} is {mode:o}, expected {want:o}");
    }
    all.len()
}

#[test]
fn everything_cairn_creates_is_owner_only_under_umask_0() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("private.db");
    let launcher_args = ["-c".into(), "umask 0; exec \"$@\"".into(), "sh".into()];
    let out = common::child_command_via("sh", &launcher_args, "create-everything", &path, 0)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains("CHILD-OK"),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // What is left once every handle closed.
    assert!(assert_owner_only(dir.path()) >= 8);
}

/// Entry point for child processes; runs only when spawned with `--ignored`.
#[test]
#[ignore = "entry point for child processes spawned by other tests"]
fn child_process() {
    let path = std::path::PathBuf::from(std::env::var("CAIRN_CHILD_DB").unwrap());
    let dir = path.parent().unwrap().to_owned();
    let probe = dir.join("umask-probe");
    std::fs::write(&probe, b"").unwrap();
    let probe_mode = std::fs::metadata(&probe).unwrap().permissions().mode() & 0o777;
    assert_eq!(probe_mode, 0o666, "the child must run with umask 0");
    std::fs::remove_file(&probe).unwrap();

    let m = Memory::open(&path).unwrap();
    m.add_triple(("Ann", "works at", "Acme Corp")).unwrap();
    let hits = m
        .search("acme", &SearchOptions::new().read_your_writes(true))
        .unwrap();
    assert!(!hits.is_empty());
    m.backup(dir.join("backup.db")).unwrap();
    let restored = Memory::restore(dir.join("backup.db"), dir.join("restored.db")).unwrap();
    restored.add_triple(("Bob", "knows", "Ann")).unwrap();
    let tenants = Tenants::open(dir.join("tenants")).unwrap();
    let acme = tenants.get("acme").unwrap();
    acme.add_triple(("Cy", "works at", "Acme Corp")).unwrap();
    tenants.export("acme", dir.join("acme-export.db")).unwrap();

    let names: Vec<String> = modes(&dir).into_iter().map(|(p, _, _)| p).collect();
    for expected in [
        "private.db-wal",
        "private.db-shm",
        "restored.db-wal",
        "backup.db",
    ] {
        assert!(
            names.iter().any(|n| n.ends_with(expected)),
            "{expected} missing: {names:?}"
        );
    }
    assert!(names.iter().any(|n| n.contains(".index/")), "{names:?}");
    assert_owner_only(&dir);
    println!("CHILD-OK");
}
