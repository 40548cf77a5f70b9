//! Files and folders cairn creates are readable by their owner only (0600 / 0700,
//! whatever the umask): a memory holds a person's mail, calendar and conversations.
//! SQLite gives a database's `-wal`, `-shm` and `-journal` the permissions of the
//! database file, so creating that file first is enough for all of them.

use std::io;
use std::path::Path;

/// Creates `dir` (and missing parents) owner-only; an existing folder is left as it is.
pub(crate) fn private_dir(dir: &Path) -> io::Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(dir)
}

/// Creates an empty owner-only file at `path`; `Ok(false)` if something is there already
/// (left untouched).
pub(crate) fn create_private_file(path: &Path) -> io::Result<bool> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    match options.open(path) {
        Ok(_) => Ok(true),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(false),
        Err(e) => Err(e),
    }
}

/// Makes an existing file owner-only (for files another library created, such as the
/// search index's segments).
pub(crate) fn make_private(path: &Path) -> io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
    }
    #[cfg(not(unix))]
    let _ = path;
    Ok(())
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn mode(path: &Path) -> u32 {
        std::fs::metadata(path).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn created_files_and_folders_are_owner_only() {
        let dir = tempfile::tempdir().unwrap();
        let nested = dir.path().join("a/b");
        private_dir(&nested).unwrap();
        assert_eq!((mode(&dir.path().join("a")), mode(&nested)), (0o700, 0o700));
        let file = nested.join("f.db");
        assert!(create_private_file(&file).unwrap());
        assert!(
            !create_private_file(&file).unwrap(),
            "an existing file is kept"
        );
        assert_eq!(mode(&file), 0o600);
        let other = nested.join("g");
        std::fs::write(&other, b"x").unwrap();
        make_private(&other).unwrap();
        assert_eq!(mode(&other), 0o600);
    }
}
