//! The state every part of the hub shares: what a [`Hub`](crate::Hub) handle, each
//! [`Connection`](crate::Connection) and the fan-out point to.

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::AtomicUsize;

use parking_lot::Mutex;
use switchboard_metrics::Metrics;
use tokio::sync::{broadcast, watch};

use crate::authorizer::Authorizer;
use crate::config::HubConfig;
use crate::ids::IdGenerator;
use crate::lifecycle::HubEvent;
use crate::redact::Redactor;
use crate::registry::Registry;

pub(crate) struct HubInner<B> {
    pub(crate) backplane: B,
    pub(crate) registry: Registry,
    pub(crate) authorizer: Box<dyn Authorizer>,
    pub(crate) redactor: Redactor,
    pub(crate) config: HubConfig,
    pub(crate) ids: IdGenerator,
    pub(crate) events: broadcast::Sender<HubEvent>,
    /// (channel, connection id) of every local presence member, refreshed periodically.
    pub(crate) members: Mutex<HashSet<(Arc<str>, Arc<str>)>>,
    pub(crate) connections: AtomicUsize,
    /// Each signed-in user's local connections, for the cluster-wide user operations.
    pub(crate) users: crate::users::Users,
    /// What each configured namespace allows.
    pub(crate) policies: crate::namespace::Policies,
    pub(crate) metrics: Metrics,
    pub(crate) next_conn: std::sync::atomic::AtomicU64,
    /// Dropped with the hub: background tasks watch it and stop.
    pub(crate) _alive: watch::Sender<()>,
}

pub(crate) use switchboard_protocol::now_ms;
