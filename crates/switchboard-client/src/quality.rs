//! Connection quality from the heartbeat's pings: latency, jitter, loss and stability.

use std::collections::VecDeque;
use std::time::Duration;

use tokio::time::Instant;

use crate::QualityConfig;

/// A coarse grade of the connection, for a status indicator or to adapt what is sent.
///
/// | class | latency (average) | loss | reconnects in the window |
/// |---|---|---|---|
/// | `Excellent` | < 100 ms | < 1 % | 0 |
/// | `Good` | < 300 ms | < 5 % | ≤ 1 |
/// | `Fair` | < 1000 ms | < 15 % | ≤ 3 |
/// | `Poor` | otherwise | | |
/// | `Offline` | not connected | | |
///
/// A class needs every one of its conditions. Before the first pong the latency is unknown
/// and only loss and reconnects decide (the first ping goes out as soon as the connection
/// is up, so this lasts one round trip).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum QualityClass {
    /// Not connected.
    Offline,
    /// Slow, lossy or flapping.
    Poor,
    /// Usable, with noticeable delay or loss.
    Fair,
    /// Good.
    Good,
    /// Fast, lossless and stable.
    Excellent,
}

impl QualityClass {
    /// Latency below which a connection can be excellent.
    pub const EXCELLENT_LATENCY: Duration = Duration::from_millis(100);
    /// Latency below which a connection can be good.
    pub const GOOD_LATENCY: Duration = Duration::from_millis(300);
    /// Latency below which a connection can be fair.
    pub const FAIR_LATENCY: Duration = Duration::from_millis(1000);
    /// Loss below which a connection can be excellent.
    pub const EXCELLENT_LOSS: f64 = 0.01;
    /// Loss below which a connection can be good.
    pub const GOOD_LOSS: f64 = 0.05;
    /// Loss below which a connection can be fair.
    pub const FAIR_LOSS: f64 = 0.15;

    /// Grades a connection by the table above.
    #[must_use]
    pub fn classify(
        connected: bool,
        latency: Option<Duration>,
        loss: f64,
        reconnects_in_window: u32,
    ) -> Self {
        if !connected {
            return Self::Offline;
        }
        let meets = |max_latency: Duration, max_loss: f64, max_reconnects: u32| {
            latency.is_none_or(|l| l < max_latency)
                && loss < max_loss
                && reconnects_in_window <= max_reconnects
        };
        if meets(Self::EXCELLENT_LATENCY, Self::EXCELLENT_LOSS, 0) {
            Self::Excellent
        } else if meets(Self::GOOD_LATENCY, Self::GOOD_LOSS, 1) {
            Self::Good
        } else if meets(Self::FAIR_LATENCY, Self::FAIR_LOSS, 3) {
            Self::Fair
        } else {
            Self::Poor
        }
    }
}

/// A measurement of the connection, observed through
/// [`Client::quality`](crate::Client::quality).
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct Quality {
    /// The grade.
    pub class: QualityClass,
    /// Mean round trip of the last [`QualityConfig::samples`] answered pings; `None` before
    /// the first answer.
    pub latency_avg: Option<Duration>,
    /// Mean absolute difference between consecutive round trips of those pings; `None`
    /// with fewer than two.
    pub jitter: Option<Duration>,
    /// Of the last [`QualityConfig::samples`] pings that were answered or timed out, the
    /// fraction that timed out (0.0 to 1.0).
    pub loss: f64,
    /// Pings the loss is computed over.
    pub pings: usize,
    /// Reconnects within [`QualityConfig::stability_window`].
    pub reconnects_in_window: u32,
}

impl Quality {
    /// The quality of a client that has never connected.
    #[must_use]
    pub fn offline() -> Self {
        Self {
            class: QualityClass::Offline,
            latency_avg: None,
            jitter: None,
            loss: 0.0,
            pings: 0,
            reconnects_in_window: 0,
        }
    }
}

/// The measurements behind [`Quality`], kept by the connection task.
#[derive(Debug)]
pub(crate) struct QualityTracker {
    config: QualityConfig,
    timeout: Duration,
    /// Pings sent and not yet answered, oldest first.
    pending: VecDeque<(u64, Instant)>,
    next_ping: u64,
    rtts: VecDeque<Duration>,
    /// `true` for an answered ping, `false` for a lost one.
    outcomes: VecDeque<bool>,
    reconnects: VecDeque<Instant>,
    missed_in_a_row: u32,
}

impl QualityTracker {
    pub(crate) fn new(config: QualityConfig, timeout: Duration) -> Self {
        Self {
            config,
            timeout,
            pending: VecDeque::new(),
            next_ping: 0,
            rtts: VecDeque::new(),
            outcomes: VecDeque::new(),
            reconnects: VecDeque::new(),
            missed_in_a_row: 0,
        }
    }

    /// A connection was established; `reconnect` unless it is the client's first.
    pub(crate) fn connected(&mut self, now: Instant, reconnect: bool) {
        self.pending.clear();
        self.missed_in_a_row = 0;
        if reconnect {
            self.reconnects.push_back(now);
        }
    }

    /// The connection ended: pings in flight are neither answered nor lost.
    pub(crate) fn disconnected(&mut self) {
        self.pending.clear();
    }

    /// Registers a ping about to be sent; returns its id.
    pub(crate) fn ping(&mut self, now: Instant) -> String {
        self.next_ping += 1;
        self.pending.push_back((self.next_ping, now));
        format!("q{}", self.next_ping)
    }

    /// Records a pong; returns whether it answered a ping still in time.
    pub(crate) fn pong(&mut self, id: &str, now: Instant) -> bool {
        let Some(n) = id.strip_prefix('q').and_then(|n| n.parse::<u64>().ok()) else {
            return false;
        };
        let Some(at) = self.pending.iter().position(|&(p, _)| p == n) else {
            return false;
        };
        let (_, sent) = self.pending.remove(at).expect("position is in range");
        let rtt = now.saturating_duration_since(sent);
        if rtt > self.timeout {
            self.record(false);
            return false;
        }
        self.missed_in_a_row = 0;
        push_bounded(&mut self.rtts, rtt, self.config.samples.get());
        self.record(true);
        true
    }

    /// Counts the pings that timed out by `now`; returns the lost pings in a row.
    pub(crate) fn expire(&mut self, now: Instant) -> u32 {
        while let Some(&(_, sent)) = self.pending.front() {
            if now.saturating_duration_since(sent) < self.timeout {
                break;
            }
            self.pending.pop_front();
            self.missed_in_a_row += 1;
            self.record(false);
        }
        self.missed_in_a_row
    }

    /// When the oldest ping in flight times out.
    pub(crate) fn next_expiry(&self) -> Option<Instant> {
        self.pending.front().map(|&(_, sent)| sent + self.timeout)
    }

    fn record(&mut self, answered: bool) {
        push_bounded(&mut self.outcomes, answered, self.config.samples.get());
    }

    pub(crate) fn snapshot(&mut self, connected: bool, now: Instant) -> Quality {
        while let Some(&at) = self.reconnects.front() {
            if now.saturating_duration_since(at) <= self.config.stability_window {
                break;
            }
            self.reconnects.pop_front();
        }
        let latency_avg = (!self.rtts.is_empty()).then(|| {
            let total: Duration = self.rtts.iter().sum();
            total / u32::try_from(self.rtts.len()).unwrap_or(u32::MAX)
        });
        let jitter = (self.rtts.len() >= 2).then(|| {
            let total: Duration = self
                .rtts
                .iter()
                .zip(self.rtts.iter().skip(1))
                .map(|(a, b)| a.abs_diff(*b))
                .sum();
            total / u32::try_from(self.rtts.len() - 1).unwrap_or(u32::MAX)
        });
        let pings = self.outcomes.len();
        let lost = self.outcomes.iter().filter(|answered| !**answered).count();
        #[allow(clippy::cast_precision_loss)] // at most `samples` pings
        let loss = if pings == 0 {
            0.0
        } else {
            lost as f64 / pings as f64
        };
        let reconnects_in_window = u32::try_from(self.reconnects.len()).unwrap_or(u32::MAX);
        Quality {
            class: QualityClass::classify(connected, latency_avg, loss, reconnects_in_window),
            latency_avg,
            jitter,
            loss,
            pings,
            reconnects_in_window,
        }
    }
}

fn push_bounded<T>(buffer: &mut VecDeque<T>, value: T, bound: usize) {
    if buffer.len() == bound {
        buffer.pop_front();
    }
    buffer.push_back(value);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classification_follows_the_documented_thresholds() {
        let ms = Duration::from_millis;
        let c = QualityClass::classify;
        assert_eq!(c(false, Some(ms(1)), 0.0, 0), QualityClass::Offline);
        assert_eq!(c(true, Some(ms(99)), 0.0, 0), QualityClass::Excellent);
        assert_eq!(c(true, None, 0.0, 0), QualityClass::Excellent);
        assert_eq!(c(true, Some(ms(100)), 0.0, 0), QualityClass::Good);
        assert_eq!(c(true, Some(ms(10)), 0.0, 1), QualityClass::Good);
        assert_eq!(c(true, Some(ms(10)), 0.02, 0), QualityClass::Good);
        assert_eq!(c(true, Some(ms(300)), 0.0, 0), QualityClass::Fair);
        assert_eq!(c(true, Some(ms(10)), 0.10, 0), QualityClass::Fair);
        assert_eq!(c(true, Some(ms(10)), 0.0, 3), QualityClass::Fair);
        assert_eq!(c(true, Some(ms(1000)), 0.0, 0), QualityClass::Poor);
        assert_eq!(c(true, Some(ms(10)), 0.15, 0), QualityClass::Poor);
        assert_eq!(c(true, Some(ms(10)), 0.0, 4), QualityClass::Poor);
    }

    #[test]
    fn latency_jitter_and_loss_come_from_the_last_samples() {
        let config = QualityConfig::default().with_samples(3.try_into().unwrap());
        let mut t = QualityTracker::new(config, Duration::from_secs(1));
        let t0 = Instant::now();
        let ms = Duration::from_millis;
        for rtt in [10, 1000, 20, 40] {
            let id = t.ping(t0);
            if rtt < 1000 {
                assert!(t.pong(&id, t0 + ms(rtt)));
            } else {
                assert_eq!(t.expire(t0 + ms(rtt)), 1);
            }
        }
        let q = t.snapshot(true, t0);
        // The last three answered: 10, 20, 40 ms; the last three outcomes: lost, ok, ok.
        assert_eq!(q.latency_avg, Some(ms(70) / 3));
        assert_eq!(q.jitter, Some(ms(15)));
        assert!((q.loss - 1.0 / 3.0).abs() < 1e-9);
        assert_eq!(q.class, QualityClass::Poor);
    }
}
