//! Every file and folder the `cairn` command creates is readable by its owner only,
//! whatever the umask: each creating command runs under `umask 0` (through `sh`).
#![cfg(unix)]

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;

/// Runs `cairn --db DB ARGS…` with umask 0; panics unless it succeeds.
fn cairn_umask_0(db: &Path, args: &[&str]) {
    let out = Command::new("sh")
        .args([
            "-c",
            "umask 0; exec \"$@\"",
            "sh",
            env!("CARGO_BIN_EXE_cairn"),
            "--db",
        ])
        .arg(db)
        .args(args)
        .env_remove("CAIRN_DB")
        .env_remove("CAIRN_LOG")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "cairn {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn all_modes(dir: &Path, out: &mut Vec<(String, u32, bool)>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let entry = entry.unwrap();
        let meta = entry.metadata().unwrap();
        out.push((
            entry.path().display().to_string(),
            meta.permissions().mode() & 0o777,
            meta.is_dir(),
        ));
        if meta.is_dir() {
            all_modes(&entry.path(), out);
        }
    }
}

#[test]
fn every_creating_command_makes_owner_only_files() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("mine.db");
    let d = |name: &str| dir.path().join(name).display().to_string();
    cairn_umask_0(&db, &["init"]);
    cairn_umask_0(&db, &["add", "Ann", "works at", "Acme Corp"]);
    cairn_umask_0(&db, &["search", "acme"]);
    cairn_umask_0(&db, &["export", &d("export.jsonl")]);
    cairn_umask_0(&db, &["backup", &d("backup.db")]);
    cairn_umask_0(
        &dir.path().join("restored.db"),
        &["restore", &d("backup.db")],
    );
    let tenants = d("tenants");
    cairn_umask_0(&db, &["tenants", "--dir", &tenants, "create", "acme"]);
    let export = d("acme.db");
    cairn_umask_0(
        &db,
        &["tenants", "--dir", &tenants, "export", "acme", &export],
    );

    let mut modes = Vec::new();
    all_modes(dir.path(), &mut modes);
    for expected in [
        "mine.db",
        "export.jsonl",
        "backup.db",
        "restored.db",
        "acme.db",
    ] {
        assert!(
            modes.iter().any(|(p, _, _)| p.ends_with(expected)),
            "{expected} missing: {modes:?}"
        );
    }
    assert!(modes.iter().any(|(p, _, _)| p.contains("mine.db.index")));
    for (path, mode, is_dir) in &modes {
        let want = if *is_dir { 0o700 } else { 0o600 };
        assert_eq!(*mode, want, "{path} is {mode:o}, expected {want:o}");
    }
}
