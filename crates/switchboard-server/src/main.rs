//! `switchboard`: the reference server. `switchboard --help` lists every setting.

use std::process::ExitCode;

fn main() -> ExitCode {
    switchboard_server::cli::main()
}
