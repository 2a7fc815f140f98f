//! A loopback TCP load balancer: the stand-in for what sits in front of a real deployment,
//! so a client that knows one URL fails over when an instance dies.

use std::fmt;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::{JoinHandle, JoinSet};

/// How long one backend may take to accept before the next is tried.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);

/// Listens on `127.0.0.1:0` and forwards each new connection, byte for byte, to the first
/// backend in list order that accepts it. A connection no backend accepts is closed.
/// Established connections end when either side closes (an instance killed with SIGKILL
/// resets them, which the client sees), or all at once with
/// [`Balancer::drop_connections`]. Stops on drop.
///
/// With no backends and its connections dropped it is also a network partition between
/// its clients and what it forwards to (for example between one server and Redis).
pub struct Balancer {
    addr: SocketAddr,
    backends: Arc<Mutex<Vec<SocketAddr>>>,
    routed: Arc<Mutex<Vec<Option<SocketAddr>>>>,
    /// Bumped to end every established connection.
    cut: watch::Sender<u64>,
    task: JoinHandle<()>,
}

impl fmt::Debug for Balancer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Balancer")
            .field("addr", &self.addr)
            .field("backends", &self.backends())
            .finish_non_exhaustive()
    }
}

impl Balancer {
    /// Starts forwarding to `backends`, tried in this order.
    ///
    /// # Panics
    /// When 127.0.0.1:0 cannot be bound.
    pub async fn start(backends: Vec<SocketAddr>) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind 127.0.0.1:0");
        let addr = listener.local_addr().expect("local address");
        let backends = Arc::new(Mutex::new(backends));
        let routed = Arc::new(Mutex::new(Vec::new()));
        let (cut, cut_rx) = watch::channel(0);
        let task = tokio::spawn(accept_loop(
            listener,
            Arc::clone(&backends),
            Arc::clone(&routed),
            cut_rx,
        ));
        Self {
            addr,
            backends,
            routed,
            cut,
            task,
        }
    }

    /// Where clients connect.
    #[must_use]
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `ws://<balancer>/ws`.
    #[must_use]
    pub fn ws_url(&self) -> String {
        format!("ws://{}/ws", self.addr)
    }

    /// The backends, in the order they are tried.
    #[must_use]
    pub fn backends(&self) -> Vec<SocketAddr> {
        self.backends.lock().expect("balancer lock").clone()
    }

    /// Replaces the backends (new connections only).
    pub fn set_backends(&self, backends: Vec<SocketAddr>) {
        *self.backends.lock().expect("balancer lock") = backends;
    }

    /// Where each connection accepted so far went, in the order they were routed (`None`:
    /// no backend accepted).
    #[must_use]
    pub fn routed(&self) -> Vec<Option<SocketAddr>> {
        self.routed.lock().expect("balancer lock").clone()
    }

    /// Closes every established connection at once (both sides see their socket closed).
    pub fn drop_connections(&self) {
        self.cut.send_modify(|n| *n += 1);
    }

    /// A partition: refuses new connections and closes the established ones. Undo with
    /// [`Balancer::set_backends`].
    pub fn partition(&self) {
        self.set_backends(Vec::new());
        self.drop_connections();
    }
}

impl Drop for Balancer {
    fn drop(&mut self) {
        // Aborting the accept loop drops its JoinSet, which aborts every forwarding task.
        self.task.abort();
    }
}

async fn accept_loop(
    listener: TcpListener,
    backends: Arc<Mutex<Vec<SocketAddr>>>,
    routed: Arc<Mutex<Vec<Option<SocketAddr>>>>,
    cut: watch::Receiver<u64>,
) {
    let mut connections = JoinSet::new();
    loop {
        // Reap finished forwarders so the set stays small.
        while connections.try_join_next().is_some() {}
        let Ok((client, _)) = listener.accept().await else {
            continue;
        };
        let candidates = backends.lock().expect("balancer lock").clone();
        let routed = Arc::clone(&routed);
        let mut cut = cut.clone();
        cut.mark_unchanged();
        connections.spawn(async move {
            let mut chosen = None;
            for backend in candidates {
                if let Ok(Ok(stream)) =
                    tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(backend)).await
                {
                    chosen = Some((backend, stream));
                    break;
                }
            }
            routed
                .lock()
                .expect("balancer lock")
                .push(chosen.as_ref().map(|(addr, _)| *addr));
            let Some((_, mut server)) = chosen else {
                return;
            };
            let mut client = client;
            let _ = client.set_nodelay(true);
            let _ = server.set_nodelay(true);
            // Ends when both directions are done or either fails (a killed backend resets),
            // or when cut: dropping both sockets closes them.
            tokio::select! {
                _ = tokio::io::copy_bidirectional(&mut client, &mut server) => {}
                _ = cut.changed() => {}
            }
        });
    }
}
