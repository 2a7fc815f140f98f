//! Connection and message ids, unique across instances.

use std::sync::atomic::{AtomicU64, Ordering};

/// Characters of a connection id's unguessable tag (6 bits each).
const TAG_CHARS: usize = 8;

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

    /// Like [`next`](Self::next), followed by 8 characters (48 bits) of a keyed hash of the
    /// counter: still unique (the counter part), and no id can be guessed from the ones seen
    /// before. Short on purpose: connection ids travel in every delivered message's `from`.
    pub(crate) fn next_unguessable(&self, kind: char) -> String {
        use std::fmt::Write;
        use std::hash::BuildHasher;
        const ALPHABET: &[u8; 64] =
            b"0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ-_";
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        let mut tag = self.secret.hash_one(n);
        let mut id = String::with_capacity(self.node.len() + 1 + 16 + TAG_CHARS);
        let _ = write!(id, "{}{kind}{n:x}", self.node);
        for _ in 0..TAG_CHARS {
            id.push(char::from(ALPHABET[(tag & 63) as usize]));
            tag >>= 6;
        }
        id
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
        let tail = |id: &str| {
            id[id.len() - TAG_CHARS..].bytes().fold(0u64, |acc, b| {
                let v = match b {
                    b'0'..=b'9' => b - b'0',
                    b'a'..=b'z' => b - b'a' + 10,
                    b'A'..=b'Z' => b - b'A' + 36,
                    b'-' => 62,
                    _ => 63,
                };
                (acc << 6) | u64::from(v)
            })
        };
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
