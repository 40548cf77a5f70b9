//! The index's folder as tantivy sees it: an `MmapDirectory` whose every file is made
//! owner-only as it is created (tantivy creates them with the umask's mode), so the
//! derived index is as private as the memory file it is derived from.

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
}

impl PrivateDirectory {
    /// Opens the existing folder `root`.
    pub(crate) fn open(root: &Path) -> tantivy::Result<Self> {
        Ok(PrivateDirectory {
            inner: MmapDirectory::open(root)?,
            root: root.to_owned(),
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
        let acquired = self.inner.acquire_lock(lock)?;
        // The lock file may already be gone again (a lock released at once); its mode
        // then no longer matters.
        let _ = self.private(&lock.filepath);
        Ok(acquired)
    }

    fn watch(&self, watch_callback: WatchCallback) -> tantivy::Result<WatchHandle> {
        self.inner.watch(watch_callback)
    }
}
