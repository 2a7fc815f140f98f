//! Process figures from `/proc`: a server's memory, CPU time and write syscalls, and this
//! process's own CPU time.

use std::time::Duration;

/// One reading of a process.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct ProcSample {
    /// Resident set size (`VmRSS` of `/proc/PID/status`), bytes.
    pub(crate) rss_bytes: u64,
    /// User plus system CPU time (`utime + stime` of `/proc/PID/stat`).
    pub(crate) cpu: Duration,
    /// The user-space part of [`cpu`](Self::cpu) (`utime`); the rest is the kernel's.
    pub(crate) user: Duration,
    /// Write syscalls so far (`syscw` of `/proc/PID/io`); `None` when unreadable.
    pub(crate) syscw: Option<u64>,
}

/// Reads `pid`'s memory, CPU and write syscalls.
///
/// # Errors
///
/// A message naming the file when the process is gone or a file does not parse.
pub(crate) fn sample(pid: u32) -> Result<ProcSample, String> {
    let read = |file: &str| {
        std::fs::read_to_string(format!("/proc/{pid}/{file}"))
            .map_err(|e| format!("reading /proc/{pid}/{file}: {e}"))
    };
    let rss_bytes = parse_vm_rss(&read("status")?)
        .ok_or_else(|| format!("/proc/{pid}/status has no VmRSS line"))?;
    let times = parse_stat_cpu(&read("stat")?, clock_ticks())
        .ok_or_else(|| format!("/proc/{pid}/stat does not parse"))?;
    let syscw = read("io").ok().and_then(|io| parse_syscw(&io));
    Ok(ProcSample {
        rss_bytes,
        cpu: times.user + times.system,
        user: times.user,
        syscw,
    })
}

/// Clock ticks per second for `/proc/PID/stat` times (`sysconf(_SC_CLK_TCK)`).
fn clock_ticks() -> u64 {
    rustix::param::clock_ticks_per_second().max(1)
}

/// `VmRSS:  12345 kB` → bytes.
fn parse_vm_rss(status: &str) -> Option<u64> {
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

/// A process's CPU time, split as `/proc/PID/stat` splits it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct CpuTimes {
    /// In user space (`utime`).
    user: Duration,
    /// In the kernel on the process's behalf (`stime`).
    system: Duration,
}

/// `utime` and `stime` (fields 14 and 15) of `/proc/PID/stat`; the command name (field 2)
/// may hold spaces and parentheses, so fields are counted after its last `)`.
fn parse_stat_cpu(stat: &str, ticks_per_second: u64) -> Option<CpuTimes> {
    let rest = &stat[stat.rfind(')')? + 1..];
    let mut fields = rest.split_whitespace();
    // `rest` starts at field 3 (state); utime is field 14.
    let utime: u64 = fields.nth(11)?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    let time =
        |ticks: u64| Duration::from_nanos(ticks.saturating_mul(1_000_000_000) / ticks_per_second);
    Some(CpuTimes {
        user: time(utime),
        system: time(stime),
    })
}

/// `syscw: 123` of `/proc/PID/io`.
fn parse_syscw(io: &str) -> Option<u64> {
    io.lines()
        .find_map(|l| l.strip_prefix("syscw:"))?
        .trim()
        .parse()
        .ok()
}

/// CPU time used by this process so far, all threads (`CLOCK_PROCESS_CPUTIME_ID`).
pub(crate) fn own_cpu() -> Duration {
    let t = rustix::time::clock_gettime(rustix::time::ClockId::ProcessCPUTime);
    Duration::new(
        u64::try_from(t.tv_sec).unwrap_or(0),
        u32::try_from(t.tv_nsec).unwrap_or(0),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_fields_are_counted_after_the_command_name() {
        let stat = "4242 (my (odd) name) S 1 4242 4242 0 -1 4194560 1000 0 0 0 \
                    250 150 0 0 20 0 3 0 100 1000000 500 18446744073709551615";
        assert_eq!(
            parse_stat_cpu(stat, 100),
            Some(CpuTimes {
                user: Duration::from_millis(2500),
                system: Duration::from_millis(1500),
            })
        );
    }

    #[test]
    fn status_and_io_lines_parse() {
        let status = "Name:\tswitchboard\nVmPeak:\t  9000 kB\nVmRSS:\t    1234 kB\n";
        assert_eq!(parse_vm_rss(status), Some(1234 * 1024));
        let io = "rchar: 10\nwchar: 20\nsyscr: 3\nsyscw: 77\n";
        assert_eq!(parse_syscw(io), Some(77));
    }

    #[test]
    fn this_process_can_be_sampled() {
        let s = sample(std::process::id()).unwrap();
        assert!(s.rss_bytes > 0);
    }
}
