//! The edges of issue 14: read-only use (a read-only file, folder and mount), errors that
//! name their cause, and reference files with over-long names and observations.
//!
//! The read-only mount and the full disk need `mount` (root): they are `#[ignore]` here
//! and run by name as `.ci/run`'s `edges-root` step, where they fail loudly without root.

use std::path::{Path, PathBuf};

use cairn::{
    Error, ImportOptions, IndexSource, JsonlFormat, KgRelation, Memory, Options, SearchOptions,
    VerifyMode,
};

mod common;
use common::{can_write, listing};

/// Whether this process may create files in `dir`.
fn can_create_in(dir: &Path) -> bool {
    let probe = dir.join(".probe");
    let made = std::fs::File::create(&probe).is_ok();
    let _ = std::fs::remove_file(&probe);
    made
}

/// A memory at `dir/name` with a few facts, indexed, closed.
fn populated(dir: &Path, name: &str) -> PathBuf {
    let path = dir.join(name);
    let memory = Memory::open(&path).unwrap();
    memory.add_triple(("Ann", "works at", "Acme Corp")).unwrap();
    memory.observe("Acme Corp", "Makes anvils").unwrap();
    memory.sync().unwrap();
    drop(memory);
    path
}

/// Everything a reading command does, through the library's read-only mode; returns the
/// memory's index source.
fn reads_everything(path: &Path) -> IndexSource {
    let memory = Options::new().read_only(true).open(path).unwrap();
    assert!(memory.is_read_only());
    assert_eq!(memory.stats().unwrap().relations, 1);
    let acme = memory.resolve("acme corp").unwrap().expect("Acme Corp");
    assert_eq!(memory.observations(acme).unwrap().len(), 1);
    memory.sync().unwrap();
    let hits = memory.search("anvils", &SearchOptions::new()).unwrap();
    assert!(
        hits.iter().any(|h| h.text.contains("Makes anvils")),
        "{hits:?}"
    );
    let report = memory.verify(VerifyMode::Full).unwrap();
    assert!(report.is_ok(), "{report:?}");
    let mut out = Vec::new();
    memory
        .export_jsonl(&mut out, JsonlFormat::MemoryJsonl)
        .unwrap();
    assert_eq!(String::from_utf8(out).unwrap().lines().count(), 3);
    assert!(matches!(
        memory.add_triple(("Bob", "knows", "Ann")),
        Err(Error::ReadOnly)
    ));
    memory.index_source()
}

#[cfg(unix)]
fn chmod(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

#[cfg(unix)]
#[test]
fn a_read_only_file_reads_and_leaves_nothing_behind() {
    let dir = tempfile::tempdir().unwrap();
    let path = populated(dir.path(), "m.db");
    chmod(&path, 0o444);
    let before = listing(dir.path());
    reads_everything(&path);
    // Root may write the file whatever its mode: SQLite then makes its usual -wal/-shm.
    if !can_write(&path) {
        assert_eq!(listing(dir.path()), before);
        let err = Memory::open(&path).unwrap_err();
        assert!(err.is_not_writable(), "{err:?}");
        assert!(
            err.to_string().contains(&path.display().to_string()),
            "{err}"
        );
    }
    chmod(&path, 0o644);
}

#[cfg(unix)]
#[test]
fn a_read_only_folder_reads_and_leaves_nothing_behind() {
    let dir = tempfile::tempdir().unwrap();
    let folder = dir.path().join("ro");
    std::fs::create_dir(&folder).unwrap();
    let path = populated(&folder, "m.db");
    chmod(&folder, 0o555);
    let before = listing(&folder);
    reads_everything(&path);
    if !can_create_in(&folder) {
        assert_eq!(listing(&folder), before);
        let err = Memory::open(&path).unwrap_err();
        assert!(err.is_not_writable(), "{err:?}");
        assert!(
            err.to_string().contains(&path.display().to_string()),
            "{err}"
        );
    }
    chmod(&folder, 0o755);
}

/// A tmpfs mounted at a fresh folder, unmounted on drop.
struct Mount {
    _parent: tempfile::TempDir,
    at: PathBuf,
}

impl Mount {
    /// Needs root; panics (loudly: these tests are run by name) without it.
    fn tmpfs(size: &str) -> Mount {
        let parent = tempfile::tempdir().unwrap();
        let at = parent.path().join("mnt");
        std::fs::create_dir(&at).unwrap();
        let status = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(&at)
            .status()
            .expect("run mount");
        assert!(
            status.success(),
            "mounting a tmpfs failed: this test needs root (uid 0) and mount(8)"
        );
        Mount {
            _parent: parent,
            at,
        }
    }

    fn remount_read_only(&self) {
        let status = std::process::Command::new("mount")
            .args(["-o", "remount,ro"])
            .arg(&self.at)
            .status()
            .unwrap();
        assert!(status.success(), "remounting read-only failed");
    }
}

impl Drop for Mount {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount").arg(&self.at).status();
    }
}

#[test]
#[ignore = "needs root: run by .ci/run's edges-root step"]
fn a_read_only_mount_reads_and_leaves_nothing_behind() {
    let mount = Mount::tmpfs("64m");
    let indexed = populated(&mount.at, "indexed.db");
    let bare = populated(&mount.at, "bare.db");
    std::fs::remove_dir_all(mount.at.join("bare.db.index")).unwrap();
    mount.remount_read_only();
    let before = listing(&mount.at);

    assert_eq!(reads_everything(&indexed), IndexSource::Folder);
    match reads_everything(&bare) {
        IndexSource::Rebuilt { reason } => assert!(reason.contains("bare.db.index"), "{reason}"),
        other => panic!("an index-less file on a read-only mount: {other:?}"),
    }
    assert_eq!(listing(&mount.at), before, "nothing created on the mount");

    let err = Memory::open(&indexed).unwrap_err();
    assert!(err.is_not_writable(), "{err:?}");
    assert!(
        err.to_string().contains(&indexed.display().to_string()),
        "{err}"
    );
    let missing = mount.at.join("missing.db");
    let err = Options::new().read_only(true).open(&missing).unwrap_err();
    assert!(
        err.to_string().contains(&missing.display().to_string()),
        "{err}"
    );
}

#[test]
#[ignore = "needs root: run by .ci/run's edges-root step"]
fn a_full_disk_during_an_import_says_so_and_names_the_file() {
    let mount = Mount::tmpfs("2m");
    let path = mount.at.join("full.db");
    let memory = Memory::open(&path).unwrap();
    let mut file = String::new();
    for i in 0..400 {
        let text = format!("observation {i} {}", "x".repeat(20_000));
        file.push_str(&format!(
            "{{\"type\":\"entity\",\"name\":\"E{i}\",\"entityType\":\"t\",\"observations\":[\"{text}\"]}}\n"
        ));
    }
    let err = memory
        .import_jsonl(file.as_bytes(), &ImportOptions::new())
        .unwrap_err();
    let text = err.to_string();
    assert!(!text.contains("savepoint"), "{text}");
    assert!(text.contains("full"), "{text}");
    if let Error::DiskFull { path: named, .. } = &err {
        assert_eq!(named, &path);
    } else {
        // A full disk at COMMIT may have stored the transaction or not.
        assert!(err.is_outcome_unknown(), "{err:?}");
    }
    assert!(text.contains("extended code"), "{text}");
}

// ----- errors that name the cause (item 8) -----------------------------------------------

#[test]
fn a_blank_predicate_is_an_invalid_predicate() {
    let memory = Memory::ephemeral().unwrap();
    let text = memory
        .add_triple(("Ann", "  ", "Bob"))
        .unwrap_err()
        .to_string();
    assert!(text.starts_with("invalid predicate"), "{text}");
    let text = memory
        .add_triple(("", "knows", "Bob"))
        .unwrap_err()
        .to_string();
    assert!(text.starts_with("invalid subject"), "{text}");

    let relation = |from: &str, relation_type: &str| KgRelation {
        from: from.into(),
        to: "Bob".into(),
        relation_type: relation_type.into(),
    };
    let err = memory
        .knowledge_graph()
        .create_relations(&[
            relation("Ann", "knows"),
            relation("Ann", "likes"),
            relation("Ann", "knows"),
            relation("Ann", "-_-"),
        ])
        .unwrap_err();
    assert!(err.is_invalid_input());
    let text = err.to_string();
    assert!(text.contains("invalid relations[3].relationType"), "{text}");
    assert_eq!(memory.stats().unwrap().relations, 0, "nothing written");
}

#[test]
fn an_unsupported_export_format_says_which_version_it_read() {
    let memory = Memory::ephemeral().unwrap();
    let file = "{\"type\":\"cairn\",\"format\":2,\"schema\":4,\"exported_at\":0}\n";
    let err = memory
        .import_jsonl(file.as_bytes(), &ImportOptions::new())
        .unwrap_err();
    let text = err.to_string();
    assert!(
        text.contains("export format 2") && text.contains("reads format 1"),
        "{text}"
    );
    assert!(!matches!(err, Error::NewerSchema { .. }), "{err:?}");
}

#[test]
fn an_index_folder_that_cannot_be_made_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("m.db");
    // A file where the index folder should be.
    std::fs::write(dir.path().join("m.db.index"), b"not a folder").unwrap();
    let memory = Memory::open(&path).unwrap();
    memory.add_triple(("Ann", "knows", "Bob")).unwrap();
    let text = memory.sync().unwrap_err().to_string();
    assert!(
        text.contains(&dir.path().join("m.db.index").display().to_string()),
        "{text}"
    );
}

// ----- reference files that import (item 9) ----------------------------------------------

/// A memory.jsonl line as the reference server writes it.
fn entity_line(name: &str, observations: &[&str]) -> String {
    serde_json::json!({
        "type": "entity",
        "name": name,
        "entityType": "person",
        "observations": observations,
    })
    .to_string()
}

#[test]
fn over_long_names_and_observations_of_a_reference_file_import() {
    let long_name = format!("Dr. {}", "Montgomery ".repeat(200)); // 2,204 bytes
    let long_type = format!("is {}", "very ".repeat(300));
    let long_text = format!("Diary: {}", "a long day. ".repeat(7_000)); // 84 KiB
    let file = [
        entity_line(&long_name, &["Has a long name"]),
        entity_line("Ann", &["Likes tea", &long_text]),
        serde_json::json!({
            "type": "relation",
            "from": long_name.to_uppercase(),
            "to": "Ann",
            "relationType": long_type,
        })
        .to_string(),
    ]
    .join("\n");

    let memory = Memory::ephemeral().unwrap();
    let report = memory
        .import_jsonl(
            file.as_bytes(),
            &ImportOptions::new().format(JsonlFormat::MemoryJsonl),
        )
        .unwrap();
    // The name (twice: entity and relation), the predicate and the observation.
    assert_eq!((report.records, report.shortened), (3, 4), "{report:?}");
    let stats = memory.stats().unwrap();
    assert_eq!((stats.entities, stats.relations), (2, 1), "{stats:?}");
    assert_eq!(stats.documents, 1, "the long observation's full text");

    let ann = memory.resolve("Ann").unwrap().unwrap();
    let incoming = memory.incoming(ann).unwrap();
    assert_eq!(incoming.len(), 1);
    let doctor = incoming[0].subject;
    let stored = memory.entity(doctor).unwrap().unwrap().name;
    assert!(stored.len() <= cairn::MAX_NAME_BYTES, "{}", stored.len());
    assert!(
        stored.starts_with("Dr. Montgomery") && stored.contains(" …#"),
        "{stored}"
    );
    let texts: Vec<String> = memory
        .observations(doctor)
        .unwrap()
        .into_iter()
        .map(|o| o.text)
        .collect();
    assert!(
        texts.contains(&format!("full name: {}", long_name.trim())),
        "the full name is kept"
    );
    let ann_texts: Vec<String> = memory
        .observations(ann)
        .unwrap()
        .into_iter()
        .map(|o| o.text)
        .collect();
    assert_eq!(ann_texts.len(), 2);
    let cut = ann_texts.iter().find(|t| t.starts_with("Diary")).unwrap();
    assert!(cut.len() <= cairn::MAX_OBSERVATION_BYTES && cut.ends_with(" […]"));
    // The full text, as a document about Ann: chunks that together hold all of it.
    assert!(stats.chunks > 1, "{stats:?}");
    let mut out = Vec::new();
    memory.export_jsonl(&mut out, JsonlFormat::Cairn).unwrap();
    let chunked: usize = String::from_utf8(out)
        .unwrap()
        .lines()
        .filter(|l| l.starts_with("{\"type\":\"chunk\""))
        .map(|l| l.matches("a long day.").count())
        .sum();
    assert!(chunked >= 7_000, "{chunked}");
}

#[test]
fn skip_invalid_skips_the_bad_observation_not_its_entity() {
    let file = [
        entity_line("Ann", &["Likes tea", "bad\u{0}text", "   ", "Reads"]),
        entity_line("Bob", &["Fine"]),
    ]
    .join("\n");
    let memory = Memory::ephemeral().unwrap();
    let err = memory
        .import_jsonl(
            file.as_bytes(),
            &ImportOptions::new().format(JsonlFormat::MemoryJsonl),
        )
        .unwrap_err();
    let text = err.to_string();
    assert!(text.starts_with("line 1: observations[1]"), "{text}");
    assert_eq!(memory.stats().unwrap().entities, 0, "nothing written");

    let report = memory
        .import_jsonl(
            file.as_bytes(),
            &ImportOptions::new()
                .format(JsonlFormat::MemoryJsonl)
                .skip_invalid(true),
        )
        .unwrap();
    assert_eq!(
        (report.records, report.skipped, report.skipped_observations),
        (2, 0, 2),
        "{report:?}"
    );
    assert_eq!(report.skipped_lines[0].0, 1);
    let ann = memory.resolve("Ann").unwrap().unwrap();
    let texts: Vec<String> = memory
        .observations(ann)
        .unwrap()
        .into_iter()
        .map(|o| o.text)
        .collect();
    assert_eq!(texts, ["Likes tea", "Reads"]);
}
