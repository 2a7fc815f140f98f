//! The reference server, built inside the `tests` package so that end-to-end tests can start
//! it as a real process through `CARGO_BIN_EXE_switchboard-e2e` (Cargo only exposes the
//! binaries of the package under test). It runs exactly what the `switchboard` binary runs.

use std::process::ExitCode;

fn main() -> ExitCode {
    switchboard_server::cli::main()
}
