//! Online backup and restore.
//!
//! A backup is one consistent snapshot taken with SQLite's backup API in a single step
//! (a read transaction: writers continue, in WAL mode they are not blocked), written to a
//! temporary file beside the destination (`DEST.tmp-PID-N`) in rollback-journal mode (so
//! no `-wal`/`-shm` ever sits beside it), checked, synced, and only then renamed into
//! place with its directory synced: a copy that fails its check never replaces `dest`.
//! A failed backup removes its temporary and its journals; one a killed process left
//! behind is swept by the next backup or restore into the same folder, once its process
//! is gone or it is an hour old. A restore copies a checked backup to a new path — never
//! over an existing file, which could be a live memory — and opens it.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime};

use rusqlite::{Connection, OpenFlags};
use serde::Serialize;

use crate::config::Options;
use crate::db::connections::open_side;
use crate::db::migrate::{APPLICATION_ID, SCHEMA_VERSION};
use crate::db::sibling;
use crate::error::{Error, Result};
use crate::index;
use crate::key::{FileKey, Key};
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
    /// Writes a consistent copy of the memory to `dest` while writers continue. The copy
    /// is checked (`integrity_check`, cairn's header) before it replaces `dest`
    /// atomically: when anything fails, an existing `dest` is left as it was and no
    /// temporary is left beside it. `dest` may not be this memory's own file.
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
        let options = self.db().options();
        checked_copy(dest, Replace::Yes, options.key.as_ref(), |temporary| {
            self.db()
                .read(|source| copy_into(source, temporary, options.file_key.as_ref()))
        })
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
        let key = options.key.as_ref();
        check_backup(backup, key)?;
        let temporary = temporary_beside(to)?;
        let result = (|| {
            // The restored file keeps the backup's salt, so the same secret opens both.
            let file_key = key.map(|k| k.for_file(backup)).transpose()?;
            let flags = OpenFlags::SQLITE_OPEN_READ_ONLY;
            let source = open_side(backup, flags, None, file_key.as_ref())?;
            copy_into(&source, &temporary, file_key.as_ref())?;
            sync_file(&temporary)?;
            std::fs::rename(&temporary, to)?;
            sync_parent(to)
        })();
        if result.is_err() {
            remove_temporary(&temporary);
        }
        result?;
        // Opening sets WAL mode again and migrates an older backup.
        Memory::open_with(to, options)
    }
}

/// Whether [`checked_copy`] may replace an existing destination.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Replace {
    /// A backup replaces an older one at its path.
    Yes,
    /// An archive never does: a destination that appeared meanwhile is an error.
    No,
}

/// Writes a copy of a memory to `dest` through a temporary beside it: `copy` fills the
/// temporary, which is then checked ([`check_backup`]), synced and moved into place with
/// its directory synced. When anything fails, `dest` is left as it was and the
/// temporary is removed. The one place backups and archives are made durable.
pub(crate) fn checked_copy(
    dest: &Path,
    replace: Replace,
    key: Option<&Key>,
    copy: impl FnOnce(&Path) -> Result<()>,
) -> Result<BackupReport> {
    let temporary = temporary_beside(dest)?;
    let started = Instant::now();
    let result = copy(&temporary).and_then(|()| {
        let copy_time = started.elapsed();
        let last_seq = check_backup(&temporary, key)?;
        sync_file(&temporary)?;
        let bytes = std::fs::metadata(&temporary)?.len();
        match replace {
            Replace::Yes => std::fs::rename(&temporary, dest)?,
            // A hard link fails when `dest` exists, where a rename would replace it.
            Replace::No => match std::fs::hard_link(&temporary, dest) {
                Ok(()) => {
                    let _ = std::fs::remove_file(&temporary);
                }
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                    return Err(Error::file(dest, e));
                }
                // A file system without hard links: check, then rename (a file made
                // in between would be replaced; nothing else writes archives there).
                Err(_) if std::fs::symlink_metadata(dest).is_ok() => {
                    return Err(Error::file(
                        dest,
                        std::io::Error::from(std::io::ErrorKind::AlreadyExists),
                    ));
                }
                Err(_) => std::fs::rename(&temporary, dest)?,
            },
        }
        sync_parent(dest)?;
        Ok(BackupReport {
            path: dest.to_owned(),
            bytes,
            last_seq,
            copy_time,
        })
    });
    if result.is_err() {
        remove_temporary(&temporary);
    }
    result
}

/// A compacted copy (`VACUUM INTO`: no free pages, one snapshot) of the memory file at
/// `source`, checked and synced at `dest`, which must not exist. For a memory nobody
/// has open (an archive holds the tenant's exclusive lock).
pub(crate) fn compacted_copy(
    source: &Path,
    dest: &Path,
    key: Option<&Key>,
) -> Result<BackupReport> {
    let flags = OpenFlags::SQLITE_OPEN_READ_ONLY;
    let conn =
        open_side(source, flags, key, None).map_err(|e| unreadable(e, source, key.is_some()))?;
    checked_copy(dest, Replace::No, key, |temporary| {
        let target = temporary.to_str().ok_or_else(|| {
            Error::invalid_input(
                "archive destination",
                format!("{} is not UTF-8", temporary.display()),
            )
        })?;
        // Owner-only before SQLite writes it; VACUUM INTO accepts an empty file.
        crate::files::create_private_file(temporary)?;
        conn.execute("VACUUM INTO ?1", [target])?;
        let out = open_side(temporary, OpenFlags::default(), key, None)?;
        // A single file, as a backup is: opening it as a memory sets WAL mode again.
        out.pragma_update(None, "journal_mode", "DELETE")?;
        out.close().map_err(|(_, e)| Error::from(e))
    })
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

/// Copies every page of `source` (one snapshot) into a new database file at `path`, in
/// rollback-journal mode.
/// Encrypted, the copy is keyed with the source's own key and salt (`file_key`).
fn copy_into(source: &Connection, path: &Path, file_key: Option<&FileKey>) -> Result<()> {
    // Owner-only before SQLite opens it (its journal inherits the mode).
    crate::files::create_private_file(path)?;
    let mut target = open_side(path, OpenFlags::default(), None, file_key)?;
    {
        let backup = rusqlite::backup::Backup::new(source, &mut target)?;
        // One step of every page: one read transaction, so one consistent snapshot.
        backup.step(-1)?;
    }
    // The copied header says WAL, as the source's does: the check (and anyone opening
    // the backup) would then make a `-wal` and `-shm` beside it. A backup is a single
    // file; opening it as a memory sets WAL mode again.
    target.pragma_update(None, "journal_mode", "DELETE")?;
    target.close().map_err(|(_, e)| Error::from(e))
}

/// Checks that `path` is a sound cairn memory this build can open; returns its last
/// `seq`.
pub(crate) fn check_backup(path: &Path, key: Option<&Key>) -> Result<i64> {
    let conn = open_side(path, OpenFlags::SQLITE_OPEN_READ_ONLY, key, None)
        .map_err(|e| unreadable(e, path, key.is_some()))?;
    let header = conn.query_row(
        "SELECT (SELECT application_id FROM pragma_application_id),
                (SELECT user_version FROM pragma_user_version)",
        [],
        |r| Ok((r.get::<_, i64>(0)?, r.get::<_, i64>(1)?)),
    );
    let (application_id, version) =
        header.map_err(|e| unreadable(e.into(), path, key.is_some()))?;
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

/// A copy that cannot be opened or read: the key's error as it is (a plain file given a
/// key), else what a file that does not read is ([`crate::db::unreadable_file`]).
fn unreadable(e: Error, path: &Path, keyed: bool) -> Error {
    if e.is_key_error() {
        return e;
    }
    crate::db::unreadable_file(path, keyed)
}

/// The files SQLite may make beside a database file.
const JOURNALS: [&str; 3] = ["-journal", "-wal", "-shm"];

/// A temporary of a process that still runs is swept once it is this old: no backup
/// takes an hour, and a PID may have been reused by another process.
const STALE_TEMPORARY: Duration = Duration::from_secs(60 * 60);

/// `PATH.tmp-PID-N` for this process (`N` counts this process's temporaries, so two
/// threads backing up to one path never share one), after sweeping the folder of
/// temporaries that killed backups and restores left.
fn temporary_beside(path: &Path) -> Result<PathBuf> {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let name = path
        .file_name()
        .ok_or_else(|| Error::invalid_input("path", format!("{} names no file", path.display())))?;
    sweep_temporaries(path);
    let mut temporary = name.to_owned();
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    temporary.push(format!(".tmp-{}-{n}", std::process::id()));
    let temporary = path.with_file_name(temporary);
    remove_temporary(&temporary);
    Ok(temporary)
}

/// Removes a temporary and whatever journals SQLite left beside it. Best effort: it runs
/// on error paths, where the first error is the one to report.
fn remove_temporary(temporary: &Path) {
    let _ = std::fs::remove_file(temporary);
    for suffix in JOURNALS {
        let _ = std::fs::remove_file(sibling(temporary, suffix));
    }
}

/// Removes the temporaries (`NAME.tmp-PID-N` and their journals) in `path`'s folder whose
/// process is gone or that are older than [`STALE_TEMPORARY`]. Best effort: a folder that
/// cannot be read or a file that cannot be removed is left for the next sweep, and the
/// backup goes on. Returns how many files were removed.
fn sweep_temporaries(path: &Path) -> usize {
    let folder = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let Ok(entries) = std::fs::read_dir(folder) else {
        return 0;
    };
    let now = SystemTime::now();
    let mut removed = 0;
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(pid) = name.to_str().and_then(temporary_pid) else {
            continue;
        };
        let Ok(metadata) = entry.metadata() else {
            continue;
        };
        if !metadata.is_file() {
            continue;
        }
        let old = metadata
            .modified()
            .ok()
            .and_then(|at| now.duration_since(at).ok())
            .is_some_and(|age| age > STALE_TEMPORARY);
        if (old || !process_alive(pid)) && std::fs::remove_file(entry.path()).is_ok() {
            removed += 1;
        }
    }
    if removed > 0 {
        tracing::debug!(target: "cairn::backup", removed, folder = %folder.display(), "stale temporaries swept");
    }
    removed
}

/// The PID in a temporary's file name (`NAME.tmp-PID-N`, or `NAME.tmp-PID` as older
/// versions named it, either with a journal suffix); `None` for any other name.
fn temporary_pid(name: &str) -> Option<u32> {
    let (base, tail) = name.rsplit_once(".tmp-")?;
    if base.is_empty() {
        return None;
    }
    let tail = JOURNALS
        .iter()
        .find_map(|suffix| tail.strip_suffix(suffix))
        .unwrap_or(tail);
    let (pid, n) = tail.split_once('-').unwrap_or((tail, "0"));
    let number = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    if !number(pid) || !number(n) {
        return None;
    }
    pid.parse().ok()
}

/// Whether process `pid` may still run. On Linux, whether `/proc/PID` exists (when
/// `/proc` is mounted); elsewhere it cannot be told without `unsafe`, so every process is
/// taken to run and only age sweeps its temporaries.
fn process_alive(pid: u32) -> bool {
    if pid == std::process::id() {
        return true;
    }
    let proc = Path::new("/proc");
    if cfg!(target_os = "linux") && proc.join("self").exists() {
        return proc.join(pid.to_string()).exists();
    }
    true
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

    /// The names in `dir`, sorted.
    fn names(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    /// A PID no process has: above Linux's largest (`pid_max` is at most 2^22).
    const DEAD_PID: u32 = 4_194_304 + 12_345;

    #[cfg(unix)]
    #[test]
    fn a_killed_backup_s_temporaries_are_swept_and_a_backup_is_one_file() {
        let live = tempfile::tempdir().unwrap();
        let memory = Memory::open(live.path().join("live.db")).unwrap();
        memory
            .add_triple(("Acme Corp", "acquired", "Widget Inc"))
            .unwrap();
        let out = tempfile::tempdir().unwrap();
        // What a backup killed mid-copy leaves: its temporary and the temporary's journal.
        let dead = format!("backup.db.tmp-{DEAD_PID}");
        for name in [dead.clone(), format!("{dead}-journal")] {
            std::fs::write(out.path().join(name), b"half a copy").unwrap();
        }
        // A live process's temporary (this one's parent) is still being written: kept.
        let running = format!("other.db.tmp-{}", std::os::unix::process::parent_id());
        std::fs::write(out.path().join(&running), b"in progress").unwrap();
        // Not a temporary at all.
        std::fs::write(out.path().join("notes.tmp-draft"), b"mine").unwrap();

        let report = memory.backup(out.path().join("backup.db")).unwrap();
        assert_eq!(report.bytes, std::fs::metadata(&report.path).unwrap().len());
        // No temporary, journal, -wal or -shm beside the finished backup, also after it
        // is checked again.
        check_backup(&report.path, None).unwrap();
        assert_eq!(
            names(out.path()),
            ["backup.db", "notes.tmp-draft", running.as_str()]
        );
        let restored = Memory::restore(&report.path, live.path().join("restored.db")).unwrap();
        assert_eq!(restored.stats().unwrap(), memory.stats().unwrap());
    }

    #[test]
    fn threads_backing_up_to_one_path_each_write_a_whole_backup() {
        let dir = tempfile::tempdir().unwrap();
        let memory = Memory::open(dir.path().join("live.db")).unwrap();
        memory
            .add_triple(("Acme Corp", "acquired", "Widget Inc"))
            .unwrap();
        let dest = dir.path().join("backup.db");
        std::thread::scope(|s| {
            let backups: Vec<_> = (0..4).map(|_| s.spawn(|| memory.backup(&dest))).collect();
            for backup in backups {
                backup.join().unwrap().unwrap();
            }
        });
        check_backup(&dest, None).unwrap();
        assert_eq!(
            names(dir.path())
                .iter()
                .filter(|n| n.contains(".tmp-"))
                .count(),
            0
        );
    }

    #[test]
    fn temporary_names_are_recognized() {
        assert_eq!(temporary_pid("backup.db.tmp-42"), Some(42));
        assert_eq!(temporary_pid("backup.db.tmp-42-journal"), Some(42));
        assert_eq!(temporary_pid("a.tmp-7-wal"), Some(7));
        assert_eq!(temporary_pid("a.tmp-7-shm"), Some(7));
        assert_eq!(temporary_pid("a.tmp-7-3"), Some(7));
        assert_eq!(temporary_pid("a.tmp-7-3-journal"), Some(7));
        for other in [
            "backup.db",
            ".tmp-42",
            "a.tmp-",
            "a.tmp-x1",
            "a.tmp-4-x",
            "a.tmp-1-log",
            "a.tmp-1-2-3",
        ] {
            assert_eq!(temporary_pid(other), None, "{other}");
        }
        assert!(process_alive(std::process::id()));
        if Path::new("/proc/self").exists() {
            assert!(!process_alive(DEAD_PID));
        }
    }

    #[test]
    fn a_copy_that_fails_its_check_leaves_dest_untouched() {
        let live = tempfile::tempdir().unwrap();
        let path = live.path().join("live.db");
        let memory = Memory::open(&path).unwrap();
        memory
            .add_triple(("Acme Corp", "acquired", "Widget Inc"))
            .unwrap();
        let out = tempfile::tempdir().unwrap();
        let dest = out.path().join("backup.db");
        let good = memory.backup(&dest).unwrap();
        let before = std::fs::read(&dest).unwrap();
        // The live file turns foreign under the open handle: the next copy fails the
        // check (its application_id), after the copy and before the rename.
        let raw = Connection::open(&path).unwrap();
        raw.pragma_update(None, "application_id", 7).unwrap();
        drop(raw);
        memory
            .add_triple(("Widget Inc", "based in", "Zürich"))
            .unwrap();
        let err = memory.backup(&dest).unwrap_err();
        assert!(matches!(err, Error::ForeignDatabase { .. }), "{err}");
        assert_eq!(std::fs::read(&dest).unwrap(), before, "dest was replaced");
        assert_eq!(names(out.path()), ["backup.db"], "a temporary was left");
        assert_eq!(check_backup(&dest, None).unwrap(), good.last_seq);
    }

    #[test]
    fn restore_refuses_what_is_not_a_cairn_backup() {
        let dir = tempfile::tempdir().unwrap();
        let garbage = dir.path().join("garbage.db");
        std::fs::write(&garbage, b"not a database at all, just some bytes").unwrap();
        let err = Memory::restore(&garbage, dir.path().join("out.db")).unwrap_err();
        assert!(
            matches!(err, Error::NotADatabase { .. })
                || cfg!(feature = "encryption") && matches!(err, Error::KeyRequired { .. }),
            "{err}"
        );
        assert!(!dir.path().join("out.db").exists());
    }
}
