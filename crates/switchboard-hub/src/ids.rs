//! Connection and message ids, unique across instances.

use std::sync::atomic::{AtomicU64, Ordering};

/// Generates ids as `<node>-<counter>`: the node part is random per hub, so ids from
/// different instances never collide, and the counter keeps them short.
#[derive(Debug)]
pub(crate) struct IdGenerator {
    node: String,
    next: AtomicU64,
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
        }
    }

    pub(crate) fn node(&self) -> &str {
        &self.node
    }

    pub(crate) fn next(&self, kind: char) -> String {
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        format!("{}{kind}{n:x}", self.node)
    }
}
