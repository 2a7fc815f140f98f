//! Fifty Redis crashes and restarts leave no task and no memory behind. Alone in its binary,
//! so the process's memory is this test's.

mod contract;
mod faults;

use std::time::Duration;

use switchboard_backplane::{Backplane, Event, HealthState, RedisBackplane};
use switchboard_test_support::RedisServer;

use contract::{WAIT, next_event};
use faults::{fast_config, health_becomes};

/// Resident memory of this process, in bytes.
fn resident_bytes() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap();
    let pages: u64 = statm.split_whitespace().nth(1).unwrap().parse().unwrap();
    pages * 4096
}

async fn cycle(server: &mut RedisServer, bp: &RedisBackplane) {
    server.kill().unwrap();
    health_becomes(bp, HealthState::Degraded, WAIT).await;
    server.restart().unwrap();
    health_becomes(bp, HealthState::Up, WAIT).await;
}

#[tokio::test]
async fn fifty_reconnect_cycles_leave_no_tasks_or_memory_behind() {
    let mut server = RedisServer::spawn();
    let config = fast_config().backoff_max(Duration::from_millis(50));
    let bp = RedisBackplane::connect(server.url(), config).await.unwrap();
    health_becomes(&bp, HealthState::Up, WAIT).await;
    let mut rx = bp.events();
    for i in 0..20 {
        bp.subscribe(&format!("room:{i}")).await.unwrap();
    }
    bp.presence_set("room:0", "c1", "member".into())
        .await
        .unwrap();

    let metrics = tokio::runtime::Handle::current().metrics();
    for _ in 0..5 {
        cycle(&mut server, &bp).await;
    }
    let tasks = metrics.num_alive_tasks();
    let memory = resident_bytes();
    for _ in 0..50 {
        cycle(&mut server, &bp).await;
    }
    assert_eq!(bp.stats().reconnects, 55);
    // Old connections' driver tasks end as soon as they see their handles gone.
    tokio::time::timeout(WAIT, async {
        while metrics.num_alive_tasks() > tasks {
            tokio::task::yield_now().await;
        }
    })
    .await
    .unwrap_or_else(|_| panic!("{} tasks, {tasks} before", metrics.num_alive_tasks()));
    let grown = resident_bytes().saturating_sub(memory);
    assert!(grown < 4 << 20, "resident memory grew by {grown} bytes");

    // Still fully working: subscriptions and members came back every time.
    bp.publish("room:7", "after fifty".into()).await.unwrap();
    loop {
        if let Event::Message(m) = next_event(&mut rx).await {
            assert_eq!(m.data, "after fifty");
            break;
        }
    }
    assert_eq!(bp.presence_list("room:0").await.unwrap().len(), 1);
}
