//! Online backup and restore.
//!
//! A backup is one consistent snapshot taken with SQLite's backup API in a single step
//! (a read transaction: writers continue, in WAL mode they are not blocked), written to a
//! temporary file beside the destination, synced with its directory, renamed into place,
//! and then checked. A restore copies a checked backup to a new path — never over an
//! existing file, which could be a live memory — and opens it.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use rusqlite::{Connection, OpenFlags};
use serde::Serialize;

use crate::config::Options;
use crate::db::migrate::{APPLICATION_ID, SCHEMA_VERSION};
use crate::db::sibling;
use crate::error::{Error, Result};
use crate::index;
use crate::memory::Memory;

/// What [`Memory::backup`] wrote.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BackupReport {
    /// The backup file.
    pub path: PathBuf,
    /// Its size in bytes.
    pub bytes: u64,
    /// The newest change-log `seq` it holds.
    pub last_seq: i64,
    /// How long the copy (not the check) took.
    pub copy_time: Duration,
}

impl Memory {
    /// Writes a consistent copy of the memory to `dest` while writers continue, and
    /// checks it (`integrity_check`). `dest` is replaced atomically if it exists; it may
    /// not be this memory's own file.
    ///
    /// ```
    /// let dir = tempfile::tempdir().unwrap();
    /// let memory = cairn::Memory::open(dir.path().join("live.db"))?;
    /// memory.add_triple(("Acme Corp", "acquired", "Widget Inc"))?;
    /// let report = memory.backup(dir.path().join("backup.db"))?;
    /// let restored = cairn::Memory::restore(&report.path, dir.path().join("restored.db"))?;
    /// assert_eq!(restored.stats()?, memory.stats()?);
    /// # Ok::<(), cairn::Error>(())
    /// ```
    pub fn backup(&self, dest: impl AsRef<Path>) -> Result<BackupReport> {
        let dest = dest.as_ref();
        if same_file(dest, self.path()) {
            return Err(Error::invalid_input(
                "backup destination",
                "it is the memory's own file",
            ));
        }
        let temporary = temporary_beside(dest)?;
        let started = Instant::now();
        let copied = self.db().read(|source| copy_into(source, &temporary));
        let result = copied.and_then(|()| {
            let copy_time = started.elapsed();
            sync_file(&temporary)?;
            std::fs::rename(&temporary, dest)?;
            sync_parent(dest)?;
            let last_seq = check_backup(dest)?;
            Ok(BackupReport {
                path: dest.to_owned(),
                bytes: std::fs::metadata(dest)?.len(),
                last_seq,
                copy_time,
            })
        });
        if result.is_err() {
            let _ = std::fs::remove_file(&temporary);
        }
        result
    }

    /// Restores the backup at `backup` into a new memory file `to` and opens it (with
    /// default options; the search index is rebuilt from the file). `to` must not exist:
    /// a restore never overwrites a file that might be a live memory.
    pub fn restore(backup: impl AsRef<Path>, to: impl AsRef<Path>) -> Result<Memory> {
        Self::restore_with(backup, to, Options::default())
    }

    /// [`Memory::restore`] with `options` for the opened memory.
    pub fn restore_with(
        backup: impl AsRef<Path>,
        to: impl AsRef<Path>,
        options: Options,
    ) -> Result<Memory> {
        let (backup, to) = (backup.as_ref(), to.as_ref());
        if to.exists() {
            return Err(Error::invalid_input(
                "restore target",
                format!(
                    "{} exists; restore into a new path, never over a memory",
                    to.display()
                ),
            ));
        }
        clear_orphans_of(to)?;
        check_backup(backup)?;
        let temporary = temporary_beside(to)?;
        let result = (|| {
            let source = Connection::open_with_flags(backup, OpenFlags::SQLITE_OPEN_READ_ONLY)?;
            copy_into(&source, &temporary)?;
            sync_file(&temporary)?;
            std::fs::rename(&temporary, to)?;
            sync_parent(to)
        })();
        if result.is_err() {
            let _ = std::fs::remove_file(&temporary);
        }
        result?;
        // Opening sets WAL mode again and migrates an older backup.
        Memory::open_with(to, options)
    }
}

/// What a memory that is gone may have left at `to`: a `-wal` or `-shm` would be read
/// as the restored file's own log (SQLite matches a WAL to its file by name only), so
/// the restore is refused; an index folder is derived data of another history, so it is
/// removed and rebuilt from the restored file.
fn clear_orphans_of(to: &Path) -> Result<()> {
    for suffix in ["-wal", "-shm", "-journal"] {
        let orphan = sibling(to, suffix);
        if orphan.exists() {
            return Err(Error::invalid_input(
                "restore target",
                format!(
                    "{} exists without its database; move it away before restoring",
                    orphan.display()
                ),
            ));
        }
    }
    index::remove_all_for(to)
}

/// Copies every page of `source` (one snapshot) into a new database file at `path`.
fn copy_into(source: &Connection, path: &Path) -> Result<()> {
    // Owner-only before SQLite opens it (its journal inherits the mode).
    crate::files::create_private_file(path)?;
    let mut target = Connection::open(path)?;
    {
        let backup = rusqlite::backup::Backup::new(source, &mut target)?;
        // One step of every page: one read transaction, so one consistent snapshot.
        backup.step(-1)?;
    }
    target.close().map_err(|(_, e)| Error::from(e))
}

/// Checks that `path` is a sound cairn memory this build can open; returns its last
/// `seq`.
fn check_backup(path: &Path) -> Result<i64> {
    let conn =
        Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_ONLY).map_err(|_| {
            Error::NotADatabase {
                path: path.to_owned(),
            }
        })?;
    let header = conn.query_row(
        "SELECT (SELECT application_id FROM pragma_application_id),
                (SELECT user_version FROM pragma_user_version)",
        [],
        |r| Ok((r.get::<_, i64>(0)?, r.get::<_, i64>(1)?)),
    );
    let (application_id, version) = header.map_err(|_| Error::NotADatabase {
        path: path.to_owned(),
    })?;
    if application_id != APPLICATION_ID {
        return Err(Error::ForeignDatabase {
            path: path.to_owned(),
            reason: format!("application_id is {application_id:#x}"),
        });
    }
    if version > SCHEMA_VERSION {
        return Err(Error::NewerSchema {
            found: version,
            supported: SCHEMA_VERSION,
        });
    }
    let integrity: String = conn.query_row("PRAGMA integrity_check(1)", [], |r| r.get(0))?;
    if integrity != "ok" {
        return Err(Error::invalid_input(
            "backup",
            format!("{} fails integrity_check: {integrity}", path.display()),
        ));
    }
    Ok(conn.query_row("SELECT coalesce(max(seq), 0) FROM change", [], |r| r.get(0))?)
}

fn temporary_beside(path: &Path) -> Result<PathBuf> {
    let name = path
        .file_name()
        .ok_or_else(|| Error::invalid_input("path", format!("{} names no file", path.display())))?;
    let mut temporary = name.to_owned();
    temporary.push(format!(".tmp-{}", std::process::id()));
    let temporary = path.with_file_name(temporary);
    let _ = std::fs::remove_file(&temporary);
    Ok(temporary)
}

fn sync_file(path: &Path) -> Result<()> {
    File::open(path)?.sync_all()?;
    Ok(())
}

/// Makes a rename durable: the directory entry is data too.
fn sync_parent(path: &Path) -> Result<()> {
    let parent = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    File::open(parent)?.sync_all()?;
    Ok(())
}

fn same_file(a: &Path, b: &Path) -> bool {
    match (a.canonicalize(), b.canonicalize()) {
        (Ok(a), Ok(b)) => a == b,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backup_while_writers_run_is_consistent_and_restorable() {
        let dir = tempfile::tempdir().unwrap();
        let memory = Memory::open(dir.path().join("live.db")).unwrap();
        memory.add_triple(("Seed", "r", "Zero")).unwrap();
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let writer = {
            let (memory, stop) = (memory.clone(), stop.clone());
            std::thread::spawn(move || {
                let mut n = 0;
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    memory
                        .add_triple((format!("P{n}").as_str(), "knows", "Q"))
                        .unwrap();
                    n += 1;
                }
                n
            })
        };
        let mut reports = Vec::new();
        for i in 0..3 {
            std::thread::sleep(Duration::from_millis(30));
            reports.push(memory.backup(dir.path().join(format!("b{i}.db"))).unwrap());
        }
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        let written = writer.join().unwrap();
        assert!(written > 0);
        for (i, report) in reports.iter().enumerate() {
            let restored =
                Memory::restore(&report.path, dir.path().join(format!("r{i}.db"))).unwrap();
            // A snapshot: every relation of it has both its entity rows and change rows.
            assert_eq!(restored.last_seq().unwrap().get(), report.last_seq);
            let verify = restored.verify(crate::VerifyMode::Full).unwrap();
            assert!(verify.is_ok(), "{:?}", verify.problems);
        }
        // Restoring over an existing file is refused and leaves it alone.
        let err = Memory::restore(&reports[0].path, dir.path().join("live.db")).unwrap_err();
        assert!(err.is_invalid_input(), "{err}");
        assert!(memory.backup(dir.path().join("live.db")).is_err());
        assert!(memory.verify(crate::VerifyMode::Full).unwrap().is_ok());
    }

    #[test]
    fn restore_refuses_what_is_not_a_cairn_backup() {
        let dir = tempfile::tempdir().unwrap();
        let garbage = dir.path().join("garbage.db");
        std::fs::write(&garbage, b"not a database at all, just some bytes").unwrap();
        let err = Memory::restore(&garbage, dir.path().join("out.db")).unwrap_err();
        assert!(matches!(err, Error::NotADatabase { .. }), "{err}");
        assert!(!dir.path().join("out.db").exists());
    }
}
