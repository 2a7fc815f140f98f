//! Timestamps as frames carry them: integers, milliseconds since the Unix epoch.

use std::time::SystemTime;

/// `at` in milliseconds since the Unix epoch, as frames carry it (`timestamp`,
/// `serverTime`, `expiresAt`): 0 before the epoch, `u64::MAX` past what fits.
#[inline]
#[must_use]
pub fn unix_ms(at: SystemTime) -> u64 {
    at.duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// `at` in microseconds since the Unix epoch (0 before the epoch, `u64::MAX` past what
/// fits): finer than the frames' timestamps, for measuring latency between instances.
#[inline]
#[must_use]
pub fn unix_us(at: SystemTime) -> u64 {
    at.duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX))
}

/// Now, in milliseconds since the Unix epoch (see [`unix_ms`]).
#[inline]
#[must_use]
pub fn now_ms() -> u64 {
    unix_ms(SystemTime::now())
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn milliseconds_since_the_epoch_and_zero_before_it() {
        let at = SystemTime::UNIX_EPOCH + Duration::from_millis(1_763_776_800_123);
        assert_eq!(unix_ms(at), 1_763_776_800_123);
        assert_eq!(unix_ms(SystemTime::UNIX_EPOCH - Duration::from_secs(1)), 0);
        assert_eq!(unix_us(at), 1_763_776_800_123_000);
        assert_eq!(unix_us(SystemTime::UNIX_EPOCH - Duration::from_secs(1)), 0);
        assert!(
            now_ms() > 1_763_776_800_000,
            "the clock is past November 2025"
        );
    }
}
