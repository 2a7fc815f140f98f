//! The server's configuration: plain validated data, loaded from flags, the environment and
//! an optional TOML file.

mod error;
mod load;
mod namespaces;
mod settings;

use std::fmt;
use std::num::{NonZeroU32, NonZeroUsize};
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use switchboard_backplane::{MemoryBackplaneConfig, RedisBackplaneConfig};
use switchboard_hub::HubConfig;
use switchboard_limiter::Quota;
use switchboard_tls::TlsConfig;
use switchboard_transport::TransportConfig;

pub use error::ConfigError;
pub use namespaces::Namespace;

pub use crate::secret::Secret;

/// How log lines are written.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum LogFormat {
    /// Human-readable lines (the default).
    #[default]
    Text,
    /// One JSON object per line.
    Json,
}

impl fmt::Display for LogFormat {
    /// The name the settings use: `text` or `json`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Text => "text",
            Self::Json => "json",
        })
    }
}

impl FromStr for LogFormat {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "text" => Ok(Self::Text),
            "json" => Ok(Self::Json),
            _ => Err(format!("{s:?} is not a log format: expected text or json")),
        }
    }
}

/// Everything the reference server needs to know, with the defaults of
/// [`docs/configuration.md`](https://github.com/switchboard-rs/switchboard/blob/main/docs/configuration.md).
///
/// Build it with [`ServerConfig::default`] and the by-value setters, or load it with
/// [`ServerConfig::load`] (flags, environment, `--config` file). [`ServerConfig::validate`]
/// checks it; [`Server::bind`](crate::Server::bind) calls that too.
///
/// `Debug` never shows a secret.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ServerConfig {
    /// Address to listen on, an IP address or a host name (`HOST`, default `127.0.0.1`).
    pub host: String,
    /// Port for WebSocket and HTTP; 0 picks a free one (`PORT`, default 5111).
    pub port: u16,
    /// Browser origins allowed to open a WebSocket; `None` allows any (`CORS_ORIGIN`).
    pub allowed_origins: Option<Vec<String>>,
    /// The Redis backplane's URL; `None` is the memory backplane, one instance (`REDIS_URL`,
    /// or `REDIS_HOST` + `REDIS_PORT` + `REDIS_PASSWORD`).
    pub redis_url: Option<Secret>,
    /// How often the Redis liveness probe runs (`REDIS_PROBE_INTERVAL_MS`, default 2 s).
    pub redis_probe_interval: Duration,
    /// Timeout of each Redis command and connection attempt (`REDIS_TIMEOUT_MS`, default 1 s).
    pub redis_timeout: Duration,
    /// TLS; `None` serves plain `http://` and `ws://` (`SSL_ENABLED` and `SSL_*`).
    pub tls: Option<TlsConfig>,
    /// How often the certificate files are checked for changes; `None` reloads only on
    /// `SIGHUP` (`SSL_RELOAD_INTERVAL_MS`, default 30 s).
    pub tls_reload_interval: Option<Duration>,
    /// HS256 secret (`AUTH_JWT_SECRET`, alias `NEXTAUTH_SECRET`). With no secret and no public
    /// key, connections are not authenticated (open mode).
    pub jwt_secret: Option<Secret>,
    /// PEM public key for RS256 or ES256 tokens (`AUTH_JWT_PUBLIC_KEY_PATH`).
    pub jwt_public_key_path: Option<PathBuf>,
    /// Where a token without a `channels` claim may subscribe (and, without `publish`,
    /// publish): glob patterns (`AUTH_DEFAULT_CHANNELS`, default `*`, everywhere — permissive,
    /// warned about at startup when tokens are required).
    pub auth_default_channels: Vec<String>,
    /// The `aud` every token must carry (`AUTH_AUDIENCE`; default none: not checked).
    pub auth_audience: Option<String>,
    /// The `iss` every token must carry (`AUTH_ISSUER`; default none: not checked).
    pub auth_issuer: Option<String>,
    /// Bearer key of the HTTP API; `None` makes every `/api/` route answer 404
    /// (`PUBLISH_API_KEY`).
    pub publish_api_key: Option<Secret>,
    /// Payload and presence-meta keys removed before delivery (`REDACT_FIELDS`).
    pub redact_fields: Vec<String>,
    /// Frames per connection per window (`RATE_LIMIT_MAX_MESSAGES`, default 100).
    pub rate_limit_max_messages: NonZeroU32,
    /// The rate-limit window (`RATE_LIMIT_WINDOW_MS`, default 60 s).
    pub rate_limit_window: Duration,
    /// Frames per user (the token's `sub`; without a user, the client IP) per window, across
    /// all of its connections and reconnects (`RATE_LIMIT_USER_MAX_MESSAGES`, default 1000;
    /// 0: off).
    pub rate_limit_user_max_messages: u32,
    /// Concurrent connections per client IP; `None` is unlimited (`MAX_CONNECTIONS_PER_IP`,
    /// default 10).
    pub max_connections_per_ip: Option<NonZeroU32>,
    /// Concurrent connections of one user (the token's `sub`), counted on every instance;
    /// `None` is unlimited (`MAX_CONNECTIONS_PER_USER`, default 0: off).
    pub max_connections_per_user: Option<NonZeroU32>,
    /// Concurrent connections in total; `None` is unlimited (`MAX_CONNECTIONS`, default).
    pub max_connections: Option<NonZeroU32>,
    /// Largest WebSocket message and `/api/publish` body (`MAX_MESSAGE_BYTES`, default 65536).
    pub max_message_bytes: NonZeroUsize,
    /// Channels one connection may be subscribed to at once
    /// (`MAX_SUBSCRIPTIONS_PER_CONNECTION`, default 128); one more is answered `bad_request`.
    pub max_subscriptions_per_connection: NonZeroUsize,
    /// Frames queued for a slow reader before the least important is evicted
    /// (`OUTBOUND_QUEUE_FRAMES`, default 1024).
    pub outbound_queue_frames: NonZeroUsize,
    /// Bytes queued for a slow reader before the least important is evicted
    /// (`OUTBOUND_QUEUE_BYTES`, default 4 MiB).
    pub outbound_queue_bytes: NonZeroUsize,
    /// Opt-in write coalescing window (`WRITE_COALESCE_US`, microseconds; default 0: off,
    /// every frame is written the moment it is published). With a window, what arrives for a
    /// connection within it goes out in one write: fewer writes per delivery at high
    /// per-channel rates, for up to the window in added latency.
    pub write_coalesce: Option<Duration>,
    /// WebSocket ping interval (`HEARTBEAT_MS`, default 30 s).
    pub heartbeat: Duration,
    /// How long a client may take to send its HTTP request before the connection is closed
    /// (`HANDSHAKE_TIMEOUT_MS`, default 10 s).
    pub handshake_timeout: Duration,
    /// Close a silent connection after this long (`IDLE_TIMEOUT_MS`, default 5 minutes).
    pub idle_timeout: Duration,
    /// Presence member lifetime without activity (`PRESENCE_TTL_MS`, default 30 minutes).
    pub presence_ttl: Duration,
    /// How often expired presence members are swept (`PRESENCE_CLEANUP_MS`, default 5 minutes).
    pub presence_cleanup: Duration,
    /// Messages kept per channel for recovery (`HISTORY_SIZE`, default 100).
    pub history_size: usize,
    /// How long a message stays recoverable (`HISTORY_TTL_MS`, default 5 minutes).
    pub history_ttl: Duration,
    /// The most bytes of message history held in this process across all channels
    /// (`HISTORY_MAX_BYTES`, default 256 MiB; 0: unbounded): the memory backplane's history,
    /// or the Redis backplane's local fallback. Over it, the oldest messages of the least
    /// recently published channels are trimmed, and recovery past them answers
    /// `recovered: false`.
    pub history_max_bytes: usize,
    /// The most bytes of message data one channel's history keeps in Redis
    /// (`HISTORY_MAX_CHANNEL_BYTES`, default 4 MiB; 0: only `HISTORY_SIZE` bounds it).
    pub history_max_channel_bytes: usize,
    /// Longest graceful drain on shutdown (`SHUTDOWN_TIMEOUT_MS`, default 30 s).
    pub shutdown_timeout: Duration,
    /// Connections are closed with 1001 at random moments within this window on shutdown
    /// (`DRAIN_WINDOW_MS`, default 5 s; at most the shutdown timeout).
    pub drain_window: Duration,
    /// Log format (`LOG_FORMAT`, default text).
    pub log_format: LogFormat,
    /// Log filter in `tracing-subscriber` `EnvFilter` syntax (`RUST_LOG`, default `info`).
    pub log_filter: String,
    /// Lifecycle webhooks (`WEBHOOK_URL`, `WEBHOOK_SECRET`, `WEBHOOK_EVENTS`,
    /// `WEBHOOK_QUEUE_PATH`); `None`: none are sent.
    pub webhook: Option<crate::webhooks::WebhookConfig>,
    /// Channel namespaces by name: what the channels named `<name>:…` keep and allow (the
    /// configuration file's `[namespaces.<name>]` tables; default none).
    pub namespaces: std::collections::BTreeMap<String, Namespace>,
    /// What loading found questionable without refusing it (the JWT secret read from
    /// `NEXTAUTH_SECRET`, a secret shared with another application). The server logs each
    /// as a warning when it starts. Empty for a configuration built in code.
    pub warnings: Vec<String>,
}

/// The settings of the reference server that are its own: where it listens, how long a
/// shutdown may take, how often the certificate is checked and how it logs. Every other
/// default is the composed crate's own (see [`ServerConfig::default`]).
const OWN_DEFAULTS: OwnDefaults = OwnDefaults {
    host: "127.0.0.1",
    port: 5111,
    tls_reload_interval: Duration::from_secs(30),
    shutdown_timeout: Duration::from_secs(30),
    log_filter: "info",
};

struct OwnDefaults {
    host: &'static str,
    port: u16,
    tls_reload_interval: Duration,
    shutdown_timeout: Duration,
    log_filter: &'static str,
}

impl Default for ServerConfig {
    /// The defaults: the server's own few, and for everything else the default of the crate
    /// the setting configures — [`TransportConfig`], [`HubConfig`],
    /// [`MemoryBackplaneConfig`] (the embedded backplane's history and presence) and
    /// [`RedisBackplaneConfig`] — so each default is written once, and `--help` shows it
    /// from here.
    fn default() -> Self {
        let transport = TransportConfig::default();
        let hub = HubConfig::default();
        let memory = MemoryBackplaneConfig::default();
        let redis = RedisBackplaneConfig::default();
        let non_zero = |n: usize| NonZeroUsize::new(n).expect("the crates' defaults are valid");
        Self {
            host: OWN_DEFAULTS.host.into(),
            port: OWN_DEFAULTS.port,
            allowed_origins: transport.allowed_origins,
            redis_url: None,
            redis_probe_interval: redis.probe_interval,
            redis_timeout: redis.command_timeout,
            tls: None,
            tls_reload_interval: Some(OWN_DEFAULTS.tls_reload_interval),
            jwt_secret: None,
            // A `TokenVerifier`'s default: a token without `channels` may go everywhere.
            auth_default_channels: vec!["*".into()],
            auth_audience: None,
            auth_issuer: None,
            jwt_public_key_path: None,
            publish_api_key: None,
            redact_fields: hub.redact_fields,
            rate_limit_max_messages: NonZeroU32::new(transport.rate_limit.capacity())
                .expect("the crates' defaults are valid"),
            rate_limit_window: transport.rate_limit.period(),
            rate_limit_user_max_messages: transport
                .user_rate_limit
                .map_or(0, |quota| quota.capacity()),
            max_connections_per_ip: transport.max_connections_per_ip,
            max_connections_per_user: transport.max_connections_per_user,
            max_connections: transport.max_connections,
            max_message_bytes: non_zero(transport.max_message_bytes),
            max_subscriptions_per_connection: hub.max_subscriptions_per_connection,
            outbound_queue_frames: transport.outbound_capacity,
            outbound_queue_bytes: transport.outbound_max_bytes,
            write_coalesce: transport.write_coalesce,
            heartbeat: transport.heartbeat,
            handshake_timeout: transport.handshake_timeout,
            idle_timeout: transport.idle_timeout,
            presence_ttl: memory.presence_ttl,
            presence_cleanup: memory.presence_sweep,
            history_size: memory.history_size,
            history_max_bytes: memory.history_max_bytes,
            history_max_channel_bytes: redis.history_max_channel_bytes,
            history_ttl: memory.history_ttl,
            shutdown_timeout: OWN_DEFAULTS.shutdown_timeout,
            drain_window: transport.drain_window,
            log_format: LogFormat::default(),
            log_filter: OWN_DEFAULTS.log_filter.into(),
            namespaces: std::collections::BTreeMap::new(),
            webhook: None,
            warnings: Vec::new(),
        }
    }
}

impl ServerConfig {
    switchboard_types::setters! {
        /// Sets [`ServerConfig::port`].
        port: u16,
        /// Sets [`ServerConfig::allowed_origins`].
        allowed_origins: Option<Vec<String>>,
        /// Sets [`ServerConfig::redis_probe_interval`].
        redis_probe_interval: Duration,
        /// Sets [`ServerConfig::redis_timeout`].
        redis_timeout: Duration,
        /// Sets [`ServerConfig::tls`].
        tls: Option<TlsConfig>,
        /// Sets [`ServerConfig::tls_reload_interval`].
        tls_reload_interval: Option<Duration>,
        /// Sets [`ServerConfig::jwt_public_key_path`].
        jwt_public_key_path: Option<PathBuf>,
        /// Sets [`ServerConfig::redact_fields`].
        redact_fields: Vec<String>,
        /// Sets [`ServerConfig::webhook`].
        webhook: Option<crate::webhooks::WebhookConfig>,
        /// Sets [`ServerConfig::rate_limit_max_messages`].
        rate_limit_max_messages: NonZeroU32,
        /// Sets [`ServerConfig::rate_limit_window`].
        rate_limit_window: Duration,
        /// Sets [`ServerConfig::rate_limit_user_max_messages`].
        rate_limit_user_max_messages: u32,
        /// Sets [`ServerConfig::max_connections_per_ip`].
        max_connections_per_ip: Option<NonZeroU32>,
        /// Sets [`ServerConfig::max_connections_per_user`].
        max_connections_per_user: Option<NonZeroU32>,
        /// Sets [`ServerConfig::max_connections`].
        max_connections: Option<NonZeroU32>,
        /// Sets [`ServerConfig::max_message_bytes`].
        max_message_bytes: NonZeroUsize,
        /// Sets [`ServerConfig::max_subscriptions_per_connection`].
        max_subscriptions_per_connection: NonZeroUsize,
        /// Sets [`ServerConfig::outbound_queue_frames`].
        outbound_queue_frames: NonZeroUsize,
        /// Sets [`ServerConfig::outbound_queue_bytes`].
        outbound_queue_bytes: NonZeroUsize,
        /// Sets [`ServerConfig::write_coalesce`].
        write_coalesce: Option<Duration>,
        /// Sets [`ServerConfig::heartbeat`].
        heartbeat: Duration,
        /// Sets [`ServerConfig::handshake_timeout`].
        handshake_timeout: Duration,
        /// Sets [`ServerConfig::idle_timeout`].
        idle_timeout: Duration,
        /// Sets [`ServerConfig::presence_ttl`].
        presence_ttl: Duration,
        /// Sets [`ServerConfig::presence_cleanup`].
        presence_cleanup: Duration,
        /// Sets [`ServerConfig::history_size`].
        history_size: usize,
        /// Sets [`ServerConfig::history_ttl`].
        history_ttl: Duration,
        /// Sets [`ServerConfig::history_max_bytes`].
        history_max_bytes: usize,
        /// Sets [`ServerConfig::history_max_channel_bytes`].
        history_max_channel_bytes: usize,
        /// Sets [`ServerConfig::auth_default_channels`].
        auth_default_channels: Vec<String>,
        /// Sets [`ServerConfig::auth_audience`].
        auth_audience: Option<String>,
        /// Sets [`ServerConfig::auth_issuer`].
        auth_issuer: Option<String>,
        /// Sets [`ServerConfig::shutdown_timeout`].
        shutdown_timeout: Duration,
        /// Sets [`ServerConfig::drain_window`].
        drain_window: Duration,
        /// Sets [`ServerConfig::log_format`].
        log_format: LogFormat,
    }

    /// Sets [`ServerConfig::host`].
    #[must_use]
    pub fn host(mut self, host: impl Into<String>) -> Self {
        self.host = host.into();
        self
    }

    /// Sets [`ServerConfig::redis_url`] (`None`: the memory backplane).
    #[must_use]
    pub fn redis_url(mut self, url: Option<impl Into<Secret>>) -> Self {
        self.redis_url = url.map(Into::into);
        self
    }

    /// Sets [`ServerConfig::jwt_secret`].
    #[must_use]
    pub fn jwt_secret(mut self, secret: Option<impl Into<Secret>>) -> Self {
        self.jwt_secret = secret.map(Into::into);
        self
    }

    /// Sets [`ServerConfig::publish_api_key`].
    #[must_use]
    pub fn publish_api_key(mut self, key: Option<impl Into<Secret>>) -> Self {
        self.publish_api_key = key.map(Into::into);
        self
    }

    /// Sets [`ServerConfig::log_filter`].
    #[must_use]
    pub fn log_filter(mut self, filter: impl Into<String>) -> Self {
        self.log_filter = filter.into();
        self
    }

    /// The per-connection rate limit.
    ///
    /// # Errors
    /// [`ConfigError::Invalid`] when the window is zero or too long for the limiter.
    pub fn rate_limit(&self) -> Result<Quota, ConfigError> {
        let max = self.rate_limit_max_messages.get();
        Quota::new(max, max, self.rate_limit_window).map_err(|e| ConfigError::Invalid {
            setting: "RATE_LIMIT_WINDOW_MS",
            origin: "the configuration".into(),
            reason: e.to_string(),
        })
    }

    /// The per-user rate limit; `None` when off.
    ///
    /// # Errors
    /// [`ConfigError::Invalid`] when the window is zero or too long for the limiter.
    pub fn user_rate_limit(&self) -> Result<Option<Quota>, ConfigError> {
        let max = self.rate_limit_user_max_messages;
        if max == 0 {
            return Ok(None);
        }
        Quota::new(max, max, self.rate_limit_window)
            .map(Some)
            .map_err(|e| ConfigError::Invalid {
                setting: "RATE_LIMIT_WINDOW_MS",
                origin: "the configuration".into(),
                reason: e.to_string(),
            })
    }

    /// Checks what no type can: durations that must be positive or ordered, and TLS and
    /// client-certificate consistency.
    ///
    /// # Errors
    /// [`ConfigError::Invalid`] naming the setting.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let invalid = |setting: &'static str, reason: String| {
            Err(ConfigError::Invalid {
                setting,
                origin: "the configuration".into(),
                reason,
            })
        };
        for (name, namespace) in &self.namespaces {
            if let Some(reason) = namespaces::invalid_name(name) {
                return invalid("namespaces", reason);
            }
            if namespace
                .history_ttl
                .is_some_and(|ttl| ttl < Duration::from_millis(1))
            {
                return invalid(
                    "namespaces",
                    format!("namespace {name}: history_ttl must be at least 1 ms"),
                );
            }
        }
        if self.host.trim().is_empty() {
            return invalid("HOST", "must not be empty".into());
        }
        let positive = [
            ("REDIS_PROBE_INTERVAL_MS", self.redis_probe_interval),
            ("REDIS_TIMEOUT_MS", self.redis_timeout),
            ("RATE_LIMIT_WINDOW_MS", self.rate_limit_window),
            ("HEARTBEAT_MS", self.heartbeat),
            ("IDLE_TIMEOUT_MS", self.idle_timeout),
            ("PRESENCE_TTL_MS", self.presence_ttl),
            ("PRESENCE_CLEANUP_MS", self.presence_cleanup),
            ("HISTORY_TTL_MS", self.history_ttl),
            ("SHUTDOWN_TIMEOUT_MS", self.shutdown_timeout),
        ];
        for (setting, value) in positive {
            if value < Duration::from_millis(1) {
                return invalid(setting, "must be at least 1 ms".into());
            }
        }
        if self.idle_timeout <= self.heartbeat {
            return invalid(
                "IDLE_TIMEOUT_MS",
                format!(
                    "must be longer than HEARTBEAT_MS ({} ms), or idle clients are closed between two pings",
                    self.heartbeat.as_millis()
                ),
            );
        }
        if self.drain_window > self.shutdown_timeout {
            return invalid(
                "DRAIN_WINDOW_MS",
                format!(
                    "must not be longer than SHUTDOWN_TIMEOUT_MS ({} ms)",
                    self.shutdown_timeout.as_millis()
                ),
            );
        }
        if let Some(origins) = &self.allowed_origins
            && origins.is_empty()
        {
            return invalid("CORS_ORIGIN", "lists no origin".into());
        }
        if self
            .jwt_secret
            .as_ref()
            .is_some_and(|s| s.expose().is_empty())
        {
            return invalid("AUTH_JWT_SECRET", "must not be empty".into());
        }
        if self
            .publish_api_key
            .as_ref()
            .is_some_and(|s| s.expose().is_empty())
        {
            return invalid("PUBLISH_API_KEY", "must not be empty".into());
        }
        if let Some(tls) = &self.tls
            && tls.client_auth != switchboard_tls::ClientAuth::Off
            && tls.ca_path.is_none()
        {
            return invalid(
                "SSL_CLIENT_AUTH",
                format!("is {} but SSL_CA_PATH is not set", tls.client_auth),
            );
        }
        self.rate_limit()?;
        validate_filter(&self.log_filter).or_else(|reason| invalid("RUST_LOG", reason))
    }

    /// How connections authenticate: `"open"`, `"jwt (HS256)"`, `"jwt (RS256/ES256)"` or
    /// `"jwt (HS256, RS256/ES256)"`, for the startup log.
    #[must_use]
    pub fn auth_mode(&self) -> &'static str {
        match (
            self.jwt_secret.is_some(),
            self.jwt_public_key_path.is_some(),
        ) {
            (false, false) => "open",
            (true, false) => "jwt (HS256)",
            (false, true) => "jwt (RS256/ES256)",
            (true, true) => "jwt (HS256, RS256/ES256)",
        }
    }
}

/// Checks a log filter in `EnvFilter` syntax.
pub(crate) fn validate_filter(filter: &str) -> Result<(), String> {
    tracing_subscriber::EnvFilter::builder()
        .parse(filter)
        .map(drop)
        .map_err(|e| format!("{filter:?} is not a log filter: {e}"))
}
