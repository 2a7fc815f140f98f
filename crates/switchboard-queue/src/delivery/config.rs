//! Settings of a delivery queue.

use std::num::{NonZeroU32, NonZeroUsize};
use std::time::Duration;

use crate::{Backoff, PopOrder};

/// Settings of a [`DeliveryQueue`](crate::DeliveryQueue).
#[derive(Debug, Clone, Copy, PartialEq)]
#[non_exhaustive]
pub struct DeliveryConfig {
    /// Most entries held, counting ready, leased, waiting and dead-lettered ones. Default
    /// 1000.
    pub capacity: NonZeroUsize,
    /// Which ready entry a pop takes. Default [`PopOrder::Priority`].
    pub order: PopOrder,
    /// How long a popped entry stays leased before it counts as a failed attempt. Default
    /// 10 s.
    pub lease_timeout: Duration,
    /// Failed attempts (nacks and lease timeouts) after which an entry becomes a dead
    /// letter. Default 3.
    pub max_attempts: NonZeroU32,
    /// The wait before each retry. Default [`Backoff::default`].
    pub backoff: Backoff,
    /// Seeds the jitter's random generator, for reproducible retry times. Default `None`:
    /// seeded from the operating system.
    pub seed: Option<u64>,
}

impl Default for DeliveryConfig {
    fn default() -> Self {
        Self {
            capacity: NonZeroUsize::new(1000).expect("1000 is not zero"),
            order: PopOrder::Priority,
            lease_timeout: Duration::from_secs(10),
            max_attempts: NonZeroU32::new(3).expect("3 is not zero"),
            backoff: Backoff::default(),
            seed: None,
        }
    }
}

impl DeliveryConfig {
    /// Sets the most entries held.
    #[must_use]
    pub fn with_capacity(mut self, capacity: NonZeroUsize) -> Self {
        self.capacity = capacity;
        self
    }

    /// Sets which ready entry a pop takes.
    #[must_use]
    pub fn with_order(mut self, order: PopOrder) -> Self {
        self.order = order;
        self
    }

    /// Sets how long a lease lasts.
    #[must_use]
    pub fn with_lease_timeout(mut self, lease_timeout: Duration) -> Self {
        self.lease_timeout = lease_timeout;
        self
    }

    /// Sets the failed attempts after which an entry becomes a dead letter.
    #[must_use]
    pub fn with_max_attempts(mut self, max_attempts: NonZeroU32) -> Self {
        self.max_attempts = max_attempts;
        self
    }

    /// Sets the wait before each retry.
    #[must_use]
    pub fn with_backoff(mut self, backoff: Backoff) -> Self {
        self.backoff = backoff;
        self
    }

    /// Seeds the jitter's random generator.
    #[must_use]
    pub fn with_seed(mut self, seed: Option<u64>) -> Self {
        self.seed = seed;
        self
    }
}
