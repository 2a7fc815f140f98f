//! The connections of one process: ramp-up, the scenario's traffic, and the per-process
//! report. A run uses one worker in-process, or one per `--processes` child.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use futures_util::{SinkExt, StreamExt};
use serde::{Deserialize, Serialize};
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore, watch};
use tokio::time::{Instant, sleep, sleep_until, timeout_at};
use tokio_tungstenite::tungstenite::{Error as WsError, Message};

use super::cli::{Config, Scenario};
use super::connection::{
    BenchPayload, Ws, bench_frame, open, parse_delivery_fast, parse_frame, ws_config, ws_reason,
};
use super::histogram::Histogram;
use super::procfs::own_cpu;
use super::publisher::Publisher;
use super::tracking::{ChannelReceipts, MessageStat, SeqSet};

/// Connection attempts in flight at once (TCP connect + upgrade + subscribe).
const MAX_PENDING_CONNECTS: usize = 256;
/// Longest a single connection attempt (connect, upgrade, welcome, subscriptions) may take.
pub(crate) const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Slack of the tool's timers (tokio's wake up to ~2 ms late: millisecond ticks, rounded-up
/// epoll timeouts): a send up to this late is timestamped when it leaves, a later one keeps
/// `schedule + TIMER_SLACK` and counts as late (see [`send_bench`]).
const TIMER_SLACK_NS: u64 = 2_000_000;
/// Closed-loop echo: a message not back after this long is given up (it shows as loss).
const ECHO_GIVE_UP: Duration = Duration::from_secs(1);
/// After the window, deliveries are awaited until none arrived for this long…
const DRAIN_QUIET: Duration = Duration::from_secs(1);
/// …or at most this long.
const DRAIN_MAX: Duration = Duration::from_secs(5);

/// Nanoseconds since the Unix epoch, from the wall clock (latency spans processes).
pub(crate) fn wall_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
}

/// The run's timeline: publishing (or idling) starts at `t0`, the measurement window is
/// `m0..m1`. Wall-clock nanoseconds for timestamps, `Instant`s for timers.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Plan {
    /// Start of the warm-up.
    pub(crate) t0: Instant,
    /// `t0` in wall-clock nanoseconds.
    pub(crate) t0_ns: u64,
    /// Start of the measurement window.
    pub(crate) m0: Instant,
    /// `m0` in wall-clock nanoseconds.
    pub(crate) m0_ns: u64,
    /// End of the measurement window.
    pub(crate) m1: Instant,
    /// `m1` in wall-clock nanoseconds.
    pub(crate) m1_ns: u64,
}

impl Plan {
    /// The timeline for a warm-up starting at wall-clock `t0_ns` (a past time means now).
    pub(crate) fn starting_at(t0_ns: u64, cfg: &Config) -> Self {
        let (now, now_ns) = (Instant::now(), wall_ns());
        let t0_ns = t0_ns.max(now_ns);
        let t0 = now + Duration::from_nanos(t0_ns - now_ns);
        let m0 = t0 + cfg.warmup;
        let m1 = m0 + cfg.duration;
        let ns = |d: Duration| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX);
        Self {
            t0,
            t0_ns,
            m0,
            m0_ns: t0_ns + ns(cfg.warmup),
            m1,
            m1_ns: t0_ns + ns(cfg.warmup + cfg.duration),
        }
    }
}

/// What one process measured; processes' reports are merged by the coordinator.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub(crate) struct WorkerReport {
    /// Connections this process was asked to open.
    pub(crate) requested: u64,
    /// Connections established (welcome received, every subscription confirmed).
    pub(crate) established: u64,
    /// Connections that were never established, by reason.
    pub(crate) failures: BTreeMap<String, u64>,
    /// Established connections lost before the end, by reason.
    pub(crate) drops: BTreeMap<String, u64>,
    /// Seconds the ramp-up took until every attempt had succeeded or failed.
    pub(crate) connect_s: f64,
    /// Messages published per channel.
    pub(crate) published: BTreeMap<u32, u64>,
    /// Messages published per channel before the window (during warm-up).
    pub(crate) published_before_window: BTreeMap<u32, u64>,
    /// How late each window send left compared with its schedule (ns).
    pub(crate) send_lag: Histogram,
    /// Window sends that left more than the timer slack (2 ms) late.
    pub(crate) late_sends: u64,
    /// Per-delivery latency (ns) of messages sent in the window.
    pub(crate) latency: Histogram,
    /// Deliveries (first copies only).
    pub(crate) deliveries: u64,
    /// Deliveries received inside the window.
    pub(crate) deliveries_in_window: u64,
    /// Copies of a message a subscription had already received.
    pub(crate) duplicates: u64,
    /// Frames that were neither ours nor a known system frame.
    pub(crate) unexpected: u64,
    /// `error` frames from the server, by code.
    pub(crate) server_errors: BTreeMap<String, u64>,
    /// Per channel: subscriptions, distinct messages received, completion data.
    pub(crate) channels: BTreeMap<u32, ChannelReceipts>,
    /// This process's CPU time over the window (ns).
    pub(crate) cpu_ns: u64,
    /// The deadline passed before this process finished.
    pub(crate) deadline_exceeded: bool,
    /// Anything else worth telling.
    pub(crate) notes: Vec<String>,
}

impl WorkerReport {
    /// Takes in the publisher thread's report: what it sent and what the server told it.
    fn absorb(&mut self, p: Self) {
        for (c, n) in p.published {
            *self.published.entry(c).or_default() += n;
        }
        for (c, n) in p.published_before_window {
            *self.published_before_window.entry(c).or_default() += n;
        }
        self.send_lag.merge(&p.send_lag);
        self.late_sends += p.late_sends;
        for (code, n) in p.server_errors {
            *self.server_errors.entry(code).or_default() += n;
        }
        self.unexpected += p.unexpected;
        self.deadline_exceeded |= p.deadline_exceeded;
        self.notes.extend(p.notes);
    }
}

/// Counters and per-subscription state, shared by every task of the process.
#[derive(Debug, Default)]
struct State {
    report: WorkerReport,
    /// The window in wall-clock ns, once the run started.
    window: Option<(u64, u64)>,
    /// Attempts that have succeeded or failed.
    resolved: u64,
    /// Per local connection: its subscriptions and what each received.
    subs: Vec<Vec<(u32, SeqSet)>>,
    /// Per channel and sequence number, for completion time.
    messages: BTreeMap<u32, Vec<MessageStat>>,
}

/// What a received frame was.
enum Received {
    /// A first copy of message `seq` (of one of the connection's channels).
    Delivery { seq: u64 },
    /// Anything else.
    Other,
}

impl State {
    fn fail(&mut self, reason: String) {
        *self.report.failures.entry(reason).or_default() += 1;
        self.resolved += 1;
    }

    fn dropped(&mut self, reason: String) {
        *self.report.drops.entry(reason).or_default() += 1;
    }

    fn on_frame(&mut self, slot: usize, text: &str, now_ns: u64, cfg: &Config) -> Received {
        if let Some(p) = parse_delivery_fast(text) {
            return self.on_delivery(slot, p, now_ns, cfg);
        }
        let Some(frame) = parse_frame(text) else {
            self.report.unexpected += 1;
            return Received::Other;
        };
        match &*frame.kind {
            "bench" => match frame.payload {
                Some(p) => self.on_delivery(slot, p, now_ns, cfg),
                None => {
                    self.report.unexpected += 1;
                    Received::Other
                }
            },
            "error" => {
                let code = frame.code.as_deref().unwrap_or("unknown").to_owned();
                *self.report.server_errors.entry(code).or_default() += 1;
                Received::Other
            }
            "ack" | "subscribed" | "unsubscribed" | "welcome" | "pong" | "presence-update" => {
                Received::Other
            }
            _ => {
                self.report.unexpected += 1;
                Received::Other
            }
        }
    }

    fn on_delivery(&mut self, slot: usize, p: BenchPayload, now_ns: u64, cfg: &Config) -> Received {
        let set = self
            .subs
            .get_mut(slot)
            .and_then(|subs| subs.iter_mut().find(|(c, _)| *c == p.c))
            .map(|(_, set)| set);
        let Some(set) = set.filter(|_| p.seq < cfg.seq_limit()) else {
            self.report.unexpected += 1;
            return Received::Other;
        };
        if !set.insert(p.seq) {
            self.report.duplicates += 1;
            return Received::Other;
        }
        let latency = now_ns.saturating_sub(p.t);
        let r = &mut self.report;
        r.deliveries += 1;
        if let Some((m0, m1)) = self.window {
            if (m0..m1).contains(&now_ns) {
                r.deliveries_in_window += 1;
            }
            if (m0..m1).contains(&p.t) {
                r.latency.record(latency);
            }
        }
        if cfg.scenario.tracks_completion() {
            let stats = self.messages.entry(p.c).or_default();
            let seq = p.seq as usize;
            if stats.len() <= seq {
                stats.resize(seq + 1, MessageStat::default());
            }
            stats[seq].receivers += 1;
            stats[seq].max_latency_ns = stats[seq].max_latency_ns.max(latency);
        }
        Received::Delivery { seq: p.seq }
    }

    /// Σ distinct received == Σ expected, when this process published everything.
    fn all_received(&self) -> bool {
        let published = &self.report.published;
        let (mut expected, mut got) = (0, 0);
        for subs in &self.subs {
            for (c, set) in subs {
                expected += published.get(c).copied().unwrap_or(0);
                got += set.distinct();
            }
        }
        got >= expected
    }
}

/// Everything the tasks of one process share.
#[derive(Debug)]
struct Ctx {
    cfg: Config,
    state: RefCell<State>,
    /// Signalled whenever a connection attempt resolves.
    settled: Notify,
    /// The padding string of every payload.
    pad: String,
    plan: watch::Receiver<Option<Plan>>,
}

/// The connections of this process, established and waiting for the start.
#[derive(Debug)]
pub(crate) struct Worker {
    ctx: Rc<Ctx>,
    plan_tx: watch::Sender<Option<Plan>>,
    publisher: Option<Publisher>,
    deadline: Instant,
}

impl Worker {
    /// Opens this process's connections at the configured rate (and the publisher, when it
    /// runs here) and returns once every attempt has resolved or the deadline passed.
    pub(crate) async fn connect(cfg: Config, deadline: Instant) -> Self {
        let local: Vec<u32> = cfg.local_indices().collect();
        let (plan_tx, plan_rx) = watch::channel(None);
        let state = State {
            subs: vec![Vec::new(); local.len()],
            report: WorkerReport {
                requested: local.len() as u64,
                ..WorkerReport::default()
            },
            ..State::default()
        };
        let ctx = Rc::new(Ctx {
            pad: "x".repeat(cfg.payload_bytes),
            cfg,
            state: RefCell::new(state),
            settled: Notify::new(),
            plan: plan_rx,
        });
        let rate = ctx.cfg.connect_rate / f64::from(ctx.cfg.processes);
        let gate = Arc::new(Semaphore::new(MAX_PENDING_CONNECTS));
        let start = Instant::now();
        let mut spawned = 0u64;
        for (slot, &index) in local.iter().enumerate() {
            let at = start.checked_add(Duration::from_secs_f64(slot as f64 / rate));
            let Some(at) = at.filter(|&at| at < deadline) else {
                break;
            };
            sleep_until(at).await;
            let Ok(Ok(permit)) = timeout_at(deadline, gate.clone().acquire_owned()).await else {
                break;
            };
            tokio::task::spawn_local(connection(ctx.clone(), index, slot, permit, deadline));
            spawned += 1;
        }
        let mut deadline_exceeded = false;
        loop {
            let resolved = ctx.state.borrow().resolved;
            if resolved >= spawned {
                break;
            }
            if timeout_at(deadline, ctx.settled.notified()).await.is_err() {
                deadline_exceeded = true;
                break;
            }
        }
        let unattempted = local.len() as u64 - spawned;
        let publisher = if ctx.cfg.runs_publisher() && Instant::now() < deadline {
            match Publisher::start(ctx.cfg.clone(), deadline).await {
                Ok(publisher) => Some(publisher),
                Err(reason) => {
                    let note = format!("the publisher could not connect: {reason}");
                    ctx.state.borrow_mut().report.notes.push(note);
                    None
                }
            }
        } else {
            None
        };
        {
            let mut state = ctx.state.borrow_mut();
            let pending = spawned.saturating_sub(state.resolved);
            if unattempted > 0 {
                *state
                    .report
                    .failures
                    .entry("not_attempted_deadline".to_owned())
                    .or_default() += unattempted;
            }
            if pending > 0 {
                *state
                    .report
                    .failures
                    .entry("pending_at_deadline".to_owned())
                    .or_default() += pending;
            }
            state.report.connect_s = start.elapsed().as_secs_f64();
            state.report.deadline_exceeded |= deadline_exceeded;
        }
        Self {
            ctx,
            plan_tx,
            publisher,
            deadline,
        }
    }

    /// Runs the scenario on `plan`'s timeline, drains late deliveries and reports.
    pub(crate) async fn run(mut self, plan: Plan) -> WorkerReport {
        let ctx = self.ctx.clone();
        ctx.state.borrow_mut().window = Some((plan.m0_ns, plan.m1_ns));
        self.plan_tx.send_replace(Some(plan));
        if let Some(publisher) = &mut self.publisher {
            publisher.go(plan);
        }
        let mut exceeded = false;
        let mut cpu0 = own_cpu();
        if timeout_at(self.deadline, sleep_until(plan.m0))
            .await
            .is_ok()
        {
            cpu0 = own_cpu();
        } else {
            exceeded = true;
        }
        if timeout_at(self.deadline, sleep_until(plan.m1))
            .await
            .is_err()
        {
            exceeded = true;
        }
        let cpu1 = own_cpu();
        if let Some(publisher) = &mut self.publisher {
            let sent = publisher.report(self.deadline).await;
            ctx.state.borrow_mut().report.absorb(sent);
        }
        if !exceeded && ctx.cfg.scenario.publishes() {
            exceeded = self.drain().await;
        }
        let mut state = ctx.state.borrow_mut();
        let mut report = std::mem::take(&mut state.report);
        report.cpu_ns = u64::try_from(cpu1.saturating_sub(cpu0).as_nanos()).unwrap_or(u64::MAX);
        report.deadline_exceeded |= exceeded;
        for subs in &state.subs {
            for (c, set) in subs {
                let ch = report.channels.entry(*c).or_default();
                ch.subscribers += 1;
                *ch.distinct.entry(set.distinct()).or_default() += 1;
            }
        }
        for (c, stats) in std::mem::take(&mut state.messages) {
            report.channels.entry(c).or_default().messages = stats;
        }
        report
    }

    /// Waits for late deliveries after the window; `true` when the deadline cut it short.
    async fn drain(&self) -> bool {
        let start = Instant::now();
        let single = self.ctx.cfg.processes == 1;
        let mut last = (self.ctx.state.borrow().report.deliveries, Instant::now());
        while start.elapsed() < DRAIN_MAX {
            if timeout_at(self.deadline, sleep(Duration::from_millis(50)))
                .await
                .is_err()
            {
                return true;
            }
            let state = self.ctx.state.borrow();
            if single && state.all_received() {
                break;
            }
            let now = Instant::now();
            if state.report.deliveries != last.0 {
                last = (state.report.deliveries, now);
            } else if now - last.1 >= DRAIN_QUIET {
                break;
            }
        }
        false
    }

    /// A report for a run that never started (no start signal before the deadline).
    pub(crate) fn abandon(self, why: &str) -> WorkerReport {
        let mut state = self.ctx.state.borrow_mut();
        let mut report = std::mem::take(&mut state.report);
        report.deadline_exceeded = true;
        report.notes.push(why.to_owned());
        report
    }
}

/// One connection: open it, then read (and, for echo, publish) until the process ends.
async fn connection(
    ctx: Rc<Ctx>,
    index: u32,
    slot: usize,
    permit: OwnedSemaphorePermit,
    deadline: Instant,
) {
    let cfg = &ctx.cfg;
    let subs = cfg.subscriptions(index);
    let names: Vec<String> = subs.iter().map(|&c| cfg.channel_name(c)).collect();
    let target = cfg.subscriber_target();
    let at = (Instant::now() + CONNECT_TIMEOUT).min(deadline);
    let opened = timeout_at(
        at,
        open(target, cfg.source(index), &names, ws_config(false)),
    )
    .await;
    drop(permit);
    let ws = {
        let mut state = ctx.state.borrow_mut();
        let ws = match opened {
            Err(_) => {
                state.fail("timeout".to_owned());
                None
            }
            Ok(Err(reason)) => {
                state.fail(reason);
                None
            }
            Ok(Ok(ws)) => {
                state.subs[slot] = subs.iter().map(|&c| (c, SeqSet::default())).collect();
                state.report.established += 1;
                state.resolved += 1;
                Some(ws)
            }
        };
        ctx.settled.notify_one();
        ws
    };
    let Some(ws) = ws else { return };
    if cfg.scenario == Scenario::Echo {
        echo(ctx.clone(), ws, index, slot).await;
    } else {
        read_all(&ctx, ws, slot).await;
    }
}

/// What became of a read.
enum Read {
    /// A frame was handled.
    Frame(Received),
    /// The connection is gone (recorded as a drop).
    Gone,
}

fn handle(ctx: &Ctx, slot: usize, item: Option<Result<Message, WsError>>) -> Read {
    match item {
        Some(Ok(Message::Text(text))) => {
            let now = wall_ns();
            Read::Frame(
                ctx.state
                    .borrow_mut()
                    .on_frame(slot, text.as_str(), now, &ctx.cfg),
            )
        }
        Some(Ok(Message::Close(frame))) => {
            let reason = frame.map_or_else(
                || "closed".to_owned(),
                |f| format!("closed_{}", u16::from(f.code)),
            );
            ctx.state.borrow_mut().dropped(reason);
            Read::Gone
        }
        Some(Ok(_)) => Read::Frame(Received::Other),
        Some(Err(e)) => {
            ctx.state.borrow_mut().dropped(ws_reason(&e));
            Read::Gone
        }
        None => {
            ctx.state.borrow_mut().dropped("eof".to_owned());
            Read::Gone
        }
    }
}

/// Reads until the connection is gone (or the process ends).
async fn read_all(ctx: &Ctx, mut ws: Ws, slot: usize) {
    while let Read::Frame(_) = handle(ctx, slot, ws.next().await) {}
}

/// Queues message `seq` of channel `c`, scheduled for wall-clock `sched_ns`; returns the
/// wall-clock time it left (for [`account_send`]).
///
/// The payload's `t` is the scheduled time, except that a send within the timer slack
/// (2 ms) of its schedule carries the time it actually left: tokio's timers cannot wake more
/// precisely than that, and stamping the schedule would add their error to every latency.
/// A send later than that keeps `schedule + 2 ms`, so time lost to a busy client is still
/// counted (no coordinated omission) and the send counts as late.
pub(crate) async fn send_bench(
    ws: &mut Ws,
    cfg: &Config,
    pad: &str,
    (c, seq): (u32, u64),
    sched_ns: u64,
) -> Result<u64, WsError> {
    let now_ns = wall_ns();
    let t = now_ns.min(sched_ns + TIMER_SLACK_NS);
    let frame = bench_frame(&cfg.channel_name(c), seq, c, t, pad);
    ws.feed(Message::text(frame)).await?;
    Ok(now_ns)
}

/// Counts a message sent on channel `c` at `sent_ns`, scheduled for `sched_ns`: warm-up
/// sends by channel, window sends by how late they left.
pub(crate) fn account_send(
    r: &mut WorkerReport,
    c: u32,
    sched_ns: u64,
    sent_ns: u64,
    window: (u64, u64),
) {
    *r.published.entry(c).or_default() += 1;
    if sched_ns < window.0 {
        *r.published_before_window.entry(c).or_default() += 1;
    } else {
        let lag = sent_ns.saturating_sub(sched_ns);
        r.send_lag.record(lag);
        if lag > TIMER_SLACK_NS {
            r.late_sends += 1;
        }
    }
}

/// [`send_bench`] and [`account_send`] for an echo connection.
async fn echo_send(
    ctx: &Ctx,
    ws: &mut Ws,
    (c, seq): (u32, u64),
    sched_ns: u64,
    window: (u64, u64),
) -> Result<(), WsError> {
    let sent = send_bench(ws, &ctx.cfg, &ctx.pad, (c, seq), sched_ns).await?;
    account_send(
        &mut ctx.state.borrow_mut().report,
        c,
        sched_ns,
        sent,
        window,
    );
    Ok(())
}

/// `k`-th point of a schedule of `rate` per second starting `offset_ns` after `t0`.
/// Points too far out to represent are after the end of any window (`plan.m1`).
pub(crate) fn scheduled(plan: &Plan, offset_ns: u64, k: u64, rate: f64) -> (Instant, u64) {
    let ns = offset_ns.saturating_add((k as f64 * 1e9 / rate) as u64);
    let at = plan
        .t0
        .checked_add(Duration::from_nanos(ns))
        .unwrap_or(plan.m1);
    (at.max(plan.t0), plan.t0_ns.saturating_add(ns))
}

/// An echo connection: waits for the start, then publishes to its own channel (open or
/// closed loop) until the end of the window, then keeps reading.
async fn echo(ctx: Rc<Ctx>, mut ws: Ws, index: u32, slot: usize) {
    let mut plan_rx = ctx.plan.clone();
    let plan = loop {
        if let Some(plan) = *plan_rx.borrow_and_update() {
            break plan;
        }
        tokio::select! {
            changed = plan_rx.changed() => if changed.is_err() { return },
            item = ws.next() => if let Read::Gone = handle(&ctx, slot, item) { return },
        }
    };
    let window = (plan.m0_ns, plan.m1_ns);
    let result = if ctx.cfg.closed_loop {
        echo_closed(&ctx, &mut ws, index, slot, &plan, window).await
    } else {
        echo_open(&ctx, &mut ws, index, slot, &plan, window).await
    };
    match result {
        Ok(true) => read_all(&ctx, ws, slot).await,
        Ok(false) => {}
        Err(e) => ctx.state.borrow_mut().dropped(ws_reason(&e)),
    }
}

/// Open-loop echo: `--rate` per connection on a fixed schedule, connections phase-shifted
/// so their sends spread evenly. `Ok(true)` when the window ended with the connection up.
async fn echo_open(
    ctx: &Ctx,
    ws: &mut Ws,
    index: u32,
    slot: usize,
    plan: &Plan,
    window: (u64, u64),
) -> Result<bool, WsError> {
    let rate = ctx.cfg.rate;
    let offset_ns = (f64::from(index) / f64::from(ctx.cfg.connections) * 1e9 / rate) as u64;
    let mut seq = 0u64;
    loop {
        let (at, _) = scheduled(plan, offset_ns, seq, rate);
        if at >= plan.m1 {
            return Ok(true);
        }
        // Unbiased: a flood of frames must not starve the send schedule.
        tokio::select! {
            item = ws.next() => if let Read::Gone = handle(ctx, slot, item) { return Ok(false) },
            () = sleep_until(at) => {
                let now = Instant::now();
                loop {
                    let (at, sched_ns) = scheduled(plan, offset_ns, seq, rate);
                    if at > now || at >= plan.m1 {
                        break;
                    }
                    echo_send(ctx, ws, (index, seq), sched_ns, window).await?;
                    seq += 1;
                }
                ws.flush().await?;
            }
        }
    }
}

/// Closed-loop echo: the next message leaves when the previous one is back (or given up
/// after [`ECHO_GIVE_UP`]). `Ok(true)` when the window ended with the connection up.
async fn echo_closed(
    ctx: &Ctx,
    ws: &mut Ws,
    index: u32,
    slot: usize,
    plan: &Plan,
    window: (u64, u64),
) -> Result<bool, WsError> {
    sleep_until(plan.t0).await;
    let mut seq = 0u64;
    let mut sent_at = Instant::now();
    echo_send(ctx, ws, (index, seq), wall_ns(), window).await?;
    ws.flush().await?;
    loop {
        let next = tokio::select! {
            item = ws.next() => match handle(ctx, slot, item) {
                Read::Gone => return Ok(false),
                Read::Frame(Received::Delivery { seq: got }) => got == seq,
                Read::Frame(Received::Other) => false,
            },
            () = sleep_until(sent_at + ECHO_GIVE_UP) => true,
        };
        if next {
            sent_at = Instant::now();
            if sent_at >= plan.m1 {
                return Ok(true);
            }
            seq += 1;
            echo_send(ctx, ws, (index, seq), wall_ns(), window).await?;
            ws.flush().await?;
        }
    }
}
