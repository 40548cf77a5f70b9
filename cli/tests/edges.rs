//! The command line at the edges of issue 14: every reading command on a read-only file,
//! folder and mount; `tenants drop` while another process serves the tenant; tenants
//! that are symbolic links.
//!
//! The read-only mount needs `mount` (root): it is `#[ignore]` here and run by name as
//! `.ci/run`'s `edges-root` step, where it fails loudly without root.
#![cfg(unix)]

use std::io::{BufRead, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

#[path = "../../tests/common/mod.rs"]
mod common;
use common::{can_write, listing};

fn cairn(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_cairn"))
        .args(args)
        .env_remove("CAIRN_DB")
        .env_remove("CAIRN_TENANTS")
        .env_remove("CAIRN_TENANT")
        .env_remove("CAIRN_MODEL")
        .env_remove("CAIRN_LOG")
        .output()
        .expect("run cairn")
}

fn cairn_db(db: &Path, args: &[&str]) -> Output {
    let db = db.to_str().unwrap();
    let mut all = vec!["--db", db];
    all.extend_from_slice(args);
    cairn(&all)
}

fn ok(out: &Output, what: &str) {
    assert!(
        out.status.success(),
        "{what}: exit {:?}: {}",
        out.status.code(),
        String::from_utf8_lossy(&out.stderr)
    );
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn chmod(path: &Path, mode: u32) {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

/// A memory at `dir/m.db` with a few facts, written by the command line.
fn populated(dir: &Path) -> PathBuf {
    let db = dir.join("m.db");
    ok(
        &cairn_db(&db, &["add", "Ann", "works at", "Acme Corp"]),
        "add",
    );
    ok(
        &cairn_db(&db, &["observe", "Acme Corp", "Makes anvils"]),
        "observe",
    );
    ok(&cairn_db(&db, &["search", "anvils"]), "search");
    db
}

/// Every reading command succeeds on `db`; backups go to `elsewhere`.
fn every_reading_command_works(db: &Path, elsewhere: &Path) {
    let backup = elsewhere.join("backup.db");
    let export = elsewhere.join("export.jsonl");
    let commands: Vec<Vec<&str>> = vec![
        vec!["stats"],
        vec!["stats", "--json"],
        vec!["show", "Acme Corp"],
        vec!["search", "anvils"],
        vec!["context", "anvils"],
        vec!["export"],
        vec!["export", export.to_str().unwrap()],
        vec!["check"],
        vec!["check", "--full"],
        vec!["log"],
        vec!["backup", backup.to_str().unwrap()],
    ];
    for args in commands {
        let out = cairn_db(db, &args);
        ok(&out, &format!("{args:?}"));
        if args[0] == "search" {
            assert!(
                String::from_utf8_lossy(&out.stdout).contains("Makes anvils"),
                "{args:?}: {}",
                String::from_utf8_lossy(&out.stdout)
            );
        }
        let _ = std::fs::remove_file(&backup);
    }
}

#[test]
fn reading_commands_work_on_a_read_only_file() {
    let dir = tempfile::tempdir().unwrap();
    let elsewhere = tempfile::tempdir().unwrap();
    let db = populated(dir.path());
    chmod(&db, 0o444);
    let before = listing(dir.path());
    every_reading_command_works(&db, elsewhere.path());
    if !can_write(&db) {
        assert_eq!(listing(dir.path()), before, "nothing left beside the file");
        let out = cairn_db(&db, &["add", "Bob", "knows", "Ann"]);
        assert!(!out.status.success());
        assert!(
            stderr(&out).contains(db.to_str().unwrap()),
            "{}",
            stderr(&out)
        );
    }
    chmod(&db, 0o644);
}

#[test]
fn reading_commands_work_in_a_read_only_folder() {
    let dir = tempfile::tempdir().unwrap();
    let elsewhere = tempfile::tempdir().unwrap();
    let folder = dir.path().join("ro");
    std::fs::create_dir(&folder).unwrap();
    let db = populated(&folder);
    chmod(&folder, 0o555);
    let before = listing(&folder);
    every_reading_command_works(&db, elsewhere.path());
    let probe = folder.join("probe");
    if std::fs::File::create(&probe).is_err() {
        assert_eq!(listing(&folder), before, "nothing left in the folder");
    }
    let _ = std::fs::remove_file(&probe);
    chmod(&folder, 0o755);
}

#[test]
#[ignore = "needs root: run by .ci/run's edges-root step"]
fn reading_commands_work_on_a_read_only_mount() {
    let parent = tempfile::tempdir().unwrap();
    let elsewhere = tempfile::tempdir().unwrap();
    let at = parent.path().join("mnt");
    std::fs::create_dir(&at).unwrap();
    let mount = |args: &[&str]| {
        let status = Command::new("mount").args(args).arg(&at).status();
        assert!(
            status.is_ok_and(|s| s.success()),
            "mount {args:?} failed: this test needs root (uid 0) and mount(8)"
        );
    };
    mount(&["-t", "tmpfs", "-o", "size=64m", "tmpfs"]);
    struct Unmount<'a>(&'a Path);
    impl Drop for Unmount<'_> {
        fn drop(&mut self) {
            let _ = Command::new("umount").arg(self.0).status();
        }
    }
    let _unmount = Unmount(&at);
    let db = populated(&at);
    // A second memory without its index folder: searched from an index rebuilt in RAM.
    let bare = at.join("bare.db");
    ok(
        &cairn_db(&bare, &["add", "Ann", "works at", "Acme Corp"]),
        "add",
    );
    ok(
        &cairn_db(&bare, &["observe", "Acme Corp", "Makes anvils"]),
        "observe",
    );
    std::fs::remove_dir_all(at.join("bare.db.index")).unwrap();
    mount(&["-o", "remount,ro"]);
    let before = listing(&at);

    every_reading_command_works(&db, elsewhere.path());
    every_reading_command_works(&bare, elsewhere.path());
    let out = cairn_db(&bare, &["search", "anvils"]);
    assert!(
        stderr(&out).contains("index rebuilt in memory"),
        "the result says which index: {}",
        stderr(&out)
    );
    assert_eq!(listing(&at), before, "nothing created on the mount");

    let out = cairn_db(&db, &["add", "Bob", "knows", "Ann"]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains(db.to_str().unwrap()),
        "{}",
        stderr(&out)
    );
}

/// `cairn --tenants DIR --tenant ID mcp`, initialized: it has the tenant open.
struct Server {
    child: std::process::Child,
    stdin: Option<std::process::ChildStdin>,
}

impl Server {
    fn serving(tenants: &Path, id: &str) -> Server {
        let mut child = Command::new(env!("CARGO_BIN_EXE_cairn"))
            .arg("--tenants")
            .arg(tenants)
            .args(["--tenant", id, "mcp"])
            .env_remove("CAIRN_LOG")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut stdin = child.stdin.take().unwrap();
        let mut stdout = std::io::BufReader::new(child.stdout.take().unwrap()).lines();
        let init = serde_json::json!({"jsonrpc": "2.0", "id": 1, "method": "initialize",
            "params": {"protocolVersion": "2025-06-18", "capabilities": {},
                       "clientInfo": {"name": "test", "version": "0"}}});
        writeln!(stdin, "{init}").unwrap();
        let reply = stdout.next().expect("a reply").unwrap();
        assert!(reply.contains("\"result\""), "{reply}");
        Server {
            child,
            stdin: Some(stdin),
        }
    }

    /// Closes its input, so it ends as a client's disconnect ends it, and waits.
    fn stop(mut self) {
        drop(self.stdin.take());
        let status = self.child.wait().unwrap();
        assert!(status.success(), "{status:?}");
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if self.stdin.is_some() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

#[test]
fn a_tenant_served_by_another_process_is_not_dropped() {
    let dir = tempfile::tempdir().unwrap();
    let tenants = dir.path().join("tenants");
    let t = tenants.to_str().unwrap();
    ok(&cairn(&["tenants", "--dir", t, "create", "acme"]), "create");
    ok(
        &cairn(&[
            "--tenants",
            t,
            "--tenant",
            "acme",
            "add",
            "Ann",
            "knows",
            "Bob",
        ]),
        "add",
    );
    // What Litestream keeps beside a replicated tenant goes with it.
    let litestream = tenants.join(".acme.db-litestream");
    std::fs::create_dir(&litestream).unwrap();
    std::fs::write(litestream.join("generation"), b"0123").unwrap();
    let before = listing(&tenants);

    let server = Server::serving(&tenants, "acme");
    let out = cairn(&["tenants", "--dir", t, "drop", "acme"]);
    assert_eq!(out.status.code(), Some(75), "{}", stderr(&out));
    assert!(stderr(&out).contains("in use"), "{}", stderr(&out));
    // Intact: the files the tenant had (the server's -wal and -shm come and go).
    let now = listing(&tenants);
    assert!(before.is_subset(&now), "{before:?} vs {now:?}");
    server.stop();

    let out = cairn(&["tenants", "--dir", t, "drop", "acme"]);
    ok(&out, "drop after the server exited");
    let left: Vec<String> = listing(&tenants)
        .into_iter()
        .filter(|p| p.contains("acme"))
        .collect();
    assert!(left.is_empty(), "{left:?}");
    let out = cairn(&["tenants", "--dir", t, "drop", "acme"]);
    assert_eq!(out.status.code(), Some(3), "gone: {}", stderr(&out));
}

#[test]
fn a_tenant_that_is_a_symbolic_link_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let tenants = dir.path().join("tenants");
    let t = tenants.to_str().unwrap();
    ok(&cairn(&["tenants", "--dir", t, "create", "acme"]), "create");
    let outside = dir.path().join("outside.db");
    ok(
        &cairn_db(&outside, &["add", "Eve", "knows", "Mallory"]),
        "add",
    );
    std::os::unix::fs::symlink(&outside, tenants.join("evil.db")).unwrap();

    let export = dir.path().join("evil-export.db");
    for args in [
        vec!["tenants", "--dir", t, "drop", "evil"],
        vec![
            "tenants",
            "--dir",
            t,
            "export",
            "evil",
            export.to_str().unwrap(),
        ],
        vec!["--tenants", t, "--tenant", "evil", "stats"],
    ] {
        let out = cairn(&args);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", stderr(&out));
        assert!(
            stderr(&out).contains("symbolic link"),
            "{args:?}: {}",
            stderr(&out)
        );
    }
    assert!(!export.exists());
    let stats = cairn_db(&outside, &["stats", "--json"]);
    ok(&stats, "stats");
    let stats: serde_json::Value = serde_json::from_slice(&stats.stdout).unwrap();
    assert_eq!(stats["relations"], 1, "the linked memory is untouched");
}
