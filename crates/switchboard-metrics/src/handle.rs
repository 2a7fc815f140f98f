//! The [`Metrics`] handle every crate records into, and its builder.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;

use prometheus_client::registry::Registry;
use switchboard_types::{ErrorCode, Priority};

use crate::catalogue::Values;
use crate::error::MetricsError;
use crate::exposition::Exposition;
use crate::labels::{
    AuthFailure, BackplaneState, CapKind, DegradedReason, DisconnectReason, RecoveryResult,
    RefreshResult, ServerCommand, WebhookResult,
};
use crate::snapshot::MetricsSnapshot;

/// A cheap, cloneable handle to switchboard's metrics.
///
/// Clones share the same metrics. Every recording method is one or two relaxed atomic
/// operations on memory allocated at construction: no lock, no allocation, no label lookup. A
/// [`Metrics::noop`] handle records nothing and costs one branch per call.
///
/// Gauges move by the calls the owner pairs: `connection_opened` with `connection_closed`,
/// `session_started` with `session_ended`, `outbound_enqueued` with `outbound_dequeued`,
/// `presence_joined` with `presence_left`.
#[derive(Clone)]
pub struct Metrics(Option<Shared>);

#[derive(Clone)]
struct Shared {
    values: Arc<Values>,
    registry: Arc<Registry>,
    /// The name prefix, applied again wherever the metrics are registered.
    prefix: Option<Arc<str>>,
}

impl Metrics {
    /// A handle with every switchboard metric registered under its seed name, in a registry
    /// of its own.
    #[must_use]
    pub fn new() -> Self {
        Self::with_registry(Registry::default(), None)
    }

    /// A handle that records nothing: every recording method returns at once,
    /// [`encode_openmetrics`](Self::encode_openmetrics) yields only `# EOF` and
    /// [`snapshot`](Self::snapshot) empty maps.
    #[must_use]
    pub const fn noop() -> Self {
        Self(None)
    }

    /// A builder for a handle with a name prefix or the application's own registry.
    pub fn builder() -> MetricsBuilder {
        MetricsBuilder::default()
    }

    fn with_registry(mut registry: Registry, prefix: Option<&str>) -> Self {
        let values = Arc::new(Values::default());
        register(&mut registry, &values, prefix);
        Self(Some(Shared {
            values,
            registry: Arc::new(registry),
            prefix: prefix.map(Arc::from),
        }))
    }

    /// Exports switchboard's metrics through `registry` as well: a registry the host owns
    /// and encodes itself, holding its own metrics already. Names carry this handle's
    /// [prefix](MetricsBuilder::prefix), if any. Both registries read the same values, so
    /// this handle's [`encode_openmetrics`](Self::encode_openmetrics) is unchanged. A
    /// [`Metrics::noop`] handle registers nothing.
    ///
    /// Register once per registry: prometheus-client does not detect a second registration,
    /// and the exposition would name every metric twice.
    ///
    /// ```
    /// use switchboard_metrics::Metrics;
    /// use switchboard_metrics::prometheus_client::encoding::text::encode;
    /// use switchboard_metrics::prometheus_client::{metrics::counter::Counter, registry::Registry};
    ///
    /// // The host's registry, built and served by the host.
    /// let mut registry = Registry::default();
    /// let orders: Counter = Counter::default();
    /// registry.register("shop_orders", "Orders placed", orders.clone());
    ///
    /// let metrics = Metrics::new();
    /// metrics.register_in(&mut registry);
    /// metrics.rate_limited();
    /// orders.inc();
    ///
    /// let mut text = String::new();
    /// encode(&mut text, &registry).unwrap();
    /// assert!(text.contains("\nshop_orders_total 1\n"));
    /// assert!(text.contains("\nwebsocket_rate_limited_messages_total 1\n"));
    /// ```
    pub fn register_in(&self, registry: &mut Registry) {
        if let Some(shared) = &self.0 {
            register(registry, &shared.values, shared.prefix.as_deref());
        }
    }

    /// Whether this handle records, i.e. it is not [`Metrics::noop`]. Lets a caller skip work
    /// done only for metrics, such as reading a clock.
    #[must_use]
    pub const fn is_enabled(&self) -> bool {
        self.0.is_some()
    }

    #[inline]
    fn values(&self) -> Option<&Values> {
        self.0.as_ref().map(|shared| &*shared.values)
    }

    /// A WebSocket connection was accepted: `websocket_connections_total` (active) goes up,
    /// `websocket_connections_count_total` counts it.
    #[inline]
    pub fn connection_opened(&self) {
        if let Some(v) = self.values() {
            v.connections_active.fetch_add(1, Relaxed);
            v.connections_opened.fetch_add(1, Relaxed);
        }
    }

    /// A connection counted by [`connection_opened`](Self::connection_opened) ended:
    /// `websocket_connections_total` goes down, `websocket_disconnections_total` and
    /// `websocket_disconnections_by_reason_total{reason}` count it. Slow-consumer disconnects
    /// are the `reason="slow_consumer"` series.
    #[inline]
    pub fn connection_closed(&self, reason: DisconnectReason) {
        if let Some(v) = self.values() {
            v.connections_active.fetch_sub(1, Relaxed);
            v.disconnections.fetch_add(1, Relaxed);
            v.disconnections_by_reason.inc(reason);
        }
    }

    /// A session began: its upgrade was accepted (authenticated, or anonymous in open mode)
    /// and its `welcome` queued (`websocket_active_sessions` up). The transport records it
    /// together with [`connection_opened`](Self::connection_opened), so that gauge and
    /// `websocket_connections_total` are equal.
    #[inline]
    pub fn session_started(&self) {
        if let Some(v) = self.values() {
            v.active_sessions.fetch_add(1, Relaxed);
        }
    }

    /// A session counted by [`session_started`](Self::session_started) ended
    /// (`websocket_active_sessions` down).
    #[inline]
    pub fn session_ended(&self) {
        if let Some(v) = self.values() {
            v.active_sessions.fetch_sub(1, Relaxed);
        }
    }

    /// A message arrived from a client (`websocket_messages_received_total`).
    #[inline]
    pub fn message_received(&self) {
        if let Some(v) = self.values() {
            v.messages_received.fetch_add(1, Relaxed);
        }
    }

    /// `n` messages were written to clients (`websocket_messages_sent_total`).
    #[inline]
    pub fn messages_sent(&self, n: u64) {
        if let Some(v) = self.values() {
            v.messages_sent.fetch_add(n, Relaxed);
        }
    }

    /// Records one message latency in `websocket_message_latency_ms`: from the moment a
    /// message was published to the moment this instance's fan-out has written it to its
    /// subscribers' sockets (one observation per message per instance).
    #[inline]
    pub fn observe_latency(&self, latency: Duration) {
        if let Some(v) = self.values() {
            v.message_latency.observe(latency);
        }
    }

    /// Records how long one client frame took to handle, from reading it to having its
    /// answer queued, in `websocket_frame_handling_ms`.
    #[inline]
    pub fn observe_handling(&self, took: Duration) {
        if let Some(v) = self.values() {
            v.frame_handling.observe(took);
        }
    }

    /// An error frame with this code was sent (`websocket_errors_total{code}`).
    #[inline]
    pub fn error(&self, code: ErrorCode) {
        if let Some(v) = self.values() {
            v.errors.inc(code);
        }
    }

    /// A client message was rejected by the rate limit
    /// (`websocket_rate_limited_messages_total`).
    #[inline]
    pub fn rate_limited(&self) {
        if let Some(v) = self.values() {
            v.rate_limited.fetch_add(1, Relaxed);
        }
    }

    /// An authentication failed (`websocket_auth_failures_total{reason}`).
    #[inline]
    pub fn auth_failure(&self, reason: AuthFailure) {
        if let Some(v) = self.values() {
            v.auth_failures.inc(reason);
        }
    }

    /// A connection was refused by a cap (`websocket_connection_cap_rejections_total{cap}`).
    #[inline]
    pub fn cap_rejected(&self, cap: CapKind) {
        if let Some(v) = self.values() {
            v.cap_rejections.inc(cap);
        }
    }

    /// The backplane is now in `state` (`websocket_backplane_state{state}`).
    #[inline]
    pub fn backplane_state(&self, state: BackplaneState) {
        if let Some(v) = self.values() {
            v.backplane_state.set(state);
        }
    }

    /// The backplane became degraded for `reason`: counts it in
    /// `websocket_backplane_degradations_total{reason}` and sets the state to
    /// [`BackplaneState::Degraded`].
    #[inline]
    pub fn backplane_degraded(&self, reason: DegradedReason) {
        if let Some(v) = self.values() {
            v.backplane_degradations.inc(reason);
            v.backplane_state.set(BackplaneState::Degraded);
        }
    }

    /// A message was published to the backplane (`websocket_backplane_published_total`).
    #[inline]
    pub fn backplane_published(&self) {
        if let Some(v) = self.values() {
            v.backplane_published.fetch_add(1, Relaxed);
        }
    }

    /// A message was received from the backplane (`websocket_backplane_received_total`).
    #[inline]
    pub fn backplane_received(&self) {
        if let Some(v) = self.values() {
            v.backplane_received.fetch_add(1, Relaxed);
        }
    }

    /// Records how long a message took from its publish to its receipt by this instance
    /// (`websocket_backplane_lag_ms`).
    #[inline]
    pub fn backplane_lag(&self, lag: Duration) {
        if let Some(v) = self.values() {
            v.backplane_lag.observe(lag);
        }
    }

    /// A queued outbound message of this priority was evicted to make room
    /// (`websocket_outbound_evictions_total{priority}`). The depth gauge is not touched:
    /// report the removal with [`outbound_dequeued`](Self::outbound_dequeued).
    #[inline]
    pub fn evicted(&self, priority: Priority) {
        if let Some(v) = self.values() {
            v.evictions.inc(priority);
        }
    }

    /// `n` messages entered an outbound queue (`websocket_outbound_queue_depth` up).
    #[inline]
    pub fn outbound_enqueued(&self, n: usize) {
        if let Some(v) = self.values() {
            v.outbound_queue_depth.fetch_add(saturating_i64(n), Relaxed);
        }
    }

    /// `n` messages left an outbound queue: written, evicted, or dropped with their
    /// connection (`websocket_outbound_queue_depth` down).
    #[inline]
    pub fn outbound_dequeued(&self, n: usize) {
        if let Some(v) = self.values() {
            v.outbound_queue_depth.fetch_sub(saturating_i64(n), Relaxed);
        }
    }

    /// A member joined a channel's presence (`websocket_presence_members` up).
    #[inline]
    pub fn presence_joined(&self) {
        if let Some(v) = self.values() {
            v.presence_members.fetch_add(1, Relaxed);
        }
    }

    /// A member left a channel's presence (`websocket_presence_members` down).
    #[inline]
    pub fn presence_left(&self) {
        if let Some(v) = self.values() {
            v.presence_members.fetch_sub(1, Relaxed);
        }
    }

    /// A subscription asked to recover from history; `recovered` is true only when every
    /// missed message was replayed (`websocket_recoveries_total{result}`).
    #[inline]
    pub fn recovery(&self, recovered: bool) {
        if let Some(v) = self.values() {
            v.recoveries.inc(if recovered {
                RecoveryResult::Recovered
            } else {
                RecoveryResult::NotRecovered
            });
        }
    }

    /// A connection asked to refresh its token; `refreshed` when it now runs on the new one
    /// (`websocket_token_refreshes_total{result}`).
    #[inline]
    pub fn token_refresh(&self, refreshed: bool) {
        if let Some(v) = self.values() {
            v.token_refreshes.inc(if refreshed {
                RefreshResult::Refreshed
            } else {
                RefreshResult::Refused
            });
        }
    }

    /// The server API ordered `connections` connections of this instance to `action`
    /// (`websocket_server_commands_total{action}`).
    #[inline]
    pub fn server_commands(&self, action: ServerCommand, connections: u64) {
        if let Some(v) = self.values() {
            v.server_commands.add(action, connections);
        }
    }

    /// `events` webhook events came to `result` (`websocket_webhook_events_total{result}`).
    #[inline]
    pub fn webhook_events(&self, result: WebhookResult, events: u64) {
        if let Some(v) = self.values() {
            v.webhook_events.add(result, events);
        }
    }

    /// How many webhook events wait to be delivered now (`websocket_webhook_queue_depth`).
    #[inline]
    pub fn webhook_queue_depth(&self, events: usize) {
        if let Some(v) = self.values() {
            v.webhook_queue_depth
                .store(i64::try_from(events).unwrap_or(i64::MAX), Relaxed);
        }
    }

    /// A connection resumed a previous connection of the same client
    /// (`websocket_client_reconnects_total`).
    #[inline]
    pub fn client_reconnect(&self) {
        if let Some(v) = self.values() {
            v.client_reconnects.fetch_add(1, Relaxed);
        }
    }

    /// The registry in OpenMetrics text, ending with `# EOF`: serve it with
    /// [`OPENMETRICS_CONTENT_TYPE`](crate::OPENMETRICS_CONTENT_TYPE).
    ///
    /// Metrics the application registered come first, then switchboard's in a fixed order.
    ///
    /// # Errors
    ///
    /// [`MetricsError::Encode`] when a metric the application registered fails to encode.
    pub fn encode_openmetrics(&self) -> Result<String, MetricsError> {
        let mut text = String::with_capacity(16 * 1024);
        match &self.0 {
            Some(shared) => prometheus_client::encoding::text::encode(&mut text, &shared.registry)
                .map_err(|_| MetricsError::Encode)?,
            None => text.push_str("# EOF\n"),
        }
        Ok(text)
    }

    /// Every switchboard metric at this moment, for the JSON `/metrics` route.
    #[must_use]
    pub fn snapshot(&self) -> MetricsSnapshot {
        let mut snapshot = MetricsSnapshot::default();
        if let Some(v) = self.values() {
            let Ok(()) = v.visit(&mut snapshot);
        }
        snapshot
    }
}

impl Default for Metrics {
    /// Same as [`Metrics::new`].
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for Metrics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Metrics")
            .field("enabled", &self.is_enabled())
            .finish_non_exhaustive()
    }
}

/// Registers a collector of `values` in `registry`, under `prefix` when given.
fn register(registry: &mut Registry, values: &Arc<Values>, prefix: Option<&str>) {
    let collector = Box::new(Exposition(Arc::clone(values)));
    match prefix {
        Some(prefix) => registry
            .sub_registry_with_prefix(prefix)
            .register_collector(collector),
        None => registry.register_collector(collector),
    }
}

fn saturating_i64(n: usize) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// Builds a [`Metrics`] handle with a name prefix, or into the application's own registry.
///
/// ```
/// use switchboard_metrics::Metrics;
/// use switchboard_metrics::prometheus_client::{metrics::counter::Counter, registry::Registry};
///
/// let mut registry = Registry::default();
/// let jobs: Counter = Counter::default();
/// registry.register("app_jobs", "Jobs the application ran", jobs.clone());
///
/// let metrics = Metrics::builder().prefix("edge").registry(registry).build().unwrap();
/// jobs.inc();
/// metrics.rate_limited();
///
/// let text = metrics.encode_openmetrics().unwrap();
/// assert!(text.contains("\napp_jobs_total 1\n"));
/// assert!(text.contains("\nedge_websocket_rate_limited_messages_total 1\n"));
/// ```
#[derive(Default)]
#[must_use]
pub struct MetricsBuilder {
    prefix: Option<String>,
    registry: Option<Registry>,
}

impl MetricsBuilder {
    /// Prefixes every switchboard metric name with `prefix` and `_`, e.g. `edge` exports
    /// `edge_websocket_connections_total`. Default: none, so names are the seeds'. The JSON
    /// snapshot keeps the unprefixed names.
    pub fn prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = Some(prefix.into());
        self
    }

    /// Registers switchboard's metrics into `registry`, which may already hold the
    /// application's metrics (register them before building: the handle owns the registry).
    /// Default: a fresh registry. To keep a registry of your own, use
    /// [`Metrics::register_in`] instead.
    pub fn registry(mut self, registry: Registry) -> Self {
        self.registry = Some(registry);
        self
    }

    /// Builds the handle.
    ///
    /// # Errors
    ///
    /// [`MetricsError::InvalidPrefix`] when the prefix is empty or has characters other than
    /// ASCII letters, digits and underscores, or starts with a digit.
    pub fn build(self) -> Result<Metrics, MetricsError> {
        if let Some(prefix) = &self.prefix
            && !is_valid_prefix(prefix)
        {
            return Err(MetricsError::InvalidPrefix(prefix.clone()));
        }
        Ok(Metrics::with_registry(
            self.registry.unwrap_or_default(),
            self.prefix.as_deref(),
        ))
    }
}

impl fmt::Debug for MetricsBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MetricsBuilder")
            .field("prefix", &self.prefix)
            .field(
                "registry",
                &self.registry.as_ref().map(|_| "[application registry]"),
            )
            .finish()
    }
}

fn is_valid_prefix(prefix: &str) -> bool {
    let mut chars = prefix.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}
