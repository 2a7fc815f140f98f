//! Arbitrary settings from flags, the environment and a TOML file: loading either succeeds
//! with a configuration that validates, or fails with an error whose exit code is the
//! documented one (2 for an invalid setting, 0 for --help/--version) — never a panic.
#![no_main]

use std::io::Write;

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use switchboard_server::ServerConfig;

const NAMES: &[&str] = &[
    "HOST",
    "PORT",
    "WEBSOCKET_PORT",
    "REDIS_URL",
    "REDIS_HOST",
    "REDIS_PORT",
    "REDIS_PASSWORD",
    "SSL_ENABLED",
    "SSL_CERT_PATH",
    "SSL_KEY_PATH",
    "SSL_CA_PATH",
    "SSL_KEY_PASSPHRASE",
    "CORS_ORIGIN",
    "AUTH_JWT_SECRET",
    "NEXTAUTH_SECRET",
    "AUTH_JWT_PUBLIC_KEY_PATH",
    "AUTH_DEFAULT_CHANNELS",
    "AUTH_AUDIENCE",
    "AUTH_ISSUER",
    "RATE_LIMIT_MAX_MESSAGES",
    "RATE_LIMIT_WINDOW_MS",
    "RATE_LIMIT_USER_MAX_MESSAGES",
    "MAX_CONNECTIONS_PER_IP",
    "MAX_CONNECTIONS",
    "MAX_MESSAGE_BYTES",
    "HEARTBEAT_MS",
    "HANDSHAKE_TIMEOUT_MS",
    "MAX_SUBSCRIPTIONS_PER_CONNECTION",
    "OUTBOUND_QUEUE_FRAMES",
    "OUTBOUND_QUEUE_BYTES",
    "WRITE_COALESCE_US",
    "IDLE_TIMEOUT_MS",
    "PRESENCE_TTL_MS",
    "PRESENCE_CLEANUP_MS",
    "HISTORY_SIZE",
    "HISTORY_TTL_MS",
    "HISTORY_MAX_BYTES",
    "HISTORY_MAX_CHANNEL_BYTES",
    "REDACT_FIELDS",
    "PUBLISH_API_KEY",
    "REDIS_PROBE_INTERVAL_MS",
    "REDIS_TIMEOUT_MS",
    "SHUTDOWN_TIMEOUT_MS",
    "LOG_FORMAT",
    "RUST_LOG",
];

#[derive(Debug, Arbitrary)]
struct Input {
    args: Vec<String>,
    env: Vec<(u8, String)>,
    file: Option<String>,
}

fuzz_target!(|input: Input| {
    let mut args = vec!["switchboard".to_owned()];
    args.extend(input.args.into_iter().take(16));
    let file = input.file.map(|text| {
        let mut file = tempfile::NamedTempFile::new().unwrap();
        file.write_all(text.as_bytes()).unwrap();
        args.push("--config".into());
        args.push(file.path().display().to_string());
        file
    });
    let env: Vec<(&str, String)> = input
        .env
        .into_iter()
        .map(|(i, v)| (NAMES[usize::from(i) % NAMES.len()], v))
        .collect();
    let result = ServerConfig::load_from(args, |name| {
        env.iter()
            .rev()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.clone())
    });
    match result {
        Ok(config) => assert!(config.validate().is_ok()),
        Err(err) => assert!([0, 2].contains(&err.exit_code()), "{err}"),
    }
    drop(file);
});
