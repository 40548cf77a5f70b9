//! Where a command's memory is: a `--db` file, or one tenant's memory in a `--tenants`
//! directory; and the `~` / `$HOME` expansion of the paths given for either (MCP clients
//! start `cairn mcp` without a shell, so `"CAIRN_DB": "~/agents.db"` arrives unexpanded).

use std::ffi::OsStr;
use std::path::{Path, PathBuf};

use cairn::{Memory, Options, Tenants};

use crate::Failure;

/// The memory a command works on.
pub(crate) struct Store {
    /// The memory file (for a tenant, its file in the directory).
    path: PathBuf,
    /// The tenants' directory and the tenant id, when the memory is a tenant's: opened
    /// through [`Tenants`] so that ids are checked and new files made private the same
    /// way as `cairn tenants create` does.
    tenant: Option<(Tenants, String)>,
    options: Options,
}

impl Store {
    /// The store the global flags name: `--db PATH`, or `--tenants DIR --tenant ID`.
    pub(crate) fn from_flags(
        db: Option<&Path>,
        tenants: Option<&Path>,
        tenant: Option<&str>,
        options: Options,
    ) -> Result<Store, Failure> {
        let home = std::env::var_os("HOME");
        match (db, tenants, tenant) {
            (Some(_), Some(_), _) | (Some(_), _, Some(_)) => Err(Failure::bad_input(
                "--db (or CAIRN_DB) and --tenants/--tenant both name a memory; pass one",
            )),
            (Some(db), None, None) => Ok(Store {
                path: expand_home(db, home.as_deref()).map_err(Failure::bad_input)?,
                tenant: None,
                options,
            }),
            (None, Some(dir), Some(id)) => {
                let dir = expand_home(dir, home.as_deref()).map_err(Failure::bad_input)?;
                // A capacity of one: a command opens one memory.
                let tenants = Tenants::open_with(&dir, options.clone(), 1)?;
                Ok(Store {
                    path: tenants.path(id)?,
                    tenant: Some((tenants, id.to_owned())),
                    options,
                })
            }
            (None, Some(_), None) => Err(Failure::bad_input(
                "--tenants DIR needs --tenant ID (or CAIRN_TENANT): which tenant's memory?",
            )),
            (None, None, Some(_)) => Err(Failure::bad_input(
                "--tenant ID needs --tenants DIR (or CAIRN_TENANTS): the tenants' directory",
            )),
            (None, None, None) => Err(Failure::bad_input(
                "no memory: pass --db PATH (or set CAIRN_DB), or --tenants DIR --tenant ID",
            )),
        }
    }

    /// The options the command opens memories with.
    pub(crate) fn options(&self) -> &Options {
        &self.options
    }

    /// The memory file.
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// Opens the memory, creating it if needed.
    pub(crate) fn open(&self) -> cairn::Result<Memory> {
        match &self.tenant {
            Some((tenants, id)) => tenants.get(id),
            None => Memory::open_with(&self.path, self.options.clone()),
        }
    }

    /// Opens the memory for a command that only reads: read-write where this process
    /// may write the file and its folder (so the index catches up and the WAL is
    /// checkpointed as after any command), read-only where it may not (a read-only file,
    /// folder or mount): nothing is then created or left beside the file.
    pub(crate) fn open_reading(&self) -> cairn::Result<Memory> {
        match self.open() {
            Err(e) if e.is_not_writable() => {
                Memory::open_with(&self.path, self.options.clone().read_only(true))
            }
            other => other,
        }
    }

    /// [`Store::open_reading`] of a memory that must already exist.
    pub(crate) fn open_for_reading(&self) -> Result<Memory, Failure> {
        self.require_existing()?;
        Ok(self.open_reading()?)
    }

    /// Opens a memory that must already exist: reading a mistyped path (or tenant id)
    /// should not create it.
    pub(crate) fn open_existing(&self) -> Result<Memory, Failure> {
        self.require_existing()?;
        Ok(self.open()?)
    }

    /// Not found (exit 3) unless the memory's file exists.
    pub(crate) fn require_existing(&self) -> Result<(), Failure> {
        if self.path.exists() {
            return Ok(());
        }
        Err(Failure::not_found(match &self.tenant {
            Some((_, id)) => format!(
                "tenant {id:?} does not exist: {} is missing (create it with `cairn tenants \
                 create {id}` or `cairn init`)",
                self.path.display()
            ),
            None => format!(
                "{} does not exist (create it with `cairn init`)",
                self.path.display()
            ),
        }))
    }
}

/// Expands a leading `~`, `$HOME` or `${HOME}` (alone or before a `/`) to `home`, as a
/// shell would; other paths are returned unchanged. `home` unset or empty is an error
/// for a path that needs it, naming the path.
pub(crate) fn expand_home(path: &Path, home: Option<&OsStr>) -> Result<PathBuf, String> {
    // A path that is not UTF-8 cannot start with one of the ASCII forms.
    let Some(text) = path.to_str() else {
        return Ok(path.to_owned());
    };
    let rest = ["~", "${HOME}", "$HOME"].iter().find_map(|prefix| {
        let rest = text.strip_prefix(prefix)?;
        (rest.is_empty() || rest.starts_with('/')).then_some(rest)
    });
    let Some(rest) = rest else {
        return Ok(path.to_owned());
    };
    let home = home.filter(|h| !h.is_empty()).ok_or_else(|| {
        format!("cannot expand {text:?}: HOME is not set (give the path without ~ or $HOME)")
    })?;
    let mut expanded = PathBuf::from(home);
    let rest = rest.trim_start_matches('/');
    if !rest.is_empty() {
        expanded.push(rest);
    }
    Ok(expanded)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn expand(path: &str, home: Option<&str>) -> Result<PathBuf, String> {
        expand_home(Path::new(path), home.map(OsStr::new))
    }

    #[test]
    fn home_forms_expand_at_the_start_only() {
        let home = Some("/home/ann");
        for given in ["~/x.db", "$HOME/x.db", "${HOME}/x.db"] {
            assert_eq!(
                expand(given, home).unwrap(),
                Path::new("/home/ann/x.db"),
                "{given}"
            );
        }
        assert_eq!(expand("~", home).unwrap(), Path::new("/home/ann"));
        assert_eq!(
            expand("$HOME/dir/a.db", home).unwrap(),
            Path::new("/home/ann/dir/a.db")
        );
        for literal in ["/data/x.db", "x.db", "~ann/x.db", "$HOMER/x.db", "a/~/x.db"] {
            assert_eq!(
                expand(literal, home).unwrap(),
                Path::new(literal),
                "{literal}"
            );
        }
    }

    #[test]
    fn an_unset_home_is_an_error_only_when_needed() {
        for home in [None, Some("")] {
            let e = expand("~/x.db", home).unwrap_err();
            assert!(e.contains("HOME is not set") && e.contains("~/x.db"), "{e}");
            assert_eq!(expand("/abs/x.db", home).unwrap(), Path::new("/abs/x.db"));
        }
    }
}
