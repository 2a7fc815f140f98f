//! `loadgen`: an open-loop WebSocket load tool for switchboard and its benchmark peers.
//!
//! It speaks the subset of Protocol v1 every peer implements (welcome, subscribe, publish →
//! deliver) and runs one scenario per invocation: `idle`, `fanout`, `channels`, `echo` or
//! `backplane`. It measures per-delivery latency from timestamps embedded in the payload,
//! loss and duplicates from per-channel sequence numbers, its own CPU (so client-bound runs
//! are flagged) and, given `--server-pid`, the server's memory, CPU and write syscalls from
//! `/proc`. It prints a table and, with `--json`, writes one JSON object.
//!
//! ```sh
//! loadgen fanout --url ws://127.0.0.1:5200/ws --connections 1000 --rate 100 --server-pid 1234
//! ```
//!
//! `loadgen --help` lists every option. Only loopback targets are accepted.

#[path = "../loadgen/mod.rs"]
mod loadgen;

fn main() -> std::process::ExitCode {
    loadgen::main()
}
