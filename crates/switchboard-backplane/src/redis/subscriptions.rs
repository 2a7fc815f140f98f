//! Subscribing and unsubscribing channels on Redis, with the races between the two settled.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use super::continuity::Sub;
use super::failure::Break;
use super::shared::{Shared, sub_entry};
use crate::error::{BackplaneError, Result};
use crate::types::{DegradedCause, ResetReason};

impl Shared {
    pub(super) async fn subscribe(&self, channel: &str) -> Result<()> {
        let (name, id, live) = {
            let mut st = self.state.lock();
            if st.events.is_none() || self.closed.load(Ordering::Acquire) {
                return Err(BackplaneError::Closed);
            }
            if let Some(sub) = st.subs.get_mut(channel) {
                sub.refs += 1;
                return Ok(());
            }
            let id = st.next_sub;
            st.next_sub += 1;
            let mut sub = Sub::new(id);
            let live = st.conn.clone();
            if live.is_some() {
                sub.begin_sync();
            } else {
                // Resubscribed after the reconnect; what was published meanwhile is unknown.
                sub.mark_reset(ResetReason::MessagesMissed);
            }
            let name: Arc<str> = channel.into();
            st.subs.insert(Arc::clone(&name), sub);
            (name, id, live)
        };
        let Some(live) = live else { return Ok(()) };
        if !self.pubsub_command(&live, &name, true).await {
            // Whether Redis holds the subscription is unknown: reconnect, which resubscribes
            // everything, and tell the subscribers continuity is not guaranteed.
            self.break_connection(
                live.generation,
                Break::new(DegradedCause::CommandFailed, "redis: SUBSCRIBE failed"),
            );
            if let Some(sub) = self.state.lock().subs.get_mut(&name) {
                sub.mark_reset(ResetReason::MessagesMissed);
            }
        }
        // An unsubscribe may have raced this call: make Redis match the final count.
        if !self.state.lock().subs.contains_key(&name) {
            self.pubsub_command(&live, &name, false).await;
        }
        // The baseline: messages after the current position are delivered.
        self.run_sync(name, id).await;
        Ok(())
    }

    pub(super) async fn unsubscribe(&self, channel: &str) -> Result<()> {
        self.check_open()?;
        let live = {
            let mut st = self.state.lock();
            let Some(sub) = st.subs.get_mut(channel) else {
                return Ok(());
            };
            sub.refs -= 1;
            if sub.refs > 0 {
                return Ok(());
            }
            st.subs.remove(channel);
            st.conn.clone()
        };
        let Some(live) = live else { return Ok(()) };
        // A failure leaves a stray Redis subscription, whose messages are dropped; the next
        // reconnect subscribes only what is wanted.
        self.pubsub_command(&live, channel, false).await;
        // A subscribe may have raced this call: make Redis match the final count, and fetch
        // whatever was published while Redis had it unsubscribed.
        let resubscribe = {
            let mut st = self.state.lock();
            sub_entry(&mut st.subs, channel)
                .map(|(name, sub)| (name, sub.begin_sync().then_some(sub.id)))
        };
        if let Some((name, owner)) = resubscribe {
            self.pubsub_command(&live, &name, true).await;
            if let Some(id) = owner {
                self.run_sync(name, id).await;
            }
        }
        Ok(())
    }
}
