//! Merging the processes' reports into one [`Summary`]: the JSON object and the table.

use std::collections::BTreeMap;
use std::io::{self, Write};
use std::time::Duration;

use serde::Serialize;

use super::cli::{Config, Scenario};
use super::histogram::Histogram;
use super::procfs::ProcSample;
use super::syscalls::SyscallCount;
use super::tracking::{ChannelReceipts, completion, loss};
use super::worker::WorkerReport;

/// A client using more than this share of its cores is reported as the bottleneck.
const CLIENT_BOUND_SHARE: f64 = 0.85;

/// Server readings around the measurement window, for one `--server-pid`.
#[derive(Debug, Clone)]
pub(crate) struct ServerReadings {
    /// The process.
    pub(crate) pid: u32,
    /// Before the connections (idle, after one warm-up connection).
    pub(crate) baseline: Option<Result<ProcSample, String>>,
    /// At the start of the window.
    pub(crate) start: Result<ProcSample, String>,
    /// At the end of the window.
    pub(crate) end: Result<ProcSample, String>,
    /// Syscalls over the window, from `perf stat` (`None` with `--no-perf`).
    pub(crate) syscalls: Option<Result<SyscallCount, String>>,
}

/// What the coordinator itself observed.
#[derive(Debug, Clone, Default)]
pub(crate) struct Observed {
    /// One entry per `--server-pid` / `--server-pid2` given.
    pub(crate) servers: Vec<ServerReadings>,
    /// The coordinator's own CPU over the window when it is a separate process.
    pub(crate) coordinator_cpu: Duration,
    /// Wall-clock length of the window as sampled.
    pub(crate) window: Duration,
    /// Workers that never reported (their connections count as failed).
    pub(crate) lost_workers: u32,
    /// Connections of the lost workers.
    pub(crate) lost_connections: u64,
    /// The coordinator hit the deadline.
    pub(crate) deadline_exceeded: bool,
    /// Coordinator-side warnings.
    pub(crate) warnings: Vec<String>,
}

/// Latency-like figures, in microseconds.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Percentiles {
    count: u64,
    p50: f64,
    p99: f64,
    p999: f64,
    max: f64,
    mean: f64,
}

impl Percentiles {
    fn of(h: &Histogram) -> Self {
        let us = |ns: u64| ns as f64 / 1_000.0;
        Self {
            count: h.count(),
            p50: us(h.quantile(0.5)),
            p99: us(h.quantile(0.99)),
            p999: us(h.quantile(0.999)),
            max: us(h.max()),
            mean: h.mean() / 1_000.0,
        }
    }
}

/// The run's parameters, as validated.
#[derive(Debug, Clone, Serialize)]
struct Params {
    url: String,
    url2: Option<String>,
    server_pid: Option<u32>,
    server_pid2: Option<u32>,
    connections: u32,
    rate: f64,
    closed_loop: bool,
    subscribe: bool,
    channels: u32,
    duration_s: f64,
    warmup_s: f64,
    deadline_s: f64,
    sources: Vec<String>,
    processes: u32,
    payload_bytes: usize,
    connect_rate: f64,
}

/// Connection outcomes.
#[derive(Debug, Clone, Serialize)]
struct Connections {
    requested: u64,
    established: u64,
    failed: u64,
    all_established: bool,
    failures: BTreeMap<String, u64>,
    dropped: u64,
    drops: BTreeMap<String, u64>,
    connect_s: f64,
}

/// Messages, deliveries and loss.
#[derive(Debug, Clone, Serialize)]
struct Messages {
    published: u64,
    published_in_window: u64,
    publish_rate_per_s: f64,
    late_sends: u64,
    send_lag_us: Percentiles,
    expected_deliveries: u64,
    deliveries: u64,
    deliveries_in_window: u64,
    deliveries_per_s: f64,
    missing: u64,
    duplicates: u64,
    subscriptions_with_loss: u64,
    unexpected_frames: u64,
    server_errors: BTreeMap<String, u64>,
}

/// Completion time per message (until its last subscriber had it).
#[derive(Debug, Clone, Serialize)]
struct CompletionSummary {
    messages: u64,
    incomplete: u64,
    p50: f64,
    p99: f64,
    max: f64,
}

/// The tool's own CPU.
#[derive(Debug, Clone, Serialize)]
struct Client {
    cpu_s: f64,
    cpu_util_pct: f64,
    cores: u32,
    processes: u32,
    busiest_process_pct: f64,
}

/// One server's figures over the window.
#[derive(Debug, Clone, Serialize)]
struct Server {
    pid: u32,
    rss_before_bytes: Option<u64>,
    rss_bytes: Option<u64>,
    rss_end_bytes: Option<u64>,
    rss_per_connection_bytes: Option<f64>,
    cpu_s: Option<f64>,
    cpu_util_pct: Option<f64>,
    cpu_us_per_delivery: Option<f64>,
    /// The user-space part of `cpu_us_per_delivery`.
    cpu_user_us_per_delivery: Option<f64>,
    /// The kernel's part of `cpu_us_per_delivery`.
    cpu_system_us_per_delivery: Option<f64>,
    write_syscalls: Option<u64>,
    write_syscalls_per_delivery: Option<f64>,
    syscalls: Option<u64>,
    syscalls_per_delivery: Option<f64>,
    syscw: Option<u64>,
    syscw_per_delivery: Option<f64>,
    error: Option<String>,
    syscalls_error: Option<String>,
}

/// Everything one run reports: written as JSON and printed as a table.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Summary {
    tool: &'static str,
    label: Option<String>,
    scenario: Scenario,
    params: Params,
    connections: Connections,
    window_s: f64,
    messages: Option<Messages>,
    latency_us: Option<Percentiles>,
    completion_us: Option<CompletionSummary>,
    client: Client,
    client_bound: bool,
    server: Option<Server>,
    server2: Option<Server>,
    deadline_exceeded: bool,
    warnings: Vec<String>,
}

fn add_counts(into: &mut BTreeMap<String, u64>, from: &BTreeMap<String, u64>) {
    for (k, v) in from {
        *into.entry(k.clone()).or_default() += v;
    }
}

fn dense(map: &BTreeMap<u32, u64>, into: &mut Vec<u64>) {
    for (&c, &n) in map {
        let c = c as usize;
        if into.len() <= c {
            into.resize(c + 1, 0);
        }
        into[c] += n;
    }
}

impl Summary {
    /// Merges the workers' reports with the coordinator's observations.
    pub(crate) fn new(cfg: &Config, reports: &[WorkerReport], observed: &Observed) -> Self {
        let mut warnings = observed.warnings.clone();
        let window_s = observed.window.as_secs_f64().max(1e-9);

        let mut failures = BTreeMap::new();
        let mut drops = BTreeMap::new();
        let mut server_errors = BTreeMap::new();
        let mut latency = Histogram::default();
        let mut send_lag = Histogram::default();
        let (mut published, mut before) = (Vec::new(), Vec::new());
        let mut receipts: Vec<ChannelReceipts> = Vec::new();
        let mut established = 0;
        let (mut deliveries, mut in_window, mut duplicates, mut unexpected, mut late) =
            (0, 0, 0, 0, 0);
        let mut connect_s: f64 = 0.0;
        let mut cpu_ns: u64 = 0;
        let mut busiest: f64 = 0.0;
        let mut deadline_exceeded = observed.deadline_exceeded;
        for r in reports {
            established += r.established;
            add_counts(&mut failures, &r.failures);
            add_counts(&mut drops, &r.drops);
            add_counts(&mut server_errors, &r.server_errors);
            latency.merge(&r.latency);
            send_lag.merge(&r.send_lag);
            dense(&r.published, &mut published);
            dense(&r.published_before_window, &mut before);
            for (&c, ch) in &r.channels {
                let c = c as usize;
                if receipts.len() <= c {
                    receipts.resize(c + 1, ChannelReceipts::default());
                }
                receipts[c].merge(ch);
            }
            deliveries += r.deliveries;
            in_window += r.deliveries_in_window;
            duplicates += r.duplicates;
            unexpected += r.unexpected;
            late += r.late_sends;
            connect_s = connect_s.max(r.connect_s);
            cpu_ns += r.cpu_ns;
            busiest = busiest.max(r.cpu_ns as f64 / 1e9 / window_s * 100.0);
            deadline_exceeded |= r.deadline_exceeded;
            warnings.extend(r.notes.iter().cloned());
        }
        if observed.lost_connections > 0 {
            failures.insert("worker_lost".to_owned(), observed.lost_connections);
        }
        let requested = u64::from(cfg.connections);
        let failed = requested.saturating_sub(established);
        let dropped: u64 = drops.values().sum();
        if established < requested {
            warnings.push(format!(
                "only {established} of {requested} connections were established ({})",
                fmt_counts(&failures)
            ));
        }
        if dropped > 0 {
            warnings.push(format!(
                "{dropped} established connections were lost during the run ({})",
                fmt_counts(&drops)
            ));
        }
        if observed.lost_workers > 0 {
            warnings.push(format!(
                "{} worker process(es) never reported",
                observed.lost_workers
            ));
        }

        let messages = cfg.scenario.publishes().then(|| {
            let total_published: u64 = published.iter().sum();
            let in_window_published = total_published.saturating_sub(before.iter().sum::<u64>());
            let l = loss(&receipts, &published);
            if late > 0 {
                warnings.push(format!(
                    "the tool fell behind its send schedule: {late} sends more than 2 ms late \
                     (max {}); the delay beyond 2 ms is included in latency",
                    fmt_us(send_lag.max() as f64 / 1e3)
                ));
            }
            if total_published == 0 {
                warnings.push("nothing was published".to_owned());
            }
            if !server_errors.is_empty() {
                warnings.push(format!(
                    "the server answered with errors: {}",
                    fmt_counts(&server_errors)
                ));
            }
            if unexpected > 0 {
                warnings.push(format!("{unexpected} unexpected frames were received"));
            }
            Messages {
                published: total_published,
                published_in_window: in_window_published,
                publish_rate_per_s: in_window_published as f64 / window_s,
                late_sends: late,
                send_lag_us: Percentiles::of(&send_lag),
                expected_deliveries: l.expected,
                deliveries,
                deliveries_in_window: in_window,
                deliveries_per_s: in_window as f64 / window_s,
                missing: l.missing,
                duplicates,
                subscriptions_with_loss: l.subscriptions_with_loss,
                unexpected_frames: unexpected,
                server_errors,
            }
        });
        let latency_us = cfg.scenario.publishes().then(|| Percentiles::of(&latency));
        let completion_us = cfg.scenario.tracks_completion().then(|| {
            let c = completion(&receipts, &published, &before);
            CompletionSummary {
                messages: c.times.count(),
                incomplete: c.incomplete,
                p50: c.times.quantile(0.5) as f64 / 1e3,
                p99: c.times.quantile(0.99) as f64 / 1e3,
                max: c.times.max() as f64 / 1e3,
            }
        });

        let cpu_s = cpu_ns as f64 / 1e9 + observed.coordinator_cpu.as_secs_f64();
        let util = cpu_s / window_s * 100.0;
        let available = std::thread::available_parallelism().map_or(1, |n| n.get() as u32);
        let cores = available.min(cfg.processes).max(1);
        let client_bound = util > CLIENT_BOUND_SHARE * 100.0 * f64::from(cores)
            || busiest > CLIENT_BOUND_SHARE * 100.0;
        if client_bound {
            warnings.push(format!(
                "CLIENT-BOUND: the tool used {util:.0}% of one core ({cores} core(s) usable); \
                 figures may reflect the load generator rather than the server"
            ));
        }
        if deadline_exceeded {
            warnings.push("the deadline was exceeded; figures are partial".to_owned());
        }

        let delivered = (cfg.scenario.publishes() && in_window > 0).then_some(in_window);
        let server_of = |pid: Option<u32>| {
            let r = observed.servers.iter().find(|r| Some(r.pid) == pid)?;
            Some(server(r, established, delivered, window_s))
        };
        let (server1, server2) = (server_of(cfg.server_pid), server_of(cfg.server_pid2));

        Self {
            tool: "loadgen",
            label: cfg.label.clone(),
            scenario: cfg.scenario,
            params: Params {
                url: cfg.url.url.clone(),
                url2: cfg.url2.as_ref().map(|t| t.url.clone()),
                server_pid: cfg.server_pid,
                server_pid2: cfg.server_pid2,
                connections: cfg.connections,
                rate: cfg.rate,
                closed_loop: cfg.closed_loop,
                subscribe: cfg.subscribe,
                channels: cfg.channels,
                duration_s: cfg.duration.as_secs_f64(),
                warmup_s: cfg.warmup.as_secs_f64(),
                deadline_s: cfg.deadline.as_secs_f64(),
                sources: cfg.sources.iter().map(ToString::to_string).collect(),
                processes: cfg.processes,
                payload_bytes: cfg.payload_bytes,
                connect_rate: cfg.connect_rate,
            },
            connections: Connections {
                requested,
                established,
                failed,
                all_established: established == requested,
                failures,
                dropped,
                drops,
                connect_s,
            },
            window_s,
            messages,
            latency_us,
            completion_us,
            client: Client {
                cpu_s,
                cpu_util_pct: util,
                cores,
                processes: cfg.processes,
                busiest_process_pct: busiest,
            },
            client_bound,
            server: server1,
            server2,
            deadline_exceeded,
            warnings,
        }
    }

    /// Whether the run finished within its deadline.
    pub(crate) fn deadline_exceeded(&self) -> bool {
        self.deadline_exceeded
    }

    /// Whether nothing was measured: no connection, or a publishing scenario that
    /// published nothing.
    pub(crate) fn measured_nothing(&self) -> bool {
        self.connections.established == 0
            || self.messages.as_ref().is_some_and(|m| m.published == 0)
    }

    /// Writes the human-readable table.
    ///
    /// # Errors
    ///
    /// When `out` fails.
    pub(crate) fn write_table(&self, out: &mut impl Write) -> io::Result<()> {
        let p = &self.params;
        let label = self.label.as_deref().unwrap_or("target");
        writeln!(
            out,
            "loadgen {} · {label} · {}",
            self.scenario.name(),
            p.url
        )?;
        if let Some(url2) = &p.url2 {
            writeln!(out, "  subscribers on     {url2}")?;
        }
        let c = &self.connections;
        let mut line = format!(
            "{} requested, {} established, {} failed",
            c.requested, c.established, c.failed
        );
        if !c.failures.is_empty() {
            line += &format!(" ({})", fmt_counts(&c.failures));
        }
        if c.dropped > 0 {
            line += &format!(", {} lost later ({})", c.dropped, fmt_counts(&c.drops));
        }
        row(out, "connections", &line)?;
        row(
            out,
            "ramp-up",
            &format!(
                "{:.1} s at {}/s over {} process(es), {} source address(es)",
                c.connect_s,
                p.connect_rate,
                p.processes,
                p.sources.len()
            ),
        )?;
        row(
            out,
            "window",
            &format!("{:.1} s after {:.1} s warm-up", self.window_s, p.warmup_s),
        )?;
        if let Some(m) = &self.messages {
            let rate = if self.scenario == Scenario::Echo && p.closed_loop {
                "closed loop".to_owned()
            } else if self.scenario == Scenario::Echo {
                format!("open loop, {}/s per connection", p.rate)
            } else {
                format!("target {}/s", p.rate)
            };
            row(
                out,
                "published",
                &format!(
                    "{} in window ({:.1}/s, {rate}), {} total",
                    m.published_in_window, m.publish_rate_per_s, m.published
                ),
            )?;
            row(
                out,
                "send lag",
                &format!(
                    "p50 {}  p99 {}  max {}  ({} sends > 2 ms late)",
                    fmt_us(m.send_lag_us.p50),
                    fmt_us(m.send_lag_us.p99),
                    fmt_us(m.send_lag_us.max),
                    m.late_sends
                ),
            )?;
            row(
                out,
                "deliveries",
                &format!(
                    "{} in window ({:.0}/s), {} total of {} expected",
                    m.deliveries_in_window, m.deliveries_per_s, m.deliveries, m.expected_deliveries
                ),
            )?;
            row(
                out,
                "loss",
                &format!(
                    "{} missing ({} subscriptions affected), {} duplicates, {} unexpected frames",
                    m.missing, m.subscriptions_with_loss, m.duplicates, m.unexpected_frames
                ),
            )?;
            if !m.server_errors.is_empty() {
                row(out, "server errors", &fmt_counts(&m.server_errors))?;
            }
        }
        if let Some(l) = &self.latency_us {
            row(
                out,
                "latency",
                &format!(
                    "p50 {}  p99 {}  p99.9 {}  max {}  mean {}  (n={})",
                    fmt_us(l.p50),
                    fmt_us(l.p99),
                    fmt_us(l.p999),
                    fmt_us(l.max),
                    fmt_us(l.mean),
                    l.count
                ),
            )?;
        }
        if let Some(cm) = &self.completion_us {
            row(
                out,
                "completion",
                &format!(
                    "p50 {}  p99 {}  max {}  ({} messages complete, {} incomplete)",
                    fmt_us(cm.p50),
                    fmt_us(cm.p99),
                    fmt_us(cm.max),
                    cm.messages,
                    cm.incomplete
                ),
            )?;
        }
        let cl = &self.client;
        row(
            out,
            "client CPU",
            &format!(
                "{:.2} s = {:.0}% of one core ({} usable core(s), busiest process {:.0}%){}",
                cl.cpu_s,
                cl.cpu_util_pct,
                cl.cores,
                cl.busiest_process_pct,
                if self.client_bound {
                    "  CLIENT-BOUND"
                } else {
                    ""
                }
            ),
        )?;
        for (name, s) in [("server", &self.server), ("server 2", &self.server2)] {
            if let Some(s) = s {
                write_server(out, name, s)?;
            }
        }
        for w in &self.warnings {
            writeln!(out, "  WARNING: {w}")?;
        }
        Ok(())
    }
}

fn server(r: &ServerReadings, established: u64, delivered: Option<u64>, window_s: f64) -> Server {
    let (start, end) = (r.start.as_ref().ok(), r.end.as_ref().ok());
    let baseline = r.baseline.as_ref().and_then(|b| b.as_ref().ok());
    let error = [r.baseline.as_ref(), Some(&r.start), Some(&r.end)]
        .into_iter()
        .flatten()
        .find_map(|x| x.as_ref().err().cloned());
    let cpu_s = start
        .zip(end)
        .map(|(a, b)| b.cpu.saturating_sub(a.cpu).as_secs_f64());
    let user_s = start
        .zip(end)
        .map(|(a, b)| b.user.saturating_sub(a.user).as_secs_f64());
    let per_delivery = |s: Option<f64>| s.zip(delivered).map(|(c, d)| c * 1e6 / d as f64);
    let syscw = start
        .zip(end)
        .and_then(|(a, b)| Some(b.syscw?.saturating_sub(a.syscw?)));
    let counted = r.syscalls.as_ref().and_then(|s| s.as_ref().ok()).copied();
    let per_conn = baseline.zip(start).and_then(|(b, a)| {
        (established > 0).then(|| (a.rss_bytes as f64 - b.rss_bytes as f64) / established as f64)
    });
    Server {
        pid: r.pid,
        rss_before_bytes: baseline.map(|b| b.rss_bytes),
        rss_bytes: start.map(|s| s.rss_bytes),
        rss_end_bytes: end.map(|s| s.rss_bytes),
        rss_per_connection_bytes: per_conn,
        cpu_s,
        cpu_util_pct: cpu_s.map(|c| c / window_s * 100.0),
        cpu_us_per_delivery: per_delivery(cpu_s),
        cpu_user_us_per_delivery: per_delivery(user_s),
        cpu_system_us_per_delivery: per_delivery(cpu_s.zip(user_s).map(|(c, u)| (c - u).max(0.0))),
        write_syscalls: counted.map(|c| c.writes),
        write_syscalls_per_delivery: counted
            .zip(delivered)
            .map(|(c, d)| c.writes as f64 / d as f64),
        syscalls: counted.map(|c| c.total),
        syscalls_per_delivery: counted
            .zip(delivered)
            .map(|(c, d)| c.total as f64 / d as f64),
        syscw,
        syscw_per_delivery: syscw.zip(delivered).map(|(w, d)| w as f64 / d as f64),
        error,
        syscalls_error: r.syscalls.as_ref().and_then(|s| s.as_ref().err().cloned()),
    }
}

fn write_server(out: &mut impl Write, name: &str, s: &Server) -> io::Result<()> {
    let mb = |b: u64| format!("{:.1} MB", b as f64 / 1e6);
    let mut memory = format!("pid {}", s.pid);
    if let Some(b) = s.rss_before_bytes {
        memory += &format!(", RSS before {}", mb(b));
    }
    if let Some(b) = s.rss_bytes {
        memory += &format!(", at window start {}", mb(b));
    }
    if let Some(b) = s.rss_end_bytes {
        memory += &format!(", at end {}", mb(b));
    }
    if let Some(per) = s.rss_per_connection_bytes {
        memory += &format!(" → {per:.0} B per connection");
    }
    row(out, name, &memory)?;
    if let Some(cpu) = s.cpu_s {
        let mut line = format!(
            "CPU {cpu:.2} s = {:.0}% of one core",
            s.cpu_util_pct.unwrap_or(0.0)
        );
        if let Some(per) = s.cpu_us_per_delivery {
            line += &format!(", {per:.2} µs per delivery");
            if let Some((user, system)) =
                s.cpu_user_us_per_delivery.zip(s.cpu_system_us_per_delivery)
            {
                line += &format!(" ({user:.2} in user space, {system:.2} in the kernel)");
            }
        }
        row(out, "", &line)?;
    }
    let mut calls = Vec::new();
    if let Some(w) = s.write_syscalls {
        let mut part = format!("{w} write/send syscalls");
        if let Some(per) = s.write_syscalls_per_delivery {
            part += &format!(" ({per:.3} per delivery)");
        }
        calls.push(part);
    }
    if let Some(t) = s.syscalls {
        let mut part = format!("{t} syscalls in all");
        if let Some(per) = s.syscalls_per_delivery {
            part += &format!(" ({per:.3} per delivery)");
        }
        calls.push(part);
    }
    if let Some(w) = s.syscw {
        calls.push(format!("/proc io syscw {w}"));
    }
    if !calls.is_empty() {
        row(out, "", &calls.join(", "))?;
    }
    if let Some(e) = &s.syscalls_error {
        row(out, "", &format!("syscalls not counted: {e}"))?;
    }
    if let Some(e) = &s.error {
        row(out, "", &format!("could not read: {e}"))?;
    }
    Ok(())
}

fn row(out: &mut impl Write, name: &str, value: &str) -> io::Result<()> {
    writeln!(out, "  {name:<14} {value}")
}

/// `a 3, b 1` in key order.
fn fmt_counts(map: &BTreeMap<String, u64>) -> String {
    map.iter()
        .map(|(k, v)| format!("{k} {v}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Microseconds as `812 µs` or `3.41 ms`.
fn fmt_us(us: f64) -> String {
    if us < 1_000.0 {
        format!("{us:.0} µs")
    } else {
        format!("{:.2} ms", us / 1_000.0)
    }
}
