//! Runs a scenario end to end: the idle baseline, the workers (in-process, or child
//! processes talking over stdin/stdout), the server samples around the window, the report.
//!
//! Worker protocol (one line each): the child prints `READY` once its connections are
//! settled, reads `GO <t0 in wall-clock ns>`, runs, and prints `RESULT <json>`.

use std::ffi::OsString;
use std::io::Write;
use std::process::{ExitCode, Stdio};
use std::time::Duration;

use futures_util::StreamExt;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, Lines};
use tokio::process::{Child, ChildStdin, ChildStdout, Command};
use tokio::time::{Instant, sleep, sleep_until, timeout, timeout_at};

use super::cli::{Config, Scenario};
use super::connection::{open, ws_config};
use super::procfs::{ProcSample, own_cpu, sample};
use super::report::{Observed, ServerReadings, Summary};
use super::syscalls::{PerfStat, SyscallCount};
use super::worker::{Plan, Worker, WorkerReport, wall_ns};

/// Time between the start signal and the start of the warm-up, so every worker has it.
const START_DELAY: Duration = Duration::from_millis(200);
/// How long the server may settle after the idle warm-up connection before the baseline.
const BASELINE_SETTLE: Duration = Duration::from_secs(1);
/// Extra time the coordinator gives workers past the deadline to hand in partial results.
const REPORT_GRACE: Duration = Duration::from_secs(5);

/// Runs the configured scenario and prints (and writes) the report.
pub(crate) async fn run(cfg: Config) -> ExitCode {
    let deadline = Instant::now() + cfg.deadline;
    let mut observed = Observed {
        window: cfg.duration,
        ..Observed::default()
    };
    let pids: Vec<u32> = [cfg.server_pid, cfg.server_pid2]
        .into_iter()
        .flatten()
        .collect();
    let baselines = if cfg.scenario == Scenario::Idle && !pids.is_empty() {
        baseline(&cfg, &pids, deadline, &mut observed).await
    } else {
        vec![None; pids.len()]
    };
    let (reports, samples) = if cfg.processes == 1 {
        run_local(&cfg, &pids, deadline).await
    } else {
        run_remote(&cfg, &pids, deadline, &mut observed).await
    };
    if let Some(w) = samples.window {
        observed.window = w;
    }
    observed.coordinator_cpu = samples.own_cpu;
    observed.deadline_exceeded |= samples.deadline_exceeded;
    observed.servers = pids
        .iter()
        .zip(baselines)
        .zip(samples.servers)
        .map(
            |((&pid, baseline), (start, end, syscalls))| ServerReadings {
                pid,
                baseline,
                start,
                end,
                syscalls,
            },
        )
        .collect();
    let summary = Summary::new(&cfg, &reports, &observed);
    let mut code = if summary.deadline_exceeded() || summary.measured_nothing() {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    };
    let mut stdout = std::io::stdout().lock();
    if let Err(e) = summary
        .write_table(&mut stdout)
        .and_then(|()| stdout.flush())
    {
        eprintln!("loadgen: writing the table: {e}");
        code = ExitCode::from(1);
    }
    if let Some(path) = &cfg.json {
        let written = serde_json::to_string_pretty(&summary)
            .map_err(std::io::Error::other)
            .and_then(|json| std::fs::write(path, json + "\n"));
        if let Err(e) = written {
            eprintln!("loadgen: writing {}: {e}", path.display());
            code = ExitCode::from(1);
        }
    }
    code
}

/// Idle: one warm-up connection (kept open until the end), a pause, then the servers' RSS.
async fn baseline(
    cfg: &Config,
    pids: &[u32],
    deadline: Instant,
    observed: &mut Observed,
) -> Vec<Option<Result<ProcSample, String>>> {
    let channels: Vec<String> = if cfg.subscribe {
        vec!["idle.warmup".to_owned()]
    } else {
        Vec::new()
    };
    let at = (Instant::now() + Duration::from_secs(10)).min(deadline);
    let opened = timeout_at(
        at,
        open(
            cfg.subscriber_target(),
            cfg.source(0),
            &channels,
            ws_config(false),
        ),
    )
    .await;
    match opened {
        Ok(Ok(mut ws)) => {
            // Keep it open (and answering pings) for the rest of the run.
            tokio::task::spawn_local(async move { while let Some(Ok(_)) = ws.next().await {} });
        }
        Ok(Err(reason)) => observed
            .warnings
            .push(format!("the warm-up connection failed: {reason}")),
        Err(_) => observed
            .warnings
            .push("the warm-up connection timed out".to_owned()),
    }
    let _ = timeout_at(deadline, sleep(BASELINE_SETTLE)).await;
    pids.iter().map(|&pid| Some(sample(pid))).collect()
}

/// Readings of one server: at the window's start, at its end, syscalls over it.
type Readings = (
    Result<ProcSample, String>,
    Result<ProcSample, String>,
    Option<Result<SyscallCount, String>>,
);

/// Server samples at the window's start and end, the coordinator's own CPU over it.
struct WindowSamples {
    servers: Vec<Readings>,
    own_cpu: Duration,
    /// Set when the deadline cut the window short: its actual length.
    window: Option<Duration>,
    deadline_exceeded: bool,
}

impl WindowSamples {
    fn missing(pids: &[u32]) -> Self {
        let gone = || Err("the run never reached its measurement window".to_owned());
        Self {
            servers: pids.iter().map(|_| (gone(), gone(), None)).collect(),
            own_cpu: Duration::ZERO,
            window: None,
            deadline_exceeded: true,
        }
    }
}

async fn sample_window(cfg: &Config, pids: &[u32], plan: Plan, deadline: Instant) -> WindowSamples {
    let mut exceeded = timeout_at(deadline, sleep_until(plan.m0)).await.is_err();
    let starts: Vec<_> = pids.iter().map(|&p| sample(p)).collect();
    let (c0, i0) = (own_cpu(), Instant::now());
    let perf: Vec<_> = pids
        .iter()
        .map(|&p| cfg.perf.then(|| PerfStat::start(p, cfg.duration)))
        .collect();
    exceeded |= timeout_at(deadline, sleep_until(plan.m1)).await.is_err();
    let ends: Vec<_> = pids.iter().map(|&p| sample(p)).collect();
    let own = own_cpu().saturating_sub(c0);
    let window = i0.elapsed();
    let mut syscalls = Vec::new();
    for p in perf {
        syscalls.push(match p {
            None => None,
            Some(Err(e)) => Some(Err(e)),
            Some(Ok(p)) => Some(p.finish(Instant::now() + Duration::from_secs(3)).await),
        });
    }
    WindowSamples {
        servers: starts
            .into_iter()
            .zip(ends)
            .zip(syscalls)
            .map(|((a, b), c)| (a, b, c))
            .collect(),
        own_cpu: own,
        window: exceeded.then_some(window),
        deadline_exceeded: exceeded,
    }
}

async fn run_local(
    cfg: &Config,
    pids: &[u32],
    deadline: Instant,
) -> (Vec<WorkerReport>, WindowSamples) {
    let worker = Worker::connect(cfg.clone(), deadline).await;
    let start_ns = wall_ns() + u64::try_from(START_DELAY.as_nanos()).unwrap_or(0);
    let plan = Plan::starting_at(start_ns, cfg);
    let (report, mut samples) =
        tokio::join!(worker.run(plan), sample_window(cfg, pids, plan, deadline));
    // The worker measured this very process.
    samples.own_cpu = Duration::ZERO;
    (vec![report], samples)
}

/// A child worker process and its pipes.
struct WorkerProcess {
    index: u32,
    child: Child,
    stdin: ChildStdin,
    lines: Lines<BufReader<ChildStdout>>,
    alive: bool,
}

async fn run_remote(
    cfg: &Config,
    pids: &[u32],
    deadline: Instant,
    observed: &mut Observed,
) -> (Vec<WorkerReport>, WindowSamples) {
    let exe = match std::env::current_exe() {
        Ok(exe) => exe,
        Err(e) => {
            observed
                .warnings
                .push(format!("cannot find this executable to start workers: {e}"));
            lose_all(cfg, observed);
            return (Vec::new(), WindowSamples::missing(pids));
        }
    };
    let args: Vec<OsString> = std::env::args_os().skip(1).collect();
    let remaining = deadline.saturating_duration_since(Instant::now());
    let mut children = Vec::new();
    for index in 0..cfg.processes {
        let spawned = Command::new(&exe)
            .args(&args)
            .arg("--worker-index")
            .arg(index.to_string())
            .arg("--worker-deadline")
            .arg(format!("{:.3}", remaining.as_secs_f64()))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn();
        match spawned {
            Ok(mut child) => {
                let (Some(stdin), Some(stdout)) = (child.stdin.take(), child.stdout.take()) else {
                    lose(cfg, observed, index, "has no pipes");
                    continue;
                };
                children.push(WorkerProcess {
                    index,
                    child,
                    stdin,
                    lines: BufReader::new(stdout).lines(),
                    alive: true,
                });
            }
            Err(e) => lose(cfg, observed, index, &format!("could not start: {e}")),
        }
    }
    for c in &mut children {
        match timeout_at(deadline, c.lines.next_line()).await {
            Ok(Ok(Some(line))) if line.trim() == "READY" => {}
            Ok(_) => {
                c.alive = false;
                lose(
                    cfg,
                    observed,
                    c.index,
                    "exited before its connections were up",
                );
            }
            Err(_) => {
                c.alive = false;
                observed.deadline_exceeded = true;
                lose(
                    cfg,
                    observed,
                    c.index,
                    "was still connecting at the deadline",
                );
            }
        }
    }
    let start_ns = wall_ns() + u64::try_from(START_DELAY.as_nanos()).unwrap_or(0);
    let plan = Plan::starting_at(start_ns, cfg);
    for c in children.iter_mut().filter(|c| c.alive) {
        let go = format!("GO {start_ns}\n");
        if c.stdin.write_all(go.as_bytes()).await.is_err() || c.stdin.flush().await.is_err() {
            c.alive = false;
            lose(cfg, observed, c.index, "did not take the start signal");
        }
    }
    let collect = futures_util::future::join_all(
        children
            .iter_mut()
            .filter(|c| c.alive)
            .map(|c| result_of(c, deadline + REPORT_GRACE)),
    );
    let (results, samples) = tokio::join!(collect, sample_window(cfg, pids, plan, deadline));
    let mut reports = Vec::new();
    for (index, result) in results {
        match result {
            Ok(report) => reports.push(report),
            Err(why) => lose(cfg, observed, index, &why),
        }
    }
    for mut c in children {
        if timeout(Duration::from_secs(2), c.child.wait())
            .await
            .is_err()
        {
            let _ = c.child.kill().await;
        }
    }
    (reports, samples)
}

/// Reads a child's `RESULT` line.
async fn result_of(c: &mut WorkerProcess, until: Instant) -> (u32, Result<WorkerReport, String>) {
    let result = loop {
        match timeout_at(until, c.lines.next_line()).await {
            Ok(Ok(Some(line))) => {
                if let Some(json) = line.strip_prefix("RESULT ") {
                    break serde_json::from_str(json)
                        .map_err(|e| format!("sent an unreadable result: {e}"));
                }
            }
            Ok(_) => break Err("exited without a result".to_owned()),
            Err(_) => break Err("gave no result by the deadline".to_owned()),
        }
    };
    (c.index, result)
}

/// Number of connections worker `index` owns.
fn share(cfg: &Config, index: u32) -> u64 {
    let mut c = cfg.clone();
    c.worker_index = Some(index);
    c.local_indices().count() as u64
}

fn lose(cfg: &Config, observed: &mut Observed, index: u32, why: &str) {
    observed.lost_workers += 1;
    observed.lost_connections += share(cfg, index);
    observed.warnings.push(format!("worker {index} {why}"));
}

fn lose_all(cfg: &Config, observed: &mut Observed) {
    observed.lost_workers += cfg.processes;
    observed.lost_connections += u64::from(cfg.connections);
}

/// A child process: connect, report `READY`, wait for `GO`, run, report `RESULT`.
pub(crate) async fn worker_main(cfg: Config) -> ExitCode {
    let deadline = Instant::now() + cfg.deadline;
    let worker = Worker::connect(cfg.clone(), deadline).await;
    if emit("READY").is_err() {
        return ExitCode::from(1);
    }
    let mut lines = BufReader::new(tokio::io::stdin()).lines();
    let report = match timeout_at(deadline, lines.next_line()).await {
        Ok(Ok(Some(line))) => match line
            .strip_prefix("GO ")
            .and_then(|t| t.trim().parse::<u64>().ok())
        {
            Some(t0_ns) => worker.run(Plan::starting_at(t0_ns, &cfg)).await,
            None => worker.abandon("the coordinator sent an unreadable start signal"),
        },
        _ => worker.abandon("no start signal from the coordinator before the deadline"),
    };
    let exceeded = report.deadline_exceeded;
    let line = match serde_json::to_string(&report) {
        Ok(json) => format!("RESULT {json}"),
        Err(e) => {
            eprintln!("loadgen worker: encoding the result: {e}");
            return ExitCode::from(1);
        }
    };
    if emit(&line).is_err() || exceeded {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}

/// Writes one protocol line to stdout and flushes it.
fn emit(line: &str) -> std::io::Result<()> {
    let mut out = std::io::stdout().lock();
    writeln!(out, "{line}")?;
    out.flush()
}
