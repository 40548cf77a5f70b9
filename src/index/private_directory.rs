//! The index's folder as tantivy sees it: an `MmapDirectory` whose every file is made
//! owner-only as it is created (tantivy creates them with the umask's mode), so the
//! derived index is as private as the memory file it is derived from.
//!
//! Opened for a read-only memory, it reads a folder it cannot write: tantivy's reader
//! takes a lock file (`.tantivy-meta.lock`) before it loads a commit, which a read-only
//! folder or mount refuses ("Failed to acquire Lockfile: Permission denied"). There the
//! lock is skipped: it only keeps a writer's garbage collection from deleting the files
//! being loaded, and a folder nobody may write has no writer.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use tantivy::directory::error::{DeleteError, LockError, OpenReadError, OpenWriteError};
use tantivy::directory::{
    Directory, DirectoryLock, FileHandle, Lock, MmapDirectory, WatchCallback, WatchHandle, WritePtr,
};

use crate::files::make_private;

/// [`MmapDirectory`] with owner-only files.
#[derive(Debug, Clone)]
pub(crate) struct PrivateDirectory {
    inner: MmapDirectory,
    root: PathBuf,
    /// For a read-only memory: a lock file that cannot be created is skipped.
    read_only: bool,
}

impl PrivateDirectory {
    /// Opens the existing folder `root` (for a read-only memory when `read_only`).
    pub(crate) fn open(root: &Path, read_only: bool) -> tantivy::Result<Self> {
        Ok(PrivateDirectory {
            inner: MmapDirectory::open(root)?,
            root: root.to_owned(),
            read_only,
        })
    }

    fn private(&self, path: &Path) -> io::Result<()> {
        make_private(&self.root.join(path))
    }
}

impl Directory for PrivateDirectory {
    fn get_file_handle(&self, path: &Path) -> Result<Arc<dyn FileHandle>, OpenReadError> {
        self.inner.get_file_handle(path)
    }

    fn delete(&self, path: &Path) -> Result<(), DeleteError> {
        self.inner.delete(path)
    }

    fn exists(&self, path: &Path) -> Result<bool, OpenReadError> {
        self.inner.exists(path)
    }

    fn open_write(&self, path: &Path) -> Result<WritePtr, OpenWriteError> {
        let write = self.inner.open_write(path)?;
        // Still empty: nothing was readable before this.
        self.private(path)
            .map_err(|io_error| OpenWriteError::wrap_io_error(io_error, path.to_owned()))?;
        Ok(write)
    }

    fn atomic_read(&self, path: &Path) -> Result<Vec<u8>, OpenReadError> {
        self.inner.atomic_read(path)
    }

    fn atomic_write(&self, path: &Path, data: &[u8]) -> io::Result<()> {
        self.inner.atomic_write(path, data)?;
        self.private(path)
    }

    fn sync_directory(&self) -> io::Result<()> {
        self.inner.sync_directory()
    }

    fn acquire_lock(&self, lock: &Lock) -> Result<DirectoryLock, LockError> {
        let acquired = match self.inner.acquire_lock(lock) {
            Err(LockError::IoError(e))
                if self.read_only
                    && matches!(
                        e.kind(),
                        io::ErrorKind::PermissionDenied | io::ErrorKind::ReadOnlyFilesystem
                    ) =>
            {
                // See the module comment: nobody can write this folder.
                return Ok(DirectoryLock::from(Box::new(())));
            }
            other => other?,
        };
        // The lock file may already be gone again (a lock released at once); its mode
        // then no longer matters.
        let _ = self.private(&lock.filepath);
        Ok(acquired)
    }

    fn watch(&self, watch_callback: WatchCallback) -> tantivy::Result<WatchHandle> {
        self.inner.watch(watch_callback)
    }
}
