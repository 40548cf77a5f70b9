//! The `cairn` binary with an encrypted memory (feature `encryption`): the key from
//! CAIRN_KEY_FILE / --key-file or CAIRN_KEY, never from a flag of its own; wrong and
//! missing keys exit 2 with the typed error's message and leave the file as it was.
#![cfg(feature = "encryption")]

use std::path::Path;
use std::process::{Command, Output};

const SECRET: &str = "Quetzalcoatlus";

fn cairn(db: &Path, env: &[(&str, &std::ffi::OsStr)], args: &[&str]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_cairn"));
    command
        .arg("--db")
        .arg(db)
        .args(args)
        .env_remove("CAIRN_DB")
        .env_remove("CAIRN_MODEL")
        .env_remove("CAIRN_LOG")
        .env_remove("CAIRN_KEY")
        .env_remove("CAIRN_KEY_FILE");
    for (name, value) in env {
        command.env(name, value);
    }
    command.output().expect("run cairn")
}

fn ok(out: &Output) -> String {
    assert!(
        out.status.success(),
        "failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn holds_secret(dir: &Path) -> Vec<String> {
    let mut found = Vec::new();
    let mut stack = vec![dir.to_owned()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else {
                let bytes = std::fs::read(&path).unwrap();
                for needle in [SECRET, &SECRET.to_lowercase()] {
                    if bytes.windows(needle.len()).any(|w| w == needle.as_bytes()) {
                        found.push(path.display().to_string());
                    }
                }
            }
        }
    }
    found
}

#[test]
fn the_binary_reads_the_key_from_a_file_or_the_environment() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("m.db");
    let key_file = dir.path().join("key");
    std::fs::write(&key_file, "a passphrase\n").unwrap();
    let by_file = [("CAIRN_KEY_FILE", key_file.as_os_str())];
    ok(&cairn(
        &db,
        &by_file,
        &["add", SECRET, "hunts", "pterosaurs"],
    ));
    // The same passphrase from the environment opens it too.
    let by_env = [("CAIRN_KEY", std::ffi::OsStr::new("a passphrase"))];
    let hits = ok(&cairn(&db, &by_env, &["search", SECRET]));
    assert!(hits.contains(SECRET), "{hits}");
    let flag = ["--key-file", key_file.to_str().unwrap()];
    let backup = dir.path().join("backup.db");
    ok(&cairn(
        &db,
        &[],
        &[&flag[..], &["backup", backup.to_str().unwrap()]].concat(),
    ));
    ok(&cairn(&db, &by_file, &["check", "--full"]));
    let restored = dir.path().join("restored.db");
    ok(&cairn(
        &restored,
        &by_file,
        &["restore", backup.to_str().unwrap()],
    ));
    let stats = ok(&cairn(&restored, &by_file, &["stats", "--json"]));
    assert!(
        stats.contains("\"relations\": 1") || stats.contains("\"relations\":1"),
        "{stats}"
    );
    // The key file sits in the folder: it holds the passphrase, not the secret text.
    assert_eq!(holds_secret(dir.path()), Vec::<String>::new());

    let before = std::fs::read(&db).unwrap();
    let wrong = [("CAIRN_KEY", std::ffi::OsStr::new("another one"))];
    for (env, expected) in [
        (&wrong[..], "the key does not open this file"),
        (&[][..], "is encrypted"),
    ] {
        let out = cairn(&db, env, &["search", SECRET]);
        assert_eq!(out.status.code(), Some(2));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(expected), "{stderr}");
        assert!(
            !stderr.contains("hmac"),
            "SQLCipher's own log leaked: {stderr}"
        );
    }
    assert_eq!(std::fs::read(&db).unwrap(), before);
    // Both sources at once are ambiguous; a key flag of its own does not exist.
    let both = [by_file[0], by_env[0]];
    assert_eq!(cairn(&db, &both, &["stats"]).status.code(), Some(2));
    assert_eq!(
        cairn(&db, &[], &["--key", "x", "stats"]).status.code(),
        Some(2)
    );
}
