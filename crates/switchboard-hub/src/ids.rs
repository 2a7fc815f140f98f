//! Connection and message ids, unique across instances.

use std::sync::atomic::{AtomicU64, Ordering};

/// Generates ids as `<node><kind><counter>`: the node part is random per hub, so ids from
/// different instances never collide, and the counter keeps them short. Connection ids add
/// 48 unguessable bits ([`next_unguessable`](Self::next_unguessable)).
#[derive(Debug)]
pub(crate) struct IdGenerator {
    node: String,
    next: AtomicU64,
    /// A secret SipHash key (random per process and generator): a keyed hash of the counter
    /// cannot be predicted from ids seen before.
    secret: std::collections::hash_map::RandomState,
}

impl IdGenerator {
    pub(crate) fn new() -> Self {
        use std::hash::{BuildHasher, Hasher};
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_u128(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos()),
        );
        Self {
            node: format!("{:08x}", h.finish() as u32),
            next: AtomicU64::new(1),
            secret: std::collections::hash_map::RandomState::new(),
        }
    }

    pub(crate) fn node(&self) -> &str {
        &self.node
    }

    pub(crate) fn next(&self, kind: char) -> String {
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        format!("{}{kind}{n:x}", self.node)
    }

    /// Like [`next`](Self::next), followed by 12 hex digits of a keyed hash of the counter:
    /// still unique (the counter part), and no id can be guessed from the ones seen before.
    pub(crate) fn next_unguessable(&self, kind: char) -> String {
        use std::hash::BuildHasher;
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        let tag = self.secret.hash_one(n) >> 16;
        format!("{}{kind}{n:x}{tag:012x}", self.node)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unguessable_ids_are_unique_and_not_a_sequence() {
        let ids = IdGenerator::new();
        let made: Vec<String> = (0..1000).map(|_| ids.next_unguessable('c')).collect();
        let distinct: std::collections::HashSet<_> = made.iter().collect();
        assert_eq!(distinct.len(), made.len());
        // The tails of consecutive ids share no simple relation: about half their bits differ.
        let tail = |id: &str| u64::from_str_radix(&id[id.len() - 12..], 16).unwrap();
        let differing: u32 = made
            .windows(2)
            .map(|w| (tail(&w[0]) ^ tail(&w[1])).count_ones())
            .sum();
        let mean = f64::from(differing) / 999.0;
        assert!((18.0..30.0).contains(&mean), "mean differing bits {mean}");
        // Another generator (another instance) draws other tails for the same counters.
        let other = IdGenerator::new();
        assert_ne!(tail(&other.next_unguessable('c')), tail(&made[0]));
    }
}
