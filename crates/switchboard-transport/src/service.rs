//! The WebSocket endpoint as a [`tower_service::Service`], for routers such as axum's.

use std::convert::Infallible;
use std::fmt;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{Context, Poll};

use http::{Extensions, Request, Response, StatusCode};
use switchboard_backplane::{Backplane, BoxBackplane};

use crate::transport::{ResponseBody, Transport, UpgradeFuture, reject};

/// The address a connection comes from, as a request extension: what
/// [`WebSocketService`] reads by default. A host whose server does not put the peer address
/// in the request itself inserts it (a `hyper` service, a tower layer), or points the
/// service at its own extension with [`WebSocketService::peer_from`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PeerAddr(pub SocketAddr);

/// Where a [`WebSocketService`] finds the peer address among a request's extensions.
pub type PeerFrom = fn(&Extensions) -> Option<SocketAddr>;

fn peer_addr_extension(extensions: &Extensions) -> Option<SocketAddr> {
    extensions.get::<PeerAddr>().map(|peer| peer.0)
}

/// The transport's WebSocket endpoint as a [`tower_service::Service`]
/// ([`Transport::service`]): every request is an upgrade ([`Transport::upgrade`] answers
/// it), so route only the endpoint's path to it. It never fails (`Error = Infallible`) and
/// is always ready, so it mounts in axum with `route_service`, without axum's `ws`
/// feature:
///
/// ```no_run
/// # async fn app(transport: switchboard_transport::Transport) {
/// use std::net::SocketAddr;
/// use axum::extract::ConnectInfo;
///
/// let ws = transport
///     .service()
///     .peer_from(|ext| ext.get::<ConnectInfo<SocketAddr>>().map(|info| info.0));
/// let app = axum::Router::new().route_service("/ws", ws);
/// let listener = tokio::net::TcpListener::bind("127.0.0.1:8080").await.unwrap();
/// axum::serve(listener, app.into_make_service_with_connect_info::<SocketAddr>())
///     .await
///     .unwrap();
/// # }
/// ```
///
/// The per-address caps and budgets need the peer address, which tower has no standard place
/// for: by default the service reads a [`PeerAddr`] extension; [`peer_from`](Self::peer_from)
/// reads another (axum's `ConnectInfo`, as above). A request without one is answered 500
/// (`{"error":"internal",…}`, and an error logged): a deployment error, never served with a
/// made-up address.
pub struct WebSocketService<B: Backplane = BoxBackplane> {
    transport: Transport<B>,
    peer_from: PeerFrom,
}

impl<B: Backplane> Clone for WebSocketService<B> {
    fn clone(&self) -> Self {
        Self {
            transport: self.transport.clone(),
            peer_from: self.peer_from,
        }
    }
}

impl<B: Backplane> fmt::Debug for WebSocketService<B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WebSocketService")
            .field("transport", &self.transport)
            .finish_non_exhaustive()
    }
}

impl<B: Backplane> WebSocketService<B> {
    pub(crate) fn new(transport: Transport<B>) -> Self {
        Self {
            transport,
            peer_from: peer_addr_extension,
        }
    }

    /// Reads the peer address with `peer_from` instead of from a [`PeerAddr`] extension.
    #[must_use]
    pub fn peer_from(mut self, peer_from: PeerFrom) -> Self {
        self.peer_from = peer_from;
        self
    }
}

impl<B: Backplane, Body> tower_service::Service<Request<Body>> for WebSocketService<B> {
    type Response = Response<ResponseBody>;
    type Error = Infallible;
    type Future = ServiceFuture;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: Request<Body>) -> ServiceFuture {
        match (self.peer_from)(req.extensions()) {
            Some(peer) => ServiceFuture(Ok(self.transport.upgrade(req, peer))),
            None => {
                tracing::error!(
                    "WebSocket upgrade without a peer address: insert a PeerAddr extension, or \
                     set WebSocketService::peer_from (axum: ConnectInfo<SocketAddr>)"
                );
                ServiceFuture(Err(Some(reject(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "internal",
                    "the server does not know the connection's address",
                ))))
            }
        }
    }
}

/// The future of [`WebSocketService`]'s response.
#[must_use = "the upgrade is answered only when awaited"]
pub struct ServiceFuture(Result<UpgradeFuture, Option<Response<ResponseBody>>>);

impl fmt::Debug for ServiceFuture {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("ServiceFuture").finish_non_exhaustive()
    }
}

impl Future for ServiceFuture {
    type Output = Result<Response<ResponseBody>, Infallible>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match &mut self.0 {
            Ok(upgrade) => Pin::new(upgrade).poll(cx).map(Ok),
            Err(response) => Poll::Ready(Ok(response
                .take()
                .expect("a ServiceFuture is not polled after it completed"))),
        }
    }
}
