//! Per-tenant stores: a directory of memory files, one per tenant id, with a bounded
//! cache of open handles.

use std::collections::{HashMap, HashSet};
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex};
use serde::Serialize;

use crate::config::Options;
use crate::db::connections::open_side;
use crate::db::migrate::SCHEMA_VERSION;
use crate::db::{Db, lock_path, sibling};
use crate::error::{Error, Result};
use crate::index;
use crate::key::Key;
use crate::memory::Memory;
use crate::ops::backup::{BackupReport, check_backup, compacted_copy};
use crate::ops::verify::{VerifyMode, verify_file};

/// The longest tenant id, in bytes.
pub const MAX_TENANT_ID_BYTES: usize = 64;

/// The extension of a tenant's memory file in the directory.
const EXTENSION: &str = "db";

/// What an archived tenant leaves in the directory (`<id>.db.archived`, naming the
/// archive), so that a write to it is refused instead of starting an empty memory.
const TOMBSTONE_SUFFIX: &str = ".archived";

/// What a tenant moved to another server leaves in the directory (`<id>.db.moved`,
/// naming where it went), so that a call routed here by a stale route is refused with
/// [`Error::Moved`] instead of starting an empty memory under the id.
const MOVED_SUFFIX: &str = ".moved";

/// The progress file of [`Tenants::migrate_all`] in the tenants' directory.
pub const MIGRATE_PROGRESS_FILE: &str = ".cairn-migrate";

/// How long an archive waits for this process's handles of the tenant to be released
/// (a call in flight finishing) before it is refused with [`Error::InUse`].
const DRAIN_WAIT: Duration = Duration::from_secs(5);

/// A directory of memories, one file per tenant (`<dir>/<id>.db`, with its `-wal`,
/// `-shm` and `.index/`), and a cache of at most `capacity` open ones; the least recently
/// used is closed when another is opened.
///
/// The cache's lock is held only to look up, insert and remove handles, never while a
/// memory opens or closes: a cache hit does not wait for another tenant's cold open or
/// for an evicted memory to close. Threads asking for the same cold tenant at once open
/// it once; the others wait for that open's result (its error too, which is not cached:
/// the next `get` tries again).
///
/// Tenant ids are 1–64 ASCII letters, digits, `-`, `_` and `.`, starting with a letter or
/// digit: never a path separator, never `..`, so an id cannot name a file outside the
/// directory. New files and index folders are readable and writable by their owner only.
///
/// ```
/// let dir = tempfile::tempdir().unwrap();
/// let tenants = cairn::Tenants::open(dir.path())?;
/// tenants.get("acme")?.add_triple(("Ann", "works at", "Acme"))?;
/// tenants.get("globex")?.add_triple(("Bob", "works at", "Globex"))?;
/// assert_eq!(tenants.list()?, ["acme", "globex"]);
/// assert!(tenants.get("../etc").unwrap_err().is_invalid_input());
/// # Ok::<(), cairn::Error>(())
/// ```
pub struct Tenants {
    dir: PathBuf,
    options: Options,
    capacity: usize,
    cache: Mutex<Cache>,
}

#[derive(Default)]
struct Cache {
    open: HashMap<String, (Memory, u64)>,
    clock: u64,
    /// Tenants being archived or drained, with what is happening to them:
    /// [`Tenants::get`] refuses them.
    fenced: HashMap<String, &'static str>,
    /// Tenants being opened (outside the lock) by one thread; other threads asking for
    /// them wait on the slot instead of opening the file a second time.
    opening: HashMap<String, Arc<Opening>>,
}

/// One in-flight open of a tenant: its result, published once, for the threads waiting
/// on it.
#[derive(Default)]
struct Opening {
    result: Mutex<Option<std::result::Result<Memory, Error>>>,
    ready: Condvar,
}

impl Opening {
    fn publish(&self, result: std::result::Result<Memory, Error>) {
        *self.result.lock() = Some(result);
        self.ready.notify_all();
    }

    /// Waits for the opener's result: the memory, or a copy of its error.
    fn wait(&self) -> Result<Memory> {
        let mut result = self.result.lock();
        loop {
            match &*result {
                Some(Ok(memory)) => return Ok(memory.clone()),
                Some(Err(e)) => return Err(copy_error(e)),
                None => self.ready.wait(&mut result),
            }
        }
    }
}

/// Publishes the open's result and clears its slot, however the open ends: a panic in
/// it gives the waiters an error rather than leaving them waiting forever.
struct OpenGuard<'a> {
    tenants: &'a Tenants,
    id: &'a str,
    slot: Arc<Opening>,
    published: bool,
}

impl OpenGuard<'_> {
    /// Publishes `result` to the waiters and, when it is a memory, puts it in the cache
    /// (unless the cache meanwhile holds one); returns the memory evicted to make room,
    /// to be closed by the caller outside the lock.
    fn finish(mut self, result: &Result<Memory>) -> Option<Memory> {
        self.published = true;
        let mut cache = self.tenants.cache.lock();
        cache.opening.remove(self.id);
        let mut evicted = None;
        if let Ok(memory) = result
            && !cache.open.contains_key(self.id)
        {
            if cache.open.len() >= self.tenants.capacity {
                evicted = evict_least_recent(&mut cache.open);
            }
            cache.clock += 1;
            let now = cache.clock;
            cache.open.insert(self.id.to_owned(), (memory.clone(), now));
        }
        // Published under the cache lock: a drain or drop that sees no slot and no
        // entry knows no handle of this open is coming.
        self.slot.publish(match result {
            Ok(memory) => Ok(memory.clone()),
            Err(e) => Err(copy_error(e)),
        });
        drop(cache);
        evicted
    }
}

impl Drop for OpenGuard<'_> {
    fn drop(&mut self) {
        if !self.published {
            self.tenants.cache.lock().opening.remove(self.id);
            self.slot.publish(Err(Error::InUse {
                path: self.tenants.path_of(self.id),
                reason: "its open in another thread did not finish".to_owned(),
            }));
        }
    }
}

impl std::fmt::Debug for Tenants {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tenants")
            .field("dir", &self.dir)
            .field("capacity", &self.capacity)
            .finish_non_exhaustive()
    }
}

impl Tenants {
    /// The tenants in `dir` (created if missing), default options, 64 open at most.
    pub fn open(dir: impl AsRef<Path>) -> Result<Tenants> {
        Self::open_with(dir, Options::default(), 64)
    }

    /// [`Tenants::open`] with `options` for every memory and a cache of `capacity`.
    pub fn open_with(dir: impl AsRef<Path>, options: Options, capacity: usize) -> Result<Tenants> {
        let dir = dir.as_ref().to_owned();
        private_dir(&dir)?;
        sweep_dropped(&dir);
        Ok(Tenants {
            dir,
            options,
            capacity: capacity.max(1),
            cache: Mutex::new(Cache::default()),
        })
    }

    /// The tenant's memory, opened (and created) if needed.
    ///
    /// A thread asking for a tenant another thread is opening waits for that open and
    /// gets its memory, or its error: the same variant for the refusals, bad files and
    /// file errors (by kind and message), otherwise [`Error::Io`] with its message.
    pub fn get(&self, id: &str) -> Result<Memory> {
        self.get_or_create(id, true)
    }

    /// [`Tenants::get`] of a tenant that exists, never creating one: [`Error::NotFound`]
    /// for an unknown id ([`Error::Moved`] or [`Error::Archived`] when its tombstone says
    /// where it went), nothing written. What a router's server calls, so that a call
    /// routed to a server before the tenant's file arrived (or after it left) is refused
    /// instead of starting an empty memory under the id.
    pub fn get_existing(&self, id: &str) -> Result<Memory> {
        self.get_or_create(id, false)
    }

    fn get_or_create(&self, id: &str, create: bool) -> Result<Memory> {
        check_id(id)?;
        let mut cache = self.cache.lock();
        if let Some(what) = cache.fenced.get(id) {
            return Err(Error::InUse {
                path: self.path_of(id),
                reason: (*what).to_owned(),
            });
        }
        cache.clock += 1;
        let now = cache.clock;
        if let Some((memory, used)) = cache.open.get_mut(id) {
            *used = now;
            return Ok(memory.clone());
        }
        if let Some(slot) = cache.opening.get(id).cloned() {
            drop(cache);
            return slot.wait();
        }
        let slot = Arc::new(Opening::default());
        cache.opening.insert(id.to_owned(), Arc::clone(&slot));
        drop(cache);
        let guard = OpenGuard {
            tenants: self,
            id,
            slot,
            published: false,
        };
        let result = self.open_tenant(id, create);
        let evicted = guard.finish(&result);
        // Closing waits for the evicted memory's indexer to stop: not under the lock.
        drop(evicted);
        result
    }

    /// Opens (creating if missing, when `create`) the tenant's memory; no lock is held.
    fn open_tenant(&self, id: &str, create: bool) -> Result<Memory> {
        #[cfg(test)]
        tests::open_hook(id);
        let path = self.path_of(id);
        refuse_links(&path)?;
        if !path.exists() {
            refuse_archived(&path)?;
            refuse_moved(&path)?;
            if !create {
                return Err(Error::not_found("tenant", id));
            }
            private_file(&path)?;
            private_dir(&index::dir_for(&path))?;
        }
        let memory = Memory::open_with(&path, self.options.clone())?;
        if let Err(archived) = refuse_archived(&path).and_then(|()| refuse_moved(&path)) {
            // Archived (or moved away) between the check above and this open (which
            // then made a new, empty file): refuse, so no write lands outside the
            // archive, and remove the empty file unless somebody wrote to it meanwhile.
            let empty = memory.last_seq().is_ok_and(|seq| seq.get() == 0);
            drop(memory);
            if empty && let Ok(lock) = exclusive_lock(&path) {
                let _ = self.remove_files(id, &path, lock);
            }
            return Err(archived);
        }
        Ok(memory)
    }

    /// Creates a new tenant; [`Error::InvalidInput`] if it exists.
    pub fn create(&self, id: &str) -> Result<Memory> {
        check_id(id)?;
        if self.path_of(id).exists() {
            return Err(Error::invalid_input(
                "tenant id",
                format!("tenant {id:?} exists"),
            ));
        }
        self.get(id)
    }

    /// Where the tenant's memory file is (or would be), after checking the id the same way
    /// [`Tenants::get`] does; nothing is opened or created. A front end that must not
    /// create a tenant by reading it (a mistyped id) checks that the path exists first.
    pub fn path(&self, id: &str) -> Result<PathBuf> {
        check_id(id)?;
        Ok(self.path_of(id))
    }

    /// Every tenant id in the directory, sorted.
    pub fn list(&self) -> Result<Vec<String>> {
        let mut ids = Vec::new();
        for entry in std::fs::read_dir(&self.dir)? {
            let path = entry?.path();
            if path.extension().and_then(|e| e.to_str()) != Some(EXTENSION) {
                continue;
            }
            if let Some(id) = path.file_stem().and_then(|s| s.to_str())
                && check_id(id).is_ok()
            {
                ids.push(id.to_owned());
            }
        }
        ids.sort();
        Ok(ids)
    }

    /// A checked online backup of the tenant's memory at `dest` (see [`Memory::backup`]).
    pub fn export(&self, id: &str, dest: impl AsRef<Path>) -> Result<BackupReport> {
        self.require(id)?;
        refuse_links(&self.path_of(id))?;
        self.get(id)?.backup(dest)
    }

    /// Closes the tenant's memory and removes its file, `-wal`, `-shm`, lock file, index
    /// (with the damaged ones kept beside it) and Litestream's `.<id>.db-litestream/`
    /// folder. Returns false if there was no such tenant.
    ///
    /// Refused with [`Error::InUse`] while any process has the tenant open (every open
    /// holds a shared lock on `<id>.db.lock`, which the drop takes exclusively), including
    /// handles of this process held outside this cache; with [`Error::InvalidInput`] when
    /// one of the tenant's files is a symbolic link. The files are first moved together
    /// into a hidden folder of the directory, then deleted: a failure while moving moves
    /// back what was moved, so the tenant is either intact or gone.
    pub fn drop_tenant(&self, id: &str) -> Result<bool> {
        check_id(id)?;
        let path = self.path_of(id);
        refuse_links(&path)?;
        let mut cache = self.cache.lock();
        if cache.opening.contains_key(id) {
            return Err(Error::InUse {
                path,
                reason: format!("tenant {id:?} is being opened in this process"),
            });
        }
        if let Some((memory, _)) = cache.open.get(id)
            && memory.handles() > 1
        {
            return Err(Error::InUse {
                path,
                reason: format!("tenant {id:?} has handles open in this process; drop them first"),
            });
        }
        // Dropping the cache's handle closes the memory (and stops its indexer), after
        // the lock is released.
        let closed = cache.open.remove(id);
        drop(cache);
        drop(closed);
        if !path.exists() {
            // An archived or moved tenant's tombstone goes too: the id is free again.
            let mut found = false;
            for tombstone in [tombstone_path(&path), moved_path(&path)] {
                match std::fs::remove_file(&tombstone) {
                    Ok(()) => found = true,
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                    Err(e) => return Err(Error::file(tombstone, e)),
                }
            }
            return Ok(found);
        }
        let lock = exclusive_lock(&path)?;
        self.remove_files(id, &path, lock)?;
        let _ = std::fs::remove_file(tombstone_path(&path));
        Ok(true)
    }

    /// Moves every file of the tenant at `path` into a hidden folder of the directory and
    /// deletes it, under the tenant's exclusive `lock`: a failure while moving moves back
    /// what was moved, so the tenant is either intact or gone.
    fn remove_files(&self, id: &str, path: &Path, lock: Option<std::fs::File>) -> Result<()> {
        let trash = self.dir.join(format!(
            ".{id}.dropping-{}-{}",
            std::process::id(),
            crate::time::Timestamp::now().as_millis()
        ));
        private_dir(&trash)?;
        let mut moved: Vec<(PathBuf, PathBuf)> = Vec::new();
        for (n, from) in companions(path).into_iter().enumerate() {
            if std::fs::symlink_metadata(&from).is_err() {
                continue;
            }
            let to = trash.join(n.to_string());
            if let Err(e) = std::fs::rename(&from, &to) {
                // Put back what was moved: the tenant stays as it was.
                for (from, to) in moved.iter().rev() {
                    let _ = std::fs::rename(to, from);
                }
                let _ = std::fs::remove_dir_all(&trash);
                return Err(Error::file(from, e));
            }
            moved.push((from, to));
        }
        drop(lock);
        // Gone now: deleting the moved files is clean-up, and a failure of it leaves a
        // hidden folder, never a half tenant.
        if let Err(e) = std::fs::remove_dir_all(&trash) {
            tracing::warn!(dir = %trash.display(), error = %e, "a dropped tenant's files were not all deleted");
        }
        Ok(())
    }

    /// Archives the tenant: a compacted single-file copy of its memory at `dest`
    /// (`VACUUM INTO`, owner-only, checked with `integrity_check` and cairn's header,
    /// synced, then linked into place with its directory synced), and then its live
    /// files dropped as [`Tenants::drop_tenant`] drops them. `<id>.db.archived` is left
    /// in the directory, naming the archive: until [`Tenants::restore_archive`] (or
    /// [`Tenants::drop_tenant`]) removes it, [`Tenants::get`] refuses the id with
    /// [`Error::Archived`] rather than starting an empty memory under it.
    ///
    /// From the moment it starts, [`Tenants::get`] of the tenant is refused with
    /// [`Error::InUse`]; calls in flight on handles this process got earlier are waited
    /// for (up to 5 s), so every write that was acknowledged is in the archive. Refused,
    /// with nothing written, with [`Error::NotFound`] for an unknown tenant,
    /// [`Error::InvalidInput`] when `dest` exists, [`Error::File`] naming `dest`'s folder
    /// when that is missing, and [`Error::InUse`] while another process (or a handle of
    /// this one that is not released) has the tenant open.
    pub fn archive(&self, id: &str, dest: impl AsRef<Path>) -> Result<BackupReport> {
        let dest = dest.as_ref();
        self.require(id)?;
        let path = self.path_of(id);
        refuse_links(&path)?;
        check_new_file(dest, "archive destination")?;
        let _fence = self.fence(id, "it is being archived")?;
        drop(self.release_handles(id, &path)?);
        let lock = exclusive_lock(&path)?;
        let report = compacted_copy(&path, dest, self.options.key.as_ref())?;
        // The tombstone before the files go: there is no moment when the id is free.
        write_tombstone(&path, dest)?;
        if let Err(e) = self.remove_files(id, &path, lock) {
            let _ = std::fs::remove_file(tombstone_path(&path));
            return Err(e);
        }
        Ok(report)
    }

    /// Stops serving the tenant so that its file can be moved to another server, and
    /// returns the guard of that state with the memory's last change-log position (its
    /// high-water mark: a copy holding every acknowledged write has reached it).
    ///
    /// From the moment it starts, [`Tenants::get`] of the tenant is refused with
    /// [`Error::InUse`] (a typed refusal the caller can retry elsewhere, never a lost
    /// write); calls in flight on handles this process got earlier are waited for (up to
    /// 5 s); then the memory is closed and the tenant's open lock is taken exclusively, so
    /// no other process has it open either. Nothing is written. While the guard lives the
    /// file is quiescent: replicate it, copy it, restore it elsewhere. Then either
    /// [`Drained::moved`] and drop the guard (the move is done: the local files go, a
    /// tombstone stays), or just drop it (the move is abandoned: served here again).
    ///
    /// Refused, with nothing changed, with [`Error::NotFound`] for an unknown tenant,
    /// [`Error::InvalidInput`] for a bad id or a symbolic link, and [`Error::InUse`] when
    /// the tenant is already being archived or drained, or another process (or an
    /// unreleased handle of this one) has it open.
    pub fn drain(&self, id: &str) -> Result<Drained<'_>> {
        self.require(id)?;
        let path = self.path_of(id);
        refuse_links(&path)?;
        let fence = self.fence(id, "it is being drained to move to another server")?;
        let memory = match self.release_handles(id, &path)? {
            Some(memory) => memory,
            // Not open here: open it once to read its position (fenced, so no other
            // thread of this process opens it meanwhile).
            None => Memory::open_with(&path, self.options.clone())?,
        };
        let last_seq = memory.last_seq()?;
        // Closing waits for the indexer; the lock below then proves no handle is left.
        drop(memory);
        let lock = exclusive_lock(&path)?;
        Ok(Drained {
            tenants: self,
            id: id.to_owned(),
            path,
            last_seq,
            _lock: lock,
            _fence: fence,
        })
    }

    /// Restores an archive (or a backup) at `src` as the tenant `id` and opens it. The
    /// archive is checked first; refused with [`Error::InvalidInput`] when the tenant
    /// exists (a restore never overwrites a memory) and with the check's error when `src`
    /// is not a sound cairn file, nothing written either way. Removes the tenant's
    /// `<id>.db.archived` and `<id>.db.moved`, if any, once the memory is in place.
    pub fn restore_archive(&self, id: &str, src: impl AsRef<Path>) -> Result<Memory> {
        let src = src.as_ref();
        check_id(id)?;
        let path = self.path_of(id);
        refuse_links(&path)?;
        if path.exists() {
            return Err(Error::invalid_input(
                "restore target",
                format!(
                    "tenant {id:?} exists at {}; drop it first, a restore never overwrites a memory",
                    path.display()
                ),
            ));
        }
        if !src.is_file() {
            return Err(Error::file(
                src,
                std::io::Error::from(std::io::ErrorKind::NotFound),
            ));
        }
        check_backup(src, self.options.key.as_ref())?;
        let memory = Memory::restore_with(src, &path, self.options.clone())?;
        for tombstone in [tombstone_path(&path), moved_path(&path)] {
            match std::fs::remove_file(&tombstone) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(Error::file(tombstone, e)),
            }
        }
        Ok(memory)
    }

    /// Migrates every tenant in the directory to the current schema and verifies it (the
    /// file checks of [`VerifyMode::Full`]: `integrity_check`, `foreign_key_check`,
    /// identity, schema version and cairn's invariants; the derived index is not built
    /// here but at the tenant's next open), one at a time;
    /// one tenant's failure is reported and the others go on. `on_tenant` is called
    /// after each tenant (for a progress bar).
    ///
    /// Resumable: each verified tenant is appended to [`MIGRATE_PROGRESS_FILE`] in the
    /// directory, and a later run skips a tenant listed there whose file is at the
    /// current schema (its header, or `PRAGMA user_version` when it has a `-wal`). A run killed midway loses at most the
    /// record of the tenant it was on, which the next run migrates (migrations are
    /// transactional and idempotent) and verifies again; so the record is not synced.
    pub fn migrate_all(
        &self,
        options: &MigrateOptions,
        mut on_tenant: impl FnMut(&TenantMigration),
    ) -> Result<MigrateReport> {
        let progress_path = self.dir.join(MIGRATE_PROGRESS_FILE);
        let done: HashSet<String> = if options.redo {
            HashSet::new()
        } else {
            read_progress(&progress_path)?
        };
        let mut progress = crate::files::create_private_file(&progress_path)
            .and_then(|_| {
                std::fs::OpenOptions::new()
                    .append(true)
                    .open(&progress_path)
            })
            .map_err(|e| Error::file(&progress_path, e))?;
        let ids = self.list()?;
        let mut report = MigrateReport {
            total: ids.len(),
            ..MigrateReport::default()
        };
        for id in ids {
            let started = Instant::now();
            let path = self.path_of(&id);
            let from = schema_version_of(&path, self.options.key.as_ref());
            let skip = from == Some(SCHEMA_VERSION) && done.contains(&id);
            let outcome = if skip {
                Ok(MigrateOutcome::Skipped)
            } else {
                self.migrate_one(&path)
            };
            let outcome = match outcome {
                Ok(outcome) => outcome,
                Err(e) => MigrateOutcome::Failed {
                    error: e.to_string(),
                },
            };
            if matches!(outcome, MigrateOutcome::Migrated | MigrateOutcome::Verified) {
                writeln!(progress, "{id} {SCHEMA_VERSION}")
                    .map_err(|e| Error::file(&progress_path, e))?;
            }
            match outcome {
                MigrateOutcome::Migrated => report.migrated += 1,
                MigrateOutcome::Verified => report.verified += 1,
                MigrateOutcome::Skipped => report.skipped += 1,
                MigrateOutcome::Failed { .. } => report.failed += 1,
            }
            let tenant = TenantMigration {
                id,
                from_version: from,
                outcome,
                time: started.elapsed(),
            };
            on_tenant(&tenant);
            report.tenants.push(tenant);
        }
        Ok(report)
    }

    /// Opens the tenant's file read-write (which migrates it) and verifies it.
    fn migrate_one(&self, path: &Path) -> Result<MigrateOutcome> {
        refuse_links(path)?;
        let before = schema_version_of(path, self.options.key.as_ref());
        // The database alone: opening it read-write migrates it; its index is derived
        // and built at the tenant's next open.
        let db = Db::open(path, self.options.clone())?;
        let verify = verify_file(&db, VerifyMode::Full)?;
        drop(db);
        if !verify.is_ok() {
            let problems: Vec<String> = verify
                .problems
                .iter()
                .map(|p| format!("{}: {}", p.check, p.detail))
                .collect();
            return Err(Error::invalid_input(
                "tenant",
                format!("{} fails verify: {}", path.display(), problems.join("; ")),
            ));
        }
        Ok(if before == Some(SCHEMA_VERSION) {
            MigrateOutcome::Verified
        } else {
            MigrateOutcome::Migrated
        })
    }

    /// Marks the tenant as being archived or drained (`what`) until the guard drops:
    /// [`Tenants::get`] refuses it meanwhile, with `what` as the reason.
    fn fence(&self, id: &str, what: &'static str) -> Result<Fence<'_>> {
        let mut cache = self.cache.lock();
        if let Some(already) = cache.fenced.get(id) {
            return Err(Error::InUse {
                path: self.path_of(id),
                reason: (*already).to_owned(),
            });
        }
        cache.fenced.insert(id.to_owned(), what);
        Ok(Fence {
            tenants: self,
            id: id.to_owned(),
        })
    }

    /// Waits until the cache's handle of the fenced tenant is the only one (calls in
    /// flight, and an open begun before the fence, have finished), then takes it out of
    /// the cache and returns it, for the caller to close outside the lock.
    fn release_handles(&self, id: &str, path: &Path) -> Result<Option<Memory>> {
        let started = Instant::now();
        loop {
            let mut cache = self.cache.lock();
            let busy = cache.opening.contains_key(id)
                || cache
                    .open
                    .get(id)
                    .is_some_and(|(memory, _)| memory.handles() > 1);
            if !busy {
                // Closing waits for the indexer: the caller does it, not under the lock.
                return Ok(cache.open.remove(id).map(|(memory, _)| memory));
            }
            drop(cache);
            if started.elapsed() > DRAIN_WAIT {
                return Err(Error::InUse {
                    path: path.to_owned(),
                    reason: format!(
                        "tenant {id:?} has handles open in this process that were not released within {DRAIN_WAIT:?}"
                    ),
                });
            }
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    /// How many memories the cache holds open now.
    pub fn open_count(&self) -> usize {
        self.cache.lock().open.len()
    }

    fn require(&self, id: &str) -> Result<()> {
        check_id(id)?;
        if self.path_of(id).exists() {
            Ok(())
        } else {
            Err(Error::not_found("tenant", id))
        }
    }

    fn path_of(&self, id: &str) -> PathBuf {
        self.dir.join(format!("{id}.{EXTENSION}"))
    }
}

/// A copy of an open's error for the threads that waited on it: the same error where it
/// can be rebuilt ([`Error::try_clone`]), else [`Error::Io`] with its message.
fn copy_error(e: &Error) -> Error {
    e.try_clone()
        .unwrap_or_else(|| Error::Io(std::io::Error::other(e.to_string())))
}

fn evict_least_recent(open: &mut HashMap<String, (Memory, u64)>) -> Option<Memory> {
    let oldest = open
        .iter()
        .min_by_key(|(_, (_, used))| *used)
        .map(|(id, _)| id.clone())?;
    open.remove(&oldest).map(|(memory, _)| memory)
}

/// Every file and folder of the tenant at `path`, the database first (once it is moved,
/// the tenant is gone): its `-wal`, `-shm`, `-journal`, the lock file, the index folder
/// and the damaged indexes kept beside it, and Litestream's `.<file>-litestream/`.
fn companions(path: &Path) -> Vec<PathBuf> {
    let mut out = vec![path.to_owned()];
    for suffix in ["-wal", "-shm", "-journal"] {
        out.push(sibling(path, suffix));
    }
    out.push(lock_path(path));
    out.extend(index::all_folders_for(path));
    if let (Some(dir), Some(name)) = (path.parent(), path.file_name()) {
        let mut hidden = std::ffi::OsString::from(".");
        hidden.push(name);
        hidden.push("-litestream");
        out.push(dir.join(hidden));
    }
    out
}

/// Refuses a tenant whose database, `-wal`, `-shm` or index folder is a symbolic link:
/// it would read, export or delete a memory outside the tenants' directory.
fn refuse_links(path: &Path) -> Result<()> {
    for candidate in [
        path.to_owned(),
        sibling(path, "-wal"),
        sibling(path, "-shm"),
        lock_path(path),
        index::folder_for(path),
    ] {
        if std::fs::symlink_metadata(&candidate).is_ok_and(|m| m.file_type().is_symlink()) {
            return Err(Error::invalid_input(
                "tenant",
                format!(
                    "{} is a symbolic link; a tenant's files must be in its directory",
                    candidate.display()
                ),
            ));
        }
    }
    Ok(())
}

/// Takes the tenant's open lock exclusively: [`Error::InUse`] while any process (this one
/// included) has the memory open.
fn exclusive_lock(path: &Path) -> Result<Option<std::fs::File>> {
    let lock = lock_path(path);
    let mut options = std::fs::OpenOptions::new();
    options.read(true).write(true).create(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let file = options.open(&lock).map_err(|e| Error::file(&lock, e))?;
    match file.try_lock() {
        Ok(()) => Ok(Some(file)),
        Err(std::fs::TryLockError::WouldBlock) => Err(Error::InUse {
            path: path.to_owned(),
            reason: "another process has it open (an MCP server, a command); stop it first"
                .to_owned(),
        }),
        Err(std::fs::TryLockError::Error(e)) if e.kind() == std::io::ErrorKind::Unsupported => {
            Ok(None)
        }
        Err(std::fs::TryLockError::Error(e)) => Err(Error::file(&lock, e)),
    }
}

/// Checks a tenant id: 1–64 of `[A-Za-z0-9._-]`, starting with a letter or digit.
fn check_id(id: &str) -> Result<()> {
    let bad = |reason: &str| Error::invalid_input("tenant id", format!("{id:?}: {reason}"));
    if id.is_empty() || id.len() > MAX_TENANT_ID_BYTES {
        return Err(bad(&format!("must be 1 to {MAX_TENANT_ID_BYTES} bytes")));
    }
    if !id.starts_with(|c: char| c.is_ascii_alphanumeric()) {
        return Err(bad("must start with a letter or digit"));
    }
    if let Some(c) = id
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')))
    {
        return Err(bad(&format!("{c:?} is not allowed")));
    }
    if id.contains("..") {
        return Err(bad("\"..\" is not allowed"));
    }
    Ok(())
}

/// Creates `dir` (and parents) readable only by its owner, if missing.
fn private_dir(dir: &Path) -> Result<()> {
    Ok(crate::files::private_dir(dir)?)
}

/// Creates an empty `path` readable only by its owner; SQLite gives the `-wal` and
/// `-shm` files the same permissions.
fn private_file(path: &Path) -> Result<()> {
    if crate::files::create_private_file(path)? {
        Ok(())
    } else {
        Err(std::io::Error::from(std::io::ErrorKind::AlreadyExists).into())
    }
}

/// Options of [`Tenants::migrate_all`].
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct MigrateOptions {
    /// Migrate and verify every tenant again, ignoring the progress file.
    pub redo: bool,
}

impl MigrateOptions {
    /// The defaults: skip tenants a previous run finished.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets [`MigrateOptions::redo`].
    pub fn redo(mut self, redo: bool) -> Self {
        self.redo = redo;
        self
    }
}

/// What [`Tenants::migrate_all`] did to one tenant.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
#[non_exhaustive]
pub enum MigrateOutcome {
    /// Migrated to the current schema and verified.
    Migrated,
    /// Already at the current schema; verified.
    Verified,
    /// Finished by an earlier run (in the progress file, at the current schema).
    Skipped,
    /// Could not be opened, migrated or verified; the file is as the failure left it
    /// (each migration step is one transaction).
    Failed {
        /// Why.
        error: String,
    },
}

/// One tenant in a [`MigrateReport`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TenantMigration {
    /// The tenant id.
    pub id: String,
    /// Its schema version before (`None` when the header could not be read).
    pub from_version: Option<i64>,
    /// What happened.
    #[serde(flatten)]
    pub outcome: MigrateOutcome,
    /// How long it took.
    pub time: Duration,
}

/// What [`Tenants::migrate_all`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct MigrateReport {
    /// Tenants in the directory.
    pub total: usize,
    /// Migrated and verified.
    pub migrated: usize,
    /// At the current schema already, verified.
    pub verified: usize,
    /// Done by an earlier run.
    pub skipped: usize,
    /// Failed.
    pub failed: usize,
    /// Each tenant, in id order.
    pub tenants: Vec<TenantMigration>,
}

impl MigrateReport {
    /// True when no tenant failed.
    pub fn is_ok(&self) -> bool {
        self.failed == 0
    }
}

/// A tenant drained for a move ([`Tenants::drain`]): refused by [`Tenants::get`] and
/// locked against every other open while it lives. Dropped after [`Drained::moved`], the
/// tombstone refuses the id; dropped without it, the move is abandoned and the tenant is
/// served here again.
#[must_use = "dropping the guard serves the tenant here again"]
pub struct Drained<'a> {
    tenants: &'a Tenants,
    id: String,
    path: PathBuf,
    last_seq: crate::Seq,
    /// The tenant's open lock, held exclusively while the guard lives.
    _lock: Option<std::fs::File>,
    _fence: Fence<'a>,
}

impl std::fmt::Debug for Drained<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Drained")
            .field("id", &self.id)
            .field("path", &self.path)
            .field("last_seq", &self.last_seq)
            .finish_non_exhaustive()
    }
}

impl Drained<'_> {
    /// The memory's last change-log position when it was drained: every write
    /// acknowledged before the drain is at or below it, so a copy whose last position
    /// (`Memory::last_seq`, `cairn stats --json`'s `last_seq`) is lower lacks some.
    pub fn last_seq(&self) -> crate::Seq {
        self.last_seq
    }

    /// The tenant's memory file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The move is done (the tenant is served by `to` now, a server name or address for
    /// the operator): writes `<id>.db.moved` naming `to` (synced), then removes the
    /// tenant's files here as [`Tenants::drop_tenant`] does. From then on
    /// [`Tenants::get`] of the id refuses with [`Error::Moved`], so a call sent here by
    /// a stale route is refused, never written to an empty memory;
    /// [`Tenants::drop_tenant`] removes the tombstone (to move the tenant back, put its
    /// file in place and then remove `<id>.db.moved`).
    ///
    /// On an error the tenant is as it was (files, no tombstone) and stays fenced and
    /// locked while the guard lives: call again, or drop the guard to serve it here again.
    pub fn moved(&mut self, to: &str) -> Result<()> {
        let tombstone = moved_path(&self.path);
        write_note(&tombstone, to)?;
        // The guard keeps its lock: the files move under it (the lock file too, which
        // this descriptor keeps locked), and come back under it if a rename fails.
        if let Err(e) = self.tenants.remove_files(&self.id, &self.path, None) {
            let _ = std::fs::remove_file(&tombstone);
            return Err(e);
        }
        Ok(())
    }
}

/// Lifts an archive's or a drain's fence when it ends, however it ends.
struct Fence<'a> {
    tenants: &'a Tenants,
    id: String,
}

impl Drop for Fence<'_> {
    fn drop(&mut self) {
        self.tenants.cache.lock().fenced.remove(&self.id);
    }
}

/// `<id>.db.archived` beside the tenant's file.
/// Deletes the hidden folders of drops whose clean-up failed (`.<id>.dropping-<pid>-<ms>`),
/// once the process that made one is gone: while it lives, the folder may be a drop that
/// is moving the tenant's files back after a failed move. Without `/proc` nothing is
/// swept (a live process cannot be told from a dead one). Best effort: a failure leaves
/// the folder for the next open.
fn sweep_dropped(dir: &Path) {
    if !Path::new("/proc/self").exists() {
        return;
    }
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(pid) = name.to_str().and_then(dropping_pid) else {
            continue;
        };
        if Path::new(&format!("/proc/{pid}")).exists() {
            continue;
        }
        if let Err(e) = std::fs::remove_dir_all(entry.path()) {
            tracing::warn!(dir = %entry.path().display(), error = %e, "a dropped tenant's leftover files were not deleted");
        }
    }
}

/// The process id in a drop folder's name `.<id>.dropping-<pid>-<ms>`.
fn dropping_pid(name: &str) -> Option<u32> {
    let rest = name.strip_prefix('.')?;
    let (_, tail) = rest.rsplit_once(".dropping-")?;
    let (pid, millis) = tail.split_once('-')?;
    millis.parse::<u64>().ok()?;
    pid.parse().ok()
}

fn tombstone_path(path: &Path) -> PathBuf {
    sibling(path, TOMBSTONE_SUFFIX)
}

/// `<id>.db.moved` beside the tenant's file.
fn moved_path(path: &Path) -> PathBuf {
    sibling(path, MOVED_SUFFIX)
}

/// [`Error::Moved`] when the tenant at `path` was moved to another server.
fn refuse_moved(path: &Path) -> Result<()> {
    let tombstone = moved_path(path);
    match std::fs::read_to_string(&tombstone) {
        Ok(to) => Err(Error::Moved {
            path: path.to_owned(),
            to: to.trim_end().to_owned(),
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(Error::file(tombstone, e)),
    }
}

/// [`Error::Archived`] when the tenant at `path` was archived.
fn refuse_archived(path: &Path) -> Result<()> {
    let tombstone = tombstone_path(path);
    match std::fs::read_to_string(&tombstone) {
        Ok(archive) => Err(Error::Archived {
            path: path.to_owned(),
            archive: PathBuf::from(archive.trim_end()),
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(Error::file(tombstone, e)),
    }
}

/// Writes the tenant's tombstone (the archive's absolute path), synced.
fn write_tombstone(path: &Path, archive: &Path) -> Result<()> {
    let archive = std::path::absolute(archive).unwrap_or_else(|_| archive.to_owned());
    write_note(&tombstone_path(path), &archive.display().to_string())
}

/// Writes a one-line owner-only file (a tombstone naming where the tenant went), synced.
fn write_note(note: &Path, text: &str) -> Result<()> {
    let write = || -> std::io::Result<()> {
        crate::files::create_private_file(note)?;
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .truncate(true)
            .open(note)?;
        writeln!(file, "{text}")?;
        file.sync_all()
    };
    write().map_err(|e| Error::file(note, e))
}

/// Refuses a destination that exists or whose folder is missing, naming the path.
fn check_new_file(dest: &Path, field: &'static str) -> Result<()> {
    if std::fs::symlink_metadata(dest).is_ok() {
        return Err(Error::invalid_input(
            field,
            format!(
                "{} exists; an archive never replaces a file",
                dest.display()
            ),
        ));
    }
    let folder = match dest.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    if !folder.is_dir() {
        return Err(Error::file(
            folder,
            std::io::Error::new(std::io::ErrorKind::NotFound, "no such folder"),
        ));
    }
    Ok(())
}

/// The ids a previous [`Tenants::migrate_all`] finished at the current schema.
fn read_progress(path: &Path) -> Result<HashSet<String>> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(HashSet::new()),
        Err(e) => return Err(Error::file(path, e)),
    };
    let current = SCHEMA_VERSION.to_string();
    Ok(text
        .lines()
        .filter_map(|line| line.split_once(' '))
        .filter(|(_, version)| *version == current)
        .map(|(id, _)| id.to_owned())
        .collect())
}

/// The file's `user_version`; `None` when it cannot be read. With no `-wal` beside it
/// the file's header says it (bytes 60..64; nothing is opened, so nothing is created);
/// with one, a read-only connection reads it through the log, where a replication tool
/// deferring checkpoints may have left the migration.
fn schema_version_of(path: &Path, key: Option<&Key>) -> Option<i64> {
    // An encrypted file's header is ciphertext: only a keyed connection reads it.
    if key.is_some() || sibling(path, "-wal").exists() {
        let flags = rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY;
        let conn = open_side(path, flags, key, None).ok()?;
        return conn.query_row("PRAGMA user_version", [], |r| r.get(0)).ok();
    }
    use std::io::Read as _;
    let mut header = [0u8; 64];
    std::fs::File::open(path)
        .ok()?
        .read_exact(&mut header)
        .ok()?;
    if !header.starts_with(b"SQLite format 3\0") {
        return None;
    }
    let version = i32::from_be_bytes([header[60], header[61], header[62], header[63]]);
    Some(i64::from(version))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_checked() {
        for good in ["acme", "Acme-1", "a.b_c", "7"] {
            assert!(check_id(good).is_ok(), "{good}");
        }
        for bad in [
            "",
            "..",
            "../x",
            "a/b",
            "a\\b",
            ".hidden",
            "a..b",
            "ü",
            "a b",
            &"x".repeat(65),
        ] {
            assert!(check_id(bad).unwrap_err().is_invalid_input(), "{bad:?}");
        }
    }

    #[test]
    fn leftover_drop_folders_of_dead_processes_are_swept() {
        let dir = tempfile::tempdir().unwrap();
        // pid_max is at most 2^22: this process cannot exist.
        let dead = dir.path().join(".a.dropping-999999999-17");
        let live = dir
            .path()
            .join(format!(".b.dropping-{}-17", std::process::id()));
        let unrelated = dir.path().join(".c.dropping-x-17");
        for d in [&dead, &live, &unrelated] {
            std::fs::create_dir(d).unwrap();
            std::fs::write(d.join("0"), b"x").unwrap();
        }
        Tenants::open(dir.path()).unwrap();
        assert!(!dead.exists());
        assert!(
            live.join("0").exists(),
            "a live process's drop is left alone"
        );
        assert!(unrelated.exists());
        assert_eq!(dropping_pid(".a.b.dropping-12-34"), Some(12));
        assert_eq!(dropping_pid("a.dropping-12-34"), None);
    }

    #[test]
    fn cache_is_bounded_and_drop_removes_everything() {
        let dir = tempfile::tempdir().unwrap();
        let tenants = Tenants::open_with(dir.path(), Options::default(), 2).unwrap();
        for id in ["a", "b", "c"] {
            tenants.get(id).unwrap().add_triple((id, "r", "x")).unwrap();
        }
        assert_eq!(tenants.open_count(), 2);
        assert_eq!(tenants.list().unwrap(), ["a", "b", "c"]);
        // "a" was evicted and reopens with its data.
        assert_eq!(tenants.get("a").unwrap().stats().unwrap().entities, 2);
        assert!(tenants.create("a").unwrap_err().is_invalid_input());
        assert_eq!(tenants.path("a").unwrap(), dir.path().join("a.db"));
        assert!(
            !tenants.path("d").unwrap().exists(),
            "path() creates nothing"
        );
        assert!(tenants.path("../a").unwrap_err().is_invalid_input());

        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.path().join("b.db"))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }

        let held = tenants.get("b").unwrap();
        let refused = tenants.drop_tenant("b").unwrap_err();
        assert!(matches!(refused, Error::InUse { .. }), "{refused}");
        drop(held);
        assert!(tenants.drop_tenant("b").unwrap());
        let left: Vec<String> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with("b."))
            .collect();
        assert!(left.is_empty(), "{left:?}");
        assert!(!tenants.drop_tenant("b").unwrap());
        assert_eq!(tenants.list().unwrap(), ["a", "c"]);
    }

    /// Test seam: what an open of a given id runs first (ids are unique per test, so
    /// tests running at once do not see each other's hooks).
    type Hook = Arc<dyn Fn() + Send + Sync>;
    static HOOKS: Mutex<Option<HashMap<String, Hook>>> = Mutex::new(None);

    pub(super) fn open_hook(id: &str) {
        let hook = HOOKS.lock().as_ref().and_then(|m| m.get(id).cloned());
        if let Some(hook) = hook {
            hook();
        }
    }

    fn set_hook(id: &str, hook: impl Fn() + Send + Sync + 'static) {
        HOOKS
            .lock()
            .get_or_insert_with(HashMap::new)
            .insert(id.to_owned(), Arc::new(hook));
    }

    /// A hook that counts opens and blocks each until `release` is sent; `entered`
    /// reports each open reaching it.
    fn blocking_hook(
        id: &str,
    ) -> (
        Arc<std::sync::atomic::AtomicUsize>,
        std::sync::mpsc::Receiver<()>,
        std::sync::mpsc::Sender<()>,
    ) {
        let opens = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let (entered_tx, entered) = std::sync::mpsc::channel::<()>();
        let (release, release_rx) = std::sync::mpsc::channel::<()>();
        let release_rx = Mutex::new(release_rx);
        let counter = Arc::clone(&opens);
        let entered_tx = Mutex::new(entered_tx);
        set_hook(id, move || {
            counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            let _ = entered_tx.lock().send(());
            let _ = release_rx.lock().recv();
        });
        (opens, entered, release)
    }

    /// Waits until `waiters` threads besides the opener hold the tenant's open slot.
    fn wait_for_waiters(tenants: &Tenants, id: &str, waiters: usize) {
        loop {
            let count = tenants
                .cache
                .lock()
                .opening
                .get(id)
                .map_or(0, Arc::strong_count);
            // The map's and the opener's references, and one per waiter.
            if count == waiters + 2 {
                return;
            }
            std::thread::yield_now();
        }
    }

    #[test]
    fn a_hit_does_not_wait_for_another_tenants_open() {
        let dir = tempfile::tempdir().unwrap();
        let tenants = Tenants::open_with(dir.path(), Options::default(), 4).unwrap();
        tenants
            .get("warm-hit")
            .unwrap()
            .add_triple(("Ann", "r", "x"))
            .unwrap();
        let (opens, entered, release) = blocking_hook("cold-stalled");
        std::thread::scope(|scope| {
            let cold = scope.spawn(|| tenants.get("cold-stalled"));
            entered.recv().unwrap();
            // The cold open is stalled inside the hook; a hit completes meanwhile (before
            // the change it waited on the cache lock the open held, for ever here).
            let warm = tenants.get("warm-hit").unwrap();
            assert_eq!(warm.stats().unwrap().entities, 2);
            assert!(!cold.is_finished(), "the cold open was released early");
            assert_eq!(
                tenants.open_count(),
                1,
                "the stalled tenant is not cached yet"
            );
            release.send(()).unwrap();
            cold.join().unwrap().unwrap();
        });
        assert_eq!(opens.load(std::sync::atomic::Ordering::SeqCst), 1);
        assert_eq!(tenants.open_count(), 2);
    }

    #[test]
    fn threads_asking_for_one_cold_tenant_open_it_once() {
        const THREADS: usize = 6;
        let dir = tempfile::tempdir().unwrap();
        let tenants = Tenants::open_with(dir.path(), Options::default(), 4).unwrap();
        let (opens, entered, release) = blocking_hook("cold-shared");
        let memories: Vec<Memory> = std::thread::scope(|scope| {
            let first = scope.spawn(|| tenants.get("cold-shared"));
            entered.recv().unwrap();
            let others: Vec<_> = (1..THREADS)
                .map(|_| scope.spawn(|| tenants.get("cold-shared")))
                .collect();
            wait_for_waiters(&tenants, "cold-shared", THREADS - 1);
            release.send(()).unwrap();
            std::iter::once(first)
                .chain(others)
                .map(|t| t.join().unwrap().unwrap())
                .collect()
        });
        assert_eq!(opens.load(std::sync::atomic::Ordering::SeqCst), 1);
        // One memory: the cache's handle and every thread's clone of it.
        assert_eq!(memories[0].handles(), THREADS + 1);
        memories[0].add_triple(("Ann", "r", "x")).unwrap();
        for memory in &memories {
            assert_eq!(memory.stats().unwrap().entities, 2);
        }
    }

    #[test]
    fn an_open_error_reaches_every_waiter_and_is_not_cached() {
        const THREADS: usize = 4;
        let dir = tempfile::tempdir().unwrap();
        let tenants = Tenants::open_with(dir.path(), Options::default(), 4).unwrap();
        let path = tenants.path("bad-open").unwrap();
        std::fs::write(&path, vec![b'x'; 8192]).unwrap();
        let (opens, entered, release) = blocking_hook("bad-open");
        let results: Vec<Result<Memory>> = std::thread::scope(|scope| {
            let first = scope.spawn(|| tenants.get("bad-open"));
            entered.recv().unwrap();
            let others: Vec<_> = (1..THREADS)
                .map(|_| scope.spawn(|| tenants.get("bad-open")))
                .collect();
            wait_for_waiters(&tenants, "bad-open", THREADS - 1);
            release.send(()).unwrap();
            std::iter::once(first)
                .chain(others)
                .map(|t| t.join().unwrap())
                .collect()
        });
        assert_eq!(opens.load(std::sync::atomic::Ordering::SeqCst), 1);
        for result in &results {
            let err = result.as_ref().unwrap_err();
            assert!(
                matches!(err, Error::NotADatabase { .. })
                    || cfg!(feature = "encryption") && matches!(err, Error::KeyRequired { .. }),
                "{err}"
            );
        }
        assert_eq!(tenants.open_count(), 0);
        assert!(tenants.cache.lock().opening.is_empty());
        // Not cached: once the file is fixed, the next get opens it.
        std::fs::remove_file(&path).unwrap();
        drop(release);
        tenants.get("bad-open").unwrap();
        assert_eq!(opens.load(std::sync::atomic::Ordering::SeqCst), 2);
    }
}
