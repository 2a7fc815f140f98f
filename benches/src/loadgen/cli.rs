//! Command-line options and their validation into a [`Config`].

use std::ffi::OsString;
use std::fmt;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::path::PathBuf;
use std::time::Duration;

use clap::{Parser, ValueEnum};
use serde::Serialize;
use tokio_tungstenite::tungstenite::http::Uri;

/// Most source addresses `--sources` may name.
const MAX_SOURCES: usize = 1024;
/// Most worker processes `--processes` may start.
const MAX_PROCESSES: u32 = 64;
/// Most connections one run may ask for.
const MAX_CONNECTIONS: u32 = 1_000_000;
/// Largest padding: the server's default frame limit is 64 KiB.
const MAX_PAYLOAD_BYTES: usize = 60_000;
/// Longest measurement, warm-up or deadline, in seconds.
const MAX_SECONDS: f64 = 86_400.0;
/// Lowest publish or connect rate, per second.
const MIN_RATE: f64 = 0.01;
/// Highest publish or connect rate, per second.
const MAX_RATE: f64 = 1_000_000.0;
/// File descriptors a process keeps for itself beyond its connections.
const FD_RESERVE: u64 = 64;
/// Ephemeral ports a source address keeps free for everything else on the machine.
const PORT_RESERVE: u64 = 1_000;

/// What one run measures.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Serialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Scenario {
    /// N idle connections (optionally one subscription each): server memory per connection.
    Idle,
    /// N subscribers on one channel, one publisher at `--rate`.
    Fanout,
    /// Many channels with few subscribers each, plus a personal channel per client.
    Channels,
    /// Each connection publishes to its own channel and receives its messages back.
    Echo,
    /// Fan-out across two instances: publisher on `--url`, subscribers on `--url2`.
    Backplane,
}

impl Scenario {
    /// The scenario's name as typed on the command line.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Self::Idle => "idle",
            Self::Fanout => "fanout",
            Self::Channels => "channels",
            Self::Echo => "echo",
            Self::Backplane => "backplane",
        }
    }

    /// Whether the scenario publishes messages (everything but `idle`).
    pub(crate) fn publishes(self) -> bool {
        self != Self::Idle
    }

    /// Whether completion time per message (until its last subscriber has it) is reported.
    pub(crate) fn tracks_completion(self) -> bool {
        matches!(self, Self::Fanout | Self::Channels | Self::Backplane)
    }
}

/// Open-loop WebSocket load tool for switchboard and its benchmark peers (loopback only).
///
/// Scenarios: idle (server memory per connection), fanout (N subscribers, one publisher),
/// channels (many small channels plus a personal channel per client), echo (each connection
/// publishes to its own channel), backplane (publisher on --url, subscribers on --url2).
/// Exit codes: 0 done, 1 deadline exceeded or nothing measured, 2 bad arguments.
#[derive(Debug, Parser)]
#[command(name = "loadgen", version)]
pub(crate) struct Args {
    /// Scenario to run.
    #[arg(value_enum)]
    scenario: Scenario,
    /// Target WebSocket URL, e.g. ws://127.0.0.1:5200/ws (loopback only).
    #[arg(long)]
    url: String,
    /// Second instance (backplane: subscribers connect here, the publisher to --url).
    #[arg(long)]
    url2: Option<String>,
    /// Server process to sample from /proc (RSS, CPU, write syscalls).
    #[arg(long)]
    server_pid: Option<u32>,
    /// Second server process (backplane).
    #[arg(long)]
    server_pid2: Option<u32>,
    /// Connections: idle total, fanout/backplane subscribers, echo connections, channels
    /// clients [default: 50 for echo, 1000 otherwise].
    #[arg(long)]
    connections: Option<u32>,
    /// Publishes per second (fanout, backplane, channels), or messages per second per
    /// connection for open-loop echo [default: 100].
    #[arg(long)]
    rate: Option<f64>,
    /// Echo: send the next message when the previous one has come back (default: open loop).
    #[arg(long)]
    closed_loop: bool,
    /// Idle: each connection also subscribes to its own channel `idle.<i>`.
    #[arg(long)]
    subscribe: bool,
    /// Channels scenario: number of shared channels (each client also has `user.<i>`).
    #[arg(long, default_value_t = 100)]
    channels: u32,
    /// Measurement time in seconds, after the warm-up.
    #[arg(long, default_value_t = 10.0)]
    duration: f64,
    /// Warm-up in seconds: publishing (or idling) that is not measured.
    #[arg(long, default_value_t = 2.0)]
    warmup: f64,
    /// Hard wall-clock limit for the whole run, connecting included; when exceeded the tool
    /// reports what it has and exits with 1 [default: warmup + duration + 60].
    #[arg(long)]
    deadline: Option<f64>,
    /// Source addresses to bind, round-robin: one address, a range such as
    /// 127.0.0.1-127.0.0.16, or a comma-separated list of either.
    #[arg(long, default_value = "127.0.0.1")]
    sources: String,
    /// Worker processes to spread the connections over.
    #[arg(long, default_value_t = 1)]
    processes: u32,
    /// Padding bytes in each payload.
    #[arg(long, default_value_t = 64)]
    payload_bytes: usize,
    /// New connections per second while ramping up (over all processes).
    #[arg(long, default_value_t = 2000.0)]
    connect_rate: f64,
    /// Also write one JSON object with the parameters and results to this file.
    #[arg(long)]
    json: Option<PathBuf>,
    /// Name of the target (switchboard, node-ws, bun…) for the table and the JSON.
    #[arg(long)]
    label: Option<String>,
    /// Do not count the server's syscalls with `perf stat` (write syscalls then come from
    /// /proc/PID/io `syscw` only, which misses send/sendto/sendmsg).
    #[arg(long)]
    no_perf: bool,
    /// Internal: run as worker number N of --processes (set by the tool itself).
    #[arg(long, hide = true)]
    worker_index: Option<u32>,
    /// Internal: seconds a worker has left until the coordinator's deadline.
    #[arg(long, hide = true)]
    worker_deadline: Option<f64>,
}

/// A validated WebSocket target on loopback.
#[derive(Debug, Clone)]
pub(crate) struct Target {
    /// The URL as given (used for the upgrade request).
    pub(crate) url: String,
    /// Where to connect.
    pub(crate) addr: SocketAddr,
}

/// Everything one run needs, validated.
#[derive(Debug, Clone)]
pub(crate) struct Config {
    /// The scenario.
    pub(crate) scenario: Scenario,
    /// Main target (publishers; subscribers too, except in `backplane`).
    pub(crate) url: Target,
    /// Second target (`backplane` subscribers).
    pub(crate) url2: Option<Target>,
    /// Server process sampled from `/proc`.
    pub(crate) server_pid: Option<u32>,
    /// Second server process.
    pub(crate) server_pid2: Option<u32>,
    /// Connections (meaning depends on the scenario).
    pub(crate) connections: u32,
    /// Publishes per second, or per connection for open-loop echo.
    pub(crate) rate: f64,
    /// Closed-loop echo.
    pub(crate) closed_loop: bool,
    /// Idle connections subscribe to `idle.<i>`.
    pub(crate) subscribe: bool,
    /// Shared channels in the `channels` scenario.
    pub(crate) channels: u32,
    /// Measurement window.
    pub(crate) duration: Duration,
    /// Warm-up before the window.
    pub(crate) warmup: Duration,
    /// Hard limit for the whole run.
    pub(crate) deadline: Duration,
    /// Source addresses, used round-robin by connection index.
    pub(crate) sources: Vec<Ipv4Addr>,
    /// Worker processes.
    pub(crate) processes: u32,
    /// Padding bytes per payload.
    pub(crate) payload_bytes: usize,
    /// New connections per second over all processes.
    pub(crate) connect_rate: f64,
    /// Where to write the JSON result.
    pub(crate) json: Option<PathBuf>,
    /// Name of the target.
    pub(crate) label: Option<String>,
    /// Count the server's syscalls with `perf stat`.
    pub(crate) perf: bool,
    /// Set in worker processes: which slice of the connections this process owns.
    pub(crate) worker_index: Option<u32>,
}

/// An invalid command line: printed with the usage hint, exit code 2.
#[derive(Debug)]
pub(crate) struct CliError(String);

impl fmt::Display for CliError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

fn err(message: impl Into<String>) -> CliError {
    CliError(message.into())
}

impl Config {
    /// Parses and validates the command line.
    ///
    /// # Errors
    ///
    /// `Err(clap::Error)` for syntax errors and `--help`/`--version` (the caller lets clap
    /// print and exit); `Ok(Err(CliError))` for values that parse but make no sense.
    pub(crate) fn from_args(
        args: impl IntoIterator<Item = OsString>,
    ) -> Result<Result<Self, CliError>, clap::Error> {
        let args = Args::try_parse_from(args)?;
        Ok(Self::validate(args))
    }

    fn validate(a: Args) -> Result<Self, CliError> {
        let url = parse_target(&a.url, "--url")?;
        let url2 = a
            .url2
            .as_deref()
            .map(|u| parse_target(u, "--url2"))
            .transpose()?;
        if a.scenario == Scenario::Backplane && url2.is_none() {
            return Err(err(
                "backplane needs --url2 (the second instance, for subscribers)",
            ));
        }
        if a.closed_loop && a.scenario != Scenario::Echo {
            return Err(err("--closed-loop applies to the echo scenario only"));
        }
        if a.subscribe && a.scenario != Scenario::Idle {
            return Err(err("--subscribe applies to the idle scenario only"));
        }
        for (pid, name) in [
            (a.server_pid, "--server-pid"),
            (a.server_pid2, "--server-pid2"),
        ] {
            if let Some(pid) = pid
                && (pid == 0 || !std::path::Path::new(&format!("/proc/{pid}/stat")).exists())
            {
                return Err(err(format!("{name} {pid}: no such process")));
            }
        }
        let default_connections = if a.scenario == Scenario::Echo {
            50
        } else {
            1000
        };
        let connections = a.connections.unwrap_or(default_connections);
        if connections == 0 || connections > MAX_CONNECTIONS {
            return Err(err(format!("--connections must be 1..={MAX_CONNECTIONS}")));
        }
        let rate = a.rate.unwrap_or(100.0);
        check_range(rate, "--rate", MIN_RATE, MAX_RATE)?;
        check_range(a.connect_rate, "--connect-rate", MIN_RATE, MAX_RATE)?;
        check_range(a.duration, "--duration", 0.001, MAX_SECONDS)?;
        check_range(a.warmup, "--warmup", 0.0, MAX_SECONDS)?;
        let deadline = a
            .worker_deadline
            .or(a.deadline)
            .unwrap_or(a.duration + a.warmup + 60.0);
        check_range(deadline, "--deadline", 0.001, 3.0 * MAX_SECONDS)?;
        if a.channels == 0 || a.channels > MAX_CONNECTIONS {
            return Err(err(format!("--channels must be 1..={MAX_CONNECTIONS}")));
        }
        if a.processes == 0 || a.processes > MAX_PROCESSES {
            return Err(err(format!("--processes must be 1..={MAX_PROCESSES}")));
        }
        if a.payload_bytes > MAX_PAYLOAD_BYTES {
            return Err(err(format!(
                "--payload-bytes must be at most {MAX_PAYLOAD_BYTES}"
            )));
        }
        if let Some(w) = a.worker_index
            && w >= a.processes
        {
            return Err(err("--worker-index must be below --processes"));
        }
        let sources = parse_sources(&a.sources)?;
        let config = Self {
            scenario: a.scenario,
            url,
            url2,
            server_pid: a.server_pid,
            server_pid2: a.server_pid2,
            connections,
            rate,
            closed_loop: a.closed_loop,
            subscribe: a.subscribe,
            channels: a.channels,
            duration: Duration::from_secs_f64(a.duration),
            warmup: Duration::from_secs_f64(a.warmup),
            deadline: Duration::from_secs_f64(deadline),
            sources,
            processes: a.processes,
            payload_bytes: a.payload_bytes,
            connect_rate: a.connect_rate,
            json: a.json,
            label: a.label,
            perf: !a.no_perf,
            worker_index: a.worker_index,
        };
        config.check_capacity()?;
        Ok(config)
    }

    /// Refuses runs that would run out of file descriptors or ephemeral ports, which would
    /// otherwise show up as a pile of failed connections.
    fn check_capacity(&self) -> Result<(), CliError> {
        let total = u64::from(self.connections) + 2;
        let per_process = total.div_ceil(u64::from(self.processes));
        if let Some(limit) = fd_limit()
            && per_process + FD_RESERVE > limit
        {
            return Err(err(format!(
                "{} connections over {} process(es) need about {} file descriptors per \
                 process, but the limit (ulimit -n) is {limit}; raise --processes",
                self.connections,
                self.processes,
                per_process + FD_RESERVE
            )));
        }
        let ports = ephemeral_ports().unwrap_or(28_232);
        let per_source = total.div_ceil(self.sources.len() as u64);
        if per_source + PORT_RESERVE > ports {
            return Err(err(format!(
                "{} connections over {} source address(es) need {per_source} ephemeral ports \
                 per address, but only {ports} exist; add addresses with --sources",
                self.connections,
                self.sources.len()
            )));
        }
        Ok(())
    }

    /// Connection indices (`0..connections`) this process owns: all of them, or every
    /// `processes`-th one starting at the worker's index.
    pub(crate) fn local_indices(&self) -> impl Iterator<Item = u32> + use<> {
        let (index, step) = (self.worker_index.unwrap_or(0), self.processes);
        (0..self.connections).filter(move |i| i % step == index)
    }

    /// Whether this process runs the scenario's dedicated publisher connection.
    pub(crate) fn runs_publisher(&self) -> bool {
        matches!(
            self.scenario,
            Scenario::Fanout | Scenario::Channels | Scenario::Backplane
        ) && self.worker_index.unwrap_or(0) == 0
    }

    /// Source address for connection `index`.
    pub(crate) fn source(&self, index: u32) -> Ipv4Addr {
        self.sources[index as usize % self.sources.len()]
    }

    /// Number of channels messages are published to (channel indices `0..n`).
    pub(crate) fn channel_count(&self) -> u32 {
        match self.scenario {
            Scenario::Idle | Scenario::Echo => self.connections,
            Scenario::Fanout | Scenario::Backplane => 1,
            Scenario::Channels => self.channels.saturating_add(self.connections),
        }
    }

    /// The name of channel `index`.
    pub(crate) fn channel_name(&self, index: u32) -> String {
        match self.scenario {
            Scenario::Idle => format!("idle.{index}"),
            Scenario::Echo => format!("echo.{index}"),
            Scenario::Fanout => "fanout".to_owned(),
            Scenario::Backplane => "backplane".to_owned(),
            Scenario::Channels if index < self.channels => format!("chan.{index}"),
            Scenario::Channels => format!("user.{}", index - self.channels),
        }
    }

    /// Channel indices connection `index` subscribes to.
    pub(crate) fn subscriptions(&self, index: u32) -> Vec<u32> {
        match self.scenario {
            Scenario::Idle if self.subscribe => vec![index],
            Scenario::Idle => Vec::new(),
            Scenario::Echo => vec![index],
            Scenario::Fanout | Scenario::Backplane => vec![0],
            Scenario::Channels => vec![index % self.channels, self.channels + index],
        }
    }

    /// Where subscriber connections go.
    pub(crate) fn subscriber_target(&self) -> &Target {
        match (&self.url2, self.scenario) {
            (Some(url2), Scenario::Backplane) => url2,
            _ => &self.url,
        }
    }

    /// Highest sequence number a channel can carry in this run, plus one: anything at or
    /// above it did not come from this tool and is counted as unexpected.
    pub(crate) fn seq_limit(&self) -> u64 {
        let seconds = (self.warmup + self.duration).as_secs_f64() + 1.0;
        let per_channel_rate = match self.scenario {
            Scenario::Echo if self.closed_loop => 200_000.0,
            _ => self.rate,
        };
        ((per_channel_rate * seconds).ceil() as u64 + 16).min(1 << 24)
    }
}

fn check_range(value: f64, name: &str, min: f64, max: f64) -> Result<(), CliError> {
    if value.is_finite() && value >= min && value <= max {
        Ok(())
    } else {
        Err(err(format!(
            "{name} must be between {min} and {max}, got {value}"
        )))
    }
}

/// Parses a `ws://` URL whose host is a loopback address (or `localhost`).
pub(crate) fn parse_target(url: &str, flag: &str) -> Result<Target, CliError> {
    let uri: Uri = url
        .parse()
        .map_err(|e| err(format!("{flag} {url:?} is not a URL: {e}")))?;
    match uri.scheme_str() {
        Some("ws") => {}
        Some("wss") => {
            return Err(err(format!(
                "{flag}: wss:// is not supported by loadgen; benchmark over ws://"
            )));
        }
        _ => return Err(err(format!("{flag} {url:?} must start with ws://"))),
    }
    let host = uri
        .host()
        .ok_or_else(|| err(format!("{flag} {url:?} has no host")))?;
    let ip = if host.eq_ignore_ascii_case("localhost") {
        Ipv4Addr::LOCALHOST
    } else {
        host.parse::<Ipv4Addr>().map_err(|_| {
            err(format!(
                "{flag}: host {host:?} is not an IPv4 loopback address; loadgen only targets \
                 127.0.0.0/8"
            ))
        })?
    };
    if !ip.is_loopback() {
        return Err(err(format!(
            "{flag}: {ip} is not a loopback address; loadgen only targets 127.0.0.0/8"
        )));
    }
    let port = uri.port_u16().unwrap_or(80);
    if port == 0 {
        return Err(err(format!("{flag}: port 0 is not a target")));
    }
    Ok(Target {
        url: url.to_owned(),
        addr: SocketAddr::V4(SocketAddrV4::new(ip, port)),
    })
}

/// Parses `--sources`: `A`, `A-B` (inclusive range) or a comma-separated list of those,
/// every address in 127.0.0.0/8.
pub(crate) fn parse_sources(spec: &str) -> Result<Vec<Ipv4Addr>, CliError> {
    let mut out = Vec::new();
    for part in spec.split(',').map(str::trim) {
        let (first, last) = match part.split_once('-') {
            Some((a, b)) => (parse_source(a)?, parse_source(b)?),
            None => {
                let a = parse_source(part)?;
                (a, a)
            }
        };
        let (first, last) = (u32::from(first), u32::from(last));
        if last < first {
            return Err(err(format!("--sources: range {part:?} runs backwards")));
        }
        if (last - first) as usize + out.len() >= MAX_SOURCES {
            return Err(err(format!(
                "--sources names more than {MAX_SOURCES} addresses"
            )));
        }
        out.extend((first..=last).map(Ipv4Addr::from));
    }
    Ok(out)
}

fn parse_source(text: &str) -> Result<Ipv4Addr, CliError> {
    let ip: Ipv4Addr = text
        .trim()
        .parse()
        .map_err(|_| err(format!("--sources: {text:?} is not an IPv4 address")))?;
    if ip.is_loopback() {
        Ok(ip)
    } else {
        Err(err(format!(
            "--sources: {ip} is not a loopback address (127.0.0.0/8)"
        )))
    }
}

/// Raises the soft file-descriptor limit to the hard one and returns it.
fn fd_limit() -> Option<u64> {
    use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};
    let limit = getrlimit(Resource::Nofile);
    if limit.current != limit.maximum {
        let raised = Rlimit {
            current: limit.maximum,
            maximum: limit.maximum,
        };
        if setrlimit(Resource::Nofile, raised).is_ok() {
            return limit.maximum;
        }
    }
    limit.current
}

/// Size of the kernel's ephemeral port range.
fn ephemeral_ports() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range").ok()?;
    let mut it = text.split_whitespace().map(str::parse::<u64>);
    let (low, high) = (it.next()?.ok()?, it.next()?.ok()?);
    Some(high.saturating_sub(low) + 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sources_accept_ranges_and_lists() {
        let got = parse_sources("127.0.0.1-127.0.0.3,127.0.1.9").unwrap();
        let want: Vec<Ipv4Addr> = ["127.0.0.1", "127.0.0.2", "127.0.0.3", "127.0.1.9"]
            .iter()
            .map(|s| s.parse().unwrap())
            .collect();
        assert_eq!(got, want);
    }

    #[test]
    fn sources_outside_loopback_or_backwards_are_refused() {
        assert!(parse_sources("10.0.0.1").is_err());
        assert!(parse_sources("127.0.0.5-127.0.0.1").is_err());
        assert!(parse_sources("127.0.0.1-127.0.0.x").is_err());
        assert!(parse_sources("127.0.0.0-127.1.0.0").is_err());
    }

    #[test]
    fn targets_must_be_ws_on_loopback() {
        let t = parse_target("ws://127.0.0.1:5200/ws", "--url").unwrap();
        assert_eq!(t.addr, "127.0.0.1:5200".parse().unwrap());
        assert_eq!(
            parse_target("ws://localhost/ws", "--url").unwrap().addr,
            "127.0.0.1:80".parse().unwrap()
        );
        assert!(parse_target("ws://192.168.1.2:80/ws", "--url").is_err());
        assert!(parse_target("ws://example.com/ws", "--url").is_err());
        assert!(parse_target("wss://127.0.0.1/ws", "--url").is_err());
        assert!(parse_target("http://127.0.0.1/ws", "--url").is_err());
    }
}
