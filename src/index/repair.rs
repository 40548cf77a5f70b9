//! Healing a damaged index: the index is derived, so damage is never the caller's problem.
//!
//! Damage is found on open (tantivy cannot open the folder or one of its segments, or the
//! commit payload names another file or a position beyond the file's log), by a search
//! or a commit that hits a tantivy error, and by the indexer's health check while idle
//! (the folder deleted, `meta.json` unreadable). An indexer turn then moves the folder
//! aside (`<file>.index.damaged-<ms>`, the newest [`KEEP_DAMAGED`] kept) and builds a new
//! index from the change log; searches meanwhile answer [`crate::Error::IndexRebuilding`].
//!
//! Only a process that holds (or can take) tantivy's writer lock moves a folder: one
//! whose lock another process holds waits for that process, which finds the same damage.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use tantivy::directory::error::LockError;
use tantivy::directory::{Directory, DirectoryLock, INDEX_WRITER_LOCK, MmapDirectory};

use super::{Shared, open_checked, open_live};
use crate::db::Db;
use crate::error::Result;
use crate::graph::change;

/// At most this many damaged folders are kept beside a file (newest first); older ones
/// are deleted, so repeated damage cannot fill the disk.
pub(crate) const KEEP_DAMAGED: usize = 2;
/// At most this many damages are remembered for `verify`.
const REMEMBERED: usize = 8;

/// What was wrong with an index.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum DamageKind {
    /// Unreadable: a corrupt or missing file, garbage `meta.json`, the folder gone.
    Broken,
    /// Readable, but built from another file or another history of this one.
    OtherHistory,
}

/// One damage found by this process, and what became of the folder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Damage {
    pub(crate) kind: DamageKind,
    pub(crate) detail: String,
}

impl Damage {
    pub(crate) fn broken(detail: impl Into<String>) -> Damage {
        Damage {
            kind: DamageKind::Broken,
            detail: detail.into(),
        }
    }

    pub(crate) fn other_history(detail: impl Into<String>) -> Damage {
        Damage {
            kind: DamageKind::OtherHistory,
            detail: detail.into(),
        }
    }
}

/// The damages found so far (bounded: the oldest are forgotten first).
#[derive(Debug, Default)]
pub(crate) struct DamageLog(Vec<Damage>);

impl DamageLog {
    pub(crate) fn push(&mut self, damage: Damage) {
        if self.0.len() >= REMEMBERED {
            self.0.remove(0);
        }
        self.0.push(damage);
    }

    pub(crate) fn all(&self) -> Vec<Damage> {
        self.0.clone()
    }
}

/// What [`repair`] did.
pub(super) enum Repaired {
    /// A sound index is live again; the indexer resumes after this `seq` (0: a new index
    /// is built from the whole log).
    From(i64),
    /// Nothing yet: another process holds the damaged folder's writer lock (it finds the
    /// same damage and repairs it), or this memory is read-only. Tried again next round.
    Pending,
}

/// Repairs the damage reported in `shared`: reopens the index if it is sound again
/// (another process repaired it), else moves the damaged folder aside and starts a new
/// index, which the indexer fills from the change log. The caller holds no writer.
pub(super) fn repair(shared: &Shared, db: &Db, read_only: bool) -> Result<Repaired> {
    let last_seq = db.read(change::last_seq)?.get();
    let fresh = match shared.dir.as_deref() {
        Some(_) if shared.in_ram() => open_live(None, false)?,
        None => open_live(None, false)?,
        Some(dir) => {
            if let Ok((live, seq)) =
                open_checked(Some(dir), shared.file_id.as_deref(), db, read_only)
            {
                install(shared, live, seq, last_seq);
                return Ok(Repaired::From(seq));
            }
            if read_only {
                // The folder is not this memory's to repair: it searches an index of its
                // own, in RAM, from now on.
                let reason = shared
                    .progress
                    .lock()
                    .damage
                    .as_ref()
                    .map_or_else(String::new, |d| d.detail.clone());
                *shared.source.lock() = super::IndexSource::Rebuilt { reason };
                tracing::info!(target: "cairn::index", dir = %dir.display(), "read-only: damaged index rebuilt in RAM");
                install(shared, open_live(None, false)?, 0, last_seq);
                return Ok(Repaired::From(0));
            }
            let lock = match lock(dir) {
                FolderLock::Busy => return Ok(Repaired::Pending),
                FolderLock::Taken(lock) => Some(lock),
                FolderLock::Nobodys => None,
            };
            move_aside(dir)?;
            tracing::warn!(target: "cairn::index", dir = %dir.display(), "damaged index moved aside; rebuilding");
            // Released only now: no other process could write into the folder meanwhile,
            // and the new one is not created yet.
            drop(lock);
            open_live(Some(dir), false)?
        }
    };
    install(shared, fresh, 0, last_seq);
    Ok(Repaired::From(0))
}

/// Makes `live` the index searches and the indexer use, searchable once it reaches
/// `target` (the log's end when the damage was repaired).
fn install(shared: &Shared, live: super::Live, seq: i64, target: i64) {
    *shared.live.write() = Arc::new(live);
    let mut progress = shared.progress.lock();
    progress.damage = None;
    progress.error = None;
    progress.visible = seq;
    progress.rebuilding = (seq < target).then_some(target);
    drop(progress);
    shared.wake.notify_all();
}

/// Who may move a damaged folder.
enum FolderLock {
    /// This process took tantivy's writer lock: no other process writes into the folder
    /// while it is moved.
    Taken(DirectoryLock),
    /// The folder is gone, or cannot be locked at all: nobody writes into it.
    Nobodys,
    /// Another process holds the writer lock.
    Busy,
}

/// True when another process holds tantivy's writer lock on `dir`: it indexes the file's
/// changes into the folder. The lock is released again at once.
pub(super) fn writer_at_work(dir: &Path) -> bool {
    matches!(lock(dir), FolderLock::Busy)
}

/// Takes tantivy's writer lock on `dir` if it can.
fn lock(dir: &Path) -> FolderLock {
    if !dir.exists() {
        return FolderLock::Nobodys;
    }
    let Ok(directory) = MmapDirectory::open(dir) else {
        return FolderLock::Nobodys;
    };
    match directory.acquire_lock(&INDEX_WRITER_LOCK) {
        Ok(lock) => FolderLock::Taken(lock),
        Err(LockError::LockBusy) => FolderLock::Busy,
        Err(_) => FolderLock::Nobodys,
    }
}

/// Moves `dir` aside as `<file>.index.damaged-<ms>` (nothing to do if it is gone) and
/// deletes the older damaged folders beyond [`KEEP_DAMAGED`]. Returns where it went.
fn move_aside(dir: &Path) -> Result<Option<PathBuf>> {
    let (Some(folder), true) = (dir.parent(), dir.exists()) else {
        return Ok(None);
    };
    let millis = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis())
        .unwrap_or_default();
    let prefix = damaged_prefix(folder);
    let mut aside = PathBuf::from(format!("{prefix}{millis}"));
    let mut n = 0;
    while aside.exists() {
        n += 1;
        aside = PathBuf::from(format!("{prefix}{millis}-{n}"));
    }
    std::fs::rename(dir, &aside)?;
    sweep(folder, &prefix);
    Ok(Some(aside))
}

/// `<file>.index.damaged-`, for the folder `<file>.index`.
fn damaged_prefix(folder: &Path) -> String {
    format!("{}.damaged-", folder.display())
}

/// Deletes all but the newest [`KEEP_DAMAGED`] damaged folders of `folder`'s file.
fn sweep(folder: &Path, prefix: &str) {
    let Some(parent) = folder.parent() else {
        return;
    };
    let Ok(entries) = std::fs::read_dir(parent) else {
        return;
    };
    let mut damaged: Vec<(SystemTime, PathBuf)> = entries
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| p.to_string_lossy().starts_with(prefix))
        .filter_map(|p| Some((p.metadata().ok()?.modified().ok()?, p)))
        .collect();
    damaged.sort_by(|a, b| b.0.cmp(&a.0).then_with(|| b.1.cmp(&a.1)));
    for (_, old) in damaged.into_iter().skip(KEEP_DAMAGED) {
        // Best effort: a folder that cannot be removed now is removed by a later sweep.
        let _ = std::fs::remove_dir_all(old);
    }
}

/// The damaged folders kept beside the index folder `folder` (`<file>.index`).
pub(crate) fn damaged_folders(folder: &Path) -> Vec<PathBuf> {
    let prefix = damaged_prefix(folder);
    let Some(parent) = folder.parent() else {
        return Vec::new();
    };
    std::fs::read_dir(parent)
        .map(|entries| {
            entries
                .filter_map(|e| e.ok())
                .map(|e| e.path())
                .filter(|p| p.to_string_lossy().starts_with(&prefix))
                .collect()
        })
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn moving_aside_keeps_the_newest_damaged_folders_only() {
        let dir = tempfile::tempdir().unwrap();
        let folder = dir.path().join("m.db.index");
        let index = folder.join("v");
        for i in 0..(KEEP_DAMAGED + 2) {
            std::fs::create_dir_all(&index).unwrap();
            std::fs::write(index.join("f"), format!("{i}")).unwrap();
            let aside = move_aside(&index).unwrap().unwrap();
            assert!(aside.exists() && !index.exists());
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        assert_eq!(damaged_folders(&folder).len(), KEEP_DAMAGED);
        assert_eq!(move_aside(&index).unwrap(), None, "nothing to move");
    }

    #[test]
    fn the_damage_log_is_bounded() {
        let mut log = DamageLog::default();
        for i in 0..(REMEMBERED + 3) {
            log.push(Damage::broken(format!("{i}")));
        }
        let all = log.all();
        assert_eq!(all.len(), REMEMBERED);
        assert_eq!(all[0].detail, "3");
    }
}
