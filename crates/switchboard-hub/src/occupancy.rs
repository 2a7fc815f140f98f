//! Which channels have subscribers anywhere in the cluster: `ChannelOccupied` when a
//! channel gets its first subscriber on any instance, `ChannelVacated` when the last one
//! anywhere leaves, each told by exactly one instance.
//!
//! Each instance is a member of a backplane group per channel it has local subscribers in
//! (renewed every third of the membership's lifetime); the backplane says which join made
//! a group non-empty and which leave emptied it, and reaps the groups of dead instances.

use std::collections::HashSet;
use std::sync::{Arc, Weak};
use std::time::Duration;

use switchboard_backplane::{Backplane, GroupJoin};
use switchboard_protocol::ChannelName;
use tokio::sync::{mpsc, watch};

use crate::lifecycle::HubEvent;
use crate::state::HubInner;

/// Follows this instance's channel changes (from the registry, in order) and renews its
/// memberships until the hub is gone.
pub(crate) async fn track<B: Backplane>(
    hub: Weak<HubInner<B>>,
    mut changes: mpsc::UnboundedReceiver<(Arc<str>, bool)>,
    ttl: Duration,
    mut alive: watch::Receiver<()>,
) {
    let mut held: HashSet<Arc<str>> = HashSet::new();
    // The first renewal a period from now: changes are followed from the start. (An
    // interval's immediate first tick still waits for the timer's next millisecond, and
    // until then a join here could come after another instance's leave.)
    let period = ttl / 3;
    let mut renew = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
    renew.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            change = changes.recv() => {
                let Some((channel, occupied)) = change else { return };
                let Some(hub) = hub.upgrade() else { return };
                if occupied {
                    if held.insert(Arc::clone(&channel)) {
                        join(&hub, &channel, ttl).await;
                    }
                } else if held.remove(&channel) {
                    leave(&hub, &channel).await;
                }
            }
            _ = renew.tick() => {
                let Some(hub) = hub.upgrade() else { return };
                for channel in &held {
                    join(&hub, channel, ttl).await;
                }
                match hub.backplane.group_reap().await {
                    Ok(lapsed) => {
                        for channel in lapsed {
                            tell(&hub, &channel, false);
                        }
                    }
                    Err(err) => tracing::debug!(%err, "occupancy reap failed; retrying next round"),
                }
            }
            _ = alive.changed() => return,
        }
    }
}

/// Joins (or renews) this instance's membership of `channel`'s group.
async fn join<B: Backplane>(hub: &HubInner<B>, channel: &str, ttl: Duration) {
    match hub.backplane.group_join(channel, hub.ids.node(), ttl).await {
        Ok(GroupJoin::First) => tell(hub, channel, true),
        Ok(GroupJoin::FirstAfterLapse) => {
            tell(hub, channel, false);
            tell(hub, channel, true);
        }
        Ok(_) => {}
        // The next renewal joins again (and reports then if it is the first).
        Err(err) => tracing::debug!(%channel, %err, "occupancy join failed; retrying next round"),
    }
}

async fn leave<B: Backplane>(hub: &HubInner<B>, channel: &str) {
    match hub.backplane.group_leave(channel, hub.ids.node()).await {
        Ok(true) => tell(hub, channel, false),
        Ok(false) => {}
        // The membership lapses; a reaper reports the channel vacated then.
        Err(err) => tracing::debug!(%channel, %err, "occupancy leave failed; it lapses instead"),
    }
}

fn tell<B: Backplane>(hub: &HubInner<B>, channel: &str, occupied: bool) {
    let Ok(channel) = ChannelName::new(channel) else {
        return;
    };
    let _ = hub.events.send(if occupied {
        HubEvent::ChannelOccupied { channel }
    } else {
        HubEvent::ChannelVacated { channel }
    });
}
