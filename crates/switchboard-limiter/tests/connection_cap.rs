//! Connection caps: at most N holders, per key or in total, released by dropping the permit.

use std::net::{IpAddr, Ipv4Addr};
use std::num::NonZeroU32;
use std::sync::Arc;
use std::sync::Barrier;
use std::thread;

use switchboard_limiter::{ConnectionCap, DEFAULT_CONNECTIONS_PER_KEY, KeyedConnectionCap};

fn ip(last: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(198, 51, 100, last))
}

fn limit(n: u32) -> NonZeroU32 {
    NonZeroU32::new(n).unwrap()
}

#[test]
fn a_key_admits_at_most_its_limit_of_concurrent_holders() {
    let cap = KeyedConnectionCap::new(limit(3));
    let permits: Vec<_> = (0..3).map(|_| cap.try_acquire(&ip(1)).unwrap()).collect();
    let refused = cap.try_acquire(&ip(1)).unwrap_err();
    assert_eq!(refused.limit(), 3);
    assert_eq!(cap.count(&ip(1)), 3);
    assert_eq!(permits[0].key(), &ip(1));
}

#[test]
fn dropping_a_permit_frees_its_slot() {
    let cap = KeyedConnectionCap::new(limit(1));
    let permit = cap.try_acquire(&ip(1)).unwrap();
    assert!(cap.try_acquire(&ip(1)).is_err());
    drop(permit);
    assert_eq!(cap.count(&ip(1)), 0);
    let _again = cap.try_acquire(&ip(1)).unwrap();
}

#[test]
fn a_session_that_panics_releases_its_slot() {
    let cap = KeyedConnectionCap::new(limit(1));
    let total = ConnectionCap::new(limit(1));
    let session = {
        let (cap, total) = (cap.clone(), total.clone());
        thread::spawn(move || {
            let _per_ip = cap.try_acquire(&ip(1)).unwrap();
            let _global = total.try_acquire().unwrap();
            panic!("the session task failed");
        })
    };
    assert!(session.join().is_err());
    assert_eq!(cap.count(&ip(1)), 0);
    assert_eq!(total.count(), 0);
    let _per_ip = cap.try_acquire(&ip(1)).unwrap();
    let _global = total.try_acquire().unwrap();
}

#[test]
fn keys_are_capped_independently() {
    let cap = KeyedConnectionCap::new(limit(1));
    let _first = cap.try_acquire(&ip(1)).unwrap();
    let _second = cap.try_acquire(&ip(2)).unwrap();
    assert!(cap.try_acquire(&ip(1)).is_err());
    assert_eq!(
        (cap.count(&ip(1)), cap.count(&ip(2)), cap.count(&ip(3))),
        (1, 1, 0)
    );
}

#[test]
fn a_key_is_forgotten_when_its_last_holder_leaves() {
    let cap = KeyedConnectionCap::<String>::new(limit(5));
    let first = cap.try_acquire(&"alice".to_owned()).unwrap();
    let second = cap.try_acquire(&"alice".to_owned()).unwrap();
    let bob = cap.try_acquire(&"bob".to_owned()).unwrap();
    assert_eq!(cap.len(), 2);
    drop(first);
    assert_eq!(cap.len(), 2);
    drop(second);
    assert_eq!(cap.len(), 1);
    drop(bob);
    assert!(cap.is_empty());
}

#[test]
fn the_default_cap_is_10_connections_per_key() {
    let cap = KeyedConnectionCap::<IpAddr>::default();
    assert_eq!(cap.limit(), Some(DEFAULT_CONNECTIONS_PER_KEY));
    let permits: Vec<_> = (0..10).map(|_| cap.try_acquire(&ip(1)).unwrap()).collect();
    assert!(cap.try_acquire(&ip(1)).is_err());
    assert_eq!(permits.len(), 10);
}

#[test]
fn an_unlimited_cap_admits_everyone_and_still_counts() {
    let cap = KeyedConnectionCap::unlimited();
    let permits: Vec<_> = (0..1000)
        .map(|_| cap.try_acquire(&ip(1)).unwrap())
        .collect();
    assert_eq!(cap.count(&ip(1)), 1000);
    assert_eq!(cap.limit(), None);
    drop(permits);
    assert!(cap.is_empty());

    let total = ConnectionCap::with_limit(NonZeroU32::new(0));
    let permits: Vec<_> = (0..1000).map(|_| total.try_acquire().unwrap()).collect();
    assert_eq!(total.count(), 1000);
    drop(permits);
    assert_eq!(total.count(), 0);
}

#[test]
fn the_global_cap_admits_at_most_its_limit() {
    let total = ConnectionCap::new(limit(2));
    let first = total.try_acquire().unwrap();
    let _second = total.try_acquire().unwrap();
    assert_eq!(total.try_acquire().unwrap_err().limit(), 2);
    drop(first);
    assert_eq!(total.count(), 1);
    let _third = total.try_acquire().unwrap();
}

#[test]
fn racing_sessions_never_exceed_the_cap() {
    for cap_size in [1, 3] {
        let cap = KeyedConnectionCap::new(limit(cap_size));
        let total = ConnectionCap::new(limit(cap_size));
        let barrier = Arc::new(Barrier::new(8));
        let sessions: Vec<_> = (0..8)
            .map(|_| {
                let (cap, total, barrier) = (cap.clone(), total.clone(), Arc::clone(&barrier));
                thread::spawn(move || {
                    barrier.wait();
                    (cap.try_acquire(&ip(1)).ok(), total.try_acquire().ok())
                })
            })
            .collect();
        let held: Vec<_> = sessions.into_iter().map(|s| s.join().unwrap()).collect();
        let per_ip = held.iter().filter(|(p, _)| p.is_some()).count();
        let global = held.iter().filter(|(_, g)| g.is_some()).count();
        assert_eq!(per_ip, cap_size as usize);
        assert_eq!(global, cap_size as usize);
        assert_eq!(cap.count(&ip(1)), cap_size);
        drop(held);
        assert!(cap.is_empty());
        assert_eq!(total.count(), 0);
    }
}
