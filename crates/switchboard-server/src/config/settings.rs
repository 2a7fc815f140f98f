//! The table of every setting: its file key, flag, environment names, default and help.
//!
//! One table drives `--help`, the environment and the TOML file, so the three can never
//! disagree about a name or a default.

use std::num::NonZeroU32;
use std::time::Duration;

use switchboard_tls::ClientAuth;

use super::ServerConfig;

/// The port of `REDIS_HOST` when `REDIS_PORT` is not set: Redis's own.
pub(crate) const DEFAULT_REDIS_PORT: u16 = 6379;

/// A duration in the unit of the `*_MS` settings.
fn ms(duration: Duration) -> String {
    duration.as_millis().to_string()
}

/// A cap as the settings write it: 0 for none.
fn count(cap: Option<NonZeroU32>) -> String {
    cap.map_or(0, NonZeroU32::get).to_string()
}

/// One configurable setting.
#[derive(Debug)]
pub(crate) struct Setting {
    /// The key in the TOML file, and the clap argument id.
    pub(crate) key: &'static str,
    /// The long flag, without `--`.
    pub(crate) flag: &'static str,
    /// Environment variables, the documented name first, then aliases (the seeds' names).
    pub(crate) env: &'static [&'static str],
    /// The default, written in the setting's own unit from [`ServerConfig::default`] (or
    /// the crate default it names); `None` when unset by default.
    pub(crate) default: Option<fn(&ServerConfig) -> String>,
    /// What `--help` says when there is no default.
    pub(crate) unset: &'static str,
    /// The placeholder in `--help`.
    pub(crate) value_name: &'static str,
    /// The `--help` section.
    pub(crate) heading: &'static str,
    /// One line of help.
    pub(crate) help: &'static str,
    /// A flag that may be given without a value (`--ssl-enabled` = `--ssl-enabled=true`).
    pub(crate) boolean: bool,
    /// A secret: never echoed in an error message.
    pub(crate) secret: bool,
}

impl Setting {
    /// The name errors use: the documented environment name.
    pub(crate) fn name(&self) -> &'static str {
        self.env[0]
    }
}

const NETWORK: &str = "Network";
const BACKPLANE: &str = "Backplane (Redis)";
const TLS: &str = "TLS";
const AUTH: &str = "Authentication and access";
const LIMITS: &str = "Limits";
const TIMING: &str = "Keepalive, presence and history";
const OPS: &str = "Operations";
const WEBHOOKS: &str = "Webhooks";

macro_rules! setting {
    ($key:literal, $flag:literal, [$($env:literal),+], $default:expr, $unset:literal, $value:literal, $heading:expr, $help:literal $(, $attr:ident)*) => {
        Setting {
            key: $key,
            flag: $flag,
            env: &[$($env),+],
            default: $default,
            unset: $unset,
            value_name: $value,
            heading: $heading,
            help: $help,
            boolean: setting!(@has boolean $($attr)*),
            secret: setting!(@has secret $($attr)*),
        }
    };
    (@has $want:ident) => { false };
    (@has boolean boolean $($rest:ident)*) => { true };
    (@has secret secret $($rest:ident)*) => { true };
    (@has $want:ident $first:ident $($rest:ident)*) => { setting!(@has $want $($rest)*) };
}

/// Every setting, in `--help` order.
pub(crate) static SETTINGS: &[Setting] = &[
    setting!(
        "host",
        "host",
        ["HOST"],
        Some(|d| d.host.clone()),
        "",
        "ADDR",
        NETWORK,
        "Address to listen on (an IP address or a host name; 0.0.0.0 for every interface)"
    ),
    setting!(
        "port",
        "port",
        ["PORT", "WEBSOCKET_PORT"],
        Some(|d| d.port.to_string()),
        "",
        "PORT",
        NETWORK,
        "Port for WebSocket and HTTP (0 picks a free port)"
    ),
    setting!(
        "cors_origin",
        "cors-origin",
        ["CORS_ORIGIN"],
        None,
        "any origin",
        "ORIGINS",
        NETWORK,
        "Comma-separated browser origins allowed to open a WebSocket (requests without Origin are always allowed)"
    ),
    setting!(
        "redis_url",
        "redis-url",
        ["REDIS_URL"],
        None,
        "memory backplane, single instance",
        "URL",
        BACKPLANE,
        "Redis URL (redis://[:password@]host[:port][/db]); set it to share channels between instances",
        secret
    ),
    setting!(
        "redis_host",
        "redis-host",
        ["REDIS_HOST"],
        None,
        "not used",
        "HOST",
        BACKPLANE,
        "Redis host, when REDIS_URL is not set (with REDIS_PORT and REDIS_PASSWORD)"
    ),
    setting!(
        "redis_port",
        "redis-port",
        ["REDIS_PORT"],
        Some(|_| DEFAULT_REDIS_PORT.to_string()),
        "",
        "PORT",
        BACKPLANE,
        "Redis port, with REDIS_HOST"
    ),
    setting!(
        "redis_password",
        "redis-password",
        ["REDIS_PASSWORD"],
        None,
        "none",
        "PASSWORD",
        BACKPLANE,
        "Redis password, with REDIS_HOST",
        secret
    ),
    setting!(
        "redis_probe_interval_ms",
        "redis-probe-interval-ms",
        ["REDIS_PROBE_INTERVAL_MS"],
        Some(|d| ms(d.redis_probe_interval)),
        "",
        "MS",
        BACKPLANE,
        "How often the Redis liveness probe runs; degraded after two missed echoes"
    ),
    setting!(
        "redis_timeout_ms",
        "redis-timeout-ms",
        ["REDIS_TIMEOUT_MS"],
        Some(|d| ms(d.redis_timeout)),
        "",
        "MS",
        BACKPLANE,
        "Timeout of every Redis command and connection attempt"
    ),
    setting!(
        "ssl_enabled",
        "ssl-enabled",
        ["SSL_ENABLED"],
        Some(|d| d.tls.is_some().to_string()),
        "",
        "BOOL",
        TLS,
        "Serve https:// and wss:// (needs SSL_CERT_PATH and SSL_KEY_PATH)",
        boolean
    ),
    setting!(
        "ssl_cert_path",
        "ssl-cert-path",
        ["SSL_CERT_PATH"],
        None,
        "none",
        "FILE",
        TLS,
        "PEM certificate chain, leaf first"
    ),
    setting!(
        "ssl_key_path",
        "ssl-key-path",
        ["SSL_KEY_PATH"],
        None,
        "none",
        "FILE",
        TLS,
        "PEM private key (PKCS#8, PKCS#1, SEC1 or encrypted PKCS#8)"
    ),
    setting!(
        "ssl_key_passphrase",
        "ssl-key-passphrase",
        ["SSL_KEY_PASSPHRASE"],
        None,
        "none",
        "PASSPHRASE",
        TLS,
        "Passphrase of an encrypted private key",
        secret
    ),
    setting!(
        "ssl_ca_path",
        "ssl-ca-path",
        ["SSL_CA_PATH"],
        None,
        "none",
        "FILE",
        TLS,
        "PEM bundle of CAs that client certificates are verified against (used when SSL_CLIENT_AUTH is not off)"
    ),
    setting!(
        "ssl_client_auth",
        "ssl-client-auth",
        ["SSL_CLIENT_AUTH"],
        Some(|_| ClientAuth::default().to_string()),
        "",
        "MODE",
        TLS,
        "Client certificates: off, optional or required (optional and required need SSL_CA_PATH)"
    ),
    setting!(
        "ssl_reload_interval_ms",
        "ssl-reload-interval-ms",
        ["SSL_RELOAD_INTERVAL_MS"],
        Some(|d| d.tls_reload_interval.map_or_else(|| "0".into(), ms)),
        "",
        "MS",
        TLS,
        "How often the certificate files are checked for changes (0: only on SIGHUP)"
    ),
    setting!(
        "auth_jwt_secret",
        "auth-jwt-secret",
        ["AUTH_JWT_SECRET", "NEXTAUTH_SECRET"],
        None,
        "open mode unless a public key is set",
        "SECRET",
        AUTH,
        "HS256 secret: connections must present a JWT signed with it (NEXTAUTH_SECRET: warned about, give switchboard its own)",
        secret
    ),
    setting!(
        "auth_jwt_public_key_path",
        "auth-jwt-public-key-path",
        ["AUTH_JWT_PUBLIC_KEY_PATH"],
        None,
        "none",
        "FILE",
        AUTH,
        "PEM public key (RSA for RS256, P-256 for ES256): connections must present a JWT signed with its private key"
    ),
    setting!(
        "auth_default_channels",
        "auth-default-channels",
        ["AUTH_DEFAULT_CHANNELS"],
        Some(|d| d.auth_default_channels.join(",")),
        "",
        "PATTERNS",
        AUTH,
        "Comma-separated channel patterns a token without a channels claim may use (* is everywhere: permissive)"
    ),
    setting!(
        "auth_audience",
        "auth-audience",
        ["AUTH_AUDIENCE"],
        None,
        "not checked",
        "AUD",
        AUTH,
        "The aud claim every token must carry"
    ),
    setting!(
        "auth_issuer",
        "auth-issuer",
        ["AUTH_ISSUER"],
        None,
        "not checked",
        "ISS",
        AUTH,
        "The iss claim every token must carry"
    ),
    setting!(
        "publish_api_key",
        "publish-api-key",
        ["PUBLISH_API_KEY"],
        None,
        "the /api/ routes answer 404",
        "KEY",
        AUTH,
        "Bearer key of the HTTP API (/api/publish, presence, history)",
        secret
    ),
    setting!(
        "redact_fields",
        "redact-fields",
        ["REDACT_FIELDS"],
        None,
        "none",
        "FIELDS",
        AUTH,
        "Comma-separated payload and presence-meta keys removed before anything is delivered (any depth, case-insensitive)"
    ),
    setting!(
        "rate_limit_max_messages",
        "rate-limit-max-messages",
        ["RATE_LIMIT_MAX_MESSAGES"],
        Some(|d| d.rate_limit_max_messages.to_string()),
        "",
        "N",
        LIMITS,
        "Frames a connection may send per window (pings are free)"
    ),
    setting!(
        "rate_limit_window_ms",
        "rate-limit-window-ms",
        ["RATE_LIMIT_WINDOW_MS"],
        Some(|d| ms(d.rate_limit_window)),
        "",
        "MS",
        LIMITS,
        "The rate-limit window"
    ),
    setting!(
        "rate_limit_user_max_messages",
        "rate-limit-user-max-messages",
        ["RATE_LIMIT_USER_MAX_MESSAGES"],
        Some(|d| d.rate_limit_user_max_messages.to_string()),
        "",
        "N",
        LIMITS,
        "Frames a user (or, without one, a client address) may send per window across all its connections and reconnects (0: off)"
    ),
    setting!(
        "max_connections_per_ip",
        "max-connections-per-ip",
        ["MAX_CONNECTIONS_PER_IP"],
        Some(|d| count(d.max_connections_per_ip)),
        "",
        "N",
        LIMITS,
        "Concurrent WebSocket connections per client IP (0: unlimited)"
    ),
    setting!(
        "max_connections_per_user",
        "max-connections-per-user",
        ["MAX_CONNECTIONS_PER_USER"],
        Some(|d| count(d.max_connections_per_user)),
        "",
        "N",
        LIMITS,
        "Concurrent WebSocket connections per user (the token's sub), counted across instances (0: unlimited)"
    ),
    setting!(
        "max_connections",
        "max-connections",
        ["MAX_CONNECTIONS"],
        Some(|d| count(d.max_connections)),
        "",
        "N",
        LIMITS,
        "Concurrent WebSocket connections in total (0: unlimited)"
    ),
    setting!(
        "max_message_bytes",
        "max-message-bytes",
        ["MAX_MESSAGE_BYTES"],
        Some(|d| d.max_message_bytes.to_string()),
        "",
        "BYTES",
        LIMITS,
        "Largest WebSocket message and /api/publish body"
    ),
    setting!(
        "max_subscriptions_per_connection",
        "max-subscriptions-per-connection",
        ["MAX_SUBSCRIPTIONS_PER_CONNECTION"],
        Some(|d| d.max_subscriptions_per_connection.to_string()),
        "",
        "N",
        LIMITS,
        "Channels one connection may be subscribed to at once (more answers bad_request)"
    ),
    setting!(
        "outbound_queue_frames",
        "outbound-queue-frames",
        ["OUTBOUND_QUEUE_FRAMES"],
        Some(|d| d.outbound_queue_frames.to_string()),
        "",
        "N",
        LIMITS,
        "Frames queued for a connection that reads slowly, before the least important is evicted"
    ),
    setting!(
        "outbound_queue_bytes",
        "outbound-queue-bytes",
        ["OUTBOUND_QUEUE_BYTES"],
        Some(|d| d.outbound_queue_bytes.to_string()),
        "",
        "BYTES",
        LIMITS,
        "Bytes queued for a connection that reads slowly, before the least important is evicted"
    ),
    setting!(
        "write_coalesce_us",
        "write-coalesce-us",
        ["WRITE_COALESCE_US"],
        Some(|d| d.write_coalesce.map_or(0, |w| w.as_micros()).to_string()),
        "",
        "US",
        LIMITS,
        "Opt-in write coalescing: frames for a connection within this window go out in one write (0: off, each is written at once)"
    ),
    setting!(
        "heartbeat_ms",
        "heartbeat-ms",
        ["HEARTBEAT_MS"],
        Some(|d| ms(d.heartbeat)),
        "",
        "MS",
        TIMING,
        "How often the server pings each connection"
    ),
    setting!(
        "handshake_timeout_ms",
        "handshake-timeout-ms",
        ["HANDSHAKE_TIMEOUT_MS"],
        Some(|d| ms(d.handshake_timeout)),
        "",
        "MS",
        TIMING,
        "How long a client may take to send its HTTP request (slowloris protection)"
    ),
    setting!(
        "idle_timeout_ms",
        "idle-timeout-ms",
        ["IDLE_TIMEOUT_MS"],
        Some(|d| ms(d.idle_timeout)),
        "",
        "MS",
        TIMING,
        "Close a connection (4000) that sent nothing, pongs included, for this long"
    ),
    setting!(
        "presence_ttl_ms",
        "presence-ttl-ms",
        ["PRESENCE_TTL_MS"],
        Some(|d| ms(d.presence_ttl)),
        "",
        "MS",
        TIMING,
        "A presence member without activity expires after this long"
    ),
    setting!(
        "presence_cleanup_ms",
        "presence-cleanup-ms",
        ["PRESENCE_CLEANUP_MS"],
        Some(|d| ms(d.presence_cleanup)),
        "",
        "MS",
        TIMING,
        "How often expired presence members are swept"
    ),
    setting!(
        "history_size",
        "history-size",
        ["HISTORY_SIZE"],
        Some(|d| d.history_size.to_string()),
        "",
        "N",
        TIMING,
        "Messages kept per channel for recovery (0: none)"
    ),
    setting!(
        "history_ttl_ms",
        "history-ttl-ms",
        ["HISTORY_TTL_MS"],
        Some(|d| ms(d.history_ttl)),
        "",
        "MS",
        TIMING,
        "How long a message stays recoverable"
    ),
    setting!(
        "history_max_bytes",
        "history-max-bytes",
        ["HISTORY_MAX_BYTES"],
        Some(|d| d.history_max_bytes.to_string()),
        "",
        "BYTES",
        TIMING,
        "Bytes of message history held across all channels (0: unbounded); over it the oldest messages of the least recently published channels go"
    ),
    setting!(
        "history_max_channel_bytes",
        "history-max-channel-bytes",
        ["HISTORY_MAX_CHANNEL_BYTES"],
        Some(|d| d.history_max_channel_bytes.to_string()),
        "",
        "BYTES",
        TIMING,
        "Bytes of message history one channel keeps in Redis (0: HISTORY_SIZE alone bounds it); the oldest go first"
    ),
    setting!(
        "shutdown_timeout_ms",
        "shutdown-timeout-ms",
        ["SHUTDOWN_TIMEOUT_MS"],
        Some(|d| ms(d.shutdown_timeout)),
        "",
        "MS",
        OPS,
        "On SIGINT/SIGTERM, how long to wait for connections to drain"
    ),
    setting!(
        "drain_window_ms",
        "drain-window-ms",
        ["DRAIN_WINDOW_MS"],
        Some(|d| ms(d.drain_window)),
        "",
        "MS",
        OPS,
        "On shutdown, connections are closed (1001) at random moments within this window (at most SHUTDOWN_TIMEOUT_MS)"
    ),
    setting!(
        "log_format",
        "log-format",
        ["LOG_FORMAT"],
        Some(|d| d.log_format.to_string()),
        "",
        "FORMAT",
        OPS,
        "Log format: text or json"
    ),
    setting!(
        "log_filter",
        "log-filter",
        ["RUST_LOG"],
        Some(|d| d.log_filter.clone()),
        "",
        "FILTER",
        OPS,
        "Log filter (tracing-subscriber EnvFilter syntax, e.g. info,switchboard_transport=debug)"
    ),
    setting!(
        "webhook_url",
        "webhook-url",
        ["WEBHOOK_URL"],
        None,
        "no webhooks",
        "URL",
        WEBHOOKS,
        "Where lifecycle events are POSTed in batches (http:// or https://)"
    ),
    setting!(
        "webhook_secret",
        "webhook-secret",
        ["WEBHOOK_SECRET"],
        None,
        "requests are not signed",
        "SECRET",
        WEBHOOKS,
        "Key of the X-Switchboard-Signature header (sha256=<hex HMAC-SHA256 of the body>)",
        secret
    ),
    setting!(
        "webhook_events",
        "webhook-events",
        ["WEBHOOK_EVENTS"],
        None,
        "every type",
        "TYPES",
        WEBHOOKS,
        "Comma-separated event types to send (connected, disconnected, subscribed, unsubscribed, member_added, member_removed, channel_occupied, channel_vacated)"
    ),
    setting!(
        "webhook_queue_path",
        "webhook-queue-path",
        ["WEBHOOK_QUEUE_PATH"],
        None,
        "the queue is in memory",
        "FILE",
        WEBHOOKS,
        "File that keeps undelivered events across restarts"
    ),
    setting!(
        "webhook_ca_path",
        "webhook-ca-path",
        ["WEBHOOK_CA_PATH"],
        None,
        "the Mozilla roots only",
        "FILE",
        WEBHOOKS,
        "PEM file of CA certificates trusted for an https:// WEBHOOK_URL besides the Mozilla roots"
    ),
];

/// The setting with file key `key`.
///
/// # Panics
/// For a key that is not in the table (a bug in this crate).
pub(crate) fn setting(key: &str) -> &'static Setting {
    SETTINGS
        .iter()
        .find(|s| s.key == key)
        .unwrap_or_else(|| panic!("no setting named {key}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_setting_has_a_unique_key_flag_and_environment_name() {
        let mut seen = std::collections::HashSet::new();
        for s in SETTINGS {
            assert!(seen.insert(s.key), "{}", s.key);
            assert!(seen.insert(s.flag) || s.flag == s.key, "{}", s.flag);
            for env in s.env {
                assert!(seen.insert(env), "{env}");
            }
            assert_eq!(s.flag, s.key.replace('_', "-"));
        }
    }
}
