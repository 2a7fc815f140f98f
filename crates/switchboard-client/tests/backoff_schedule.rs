//! The reconnect schedule: capped exponential delays with full jitter, waited exactly, and
//! giving up after `max_reconnect_attempts`. Timed under tokio's paused clock.

mod support;

use std::num::NonZeroU32;
use std::time::Duration;

use rand::rngs::SmallRng;
use rand::{RngExt, SeedableRng};
use switchboard_client::{Client, ConnectionState, DisconnectReason, RECONNECT_BACKOFF};
use tokio::time::Instant;

fn nth(n: u32) -> NonZeroU32 {
    NonZeroU32::new(n).unwrap()
}

#[test]
fn the_default_caps_grow_by_half_from_one_second_to_thirty() {
    let backoff = RECONNECT_BACKOFF.with_jitter(0.0);
    let caps: Vec<u128> = (1..=11)
        .map(|n| backoff.delay(nth(n), 0.3).as_millis())
        .collect();
    assert_eq!(
        caps,
        [
            1000, 1500, 2250, 3375, 5062, 7593, 11390, 17085, 25628, 30000, 30000
        ]
    );
}

#[test]
fn full_jitter_stays_within_zero_and_the_cap_and_spreads_evenly() {
    let backoff = RECONNECT_BACKOFF;
    let mut rng = SmallRng::seed_from_u64(42);
    for attempt in 1..=12 {
        let cap = backoff.cap(nth(attempt));
        let draws: Vec<Duration> = (0..2000)
            .map(|_| backoff.delay(nth(attempt), rng.random::<f64>()))
            .collect();
        assert!(draws.iter().all(|d| *d <= cap));
        let mean = draws.iter().sum::<Duration>() / 2000;
        let ratio = mean.as_secs_f64() / cap.as_secs_f64();
        assert!(
            (0.45..0.55).contains(&ratio),
            "attempt {attempt}: mean {ratio} of the cap"
        );
        let early = draws.iter().filter(|d| **d < cap / 4).count();
        assert!(
            (400..600).contains(&early),
            "a quarter land in the first quarter: {early}"
        );
    }
    assert_eq!(backoff.delay(nth(1), 0.0), Duration::from_secs(1));
    assert_eq!(
        backoff.delay(nth(1), 7.0),
        Duration::ZERO,
        "draws are clamped"
    );
    assert_eq!(
        backoff.delay(nth(1), -7.0),
        Duration::from_secs(1),
        "draws are clamped"
    );
}

/// A server that completes TCP handshakes but never answers the upgrade, so every attempt
/// ends by the connect timeout: exactly `connect_timeout` of (paused) time each.
#[tokio::test(start_paused = true)]
async fn reconnects_wait_exactly_the_jittered_delay_and_give_up_after_max_attempts() {
    let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = silent.local_addr().unwrap();
    let connect_timeout = Duration::from_secs(1);
    let backoff = RECONNECT_BACKOFF;
    let client = Client::builder(format!("ws://{addr}/ws"))
        .connect_timeout(connect_timeout)
        .max_reconnect_attempts(Some(nth(4)))
        .seed(7)
        .build()
        .unwrap();

    let mut state = client.state();
    let mut seen = vec![(Instant::now(), state.borrow_and_update().clone())];
    while !seen.last().unwrap().1.is_final() {
        state.changed().await.unwrap();
        seen.push((Instant::now(), state.borrow_and_update().clone()));
    }

    // The same draws the client makes, from the same seed.
    let mut rng = SmallRng::seed_from_u64(7);
    let expected: Vec<Duration> = (1..=4)
        .map(|n| backoff.delay(nth(n), rng.random()))
        .collect();

    let states: Vec<&ConnectionState> = seen.iter().map(|(_, s)| s).collect();
    assert_eq!(states.len(), 10, "{states:#?}");
    for (i, attempt) in (0..=4).enumerate() {
        let (at, connecting) = &seen[2 * i];
        assert_eq!(*connecting, ConnectionState::Connecting { attempt });
        let (failed_at, next) = &seen[2 * i + 1];
        assert_eq!(
            *failed_at - *at,
            connect_timeout,
            "attempt {attempt} timed out"
        );
        if attempt < 4 {
            let ConnectionState::Reconnecting {
                attempt: n,
                delay,
                reason,
            } = next
            else {
                panic!("expected Reconnecting, got {next:?}")
            };
            assert_eq!(*n, attempt + 1);
            assert_eq!(*reason, DisconnectReason::ConnectTimeout);
            assert_eq!(*delay, expected[i]);
            assert!(*delay <= backoff.cap(nth(*n)));
            // Exactly the delay, rounded up to the timer's 1 ms resolution.
            let waited = seen[2 * i + 2].0 - *failed_at;
            assert!(
                waited >= *delay && waited < *delay + Duration::from_millis(1),
                "waited {waited:?} for a delay of {delay:?}"
            );
        } else {
            assert_eq!(
                *next,
                ConnectionState::Error {
                    reason: DisconnectReason::ConnectTimeout,
                    attempts: 4
                }
            );
        }
    }
    drop(silent);
}
