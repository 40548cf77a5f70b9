//! Per-tenant stores: a directory of memory files, one per tenant id, with a bounded
//! cache of open handles.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use parking_lot::Mutex;

use crate::config::Options;
use crate::db::{lock_path, sibling};
use crate::error::{Error, Result};
use crate::index;
use crate::memory::Memory;
use crate::ops::backup::BackupReport;

/// The longest tenant id, in bytes.
pub const MAX_TENANT_ID_BYTES: usize = 64;

/// The extension of a tenant's memory file in the directory.
const EXTENSION: &str = "db";

/// A directory of memories, one file per tenant (`<dir>/<id>.db`, with its `-wal`,
/// `-shm` and `.index/`), and a cache of at most `capacity` open ones; the least recently
/// used is closed when another is opened.
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
        Ok(Tenants {
            dir,
            options,
            capacity: capacity.max(1),
            cache: Mutex::new(Cache::default()),
        })
    }

    /// The tenant's memory, opened (and created) if needed.
    pub fn get(&self, id: &str) -> Result<Memory> {
        check_id(id)?;
        let mut cache = self.cache.lock();
        cache.clock += 1;
        let now = cache.clock;
        if let Some((memory, used)) = cache.open.get_mut(id) {
            *used = now;
            return Ok(memory.clone());
        }
        let path = self.path_of(id);
        refuse_links(&path)?;
        if !path.exists() {
            private_file(&path)?;
            private_dir(&index::dir_for(&path))?;
        }
        let memory = Memory::open_with(&path, self.options.clone())?;
        let evicted = if cache.open.len() >= self.capacity {
            evict_least_recent(&mut cache.open)
        } else {
            None
        };
        cache.open.insert(id.to_owned(), (memory.clone(), now));
        drop(cache);
        // Closing waits for the evicted memory's indexer to stop: not under the lock.
        drop(evicted);
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
            return Ok(false);
        }
        let lock = exclusive_lock(&path)?;
        let trash = self.dir.join(format!(
            ".{id}.dropping-{}-{}",
            std::process::id(),
            crate::time::Timestamp::now().as_millis()
        ));
        private_dir(&trash)?;
        let mut moved: Vec<(PathBuf, PathBuf)> = Vec::new();
        for (n, from) in companions(&path).into_iter().enumerate() {
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
        Ok(true)
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
}
