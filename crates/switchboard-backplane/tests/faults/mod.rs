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
/// and restored, or held: what the instance sends waits in the proxy (Redis hears nothing
/// new) while what Redis sends, pub/sub pushes included, still arrives.
pub struct Proxy {
    port: u16,
    open: watch::Sender<bool>,
    held: watch::Sender<bool>,
    task: JoinHandle<()>,
}

/// Copies `from` to `to`; while `held` says so, what was read waits before it is written.
async fn forward(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    mut held: Option<watch::Receiver<bool>>,
) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut buf = vec![0; 16 * 1024];
    loop {
        let n = match from.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        if let Some(held) = held.as_mut()
            && held.wait_for(|held| !*held).await.is_err()
        {
            return;
        }
        if to.write_all(&buf[..n]).await.is_err() {
            return;
        }
    }
}

impl Proxy {
    pub async fn start(upstream: SocketAddr) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let (open, open_rx) = watch::channel(true);
        let (held, held_rx) = watch::channel(false);
        let task = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                if !*open_rx.borrow() {
                    continue;
                }
                let mut open_rx = open_rx.clone();
                let held_rx = held_rx.clone();
                tokio::spawn(async move {
                    let Ok(server) = TcpStream::connect(upstream).await else {
                        return;
                    };
                    let (client_read, client_write) = client.into_split();
                    let (server_read, server_write) = server.into_split();
                    tokio::select! {
                        () = forward(client_read, server_write, Some(held_rx)) => {}
                        () = forward(server_read, client_write, None) => {}
                        _ = open_rx.wait_for(|open| !*open) => {}
                    }
                });
            }
        });
        Self {
            port,
            open,
            held,
            task,
        }
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

    /// Holds what instances send to Redis (commands wait in the proxy); pushes still arrive.
    pub fn hold(&self) {
        self.held.send_replace(true);
    }

    /// Lets what was held (and what follows) through.
    pub fn release(&self) {
        self.held.send_replace(false);
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.cut();
        self.task.abort();
    }
}
