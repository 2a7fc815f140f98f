//! One WebSocket session: reads frames into the hub, writes the outbound queue, keeps time.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use std::future::{Future, poll_fn};
use std::pin::Pin;
use std::task::{Context, Poll, ready};
use switchboard_backplane::Backplane;
use switchboard_hub::{Command, Connection, DisconnectReason, Outbox};
use switchboard_limiter::{RejectionWindow, TokenBucket};
use switchboard_protocol::{
    ChannelName, ClientFrame, CloseCode, DecodeError, DecodeLimits, ErrorCode, ErrorFrame,
    Priority, ServerFrame,
};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::time::{Instant, sleep_until};

use crate::clock::{FrameClock, TokioClock};
use crate::config::TransportConfig;
use crate::frames::{FrameReader, Incoming, ReadError};
use crate::io::poll_write_all;
use crate::live::LiveSessions;
use crate::outbox::{Batch, SessionOutbox};

/// Frames written per flush at most, and their approximate byte budget: enough to coalesce a
/// backlog into few syscalls without holding the queue's lock long.
const BATCH_FRAMES: usize = 64;
pub(crate) const BATCH_BYTES: usize = 64 * 1024;
/// The largest `ping` frame (its JSON text) exempt from the message budget.
pub(crate) const MAX_FREE_PING_BYTES: usize = 512;
/// How long queued frames may take to go out before a close frame.
const CLOSE_FLUSH_TIMEOUT: Duration = Duration::from_secs(2);

/// What the rate limit decided about a frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Charge {
    /// Process it.
    Allowed,
    /// Dropped and answered with `rate_limited`.
    Refused,
    /// Refused, and refusals exceed the bucket's capacity within one window: close 1008.
    Abusive,
}

/// A session's place in the connection gauges: counted when the session is created, and
/// uncounted exactly once — when it ends, or, should its task panic or be dropped, when it is
/// dropped — so `/health`, `/metrics` and the caps never keep a connection that is gone.
///
/// It also registers the session with the transport's [`LiveSessions`], through which
/// shutdown asks it to close.
pub(crate) struct Accounting {
    /// The session's outbox (the session reaches it through here: one pointer, not two).
    outbox: Arc<SessionOutbox>,
    live: Arc<LiveSessions>,
    key: u64,
    ended: bool,
}

impl Accounting {
    /// Counts a new session (`websocket_connections_total`, `websocket_active_sessions`)
    /// and registers it with `live`.
    pub(crate) fn start(outbox: Arc<SessionOutbox>, live: Arc<LiveSessions>) -> Self {
        outbox.metrics().connection_opened();
        outbox.metrics().session_started();
        let key = live.register(&outbox);
        Self {
            outbox,
            live,
            key,
            ended: false,
        }
    }

    fn end(&mut self, reason: switchboard_metrics::DisconnectReason) {
        if !std::mem::replace(&mut self.ended, true) {
            self.live.unregister(self.key);
            self.outbox.discard();
            self.outbox.metrics().connection_closed(reason);
            self.outbox.metrics().session_ended();
        }
    }
}

impl Drop for Accounting {
    fn drop(&mut self) {
        self.end(switchboard_metrics::DisconnectReason::ConnectionLost);
    }
}

/// Who a per-user message budget belongs to: the token's user, or for a connection without
/// one, its client address.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) enum BudgetKey {
    User(Arc<str>),
    Address(std::net::IpAddr),
}

/// The per-user message budgets of a transport.
pub(crate) type UserLimiter = switchboard_limiter::KeyedRateLimiter<BudgetKey, TokioClock>;

/// Everything a session needs besides its socket.
pub(crate) struct Session<B: Backplane, P> {
    /// Uncounts the session however it ends.
    pub(crate) accounting: Accounting,
    /// The budget this session's user (or address) shares with its other connections.
    pub(crate) user_budget: Option<(Arc<UserLimiter>, BudgetKey)>,
    pub(crate) connection: Connection<B>,
    pub(crate) config: Arc<TransportConfig>,
    /// Its heartbeat, idle timeout, credentials' expiry and coalescing window.
    pub(crate) deadlines: Deadlines,
    /// Verifies the tokens of `refresh` frames.
    pub(crate) auth: crate::authenticator::Authenticator,
    /// Connection-cap permits, released when the session ends, whatever the way.
    pub(crate) permits: P,
}

fn disconnect_label(reason: DisconnectReason) -> switchboard_metrics::DisconnectReason {
    use switchboard_metrics::DisconnectReason as L;
    match reason {
        DisconnectReason::ClientClosed => L::ClientClosed,
        DisconnectReason::Closed(CloseCode::GoingAway) => L::GoingAway,
        DisconnectReason::Closed(CloseCode::ProtocolError) => L::ProtocolError,
        DisconnectReason::Closed(CloseCode::PolicyViolation) => L::PolicyViolation,
        DisconnectReason::Closed(CloseCode::TooLarge) => L::TooLarge,
        DisconnectReason::Closed(CloseCode::IdleTimeout) => L::IdleTimeout,
        DisconnectReason::Closed(CloseCode::TokenExpired) => L::TokenExpired,
        DisconnectReason::Closed(CloseCode::Disconnected) => L::ServerDisconnect,
        DisconnectReason::Closed(CloseCode::SlowConsumer) => L::SlowConsumer,
        DisconnectReason::Closed(_) => L::ClientClosed,
        _ => L::ConnectionLost,
    }
}

/// How long the timer waits for a coalescing window of `window`: tokio's timer fires on the
/// first millisecond tick at or after a deadline, so a window of whole milliseconds would end
/// up to a millisecond late, and every connection whose window opened on the same publish
/// would wait that extra time. A window longer than a tick is shortened by one, so it ends on
/// the last tick within it: a frame never waits longer than the window.
fn timer_window(window: Duration) -> Duration {
    const TICK: Duration = Duration::from_millis(1);
    if window > TICK { window - TICK } else { window }
}

/// Everything a session waits for on the clock: its next heartbeat ping, its idle timeout,
/// its credentials' expiry and, with write coalescing, the end of the open window. One
/// timer serves them all, set to [`next`](Self::next); when it fires,
/// [`fire`](Self::fire) says which are due.
///
/// Nothing here reads the clock: the session passes the time it read anyway.
pub(crate) struct Deadlines {
    idle_at: Tick,
    next_ping: Tick,
    /// When the credentials expire, plus the leeway, on the monotonic clock
    /// ([`deadline_for`]); [`Tick::NEVER`] without an expiry.
    expiry: Tick,
    /// When the open coalescing window ends (what is queued is written then);
    /// [`Tick::NEVER`] while none is open.
    flush_at: Tick,
}

/// A moment in 8 bytes: signed nanoseconds from one origin for the whole process (an
/// [`Instant`] takes 16). Every session keeps its four deadlines in its box, so this halves
/// what they cost each connection; converting is an addition or a subtraction. Signed, so a
/// moment before the origin (a paused test clock) is still exact.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct Tick(i64);

impl Tick {
    /// Later than any deadline: "not set".
    const NEVER: Self = Self(i64::MAX);

    fn origin() -> Instant {
        static ORIGIN: std::sync::OnceLock<std::time::Instant> = std::sync::OnceLock::new();
        Instant::from_std(*ORIGIN.get_or_init(std::time::Instant::now))
    }

    /// `at` as a tick (moments 292 years away saturate).
    fn at(at: Instant) -> Self {
        let origin = Self::origin();
        let nanos = |d: Duration| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX - 1);
        if at >= origin {
            Self(nanos(at - origin))
        } else {
            Self(-nanos(origin - at))
        }
    }

    /// `at` as a tick, or [`NEVER`](Self::NEVER) for none.
    fn from_option(at: Option<Instant>) -> Self {
        at.map_or(Self::NEVER, Self::at)
    }

    /// The moment again.
    fn instant(self) -> Instant {
        let origin = Self::origin();
        let nanos = Duration::from_nanos(self.0.unsigned_abs());
        if self.0 >= 0 {
            origin + nanos
        } else {
            origin - nanos
        }
    }
}

/// What the deadlines passed at a moment call for ([`Deadlines::fire`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Fired {
    /// The credentials expired (4001) or the connection is idle (4000): close with it.
    /// Nothing else matters then.
    close: Option<CloseCode>,
    /// A heartbeat ping is due (the next one is scheduled already).
    ping: bool,
    /// The coalescing window ended: write what is queued.
    flush: bool,
}

impl Deadlines {
    /// The deadlines of a session starting at `now`, whose credentials expire at `expiry`.
    pub(crate) fn start(now: Instant, config: &TransportConfig, expiry: Option<Instant>) -> Self {
        Self {
            idle_at: Tick::at(now + config.idle_timeout),
            next_ping: Tick::at(now + Self::heartbeat(config)),
            expiry: Tick::from_option(expiry),
            flush_at: Tick::NEVER,
        }
    }

    /// How often the session pings (at least every millisecond).
    fn heartbeat(config: &TransportConfig) -> Duration {
        config.heartbeat.max(Duration::from_millis(1))
    }

    /// When the timer must fire next.
    fn next(&self) -> Instant {
        self.earliest().instant()
    }

    /// Whether a deadline has passed at `tick`: [`fire`](Self::fire) has something to do.
    fn due(&self, tick: Tick) -> bool {
        self.earliest() <= tick
    }

    /// The first of the deadlines.
    fn earliest(&self) -> Tick {
        self.next_ping
            .min(self.idle_at)
            .min(self.expiry)
            .min(self.flush_at)
    }

    /// A frame arrived at `now`: the connection is not idle.
    ///
    /// This only moves the idle deadline later, so the session's timer is left as it is: set
    /// to an earlier deadline, it fires early at worst, and firing re-arms it for what is due
    /// then. Busy connections never touch the timer per frame.
    fn heard(&mut self, now: Instant, config: &TransportConfig) {
        self.idle_at = Tick::at(now + config.idle_timeout);
    }

    /// The credentials now expire at `expiry` (a `refresh`); returns whether that changed.
    fn expire_at(&mut self, expiry: Option<Instant>) -> bool {
        std::mem::replace(&mut self.expiry, Tick::from_option(expiry)) != self.expiry
    }

    /// Opens a coalescing window of `window` at `now`, unless one is open; returns whether
    /// it opened one (the timer must then be set to [`next`](Self::next)).
    fn open_window(&mut self, now: Instant, window: Duration) -> bool {
        if self.window_open() {
            return false;
        }
        self.flush_at = Tick::at(now + timer_window(window));
        true
    }

    /// Whether a coalescing window is open: what is queued waits for its end.
    fn window_open(&self) -> bool {
        self.flush_at != Tick::NEVER
    }

    /// What the deadlines passed at `now` call for. A ping found due is scheduled again, a
    /// coalescing window found ended is closed.
    fn fire(&mut self, now: Instant, config: &TransportConfig) -> Fired {
        let tick = Tick::at(now);
        let close = if self.expiry <= tick {
            Some(CloseCode::TokenExpired)
        } else if self.idle_at <= tick {
            Some(CloseCode::IdleTimeout)
        } else {
            None
        };
        let ping = close.is_none() && self.next_ping <= tick;
        if ping {
            self.next_ping = Tick::at(now + Self::heartbeat(config));
        }
        let flush = close.is_none() && self.flush_at <= tick;
        if flush {
            self.flush_at = Tick::NEVER;
        }
        Fired { close, ping, flush }
    }
}

/// The monotonic deadline of wall-clock time `at`; a time too far ahead for the monotonic
/// clock (a credential valid for millennia) is as good as never, here a century away.
pub(crate) fn deadline_for(at: SystemTime) -> Instant {
    const FAR: Duration = Duration::from_secs(100 * 365 * 24 * 3600);
    let now = Instant::now();
    match at.duration_since(SystemTime::now()) {
        Ok(left) => now.checked_add(left.min(FAR)).unwrap_or(now),
        Err(_) => now,
    }
}

/// An empty ping: unmasked, final, opcode 0x9, no payload.
const PING_FRAME: Bytes = Bytes::from_static(&[0x89, 0x00]);

/// A control frame as the server sends it (final, unmasked): `opcode`, and `head` then
/// `body` as its payload, cut to the 125 bytes a control frame may carry (so the length fits
/// the header's second byte).
fn control_frame(opcode: u8, head: &[u8], body: &[u8]) -> Bytes {
    let body = &body[..body.len().min(125 - head.len())];
    let len = head.len() + body.len();
    let mut frame = Vec::with_capacity(2 + len);
    frame.push(0x80 | opcode);
    frame.push(u8::try_from(len).unwrap_or(125));
    frame.extend_from_slice(head);
    frame.extend_from_slice(body);
    Bytes::from(frame)
}

/// The pong answering a ping with `payload` (at most 125 bytes, which the reader checks).
fn pong_frame(payload: &[u8]) -> Bytes {
    control_frame(0xA, &[], payload)
}

/// The close frame for `code`: its status and its reason.
fn close_frame(code: CloseCode) -> Bytes {
    control_frame(0x8, &code.code().to_be_bytes(), code.reason().as_bytes())
}

/// The reply to a client's close frame: its status code echoed (RFC 6455 §5.5.1), or an
/// empty close frame when it carried none.
fn close_reply(code: Option<u16>) -> Bytes {
    code.map_or(Bytes::from_static(&[0x88, 0x00]), |code| {
        control_frame(0x8, &code.to_be_bytes(), b"")
    })
}

/// What woke a session.
enum Wake {
    /// Frames to write, or a close request.
    Outbox,
    /// A client frame, or the end of reading.
    Read(Result<Inbound, ReadError>),
    /// What was queued is written (or the write failed).
    Written(std::io::Result<()>),
    /// A deadline: heartbeat, idle timeout, the token's expiry or a coalescing window's end.
    Timer,
}

/// What the session makes of a client frame, decided while the frame's bytes are at hand
/// (they are the reader's, or on the stack of its poll).
///
/// Kept small (16 bytes): the session's task holds it, and every idle connection pays for
/// every byte of that task.
enum Inbound {
    /// A text message: what it decoded to, and its length in bytes.
    Text(Box<(Result<ClientFrame, DecodeError>, usize)>),
    /// A binary message (not supported; answered with an error).
    Binary,
    /// A ping (answered already) or a pong.
    Control,
    /// A close frame, with its status code if it had one.
    Close(Option<u16>),
}

impl Inbound {
    /// `known` gives the channel names the connection holds already (its subscriptions'),
    /// shared instead of validated and copied again.
    fn from_frame(
        incoming: Incoming<'_>,
        outbox: &SessionOutbox,
        known: &dyn Fn(&str) -> Option<ChannelName>,
    ) -> Self {
        match incoming {
            Incoming::Text(text) => Self::Text(Box::new((
                ClientFrame::decode_known(text, DecodeLimits::default(), known),
                text.len(),
            ))),
            Incoming::Binary(_) => Self::Binary,
            Incoming::Ping(payload) => {
                outbox.push_control(&pong_frame(payload));
                Self::Control
            }
            Incoming::Pong => Self::Control,
            Incoming::Close(close) => Self::Close(close.map(|(code, _)| code)),
        }
    }
}

/// Writes everything waiting in the outbox, coalescing frames into few writes, then flushes
/// the writer. Cancel safe, a poll that returns `Pending` loses nothing: what was taken but
/// not yet written stays in `batch`, and is written first on the next poll.
fn poll_flush_queue<W>(
    cx: &mut Context<'_>,
    writer: &mut W,
    outbox: &SessionOutbox,
    batch: &mut Vec<Bytes>,
) -> Poll<std::io::Result<()>>
where
    W: AsyncWrite + Unpin,
{
    loop {
        if batch.is_empty() {
            match outbox.take_batch(batch, BATCH_FRAMES, BATCH_BYTES) {
                Batch::Ready { messages } => outbox.metrics().messages_sent(messages as u64),
                Batch::Empty => {
                    // Idle again: give the batch buffer back. One allocation per burst costs
                    // far less than its write, and an idle connection then holds none.
                    *batch = Vec::new();
                    return Pin::new(writer).poll_flush(cx);
                }
                Batch::Failed => return Poll::Ready(Err(std::io::ErrorKind::BrokenPipe.into())),
            }
        }
        ready!(poll_write_all(Pin::new(&mut *writer), cx, batch))?;
    }
}

/// [`poll_flush_queue`] until everything waiting is written.
async fn flush_queue<W>(
    writer: &mut W,
    outbox: &SessionOutbox,
    batch: &mut Vec<Bytes>,
) -> std::io::Result<()>
where
    W: AsyncWrite + Unpin,
{
    poll_fn(|cx| poll_flush_queue(cx, writer, outbox, batch)).await
}

/// What a running session owns besides its [`Session`], boxed together so that the task's
/// future holds a pointer instead of a copy of each. An idle connection's memory is mostly
/// its task, so every byte of the future counts (docs/benchmarks.md).
struct Running<R, W> {
    stream: FrameReader<R>,
    writer: W,
    bucket: TokenBucket<FrameClock>,
    rejections: RejectionWindow,
    batch: Vec<Bytes>,
}

impl<B: Backplane, P: Send> Session<B, P> {
    /// Runs the session to its end, reading client frames from `stream` and writing what
    /// the outbox holds to `writer`, and reports why it ended to the hub.
    pub(crate) fn run<R, W>(
        self,
        stream: FrameReader<R>,
        writer: W,
    ) -> impl Future<Output = ()> + Send
    where
        R: AsyncRead + Unpin + Send,
        W: AsyncWrite + Unpin + Send,
        P: Sync,
    {
        let running = Box::new(Running {
            stream,
            writer,
            bucket: TokenBucket::with_clock(self.config.rate_limit, FrameClock::default()),
            rejections: RejectionWindow::for_quota(&self.config.rate_limit),
            batch: Vec::new(),
        });
        Box::new(self).serve(running)
    }

    /// Not an `async fn`: its arguments would be moved into locals, and the task would
    /// keep both copies (docs/benchmarks.md).
    #[allow(clippy::manual_async_fn)] // On purpose, as said above.
    fn serve<R, W>(
        mut self: Box<Self>,
        mut io: Box<Running<R, W>>,
    ) -> impl Future<Output = ()> + Send
    where
        R: AsyncRead + Unpin + Send,
        W: AsyncWrite + Unpin + Send,
        P: Sync,
    {
        async move {
            // One timer for every deadline, whichever comes first: each timer would cost
            // every idle connection its own allocation.
            let timer = sleep_until(self.deadlines.next());
            tokio::pin!(timer);
            // Whether what is queued is being written. A client that stops reading blocks
            // the write; meanwhile the session reads nothing more from it, but keeps its
            // deadlines and hears close requests (shutdown's too).
            let mut writing = false;
            // Something was queued while the session was busy (handling a frame, or woken by
            // the outbox): it starts writing at the end of this turn.
            let mut start_write = false;

            let reason = 'serve: loop {
                let Running {
                    stream,
                    writer,
                    bucket,
                    rejections,
                    batch,
                } = &mut *io;
                // Nothing is read while a write is pending (its coalescing window included):
                // the answers would queue behind it.
                let reading = !writing && !self.deadlines.window_open();
                // The select only says what woke the session; the handling follows it, so
                // that the task does not keep the select's futures and its handlers' state side
                // by side (every idle connection pays for the task's size).
                // The reader's callback holds the session by one reference, not one per field
                // it reads: the select's state is part of every idle session's task.
                let session: &Self = &self;
                // In a fixed order, which costs no random draw per wake. The server side's
                // orders (a close request) go first, so a client sending without pause does
                // not hold them off. The timer goes last, polled only when nothing else is
                // ready: a frame checks the deadlines itself (below), so a client sending
                // without pause does not hold off its heartbeat, idle or expiry either.
                // Reading and writing never wait at the same time.
                let wake = tokio::select! {
                    biased;
                    () = self.accounting.outbox.ready() => Wake::Outbox,
                    incoming = poll_fn(|cx| stream.poll_next(cx, |frame| Inbound::from_frame(frame, &session.accounting.outbox, &|name| session.connection.subscribed(name)))), if reading => {
                        Wake::Read(incoming)
                    }
                    written = poll_fn(|cx| poll_flush_queue(cx, writer, &self.accounting.outbox, batch)), if writing => {
                        Wake::Written(written)
                    }
                    () = &mut timer => Wake::Timer,
                };
                let close = match wake {
                    // During a write only a close request matters; the rest is written by it.
                    Wake::Outbox if writing => self.accounting.outbox.close_requested(),
                    Wake::Outbox => {
                        // Orders from the server side first, so that what they answer goes
                        // out with this write. Boxed as the frame handler is.
                        for command in self.accounting.outbox.take_commands() {
                            Box::pin(self.obey(command)).await;
                        }
                        match self.accounting.outbox.close_requested() {
                            Some(code) => Some(code),
                            None => {
                                start_write = true;
                                None
                            }
                        }
                    }
                    // The write failed: the connection is gone.
                    Wake::Written(Err(_)) => break DisconnectReason::Error,
                    Wake::Written(Ok(())) => {
                        writing = false;
                        self.accounting.outbox.close_requested()
                    }
                    Wake::Read(Err(ReadError::TooLarge(_))) => Some(CloseCode::TooLarge),
                    Wake::Read(Err(ReadError::InvalidUtf8)) => Some(CloseCode::InvalidPayload),
                    Wake::Read(Err(ReadError::Protocol(violation))) => {
                        tracing::debug!(connection_id = self.connection.id(), %violation, "protocol violation");
                        Some(CloseCode::ProtocolError)
                    }
                    Wake::Read(Err(err)) => {
                        tracing::debug!(connection_id = self.connection.id(), %err, "read failed");
                        break DisconnectReason::Error;
                    }
                    Wake::Read(Ok(inbound)) => 'read: {
                        let now = Instant::now();
                        self.deadlines.heard(now, &self.config);
                        let tick = Tick::at(now);
                        // What a charge for this frame reads as the time.
                        bucket.clock().set(tick.0);
                        // The deadlines the timer would have found, had a frame not been
                        // ready before it (an expiry closes before the frame is handled).
                        if self.deadlines.due(tick)
                            && let Some(code) =
                                self.deadlines_passed(now, &mut writing, timer.as_mut())
                        {
                            break 'read Some(code);
                        }
                        if matches!(inbound, Inbound::Text(..) | Inbound::Binary) {
                            self.accounting.outbox.metrics().message_received();
                        }
                        let abusive = match inbound {
                            Inbound::Text(text) => {
                                let (decoded, len) = *text;
                                // Handled at once as far as it goes, in a statement of its
                                // own: nothing of the frame is kept across the await below.
                                // What the hub leaves to wait for (a subscribe, a publish
                                // through Redis…) comes boxed, since inline it would size
                                // every idle session's task. A publish through the memory
                                // backplane leaves nothing, and allocates nothing here.
                                // `Ok(expiry moved)`, or `Err(abusive)` when refused.
                                let outcome = {
                                    let handling =
                                        match self.admit(decoded, len, bucket, rejections) {
                                            Admitted::Handle(frame) => Ok(self.handle(frame)),
                                            Admitted::Done { abusive } => Err(abusive),
                                        };
                                    match handling {
                                        Ok(Handling::Done) => Ok(false),
                                        Ok(Handling::Waiting(rest)) => {
                                            rest.await;
                                            Ok(false)
                                        }
                                        Ok(Handling::Refresh(refresh)) => Ok(refresh.await),
                                        Err(abusive) => Err(abusive),
                                    }
                                };
                                match outcome {
                                    Ok(moved) => {
                                        if moved {
                                            // A refresh moved the expiry: the timer follows.
                                            timer.as_mut().reset(self.deadlines.next());
                                        }
                                        start_write = self.handled(now);
                                        false
                                    }
                                    Err(abusive) => abusive,
                                }
                            }
                            Inbound::Binary => {
                                let charge = self.charge(bucket, rejections, None);
                                if charge == Charge::Allowed {
                                    self.reply_error(
                                        ErrorCode::Unsupported,
                                        "binary frames are not supported; send text frames".into(),
                                        None,
                                    );
                                }
                                charge == Charge::Abusive
                            }
                            Inbound::Close(code) => {
                                // Echo the code after what is queued, briefly; nothing follows it.
                                self.accounting.outbox.push_close(close_reply(code), false);
                                let _ = Box::pin(tokio::time::timeout(
                                    CLOSE_FLUSH_TIMEOUT,
                                    flush_queue(writer, &self.accounting.outbox, batch),
                                ))
                                .await;
                                break 'serve DisconnectReason::ClientClosed;
                            }
                            // Pings are answered already; pongs only prove liveness.
                            Inbound::Control => false,
                        };
                        if abusive {
                            tracing::warn!(
                                target: "switchboard::audit",
                                event = "abuse_disconnect",
                                connection_id = self.connection.id(),
                                user_id = self.connection.identity().user_id.as_deref().unwrap_or("-"),
                                "closing: sustained rate limit violations"
                            );
                        }
                        abusive.then_some(CloseCode::PolicyViolation)
                    }
                    Wake::Timer => {
                        self.deadlines_passed(Instant::now(), &mut writing, timer.as_mut())
                    }
                };
                if let Some(code) = close {
                    break Box::pin(self.close(writer, stream, batch, code)).await;
                }
                if std::mem::take(&mut start_write) {
                    // Opt-in: let more frames arrive, then write them together.
                    match self.config.write_coalesce.filter(|_| batch.is_empty()) {
                        Some(window) => {
                            if self.deadlines.open_window(Instant::now(), window) {
                                timer.as_mut().reset(self.deadlines.next());
                            }
                        }
                        // At once, while the socket takes it: the rest when it is ready again
                        // (the select's write branch). No turn of the loop in between.
                        None => match poll_fn(|cx| {
                            Poll::Ready(poll_flush_queue(
                                cx,
                                writer,
                                &self.accounting.outbox,
                                batch,
                            ))
                        })
                        .await
                        {
                            Poll::Ready(Ok(())) => {}
                            Poll::Ready(Err(_)) => break DisconnectReason::Error,
                            Poll::Pending => writing = true,
                        },
                    }
                }
            };
            drop(io);
            let Self {
                connection,
                permits,
                mut accounting,
                ..
            } = *self;
            drop(permits);
            accounting.end(disconnect_label(reason));
            // Not held across the await below, or the task would reserve room for it all
            // along.
            drop(accounting);
            // Boxed for the same reason as the frame handler.
            Box::pin(connection.disconnect(reason)).await;
        }
    }

    /// Closes with `code`: first what is queued (unless the client is the problem), then
    /// the close frame.
    async fn close<R, W>(
        &self,
        writer: &mut W,
        stream: &mut FrameReader<R>,
        batch: &mut Vec<Bytes>,
        code: CloseCode,
    ) -> DisconnectReason
    where
        R: AsyncRead + Unpin,
        W: AsyncWrite + Unpin,
    {
        // The hub's frames stop here: nothing may follow the close frame.
        Outbox::close(&*self.accounting.outbox, code);
        let frame = match self.accounting.outbox.custom_close() {
            Some((custom, reason)) if code == CloseCode::Disconnected => {
                control_frame(0x8, &custom.to_be_bytes(), reason.as_bytes())
            }
            _ => close_frame(code),
        };
        self.accounting
            .outbox
            .push_close(frame, code == CloseCode::SlowConsumer);
        // The peer may already be gone; the session ends either way.
        let sent = matches!(
            tokio::time::timeout(
                CLOSE_FLUSH_TIMEOUT,
                flush_queue(writer, &self.accounting.outbox, batch),
            )
            .await,
            Ok(Ok(()))
        );
        if sent {
            // Wait briefly for the client's close frame: closing a socket with unread data
            // makes the kernel send a reset, which can discard our close frame (and its code)
            // before the client reads it.
            let _ = tokio::time::timeout(
                CLOSE_FLUSH_TIMEOUT,
                poll_fn(|cx| {
                    loop {
                        match ready!(
                            stream.poll_next(cx, |frame| matches!(frame, Incoming::Close(_)))
                        ) {
                            Ok(false) => {}
                            Ok(true) | Err(_) => return Poll::Ready(()),
                        }
                    }
                }),
            )
            .await;
        }
        tracing::debug!(connection_id = self.connection.id(), %code, "closed");
        DisconnectReason::Closed(code)
    }

    /// Carries out a subscribe or unsubscribe the server side ordered (a disconnect is a
    /// close request, handled as every close is).
    async fn obey(&mut self, command: Command) {
        match command {
            Command::Subscribe { channel, since } => {
                self.connection.subscribe_by_server(channel, since).await;
            }
            Command::Unsubscribe { channel } => {
                self.connection.unsubscribe_by_server(&channel).await;
            }
            _ => {}
        }
    }

    fn reply_error(&self, code: ErrorCode, message: String, id: Option<String>) {
        self.accounting.outbox.metrics().error(code);
        self.accounting.outbox.push(
            &ServerFrame::Error(ErrorFrame::new(code, message).with_id(id)).encode(),
            Priority::High,
        );
    }

    /// Takes a token for a frame; a refused frame is answered with `rate_limited`.
    fn charge(
        &self,
        bucket: &TokenBucket<FrameClock>,
        rejections: &mut RejectionWindow,
        id: Option<String>,
    ) -> Charge {
        // The connection's own budget, then the one it shares with its user's other
        // connections (which reconnecting does not refill).
        let refused = bucket.try_acquire_one().err().or_else(|| {
            let (limiter, key) = self.user_budget.as_ref()?;
            limiter.try_acquire_one(key).err()
        });
        match refused {
            None => Charge::Allowed,
            Some(refused) => {
                let wait = refused.retry_after();
                let ms = u64::try_from(wait.as_millis()).unwrap_or(u64::MAX)
                    + u64::from(wait.subsec_nanos() % 1_000_000 != 0);
                self.accounting.outbox.metrics().rate_limited();
                self.accounting
                    .outbox
                    .metrics()
                    .error(ErrorCode::RateLimited);
                self.accounting.outbox.push(
                    &ServerFrame::Error(ErrorFrame::rate_limited(ms).with_id(id)).encode(),
                    Priority::High,
                );
                tracing::info!(
                    target: "switchboard::audit",
                    event = "rate_limited",
                    connection_id = self.connection.id(),
                    retry_after_ms = ms,
                );
                if rejections.record(&refused) {
                    Charge::Abusive
                } else {
                    Charge::Refused
                }
            }
        }
    }

    /// Hands a frame to the hub: as far as that takes no waiting (a publish through the
    /// memory backplane, entirely), and what is left boxed by the hub, for the session to
    /// await. Corks the outbox, so that all the frame causes for this connection goes out in
    /// one write: [`handled`](Self::handled) ends it.
    fn handle(&mut self, frame: ClientFrame) -> Handling<'_> {
        self.accounting.outbox.cork();
        match frame {
            // The transport's: the hub knows identities, not tokens. Boxed: rare.
            ClientFrame::Refresh(refresh) => Handling::Refresh(Box::pin(self.refresh(refresh))),
            frame => match self.connection.handle_now(frame) {
                Some(rest) => Handling::Waiting(rest),
                None => Handling::Done,
            },
        }
    }

    /// Does what the deadlines passed at `now` call for: queues a heartbeat ping (unless a
    /// write is blocked: the next one will be written), ends a coalescing window (`writing`
    /// then) and re-arms the timer. Returns the close code instead when the credentials
    /// expired or the connection is idle.
    fn deadlines_passed(
        &mut self,
        now: Instant,
        writing: &mut bool,
        timer: Pin<&mut tokio::time::Sleep>,
    ) -> Option<CloseCode> {
        let fired = self.deadlines.fire(now, &self.config);
        if fired.close.is_none() {
            if fired.ping && !*writing {
                self.accounting.outbox.push_control(&PING_FRAME);
            }
            if fired.flush {
                *writing = true;
            }
            timer.reset(self.deadlines.next());
        }
        fired.close
    }

    /// Ends the handling of a client frame (read at `started`), timed for
    /// `websocket_frame_handling_ms`. Returns whether what it caused for this connection (an
    /// answer; with the memory backplane, the connection's own copy of what it published)
    /// is queued: the session writes it at once, all together.
    fn handled(&self, started: Instant) -> bool {
        let to_write = self.accounting.outbox.uncork();
        self.accounting
            .outbox
            .metrics()
            .observe_handling(started.elapsed());
        to_write
    }

    /// `refresh`: verifies the new token (bounded by the handshake timeout) and, when it
    /// names the same user, runs the connection on it: the hub re-authorizes every
    /// subscription (`unsubscribed` `"reason": "forbidden"` for each it lost), the expiry
    /// moves, and the client gets `refreshed`. Otherwise `error` `unauthorized` (or
    /// `unsupported`), and nothing changes: the old credentials still expire when they did.
    /// Returns whether the expiry moved.
    async fn refresh(&mut self, frame: switchboard_protocol::Refresh) -> bool {
        let switchboard_protocol::Refresh { token, id } = frame;
        let outcome =
            tokio::time::timeout(self.config.handshake_timeout, self.auth.refresh(&token)).await;
        let mut moved = false;
        let refused = match outcome {
            Err(_elapsed) => Some((
                ErrorCode::Unavailable,
                "refresh timed out; retry".to_owned(),
            )),
            Ok(Err(rejection)) if rejection.is_unsupported() => {
                Some((ErrorCode::Unsupported, rejection.message().to_owned()))
            }
            Ok(Err(rejection)) => Some((ErrorCode::Unauthorized, rejection.message().to_owned())),
            Ok(Ok(identity)) if identity.user_id != self.connection.identity().user_id => Some((
                ErrorCode::Unauthorized,
                "the new token is for another user".to_owned(),
            )),
            Ok(Ok(identity)) => {
                let expires_at = identity.expires_at;
                let leeway = self.auth.leeway();
                moved = self.deadlines.expire_at(
                    expires_at.map(|at| deadline_for(at.checked_add(leeway).unwrap_or(at))),
                );
                let revoked = self.connection.reauthorize(identity).await;
                self.accounting.outbox.metrics().token_refresh(true);
                tracing::info!(
                    target: "switchboard::audit",
                    event = "token_refreshed",
                    connection_id = self.connection.id(),
                    user_id = self.connection.identity().user_id.as_deref().unwrap_or("-"),
                    revoked = revoked.len(),
                );
                self.accounting.outbox.push(
                    &ServerFrame::Refreshed(switchboard_protocol::Refreshed {
                        id: id.clone(),
                        expires_at: expires_at.map(switchboard_protocol::unix_ms),
                    })
                    .encode(),
                    Priority::High,
                );
                None
            }
        };
        if let Some((code, message)) = refused {
            self.accounting.outbox.metrics().token_refresh(false);
            tracing::warn!(
                target: "switchboard::audit",
                event = "refresh_refused",
                connection_id = self.connection.id(),
                user_id = self.connection.identity().user_id.as_deref().unwrap_or("-"),
                reason = %message,
            );
            self.reply_error(code, message, id);
        }
        moved
    }

    /// Admits a text frame that decoded to `decoded`, `len` bytes long: charges it to the
    /// rate limit and answers what the hub never sees (a decoding error, a refusal).
    fn admit(
        &mut self,
        decoded: Result<ClientFrame, DecodeError>,
        len: usize,
        bucket: &TokenBucket<FrameClock>,
        rejections: &mut RejectionWindow,
    ) -> Admitted {
        match decoded {
            // Keepalive and quality probes are never throttled while small; a large one is
            // charged like any frame (else pings would carry unmetered traffic).
            Ok(frame @ ClientFrame::Ping(_)) if len <= MAX_FREE_PING_BYTES => {
                Admitted::Handle(frame)
            }
            Ok(frame) => match self.charge(bucket, rejections, frame.id().map(str::to_owned)) {
                Charge::Allowed => Admitted::Handle(frame),
                refused => Admitted::refused(refused),
            },
            Err(err) => match self.charge(bucket, rejections, err.id().map(str::to_owned)) {
                Charge::Allowed => {
                    self.accounting.outbox.metrics().error(err.code());
                    self.accounting
                        .outbox
                        .push(&ServerFrame::Error(err.to_frame()).encode(), Priority::High);
                    Admitted::Done { abusive: false }
                }
                refused => Admitted::refused(refused),
            },
        }
    }
}

/// What is left of a client frame once [`Session::handle`] returns.
enum Handling<'a> {
    /// Nothing: handled entirely (a publish through the memory backplane, a ping).
    Done,
    /// What the hub left to wait for (a subscribe, a publish through Redis…).
    Waiting(Pin<Box<dyn Future<Output = ()> + Send + 'a>>),
    /// A `refresh`; its output says whether the credentials' expiry moved.
    Refresh(Pin<Box<dyn Future<Output = bool> + Send + 'a>>),
}

/// What [`Session::admit`] decided for a text frame.
enum Admitted {
    /// Hand it to the hub.
    Handle(ClientFrame),
    /// Answered (or refused) already; `abusive` when refusals came too fast to keep going.
    Done { abusive: bool },
}

impl Admitted {
    /// A frame the rate limit did not allow.
    fn refused(charge: Charge) -> Self {
        Self::Done {
            abusive: charge == Charge::Abusive,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::io::Cursor;

    use tokio_tungstenite::tungstenite::Message;
    use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode as WsCloseCode;
    use tokio_tungstenite::tungstenite::protocol::{Role, WebSocket};

    use switchboard_metrics::Metrics;
    use tokio::time::sleep;

    use super::*;

    /// What a client reads from `wire`, with tungstenite.
    fn read_one(wire: &[u8]) -> Message {
        let mut ws = WebSocket::from_raw_socket(Cursor::new(wire.to_vec()), Role::Client, None);
        ws.read().expect("tungstenite reads the frame")
    }

    fn gauges(metrics: &Metrics) -> (i64, i64) {
        let snapshot = metrics.snapshot();
        (
            snapshot.gauges["websocket_connections_total"],
            snapshot.gauges["websocket_active_sessions"],
        )
    }

    #[test]
    fn a_tick_is_the_same_moment_before_and_after_the_origin_and_orders_as_instants() {
        let origin = Tick::origin();
        for at in [
            origin,
            origin + Duration::from_nanos(1),
            origin + Duration::from_secs(3 * 24 * 3600) + Duration::from_nanos(7),
            origin
                .checked_sub(Duration::from_millis(1500))
                .unwrap_or(origin),
        ] {
            assert_eq!(Tick::at(at).instant(), at);
        }
        let earlier = origin.checked_sub(Duration::from_secs(1)).unwrap_or(origin);
        assert!(Tick::at(earlier) <= Tick::at(origin));
        assert!(Tick::at(origin + Duration::from_secs(100 * 365 * 24 * 3600)) < Tick::NEVER);
        assert_eq!(Tick::from_option(None), Tick::NEVER);
        assert_eq!(std::mem::size_of::<Deadlines>(), 32);
    }

    #[test]
    fn a_session_dropped_without_ending_is_uncounted_once() {
        let metrics = Metrics::new();
        let outbox = || {
            Arc::new(SessionOutbox::new(
                switchboard_queue::OutboundConfig::default(),
                metrics.clone(),
                None,
            ))
        };
        let live = Arc::new(LiveSessions::default());
        // A panicking or dropped session task drops its accounting without ending it.
        let dropped = Accounting::start(outbox(), Arc::clone(&live));
        assert_eq!(gauges(&metrics), (1, 1));
        assert_eq!(live.len(), 1);
        drop(dropped);
        assert_eq!(gauges(&metrics), (0, 0));
        assert_eq!(live.len(), 0, "and unregistered from shutdown's list");
        let lost = metrics.snapshot().labelled_counters["websocket_disconnections_by_reason_total"]
            ["connection_lost"];
        assert_eq!(lost, 1);

        // A session that ended normally is not uncounted again when dropped.
        let mut ended = Accounting::start(outbox(), Arc::clone(&live));
        ended.end(switchboard_metrics::DisconnectReason::ClientClosed);
        drop(ended);
        assert_eq!(gauges(&metrics), (0, 0));
    }

    #[test]
    fn close_frames_carry_the_code_and_reason_for_every_code_the_server_sends() {
        for code in [
            CloseCode::GoingAway,
            CloseCode::ProtocolError,
            CloseCode::PolicyViolation,
            CloseCode::InvalidPayload,
            CloseCode::TooLarge,
            CloseCode::IdleTimeout,
            CloseCode::TokenExpired,
            CloseCode::Disconnected,
            CloseCode::SlowConsumer,
        ] {
            match read_one(&close_frame(code)) {
                Message::Close(Some(frame)) => {
                    assert_eq!(frame.code, WsCloseCode::from(code.code()));
                    assert_eq!(frame.reason.as_str(), code.reason());
                }
                other => panic!("expected a close frame for {code}, got {other:?}"),
            }
        }
    }

    #[test]
    fn a_client_close_is_answered_with_its_own_code() {
        match read_one(&close_reply(Some(4100))) {
            Message::Close(Some(frame)) => assert_eq!(frame.code, WsCloseCode::from(4100)),
            other => panic!("expected a close frame, got {other:?}"),
        }
        assert_eq!(read_one(&close_reply(None)), Message::Close(None));
    }

    #[tokio::test(start_paused = true)]
    async fn a_coalescing_window_ends_within_its_length_whatever_the_tick() {
        // tokio's timer fires on the first millisecond tick at or after a deadline; a window
        // opening between ticks must still close within its length, and not much before.
        for window_us in [1_500, 2_000, 5_000, 10_000] {
            let window = Duration::from_micros(window_us);
            for offset_us in [0, 1, 300, 999] {
                tokio::time::advance(Duration::from_micros(offset_us)).await;
                let opened = Instant::now();
                sleep(timer_window(window)).await;
                let waited = opened.elapsed();
                assert!(waited <= window, "{window:?} window, waited {waited:?}");
                assert!(
                    waited + Duration::from_millis(1) >= window,
                    "{window:?} window, waited only {waited:?}"
                );
            }
        }
    }

    #[test]
    fn pongs_echo_the_ping_payload_and_tungstenite_reads_them() {
        for payload in [&b""[..], b"x", &[7; 125]] {
            assert_eq!(
                read_one(&pong_frame(payload)),
                Message::Pong(Bytes::copy_from_slice(payload))
            );
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_frame_finds_every_deadline_the_timer_would_fire_for() {
        // The timer is polled after the client's frames, so a frame read at or after the
        // earliest deadline must see it as due, whichever deadline that is.
        let config = TransportConfig::default()
            .heartbeat(Duration::from_secs(10))
            .idle_timeout(Duration::from_secs(60));
        let start = Instant::now();
        let at = |secs: u64| Tick::at(start + Duration::from_secs(secs));
        let mut deadlines = Deadlines::start(start, &config, Some(start + Duration::from_secs(5)));
        assert!(!deadlines.due(at(4)));
        assert!(deadlines.due(at(5)), "the expiry");
        assert!(deadlines.expire_at(None));
        assert!(!deadlines.due(at(9)));
        assert!(deadlines.due(at(10)), "the heartbeat");
        assert!(
            deadlines
                .fire(start + Duration::from_secs(10), &config)
                .ping
        );
        assert!(!deadlines.due(at(10)), "fired, the next ping is 10 s on");
        assert!(deadlines.open_window(start + Duration::from_secs(11), Duration::from_millis(5)));
        assert!(!deadlines.due(Tick::at(start + Duration::from_millis(11_003))));
        assert!(
            deadlines.due(Tick::at(start + Duration::from_millis(11_004))),
            "the window"
        );
        deadlines.fire(start + Duration::from_millis(11_004), &config);
        let silent = TransportConfig::default()
            .heartbeat(Duration::from_secs(3600))
            .idle_timeout(Duration::from_secs(60));
        let quiet = Deadlines::start(start, &silent, None);
        assert!(!quiet.due(at(59)));
        assert!(quiet.due(at(60)), "the idle timeout");
    }

    #[tokio::test(start_paused = true)]
    async fn one_timer_serves_every_deadline_and_firing_says_which_passed() {
        let config = TransportConfig::default()
            .heartbeat(Duration::from_secs(10))
            .idle_timeout(Duration::from_secs(60));
        let start = Instant::now();
        let mut deadlines = Deadlines::start(start, &config, Some(start + Duration::from_secs(45)));
        assert_eq!(deadlines.next(), start + Duration::from_secs(10));

        // A coalescing window is the earliest deadline while it is open, and only once.
        assert!(deadlines.open_window(start, Duration::from_millis(5)));
        assert!(!deadlines.open_window(start, Duration::from_millis(5)));
        assert_eq!(deadlines.next(), start + Duration::from_millis(4));
        let window_end = deadlines.fire(start + Duration::from_millis(4), &config);
        assert_eq!(
            window_end,
            Fired {
                close: None,
                ping: false,
                flush: true
            }
        );
        assert!(!deadlines.window_open());

        let heartbeat = deadlines.fire(start + Duration::from_secs(10), &config);
        assert!(heartbeat.ping && !heartbeat.flush && heartbeat.close.is_none());
        assert_eq!(deadlines.next(), start + Duration::from_secs(20));

        // The credentials expire before the idle timeout; a refresh moves the expiry.
        assert_eq!(
            deadlines
                .fire(start + Duration::from_secs(45), &config)
                .close,
            Some(CloseCode::TokenExpired)
        );
        assert!(deadlines.expire_at(None));
        assert!(!deadlines.expire_at(None));
        deadlines.heard(start + Duration::from_secs(30), &config);
        assert_eq!(
            deadlines
                .fire(start + Duration::from_secs(89), &config)
                .close,
            None
        );
        assert_eq!(
            deadlines
                .fire(start + Duration::from_secs(90), &config)
                .close,
            Some(CloseCode::IdleTimeout)
        );
    }

    #[test]
    fn the_heartbeat_is_an_empty_ping() {
        assert_eq!(read_one(&PING_FRAME), Message::Ping(Bytes::new()));
    }
}
