//! Counting a server's syscalls over the window with `perf stat` on syscall tracepoints.
//!
//! `/proc/PID/io`'s `syscw` counts only `write(2)`-family calls on files; servers send on
//! sockets with `sendto`/`sendmsg` (tokio does), which it never sees. The tracepoints count
//! every call, in the kernel, for the whole window; they need root (or a permissive
//! `perf_event_paranoid`) and the `perf` tool, and are skipped with `--no-perf`.

use std::process::Stdio;
use std::time::Duration;

use tokio::io::AsyncReadExt;
use tokio::process::{Child, Command};
use tokio::time::{Instant, timeout_at};

/// Tracepoints of the calls that write to a socket or file.
const WRITE_EVENTS: [&str; 5] = [
    "syscalls:sys_enter_write",
    "syscalls:sys_enter_writev",
    "syscalls:sys_enter_sendto",
    "syscalls:sys_enter_sendmsg",
    "syscalls:sys_enter_sendmmsg",
];
/// Tracepoint of every syscall.
const ALL_EVENT: &str = "raw_syscalls:sys_enter";

/// Syscalls a process made over the window.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct SyscallCount {
    /// `write`, `writev`, `sendto`, `sendmsg` and `sendmmsg` calls.
    pub(crate) writes: u64,
    /// Every syscall.
    pub(crate) total: u64,
}

/// A running `perf stat` attached to a process for a fixed time.
#[derive(Debug)]
pub(crate) struct PerfStat {
    child: Child,
}

impl PerfStat {
    /// Starts counting `pid`'s syscalls for `duration`.
    ///
    /// # Errors
    ///
    /// When `perf` cannot be started.
    pub(crate) fn start(pid: u32, duration: Duration) -> Result<Self, String> {
        let events = WRITE_EVENTS
            .iter()
            .chain([&ALL_EVENT])
            .copied()
            .collect::<Vec<_>>()
            .join(",");
        let child = Command::new("perf")
            .args(["stat", "-x,", "-e", &events, "-p", &pid.to_string(), "--"])
            .args(["sleep", &format!("{:.3}", duration.as_secs_f64())])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| format!("cannot run perf: {e}"))?;
        Ok(Self { child })
    }

    /// Waits for the counts (at most until `until`).
    ///
    /// # Errors
    ///
    /// When perf fails, is too late, or prints no counts.
    pub(crate) async fn finish(mut self, until: Instant) -> Result<SyscallCount, String> {
        let mut stderr = String::new();
        let mut pipe = self
            .child
            .stderr
            .take()
            .ok_or_else(|| "perf has no stderr".to_owned())?;
        let read = timeout_at(until, async {
            pipe.read_to_string(&mut stderr).await?;
            self.child.wait().await
        })
        .await;
        match read {
            Ok(Ok(_status)) => parse(&stderr),
            Ok(Err(e)) => Err(format!("reading perf: {e}")),
            Err(_) => {
                let _ = self.child.kill().await;
                Err("perf did not finish in time".to_owned())
            }
        }
    }
}

/// Sums `perf stat -x,` lines (`count,unit,event,…`).
fn parse(output: &str) -> Result<SyscallCount, String> {
    let mut out = SyscallCount::default();
    let mut seen = 0;
    for line in output.lines() {
        let mut fields = line.split(',');
        let (Some(count), Some(_unit), Some(event)) = (fields.next(), fields.next(), fields.next())
        else {
            continue;
        };
        let count = match count.trim() {
            "<not counted>" => 0,
            c => match c.parse::<u64>() {
                Ok(n) => n,
                Err(_) => continue,
            },
        };
        if WRITE_EVENTS.contains(&event) {
            out.writes += count;
            seen += 1;
        } else if event == ALL_EVENT {
            out.total += count;
            seen += 1;
        }
    }
    if seen == 0 {
        let first = output
            .lines()
            .find(|l| !l.trim().is_empty())
            .unwrap_or("no output");
        return Err(format!("perf gave no counts: {}", first.trim()));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn perf_csv_is_summed_by_kind() {
        let out = "20021,,syscalls:sys_enter_sendto,240928598,100.00,,\n\
                   <not counted>,,syscalls:sys_enter_write,240928598,100.00,,\n\
                   5,,syscalls:sys_enter_writev,240928598,100.00,,\n\
                   20551,,raw_syscalls:sys_enter,240928598,100.00,,\n";
        assert_eq!(
            parse(out),
            Ok(SyscallCount {
                writes: 20026,
                total: 20551
            })
        );
        assert!(parse("event syntax error: 'syscalls:nope'\n").is_err());
    }
}
