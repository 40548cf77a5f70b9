//! Archiving a tenant (and restoring it), and migrating a directory of tenants.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use cairn::{Error, Memory, MigrateOptions, MigrateOutcome, Tenants, VerifyMode};

/// The names in `dir`, sorted.
fn names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// Every subject of a `knows` relation in the memory at `path`.
fn subjects(memory: &Memory, n: usize) -> Vec<usize> {
    (0..n)
        .filter(|i| memory.resolve(&format!("P{i}")).unwrap().is_some())
        .collect()
}

#[test]
fn archive_drops_the_tenant_and_restore_brings_it_back() {
    let dir = tempfile::tempdir().unwrap();
    let out = tempfile::tempdir().unwrap();
    let tenants = Tenants::open(dir.path()).unwrap();
    for i in 0..20 {
        tenants
            .get("run-1")
            .unwrap()
            .add_triple((format!("P{i}").as_str(), "knows", "Q"))
            .unwrap();
    }
    tenants.get("other").unwrap();
    let dest = out.path().join("run-1.cairn");
    let report = tenants.archive("run-1", &dest).unwrap();
    assert_eq!(report.path, dest);
    assert_eq!(report.bytes, std::fs::metadata(&dest).unwrap().len());
    assert_eq!(report.last_seq, 41, "21 entities and 20 relations");
    assert_eq!(
        names(out.path()),
        ["run-1.cairn"],
        "one file, nothing beside it"
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&dest).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    // The live tenant is gone; its tombstone refuses a write rather than a new memory.
    assert_eq!(tenants.list().unwrap(), ["other"]);
    assert_eq!(
        names(dir.path())
            .iter()
            .filter(|n| n.starts_with("run-1."))
            .count(),
        1
    );
    let refused = tenants.get("run-1").unwrap_err();
    assert!(
        matches!(&refused, Error::Archived { archive, .. } if archive.ends_with("run-1.cairn")),
        "{refused}"
    );
    assert!(!tenants.path("run-1").unwrap().exists());

    // Restore: checked, into the tenant, with every write.
    let restored = tenants.restore_archive("run-1", &dest).unwrap();
    assert_eq!(subjects(&restored, 20), (0..20).collect::<Vec<_>>());
    assert!(restored.verify(VerifyMode::Full).unwrap().is_ok());
    drop(restored);
    assert_eq!(tenants.list().unwrap(), ["other", "run-1"]);
    tenants
        .get("run-1")
        .unwrap()
        .add_triple(("P20", "knows", "Q"))
        .unwrap();
    // Dropping an archived tenant frees its id: a write starts a new memory.
    let out2 = out.path().join("run-2.cairn");
    tenants
        .get("run-2")
        .unwrap()
        .add_triple(("A", "r", "B"))
        .unwrap();
    tenants.archive("run-2", &out2).unwrap();
    assert!(tenants.drop_tenant("run-2").unwrap());
    assert!(!tenants.drop_tenant("run-2").unwrap());
    assert_eq!(tenants.get("run-2").unwrap().stats().unwrap().relations, 0);
    // Never over an existing tenant.
    let err = tenants.restore_archive("run-1", &dest).unwrap_err();
    assert!(err.is_invalid_input(), "{err}");
    assert!(err.to_string().contains("run-1.db"), "{err}");
}

#[test]
fn bad_archive_inputs_are_typed_errors_and_write_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let out = tempfile::tempdir().unwrap();
    let tenants = Tenants::open(dir.path()).unwrap();
    tenants
        .get("acme")
        .unwrap()
        .add_triple(("A", "r", "B"))
        .unwrap();
    let before = names(dir.path());

    let err = tenants
        .archive("ghost", out.path().join("g.db"))
        .unwrap_err();
    assert!(err.is_not_found(), "{err}");

    let existing = out.path().join("taken.db");
    std::fs::write(&existing, b"mine").unwrap();
    let err = tenants.archive("acme", &existing).unwrap_err();
    assert!(err.is_invalid_input(), "{err}");
    assert!(err.to_string().contains("taken.db"), "{err}");
    assert_eq!(std::fs::read(&existing).unwrap(), b"mine");

    let missing = out.path().join("no-such-folder").join("a.db");
    let err = tenants.archive("acme", &missing).unwrap_err();
    assert!(matches!(err, Error::File { .. }), "{err}");
    assert!(err.to_string().contains("no-such-folder"), "{err}");

    assert!(
        tenants
            .archive("../x", out.path().join("x.db"))
            .unwrap_err()
            .is_invalid_input()
    );
    assert_eq!(names(out.path()), ["taken.db"]);
    assert_eq!(names(dir.path()), before);
    assert_eq!(tenants.get("acme").unwrap().stats().unwrap().relations, 1);

    // Restoring what is not an archive, or from nowhere: refused, no tenant made.
    let err = tenants.restore_archive("new", &existing).unwrap_err();
    assert!(
        matches!(err, Error::NotADatabase { .. })
            || cfg!(feature = "encryption") && matches!(err, Error::KeyRequired { .. }),
        "{err}"
    );
    let err = tenants
        .restore_archive("new", out.path().join("absent.db"))
        .unwrap_err();
    assert!(matches!(err, Error::File { .. }), "{err}");
    assert!(err.to_string().contains("absent.db"), "{err}");
    assert_eq!(tenants.list().unwrap(), ["acme"]);
}

#[test]
fn a_tenant_open_elsewhere_is_not_archived() {
    let dir = tempfile::tempdir().unwrap();
    let out = tempfile::tempdir().unwrap();
    let tenants = Tenants::open(dir.path()).unwrap();
    tenants
        .get("acme")
        .unwrap()
        .add_triple(("A", "r", "B"))
        .unwrap();
    // Another open of the file (as another process's would be) holds its shared lock.
    let elsewhere = Memory::open(tenants.path("acme").unwrap()).unwrap();
    let err = tenants
        .archive("acme", out.path().join("a.db"))
        .unwrap_err();
    assert!(matches!(err, Error::InUse { .. }), "{err}");
    assert!(names(out.path()).is_empty());
    // Its writes still land, and the tenant is still served.
    elsewhere.add_triple(("C", "r", "D")).unwrap();
    drop(elsewhere);
    assert_eq!(tenants.get("acme").unwrap().stats().unwrap().relations, 2);
    tenants.archive("acme", out.path().join("a.db")).unwrap();
}

#[test]
fn a_writer_during_the_archive_is_refused_never_lost() {
    let dir = tempfile::tempdir().unwrap();
    let out = tempfile::tempdir().unwrap();
    let tenants = Arc::new(Tenants::open(dir.path()).unwrap());
    tenants
        .get("run")
        .unwrap()
        .add_triple(("Seed", "r", "Zero"))
        .unwrap();
    let started = Arc::new(AtomicBool::new(false));
    let writer = {
        let (tenants, started) = (tenants.clone(), started.clone());
        std::thread::spawn(move || {
            let mut acknowledged = Vec::new();
            for i in 0.. {
                match tenants
                    .get("run")
                    .and_then(|m| m.add_triple((format!("P{i}").as_str(), "knows", "Q")))
                {
                    Ok(_) => acknowledged.push(i),
                    Err(e) => return (acknowledged, e),
                }
                if i == 50 {
                    started.store(true, Ordering::SeqCst);
                }
            }
            unreachable!()
        })
    };
    while !started.load(Ordering::SeqCst) {
        std::thread::yield_now();
    }
    let dest = out.path().join("run.db");
    tenants.archive("run", &dest).unwrap();
    let (acknowledged, refusal) = writer.join().unwrap();
    assert!(
        matches!(refusal, Error::InUse { .. } | Error::Archived { .. }),
        "{refusal}"
    );
    assert!(acknowledged.len() > 50);
    // Later writes are refused too.
    assert!(matches!(
        tenants.get("run").unwrap_err(),
        Error::Archived { .. }
    ));
    let restored = tenants.restore_archive("run", &dest).unwrap();
    let highest = *acknowledged.last().unwrap();
    // Every acknowledged write is in the archive, and nothing else was written.
    assert_eq!(subjects(&restored, highest + 10), acknowledged);
}

/// A copy of the schema-v1 fixture at `dir/<id>.db`.
fn v1_tenant(dir: &Path, id: &str) {
    std::fs::copy(
        concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/schema-v1.db"),
        dir.join(format!("{id}.db")),
    )
    .unwrap();
}

#[test]
fn a_fleet_of_version_1_tenants_migrates_and_resumes() {
    const N: usize = 1_000;
    // Each migrated tenant costs a few fsyncs (its switch to WAL, its checkpoint at
    // close): ~45 ms each on a shared disk, so the fleet goes in memory where there is a
    // tmpfs (3.7 s in a debug build there). What is tested is the same.
    let shm = Path::new("/dev/shm");
    let dir = if shm.is_dir() {
        tempfile::tempdir_in(shm).unwrap()
    } else {
        tempfile::tempdir().unwrap()
    };
    for i in 0..N {
        v1_tenant(dir.path(), &format!("t{i:04}"));
    }
    // One tenant is not a database at all.
    std::fs::write(dir.path().join("t0500.db"), vec![0x5a; 8192]).unwrap();
    let tenants = Tenants::open_with(dir.path(), cairn::Options::default(), 8).unwrap();
    let mut seen = 0;
    let report = tenants
        .migrate_all(&MigrateOptions::new(), |_| seen += 1)
        .unwrap();
    assert_eq!(seen, N);
    assert_eq!(
        (report.total, report.migrated, report.failed),
        (N, N - 1, 1)
    );
    assert!(!report.is_ok());
    let failed: Vec<_> = report
        .tenants
        .iter()
        .filter(|t| matches!(t.outcome, MigrateOutcome::Failed { .. }))
        .map(|t| t.id.as_str())
        .collect();
    assert_eq!(failed, ["t0500"]);
    assert!(
        report
            .tenants
            .iter()
            .filter(|t| t.id != "t0500")
            .all(|t| t.from_version == Some(1))
    );
    // A migrated tenant has its data at the current schema.
    let memory = Memory::open_with(
        tenants.path("t0999").unwrap(),
        cairn::Options::default().read_only(true),
    )
    .unwrap();
    assert!(memory.verify(VerifyMode::Full).unwrap().problems.is_empty());
    assert_eq!(memory.stats().unwrap().relations, 2);
    drop(memory);

    // A second run skips the done ones and reports the corrupt one again.
    let again = tenants.migrate_all(&MigrateOptions::new(), |_| {}).unwrap();
    assert_eq!((again.skipped, again.migrated, again.failed), (N - 1, 0, 1));
    // As after a kill: a tenant missing from the progress file is verified again.
    let progress = dir.path().join(cairn::MIGRATE_PROGRESS_FILE);
    let text = std::fs::read_to_string(&progress).unwrap();
    let kept: String = text
        .lines()
        .filter(|l| !l.starts_with("t0001 "))
        .map(|l| format!("{l}\n"))
        .collect();
    std::fs::write(&progress, kept).unwrap();
    let resumed = tenants.migrate_all(&MigrateOptions::new(), |_| {}).unwrap();
    assert_eq!(
        (resumed.skipped, resumed.verified, resumed.failed),
        (N - 2, 1, 1)
    );
}

#[test]
fn a_drained_tenant_is_refused_and_a_moved_one_leaves_a_tombstone() {
    let old = tempfile::tempdir().unwrap();
    let new = tempfile::tempdir().unwrap();
    let here = Tenants::open(old.path()).unwrap();
    for i in 0..10 {
        here.get("acme")
            .unwrap()
            .add_triple((format!("P{i}").as_str(), "knows", "Q"))
            .unwrap();
    }
    here.get("other").unwrap();
    let last = here.get("acme").unwrap().last_seq().unwrap();

    let mut drained = here.drain("acme").unwrap();
    assert_eq!(
        drained.last_seq(),
        last,
        "the high-water mark is the log's end"
    );
    // Refused in this process (typed, retryable elsewhere) and in any other open.
    let refused = here.get("acme").unwrap_err();
    assert!(
        matches!(&refused, Error::InUse { reason, .. } if reason.contains("drained")),
        "{refused}"
    );
    let elsewhere = Memory::open(drained.path()).unwrap_err();
    assert!(matches!(elsewhere, Error::InUse { .. }), "{elsewhere}");
    assert!(matches!(
        here.drain("acme").unwrap_err(),
        Error::InUse { .. }
    ));
    // Other tenants are served meanwhile.
    here.get("other")
        .unwrap()
        .add_triple(("X", "r", "Y"))
        .unwrap();

    // The quiescent file is complete on its own (closed: no WAL left to replay).
    std::fs::copy(drained.path(), new.path().join("acme.db")).unwrap();
    drained.moved("server-b").unwrap();
    // Still fenced while the guard lives; the tombstone refuses the id after it.
    assert!(matches!(here.get("acme").unwrap_err(), Error::InUse { .. }));
    drop(drained);

    let gone = here.get("acme").unwrap_err();
    assert!(
        matches!(&gone, Error::Moved { to, .. } if to == "server-b"),
        "{gone}"
    );
    assert_eq!(here.list().unwrap(), ["other"]);
    assert_eq!(
        names(old.path())
            .iter()
            .filter(|n| n.starts_with("acme."))
            .collect::<Vec<_>>(),
        ["acme.db.moved"],
        "only the tombstone is left"
    );
    let there = Tenants::open(new.path()).unwrap();
    let moved = there.get("acme").unwrap();
    assert_eq!(moved.last_seq().unwrap(), last);
    assert_eq!(subjects(&moved, 20), (0..10).collect::<Vec<_>>());
    // Dropping the id frees it.
    assert!(here.drop_tenant("acme").unwrap());
    assert!(names(old.path()).iter().all(|n| !n.starts_with("acme.")));
}

#[test]
fn a_writer_during_a_drain_is_refused_never_lost_and_an_abandoned_drain_serves_again() {
    let dir = tempfile::tempdir().unwrap();
    let tenants = Arc::new(Tenants::open(dir.path()).unwrap());
    tenants.get("run").unwrap();
    let started = Arc::new(AtomicBool::new(false));
    let writer = {
        let (tenants, started) = (tenants.clone(), started.clone());
        std::thread::spawn(move || {
            let mut acknowledged = Vec::new();
            for i in 0.. {
                match tenants
                    .get("run")
                    .and_then(|m| m.add_triple((format!("P{i}").as_str(), "knows", "Q")))
                {
                    Ok(_) => acknowledged.push(i),
                    Err(e) => return (acknowledged, e),
                }
                if i == 50 {
                    started.store(true, Ordering::SeqCst);
                }
            }
            unreachable!()
        })
    };
    while !started.load(Ordering::SeqCst) {
        std::thread::yield_now();
    }
    let drained = tenants.drain("run").unwrap();
    let (acknowledged, refusal) = writer.join().unwrap();
    assert!(matches!(refusal, Error::InUse { .. }), "{refusal}");
    assert!(acknowledged.len() > 50);
    let high_water = drained.last_seq();
    // Abandoned: the tenant is served again, with every acknowledged write and only those.
    drop(drained);
    let memory = tenants.get("run").unwrap();
    let highest = *acknowledged.last().unwrap();
    assert_eq!(subjects(&memory, highest + 10), acknowledged);
    assert_eq!(memory.last_seq().unwrap(), high_water);
}

#[test]
fn a_drain_is_refused_for_an_unknown_tenant_or_one_open_elsewhere() {
    let dir = tempfile::tempdir().unwrap();
    let tenants = Tenants::open(dir.path()).unwrap();
    assert!(tenants.drain("nobody").unwrap_err().is_not_found());
    assert!(tenants.drain("../etc").unwrap_err().is_invalid_input());
    tenants
        .get("acme")
        .unwrap()
        .add_triple(("A", "r", "B"))
        .unwrap();
    let elsewhere = Memory::open(tenants.path("acme").unwrap()).unwrap();
    let err = tenants.drain("acme").unwrap_err();
    assert!(matches!(err, Error::InUse { .. }), "{err}");
    // Nothing changed: the other open writes, and the tenant is served again.
    elsewhere.add_triple(("C", "r", "D")).unwrap();
    drop(elsewhere);
    assert_eq!(tenants.get("acme").unwrap().stats().unwrap().relations, 2);
    assert!(names(dir.path()).iter().all(|n| !n.ends_with(".moved")));
}

#[test]
fn get_existing_never_creates_a_tenant() {
    let dir = tempfile::tempdir().unwrap();
    let tenants = Tenants::open(dir.path()).unwrap();
    let err = tenants.get_existing("acme").unwrap_err();
    assert!(err.is_not_found(), "{err}");
    assert!(names(dir.path()).is_empty(), "nothing written");
    tenants
        .get("acme")
        .unwrap()
        .add_triple(("A", "r", "B"))
        .unwrap();
    assert_eq!(
        tenants
            .get_existing("acme")
            .unwrap()
            .stats()
            .unwrap()
            .relations,
        1
    );
    tenants.drain("acme").unwrap().moved("server-b").unwrap();
    let moved = tenants.get_existing("acme").unwrap_err();
    assert!(matches!(moved, Error::Moved { .. }), "{moved}");
}
