//! Upgrade handling and serving.

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use http::header::{self, HeaderMap, HeaderValue};
use http::{Method, Request, Response, StatusCode};
use http_body_util::Full;
use hyper_util::rt::{TokioIo, TokioTimer};
use switchboard_backplane::{Backplane, BoxBackplane};
use switchboard_hub::Hub;
use switchboard_limiter::{ConnectionCap, KeyedConnectionCap, KeyedLimiterConfig};
use switchboard_metrics::{AuthFailure, CapKind, Metrics};
use switchboard_protocol::{ClientId, ServerFrame, Welcome, now_ms, unix_ms};
use switchboard_queue::OutboundConfig;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio::sync::watch;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::auth::{AuthRequest, Rejection};
use crate::authenticator::Authenticator;
use crate::clock::TokioClock;
use crate::config::TransportConfig;
use crate::frames::FrameReader;
use crate::io::SharedTcp;
use crate::live::LiveSessions;
use crate::outbox::SessionOutbox;
use crate::request::{SUBPROTOCOL, client_of, offered_subprotocols};
use crate::session::{Accounting, BudgetKey, Deadlines, Session, UserLimiter, deadline_for};
use crate::span::{InSpan, session_span};

/// The body of every non-upgrade answer.
pub type ResponseBody = Full<Bytes>;

struct Inner<B: Backplane> {
    hub: Hub<B>,
    auth: Authenticator,
    config: Arc<TransportConfig>,
    global_cap: ConnectionCap,
    ip_cap: KeyedConnectionCap<IpAddr>,
    /// TCP connections accepted and not yet upgraded (or plain HTTP), in total and per
    /// address: the same limits as sessions, so silent sockets cannot hold descriptors
    /// without bound until the handshake timeout.
    pending_cap: ConnectionCap,
    pending_ip_cap: KeyedConnectionCap<IpAddr>,
    /// When an accept error was last logged, and how many were not logged since.
    accept_errors: parking_lot::Mutex<(Option<std::time::Instant>, u64)>,
    /// The per-user connection leases, when a per-user limit is set.
    leases: Option<Arc<crate::lease::Leases<B>>>,
    /// The per-user (or per-address) message budget, shared by a user's connections.
    user_limiter: Option<Arc<UserLimiter>>,
    shutdown: watch::Sender<bool>,
    /// Cancelled when shutdown begins: stops [`Transport::serve`]'s accept loop.
    stopping: CancellationToken,
    sessions: TaskTracker,
    /// The running sessions' outboxes, through which shutdown closes them.
    live: Arc<LiveSessions>,
    metrics: Metrics,
}

impl<B: Backplane> Drop for Inner<B> {
    fn drop(&mut self) {
        // Dropped without a shutdown: the sessions still running close with 1001 now.
        self.live.close_all();
    }
}

/// Serves Protocol v1 over WebSocket: validates upgrades (origin, caps, token), runs one
/// session per connection, and drains them on shutdown. Cheap to clone.
///
/// Use [`Transport::serve`] for a listener that serves only `/ws`,
/// [`Transport::accept_loop`] to serve your own routes beside it (and TLS), or call
/// [`Transport::upgrade`] from your own hyper or axum routes.
pub struct Transport<B: Backplane = BoxBackplane> {
    inner: Arc<Inner<B>>,
}

impl<B: Backplane> Clone for Transport<B> {
    fn clone(&self) -> Self {
        Self {
            inner: Arc::clone(&self.inner),
        }
    }
}

impl<B: Backplane> fmt::Debug for Transport<B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Transport")
            .field("auth", &self.inner.auth.mode())
            .field("connections", &self.connection_count())
            .finish_non_exhaustive()
    }
}

/// A rejected upgrade: status and JSON body `{"error": code, "message": …}`.
pub(crate) fn reject(status: StatusCode, code: &str, message: &str) -> Response<ResponseBody> {
    let body = serde_json::json!({ "error": code, "message": message }).to_string();
    Response::builder()
        .status(status)
        .header(header::CONTENT_TYPE, "application/json")
        .body(Full::new(Bytes::from(body)))
        .expect("a static response is valid")
}

fn header_has_token(headers: &HeaderMap, name: header::HeaderName, token: &str) -> bool {
    headers.get_all(name).iter().any(|v| {
        v.to_str().is_ok_and(|s| {
            s.split(',')
                .any(|part| part.trim().eq_ignore_ascii_case(token))
        })
    })
}

/// Why an upgrade request is malformed (answered with 400).
#[derive(Debug, Clone, Copy)]
struct Malformed(&'static str);

impl Malformed {
    fn into_response(self) -> Response<ResponseBody> {
        let mut response = reject(StatusCode::BAD_REQUEST, "bad_request", self.0);
        // Tell the client which version we speak (RFC 6455, section 4.4).
        response.headers_mut().insert(
            header::SEC_WEBSOCKET_VERSION,
            HeaderValue::from_static("13"),
        );
        response
    }
}

/// How the client asked for a WebSocket, and so how the upgrade is answered.
enum Handshake {
    /// HTTP/1.1 (RFC 6455): `101 Switching Protocols` with the key's accept value.
    Http1 { key: HeaderValue },
    /// HTTP/2 extended CONNECT (RFC 8441): `200 OK`, and the stream carries the frames.
    #[cfg(feature = "http2")]
    Http2,
}

/// Checks the upgrade request itself.
fn validate_handshake<Body>(req: &Request<Body>) -> Result<Handshake, Malformed> {
    #[cfg(feature = "http2")]
    if req.method() == Method::CONNECT {
        return validate_extended_connect(req);
    }
    if req.method() != Method::GET {
        return Err(Malformed("a WebSocket upgrade must be a GET"));
    }
    let headers = req.headers();
    if !header_has_token(headers, header::UPGRADE, "websocket") {
        return Err(Malformed("missing `Upgrade: websocket`"));
    }
    if !header_has_token(headers, header::CONNECTION, "upgrade") {
        return Err(Malformed("missing `Connection: Upgrade`"));
    }
    if headers
        .get(header::SEC_WEBSOCKET_VERSION)
        .is_none_or(|v| v.as_bytes() != b"13")
    {
        return Err(Malformed("`Sec-WebSocket-Version` must be 13"));
    }
    headers
        .get(header::SEC_WEBSOCKET_KEY)
        .filter(|k| is_valid_key(k.as_bytes()))
        .cloned()
        .map(|key| Handshake::Http1 { key })
        .ok_or(Malformed("`Sec-WebSocket-Key` must be 16 bytes in base64"))
}

/// An HTTP/2 WebSocket (RFC 8441, section 4): `CONNECT` with `:protocol = websocket` and
/// `Sec-WebSocket-Version: 13`; no key, no `Upgrade`/`Connection` (HTTP/2 has neither).
#[cfg(feature = "http2")]
fn validate_extended_connect<Body>(req: &Request<Body>) -> Result<Handshake, Malformed> {
    if req.version() != http::Version::HTTP_2 {
        return Err(Malformed("CONNECT opens a WebSocket only over HTTP/2"));
    }
    if req
        .extensions()
        .get::<hyper::ext::Protocol>()
        .is_none_or(|p| !p.as_str().eq_ignore_ascii_case("websocket"))
    {
        return Err(Malformed(
            "an extended CONNECT must carry `:protocol: websocket`",
        ));
    }
    if req
        .headers()
        .get(header::SEC_WEBSOCKET_VERSION)
        .is_none_or(|v| v.as_bytes() != b"13")
    {
        return Err(Malformed("`Sec-WebSocket-Version` must be 13"));
    }
    Ok(Handshake::Http2)
}

/// A valid key is the base64 of 16 bytes: 22 characters of the alphabet and `==`.
fn is_valid_key(key: &[u8]) -> bool {
    key.len() == 24
        && key.ends_with(b"==")
        && key[..22]
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || *b == b'+' || *b == b'/')
}

/// The address per-address limits are keyed by: an IPv4 address as is (also when it comes
/// IPv4-mapped, `::ffff:a.b.c.d`), an IPv6 address as its /64 — one subscriber's network,
/// which hands its hosts any number of addresses — so rotating addresses within it does not
/// multiply the caps and budgets.
fn client_address(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6(std::net::Ipv6Addr::from(
                u128::from(v6) & !((1u128 << 64) - 1),
            )),
        },
    }
}

/// An upgrade that passed the checks before authentication.
struct Prepared {
    /// The request without its body, which the authenticator reads.
    parts: http::request::Parts,
    peer: SocketAddr,
    handshake: Handshake,
    on_upgrade: hyper::upgrade::OnUpgrade,
    permits: (
        switchboard_limiter::ConnectionPermit,
        switchboard_limiter::KeyedConnectionPermit<IpAddr>,
    ),
    client: Option<ClientId>,
    selects_protocol: bool,
    /// Added to the identity's expiry.
    leeway: Duration,
    parent: tracing::Span,
}

enum Answer {
    Ready(Option<Response<ResponseBody>>),
    Waiting(std::pin::Pin<Box<dyn Future<Output = Response<ResponseBody>> + Send>>),
}

/// The answer to an upgrade request ([`Transport::upgrade`]): ready at once unless a host's
/// own authenticator has to wait. `Send` and `'static`.
#[must_use = "the upgrade is answered, and its session started, only when awaited"]
pub struct UpgradeFuture(Answer);

impl UpgradeFuture {
    fn ready(response: Response<ResponseBody>) -> Self {
        Self(Answer::Ready(Some(response)))
    }
}

impl fmt::Debug for UpgradeFuture {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self.0 {
            Answer::Ready(_) => "UpgradeFuture(ready)",
            Answer::Waiting(_) => "UpgradeFuture(authenticating)",
        })
    }
}

impl Future for UpgradeFuture {
    type Output = Response<ResponseBody>;

    fn poll(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Self::Output> {
        match &mut self.0 {
            Answer::Ready(response) => std::task::Poll::Ready(
                response
                    .take()
                    .expect("an UpgradeFuture is not polled after it completed"),
            ),
            Answer::Waiting(future) => future.as_mut().poll(cx),
        }
    }
}

/// Builds a [`Transport`].
#[must_use]
pub struct TransportBuilder<B: Backplane> {
    hub: Hub<B>,
    auth: Authenticator,
    config: TransportConfig,
    metrics: Metrics,
}

impl<B: Backplane> fmt::Debug for TransportBuilder<B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TransportBuilder")
            .field("auth", &self.auth.mode())
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl<B: Backplane> TransportBuilder<B> {
    /// How connections authenticate (default: [`Authenticator::open`]).
    pub fn auth(mut self, auth: Authenticator) -> Self {
        self.auth = auth;
        self
    }

    /// The configuration (default: [`TransportConfig::default`]).
    pub fn config(mut self, config: TransportConfig) -> Self {
        self.config = config;
        self
    }

    /// Records into `metrics` (default: nothing is recorded).
    pub fn metrics(mut self, metrics: Metrics) -> Self {
        self.metrics = metrics;
        self
    }

    /// The transport.
    pub fn build(self) -> Transport<B> {
        Transport::assemble(self.hub, self.auth, self.config, self.metrics)
    }
}

impl<B: Backplane> Transport<B> {
    /// A transport serving `hub`'s connections, authenticating with `auth`, recording no
    /// metrics. [`Transport::builder`] offers every option.
    #[must_use]
    pub fn new(hub: Hub<B>, auth: Authenticator, config: TransportConfig) -> Self {
        Self::assemble(hub, auth, config, Metrics::noop())
    }

    /// A builder for a transport serving `hub`'s connections.
    pub fn builder(hub: Hub<B>) -> TransportBuilder<B> {
        TransportBuilder {
            hub,
            auth: Authenticator::open(),
            config: TransportConfig::default(),
            metrics: Metrics::noop(),
        }
    }

    fn assemble(
        hub: Hub<B>,
        auth: Authenticator,
        config: TransportConfig,
        metrics: Metrics,
    ) -> Self {
        let (shutdown, _) = watch::channel(false);
        let leases = config
            .max_connections_per_user
            .map(|limit| crate::lease::Leases::start(hub.clone(), limit, config.user_lease_ttl));
        Self {
            inner: Arc::new(Inner {
                hub,
                auth,
                global_cap: ConnectionCap::with_limit(config.max_connections),
                ip_cap: KeyedConnectionCap::with_hasher(
                    config.max_connections_per_ip,
                    std::collections::hash_map::RandomState::new(),
                ),
                pending_cap: ConnectionCap::with_limit(config.max_connections),
                pending_ip_cap: KeyedConnectionCap::with_hasher(
                    config.max_connections_per_ip,
                    std::collections::hash_map::RandomState::new(),
                ),
                accept_errors: parking_lot::Mutex::new((None, 0)),
                leases,
                user_limiter: config.user_rate_limit.map(|quota| {
                    Arc::new(UserLimiter::with_clock(
                        KeyedLimiterConfig::default().quota(quota),
                        TokioClock::new(),
                    ))
                }),
                config: Arc::new(config),
                shutdown,
                stopping: CancellationToken::new(),
                sessions: TaskTracker::new(),
                live: Arc::default(),
                metrics,
            }),
        }
    }

    /// The hub sessions are attached to.
    #[must_use]
    pub fn hub(&self) -> &Hub<B> {
        &self.inner.hub
    }

    /// The configuration.
    #[must_use]
    pub fn config(&self) -> &TransportConfig {
        &self.inner.config
    }

    /// Open WebSocket sessions: a session counts from the moment its upgrade is accepted
    /// and its `welcome` queued until its connection ends, as the
    /// `websocket_connections_total` gauge does. An upgrade still being authenticated (or
    /// counted against the per-user limit) holds a slot against the caps but is not a
    /// session yet, and neither is a connection that has not asked to upgrade.
    #[must_use]
    pub fn connection_count(&self) -> usize {
        self.inner.live.len()
    }

    /// Whether shutdown has begun.
    #[must_use]
    pub fn is_draining(&self) -> bool {
        *self.inner.shutdown.borrow()
    }

    /// Answers a WebSocket upgrade request from `peer`. Checks, in order: a well-formed
    /// upgrade (400), the `Origin` (403), the global cap (503), the per-IP cap (429 with
    /// `Retry-After`), the `client` parameter (400), and the [`Authenticator`] (401, or the
    /// host's [`Rejection`](crate::Rejection)). On success the future resolves to
    /// `101 Switching Protocols`, and the session starts once hyper hands over the connection.
    ///
    /// Works with any request type hyper can upgrade, including axum's; the body is dropped
    /// at once (an upgrade has none), so the future is `Send` and `'static` whatever it is.
    /// With an open or JWT authenticator the future is ready when first polled; a host's own
    /// [`Authenticate`](crate::Authenticate) may make it wait, at most the
    /// [`handshake_timeout`](TransportConfig::handshake_timeout) (then 503).
    pub fn upgrade<Body>(&self, req: Request<Body>, peer: SocketAddr) -> UpgradeFuture {
        let prepared = match self.prepare(req, peer) {
            Ok(prepared) => prepared,
            Err(response) => return UpgradeFuture::ready(response),
        };
        let request = AuthRequest::new(&prepared.parts, peer);
        if let Some(outcome) = self.inner.auth.authenticate_now(&request) {
            return self.complete(prepared, outcome);
        }
        let transport = self.clone();
        UpgradeFuture(Answer::Waiting(Box::pin(async move {
            let request = AuthRequest::new(&prepared.parts, peer);
            let outcome = tokio::time::timeout(
                transport.inner.config.handshake_timeout,
                transport.inner.auth.authenticate(&request),
            )
            .await
            .unwrap_or_else(|_| {
                Err(Rejection::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "authentication timed out",
                ))
            });
            transport.complete(prepared, outcome).await
        })))
    }

    /// Answers an authenticated (or refused) upgrade: at once, unless a per-user limit
    /// makes it count the user's connections first.
    fn complete(
        &self,
        prepared: Prepared,
        outcome: Result<switchboard_hub::Identity, Rejection>,
    ) -> UpgradeFuture {
        // Counted only with a limit, and for a connection with a user.
        let counted = match (&outcome, &self.inner.leases) {
            (Ok(identity), Some(leases)) => identity
                .user_id
                .clone()
                .map(|user| (user, Arc::clone(leases))),
            _ => None,
        };
        let Some((user, leases)) = counted else {
            return UpgradeFuture::ready(self.finish(prepared, outcome, None));
        };
        let transport = self.clone();
        UpgradeFuture(Answer::Waiting(Box::pin(async move {
            let lease = match leases.acquire(&user).await {
                Ok(Some(lease)) => Some(Box::new(lease)),
                Ok(None) => {
                    let peer = prepared.peer;
                    tracing::warn!(target: "switchboard::audit", event = "user_cap", %peer, user_id = &*user, "upgrade refused");
                    transport.inner.metrics.cap_rejected(CapKind::PerUser);
                    let mut response = reject(
                        StatusCode::TOO_MANY_REQUESTS,
                        "rate_limited",
                        "too many connections for this user",
                    );
                    response.headers_mut().insert(
                        header::RETRY_AFTER,
                        HeaderValue::from(transport.inner.config.retry_after.as_secs().max(1)),
                    );
                    return response;
                }
                Err(err) => {
                    tracing::warn!(%err, user_id = &*user, "the backplane cannot count this user's connections; admitting it uncounted");
                    None
                }
            };
            transport.finish(prepared, outcome, lease)
        })))
    }

    /// The WebSocket endpoint as a [`tower_service::Service`], to mount in a router (axum's
    /// `route_service`): see [`WebSocketService`](crate::WebSocketService).
    #[must_use]
    pub fn service(&self) -> crate::WebSocketService<B> {
        crate::WebSocketService::new(self.clone())
    }

    /// Answers a WebSocket upgrade request from `peer` for `identity`, which the host has
    /// already resolved (its own login middleware ran before this handler): every check of
    /// [`upgrade`](Self::upgrade) but the [`Authenticator`]. The identity's
    /// [`expires_at`](switchboard_hub::Identity::expires_at), when set, closes the
    /// connection with 4001 at that time.
    pub fn upgrade_with<Body>(
        &self,
        req: Request<Body>,
        peer: SocketAddr,
        identity: switchboard_hub::Identity,
    ) -> UpgradeFuture {
        match self.prepare(req, peer) {
            Ok(mut prepared) => {
                prepared.leeway = Duration::ZERO;
                self.complete(prepared, Ok(identity))
            }
            Err(response) => UpgradeFuture::ready(response),
        }
    }

    /// The checks that come before authentication; on success the connection is counted
    /// against the caps, and what the upgrade needs is taken from the request.
    #[allow(
        clippy::result_large_err,
        reason = "the error is the answer, returned once per upgrade, never propagated further"
    )]
    fn prepare<Body>(
        &self,
        mut req: Request<Body>,
        peer: SocketAddr,
    ) -> Result<Prepared, Response<ResponseBody>> {
        let inner = &self.inner;
        let handshake = validate_handshake(&req).map_err(Malformed::into_response)?;
        // One browser request has one Origin; several are a forged request, and checking
        // only the first would let the others through.
        if req
            .headers()
            .get_all(header::ORIGIN)
            .iter()
            .nth(1)
            .is_some()
        {
            tracing::warn!(target: "switchboard::audit", event = "origin_rejected", %peer, "upgrade refused: more than one Origin header");
            inner.metrics.auth_failure(AuthFailure::ForbiddenOrigin);
            return Err(reject(
                StatusCode::FORBIDDEN,
                "forbidden",
                "more than one Origin header",
            ));
        }
        if let (Some(allowed), Some(origin)) = (
            &inner.config.allowed_origins,
            req.headers().get(header::ORIGIN),
        ) {
            let origin = origin.to_str().unwrap_or("");
            if !allowed
                .iter()
                .any(|a| a == "*" || a.eq_ignore_ascii_case(origin))
            {
                tracing::warn!(target: "switchboard::audit", event = "origin_rejected", %peer, origin, "upgrade refused");
                inner.metrics.auth_failure(AuthFailure::ForbiddenOrigin);
                return Err(reject(
                    StatusCode::FORBIDDEN,
                    "forbidden",
                    "origin not allowed",
                ));
            }
        }
        if self.is_draining() {
            return Err(reject(
                StatusCode::SERVICE_UNAVAILABLE,
                "unavailable",
                "server is shutting down",
            ));
        }
        let Ok(global) = inner.global_cap.try_acquire() else {
            tracing::warn!(target: "switchboard::audit", event = "global_cap", %peer, "upgrade refused");
            inner.metrics.cap_rejected(CapKind::Global);
            return Err(reject(
                StatusCode::SERVICE_UNAVAILABLE,
                "unavailable",
                "server connection limit reached",
            ));
        };
        let Ok(per_ip) = inner.ip_cap.try_acquire(&client_address(peer.ip())) else {
            tracing::warn!(target: "switchboard::audit", event = "ip_cap", %peer, "upgrade refused");
            inner.metrics.cap_rejected(CapKind::PerIp);
            let mut response = reject(
                StatusCode::TOO_MANY_REQUESTS,
                "rate_limited",
                "too many connections from this address",
            );
            response.headers_mut().insert(
                header::RETRY_AFTER,
                HeaderValue::from(inner.config.retry_after.as_secs().max(1)),
            );
            return Err(response);
        };
        let client = client_of(req.uri())
            .map_err(|reason| reject(StatusCode::BAD_REQUEST, "bad_request", &reason))?;
        let selects_protocol = offered_subprotocols(req.headers()).any(|p| p == SUBPROTOCOL);
        let on_upgrade = hyper::upgrade::on(&mut req);
        // The body goes now: nothing waits on it, and the caller's body type need not be
        // `Send` for the upgrade's future to be.
        let (parts, _body) = req.into_parts();
        Ok(Prepared {
            parts,
            peer,
            handshake,
            on_upgrade,
            permits: (global, per_ip),
            client,
            selects_protocol,
            leeway: inner.auth.leeway(),
            // The session's span is a child of the span current here: the host's request span.
            parent: tracing::Span::current(),
        })
    }

    /// Answers a prepared upgrade: 101 and the session started when `outcome` is an
    /// identity, the rejection's answer otherwise.
    fn finish(
        &self,
        prepared: Prepared,
        outcome: Result<switchboard_hub::Identity, Rejection>,
        // Boxed: kept by every session, where an unused `None` then costs one word.
        lease: Option<Box<crate::lease::LeaseGuard<B>>>,
    ) -> Response<ResponseBody> {
        let inner = &self.inner;
        let Prepared {
            parts: _,
            peer,
            handshake,
            on_upgrade,
            permits,
            client,
            selects_protocol,
            leeway,
            parent,
        } = prepared;
        let identity = match outcome {
            Ok(identity) => identity,
            Err(rejection) => {
                tracing::warn!(target: "switchboard::audit", event = "auth_failed", %peer, reason = rejection.reason(), "upgrade refused");
                inner.metrics.auth_failure(rejection.failure());
                return reject(rejection.status(), rejection.code(), rejection.message());
            }
        };
        // Checked: a host's `Identity` may carry any time, and a token's is bounded by
        // `MAX_EXP`, but no time a client chose may overflow here.
        let expires_at = identity
            .expires_at
            .map(|at| at.checked_add(leeway).unwrap_or(at));
        // One box for what the task carries into the session: the task's future holds a
        // pointer to it rather than a copy of each (idle memory per connection).
        let budget_key = identity.user_id.clone().map_or(
            BudgetKey::Address(client_address(peer.ip())),
            BudgetKey::User,
        );
        let pending = Box::new((
            self.clone(),
            (identity, client, budget_key),
            expires_at,
            (permits, lease),
            (parent, peer),
        ));
        // This task only waits for the upgrade; the session then runs as a task of its own,
        // so what the wait needed is not kept in every session's future (idle memory).
        inner.sessions.spawn(async move {
            let upgraded = match on_upgrade.await {
                Ok(upgraded) => upgraded,
                Err(err) => {
                    tracing::debug!(%peer, %err, "upgrade did not complete");
                    return;
                }
            };
            let (transport, identity, expires_at, permits, origin) = unbox(pending);
            let sessions = &transport.inner.sessions;
            match upgraded.downcast::<TokioIo<TcpStream>>() {
                // Plain TCP: shared, so the fan-out can write to it directly.
                Ok(parts) => {
                    let (read, write) = parts.io.into_inner().into_split();
                    let socket = SharedTcp(Arc::new(write));
                    let direct = transport
                        .inner
                        .config
                        .write_coalesce
                        .is_none()
                        .then(|| Arc::clone(&socket.0));
                    sessions.spawn(transport.session(
                        (parts.read_buf, read),
                        socket,
                        direct,
                        identity,
                        expires_at,
                        permits,
                        origin,
                    ));
                }
                // Anything else (TLS, a host's own stream): the session owns both halves
                // and writes what is queued.
                Err(upgraded) => {
                    let (read, write) = tokio::io::split(TokioIo::new(upgraded));
                    sessions.spawn(transport.session(
                        (Bytes::new(), read),
                        write,
                        None,
                        identity,
                        expires_at,
                        permits,
                        origin,
                    ));
                }
            }
        });

        let mut response = match handshake {
            Handshake::Http1 { key } => Response::builder()
                .status(StatusCode::SWITCHING_PROTOCOLS)
                .header(header::UPGRADE, "websocket")
                .header(header::CONNECTION, "Upgrade")
                .header(
                    header::SEC_WEBSOCKET_ACCEPT,
                    derive_accept_key(key.as_bytes()),
                ),
            // RFC 8441, section 5: a 2xx opens the stream for the WebSocket's frames.
            #[cfg(feature = "http2")]
            Handshake::Http2 => Response::builder().status(StatusCode::OK),
        };
        // Only the protocol is selected, never the token's carrier. A client that offered
        // neither gets no header, as RFC 6455 has it.
        if selects_protocol {
            response = response.header(header::SEC_WEBSOCKET_PROTOCOL, SUBPROTOCOL);
        }
        response
            .body(Full::new(Bytes::new()))
            .expect("a static response is valid")
    }

    /// Registers the connection with the hub; the returned future runs its session to the
    /// end, reading `read` (after the bytes that came with the upgrade request) and writing
    /// `write`; with `direct`, the fan-out writes to that socket itself when nothing is
    /// queued. Not an `async fn`, so that its arguments are not kept in the session's future.
    /// The session runs in a span (see [`session_span`]) whose parent is `parent`.
    #[allow(clippy::too_many_arguments)] // Each is moved into the session once.
    fn session<R, W, P: Send + Sync>(
        &self,
        (pre, read): (Bytes, R),
        write: W,
        direct: Option<Arc<tokio::net::tcp::OwnedWriteHalf>>,
        (identity, client, budget_key): (switchboard_hub::Identity, Option<ClientId>, BudgetKey),
        expires_at: Option<SystemTime>,
        permits: P,
        (parent, peer): (tracing::Span, SocketAddr),
    ) -> impl Future<Output = ()> + Send + use<R, W, P, B>
    where
        R: AsyncRead + Unpin + Send,
        W: AsyncWrite + Unpin + Send,
    {
        let inner = &self.inner;
        let outbox = Arc::new(SessionOutbox::new(
            // The transport counts in its metrics; the queue's own counters would cost every
            // connection a block kept for its whole life.
            OutboundConfig::default()
                .with_capacity(inner.config.outbound_capacity)
                .with_max_bytes(Some(inner.config.outbound_max_bytes))
                .with_counters(false),
            inner.metrics.clone(),
            direct,
        ));
        let accounting = Accounting::start(Arc::clone(&outbox), Arc::clone(&inner.live));
        let user_id = identity.user_id.as_deref().map(str::to_owned);
        let credentials_expire = identity.expires_at.map(unix_ms);
        let mut connection = inner.hub.connect(
            identity,
            Arc::clone(&outbox) as Arc<dyn switchboard_hub::Outbox>,
        );
        if let Some(client) = client {
            connection.set_client_id(client);
        }
        switchboard_hub::Outbox::push(
            &*outbox,
            &ServerFrame::Welcome(Welcome {
                connection_id: connection.id().to_owned(),
                user_id,
                heartbeat_ms: u64::try_from(inner.config.heartbeat.as_millis()).unwrap_or(u64::MAX),
                timestamp: now_ms(),
                expires_at: credentials_expire,
            })
            .encode(),
            switchboard_protocol::Priority::Critical,
        );
        let span = session_span(
            &parent,
            connection.id(),
            connection.identity().user_id.as_deref(),
            peer,
        );
        let reader = FrameReader::new(&pre, read, inner.config.max_message_bytes);
        let session = Session {
            accounting,
            user_budget: inner
                .user_limiter
                .as_ref()
                .map(|limiter| (Arc::clone(limiter), budget_key)),
            connection,
            config: Arc::clone(&inner.config),
            deadlines: Deadlines::start(
                tokio::time::Instant::now(),
                &inner.config,
                expires_at.map(deadline_for),
            ),
            auth: inner.auth.clone(),
            permits,
        };
        InSpan::new(span, session.run(reader, write))
    }

    /// An HTTP/1.1 server configuration with the handshake timeout applied.
    #[must_use]
    pub fn http1(&self) -> hyper::server::conn::http1::Builder {
        let mut builder = hyper::server::conn::http1::Builder::new();
        builder
            .timer(TokioTimer::new())
            .header_read_timeout(self.inner.config.handshake_timeout);
        builder
    }

    /// Admits a TCP connection just accepted from `peer`, before anything is read from it:
    /// it counts against [`max_connections`](TransportConfig::max_connections) and
    /// [`max_connections_per_ip`](TransportConfig::max_connections_per_ip) — as a
    /// connection not yet upgraded, apart from the sessions — until the returned
    /// [`Admission`] is dropped (when the connection ends or has been upgraded). Over either
    /// cap the connection is refused: [`refuse`](Self::refuse) answers it 429 or 503 without
    /// waiting for its request. Custom accept loops call this; [`serve`](Self::serve) does.
    ///
    /// # Errors
    /// [`AdmissionRefused`] saying which cap is full.
    pub fn admit(&self, peer: SocketAddr) -> Result<Admission, AdmissionRefused> {
        let inner = &self.inner;
        let Ok(global) = inner.pending_cap.try_acquire() else {
            inner.metrics.cap_rejected(CapKind::Global);
            return Err(AdmissionRefused::Global);
        };
        let Ok(per_ip) = inner.pending_ip_cap.try_acquire(&client_address(peer.ip())) else {
            inner.metrics.cap_rejected(CapKind::PerIp);
            return Err(AdmissionRefused::PerIp);
        };
        Ok(Admission {
            _global: global,
            _per_ip: per_ip,
        })
    }

    /// Answers a connection [`admit`](Self::admit) refused with
    /// [`AdmissionRefused::response`], if its socket takes it at once (it never waits for the
    /// client); dropping the stream then closes it.
    pub fn refuse(&self, refused: AdmissionRefused, stream: &TcpStream) {
        let _ = stream.try_write(&refused.response(self.inner.config.retry_after));
    }

    /// Reports an accept error without flooding the log (at most one line a second, with
    /// how many were not logged) and returns how long to pause before accepting again:
    /// descriptor exhaustion (`EMFILE`) must not spin the accept loop.
    pub fn accept_failed(&self, err: &std::io::Error) -> Duration {
        let mut state = self.inner.accept_errors.lock();
        let (last, suppressed) = &mut *state;
        let now = std::time::Instant::now();
        if last.is_none_or(|at| now.duration_since(at) >= Duration::from_secs(1)) {
            tracing::warn!(%err, suppressed = *suppressed, "accept failed");
            *last = Some(now);
            *suppressed = 0;
        } else {
            *suppressed += 1;
        }
        Duration::from_millis(50)
    }

    /// Cancelled when [`shutdown`](Self::shutdown) begins: what stops [`serve`](Self::serve).
    pub(crate) fn stopping(&self) -> CancellationToken {
        self.inner.stopping.clone()
    }

    /// Stops accepting upgrades and closes every session with 1001, each at a random moment
    /// within the drain window, then waits for them to end, at most `timeout`.
    /// Returns whether every session ended in time.
    pub async fn shutdown(&self, timeout: Duration) -> bool {
        self.inner.shutdown.send_replace(true);
        self.inner.stopping.cancel();
        let live = Arc::clone(&self.inner.live);
        let window = self.inner.config.drain_window;
        self.inner
            .sessions
            .spawn(async move { live.drain(window).await });
        self.inner.sessions.close();
        tokio::time::timeout(timeout, self.inner.sessions.wait())
            .await
            .is_ok()
    }
}

/// Moves a value out of its box and frees the box now, not at the end of the caller's
/// scope (a box moved out of with `*` is freed only when its binding goes out of scope).
#[allow(clippy::boxed_local)] // Taking the box is the point: it is freed on return.
fn unbox<T>(boxed: Box<T>) -> T {
    *boxed
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn per_address_limits_key_ipv6_by_its_64_and_unmap_ipv4() {
        let key = |s: &str| client_address(s.parse().unwrap()).to_string();
        assert_eq!(key("192.0.2.7"), "192.0.2.7");
        assert_eq!(key("::ffff:192.0.2.7"), "192.0.2.7");
        assert_eq!(key("2001:db8:1:2:aaaa:bbbb:cccc:dddd"), "2001:db8:1:2::");
        assert_eq!(key("2001:db8:1:2::1"), key("2001:db8:1:2:ffff::9"));
        assert_ne!(key("2001:db8:1:2::1"), key("2001:db8:1:3::1"));
        assert_eq!(key("::1"), "::");
    }

    #[test]
    fn keys_must_be_sixteen_bytes_of_base64() {
        assert!(is_valid_key(b"dGhlIHNhbXBsZSBub25jZQ=="));
        assert!(!is_valid_key(b"dGhlIHNhbXBsZSBub25jZQ="));
        assert!(!is_valid_key(b"dGhlIHNhbXBsZSBub25j!Q=="));
        assert!(!is_valid_key(b""));
    }
}

/// A TCP connection counted against the connection caps until dropped (see
/// [`Transport::admit`]).
#[derive(Debug)]
#[must_use = "the connection is counted only while its admission is held"]
pub struct Admission {
    _global: switchboard_limiter::ConnectionPermit,
    _per_ip: switchboard_limiter::KeyedConnectionPermit<IpAddr>,
}

/// Why [`Transport::admit`] refused a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AdmissionRefused {
    /// The client address already holds its maximum of connections not yet upgraded.
    #[error("too many connections from this address")]
    PerIp,
    /// The server already holds its maximum of connections not yet upgraded.
    #[error("server connection limit reached")]
    Global,
}

impl AdmissionRefused {
    /// The answer written to a refused connection: 429 (with `Retry-After`, whole seconds)
    /// or 503, each with the JSON body of every other refusal and `Connection: close`.
    #[must_use]
    pub fn response(self, retry_after: Duration) -> Vec<u8> {
        let (status, extra, code, message) = match self {
            Self::PerIp => (
                "429 Too Many Requests",
                format!("Retry-After: {}\r\n", retry_after.as_secs().max(1)),
                "rate_limited",
                "too many connections from this address",
            ),
            Self::Global => (
                "503 Service Unavailable",
                String::new(),
                "unavailable",
                "server connection limit reached",
            ),
        };
        let body = serde_json::json!({ "error": code, "message": message }).to_string();
        format!(
            "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n{extra}\r\n{body}",
            body.len()
        )
        .into_bytes()
    }
}
