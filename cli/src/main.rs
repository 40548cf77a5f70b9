//! The `cairn` binary: everything is in the `cairn_cli` library.

use std::process::ExitCode;

fn main() -> ExitCode {
    ExitCode::from(cairn_cli::run(std::env::args_os()))
}
