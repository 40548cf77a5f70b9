//! How a command ends: exit codes, and the failures that map onto them.

/// How the process ends: an exit code and what to say on stderr.
#[derive(Debug)]
pub(crate) struct Failure {
    pub(crate) code: u8,
    pub(crate) message: String,
}

/// Bad input: usage, arguments, file contents.
pub(crate) const EXIT_BAD_INPUT: u8 = 2;
/// A named entity does not exist.
pub(crate) const EXIT_NOT_FOUND: u8 = 3;
/// `check` found the memory damaged.
pub(crate) const EXIT_DAMAGED: u8 = 4;
/// Other writers held the database too long; retrying may succeed (sysexits EX_TEMPFAIL).
pub(crate) const EXIT_BUSY: u8 = 75;

impl Failure {
    /// The reader of our standard output went away (`cairn export | head -1`): the
    /// command ends quietly with success, as `head` users expect.
    fn output_closed() -> Self {
        Failure {
            code: 0,
            message: String::new(),
        }
    }

    /// Whether this ends the command without a word (see [`Failure::output_closed`]).
    pub(crate) fn is_quiet(&self) -> bool {
        self.code == 0
    }

    pub(crate) fn bad_input(message: impl Into<String>) -> Self {
        Failure {
            code: EXIT_BAD_INPUT,
            message: message.into(),
        }
    }

    pub(crate) fn not_found(message: impl Into<String>) -> Self {
        Failure {
            code: EXIT_NOT_FOUND,
            message: message.into(),
        }
    }

    pub(crate) fn damaged(message: impl Into<String>) -> Self {
        Failure {
            code: EXIT_DAMAGED,
            message: message.into(),
        }
    }
}

/// Opens an input file; a failure names the path (a missing one is not found, exit 3).
pub(crate) fn open_input(path: &std::path::Path) -> Result<std::fs::File, Failure> {
    std::fs::File::open(path).map_err(|e| {
        let message = format!("{}: {e}", path.display());
        if e.kind() == std::io::ErrorKind::NotFound {
            Failure::not_found(message)
        } else {
            Failure::from(std::io::Error::new(e.kind(), message))
        }
    })
}

impl From<cairn::Error> for Failure {
    fn from(e: cairn::Error) -> Self {
        if let cairn::Error::Io(io) = &e
            && io.kind() == std::io::ErrorKind::BrokenPipe
        {
            return Failure::output_closed();
        }
        // A name that belongs to another entity is the caller's input too (merge them).
        let taken = matches!(e, cairn::Error::AliasTaken { .. });
        // An archived or moved tenant is gone from this store (the message names where).
        let archived = matches!(
            e,
            cairn::Error::Archived { .. } | cairn::Error::Moved { .. }
        );
        // A wrong, missing or unneeded key is the caller's input as well.
        let code = if e.is_invalid_input() || taken || e.is_key_error() {
            EXIT_BAD_INPUT
        } else if e.is_not_found() || archived {
            EXIT_NOT_FOUND
        } else if e.is_retryable() || matches!(e, cairn::Error::InUse { .. }) {
            EXIT_BUSY
        } else {
            1
        };
        Failure {
            code,
            message: e.to_string(),
        }
    }
}

impl From<std::io::Error> for Failure {
    fn from(e: std::io::Error) -> Self {
        if e.kind() == std::io::ErrorKind::BrokenPipe {
            return Failure::output_closed();
        }
        Failure {
            code: 1,
            message: e.to_string(),
        }
    }
}
