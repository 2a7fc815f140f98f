//! One user's connections, counted across instances
//! ([`TransportConfig::max_connections_per_user`](crate::TransportConfig::max_connections_per_user)):
//! each connection holds a backplane lease, renewed by one task per transport and given back
//! when the session ends.

use std::collections::HashMap;
use std::num::NonZeroU32;
use std::sync::{Arc, Weak};
use std::time::Duration;

use parking_lot::Mutex;
use switchboard_backplane::{Backplane, BackplaneError};
use switchboard_hub::Hub;

/// The leases a transport's sessions hold.
pub(crate) struct Leases<B: Backplane> {
    hub: Hub<B>,
    limit: NonZeroU32,
    ttl: Duration,
    /// Holder → key, for renewal.
    held: Mutex<HashMap<String, Arc<str>>>,
}

impl<B: Backplane> Leases<B> {
    /// Leases of at most `limit` per user, each lasting `ttl`, renewed every third of it by
    /// a task that ends with the transport.
    pub(crate) fn start(hub: Hub<B>, limit: NonZeroU32, ttl: Duration) -> Arc<Self> {
        let leases = Arc::new(Self {
            hub,
            limit,
            ttl,
            held: Mutex::new(HashMap::new()),
        });
        tokio::spawn(renew(Arc::downgrade(&leases), ttl));
        leases
    }

    /// A lease among `user`'s connections; `None` when the user holds its limit already.
    ///
    /// # Errors
    /// When the backplane cannot count.
    pub(crate) async fn acquire(
        self: &Arc<Self>,
        user: &str,
    ) -> Result<Option<LeaseGuard<B>>, BackplaneError> {
        let key: Arc<str> = format!("user:{user}").into();
        let holder = format!("{:016x}", rand::random::<u64>());
        let granted = self
            .hub
            .backplane()
            .lease_acquire(&key, &holder, self.limit.get(), self.ttl)
            .await?;
        if !granted {
            return Ok(None);
        }
        self.held.lock().insert(holder.clone(), Arc::clone(&key));
        Ok(Some(LeaseGuard {
            leases: Arc::clone(self),
            key,
            holder,
        }))
    }
}

/// Renews every held lease each third of `ttl`, until the transport is gone.
async fn renew<B: Backplane>(leases: Weak<Leases<B>>, ttl: Duration) {
    let mut every = tokio::time::interval((ttl / 3).max(Duration::from_millis(10)));
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    every.tick().await;
    loop {
        every.tick().await;
        let Some(leases) = leases.upgrade() else {
            return;
        };
        let held: Vec<(String, Arc<str>)> = leases
            .held
            .lock()
            .iter()
            .map(|(holder, key)| (holder.clone(), Arc::clone(key)))
            .collect();
        for (holder, key) in held {
            // A held lease renews whatever the count (`u32::MAX`): a connection is never
            // closed for the limit once admitted.
            if let Err(err) = leases
                .hub
                .backplane()
                .lease_acquire(&key, &holder, u32::MAX, leases.ttl)
                .await
            {
                tracing::warn!(%err, "could not renew a per-user connection lease");
            }
        }
    }
}

/// A session's lease: given back when dropped (the session ended, whatever the way).
pub(crate) struct LeaseGuard<B: Backplane> {
    leases: Arc<Leases<B>>,
    key: Arc<str>,
    holder: String,
}

impl<B: Backplane> Drop for LeaseGuard<B> {
    fn drop(&mut self) {
        self.leases.held.lock().remove(&self.holder);
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            // No runtime left to release it: the lease ends at its expiry.
            return;
        };
        let (leases, key, holder) = (
            Arc::clone(&self.leases),
            Arc::clone(&self.key),
            std::mem::take(&mut self.holder),
        );
        runtime.spawn(async move {
            if let Err(err) = leases.hub.backplane().lease_release(&key, &holder).await {
                tracing::debug!(%err, "a per-user connection lease will end at its expiry");
            }
        });
    }
}
