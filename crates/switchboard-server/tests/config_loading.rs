//! Configuration: precedence (flags > environment > file > defaults), aliases, validation.

mod support;

use std::collections::HashMap;
use std::num::NonZeroU32;
use std::time::Duration;

use switchboard_server::{ConfigError, LogFormat, ServerConfig};

fn load(args: &[&str], env: &[(&str, &str)]) -> Result<ServerConfig, ConfigError> {
    let env: HashMap<String, String> = env
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    let args = std::iter::once("switchboard").chain(args.iter().copied());
    ServerConfig::load_from(args, |name| env.get(name).cloned())
}

fn config_file(text: &str) -> tempfile::NamedTempFile {
    let file = tempfile::Builder::new().suffix(".toml").tempfile().unwrap();
    std::fs::write(file.path(), text).unwrap();
    file
}

#[test]
fn no_configuration_at_all_gives_the_documented_defaults() {
    let config = load(&[], &[]).unwrap();
    assert_eq!(
        format!("{config:?}"),
        format!("{:?}", ServerConfig::default())
    );
    assert_eq!(config.host, "127.0.0.1");
    assert_eq!(config.port, 5111);
    assert!(config.redis_url.is_none(), "memory backplane");
    assert!(config.tls.is_none(), "no TLS");
    assert_eq!(config.auth_mode(), "open");
    assert_eq!(config.rate_limit_max_messages.get(), 100);
    assert_eq!(config.rate_limit_window, Duration::from_secs(60));
    assert_eq!(config.max_connections_per_ip, NonZeroU32::new(10));
    assert_eq!(config.max_connections, None);
    assert_eq!(config.max_message_bytes.get(), 65536);
    assert_eq!(config.heartbeat, Duration::from_secs(30));
    assert_eq!(config.idle_timeout, Duration::from_secs(300));
    assert_eq!(config.presence_ttl, Duration::from_secs(1800));
    assert_eq!(config.presence_cleanup, Duration::from_secs(300));
    assert_eq!(config.history_size, 100);
    assert_eq!(config.history_ttl, Duration::from_secs(300));
    assert_eq!(config.shutdown_timeout, Duration::from_secs(30));
    assert_eq!(config.log_format, LogFormat::Text);
    assert_eq!(config.log_filter, "info");
}

#[test]
fn flags_override_the_environment_which_overrides_the_file() {
    let file = config_file("port = 7000\nhost = \"0.0.0.0\"\nhistory_size = 7\n");
    let path = file.path().to_str().unwrap();

    let from_file = load(&["--config", path], &[]).unwrap();
    assert_eq!(
        (
            from_file.port,
            from_file.host.as_str(),
            from_file.history_size
        ),
        (7000, "0.0.0.0", 7)
    );

    let env_over_file = load(&["--config", path], &[("PORT", "7001")]).unwrap();
    assert_eq!(env_over_file.port, 7001);
    assert_eq!(env_over_file.host, "0.0.0.0", "the file still applies");

    let flag_over_env = load(&["--config", path, "--port", "7002"], &[("PORT", "7001")]).unwrap();
    assert_eq!(flag_over_env.port, 7002);
    assert_eq!(flag_over_env.history_size, 7);
}

#[test]
fn the_config_file_can_be_named_by_switchboard_config() {
    let file = config_file("heartbeat_ms = 1000\nidle_timeout_ms = 5000\n");
    let config = load(
        &[],
        &[("SWITCHBOARD_CONFIG", file.path().to_str().unwrap())],
    )
    .unwrap();
    assert_eq!(config.heartbeat, Duration::from_secs(1));
    assert_eq!(config.idle_timeout, Duration::from_secs(5));
}

#[test]
fn lists_in_the_config_file_may_be_arrays_or_comma_separated_strings() {
    let file = config_file(
        "cors_origin = [\"https://a.example\", \"https://b.example\"]\nredact_fields = \"password, token\"\n",
    );
    let config = load(&["--config", file.path().to_str().unwrap()], &[]).unwrap();
    assert_eq!(
        config.allowed_origins.unwrap(),
        ["https://a.example", "https://b.example"]
    );
    assert_eq!(config.redact_fields, ["password", "token"]);
}

#[test]
fn websocket_port_is_an_alias_of_port_and_port_wins() {
    assert_eq!(load(&[], &[("WEBSOCKET_PORT", "6000")]).unwrap().port, 6000);
    assert_eq!(
        load(&[], &[("WEBSOCKET_PORT", "6000"), ("PORT", "6001")])
            .unwrap()
            .port,
        6001
    );
}

#[test]
fn nextauth_secret_is_an_alias_of_auth_jwt_secret() {
    let config = load(&[], &[("NEXTAUTH_SECRET", "from-nextauth")]).unwrap();
    assert_eq!(config.jwt_secret.unwrap().expose(), "from-nextauth");
    assert!(
        config
            .warnings
            .iter()
            .any(|w| w.contains("NEXTAUTH_SECRET")),
        "{:?}",
        config.warnings
    );
    let config = load(
        &[],
        &[
            ("NEXTAUTH_SECRET", "from-nextauth"),
            ("AUTH_JWT_SECRET", "own"),
        ],
    )
    .unwrap();
    assert!(config.warnings.is_empty(), "{:?}", config.warnings);
    assert_eq!(config.jwt_secret.unwrap().expose(), "own");
    assert_eq!(
        load(&[], &[("AUTH_JWT_PUBLIC_KEY_PATH", "/k.pem")])
            .unwrap()
            .auth_mode(),
        "jwt (RS256/ES256)"
    );
}

#[test]
fn redis_host_port_and_password_build_the_redis_url() {
    let config = load(
        &[],
        &[
            ("REDIS_HOST", "cache.internal"),
            ("REDIS_PORT", "6380"),
            ("REDIS_PASSWORD", "p@ss/word"),
        ],
    )
    .unwrap();
    assert_eq!(
        config.redis_url.unwrap().expose(),
        "redis://:p%40ss%2Fword@cache.internal:6380"
    );
    let default_port = load(&[], &[("REDIS_HOST", "cache")]).unwrap();
    assert_eq!(
        default_port.redis_url.unwrap().expose(),
        "redis://cache:6379"
    );
}

#[test]
fn redis_url_wins_over_redis_host_from_the_same_source_and_a_flag_wins_over_both() {
    let env = [("REDIS_URL", "redis://url-host:1"), ("REDIS_HOST", "other")];
    assert_eq!(
        load(&[], &env).unwrap().redis_url.unwrap().expose(),
        "redis://url-host:1"
    );
    assert_eq!(
        load(&["--redis-host", "flag-host"], &env)
            .unwrap()
            .redis_url
            .unwrap()
            .expose(),
        "redis://flag-host:6379"
    );
}

#[test]
fn zero_connection_caps_mean_unlimited() {
    let config = load(
        &[],
        &[("MAX_CONNECTIONS_PER_IP", "0"), ("MAX_CONNECTIONS", "0")],
    )
    .unwrap();
    assert_eq!(config.max_connections_per_ip, None);
    assert_eq!(config.max_connections, None);
    let capped = load(&["--max-connections", "500"], &[]).unwrap();
    assert_eq!(capped.max_connections, NonZeroU32::new(500));
}

#[test]
fn empty_environment_variables_count_as_unset() {
    let config = load(
        &[],
        &[("PORT", ""), ("REDIS_URL", " "), ("CORS_ORIGIN", "")],
    )
    .unwrap();
    assert_eq!(config.port, 5111);
    assert!(config.redis_url.is_none());
    assert!(config.allowed_origins.is_none());
}

#[test]
fn booleans_accept_the_usual_spellings_and_a_bare_flag() {
    let dir = tempfile::tempdir().unwrap();
    let (_, cert, key) = support::write_certificate(dir.path());
    let (cert, key) = (cert.to_str().unwrap(), key.to_str().unwrap());
    for enabled in ["true", "1", "yes", "ON"] {
        let env = [
            ("SSL_ENABLED", enabled),
            ("SSL_CERT_PATH", cert),
            ("SSL_KEY_PATH", key),
        ];
        assert!(load(&[], &env).unwrap().tls.is_some(), "{enabled}");
    }
    let env = [("SSL_CERT_PATH", cert), ("SSL_KEY_PATH", key)];
    assert!(load(&["--ssl-enabled"], &env).unwrap().tls.is_some());
    assert!(
        load(&["--ssl-enabled=false"], &[("SSL_ENABLED", "true")])
            .unwrap()
            .tls
            .is_none()
    );
}

#[test]
fn an_invalid_value_is_rejected_naming_the_setting_and_where_it_came_from() {
    let err = load(&[], &[("PORT", "eighty")]).unwrap_err();
    assert_eq!(err.setting(), Some("PORT"));
    assert_eq!(err.exit_code(), 2);
    let message = err.to_string();
    assert!(message.contains("PORT"), "{message}");
    assert!(message.contains("environment variable PORT"), "{message}");
    assert!(message.contains("eighty"), "{message}");

    let err = load(&["--heartbeat-ms=-5"], &[]).unwrap_err();
    assert!(
        matches!(
            err,
            ConfigError::Invalid {
                setting: "HEARTBEAT_MS",
                ..
            }
        ),
        "{err}"
    );
    assert!(err.to_string().contains("--heartbeat-ms"));

    for (name, value) in [
        ("RATE_LIMIT_MAX_MESSAGES", "0"),
        ("MAX_MESSAGE_BYTES", "0"),
        ("LOG_FORMAT", "xml"),
        ("SSL_ENABLED", "maybe"),
        ("CORS_ORIGIN", "not-an-origin"),
        ("HOST", "not a host"),
        ("REDIS_URL", "http://cache"),
        ("RUST_LOG", "info,[="),
        ("HISTORY_TTL_MS", "0"),
        ("MAX_SUBSCRIPTIONS_PER_CONNECTION", "0"),
        ("OUTBOUND_QUEUE_FRAMES", "none"),
        ("OUTBOUND_QUEUE_BYTES", "0"),
        ("HANDSHAKE_TIMEOUT_MS", "-1"),
        ("WRITE_COALESCE_US", "1.5ms"),
        ("HEARTBEAT_MS", "30 seconds"),
    ] {
        let err = load(&[], &[(name, value)]).unwrap_err();
        assert_eq!(err.setting(), Some(name), "{name}={value}: {err}");
    }
}

#[test]
fn settings_that_contradict_each_other_are_rejected() {
    let err = load(
        &[],
        &[("HEARTBEAT_MS", "60000"), ("IDLE_TIMEOUT_MS", "30000")],
    )
    .unwrap_err();
    assert_eq!(err.setting(), Some("IDLE_TIMEOUT_MS"));
    let err = load(
        &[],
        &[("SHUTDOWN_TIMEOUT_MS", "1000"), ("DRAIN_WINDOW_MS", "2000")],
    )
    .unwrap_err();
    assert_eq!(err.setting(), Some("DRAIN_WINDOW_MS"));
}

#[test]
fn ssl_enabled_without_a_certificate_is_rejected_naming_ssl_cert_path() {
    let err = load(&[], &[("SSL_ENABLED", "true")]).unwrap_err();
    assert_eq!(err.setting(), Some("SSL_CERT_PATH"));
    let err = load(
        &[],
        &[
            ("SSL_ENABLED", "true"),
            ("SSL_CERT_PATH", "/c.pem"),
            ("SSL_KEY_PATH", "/k.pem"),
            ("SSL_CLIENT_AUTH", "required"),
        ],
    )
    .unwrap_err();
    assert_eq!(err.setting(), Some("SSL_CLIENT_AUTH"), "{err}");
}

#[test]
fn an_unknown_key_or_a_bad_value_type_in_the_config_file_is_rejected() {
    let file = config_file("prot = 1\n");
    let err = load(&["--config", file.path().to_str().unwrap()], &[]).unwrap_err();
    assert!(matches!(err, ConfigError::File { .. }));
    assert!(err.to_string().contains("unknown setting `prot`"), "{err}");
    assert_eq!(err.exit_code(), 2);

    let file = config_file("port = 1.5\n");
    let err = load(&["--config", file.path().to_str().unwrap()], &[]).unwrap_err();
    assert!(err.to_string().contains("`port`"), "{err}");

    let err = load(&["--config", "/nonexistent/switchboard.toml"], &[]).unwrap_err();
    assert!(matches!(err, ConfigError::File { .. }), "{err}");
}

#[test]
fn a_bad_value_from_the_file_names_the_file_and_key() {
    let file = config_file("port = \"http\"\n");
    let err = load(&["--config", file.path().to_str().unwrap()], &[]).unwrap_err();
    let message = err.to_string();
    assert!(message.contains("invalid PORT"), "{message}");
    assert!(message.contains("key `port`"), "{message}");
}

#[test]
fn secrets_never_appear_in_debug_output_or_errors() {
    let config = load(
        &[],
        &[
            ("AUTH_JWT_SECRET", "jwt-secret-value"),
            ("PUBLISH_API_KEY", "api-key-value"),
            ("REDIS_URL", "redis://:redis-password@cache:6379"),
        ],
    )
    .unwrap();
    let debug = format!("{config:?}");
    for secret in ["jwt-secret-value", "api-key-value", "redis-password"] {
        assert!(!debug.contains(secret), "{debug}");
    }
    let err = load(&[], &[("REDIS_URL", "https://:hunter2@cache")]).unwrap_err();
    assert!(!err.to_string().contains("hunter2"), "{err}");
}

#[test]
fn help_documents_every_setting_with_its_environment_name_and_default() {
    let help = ServerConfig::help();
    for name in [
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
        "MAX_SUBSCRIPTIONS_PER_CONNECTION",
        "OUTBOUND_QUEUE_FRAMES",
        "OUTBOUND_QUEUE_BYTES",
        "WRITE_COALESCE_US",
        "HEARTBEAT_MS",
        "HANDSHAKE_TIMEOUT_MS",
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
    ] {
        assert!(help.contains(name), "{name} is missing from --help");
    }
    for default in [
        "[default: 127.0.0.1]",
        "[default: 5111]",
        "[default: 100]",
        "[default: 60000]",
        "[default: 10]",
        "[default: 65536]",
        "[default: 30000]",
        "[default: 300000]",
        "[default: 1800000]",
        "[default: 2000]",
        "[default: 1000]",
        "[default: text]",
        "[default: info]",
    ] {
        assert!(help.contains(default), "{default} is missing from --help");
    }
}

#[test]
fn help_and_version_are_not_errors_of_the_configuration() {
    let err = load(&["--help"], &[]).unwrap_err();
    assert!(matches!(err, ConfigError::Cli(_)));
    assert_eq!(err.exit_code(), 0);
    let err = load(&["--no-such-flag"], &[]).unwrap_err();
    assert_eq!(err.exit_code(), 2);
}

#[tokio::test]
async fn the_binary_exits_with_code_2_and_a_message_naming_an_invalid_setting() {
    let binary = support::Binary::spawn(&[("RATE_LIMIT_WINDOW_MS", "soon")], &[]);
    let (code, output) = binary.exit().await;
    assert_eq!(code, Some(2), "{output}");
    assert!(output.contains("invalid RATE_LIMIT_WINDOW_MS"), "{output}");
    assert!(output.contains("soon"), "{output}");
}

#[tokio::test]
async fn the_binary_warns_at_startup_when_the_jwt_secret_comes_from_nextauth_secret() {
    for (variable, warned) in [("NEXTAUTH_SECRET", true), ("AUTH_JWT_SECRET", false)] {
        let mut binary = support::Binary::spawn(&[("PORT", "0"), (variable, "s3cret")], &[]);
        binary.listening().await;
        binary.terminate();
        let (code, output) = binary.exit().await;
        assert_eq!(code, Some(0), "{output}");
        assert_eq!(
            output.contains("the JWT secret is read from NEXTAUTH_SECRET"),
            warned,
            "{variable}: {output}"
        );
        assert!(
            !output.contains("s3cret"),
            "the secret was logged: {output}"
        );
    }
}

#[tokio::test]
async fn the_binary_prints_help_with_every_default_and_exits_0() {
    let binary = support::Binary::spawn(&[], &["--help"]);
    let (code, output) = binary.exit().await;
    assert_eq!(code, Some(0));
    assert!(output.contains("--max-connections-per-ip"), "{output}");
    assert!(
        output.contains("[env: SWITCHBOARD_PORT, PORT, WEBSOCKET_PORT]"),
        "{output}"
    );
}

#[test]
fn connection_limits_and_the_handshake_timeout_come_from_the_environment_or_flags() {
    let defaults = load(&[], &[]).unwrap();
    assert_eq!(defaults.max_subscriptions_per_connection.get(), 128);
    assert_eq!(defaults.outbound_queue_frames.get(), 1024);
    assert_eq!(defaults.outbound_queue_bytes.get(), 4 << 20);
    assert_eq!(defaults.handshake_timeout, Duration::from_secs(10));
    let config = load(
        &["--outbound-queue-bytes", "65536"],
        &[
            ("MAX_SUBSCRIPTIONS_PER_CONNECTION", "1000"),
            ("OUTBOUND_QUEUE_FRAMES", "64"),
            ("OUTBOUND_QUEUE_BYTES", "1"),
            ("HANDSHAKE_TIMEOUT_MS", "2500"),
        ],
    )
    .unwrap();
    assert_eq!(config.max_subscriptions_per_connection.get(), 1000);
    assert_eq!(config.outbound_queue_frames.get(), 64);
    assert_eq!(
        config.outbound_queue_bytes.get(),
        65536,
        "a flag wins over the environment"
    );
    assert_eq!(config.handshake_timeout, Duration::from_millis(2500));
}

#[test]
fn write_coalescing_is_off_by_default_and_set_in_microseconds() {
    assert_eq!(load(&[], &[]).unwrap().write_coalesce, None);
    let config = load(&[], &[("WRITE_COALESCE_US", "1500")]).unwrap();
    assert_eq!(config.write_coalesce, Some(Duration::from_micros(1500)));
    let config = load(
        &["--write-coalesce-us", "0"],
        &[("WRITE_COALESCE_US", "1500")],
    )
    .unwrap();
    assert_eq!(config.write_coalesce, None, "0 turns it off");
}

#[test]
fn default_channels_audience_and_issuer_are_read_and_an_empty_pattern_list_is_refused() {
    let defaults = load(&[], &[]).unwrap();
    assert_eq!(defaults.auth_default_channels, ["*"]);
    assert_eq!((defaults.auth_audience, defaults.auth_issuer), (None, None));
    let config = load(
        &["--auth-issuer", "https://auth.example"],
        &[
            ("AUTH_DEFAULT_CHANNELS", "public:*, user:{sub}"),
            ("AUTH_AUDIENCE", "switchboard"),
        ],
    )
    .unwrap();
    assert_eq!(config.auth_default_channels, ["public:*", "user:{sub}"]);
    assert_eq!(config.auth_audience.as_deref(), Some("switchboard"));
    assert_eq!(config.auth_issuer.as_deref(), Some("https://auth.example"));
    let err = load(&[], &[("AUTH_DEFAULT_CHANNELS", " , ")]).unwrap_err();
    assert!(err.to_string().contains("AUTH_DEFAULT_CHANNELS"), "{err}");
}

#[test]
fn the_user_rate_limit_defaults_to_1000_per_window_and_0_turns_it_off() {
    let defaults = load(&[], &[]).unwrap();
    let quota = defaults.user_rate_limit().unwrap().unwrap();
    assert_eq!(quota.capacity(), 1000);
    let off = load(&[], &[("RATE_LIMIT_USER_MAX_MESSAGES", "0")]).unwrap();
    assert_eq!(off.user_rate_limit().unwrap(), None);
}

#[test]
fn webhooks_load_from_the_environment_and_bad_values_name_their_setting() {
    let config = load(
        &[],
        &[
            ("WEBHOOK_URL", "https://hooks.example.com/switchboard"),
            ("WEBHOOK_SECRET", "s3cret"),
            ("WEBHOOK_EVENTS", "connected, member_added"),
            ("WEBHOOK_QUEUE_PATH", "/var/lib/switchboard/webhooks"),
        ],
    )
    .unwrap();
    let webhook = config.webhook.expect("webhooks on");
    assert_eq!(webhook.url, "https://hooks.example.com/switchboard");
    assert_eq!(webhook.secret.unwrap().expose(), "s3cret");
    assert_eq!(
        webhook.events,
        Some(vec![
            switchboard_server::WebhookEventType::Connected,
            switchboard_server::WebhookEventType::MemberAdded
        ])
    );
    assert_eq!(
        webhook.queue_path.as_deref(),
        Some(std::path::Path::new("/var/lib/switchboard/webhooks"))
    );
    assert!(load(&[], &[]).unwrap().webhook.is_none());

    for (env, needle) in [
        (("WEBHOOK_URL", "ftp://hooks.example.com/"), "WEBHOOK_URL"),
        (("WEBHOOK_URL", "hooks.example.com"), "WEBHOOK_URL"),
    ] {
        let err = load(&[], &[env]).unwrap_err().to_string();
        assert!(err.contains(needle), "{err}");
    }
    let err = load(
        &[],
        &[
            ("WEBHOOK_URL", "http://127.0.0.1:9/"),
            ("WEBHOOK_EVENTS", "connected,channel_gone"),
        ],
    )
    .unwrap_err()
    .to_string();
    assert!(
        err.contains("WEBHOOK_EVENTS") && err.contains("channel_gone"),
        "{err}"
    );
}
