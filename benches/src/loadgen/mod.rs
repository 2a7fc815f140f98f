//! The `loadgen` tool: command line, connections, scenarios, measurements and the report.
//!
//! - `cli`: options and their validation (loopback only, sources, capacity checks);
//! - `connection`: opening a connection, the frames sent and read, failure reasons;
//! - `worker`: one process's connections and traffic; `publisher`: the dedicated publisher
//!   thread; `coordinator`: the whole run;
//! - `histogram`, `tracking`: latency percentiles, loss, duplicates, completion time;
//! - `procfs`: server and own CPU and memory from `/proc`; `syscalls`: the server's
//!   syscalls from `perf stat`; `report`: table and JSON.

mod cli;
mod connection;
mod coordinator;
mod histogram;
mod procfs;
mod publisher;
mod report;
mod syscalls;
mod tracking;
mod worker;

use std::process::ExitCode;

use cli::Config;

/// Parses the command line and runs the coordinator (or a worker, in a child process).
pub(crate) fn main() -> ExitCode {
    let cfg = match Config::from_args(std::env::args_os()) {
        Err(e) => e.exit(),
        Ok(Err(e)) => {
            eprintln!("loadgen: error: {e}\n\nFor more information, try '--help'.");
            return ExitCode::from(2);
        }
        Ok(Ok(cfg)) => cfg,
    };
    // One thread: the tool is pinned to a core (or spread over processes), and a runtime
    // with more workers than cores loses throughput.
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("loadgen: cannot start the runtime: {e}");
            return ExitCode::from(1);
        }
    };
    let local = tokio::task::LocalSet::new();
    local.block_on(&runtime, async move {
        if cfg.worker_index.is_some() {
            coordinator::worker_main(cfg).await
        } else {
            coordinator::run(cfg).await
        }
    })
}
