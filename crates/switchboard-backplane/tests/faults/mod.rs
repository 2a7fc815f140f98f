//! Helpers for the Redis fault tests: a fast configuration, bounded health waits, and a TCP
//! proxy that cuts one instance off from Redis (a partition) while others stay connected.

#![allow(dead_code, unreachable_pub)]

use std::net::SocketAddr;
use std::time::Duration;

use switchboard_backplane::{Backplane, Health, HealthState, RedisBackplane, RedisBackplaneConfig};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio::time::timeout;

pub const PROBE: Duration = Duration::from_millis(200);

/// A prefix no other test uses.
pub fn unique_prefix() -> String {
    format!(
        "f{:x}:",
        std::hash::BuildHasher::hash_one(
            &std::collections::hash_map::RandomState::new(),
            std::time::SystemTime::now(),
        )
    )
}

/// Short probe, timeouts and backoff, so faults show (and heal) quickly.
pub fn fast_config() -> RedisBackplaneConfig {
    RedisBackplaneConfig::default()
        .prefix(unique_prefix())
        .probe_interval(PROBE)
        .command_timeout(Duration::from_millis(300))
        .connect_timeout(Duration::from_millis(300))
        .backoff_initial(Duration::from_millis(20))
        .backoff_max(Duration::from_millis(200))
}

/// Waits (at most `within`) for the health to reach `state`.
pub async fn health_becomes(bp: &RedisBackplane, state: HealthState, within: Duration) -> Health {
    let mut health = bp.health();
    timeout(within, health.wait_for(|h| h.state == state))
        .await
        .unwrap_or_else(|_| panic!("health did not become {state} within {within:?}"))
        .unwrap()
        .clone()
}

/// A TCP proxy to Redis whose link can be cut (every connection closed, new ones refused)
/// and restored.
pub struct Proxy {
    port: u16,
    open: watch::Sender<bool>,
    task: JoinHandle<()>,
}

impl Proxy {
    pub async fn start(upstream: SocketAddr) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let (open, open_rx) = watch::channel(true);
        let task = tokio::spawn(async move {
            while let Ok((mut client, _)) = listener.accept().await {
                if !*open_rx.borrow() {
                    continue;
                }
                let mut open_rx = open_rx.clone();
                tokio::spawn(async move {
                    let Ok(mut server) = TcpStream::connect(upstream).await else {
                        return;
                    };
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut client, &mut server) => {}
                        _ = open_rx.wait_for(|open| !*open) => {}
                    }
                });
            }
        });
        Self { port, open, task }
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    pub fn cut(&self) {
        self.open.send_replace(false);
    }

    pub fn restore(&self) {
        self.open.send_replace(true);
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.cut();
        self.task.abort();
    }
}
