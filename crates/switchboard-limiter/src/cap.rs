//! Caps on concurrent holders (connections), global or per key, released by RAII permits.

use std::fmt;
use std::hash::{BuildHasher, Hash, RandomState};
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use hashbrown::HashTable;

/// The default per-key cap: 10 concurrent connections per IP.
pub const DEFAULT_CONNECTIONS_PER_KEY: NonZeroU32 = NonZeroU32::new(10).unwrap();

/// A cap was reached: the holder count is at the limit. Nothing was acquired.
///
/// A cap knows no time at which a slot frees up; an HTTP server answering 429 or 503 picks its
/// own `Retry-After`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, thiserror::Error)]
#[error("connection cap reached: at most {limit} concurrent connections")]
pub struct CapReached {
    limit: u32,
}

impl CapReached {
    /// The cap that was reached.
    #[must_use]
    pub const fn limit(&self) -> u32 {
        self.limit
    }
}

/// The most concurrent holders, with `None` meaning no cap.
const fn max_holders(limit: Option<NonZeroU32>) -> u32 {
    match limit {
        Some(limit) => limit.get(),
        None => u32::MAX,
    }
}

struct GlobalState {
    count: AtomicU32,
    limit: Option<NonZeroU32>,
}

/// At most N concurrent holders in total (a global connection cap).
///
/// [`try_acquire`](Self::try_acquire) hands out a [`ConnectionPermit`]; dropping it frees the
/// slot, so a session task that ends in any way (return, error, panic, cancellation) releases
/// it. Lock-free: one atomic counter. Cloning gives another handle to the same cap.
///
/// ```
/// use std::num::NonZeroU32;
/// use switchboard_limiter::ConnectionCap;
///
/// let cap = ConnectionCap::new(NonZeroU32::new(2).unwrap());
/// let first = cap.try_acquire().unwrap();
/// let _second = cap.try_acquire().unwrap();
/// assert_eq!(cap.try_acquire().unwrap_err().limit(), 2);
///
/// drop(first);
/// assert_eq!(cap.count(), 1);
/// assert!(cap.try_acquire().is_ok());
/// ```
#[derive(Clone)]
pub struct ConnectionCap {
    state: Arc<GlobalState>,
}

impl ConnectionCap {
    /// At most `limit` concurrent holders.
    #[must_use]
    pub fn new(limit: NonZeroU32) -> Self {
        Self::with_limit(Some(limit))
    }

    /// No cap: every acquisition succeeds, and [`count`](Self::count) still tells how many
    /// holders there are.
    #[must_use]
    pub fn unlimited() -> Self {
        Self::with_limit(None)
    }

    /// At most `limit` holders, or no cap for `None`.
    ///
    /// A configuration where `0` means "unlimited" maps with `NonZeroU32::new(n)`.
    #[must_use]
    pub fn with_limit(limit: Option<NonZeroU32>) -> Self {
        Self {
            state: Arc::new(GlobalState {
                count: AtomicU32::new(0),
                limit,
            }),
        }
    }

    /// Takes a slot, held until the permit is dropped.
    ///
    /// # Errors
    ///
    /// [`CapReached`] when all slots are held.
    pub fn try_acquire(&self) -> Result<ConnectionPermit, CapReached> {
        let max = max_holders(self.state.limit);
        self.state
            .count
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |count| {
                (count < max).then_some(count + 1)
            })
            .map(|_| ConnectionPermit {
                state: Arc::clone(&self.state),
            })
            .map_err(|_| CapReached { limit: max })
    }

    /// The current number of holders.
    #[must_use]
    pub fn count(&self) -> u32 {
        self.state.count.load(Ordering::Relaxed)
    }

    /// The cap, or `None` when unlimited.
    #[must_use]
    pub fn limit(&self) -> Option<NonZeroU32> {
        self.state.limit
    }
}

impl fmt::Debug for ConnectionCap {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConnectionCap")
            .field("count", &self.count())
            .field("limit", &self.state.limit)
            .finish()
    }
}

/// A slot of a [`ConnectionCap`], freed on drop.
#[must_use = "the slot is freed as soon as the permit is dropped"]
pub struct ConnectionPermit {
    state: Arc<GlobalState>,
}

impl Drop for ConnectionPermit {
    fn drop(&mut self) {
        self.state.count.fetch_sub(1, Ordering::Relaxed);
    }
}

impl fmt::Debug for ConnectionPermit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConnectionPermit").finish_non_exhaustive()
    }
}

/// `(key, holders)`; a key is present only while it has at least one holder.
type HolderTable<K> = Mutex<HashTable<(K, u32)>>;

struct KeyedState<K, S> {
    shards: Box<[HolderTable<K>]>,
    limit: Option<NonZeroU32>,
    hasher: S,
}

const KEYED_CAP_SHARDS: usize = 32;

impl<K, S> KeyedState<K, S> {
    fn shard(&self, hash: u64) -> &HolderTable<K> {
        // Bits 32.. choose the shard, leaving the low and top bits to the table inside.
        &self.shards[(hash >> 32) as usize % self.shards.len()]
    }
}

/// At most N concurrent holders per key (a per-IP connection cap).
///
/// [`try_acquire`](Self::try_acquire) hands out a [`KeyedConnectionPermit`]; dropping it frees the
/// slot, so a session task that ends in any way (return, error, panic, cancellation) releases
/// it. A key is remembered only while it has holders, so memory is bounded by the number of live
/// permits. Cloning gives another handle to the same cap.
///
/// For a cap that is not keyed, use [`ConnectionCap`].
///
/// ```
/// use std::net::{IpAddr, Ipv4Addr};
/// use std::num::NonZeroU32;
/// use switchboard_limiter::KeyedConnectionCap;
///
/// let per_ip = KeyedConnectionCap::new(NonZeroU32::new(1).unwrap());
/// let ip = IpAddr::V4(Ipv4Addr::new(198, 51, 100, 7));
///
/// let permit = per_ip.try_acquire(&ip).unwrap();
/// assert!(per_ip.try_acquire(&ip).is_err());
/// assert_eq!(per_ip.count(&ip), 1);
///
/// drop(permit);
/// assert_eq!(per_ip.count(&ip), 0);
/// assert!(per_ip.is_empty());
/// ```
pub struct KeyedConnectionCap<K, S = RandomState> {
    state: Arc<KeyedState<K, S>>,
}

impl<K, S> Clone for KeyedConnectionCap<K, S> {
    fn clone(&self) -> Self {
        Self {
            state: Arc::clone(&self.state),
        }
    }
}

impl<K: Hash + Eq + Clone> KeyedConnectionCap<K> {
    /// At most `limit` concurrent holders per key.
    #[must_use]
    pub fn new(limit: NonZeroU32) -> Self {
        Self::with_hasher(Some(limit), RandomState::new())
    }

    /// No cap per key: every acquisition succeeds, and [`count`](Self::count) still tells how
    /// many holders each key has.
    #[must_use]
    pub fn unlimited() -> Self {
        Self::with_hasher(None, RandomState::new())
    }
}

impl<K: Hash + Eq + Clone> Default for KeyedConnectionCap<K> {
    /// [`DEFAULT_CONNECTIONS_PER_KEY`] (10) per key.
    fn default() -> Self {
        Self::new(DEFAULT_CONNECTIONS_PER_KEY)
    }
}

impl<K: Hash + Eq + Clone, S: BuildHasher> KeyedConnectionCap<K, S> {
    /// At most `limit` holders per key (no cap for `None`), hashing keys with `hasher`.
    ///
    /// Keys usually come from peers: keep a hasher that resists collision attacks, like the
    /// default [`RandomState`].
    #[must_use]
    pub fn with_hasher(limit: Option<NonZeroU32>, hasher: S) -> Self {
        Self {
            state: Arc::new(KeyedState {
                shards: (0..KEYED_CAP_SHARDS)
                    .map(|_| Mutex::new(HashTable::new()))
                    .collect(),
                limit,
                hasher,
            }),
        }
    }

    /// Takes one of `key`'s slots, held until the permit is dropped.
    ///
    /// # Errors
    ///
    /// [`CapReached`] when all of `key`'s slots are held.
    pub fn try_acquire(&self, key: &K) -> Result<KeyedConnectionPermit<K, S>, CapReached> {
        let max = max_holders(self.state.limit);
        let hash = self.state.hasher.hash_one(key);
        let mut table = self
            .state
            .shard(hash)
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        match table.find_mut(hash, |(k, _)| k == key) {
            Some((_, count)) if *count >= max => return Err(CapReached { limit: max }),
            Some((_, count)) => *count += 1,
            None => {
                let hasher = &self.state.hasher;
                table.insert_unique(hash, (key.clone(), 1), |(k, _)| hasher.hash_one(k));
            }
        }
        drop(table);
        Ok(KeyedConnectionPermit {
            state: Arc::clone(&self.state),
            key: key.clone(),
            hash,
        })
    }

    /// The current number of holders for `key`.
    #[must_use]
    pub fn count(&self, key: &K) -> u32 {
        let hash = self.state.hasher.hash_one(key);
        let table = self
            .state
            .shard(hash)
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        table.find(hash, |(k, _)| k == key).map_or(0, |(_, n)| *n)
    }
}

impl<K, S> KeyedConnectionCap<K, S> {
    /// The number of keys with at least one holder.
    #[must_use]
    pub fn len(&self) -> usize {
        self.state
            .shards
            .iter()
            .map(|shard| shard.lock().unwrap_or_else(PoisonError::into_inner).len())
            .sum()
    }

    /// Whether no key has a holder.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The cap per key, or `None` when unlimited.
    #[must_use]
    pub fn limit(&self) -> Option<NonZeroU32> {
        self.state.limit
    }
}

impl<K, S> fmt::Debug for KeyedConnectionCap<K, S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyedConnectionCap")
            .field("keys", &self.len())
            .field("limit", &self.state.limit)
            .finish()
    }
}

/// One of a key's slots in a [`KeyedConnectionCap`], freed on drop.
#[must_use = "the slot is freed as soon as the permit is dropped"]
pub struct KeyedConnectionPermit<K: Eq, S = RandomState> {
    state: Arc<KeyedState<K, S>>,
    key: K,
    hash: u64,
}

impl<K: Eq, S> KeyedConnectionPermit<K, S> {
    /// The key whose slot this is.
    #[must_use]
    pub const fn key(&self) -> &K {
        &self.key
    }
}

impl<K: Eq, S> Drop for KeyedConnectionPermit<K, S> {
    fn drop(&mut self) {
        // Runs during unwinding too: it must not panic, hence no unwrap on a poisoned lock.
        let mut table = self
            .state
            .shard(self.hash)
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Ok(mut entry) = table.find_entry(self.hash, |(k, _)| *k == self.key) {
            let count = &mut entry.get_mut().1;
            *count -= 1;
            if *count == 0 {
                entry.remove();
            }
        }
    }
}

impl<K: Eq + fmt::Debug, S> fmt::Debug for KeyedConnectionPermit<K, S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyedConnectionPermit")
            .field("key", &self.key)
            .finish_non_exhaustive()
    }
}
