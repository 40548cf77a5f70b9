//! Per-tenant stores: a directory of memory files, one per tenant id, with a bounded
//! cache of open handles.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use parking_lot::Mutex;

use crate::config::Options;
use crate::db::{remove_if_present, sibling};
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
        self.get(id)?.backup(dest)
    }

    /// Closes the tenant's memory and removes its file, `-wal`, `-shm` and index.
    /// Refused while a handle to it is held outside this cache (it would keep writing
    /// to a deleted file). Returns false if there was no such tenant.
    pub fn drop_tenant(&self, id: &str) -> Result<bool> {
        check_id(id)?;
        let mut cache = self.cache.lock();
        if let Some((memory, _)) = cache.open.get(id)
            && memory.handles() > 1
        {
            return Err(Error::invalid_input(
                "tenant id",
                format!("tenant {id:?} is in use; drop its handles first"),
            ));
        }
        // Dropping the cache's handle closes the memory (and stops its indexer), after
        // the lock is released.
        let closed = cache.open.remove(id);
        drop(cache);
        drop(closed);
        let path = self.path_of(id);
        if !path.exists() {
            return Ok(false);
        }
        for suffix in ["-wal", "-shm"] {
            remove_if_present(&sibling(&path, suffix))?;
        }
        index::remove_all_for(&path)?;
        std::fs::remove_file(&path)?;
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
        assert!(tenants.drop_tenant("b").unwrap_err().is_invalid_input());
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
