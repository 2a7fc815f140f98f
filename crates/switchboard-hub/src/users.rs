//! Who is connected here: the local connections of each signed-in user, for the
//! operations on a user's connections (disconnect, subscribe, unsubscribe).

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use parking_lot::Mutex;

use crate::outbox::Outbox;

/// The local connections of each signed-in user. Anonymous connections are not listed.
#[derive(Default)]
pub(crate) struct Users {
    inner: Mutex<UsersInner>,
}

/// A local connection: its key and its outbox.
pub(crate) type Local = (u64, Arc<dyn Outbox>);

#[derive(Default)]
struct UsersInner {
    by_user: HashMap<Arc<str>, Vec<Local>>,
    by_key: HashMap<u64, Arc<str>>,
}

impl Users {
    /// Lists connection `key` of `user`.
    pub(crate) fn add(&self, user: &Arc<str>, key: u64, outbox: &Arc<dyn Outbox>) {
        let mut inner = self.inner.lock();
        inner
            .by_user
            .entry(Arc::clone(user))
            .or_default()
            .push((key, Arc::clone(outbox)));
        inner.by_key.insert(key, Arc::clone(user));
    }

    /// Forgets connection `key` (it ended).
    pub(crate) fn remove(&self, key: u64) {
        let mut inner = self.inner.lock();
        let Some(user) = inner.by_key.remove(&key) else {
            return;
        };
        if let Some(connections) = inner.by_user.get_mut(&user) {
            connections.retain(|(k, _)| *k != key);
            if connections.is_empty() {
                inner.by_user.remove(&user);
            }
        }
    }

    /// The outboxes of `user`'s local connections, with their keys.
    pub(crate) fn of(&self, user: &str) -> Vec<Local> {
        self.inner
            .lock()
            .by_user
            .get(user)
            .cloned()
            .unwrap_or_default()
    }

    /// The users of the connections `keys` (anonymous ones have none).
    pub(crate) fn users_of(&self, keys: &[u64]) -> HashSet<Arc<str>> {
        let inner = self.inner.lock();
        keys.iter()
            .filter_map(|key| inner.by_key.get(key).cloned())
            .collect()
    }
}
