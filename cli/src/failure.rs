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

impl From<cairn::Error> for Failure {
    fn from(e: cairn::Error) -> Self {
        // A name that belongs to another entity is the caller's input too (merge them).
        let taken = matches!(e, cairn::Error::AliasTaken { .. });
        let code = if e.is_invalid_input() || taken {
            EXIT_BAD_INPUT
        } else if e.is_not_found() {
            EXIT_NOT_FOUND
        } else if e.is_retryable() {
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
        Failure {
            code: 1,
            message: e.to_string(),
        }
    }
}
