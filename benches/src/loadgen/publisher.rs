//! The dedicated publisher of `fanout`, `channels` and `backplane`, on a thread of its own.
//!
//! Sharing the subscribers' single-threaded runtime, its timer would only fire after the
//! burst of deliveries each message causes had been read, and sends would leave milliseconds
//! late; on its own thread (same core), sleeping on a high-resolution timer, the OS
//! scheduler wakes it close to on time.

use futures_util::{FutureExt, SinkExt, StreamExt};
use tokio::sync::oneshot;
use tokio::time::{Instant, sleep_until, timeout_at};
use tokio_tungstenite::tungstenite::{Error as WsError, Message};

use super::cli::Config;
use super::connection::{Ws, open, parse_frame, ws_config, ws_reason};
use super::worker::{CONNECT_TIMEOUT, Plan, WorkerReport, account_send, scheduled, send_bench};

/// Handle to the publisher thread, whose connection is open.
#[derive(Debug)]
pub(crate) struct Publisher {
    plan: Option<oneshot::Sender<Plan>>,
    report: Option<oneshot::Receiver<WorkerReport>>,
    stop: Option<oneshot::Sender<()>>,
}

impl Publisher {
    /// Starts the thread and waits until the publisher's connection is open.
    ///
    /// # Errors
    ///
    /// Why the publisher could not connect (a failure reason such as `refused`).
    pub(crate) async fn start(cfg: Config, deadline: Instant) -> Result<Self, String> {
        let (opened_tx, opened_rx) = oneshot::channel();
        let (plan_tx, plan_rx) = oneshot::channel();
        let (report_tx, report_rx) = oneshot::channel();
        let (stop_tx, stop_rx) = oneshot::channel();
        std::thread::Builder::new()
            .name("loadgen-publisher".to_owned())
            .spawn(move || {
                let channels = Channels {
                    opened: opened_tx,
                    plan: plan_rx,
                    report: report_tx,
                    stop: stop_rx,
                };
                thread_main(&cfg, deadline, channels);
            })
            .map_err(|e| format!("cannot start its thread: {e}"))?;
        match timeout_at(deadline, opened_rx).await {
            Ok(Ok(Ok(()))) => Ok(Self {
                plan: Some(plan_tx),
                report: Some(report_rx),
                stop: Some(stop_tx),
            }),
            Ok(Ok(Err(reason))) => Err(reason),
            Ok(Err(_)) => Err("its thread ended".to_owned()),
            Err(_) => Err("timeout".to_owned()),
        }
    }

    /// Starts publishing on `plan`'s timeline.
    pub(crate) fn go(&mut self, plan: Plan) {
        if let Some(tx) = self.plan.take() {
            // A gone thread reports its own failure through `report`.
            let _ = tx.send(plan);
        }
    }

    /// Waits until publishing has ended (the end of the window) and returns what was sent.
    pub(crate) async fn report(&mut self, deadline: Instant) -> WorkerReport {
        let Some(rx) = self.report.take() else {
            return WorkerReport::default();
        };
        match timeout_at(deadline, rx).await {
            Ok(Ok(report)) => report,
            Ok(Err(_)) => WorkerReport {
                notes: vec!["the publisher thread ended without a report".to_owned()],
                ..WorkerReport::default()
            },
            Err(_) => WorkerReport {
                notes: vec!["the publisher gave no report by the deadline".to_owned()],
                deadline_exceeded: true,
                ..WorkerReport::default()
            },
        }
    }
}

impl Drop for Publisher {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            // The thread may be gone already; nothing to stop then.
            let _ = stop.send(());
        }
    }
}

/// The thread's ends of the channels.
struct Channels {
    opened: oneshot::Sender<Result<(), String>>,
    plan: oneshot::Receiver<Plan>,
    report: oneshot::Sender<WorkerReport>,
    stop: oneshot::Receiver<()>,
}

fn thread_main(cfg: &Config, deadline: Instant, ch: Channels) {
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            let _ = ch
                .opened
                .send(Err(format!("cannot start its runtime: {e}")));
            return;
        }
    };
    runtime.block_on(async move {
        let at = (Instant::now() + CONNECT_TIMEOUT).min(deadline);
        let opened = timeout_at(at, open(&cfg.url, cfg.source(0), &[], ws_config(true))).await;
        let mut ws = match opened {
            Ok(Ok(ws)) => ws,
            Ok(Err(reason)) => {
                let _ = ch.opened.send(Err(reason));
                return;
            }
            Err(_) => {
                let _ = ch.opened.send(Err("timeout".to_owned()));
                return;
            }
        };
        if ch.opened.send(Ok(())).is_err() {
            return;
        }
        let mut report = WorkerReport::default();
        let mut plan_rx = ch.plan;
        let plan = loop {
            tokio::select! {
                plan = &mut plan_rx => match plan {
                    Ok(plan) => break plan,
                    Err(_) => return,
                },
                item = ws.next() => if !read(&mut report, item) {
                    report.notes.push("the publisher was disconnected before the start".to_owned());
                    let _ = ch.report.send(report);
                    return;
                },
                () = sleep_until(deadline) => return,
            }
        };
        let alive = publish(cfg, &mut ws, &plan, &mut report).await;
        let _ = ch.report.send(report);
        if alive {
            // Stay connected while the subscribers drain.
            let mut scratch = WorkerReport::default();
            tokio::select! {
                _ = ch.stop => {}
                () = sleep_until(deadline) => {}
                () = async { while read(&mut scratch, ws.next().await) {} } => {}
            }
        }
    });
}

/// Handles a frame the server sent the publisher; `false` when the connection is gone.
fn read(report: &mut WorkerReport, item: Option<Result<Message, WsError>>) -> bool {
    match item {
        Some(Ok(Message::Text(text))) => {
            match parse_frame(text.as_str()) {
                Some(f) if f.kind == "error" => {
                    let code = f.code.as_deref().unwrap_or("unknown").to_owned();
                    *report.server_errors.entry(code).or_default() += 1;
                }
                Some(f) if matches!(&*f.kind, "ack" | "pong" | "welcome") => {}
                _ => report.unexpected += 1,
            }
            true
        }
        Some(Ok(Message::Close(_)) | Err(_)) | None => false,
        Some(Ok(_)) => true,
    }
}

/// `--rate` messages per second, round-robin over every channel, from `t0` until the end of
/// the window. `false` when the connection was lost.
///
/// Waits with `std::thread::sleep` (a high-resolution timer; tokio's wakes up to 1–2 ms
/// late) — this thread's runtime serves only this connection, whose incoming frames are
/// read between sends.
async fn publish(cfg: &Config, ws: &mut Ws, plan: &Plan, report: &mut WorkerReport) -> bool {
    let pad = "x".repeat(cfg.payload_bytes);
    let channels = cfg.channel_count();
    let mut seqs = vec![0u64; channels as usize];
    let window = (plan.m0_ns, plan.m1_ns);
    let mut k = 0u64;
    loop {
        let (at, _) = scheduled(plan, 0, k, cfg.rate);
        if at >= plan.m1 {
            return true;
        }
        while let Some(item) = ws.next().now_or_never() {
            if !read(report, item) {
                report
                    .notes
                    .push("the publisher was disconnected".to_owned());
                return false;
            }
        }
        let now = Instant::now();
        if at > now {
            std::thread::sleep(at - now);
        }
        let now = Instant::now();
        loop {
            let (at, sched_ns) = scheduled(plan, 0, k, cfg.rate);
            if at > now || at >= plan.m1 {
                break;
            }
            let c = (k % u64::from(channels)) as u32;
            let seq = seqs[c as usize];
            match send_bench(ws, cfg, &pad, (c, seq), sched_ns).await {
                Ok(sent) => account_send(report, c, sched_ns, sent, window),
                Err(e) => {
                    let note = format!("the publisher failed to send: {}", ws_reason(&e));
                    report.notes.push(note);
                    return false;
                }
            }
            seqs[c as usize] += 1;
            k += 1;
        }
        if let Err(e) = ws.flush().await {
            let note = format!("the publisher failed to send: {}", ws_reason(&e));
            report.notes.push(note);
            return false;
        }
    }
}
