//! Every metric switchboard records: its storage, exported name and help, in exposition order.
//!
//! [`Values::visit`] is the one list of metrics; the OpenMetrics encoder and the JSON snapshot
//! both walk it, so they cannot drift apart.

use std::marker::PhantomData;
use std::sync::atomic::{AtomicI64, AtomicU64, AtomicUsize, Ordering::Relaxed};

use switchboard_types::{ErrorCode, Priority};

use crate::histogram::{HistogramReading, LatencyHistogram};
use crate::labels::{
    AuthFailure, BackplaneState, CapKind, DegradedReason, DisconnectReason, Label, RecoveryResult,
    RefreshResult, ServerCommand, WebhookResult,
};

/// One counter per value of a bounded label, resolved at construction: recording is an index
/// and an atomic add, with no lookup and no lock.
#[derive(Debug)]
pub(crate) struct LabelledCounters<L> {
    counts: Box<[AtomicU64]>,
    label: PhantomData<fn() -> L>,
}

impl<L: Label> Default for LabelledCounters<L> {
    fn default() -> Self {
        Self {
            counts: L::VALUES.iter().map(|_| AtomicU64::new(0)).collect(),
            label: PhantomData,
        }
    }
}

impl<L: Label> LabelledCounters<L> {
    #[inline]
    pub(crate) fn inc(&self, label: L) {
        self.add(label, 1);
    }

    #[inline]
    pub(crate) fn add(&self, label: L, n: u64) {
        self.counts[label.index()].fetch_add(n, Relaxed);
    }

    pub(crate) fn get(&self, label: L) -> u64 {
        self.counts[label.index()].load(Relaxed)
    }
}

/// The current value of a bounded label, exported as one gauge per value (1 for the current,
/// 0 for the others). One atomic word, so a scrape never sees two states at once.
#[derive(Debug)]
pub(crate) struct StateCell<L> {
    index: AtomicUsize,
    label: PhantomData<fn() -> L>,
}

impl<L: Label> Default for StateCell<L> {
    fn default() -> Self {
        Self {
            index: AtomicUsize::new(0),
            label: PhantomData,
        }
    }
}

impl<L: Label> StateCell<L> {
    #[inline]
    pub(crate) fn set(&self, label: L) {
        self.index.store(label.index(), Relaxed);
    }

    pub(crate) fn get(&self) -> L {
        L::VALUES[self.index.load(Relaxed)]
    }
}

/// What walks the catalogue: the OpenMetrics encoder or the snapshot. Counter names are the
/// exported ones, `_total` included.
pub(crate) trait Visitor {
    type Error;

    fn counter(&mut self, name: &'static str, help: &str, value: u64) -> Result<(), Self::Error>;

    fn gauge(&mut self, name: &'static str, help: &str, value: i64) -> Result<(), Self::Error>;

    fn labelled_counter<L: Label>(
        &mut self,
        name: &'static str,
        help: &str,
        counters: &LabelledCounters<L>,
    ) -> Result<(), Self::Error>;

    fn state_gauge<L: Label>(
        &mut self,
        name: &'static str,
        help: &str,
        current: L,
    ) -> Result<(), Self::Error>;

    fn histogram(
        &mut self,
        name: &'static str,
        help: &str,
        reading: &HistogramReading,
    ) -> Result<(), Self::Error>;
}

/// The atomics behind a [`Metrics`](crate::Metrics) handle.
#[derive(Debug, Default)]
pub(crate) struct Values {
    pub(crate) connections_active: AtomicI64,
    pub(crate) connections_opened: AtomicU64,
    pub(crate) disconnections: AtomicU64,
    pub(crate) messages_sent: AtomicU64,
    pub(crate) messages_received: AtomicU64,
    pub(crate) message_latency: LatencyHistogram,
    pub(crate) errors: LabelledCounters<ErrorCode>,
    pub(crate) active_sessions: AtomicI64,
    pub(crate) disconnections_by_reason: LabelledCounters<DisconnectReason>,
    pub(crate) rate_limited: AtomicU64,
    pub(crate) auth_failures: LabelledCounters<AuthFailure>,
    pub(crate) cap_rejections: LabelledCounters<CapKind>,
    pub(crate) backplane_state: StateCell<BackplaneState>,
    pub(crate) backplane_degradations: LabelledCounters<DegradedReason>,
    pub(crate) backplane_published: AtomicU64,
    pub(crate) backplane_received: AtomicU64,
    pub(crate) backplane_lag: LatencyHistogram,
    pub(crate) evictions: LabelledCounters<Priority>,
    pub(crate) outbound_queue_depth: AtomicI64,
    pub(crate) presence_members: AtomicI64,
    pub(crate) recoveries: LabelledCounters<RecoveryResult>,
    pub(crate) client_reconnects: AtomicU64,
    pub(crate) token_refreshes: LabelledCounters<RefreshResult>,
    pub(crate) server_commands: LabelledCounters<ServerCommand>,
    pub(crate) webhook_events: LabelledCounters<WebhookResult>,
    pub(crate) webhook_queue_depth: AtomicI64,
    pub(crate) frame_handling: LatencyHistogram,
}

impl Values {
    /// Walks every metric in exposition order: the seeds' eight first, then the rest.
    pub(crate) fn visit<V: Visitor>(&self, v: &mut V) -> Result<(), V::Error> {
        v.gauge(
            "websocket_connections_total",
            "Active WebSocket connections (a gauge; the name is the seeds').",
            self.connections_active.load(Relaxed),
        )?;
        v.counter(
            "websocket_connections_count_total",
            "WebSocket connections opened.",
            self.connections_opened.load(Relaxed),
        )?;
        v.counter(
            "websocket_disconnections_total",
            "WebSocket connections closed.",
            self.disconnections.load(Relaxed),
        )?;
        v.counter(
            "websocket_messages_sent_total",
            "Messages sent to clients.",
            self.messages_sent.load(Relaxed),
        )?;
        v.counter(
            "websocket_messages_received_total",
            "Messages received from clients.",
            self.messages_received.load(Relaxed),
        )?;
        v.histogram(
            "websocket_message_latency_ms",
            "Message latency in milliseconds, from publish to written to the sockets of this instance's subscribers.",
            &self.message_latency.read(),
        )?;
        v.labelled_counter(
            "websocket_errors_total",
            "Error frames sent to clients, by error code.",
            &self.errors,
        )?;
        v.gauge(
            "websocket_active_sessions",
            "WebSocket sessions running, anonymous ones included: the same count as websocket_connections_total.",
            self.active_sessions.load(Relaxed),
        )?;
        v.labelled_counter(
            "websocket_disconnections_by_reason_total",
            "WebSocket connections closed, by reason.",
            &self.disconnections_by_reason,
        )?;
        v.counter(
            "websocket_rate_limited_messages_total",
            "Client messages rejected by the rate limit.",
            self.rate_limited.load(Relaxed),
        )?;
        v.labelled_counter(
            "websocket_auth_failures_total",
            "Failed authentications, by reason.",
            &self.auth_failures,
        )?;
        v.labelled_counter(
            "websocket_connection_cap_rejections_total",
            "Connections refused by a connection cap, by cap.",
            &self.cap_rejections,
        )?;
        v.state_gauge(
            "websocket_backplane_state",
            "Backplane state: 1 for the current state, 0 for the others.",
            self.backplane_state.get(),
        )?;
        v.labelled_counter(
            "websocket_backplane_degradations_total",
            "Times the backplane became degraded, by reason.",
            &self.backplane_degradations,
        )?;
        v.counter(
            "websocket_backplane_published_total",
            "Messages published to the backplane.",
            self.backplane_published.load(Relaxed),
        )?;
        v.counter(
            "websocket_backplane_received_total",
            "Messages received from the backplane.",
            self.backplane_received.load(Relaxed),
        )?;
        v.histogram(
            "websocket_backplane_lag_ms",
            "Backplane lag in milliseconds, from publish to receipt by this instance.",
            &self.backplane_lag.read(),
        )?;
        v.labelled_counter(
            "websocket_outbound_evictions_total",
            "Queued outbound messages evicted to make room, by priority.",
            &self.evictions,
        )?;
        v.gauge(
            "websocket_outbound_queue_depth",
            "Messages waiting in outbound queues, over all connections.",
            self.outbound_queue_depth.load(Relaxed),
        )?;
        v.gauge(
            "websocket_presence_members",
            "Presence members, counted once per channel they are present in.",
            self.presence_members.load(Relaxed),
        )?;
        v.labelled_counter(
            "websocket_recoveries_total",
            "Recoveries from history, by result.",
            &self.recoveries,
        )?;
        v.counter(
            "websocket_client_reconnects_total",
            "Connections that resumed after a previous connection of the same client.",
            self.client_reconnects.load(Relaxed),
        )?;
        v.labelled_counter(
            "websocket_token_refreshes_total",
            "Token refreshes on open connections, by result.",
            &self.token_refreshes,
        )?;
        v.labelled_counter(
            "websocket_server_commands_total",
            "Orders of the server API carried to connections of this instance, by action.",
            &self.server_commands,
        )?;
        v.labelled_counter(
            "websocket_webhook_events_total",
            "Webhook events, by what became of them.",
            &self.webhook_events,
        )?;
        v.gauge(
            "websocket_webhook_queue_depth",
            "Webhook events waiting to be delivered (ready, in flight or waiting for a retry).",
            self.webhook_queue_depth.load(Relaxed),
        )?;
        v.histogram(
            "websocket_frame_handling_ms",
            "Time from reading a client frame to having handled it (its answer queued), in milliseconds.",
            &self.frame_handling.read(),
        )
    }
}
