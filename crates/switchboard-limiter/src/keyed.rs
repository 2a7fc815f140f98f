//! A token bucket per key, sharded, with a bound on the number of keys it remembers.

use std::fmt;
use std::hash::{BuildHasher, Hash, RandomState};
use std::num::NonZeroUsize;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{PoisonError, RwLock};

use hashbrown::HashTable;

use crate::bucket::{AcquireError, NotUntil, available, spend};
use crate::clock::{Clock, SystemClock};
use crate::quota::Quota;

/// The shape of a [`KeyedRateLimiter`].
///
/// Defaults: the default [`Quota`] (100 per 60 s, burst 100), at most 100 000 keys, 64 shards.
///
/// ```
/// use std::num::{NonZeroU32, NonZeroUsize};
/// use switchboard_limiter::{KeyedLimiterConfig, Quota};
///
/// let config = KeyedLimiterConfig::default()
///     .quota(Quota::per_second(NonZeroU32::new(5).unwrap()))
///     .max_keys(NonZeroUsize::new(10_000).unwrap());
/// assert_eq!(config.max_keys.get(), 10_000);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct KeyedLimiterConfig {
    /// The quota of every key's bucket.
    pub quota: Quota,
    /// The most keys remembered at once. Rounded down to a multiple of the shard count.
    pub max_keys: NonZeroUsize,
    /// Independent locks the keys are spread over, rounded down to a power of two, and lowered so
    /// that each shard holds at least 16 keys. More shards mean less contention between keys.
    ///
    /// The bound on keys applies per shard (`max_keys / shards` each), so a shard may evict while
    /// others still have room.
    pub shards: NonZeroUsize,
}

impl Default for KeyedLimiterConfig {
    fn default() -> Self {
        Self {
            quota: Quota::default(),
            max_keys: NonZeroUsize::new(100_000).unwrap(),
            shards: NonZeroUsize::new(64).unwrap(),
        }
    }
}

impl KeyedLimiterConfig {
    /// Sets [`quota`](Self::quota).
    #[must_use]
    pub const fn quota(mut self, quota: Quota) -> Self {
        self.quota = quota;
        self
    }

    /// Sets [`max_keys`](Self::max_keys).
    #[must_use]
    pub const fn max_keys(mut self, max_keys: NonZeroUsize) -> Self {
        self.max_keys = max_keys;
        self
    }

    /// Sets [`shards`](Self::shards).
    #[must_use]
    pub const fn shards(mut self, shards: NonZeroUsize) -> Self {
        self.shards = shards;
        self
    }
}

/// The fewest keys a shard holds; fewer shards are made when `max_keys` is small.
const MIN_KEYS_PER_SHARD: usize = 16;

struct Entry<K> {
    key: K,
    tat: AtomicU64,
}

/// Padded to its own cache lines so that two shards never contend through false sharing.
#[repr(align(128))]
struct Shard<K> {
    table: RwLock<HashTable<Entry<K>>>,
}

/// A token bucket per key (per-IP connect rate, per-user publish rate, ...), with bounded memory.
///
/// Each key gets its own bucket with the same [`Quota`]. Keys are spread over shards, each behind
/// a read-write lock; checking a known key takes only the read lock (the bucket itself is an
/// atomic word), so checks of different keys, and of the same key, run in parallel.
///
/// # Memory
///
/// A key whose bucket has refilled completely is *idle*: forgetting it loses nothing, since a new
/// bucket starts full. [`evict_idle`](Self::evict_idle) forgets all idle keys. The limiter never
/// remembers more than [`max_keys`](Self::max_keys) keys: when a new key finds its shard full, the
/// shard's idle keys are evicted first, and if none is idle, the key closest to full is forgotten
/// (it may then burst again early: the bound on memory wins over exactness under a flood of
/// distinct keys). An entry is the key and an 8-byte state word: 32 bytes for an `IpAddr`, plus
/// the hash table's control byte and spare capacity.
///
/// ```
/// use std::net::{IpAddr, Ipv4Addr};
/// use std::time::Duration;
/// use switchboard_limiter::{KeyedLimiterConfig, KeyedRateLimiter, ManualClock, Quota};
///
/// let clock = ManualClock::new();
/// let quota = Quota::new(2, 1, Duration::from_secs(1)).unwrap();
/// let limiter = KeyedRateLimiter::with_clock(KeyedLimiterConfig::default().quota(quota), clock.clone());
/// let alice = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1));
/// let bob = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 2));
///
/// assert!(limiter.try_acquire_one(&alice).is_ok());
/// assert!(limiter.try_acquire_one(&alice).is_ok());
/// assert!(limiter.try_acquire_one(&alice).is_err());
/// assert!(limiter.try_acquire_one(&bob).is_ok());
/// assert_eq!(limiter.len(), 2);
///
/// clock.advance(Duration::from_secs(2));
/// assert_eq!(limiter.evict_idle(), 2);
/// assert!(limiter.is_empty());
/// ```
pub struct KeyedRateLimiter<K, C = SystemClock, S = RandomState> {
    shards: Box<[Shard<K>]>,
    /// `shards.len() - 1`; the shard count is a power of two.
    shard_mask: usize,
    per_shard: usize,
    quota: Quota,
    clock: C,
    hasher: S,
}

impl<K: Hash + Eq + Clone> KeyedRateLimiter<K> {
    /// A limiter on the system clock.
    #[must_use]
    pub fn new(config: KeyedLimiterConfig) -> Self {
        Self::with_clock(config, SystemClock)
    }
}

impl<K: Hash + Eq + Clone, C: Clock> KeyedRateLimiter<K, C> {
    /// A limiter reading `clock`.
    #[must_use]
    pub fn with_clock(config: KeyedLimiterConfig, clock: C) -> Self {
        Self::with_clock_and_hasher(config, clock, RandomState::new())
    }
}

impl<K: Hash + Eq + Clone, C: Clock, S: BuildHasher> KeyedRateLimiter<K, C, S> {
    /// A limiter reading `clock` and hashing keys with `hasher`.
    ///
    /// Keys usually come from peers (addresses, user ids): keep a hasher that resists collision
    /// attacks, like the default [`RandomState`].
    #[must_use]
    pub fn with_clock_and_hasher(config: KeyedLimiterConfig, clock: C, hasher: S) -> Self {
        let max_keys = config.max_keys.get();
        // A shard holding few keys would evict too early when keys hash unevenly.
        let wanted = config
            .shards
            .get()
            .min(max_keys / MIN_KEYS_PER_SHARD)
            .max(1);
        // The largest power of two ≤ wanted.
        let count = 1usize << wanted.ilog2();
        let per_shard = max_keys / count;
        let shards = (0..count)
            .map(|_| Shard {
                table: RwLock::new(HashTable::new()),
            })
            .collect();
        Self {
            shards,
            shard_mask: count - 1,
            per_shard,
            quota: config.quota,
            clock,
            hasher,
        }
    }

    /// Takes one token from `key`'s bucket, or says how long until one is available.
    ///
    /// # Errors
    ///
    /// [`NotUntil`] when the key's bucket is empty; nothing is taken.
    #[inline]
    pub fn try_acquire_one(&self, key: &K) -> Result<(), NotUntil> {
        self.spend(key, 1)
    }

    /// Takes `n` tokens from `key`'s bucket at once, or none. Taking zero tokens always succeeds
    /// and remembers nothing.
    ///
    /// # Errors
    ///
    /// [`AcquireError::RateLimited`] when fewer than `n` tokens are available now;
    /// [`AcquireError::ExceedsCapacity`] when `n` is more than the capacity. Nothing is taken.
    pub fn try_acquire(&self, key: &K, n: u32) -> Result<(), AcquireError> {
        if n == 0 {
            return Ok(());
        }
        if n > self.quota.capacity() {
            return Err(AcquireError::ExceedsCapacity {
                requested: n,
                capacity: self.quota.capacity(),
            });
        }
        Ok(self.spend(key, n)?)
    }

    /// The whole tokens available now in `key`'s bucket (the capacity for an unknown key).
    #[must_use]
    pub fn available(&self, key: &K) -> u32 {
        let hash = self.hasher.hash_one(key);
        let table = self
            .shard(hash)
            .table
            .read()
            .unwrap_or_else(PoisonError::into_inner);
        table
            .find(hash, |entry| entry.key == *key)
            .map_or(self.quota.capacity(), |entry| {
                available(
                    entry.tat.load(Ordering::Relaxed),
                    &self.quota,
                    self.clock.now_nanos(),
                )
            })
    }

    /// Forgets every idle key (whose bucket has refilled completely) and returns how many.
    ///
    /// Forgetting an idle key changes no decision. Call it from a periodic task to give memory
    /// back between bursts; the limiter also does it by itself, one shard at a time, whenever a
    /// shard is full.
    pub fn evict_idle(&self) -> usize {
        let now = self.clock.now_nanos();
        self.shards
            .iter()
            .map(|shard| {
                let mut table = shard.table.write().unwrap_or_else(PoisonError::into_inner);
                let before = table.len();
                retain_busy(&mut table, now);
                before - table.len()
            })
            .sum()
    }

    #[inline]
    fn spend(&self, key: &K, n: u32) -> Result<(), NotUntil> {
        // Read the time before taking the lock, to hold the lock for as short as possible.
        let now = self.clock.now_nanos();
        let hash = self.hasher.hash_one(key);
        let shard = self.shard(hash);
        {
            let table = shard.table.read().unwrap_or_else(PoisonError::into_inner);
            if let Some(entry) = table.find(hash, |entry| entry.key == *key) {
                return spend(&entry.tat, &self.quota, n, now);
            }
        }
        self.insert(shard, hash, key, n, now)
    }

    #[cold]
    fn insert(
        &self,
        shard: &Shard<K>,
        hash: u64,
        key: &K,
        n: u32,
        now: u64,
    ) -> Result<(), NotUntil> {
        let mut table = shard.table.write().unwrap_or_else(PoisonError::into_inner);
        // Another thread may have added the key between the two locks.
        if let Some(entry) = table.find(hash, |entry| entry.key == *key) {
            return spend(&entry.tat, &self.quota, n, now);
        }
        if table.len() >= self.per_shard {
            make_room(&mut table, now);
        }
        let entry = Entry {
            key: key.clone(),
            tat: AtomicU64::new(0),
        };
        // A fresh bucket is full and n ≤ capacity: this cannot be refused.
        spend(&entry.tat, &self.quota, n, now)?;
        table.insert_unique(hash, entry, |entry| self.hasher.hash_one(&entry.key));
        Ok(())
    }

    #[inline]
    fn shard(&self, hash: u64) -> &Shard<K> {
        // Bits 32.. choose the shard: the table inside uses the low bits for the slot and the top
        // seven for its tags, so the shard choice does not skew either.
        let index = (hash >> 32) as usize & self.shard_mask;
        &self.shards[index]
    }
}

impl<K, C, S> KeyedRateLimiter<K, C, S> {
    /// The number of keys remembered now (each with its bucket).
    #[must_use]
    pub fn len(&self) -> usize {
        self.shards
            .iter()
            .map(|shard| {
                shard
                    .table
                    .read()
                    .unwrap_or_else(PoisonError::into_inner)
                    .len()
            })
            .sum()
    }

    /// Whether no key is remembered.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The most keys remembered at once: `config.max_keys` rounded down to a multiple of the
    /// shard count.
    #[must_use]
    pub fn max_keys(&self) -> usize {
        self.per_shard * self.shards.len()
    }

    /// The quota of every key's bucket.
    #[must_use]
    pub const fn quota(&self) -> &Quota {
        &self.quota
    }
}

/// Keeps the keys whose bucket is not full at `now`.
fn retain_busy<K>(table: &mut HashTable<Entry<K>>, now: u64) {
    table.retain(|entry| entry.tat.load(Ordering::Relaxed) > now);
}

/// Frees at least one slot in a full shard: the idle keys, or else the key closest to full.
fn make_room<K>(table: &mut HashTable<Entry<K>>, now: u64) {
    retain_busy(table, now);
    if table.is_empty() {
        return;
    }
    let oldest = table
        .iter()
        .map(|entry| entry.tat.load(Ordering::Relaxed))
        .min()
        .unwrap_or(0);
    let mut evicted = false;
    table.retain(|entry| {
        if !evicted && entry.tat.load(Ordering::Relaxed) == oldest {
            evicted = true;
            return false;
        }
        true
    });
}

impl<K, C, S> fmt::Debug for KeyedRateLimiter<K, C, S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyedRateLimiter")
            .field("quota", &self.quota)
            .field("len", &self.len())
            .field("max_keys", &self.max_keys())
            .field("shards", &self.shards.len())
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ManualClock;
    use std::time::Duration;

    fn limiter(
        max_keys: usize,
        shards: usize,
        clock: &ManualClock,
    ) -> KeyedRateLimiter<u32, ManualClock> {
        let config = KeyedLimiterConfig::default()
            .quota(Quota::new(1, 1, Duration::from_secs(1)).unwrap())
            .max_keys(NonZeroUsize::new(max_keys).unwrap())
            .shards(NonZeroUsize::new(shards).unwrap());
        KeyedRateLimiter::with_clock(config, clock.clone())
    }

    #[test]
    fn an_ip_address_entry_takes_32_bytes() {
        assert_eq!(size_of::<Entry<std::net::IpAddr>>(), 32);
    }

    #[test]
    fn shard_count_is_a_power_of_two_with_at_least_16_keys_per_shard() {
        let clock = ManualClock::new();
        assert_eq!(limiter(100_000, 48, &clock).shards.len(), 32);
        assert_eq!(limiter(100, 48, &clock).shards.len(), 4);
        assert_eq!(limiter(100, 48, &clock).max_keys(), 100);
        assert_eq!(limiter(3, 64, &clock).shards.len(), 1);
        assert_eq!(limiter(3, 64, &clock).max_keys(), 3);
    }

    #[test]
    fn a_full_shard_forgets_the_key_closest_to_full_when_none_is_idle() {
        let clock = ManualClock::new();
        let limiter = limiter(2, 1, &clock);
        limiter.try_acquire_one(&1).unwrap();
        clock.advance(Duration::from_millis(10));
        limiter.try_acquire_one(&2).unwrap();
        limiter.try_acquire_one(&3).unwrap();
        assert_eq!(limiter.len(), 2);
        // Key 1 was the closest to full, so it was forgotten and starts full again.
        assert_eq!(limiter.available(&1), 1);
        assert_eq!(limiter.available(&2), 0);
        assert_eq!(limiter.available(&3), 0);
    }
}
