//! Wiring: backplane, hub, transport, metrics and TLS behind one listener, and the graceful
//! shutdown.

use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use hyper::body::Incoming;
use switchboard_backplane::{
    BackplaneError, BoxBackplane, HealthState, HistoryOverride, MemoryBackplane,
    MemoryBackplaneConfig, RedisBackplane, RedisBackplaneConfig,
};
use switchboard_hub::{Hub, HubConfig};
use switchboard_metrics::Metrics;
use switchboard_tls::{ReloadWatcher, ReloadWatcherConfig, ReloadableAcceptor, TlsError};
use switchboard_transport::{
    AuthConfigError, Authenticator, TokenVerifier, Transport, TransportConfig, WrapStream,
};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;
use tokio_util::sync::{CancellationToken, DropGuard};
use tokio_util::task::TaskTracker;

use crate::config::{ConfigError, ServerConfig};
use crate::routes;
// Where `api` finds it; the state is the routes' (see routes.rs).
use crate::state::AppState;

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServerError {
    /// The configuration is invalid. Fix it (the binary exits with 2).
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The address cannot be listened on (in use, not local, no permission).
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// `host:port` as configured.
        addr: String,
        /// The system's error.
        source: io::Error,
    },
    /// The TLS files are missing or invalid: a server asked for TLS does not start without
    /// it. The message names the file and the problem.
    #[error("TLS: {0}")]
    Tls(#[from] TlsError),
    /// The JWT public key file cannot be read.
    #[error("cannot read AUTH_JWT_PUBLIC_KEY_PATH {}: {source}", path.display())]
    PublicKeyFile {
        /// The file.
        path: PathBuf,
        /// The system's error.
        source: io::Error,
    },
    /// The JWT secret or public key is unusable.
    #[error("JWT authentication: {0}")]
    Auth(#[from] AuthConfigError),
    /// The Redis backplane refused its configuration (an invalid URL).
    #[error("Redis backplane: {0}")]
    Backplane(#[from] BackplaneError),
    /// The TLS reload watcher could not listen for `SIGHUP`.
    #[error("cannot watch the TLS files for reload: {0}")]
    ReloadWatcher(io::Error),
    /// Webhooks could not start: a bad `WEBHOOK_URL`, or a `WEBHOOK_QUEUE_PATH` that cannot
    /// be opened.
    #[error("webhooks: {0}")]
    Webhooks(#[from] crate::webhooks::WebhookError),
}

impl ServerError {
    /// The process exit code for this error: 2 for an invalid configuration, 1 otherwise.
    #[must_use]
    pub fn exit_code(&self) -> i32 {
        match self {
            Self::Config(_) | Self::Backplane(BackplaneError::Config(_)) => 2,
            _ => 1,
        }
    }
}

/// What the backplane is, kept to shut it down.
#[derive(Debug, Clone)]
enum BackplaneHandle {
    Memory(MemoryBackplane),
    Redis(RedisBackplane),
}

impl BackplaneHandle {
    async fn shutdown(&self) {
        match self {
            Self::Memory(memory) => memory.shutdown(),
            Self::Redis(redis) => redis.shutdown().await,
        }
    }
}

/// How long an instance's claim on a channel lasts without renewal, when webhooks report
/// channel occupancy: a dead instance's channels are reported vacated within about that.
const OCCUPANCY_CLAIM: Duration = Duration::from_secs(30);

/// How long a shutdown waits at most for the webhook receiver to take the last events.
const WEBHOOK_DRAIN: Duration = Duration::from_secs(5);

/// The hub's lifecycle stream capacity when webhooks read it.
const WEBHOOK_EVENT_CAPACITY: std::num::NonZeroUsize = std::num::NonZeroUsize::new(65_536).unwrap();

/// A running server: WebSocket (`/ws`), health, readiness, metrics, the HTTP API and the
/// demo page on one listener, over TLS when configured.
///
/// [`Server::bind`] starts it; [`Server::shutdown`] drains it. Dropping it stops accepting
/// new connections without draining the open ones.
pub struct Server {
    state: Arc<AppState>,
    local_addr: SocketAddr,
    tls: Option<ReloadableAcceptor>,
    backplane: BackplaneHandle,
    /// Stops the accept loop when cancelled, or when the server is dropped.
    stop: DropGuard,
    connections: TaskTracker,
    accept: JoinHandle<()>,
    _reload_watcher: Option<ReloadWatcher>,
    /// Drained by [`Server::shutdown`]; stops with the server.
    webhooks: Option<crate::webhooks::Webhooks>,
}

impl fmt::Debug for Server {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Server")
            .field("local_addr", &self.local_addr)
            .field("tls", &self.tls.is_some())
            .field("backplane", &self.backplane_kind())
            .field("auth", &self.state.config.auth_mode())
            .finish_non_exhaustive()
    }
}

impl Server {
    /// Validates `config`, loads the TLS certificate and JWT keys, connects the backplane,
    /// binds the listener and starts serving. Logs where it listens, the backplane, the TLS
    /// state and the auth mode.
    ///
    /// With Redis configured and unreachable it still starts, degraded (`/health` says so)
    /// and reconnecting.
    ///
    /// # Errors
    /// [`ServerError`]: an invalid configuration, unreadable or invalid TLS or key files, or
    /// an address that cannot be bound.
    ///
    /// # Panics
    /// Outside a Tokio runtime.
    pub async fn bind(config: ServerConfig) -> Result<Self, ServerError> {
        config.validate()?;
        let auth = authenticator(&config)?;
        let tls = config
            .tls
            .clone()
            .map(ReloadableAcceptor::new)
            .transpose()?;
        let metrics = Metrics::new();
        let (backplane, boxed) = connect_backplane(&config).await?;
        let hub_config = config.namespaces.iter().fold(
            HubConfig::default()
                .max_subscriptions_per_connection(config.max_subscriptions_per_connection)
                .redact_fields(config.redact_fields.iter().cloned())
                .presence_refresh(presence_refresh(config.presence_ttl))
                // Webhooks read the lifecycle stream: room for bursts of connects.
                .event_capacity(if config.webhook.is_some() {
                    WEBHOOK_EVENT_CAPACITY
                } else {
                    HubConfig::default().event_capacity
                })
                .occupancy(
                    config
                        .webhook
                        .as_ref()
                        .filter(|webhook| webhook.wants_occupancy())
                        .map(|_| OCCUPANCY_CLAIM),
                ),
            |hub, (name, namespace)| hub.namespace(name, namespace.options.clone()),
        );
        let hub = Hub::builder(boxed)
            .config(hub_config)
            .metrics(metrics.clone())
            .build();
        let webhooks = config
            .webhook
            .as_ref()
            .map(|webhook| crate::webhooks::Webhooks::start(webhook, hub.events(), metrics.clone()))
            .transpose()?;
        let transport = Transport::builder(hub.clone())
            .auth(auth)
            .config(transport_config(&config)?)
            .metrics(metrics.clone())
            .build();

        let addr = format!("{}:{}", config.host, config.port);
        let listener = TcpListener::bind((config.host.as_str(), config.port))
            .await
            .map_err(|source| ServerError::Bind {
                addr: addr.clone(),
                source,
            })?;
        let local_addr = listener
            .local_addr()
            .map_err(|source| ServerError::Bind { addr, source })?;
        let reload_watcher = tls
            .as_ref()
            .map(|acceptor| {
                acceptor.spawn_reload_watcher(
                    ReloadWatcherConfig::default().poll_interval(config.tls_reload_interval),
                )
            })
            .transpose()
            .map_err(ServerError::ReloadWatcher)?;

        let state = Arc::new(AppState {
            health: hub.health(),
            hub,
            transport,
            metrics,
            started: Instant::now(),
            draining: AtomicBool::new(false),
            config,
        });
        let stop = CancellationToken::new();
        let connections = TaskTracker::new();
        let accept = tokio::spawn(accept_loop(
            listener,
            Arc::clone(&state),
            tls.clone(),
            stop.clone(),
            connections.clone(),
        ));
        let server = Self {
            state,
            local_addr,
            tls,
            backplane,
            stop: stop.drop_guard(),
            connections,
            accept,
            _reload_watcher: reload_watcher,
            webhooks,
        };
        server.log_startup();
        Ok(server)
    }

    fn log_startup(&self) {
        let config = &self.state.config;
        for warning in &config.warnings {
            tracing::warn!("configuration: {warning}");
        }
        match &self.backplane {
            BackplaneHandle::Memory(_) => {
                tracing::info!("single instance mode (memory backplane)");
            }
            BackplaneHandle::Redis(redis) => {
                let health = self.state.health.borrow().clone();
                let url = redacted_url(config.redis_url.as_ref().map_or("", |u| u.expose()));
                if health.state == HealthState::Up {
                    tracing::info!(node = redis.node_id(), "Redis backplane connected ({url})");
                } else {
                    tracing::warn!(
                        node = redis.node_id(),
                        detail = %health.detail,
                        "Redis backplane not reachable yet ({url}): serving this instance only and reconnecting"
                    );
                }
            }
        }
        match &config.tls {
            Some(tls) => {
                tracing::info!(
                    client_certificates = %tls.client_auth,
                    "TLS enabled (https:// and wss://)"
                );
                warn_if_key_is_readable_by_others(&tls.key_path);
            }
            None => tracing::info!("TLS disabled (plain http:// and ws://)"),
        }
        match config.auth_mode() {
            "open" => tracing::info!("auth: open mode (no authentication, every user anonymous)"),
            mode => {
                tracing::info!("auth: {mode} tokens required");
                if config.auth_default_channels.iter().any(|p| p == "*") {
                    tracing::warn!(
                        "auth: a token without a `channels` claim may use every channel (AUTH_DEFAULT_CHANNELS=*); set AUTH_DEFAULT_CHANNELS to narrow it"
                    );
                }
            }
        }
        if config.publish_api_key.is_none() {
            tracing::info!("HTTP API disabled (set PUBLISH_API_KEY to enable /api/)");
        }
        tracing::info!(
            "listening on {} (HTTP on {})",
            self.ws_url(),
            self.base_url()
        );
    }

    /// The address the server listens on (with the port chosen when 0 was asked for).
    #[must_use]
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// `http://addr` or `https://addr`.
    #[must_use]
    pub fn base_url(&self) -> String {
        let scheme = if self.tls.is_some() { "https" } else { "http" };
        format!("{scheme}://{}", self.local_addr)
    }

    /// `ws://addr/ws` or `wss://addr/ws`.
    #[must_use]
    pub fn ws_url(&self) -> String {
        let scheme = if self.tls.is_some() { "wss" } else { "ws" };
        format!("{scheme}://{}/ws", self.local_addr)
    }

    /// The configuration it runs with.
    #[must_use]
    pub fn config(&self) -> &ServerConfig {
        &self.state.config
    }

    /// The hub, for server-side publishing ([`Hub::publish`]) and lifecycle events.
    #[must_use]
    pub fn hub(&self) -> &Hub {
        &self.state.hub
    }

    /// The WebSocket transport.
    #[must_use]
    pub fn transport(&self) -> &Transport {
        &self.state.transport
    }

    /// The metrics every component records into.
    #[must_use]
    pub fn metrics(&self) -> &Metrics {
        &self.state.metrics
    }

    /// The TLS acceptor (to [`reload`](ReloadableAcceptor::reload) it by hand), when TLS is on.
    #[must_use]
    pub fn tls(&self) -> Option<&ReloadableAcceptor> {
        self.tls.as_ref()
    }

    /// `"memory"` or `"redis"`.
    #[must_use]
    pub fn backplane_kind(&self) -> &'static str {
        match self.backplane {
            BackplaneHandle::Memory(_) => "memory",
            BackplaneHandle::Redis(_) => "redis",
        }
    }

    /// Drains gracefully, within [`ServerConfig::shutdown_timeout`]: closes every WebSocket
    /// with 1001 (spread over the drain window) while still answering HTTP — `/ready` 503
    /// `draining`, `/health` 200, a new WebSocket upgrade 503 — then stops listening, lets
    /// in-flight HTTP requests finish, and stops the backplane. Returns whether everything
    /// ended in time.
    pub async fn shutdown(self) -> bool {
        let deadline = tokio::time::Instant::now() + self.state.config.shutdown_timeout;
        self.state.draining.store(true, Ordering::Relaxed);
        // The listener stays open through the drain window, so that a load balancer's
        // readiness probe is answered 503 rather than refused, and a client that reconnects
        // too early is told to go elsewhere (the transport refuses upgrades once draining).
        let sessions = self
            .state
            .transport
            .shutdown(deadline.saturating_duration_since(tokio::time::Instant::now()))
            .await;
        self.stop.disarm().cancel();
        // The accept loop ends at once on the stop signal; the listener closes with it.
        let _ = self.accept.await;
        self.connections.close();
        let http = tokio::time::timeout_at(deadline, self.connections.wait())
            .await
            .is_ok();
        // The sessions' last events (their disconnects) go out before the server does; a
        // receiver that is down delays the exit by a few seconds at most.
        if let Some(webhooks) = self.webhooks {
            let limit = tokio::time::Instant::now() + WEBHOOK_DRAIN;
            webhooks.drain(deadline.min(limit)).await;
        }
        self.backplane.shutdown().await;
        tracing::info!(
            sessions_drained = sessions,
            http_drained = http,
            "shut down"
        );
        sessions && http
    }
}

fn presence_refresh(ttl: Duration) -> Duration {
    (ttl / 3)
        .min(HubConfig::default().presence_refresh)
        .max(Duration::from_millis(1))
}

fn transport_config(config: &ServerConfig) -> Result<TransportConfig, ConfigError> {
    Ok(TransportConfig::default()
        .max_message_bytes(config.max_message_bytes.get())
        .heartbeat(config.heartbeat)
        .handshake_timeout(config.handshake_timeout)
        .outbound_capacity(config.outbound_queue_frames)
        .outbound_max_bytes(config.outbound_queue_bytes)
        .write_coalesce(config.write_coalesce)
        .idle_timeout(config.idle_timeout)
        .rate_limit(config.rate_limit()?)
        .user_rate_limit(config.user_rate_limit()?)
        .max_connections(config.max_connections)
        .max_connections_per_ip(config.max_connections_per_ip)
        .max_connections_per_user(config.max_connections_per_user)
        .allowed_origins(config.allowed_origins.clone())
        .drain_window(config.drain_window))
}

fn authenticator(config: &ServerConfig) -> Result<Authenticator, ServerError> {
    let mut verifier = config
        .jwt_secret
        .as_ref()
        .map(|secret| TokenVerifier::hs256(secret.expose()))
        .transpose()?;
    if let Some(path) = &config.jwt_public_key_path {
        let pem = std::fs::read(path).map_err(|source| ServerError::PublicKeyFile {
            path: path.clone(),
            source,
        })?;
        verifier = Some(match verifier {
            Some(hs256) => hs256.with_public_key_pem(&pem)?,
            None => TokenVerifier::public_key_pem(&pem)?,
        });
    }
    let verifier = verifier.map(|mut verifier| {
        verifier =
            verifier.default_channels(config.auth_default_channels.iter().map(String::as_str));
        if let Some(audience) = &config.auth_audience {
            verifier = verifier.audience(audience.as_str());
        }
        if let Some(issuer) = &config.auth_issuer {
            verifier = verifier.issuer(issuer.as_str());
        }
        verifier
    });
    Ok(verifier.map_or_else(Authenticator::open, Authenticator::jwt))
}

/// The history bounds the configured namespaces set, as backplane overrides.
fn history_overrides(config: &ServerConfig) -> impl Iterator<Item = HistoryOverride> + '_ {
    config
        .namespaces
        .iter()
        .filter(|(_, ns)| ns.history_size.is_some() || ns.history_ttl.is_some())
        .map(|(name, ns)| {
            let rule = HistoryOverride::new(format!("{name}:"));
            let rule = match ns.history_size {
                Some(size) => rule.size(size),
                None => rule,
            };
            match ns.history_ttl {
                Some(ttl) => rule.ttl(ttl),
                None => rule,
            }
        })
}

async fn connect_backplane(
    config: &ServerConfig,
) -> Result<(BackplaneHandle, BoxBackplane), ServerError> {
    let Some(url) = &config.redis_url else {
        let memory = MemoryBackplane::new(
            history_overrides(config).fold(
                MemoryBackplaneConfig::default()
                    .history_size(config.history_size)
                    .history_ttl(config.history_ttl)
                    .history_max_bytes(config.history_max_bytes)
                    .presence_ttl(config.presence_ttl)
                    .presence_sweep(config.presence_cleanup),
                MemoryBackplaneConfig::history_override,
            ),
        );
        let boxed = BoxBackplane::new(memory.clone());
        return Ok((BackplaneHandle::Memory(memory), boxed));
    };
    let redis = RedisBackplane::connect(
        url.expose(),
        history_overrides(config).fold(
            RedisBackplaneConfig::default()
                .history_size(config.history_size)
                .history_ttl(config.history_ttl)
                .history_max_bytes(config.history_max_bytes)
                .history_max_channel_bytes(config.history_max_channel_bytes)
                .presence_ttl(config.presence_ttl)
                .presence_sweep(config.presence_cleanup)
                .probe_interval(config.redis_probe_interval)
                .command_timeout(config.redis_timeout)
                .connect_timeout(config.redis_timeout),
            RedisBackplaneConfig::history_override,
        ),
    )
    .await?;
    let boxed = BoxBackplane::new(redis.clone());
    Ok((BackplaneHandle::Redis(redis), boxed))
}

/// Warns when the TLS private key file can be read by its group or by anyone: it is served
/// all the same (refusing would turn a permission slip into an outage), but the operator
/// should know.
fn warn_if_key_is_readable_by_others(path: &std::path::Path) {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        if let Ok(meta) = std::fs::metadata(path) {
            let mode = meta.permissions().mode() & 0o777;
            if mode & 0o077 != 0 {
                tracing::warn!(
                    path = %path.display(),
                    mode = format!("{mode:o}"),
                    "the TLS private key is readable by other users (mode {mode:o}); restrict it: chmod 600 {}",
                    path.display()
                );
            }
        }
    }
    #[cfg(not(unix))]
    let _ = path;
}

/// A Redis URL without its user-info, for logs.
fn redacted_url(url: &str) -> String {
    match url.split_once("://") {
        Some((scheme, rest)) => {
            let host = rest.rsplit_once('@').map_or(rest, |(_, host)| host);
            format!("{scheme}://{host}")
        }
        None => String::new(),
    }
}

/// The accept loop's TLS step: the handshake with the certificate current at accept.
struct TlsHandshake(ReloadableAcceptor);

impl WrapStream for TlsHandshake {
    type Stream = switchboard_tls::tokio_rustls::server::TlsStream<TcpStream>;
    type Error = io::Error;

    async fn wrap(&self, stream: TcpStream, _peer: SocketAddr) -> io::Result<Self::Stream> {
        self.0.accept(stream).await
    }
}

/// Runs the transport's accept loop: the server's routes beside `/ws`, over TLS when
/// configured, until `stop`, each connection a task of `connections`.
async fn accept_loop(
    listener: TcpListener,
    state: Arc<AppState>,
    tls: Option<ReloadableAcceptor>,
    stop: CancellationToken,
    connections: TaskTracker,
) {
    let routes = {
        let state = Arc::clone(&state);
        move |req: hyper::Request<Incoming>, _peer: SocketAddr| {
            routes::route(Arc::clone(&state), req)
        }
    };
    let accept = state
        .transport
        .accept_loop(listener)
        .routes(routes)
        .stop(stop)
        .track(connections);
    let result = match tls {
        None => accept.run().await,
        Some(acceptor) => accept.wrap(TlsHandshake(acceptor)).run().await,
    };
    if let Err(err) = result {
        tracing::error!(%err, "the accept loop failed");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redis_passwords_never_reach_the_log() {
        assert_eq!(
            redacted_url("redis://:hunter2@cache:6379/0"),
            "redis://cache:6379/0"
        );
        assert_eq!(redacted_url("redis://cache"), "redis://cache");
    }

    #[test]
    fn presence_is_refreshed_well_within_its_ttl() {
        assert_eq!(
            presence_refresh(Duration::from_secs(60)),
            Duration::from_secs(20)
        );
        assert_eq!(
            presence_refresh(Duration::from_secs(3600)),
            Duration::from_secs(300)
        );
    }
}
