//! `cairn`: the command line over one memory file, and `cairn mcp`, an MCP server.
//!
//! The binary (`src/main.rs`) is a thin shell over [`run`], which other front ends (the
//! Python package's `cairn` command) call too.
//!
//! Exit codes: 0 success, 1 failure (I/O, database), 2 bad input (usage, invalid names,
//! malformed import lines), 3 not found, 4 `check` found problems, 75 busy (retry later).
//! See `docs/cli.md`.

#![warn(missing_docs)]
#![forbid(unsafe_code)]

mod args;
mod commands;
mod dates;
mod document;
mod edit;
mod failure;
mod framing;
mod log;
mod mcp;
mod output;
mod screen;
mod store;

use std::ffi::OsString;

use clap::Parser;

pub(crate) use args::*;
pub(crate) use failure::*;

/// Runs one `cairn` command line (`args[0]` is the program name) and returns its exit
/// code; errors are printed on stderr, output on stdout.
///
/// Logging (`--log`) installs a process-wide subscriber the first time only, and the
/// model named by `--model` is loaded once per process: call this once per process, as a
/// `main` does.
pub fn run<I, T>(args: I) -> u8
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    let cli = match Cli::try_parse_from(args) {
        Ok(cli) => cli,
        Err(e) => {
            // Help and --version are successes printed on stdout; usage errors exit 2.
            let _ = e.print();
            return u8::try_from(e.exit_code()).unwrap_or(EXIT_BAD_INPUT);
        }
    };
    cli.log.install();
    match commands::run(cli) {
        Ok(()) => 0,
        Err(failure) => {
            eprintln!("cairn: {}", failure.message);
            failure.code
        }
    }
}
