//! The opt-in soak: the reference server as a real process holding many WebSocket connections
//! with churn, its memory, threads and file descriptors sampled throughout. Not a test; run
//! it by hand or on a schedule:
//!
//! ```text
//! cargo run --release -p tests --bin soak -- --minutes 10 --connections 10000
//! ```
//!
//! It starts the server (by default this very binary re-run in server mode, which runs
//! `switchboard_server::cli::main` exactly like the `switchboard` binary and is always as
//! fresh as the soak itself; `--server-bin PATH` runs another build instead), opens the
//! connections from many `127.1.x.y` source addresses (`--per-address` each, under a per-IP
//! cap of twice that), subscribes a share of them to channels and lets a few publish once a
//! second. Every second a share of the connections (`--churn-percent`) is closed and
//! reopened. After `--warmup-secs` of churn the server's RSS and open descriptors are taken as
//! the baseline; at the end, once the last churn round has settled, they must not exceed it
//! by more than `--rss-tolerance-percent` (at least `--rss-tolerance-min-mib`) and
//! `--fd-tolerance` descriptors. The exit code is 1 when they do, when the server dies, or
//! when a connection fails to open or is dropped by the server; 2 for bad arguments.
//!
//! Both processes need a descriptor each per connection: check `ulimit -n`.
#![allow(
    clippy::print_stdout,
    reason = "a command-line tool: the report goes to stdout, progress to stderr"
)]

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::process::{ExitCode, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use clap::Parser;
use futures_util::{SinkExt as _, StreamExt as _};
use tokio::io::{AsyncBufReadExt as _, AsyncReadExt as _, AsyncWriteExt as _, BufReader};
use tokio::net::{TcpSocket, TcpStream};
use tokio::process::{Child, Command};
use tokio::sync::oneshot;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;

/// Set in the environment of the server process this binary starts of itself.
const SERVER_MODE: &str = "SWITCHBOARD_SOAK_RUN_SERVER";
/// Channels the subscribers and publishers spread over.
const CHANNELS: u64 = 100;
/// Every bounded wait of the soak (an upgrade, a close handshake, the server's startup).
const WAIT: Duration = Duration::from_secs(15);

/// Soak the reference server: many connections with churn; fail if RSS or file descriptors
/// grow.
#[derive(Debug, Parser)]
#[command(name = "soak", version, about)]
struct Args {
    /// How long to churn, after the connections are open (fractions allowed: 2.5).
    #[arg(long, default_value_t = 10.0)]
    minutes: f64,
    /// Connections held open.
    #[arg(long, default_value_t = 10_000)]
    connections: u64,
    /// Share of the connections closed and reopened every second.
    #[arg(long, default_value_t = 1.0)]
    churn_percent: f64,
    /// Share of the connections subscribed to a channel.
    #[arg(long, default_value_t = 20.0)]
    subscribe_percent: f64,
    /// Share of the connections publishing one message a second to a channel.
    #[arg(long, default_value_t = 1.0)]
    publish_percent: f64,
    /// Connections per source address (127.1.x.y); the server's per-IP cap is twice this.
    #[arg(long, default_value_t = 100)]
    per_address: u64,
    /// Churn before the baseline is taken, in seconds (part of --minutes).
    #[arg(long, default_value_t = 30)]
    warmup_secs: u64,
    /// Seconds between samples.
    #[arg(long, default_value_t = 5)]
    sample_secs: u64,
    /// Allowed RSS growth over the baseline, in percent...
    #[arg(long, default_value_t = 10.0)]
    rss_tolerance_percent: f64,
    /// ...but at least this many MiB.
    #[arg(long, default_value_t = 16)]
    rss_tolerance_min_mib: u64,
    /// Allowed growth of open file descriptors over the baseline.
    #[arg(long, default_value_t = 50)]
    fd_tolerance: u64,
    /// A server binary to run instead of this one in server mode (e.g.
    /// target/release/switchboard). It is configured through the environment.
    #[arg(long)]
    server_bin: Option<PathBuf>,
}

fn main() -> ExitCode {
    if std::env::var_os(SERVER_MODE).is_some() {
        return switchboard_server::cli::main();
    }
    let args = Args::parse();
    if let Err(problem) = check(&args) {
        eprintln!("soak: {problem}");
        return ExitCode::from(2);
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime");
    match runtime.block_on(soak(args)) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(err) => {
            eprintln!("soak: {err}");
            ExitCode::FAILURE
        }
    }
}

fn check(args: &Args) -> Result<(), String> {
    if args.connections == 0 || args.per_address == 0 || args.sample_secs == 0 {
        return Err("--connections, --per-address and --sample-secs must be positive".into());
    }
    if args.minutes.is_nan() || args.minutes * 60.0 <= args.warmup_secs as f64 {
        return Err("--minutes must be longer than --warmup-secs".into());
    }
    let addresses = args.connections.div_ceil(args.per_address);
    if addresses > 250 * 250 {
        return Err("too few connections per address: raise --per-address".into());
    }
    let limit = rustix::process::getrlimit(rustix::process::Resource::Nofile)
        .current
        .unwrap_or(u64::MAX);
    let needed = args.connections + args.connections / 20 + 64;
    if limit < needed {
        return Err(format!(
            "{} connections need about {needed} file descriptors in this process and in the \
             server, but `ulimit -n` is {limit}",
            args.connections
        ));
    }
    Ok(())
}

/// What a connection does besides staying open.
#[derive(Debug, Clone, Copy)]
enum Role {
    Idle,
    Subscriber(u64),
    Publisher(u64),
}

/// Counters shared by every connection task.
#[derive(Debug, Default)]
struct Counters {
    opened: AtomicU64,
    closed: AtomicU64,
    failed_opens: AtomicU64,
    dropped_by_server: AtomicU64,
    received: AtomicU64,
    published: AtomicU64,
}

/// A small xorshift generator: churn needs spread, not cryptographic randomness.
#[derive(Debug)]
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    fn percent(&mut self, p: f64) -> bool {
        (self.below(1_000_000) as f64) < p * 10_000.0
    }
}

/// The server process and what is sampled of it.
#[derive(Debug)]
struct Server {
    child: Child,
    addr: SocketAddr,
}

impl Server {
    async fn start(args: &Args) -> Result<Self, String> {
        let program = match &args.server_bin {
            Some(path) => path.clone(),
            None => std::env::current_exe().map_err(|e| format!("current_exe: {e}"))?,
        };
        let per_ip = (args.per_address * 2).to_string();
        let mut command = Command::new(&program);
        command
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env(SERVER_MODE, "1")
            .env("HOST", "127.0.0.1")
            .env("PORT", "0")
            .env("MAX_CONNECTIONS_PER_IP", &per_ip)
            .env("RUST_LOG", "warn,switchboard_server=info")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true);
        let mut child = command
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", program.display()))?;
        let mut lines = BufReader::new(child.stdout.take().expect("piped")).lines();
        let addr = tokio::time::timeout(WAIT, async {
            while let Ok(Some(line)) = lines.next_line().await {
                if let Some(rest) = line.split("listening on ws://").nth(1)
                    && let Some(addr) = rest.split('/').next().and_then(|a| a.parse().ok())
                {
                    return Some(addr);
                }
            }
            None
        })
        .await
        .ok()
        .flatten()
        .ok_or("the server did not say where it listens")?;
        // Keep its log flowing (a full pipe would stall the server); warnings are echoed.
        tokio::spawn(async move {
            while let Ok(Some(line)) = lines.next_line().await {
                if !line.contains(" INFO ") {
                    eprintln!("server: {line}");
                }
            }
        });
        Ok(Self { child, addr })
    }

    fn pid(&self) -> Option<u32> {
        self.child.id()
    }

    fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// `/health`'s `connections`.
    async fn connections(&self) -> Option<u64> {
        let answer = tokio::time::timeout(WAIT, async {
            let mut stream = TcpStream::connect(self.addr).await.ok()?;
            stream
                .write_all(b"GET /health HTTP/1.1\r\nHost: soak\r\nConnection: close\r\n\r\n")
                .await
                .ok()?;
            let mut raw = Vec::new();
            stream.read_to_end(&mut raw).await.ok()?;
            Some(raw)
        })
        .await
        .ok()
        .flatten()?;
        let text = String::from_utf8_lossy(&answer);
        let body = text.split("\r\n\r\n").nth(1)?;
        let json: serde_json::Value = serde_json::from_str(body).ok()?;
        json["connections"].as_u64()
    }
}

/// One row of the report.
#[derive(Debug, Clone)]
struct Sample {
    at: Duration,
    phase: &'static str,
    connections: Option<u64>,
    rss_kib: u64,
    threads: u64,
    fds: u64,
    opened: u64,
    closed: u64,
    failed: u64,
    dropped: u64,
    received: u64,
}

fn proc_field(pid: u32, field: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find_map(|l| l.strip_prefix(field))
                .and_then(|v| v.split_whitespace().next()?.parse().ok())
        })
        .unwrap_or(0)
}

fn open_fds(pid: u32) -> u64 {
    std::fs::read_dir(format!("/proc/{pid}/fd")).map_or(0, |dir| dir.count() as u64)
}

async fn sample(
    server: &Server,
    counters: &Counters,
    started: Instant,
    phase: &'static str,
) -> Sample {
    let pid = server.pid().unwrap_or(0);
    Sample {
        at: started.elapsed(),
        phase,
        connections: server.connections().await,
        rss_kib: proc_field(pid, "VmRSS:"),
        threads: proc_field(pid, "Threads:"),
        fds: open_fds(pid),
        opened: counters.opened.load(Ordering::Relaxed),
        closed: counters.closed.load(Ordering::Relaxed),
        failed: counters.failed_opens.load(Ordering::Relaxed),
        dropped: counters.dropped_by_server.load(Ordering::Relaxed),
        received: counters.received.load(Ordering::Relaxed),
    }
}

fn row(s: &Sample) -> String {
    format!(
        "{:>7.0} {:<8} {:>11} {:>9.1} {:>7} {:>7} {:>9} {:>9} {:>6} {:>7} {:>11}",
        s.at.as_secs_f64(),
        s.phase,
        s.connections.map_or("?".into(), |c| c.to_string()),
        s.rss_kib as f64 / 1024.0,
        s.threads,
        s.fds,
        s.opened,
        s.closed,
        s.failed,
        s.dropped,
        s.received
    )
}

const HEADER: &str = "  t (s) phase    connections  RSS MiB threads     fds    opened    closed failed dropped    received";

/// The source address of the `index`-th slot.
fn source_address(index: u64, per_address: u64) -> IpAddr {
    let n = index / per_address;
    IpAddr::V4(Ipv4Addr::new(
        127,
        1,
        u8::try_from(n / 250).expect("checked in `check`"),
        u8::try_from(1 + n % 250).expect("below 251"),
    ))
}

/// Opens one connection and runs it until told to close (or the server drops it).
async fn connect(
    server: SocketAddr,
    from: IpAddr,
    role: Role,
    counters: Arc<Counters>,
) -> Option<oneshot::Sender<()>> {
    let opened = tokio::time::timeout(WAIT, async {
        let socket = TcpSocket::new_v4().ok()?;
        socket.bind(SocketAddr::new(from, 0)).ok()?;
        let stream = socket.connect(server).await.ok()?;
        let _ = stream.set_nodelay(true);
        let mut config = WebSocketConfig::default();
        // Tungstenite's 128 KiB default read buffer times 10,000 would be the soak's own
        // memory problem.
        config.read_buffer_size = 4096;
        let url = format!("ws://{server}/ws");
        tokio_tungstenite::client_async_with_config(url, stream, Some(config))
            .await
            .ok()
    })
    .await
    .ok()
    .flatten();
    let Some((mut ws, _)) = opened else {
        counters.failed_opens.fetch_add(1, Ordering::Relaxed);
        return None;
    };
    counters.opened.fetch_add(1, Ordering::Relaxed);
    let (stop, mut stopped) = oneshot::channel();
    tokio::spawn(async move {
        if let Role::Subscriber(channel) = role {
            let frame = format!(r#"{{"type":"subscribe","channel":"soak:{channel}"}}"#);
            if ws.send(Message::text(frame)).await.is_err() {
                counters.dropped_by_server.fetch_add(1, Ordering::Relaxed);
                return;
            }
        }
        let mut publish = tokio::time::interval(Duration::from_secs(1));
        let mut sequence = 0u64;
        loop {
            tokio::select! {
                _ = &mut stopped => {
                    let _ = tokio::time::timeout(WAIT, async {
                        ws.close(None).await?;
                        // Read to the end of the close handshake.
                        while ws.next().await.is_some() {}
                        Ok::<_, tokio_tungstenite::tungstenite::Error>(())
                    })
                    .await;
                    counters.closed.fetch_add(1, Ordering::Relaxed);
                    return;
                }
                incoming = ws.next() => match incoming {
                    Some(Ok(Message::Text(_))) => {
                        counters.received.fetch_add(1, Ordering::Relaxed);
                    }
                    Some(Ok(Message::Close(_)) | Err(_)) | None => {
                        counters.dropped_by_server.fetch_add(1, Ordering::Relaxed);
                        return;
                    }
                    Some(Ok(_)) => {}
                },
                _ = publish.tick(), if matches!(role, Role::Publisher(_)) => {
                    let Role::Publisher(channel) = role else { continue };
                    sequence += 1;
                    let frame = format!(
                        r#"{{"type":"soak.tick","channel":"soak:{channel}","payload":{{"n":{sequence}}}}}"#
                    );
                    if ws.send(Message::text(frame)).await.is_err() {
                        counters.dropped_by_server.fetch_add(1, Ordering::Relaxed);
                        return;
                    }
                    counters.published.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
    });
    Some(stop)
}

fn role_for(rng: &mut Rng, args: &Args) -> Role {
    let channel = rng.below(CHANNELS);
    if rng.percent(args.publish_percent) {
        Role::Publisher(channel)
    } else if rng.percent(args.subscribe_percent) {
        Role::Subscriber(channel)
    } else {
        Role::Idle
    }
}

async fn soak(args: Args) -> Result<bool, String> {
    let mut server = Server::start(&args).await?;
    eprintln!(
        "soak: server pid {} on {}; opening {} connections",
        server.pid().unwrap_or(0),
        server.addr,
        args.connections
    );
    let counters = Arc::new(Counters::default());
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let started = Instant::now();
    let mut samples = vec![sample(&server, &counters, started, "start").await];

    // Open every slot, 256 at a time.
    let mut slots: Vec<Option<oneshot::Sender<()>>> = Vec::new();
    let plans: Vec<(IpAddr, Role)> = (0..args.connections)
        .map(|i| {
            (
                source_address(i, args.per_address),
                role_for(&mut rng, &args),
            )
        })
        .collect();
    let mut opening = futures_util::stream::iter(plans)
        .map(|(from, role)| connect(server.addr, from, role, Arc::clone(&counters)))
        .buffered(256);
    while let Some(slot) = opening.next().await {
        slots.push(slot);
    }
    drop(opening);
    let open = slots.iter().filter(|s| s.is_some()).count();
    eprintln!(
        "soak: {open} connections open after {:.1} s",
        started.elapsed().as_secs_f64()
    );
    samples.push(sample(&server, &counters, started, "open").await);
    eprintln!("{HEADER}");
    eprintln!("{}", row(samples.last().expect("a sample")));

    let churn_per_second =
        ((args.connections as f64 * args.churn_percent / 100.0).round() as u64).max(1);
    let run = Duration::from_secs_f64(args.minutes * 60.0);
    let warmup = Duration::from_secs(args.warmup_secs);
    let churn_started = Instant::now();
    let mut baseline: Option<Sample> = None;
    let mut next_sample = Instant::now() + Duration::from_secs(args.sample_secs);
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tick.tick().await;
    while churn_started.elapsed() < run {
        tick.tick().await;
        if !server.is_running() {
            eprintln!("soak: the server process exited");
            return Ok(false);
        }
        // One churn round: close a share of the slots and reopen them.
        let mut round: Vec<u64> = (0..churn_per_second)
            .map(|_| rng.below(slots.len() as u64))
            .collect();
        round.sort_unstable();
        round.dedup();
        let plans: Vec<(u64, Role)> = round
            .into_iter()
            .map(|index| (index, role_for(&mut rng, &args)))
            .collect();
        for &(index, _) in &plans {
            if let Some(stop) = slots[index as usize].take() {
                let _ = stop.send(());
            }
        }
        let reopened = futures_util::future::join_all(plans.iter().map(|&(index, role)| {
            connect(
                server.addr,
                source_address(index, args.per_address),
                role,
                Arc::clone(&counters),
            )
        }))
        .await;
        for ((index, _), slot) in plans.into_iter().zip(reopened) {
            slots[index as usize] = slot;
        }
        if baseline.is_none() && churn_started.elapsed() >= warmup {
            let s = sample(&server, &counters, started, "baseline").await;
            eprintln!("{}", row(&s));
            baseline = Some(s.clone());
            samples.push(s);
            next_sample = Instant::now() + Duration::from_secs(args.sample_secs);
        } else if Instant::now() >= next_sample {
            let s = sample(&server, &counters, started, "churn").await;
            eprintln!("{}", row(&s));
            samples.push(s);
            next_sample += Duration::from_secs(args.sample_secs);
        }
    }

    // Let the last round settle: closed sessions end and reopened ones are counted.
    let live = slots.iter().filter(|s| s.is_some()).count() as u64;
    let settled = tokio::time::timeout(Duration::from_secs(30), async {
        loop {
            if server.connections().await == Some(live) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    })
    .await
    .is_ok();
    let last = sample(&server, &counters, started, "final").await;
    eprintln!("{}", row(&last));
    samples.push(last.clone());

    println!("{HEADER}");
    for s in &samples {
        println!("{}", row(s));
    }
    let baseline = baseline.ok_or("the run ended before the warm-up did")?;
    let rss_allowed = ((baseline.rss_kib as f64 * args.rss_tolerance_percent / 100.0) as u64)
        .max(args.rss_tolerance_min_mib * 1024);
    let rss_growth = last.rss_kib.saturating_sub(baseline.rss_kib);
    let fd_growth = last.fds.saturating_sub(baseline.fds);
    let failed = counters.failed_opens.load(Ordering::Relaxed);
    let dropped = counters.dropped_by_server.load(Ordering::Relaxed);
    println!();
    println!(
        "connections: {live} held, {} opened, {} closed by the soak, {failed} failed to open, \
         {dropped} dropped by the server; {} messages published, {} received",
        counters.opened.load(Ordering::Relaxed),
        counters.closed.load(Ordering::Relaxed),
        counters.published.load(Ordering::Relaxed),
        counters.received.load(Ordering::Relaxed),
    );
    println!(
        "RSS: {:.1} MiB after warm-up, {:.1} MiB at the end: +{:.1} MiB (allowed +{:.1} MiB)",
        baseline.rss_kib as f64 / 1024.0,
        last.rss_kib as f64 / 1024.0,
        rss_growth as f64 / 1024.0,
        rss_allowed as f64 / 1024.0
    );
    println!(
        "file descriptors: {} after warm-up, {} at the end: +{fd_growth} (allowed +{}); threads {} → {}",
        baseline.fds, last.fds, args.fd_tolerance, baseline.threads, last.threads
    );
    let mut ok = true;
    for (failed_check, why) in [
        (
            !settled,
            "the server's connection count did not settle to the connections held",
        ),
        (rss_growth > rss_allowed, "RSS grew beyond the tolerance"),
        (
            fd_growth > args.fd_tolerance,
            "file descriptors grew beyond the tolerance",
        ),
        (failed > 0, "connections failed to open"),
        (dropped > 0, "the server dropped connections"),
    ] {
        if failed_check {
            println!("FAIL: {why}");
            ok = false;
        }
    }
    if ok {
        println!("PASS");
    }
    Ok(ok)
}
