//! Loading: flags over environment over file over defaults, each value parsed with an error
//! that names the setting and where the value came from.

use std::collections::{BTreeMap, HashMap};
use std::ffi::OsString;
use std::fmt;
use std::num::{NonZeroU32, NonZeroUsize};
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use clap::{Arg, ArgAction, ArgMatches, Command};
use switchboard_tls::{ClientAuth, TlsConfig};

use super::settings::{DEFAULT_REDIS_PORT, SETTINGS, Setting, setting};
use super::{ConfigError, LogFormat, Namespace, Secret, ServerConfig, validate_filter};

/// The environment variable naming the config file when `--config` is not given.
pub(crate) const CONFIG_ENV: &str = "SWITCHBOARD_CONFIG";

const ABOUT: &str = "The switchboard reference server: realtime WebSocket channels, presence \
and history (Protocol v1 on /ws), health, metrics and an HTTP publish API, all on one port.";

const AFTER_HELP: &str = "\
Every setting can be given as a flag, an environment variable, or a key of the TOML file \
named by --config. Precedence: flags, then environment, then file, then defaults. Every \
environment variable is also read with a SWITCHBOARD_ prefix, which wins over the plain name \
(SWITCHBOARD_PORT over PORT). An empty environment variable counts as unset. Durations are \
whole numbers with a unit (250ms, 30s, 5m, 1h; us for microseconds); a bare number is in \
the setting's own unit (milliseconds, or microseconds for WRITE_COALESCE_US).

With no configuration at all the server listens on 127.0.0.1:5111 with the memory backplane \
(one instance), no TLS and no authentication (open mode).

Exit codes: 0 after a graceful shutdown (SIGINT/SIGTERM), 1 when the server cannot start \
(port in use, unreadable TLS files, ...), 2 for an invalid configuration.";

/// Loading is the reference server's own: the configuration types stay plain data.
impl ServerConfig {
    /// Loads the configuration of the `switchboard` binary from its command line, the
    /// process environment and the file named by `--config` (or `SWITCHBOARD_CONFIG`).
    /// Precedence: flags, then environment, then file, then defaults.
    ///
    /// # Errors
    /// [`ConfigError`]: `--help` and `--version` too ([`ConfigError::Cli`], whose
    /// [`exit_code`](ConfigError::exit_code) is 0).
    pub fn load() -> Result<Self, ConfigError> {
        Self::load_from(std::env::args_os(), |name| {
            std::env::var_os(name).map(|v| v.to_string_lossy().into_owned())
        })
    }

    /// As [`ServerConfig::load`], with the command line (program name first) and the
    /// environment given: `env` returns a variable's value. For tests and embedding.
    ///
    /// # Errors
    /// As [`ServerConfig::load`].
    pub fn load_from<I, T>(
        args: I,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, ConfigError>
    where
        I: IntoIterator<Item = T>,
        T: Into<std::ffi::OsString> + Clone,
    {
        load(args, &env)
    }

    /// The `--help` text of the `switchboard` binary: every setting with its flag,
    /// environment names and default.
    #[must_use]
    pub fn help() -> String {
        command().render_long_help().to_string()
    }
}

/// The `switchboard` command line: `--config` and one flag per setting, each with its
/// default read from [`ServerConfig::default`].
pub(crate) fn command() -> Command {
    let defaults = ServerConfig::default();
    let mut command = Command::new("switchboard")
        .version(env!("CARGO_PKG_VERSION"))
        .about(ABOUT)
        .after_help(AFTER_HELP)
        .max_term_width(100)
        .arg(
            Arg::new("config")
                .long("config")
                .short('c')
                .value_name("FILE")
                .action(ArgAction::Set)
                .help(format!(
                    "TOML file of settings, keyed by the names in brackets below (port = 5111) \
                     [env: {CONFIG_ENV}] [default: none]"
                )),
        );
    for s in SETTINGS {
        let mut arg = Arg::new(s.key)
            .long(s.flag)
            .value_name(s.value_name)
            .help_heading(s.heading)
            .action(ArgAction::Set)
            .help(help_line(s, &defaults));
        if s.boolean {
            arg = arg
                .num_args(0..=1)
                .require_equals(true)
                .default_missing_value("true");
        }
        command = command.arg(arg);
    }
    command
}

fn help_line(s: &Setting, defaults: &ServerConfig) -> String {
    let default = s
        .default
        .map_or_else(|| s.unset.to_owned(), |render| render(defaults));
    format!(
        "{} [env: {ENV_PREFIX}{}, {}] [file: {}] [default: {default}]",
        s.help,
        s.env[0],
        s.env.join(", "),
        s.key
    )
}

/// Every environment name is also read with this prefix, before the plain name: a
/// deployment can name switchboard's settings apart from others in the same environment
/// (Kubernetes injects `REDIS_PORT=tcp://…` for a service named `redis`).
pub(crate) const ENV_PREFIX: &str = "SWITCHBOARD_";

/// Where a value came from, for error messages.
#[derive(Debug, Clone)]
enum Origin {
    Flag(&'static str),
    Env(String),
    File(PathBuf, &'static str),
}

impl Origin {
    /// Lower is stronger.
    fn rank(&self) -> u8 {
        match self {
            Self::Flag(_) => 0,
            Self::Env(_) => 1,
            Self::File(..) => 2,
        }
    }
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Flag(flag) => write!(f, "--{flag}"),
            Self::Env(name) => write!(f, "environment variable {name}"),
            Self::File(path, key) => write!(f, "{}, key `{key}`", path.display()),
        }
    }
}

struct FileValues {
    path: PathBuf,
    values: HashMap<&'static str, String>,
    /// The `[namespaces.<name>]` tables.
    namespaces: BTreeMap<String, Namespace>,
}

struct Sources<'a> {
    matches: ArgMatches,
    env: &'a dyn Fn(&str) -> Option<String>,
    file: Option<FileValues>,
}

impl Sources<'_> {
    /// The strongest non-empty value of a setting, and where it came from.
    fn raw(&self, s: &'static Setting) -> Option<(String, Origin)> {
        if let Some(value) = self.matches.get_one::<String>(s.key)
            && !value.trim().is_empty()
        {
            return Some((value.clone(), Origin::Flag(s.flag)));
        }
        for name in s.env {
            let prefixed = format!("{ENV_PREFIX}{name}");
            for name in [prefixed.as_str(), name] {
                if let Some(value) = (self.env)(name)
                    && !value.trim().is_empty()
                {
                    return Some((value, Origin::Env(name.to_owned())));
                }
            }
        }
        let file = self.file.as_ref()?;
        file.values
            .get(s.key)
            .filter(|v| !v.trim().is_empty())
            .map(|v| (v.clone(), Origin::File(file.path.clone(), s.key)))
    }

    /// How strong the source of `key` is (0: a flag), or `None` when it is unset.
    fn rank(&self, key: &str) -> Option<u8> {
        self.raw(setting(key)).map(|(_, origin)| origin.rank())
    }

    /// The parsed value of `key`, or `None` when it is unset everywhere.
    fn get<T>(
        &self,
        key: &str,
        parse: impl Fn(&str) -> Result<T, String>,
    ) -> Result<Option<T>, ConfigError> {
        let s = setting(key);
        let Some((value, origin)) = self.raw(s) else {
            return Ok(None);
        };
        parse(value.trim())
            .map(Some)
            .map_err(|reason| ConfigError::Invalid {
                setting: s.name(),
                origin: origin.to_string(),
                reason: if s.secret {
                    "the value is invalid".into()
                } else {
                    reason
                },
            })
    }
}

/// What [`ServerConfig::warnings`] says about how the configuration was given.
fn warnings(src: &Sources<'_>) -> Vec<String> {
    let mut warnings = Vec::new();
    if let Some((_, Origin::Env(name))) = src.raw(setting("auth_jwt_secret"))
        && name.ends_with("NEXTAUTH_SECRET")
    {
        warnings.push(format!(
            "the JWT secret is read from {name}, the web application's session secret: \
             anything holding it can sign switchboard tokens, and rotating one rotates both; \
             give switchboard a secret of its own in AUTH_JWT_SECRET"
        ));
    }
    // Only where the port is used: with REDIS_URL chosen, Kubernetes' REDIS_PORT is moot.
    if redis_from_host(src) == Some(true)
        && let Some((value, origin)) = src.raw(setting("redis_port"))
        && is_service_link(&value)
    {
        warnings.push(format!(
            "{origin} is {value:?}, a Kubernetes service link, not a port: ignored (port \
             {DEFAULT_REDIS_PORT}); set {ENV_PREFIX}REDIS_PORT or REDIS_URL to choose the port"
        ));
    }
    warnings
}

/// A Kubernetes service link (`tcp://10.0.0.7:6379`), which Kubernetes puts in
/// `<SERVICE>_PORT` for every service of the namespace.
fn is_service_link(value: &str) -> bool {
    value.trim().starts_with("tcp://") || value.trim().starts_with("udp://")
}

/// Loads and validates the configuration.
pub(crate) fn load<I, T>(
    args: I,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<ServerConfig, ConfigError>
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    let matches = command().try_get_matches_from(args)?;
    let file_path = matches
        .get_one::<String>("config")
        .map(PathBuf::from)
        .or_else(|| env(CONFIG_ENV).filter(|v| !v.is_empty()).map(PathBuf::from));
    let file = file_path.map(read_file).transpose()?;
    let src = Sources { matches, env, file };
    let defaults = ServerConfig::default();

    let config = ServerConfig {
        host: src.get("host", parse_host)?.unwrap_or(defaults.host),
        port: src
            .get("port", parse_number::<u16>)?
            .unwrap_or(defaults.port),
        allowed_origins: src.get("cors_origin", parse_origins)?,
        redis_url: redis_url(&src)?,
        redis_probe_interval: src
            .get("redis_probe_interval_ms", parse_ms)?
            .unwrap_or(defaults.redis_probe_interval),
        redis_timeout: src
            .get("redis_timeout_ms", parse_ms)?
            .unwrap_or(defaults.redis_timeout),
        tls: tls(&src)?,
        tls_reload_interval: match src.get("ssl_reload_interval_ms", parse_ms)? {
            Some(Duration::ZERO) => None,
            Some(every) => Some(every),
            None => defaults.tls_reload_interval,
        },
        jwt_secret: src.get("auth_jwt_secret", parse_secret)?,
        jwt_public_key_path: src.get("auth_jwt_public_key_path", parse_path)?,
        auth_default_channels: src
            .get("auth_default_channels", parse_patterns)?
            .unwrap_or(defaults.auth_default_channels),
        auth_audience: src.get("auth_audience", parse_claim)?,
        auth_issuer: src.get("auth_issuer", parse_claim)?,
        publish_api_key: src.get("publish_api_key", parse_secret)?,
        redact_fields: src
            .get("redact_fields", |v| Ok(parse_list(v)))?
            .unwrap_or_default(),
        rate_limit_max_messages: src
            .get("rate_limit_max_messages", parse_non_zero_u32)?
            .unwrap_or(defaults.rate_limit_max_messages),
        rate_limit_window: src
            .get("rate_limit_window_ms", parse_ms)?
            .unwrap_or(defaults.rate_limit_window),
        rate_limit_user_max_messages: src
            .get("rate_limit_user_max_messages", parse_number::<u32>)?
            .unwrap_or(defaults.rate_limit_user_max_messages),
        max_connections_per_ip: src
            .get("max_connections_per_ip", parse_cap)?
            .unwrap_or(defaults.max_connections_per_ip),
        max_connections_per_user: src
            .get("max_connections_per_user", parse_cap)?
            .unwrap_or(defaults.max_connections_per_user),
        max_connections: src
            .get("max_connections", parse_cap)?
            .unwrap_or(defaults.max_connections),
        max_message_bytes: src
            .get("max_message_bytes", |v| {
                parse_number::<usize>(v).and_then(|n| {
                    NonZeroUsize::new(n).ok_or_else(|| "must be at least 1".to_owned())
                })
            })?
            .unwrap_or(defaults.max_message_bytes),
        max_subscriptions_per_connection: src
            .get("max_subscriptions_per_connection", parse_non_zero_usize)?
            .unwrap_or(defaults.max_subscriptions_per_connection),
        outbound_queue_frames: src
            .get("outbound_queue_frames", parse_non_zero_usize)?
            .unwrap_or(defaults.outbound_queue_frames),
        outbound_queue_bytes: src
            .get("outbound_queue_bytes", parse_non_zero_usize)?
            .unwrap_or(defaults.outbound_queue_bytes),
        write_coalesce: src
            .get("write_coalesce_us", parse_us)?
            .map_or(defaults.write_coalesce, |window| {
                (!window.is_zero()).then_some(window)
            }),
        heartbeat: src
            .get("heartbeat_ms", parse_ms)?
            .unwrap_or(defaults.heartbeat),
        handshake_timeout: src
            .get("handshake_timeout_ms", parse_ms)?
            .unwrap_or(defaults.handshake_timeout),
        idle_timeout: src
            .get("idle_timeout_ms", parse_ms)?
            .unwrap_or(defaults.idle_timeout),
        presence_ttl: src
            .get("presence_ttl_ms", parse_ms)?
            .unwrap_or(defaults.presence_ttl),
        presence_cleanup: src
            .get("presence_cleanup_ms", parse_ms)?
            .unwrap_or(defaults.presence_cleanup),
        history_size: src
            .get("history_size", parse_number::<usize>)?
            .unwrap_or(defaults.history_size),
        history_ttl: src
            .get("history_ttl_ms", parse_ms)?
            .unwrap_or(defaults.history_ttl),
        history_max_bytes: src
            .get("history_max_bytes", parse_number::<usize>)?
            .unwrap_or(defaults.history_max_bytes),
        history_max_channel_bytes: src
            .get("history_max_channel_bytes", parse_number::<usize>)?
            .unwrap_or(defaults.history_max_channel_bytes),
        shutdown_timeout: src
            .get("shutdown_timeout_ms", parse_ms)?
            .unwrap_or(defaults.shutdown_timeout),
        drain_window: src
            .get("drain_window_ms", parse_ms)?
            .unwrap_or(defaults.drain_window),
        log_format: src
            .get("log_format", LogFormat::from_str)?
            .unwrap_or(defaults.log_format),
        log_filter: src
            .get("log_filter", |v| validate_filter(v).map(|()| v.to_owned()))?
            .unwrap_or(defaults.log_filter),
        webhook: webhook(&src)?,
        namespaces: src
            .file
            .as_ref()
            .map(|file| file.namespaces.clone())
            .unwrap_or_default(),
        warnings: warnings(&src),
    };
    config.validate()?;
    Ok(config)
}

/// The webhook settings, when `WEBHOOK_URL` is set.
fn webhook(src: &Sources<'_>) -> Result<Option<crate::webhooks::WebhookConfig>, ConfigError> {
    let Some(url) = src.get("webhook_url", |v| {
        crate::webhooks::Poster::new(v, None, Duration::from_secs(1), Vec::new())
            .map(|_| v.to_owned())
    })?
    else {
        return Ok(None);
    };
    let events = src.get("webhook_events", |v| {
        let types = parse_list(v)
            .iter()
            .map(|name| name.parse())
            .collect::<Result<Vec<_>, String>>()?;
        if types.is_empty() {
            return Err("name at least one event type".into());
        }
        Ok(types)
    })?;
    Ok(Some(
        crate::webhooks::WebhookConfig::new(url)
            .secret(src.get("webhook_secret", parse_secret)?)
            .events(events)
            .queue_path(src.get("webhook_queue_path", parse_path)?)
            .ca_path(src.get("webhook_ca_path", parse_path)?),
    ))
}

/// The Redis URL: `REDIS_URL`, or one built from `REDIS_HOST`, `REDIS_PORT` and
/// `REDIS_PASSWORD`. When both forms are set, the one from the stronger source wins, and
/// `REDIS_URL` wins within one source.
/// Whether Redis is configured by REDIS_HOST (with REDIS_PORT and REDIS_PASSWORD) rather
/// than REDIS_URL: the stronger source wins, a flag over the environment over the file.
/// `None` when neither is set.
fn redis_from_host(src: &Sources<'_>) -> Option<bool> {
    match (src.rank("redis_url"), src.rank("redis_host")) {
        (None, None) => None,
        (Some(url), Some(host)) => Some(host < url),
        (Some(_), None) => Some(false),
        (None, Some(_)) => Some(true),
    }
}

fn redis_url(src: &Sources<'_>) -> Result<Option<Secret>, ConfigError> {
    let Some(use_host) = redis_from_host(src) else {
        return Ok(None);
    };
    if !use_host {
        return src.get("redis_url", parse_redis_url);
    }
    let host = src
        .get("redis_host", parse_redis_host)?
        .expect("ranked, so set");
    let port = src
        .get("redis_port", |v| {
            if is_service_link(v) {
                // Reported in the warnings; the default port applies.
                return Ok(None);
            }
            parse_number::<u16>(v).and_then(|p| {
                if p == 0 {
                    Err("must be from 1 to 65535".to_owned())
                } else {
                    Ok(Some(p))
                }
            })
        })?
        .flatten()
        .unwrap_or(DEFAULT_REDIS_PORT);
    let password = src.get("redis_password", parse_secret)?;
    let auth = password
        .map(|p| format!(":{}@", percent_encode(p.expose())))
        .unwrap_or_default();
    Ok(Some(Secret::new(format!("redis://{auth}{host}:{port}"))))
}

fn tls(src: &Sources<'_>) -> Result<Option<TlsConfig>, ConfigError> {
    if !src.get("ssl_enabled", parse_bool)?.unwrap_or(false) {
        return Ok(None);
    }
    let required = |key: &str| -> Result<PathBuf, ConfigError> {
        src.get(key, parse_path)?
            .ok_or_else(|| ConfigError::Invalid {
                setting: setting(key).name(),
                origin: "SSL_ENABLED".into(),
                reason: "must be set when SSL_ENABLED is true".into(),
            })
    };
    let mut tls = TlsConfig::new(required("ssl_cert_path")?, required("ssl_key_path")?);
    if let Some(ca) = src.get("ssl_ca_path", parse_path)? {
        tls = tls.ca_path(ca);
    }
    if let Some(passphrase) = src.get("ssl_key_passphrase", parse_secret)? {
        tls = tls.key_passphrase(passphrase.expose().to_owned());
    }
    let client_auth = src
        .get("ssl_client_auth", |v| {
            ClientAuth::from_str(v).map_err(|e| e.to_string())
        })?
        .unwrap_or_default();
    Ok(Some(tls.client_auth(client_auth)))
}

fn read_file(path: PathBuf) -> Result<FileValues, ConfigError> {
    let fail = |path: &PathBuf, reason: String| ConfigError::File {
        path: path.clone(),
        reason,
    };
    let text = std::fs::read_to_string(&path).map_err(|e| fail(&path, e.to_string()))?;
    let table: toml::Table = text
        .parse()
        .map_err(|e: toml::de::Error| fail(&path, e.to_string()))?;
    let mut values = HashMap::new();
    let mut namespaces = BTreeMap::new();
    for (key, value) in table {
        if key == "namespaces" {
            namespaces = super::namespaces::from_toml(value).map_err(|e| fail(&path, e))?;
            continue;
        }
        let Some(s) = SETTINGS.iter().find(|s| s.key == key) else {
            return Err(fail(
                &path,
                format!("unknown setting `{key}` (the keys are listed in `switchboard --help`)"),
            ));
        };
        let text = match value {
            toml::Value::String(s) => s,
            toml::Value::Integer(i) => i.to_string(),
            toml::Value::Boolean(b) => b.to_string(),
            toml::Value::Array(items) => items
                .into_iter()
                .map(|item| match item {
                    toml::Value::String(s) => Ok(s),
                    other => Err(fail(
                        &path,
                        format!("`{key}`: expected strings, found a {}", other.type_str()),
                    )),
                })
                .collect::<Result<Vec<_>, _>>()?
                .join(","),
            other => {
                return Err(fail(
                    &path,
                    format!(
                        "`{key}`: expected a string, an integer, a boolean or an array of strings, found a {}",
                        other.type_str()
                    ),
                ));
            }
        };
        values.insert(s.key, text);
    }
    Ok(FileValues {
        path,
        values,
        namespaces,
    })
}

fn parse_number<T>(v: &str) -> Result<T, String>
where
    T: FromStr + num_bounds::Bounded,
{
    v.parse().map_err(|_| {
        format!(
            "{v:?} is not a whole number from {} to {}",
            T::MIN_TEXT,
            T::MAX_TEXT
        )
    })
}

/// The bounds of the integer types settings use, for error messages.
mod num_bounds {
    pub(super) trait Bounded {
        const MIN_TEXT: &'static str;
        const MAX_TEXT: &'static str;
    }
    impl Bounded for u16 {
        const MIN_TEXT: &'static str = "0";
        const MAX_TEXT: &'static str = "65535";
    }
    impl Bounded for u32 {
        const MIN_TEXT: &'static str = "0";
        const MAX_TEXT: &'static str = "4294967295";
    }
    impl Bounded for u64 {
        const MIN_TEXT: &'static str = "0";
        const MAX_TEXT: &'static str = "18446744073709551615";
    }
    impl Bounded for usize {
        const MIN_TEXT: &'static str = "0";
        const MAX_TEXT: &'static str = "18446744073709551615";
    }
}

/// A duration in milliseconds, or with a unit (`250ms`, `30s`, `5m`, `1h`, `500us`).
fn parse_ms(v: &str) -> Result<Duration, String> {
    parse_duration(v, Duration::from_millis, "milliseconds")
}

/// A duration in microseconds, or with a unit (`500us`, `2ms`, `1s`).
fn parse_us(v: &str) -> Result<Duration, String> {
    parse_duration(v, Duration::from_micros, "microseconds")
}

/// A whole number with a unit (`us`/`µs`, `ms`, `s`, `m`, `h`), or a bare whole number in
/// the setting's own unit (`bare`, named `bare_unit` in errors).
fn parse_duration(v: &str, bare: fn(u64) -> Duration, bare_unit: &str) -> Result<Duration, String> {
    let digits = v.find(|c: char| !c.is_ascii_digit()).unwrap_or(v.len());
    let (number, unit) = v.split_at(digits);
    let invalid = || {
        format!(
            "{v:?} is not a duration: a whole number of {bare_unit}, or a whole number with a \
             unit (us, ms, s, m, h), e.g. 250ms, 30s, 5m"
        )
    };
    let n: u64 = number.parse().map_err(|_| invalid())?;
    let seconds = |factor: u64| {
        n.checked_mul(factor)
            .map(Duration::from_secs)
            .ok_or_else(|| format!("{v:?} is too long a duration"))
    };
    match unit.trim_start() {
        "" => Ok(bare(n)),
        "us" | "µs" => Ok(Duration::from_micros(n)),
        "ms" => Ok(Duration::from_millis(n)),
        "s" => seconds(1),
        "m" => seconds(60),
        "h" => seconds(3600),
        _ => Err(invalid()),
    }
}

fn parse_non_zero_usize(v: &str) -> Result<NonZeroUsize, String> {
    NonZeroUsize::new(parse_number::<usize>(v)?).ok_or_else(|| "must be at least 1".to_owned())
}

fn parse_non_zero_u32(v: &str) -> Result<NonZeroU32, String> {
    NonZeroU32::new(parse_number::<u32>(v)?).ok_or_else(|| "must be at least 1".to_owned())
}

/// A connection cap: 0 is unlimited.
fn parse_cap(v: &str) -> Result<Option<NonZeroU32>, String> {
    parse_number::<u32>(v).map(NonZeroU32::new)
}

fn parse_bool(v: &str) -> Result<bool, String> {
    match v.to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" | "on" => Ok(true),
        "false" | "0" | "no" | "off" => Ok(false),
        _ => Err(format!(
            "{v:?} is not a boolean: expected true or false (or 1/0, yes/no, on/off)"
        )),
    }
}

fn parse_path(v: &str) -> Result<PathBuf, String> {
    Ok(PathBuf::from(v))
}

fn parse_secret(v: &str) -> Result<Secret, String> {
    Ok(Secret::new(v))
}

fn parse_list(v: &str) -> Vec<String> {
    v.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

fn parse_patterns(v: &str) -> Result<Vec<String>, String> {
    let patterns = parse_list(v);
    if patterns.is_empty() {
        return Err("expected at least one channel pattern (`*` is every channel)".into());
    }
    Ok(patterns)
}

fn parse_claim(v: &str) -> Result<String, String> {
    let v = v.trim();
    if v.is_empty() {
        return Err("expected a non-empty value".into());
    }
    Ok(v.to_owned())
}

fn parse_origins(v: &str) -> Result<Vec<String>, String> {
    let origins = parse_list(v);
    for origin in &origins {
        let valid = origin == "*"
            || ((origin.starts_with("http://") || origin.starts_with("https://"))
                && !origin.trim_end_matches('/').ends_with(':'));
        if !valid {
            return Err(format!(
                "{origin:?} is not an origin: expected scheme://host[:port] (e.g. https://app.example.com) or *"
            ));
        }
    }
    Ok(origins
        .into_iter()
        .map(|o| o.trim_end_matches('/').to_owned())
        .collect())
}

fn parse_host(v: &str) -> Result<String, String> {
    let bare = v.trim_start_matches('[').trim_end_matches(']');
    if bare.parse::<std::net::IpAddr>().is_ok() {
        return Ok(bare.to_owned());
    }
    let hostname = !v.is_empty()
        && v.len() <= 253
        && v.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        });
    if hostname {
        Ok(v.to_owned())
    } else {
        Err(format!("{v:?} is neither an IP address nor a host name"))
    }
}

fn parse_redis_host(v: &str) -> Result<String, String> {
    let host = parse_host(v)?;
    Ok(if host.contains(':') {
        format!("[{host}]")
    } else {
        host
    })
}

fn parse_redis_url(v: &str) -> Result<Secret, String> {
    let scheme = v.split_once("://").map(|(scheme, _)| scheme);
    match scheme {
        Some("redis") => Ok(Secret::new(v)),
        Some("rediss") if cfg!(feature = "redis-tls") => Ok(Secret::new(v)),
        Some("rediss") => {
            Err("rediss:// needs the server built with the `redis-tls` feature".to_owned())
        }
        _ => Err("expected a redis:// URL (redis://[:password@]host[:port][/db])".to_owned()),
    }
}

/// Percent-encodes a password for a URL's user-info.
fn percent_encode(s: &str) -> String {
    use std::fmt::Write as _;
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The help with its line wrapping undone.
    fn one_line(help: &str) -> String {
        help.split_whitespace().collect::<Vec<_>>().join(" ")
    }

    #[test]
    fn every_default_in_the_help_loads_as_the_default() {
        let defaults = ServerConfig::default();
        let expected = format!("{defaults:?}");
        let help = one_line(&ServerConfig::help());
        let mut shown = 0;
        for s in SETTINGS {
            if let Some(render) = s.default {
                let default = render(&defaults);
                let env = |name: &str| (name == s.env[0]).then(|| default.clone());
                let loaded = load(["switchboard"], &env);
                let loaded = loaded.unwrap_or_else(|e| panic!("{}={default:?}: {e}", s.env[0]));
                // Giving the default explicitly changes nothing: `--help` shows the value
                // the server uses.
                assert_eq!(format!("{loaded:?}"), expected, "{}={default:?}", s.env[0]);
                assert!(help.contains(&format!("[default: {default}]")), "{}", s.key);
                shown += 1;
            }
        }
        assert!(shown > 30, "only {shown} settings have a default");
    }

    #[test]
    fn the_defaults_are_the_composed_crates_own() {
        let d = ServerConfig::default();
        let transport = switchboard_transport::TransportConfig::default();
        let memory = switchboard_backplane::MemoryBackplaneConfig::default();
        let redis = switchboard_backplane::RedisBackplaneConfig::default();
        let help = one_line(&ServerConfig::help());
        let shows = |env: &str, value: String| {
            let (_, after) = help
                .split_once(&format!("[env: {ENV_PREFIX}{env},"))
                .unwrap_or_else(|| panic!("no help for {env}"));
            let (_, default) = after.split_once("[default: ").expect("a default");
            let default = &default[..default.find(']').expect("a closing bracket")];
            assert_eq!(default, value, "{env}");
        };
        shows("HEARTBEAT_MS", transport.heartbeat.as_millis().to_string());
        shows(
            "IDLE_TIMEOUT_MS",
            transport.idle_timeout.as_millis().to_string(),
        );
        shows(
            "OUTBOUND_QUEUE_FRAMES",
            transport.outbound_capacity.to_string(),
        );
        shows("HISTORY_SIZE", memory.history_size.to_string());
        shows(
            "PRESENCE_TTL_MS",
            memory.presence_ttl.as_millis().to_string(),
        );
        shows(
            "REDIS_TIMEOUT_MS",
            redis.command_timeout.as_millis().to_string(),
        );
        shows(
            "RATE_LIMIT_MAX_MESSAGES",
            transport.rate_limit.capacity().to_string(),
        );
        assert_eq!(d.max_connections_per_ip, transport.max_connections_per_ip);
        assert_eq!(d.history_max_bytes, memory.history_max_bytes);
        assert_eq!(d.history_max_channel_bytes, redis.history_max_channel_bytes);
    }

    #[test]
    fn durations_take_a_unit_or_are_in_the_settings_own() {
        let ms = |v: &str| parse_ms(v);
        assert_eq!(ms("1500"), Ok(Duration::from_millis(1500)));
        assert_eq!(ms("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(ms("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(ms("5m"), Ok(Duration::from_secs(300)));
        assert_eq!(ms("1h"), Ok(Duration::from_secs(3600)));
        assert_eq!(ms("0s"), Ok(Duration::ZERO));
        assert_eq!(ms("750us"), Ok(Duration::from_micros(750)));
        assert_eq!(ms("10 s"), Ok(Duration::from_secs(10)));
        assert_eq!(parse_us("500"), Ok(Duration::from_micros(500)));
        assert_eq!(parse_us("2ms"), Ok(Duration::from_millis(2)));
        for bad in ["", "s", "1.5s", "-1s", "10d", "5 minutes", "ms250"] {
            assert!(ms(bad).is_err(), "{bad:?} should be refused");
        }
        assert!(
            ms("18446744073709551615h")
                .unwrap_err()
                .contains("too long")
        );
    }

    #[test]
    fn every_setting_is_read_with_the_prefix_first() {
        let env = |name: &str| match name {
            "SWITCHBOARD_PORT" => Some("7001".to_owned()),
            "PORT" => Some("7002".to_owned()),
            "SWITCHBOARD_HEARTBEAT_MS" => Some("15s".to_owned()),
            _ => None,
        };
        let config = load(["switchboard"], &env).unwrap();
        assert_eq!(config.port, 7001);
        assert_eq!(config.heartbeat, Duration::from_secs(15));
        let plain = |name: &str| (name == "PORT").then(|| "7002".to_owned());
        assert_eq!(load(["switchboard"], &plain).unwrap().port, 7002);
        // Errors name the variable that was read.
        let bad = |name: &str| (name == "SWITCHBOARD_PORT").then(|| "http".to_owned());
        let err = load(["switchboard"], &bad).unwrap_err().to_string();
        assert!(err.contains("SWITCHBOARD_PORT"), "{err}");
    }

    #[test]
    fn a_kubernetes_service_link_in_redis_port_is_ignored_with_a_warning() {
        let env = |name: &str| match name {
            "REDIS_HOST" => Some("redis".to_owned()),
            "REDIS_PORT" => Some("tcp://10.0.0.7:6379".to_owned()),
            _ => None,
        };
        let config = load(["switchboard"], &env).unwrap();
        assert_eq!(
            config.redis_url.as_ref().map(Secret::expose),
            Some("redis://redis:6379")
        );
        assert_eq!(config.warnings.len(), 1, "{:?}", config.warnings);
        assert!(config.warnings[0].contains("REDIS_PORT"));
        // The prefixed name wins, and a real port is used.
        let env = |name: &str| match name {
            "REDIS_HOST" => Some("redis".to_owned()),
            "REDIS_PORT" => Some("tcp://10.0.0.7:6379".to_owned()),
            "SWITCHBOARD_REDIS_PORT" => Some("6380".to_owned()),
            _ => None,
        };
        let config = load(["switchboard"], &env).unwrap();
        assert_eq!(
            config.redis_url.as_ref().map(Secret::expose),
            Some("redis://redis:6380")
        );
        assert!(config.warnings.is_empty(), "{:?}", config.warnings);
        // With REDIS_URL in charge the injected REDIS_PORT is never read: nothing to warn of.
        let env = |name: &str| match name {
            "REDIS_URL" => Some("redis://cache:6379".to_owned()),
            "REDIS_PORT" => Some("tcp://10.0.0.7:6379".to_owned()),
            _ => None,
        };
        let config = load(["switchboard"], &env).unwrap();
        assert!(config.warnings.is_empty(), "{:?}", config.warnings);
    }

    #[test]
    fn passwords_are_percent_encoded_in_the_url() {
        assert_eq!(percent_encode("p@ss:w/rd"), "p%40ss%3Aw%2Frd");
    }

    #[test]
    fn host_names_and_ip_addresses_are_hosts() {
        assert_eq!(parse_host("0.0.0.0").unwrap(), "0.0.0.0");
        assert_eq!(parse_host("[::1]").unwrap(), "::1");
        assert_eq!(parse_host("redis.internal").unwrap(), "redis.internal");
        assert!(parse_host("not a host").is_err());
        assert_eq!(parse_redis_host("::1").unwrap(), "[::1]");
    }
}
