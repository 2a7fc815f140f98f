//! The sessions a transport is running, so that shutdown can close each at a moment of its
//! own.
//!
//! Shutdown reaches a session through its outbox (a close request, as the hub's slow
//! consumer close does), not through a watch every session polls: a watch's `changed()`
//! future would sit in every idle session's task (120 bytes), next to a drain timer.

use std::collections::HashMap;
use std::sync::{Arc, Weak};
use std::time::Duration;

use parking_lot::Mutex;
use switchboard_hub::Outbox;
use switchboard_protocol::CloseCode;
use tokio::time::{Instant, sleep_until};

use crate::outbox::SessionOutbox;

#[derive(Default)]
struct State {
    /// Shutdown began: sessions registered from now on are closed at once.
    draining: bool,
    next_key: u64,
    sessions: HashMap<u64, Weak<SessionOutbox>>,
}

/// The outboxes of the running sessions.
#[derive(Default)]
pub(crate) struct LiveSessions {
    state: Mutex<State>,
}

impl std::fmt::Debug for LiveSessions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let state = self.state.lock();
        f.debug_struct("LiveSessions")
            .field("sessions", &state.sessions.len())
            .field("draining", &state.draining)
            .finish()
    }
}

impl LiveSessions {
    /// Registers a session's outbox, returning the key that unregisters it. During shutdown
    /// the session is asked to close with 1001 at once: it started after the drain began.
    pub(crate) fn register(&self, outbox: &Arc<SessionOutbox>) -> u64 {
        let mut state = self.state.lock();
        if state.draining {
            drop(state);
            Outbox::close(&**outbox, CloseCode::GoingAway);
            return u64::MAX;
        }
        let key = state.next_key;
        state.next_key += 1;
        state.sessions.insert(key, Arc::downgrade(outbox));
        key
    }

    /// Forgets a session that ended.
    pub(crate) fn unregister(&self, key: u64) {
        let mut state = self.state.lock();
        state.sessions.remove(&key);
        if state.sessions.is_empty() {
            // A map emptied after a peak keeps its table: give it back.
            state.sessions = HashMap::new();
        }
    }

    /// How many sessions are registered.
    pub(crate) fn len(&self) -> usize {
        self.state.lock().sessions.len()
    }

    /// Starts the drain: every running session is closed with 1001 at a random moment
    /// within `window` (so clients do not all reconnect at once), and any session that
    /// starts later is closed at once. Returns when the last close was requested.
    pub(crate) async fn drain(&self, window: Duration) {
        let start = Instant::now();
        let mut schedule: Vec<(Duration, Weak<SessionOutbox>)> = self
            .begin_drain()
            .into_iter()
            .map(|session| (window.mul_f64(rand::random::<f64>()), session))
            .collect();
        schedule.sort_unstable_by_key(|(at, _)| *at);
        for (at, session) in schedule {
            sleep_until(start + at).await;
            going_away(&session);
        }
    }

    /// Asks every running session to close with 1001 now, and any later one at once: the
    /// transport was dropped without a shutdown.
    pub(crate) fn close_all(&self) {
        self.begin_drain().iter().for_each(going_away);
    }

    /// Marks the drain begun (sessions registered from now on are closed at once) and
    /// returns the running ones.
    fn begin_drain(&self) -> Vec<Weak<SessionOutbox>> {
        let mut state = self.state.lock();
        state.draining = true;
        state.sessions.values().cloned().collect()
    }
}

/// Asks a session, if it still runs, to close with 1001.
fn going_away(session: &Weak<SessionOutbox>) {
    if let Some(outbox) = session.upgrade() {
        Outbox::close(&*outbox, CloseCode::GoingAway);
    }
}

#[cfg(test)]
mod tests {
    use switchboard_metrics::Metrics;
    use switchboard_queue::OutboundConfig;

    use super::*;

    fn outbox() -> Arc<SessionOutbox> {
        Arc::new(SessionOutbox::new(
            OutboundConfig::default(),
            Metrics::new(),
            None,
        ))
    }

    #[tokio::test(start_paused = true)]
    async fn the_drain_closes_every_session_within_the_window_and_later_ones_at_once() {
        let live = LiveSessions::default();
        let outboxes: Vec<_> = (0..200).map(|_| outbox()).collect();
        for outbox in &outboxes {
            live.register(outbox);
        }
        let ended = outbox();
        let key = live.register(&ended);
        live.unregister(key);
        assert_eq!(live.len(), 200);

        let window = Duration::from_secs(5);
        let start = Instant::now();
        let drain = live.drain(window);
        tokio::pin!(drain);
        // Halfway through the window some sessions were asked to close and some not yet.
        let halfway = tokio::time::timeout(window / 2, &mut drain).await;
        assert!(halfway.is_err(), "the closes are spread over the window");
        let closed = outboxes
            .iter()
            .filter(|o| o.close_requested().is_some())
            .count();
        assert!(
            (40..=160).contains(&closed),
            "about half by the middle of the window, not {closed}"
        );
        drain.await;
        assert!(start.elapsed() <= window);
        assert!(
            outboxes
                .iter()
                .all(|o| o.close_requested() == Some(CloseCode::GoingAway))
        );
        // An unregistered session is left alone; a session starting now is closed at once.
        assert_eq!(ended.close_requested(), None);
        let late = outbox();
        live.register(&late);
        assert_eq!(late.close_requested(), Some(CloseCode::GoingAway));
    }

    #[test]
    fn dropping_the_transport_closes_every_session() {
        let live = LiveSessions::default();
        let running = outbox();
        live.register(&running);
        live.close_all();
        assert_eq!(running.close_requested(), Some(CloseCode::GoingAway));
        let late = outbox();
        live.register(&late);
        assert_eq!(late.close_requested(), Some(CloseCode::GoingAway));
    }
}
