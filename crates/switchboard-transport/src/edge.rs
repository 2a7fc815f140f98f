//! The accept loop: the one place where TCP connections are accepted, admitted, optionally
//! wrapped (TLS), served HTTP/1.1, and `/ws` upgraded.
//!
//! A host composes it: [`Transport::accept_loop`] takes the listener, and the
//! [`AcceptLoop`] it returns takes a [`WrapStream`] step (a TLS handshake), the host's own
//! [`Routes`] for every other path, a stop signal and a [`TaskTracker`] for the connections.
//! [`Transport::serve`] is the loop with none of them.

use std::convert::Infallible;
use std::fmt;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;

use http::header::{self, HeaderValue};
use http::{Method, Request, Response, StatusCode};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use switchboard_backplane::Backplane;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::transport::{ResponseBody, Transport, reject};

/// What the accept loop does with a TCP connection it admitted, before serving HTTP on it:
/// a TLS handshake, typically. [`PlainTcp`] serves the connection as it is.
///
/// The transport bounds the step by
/// [`handshake_timeout`](crate::TransportConfig::handshake_timeout).
pub trait WrapStream: Send + Sync + 'static {
    /// The stream HTTP is served on.
    type Stream: AsyncRead + AsyncWrite + Unpin + Send + 'static;
    /// Why the step failed (logged at debug level, with the peer).
    type Error: fmt::Display + Send;

    /// Whether the connection speaks plain HTTP from its first byte, so that a connection
    /// over the caps can be answered 429 or 503 in plain text before it is dropped
    /// ([`Transport::refuse`]). `false` (the default) for TLS: its clients cannot read a
    /// plain answer, they just see the close.
    fn is_plain(&self) -> bool {
        false
    }

    /// Turns the accepted `stream` from `peer` into the stream HTTP is served on.
    fn wrap(
        &self,
        stream: TcpStream,
        peer: SocketAddr,
    ) -> impl Future<Output = Result<Self::Stream, Self::Error>> + Send;
}

/// Plain TCP: the connection is served as accepted, and refusals are answered in plain
/// HTTP. Sessions on plain TCP get the fan-out's direct writes.
#[derive(Debug, Clone, Copy, Default)]
pub struct PlainTcp;

impl WrapStream for PlainTcp {
    type Stream = TcpStream;
    type Error = Infallible;

    fn is_plain(&self) -> bool {
        true
    }

    fn wrap(
        &self,
        stream: TcpStream,
        _peer: SocketAddr,
    ) -> impl Future<Output = Result<TcpStream, Infallible>> + Send {
        std::future::ready(Ok(stream))
    }
}

/// The host's HTTP routes: every request the accept loop serves but `/ws`, which the
/// transport answers itself. Implemented by every `Fn(Request<Incoming>, SocketAddr) ->
/// impl Future<Output = Response<ResponseBody>>` that is `Clone + Send + Sync + 'static`;
/// [`NotFound`] answers 404 to everything.
pub trait Routes: Clone + Send + Sync + 'static {
    /// Answers `req`, which came from `peer`.
    fn call(
        &self,
        req: Request<Incoming>,
        peer: SocketAddr,
    ) -> impl Future<Output = Response<ResponseBody>> + Send;
}

impl<F, Fut> Routes for F
where
    F: Fn(Request<Incoming>, SocketAddr) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = Response<ResponseBody>> + Send,
{
    fn call(
        &self,
        req: Request<Incoming>,
        peer: SocketAddr,
    ) -> impl Future<Output = Response<ResponseBody>> + Send {
        self(req, peer)
    }
}

/// No routes besides `/ws`: every other request is answered 404
/// `{"error":"not_found","message":"no such endpoint"}`.
#[derive(Debug, Clone, Copy, Default)]
pub struct NotFound;

impl Routes for NotFound {
    fn call(
        &self,
        _req: Request<Incoming>,
        _peer: SocketAddr,
    ) -> impl Future<Output = Response<ResponseBody>> + Send {
        std::future::ready(reject(
            StatusCode::NOT_FOUND,
            "not_found",
            "no such endpoint",
        ))
    }
}

/// The accept loop of a [`Transport`], configured by its methods and run by
/// [`run`](Self::run); [`Transport::accept_loop`] makes one.
///
/// For each connection it accepts it, in this order: admits it against the caps before
/// reading anything ([`Transport::admit`]; over them it is answered 429 or 503 on plain
/// TCP, closed otherwise), sets `TCP_NODELAY`, runs the [`WrapStream`] step within the
/// [`handshake_timeout`](crate::TransportConfig::handshake_timeout), and serves HTTP/1.1
/// with upgrades: `/ws` is the transport's WebSocket endpoint (GET, and HEAD which is
/// answered 400; any other method 405), every other path goes to the [`Routes`]. An accept
/// error pauses the loop briefly and is logged at most once a second
/// ([`Transport::accept_failed`]).
///
/// When the stop signal fires the loop stops accepting (the listener closes when `run`
/// returns) and every connection it serves is shut down gracefully: requests in flight are
/// answered, then the connection closes. WebSocket sessions are not affected: they end with
/// [`Transport::shutdown`].
#[must_use = "the loop accepts nothing until `run` is awaited"]
pub struct AcceptLoop<B: Backplane, W = PlainTcp, R = NotFound> {
    transport: Transport<B>,
    listener: TcpListener,
    wrap: W,
    routes: R,
    stop: CancellationToken,
    tracker: Option<TaskTracker>,
}

impl<B: Backplane, W, R> fmt::Debug for AcceptLoop<B, W, R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AcceptLoop")
            .field("listener", &self.listener.local_addr().ok())
            .field("stopped", &self.stop.is_cancelled())
            .field("tracked", &self.tracker.is_some())
            .finish_non_exhaustive()
    }
}

impl<B: Backplane> AcceptLoop<B> {
    pub(crate) fn new(transport: Transport<B>, listener: TcpListener) -> Self {
        Self {
            transport,
            listener,
            wrap: PlainTcp,
            routes: NotFound,
            stop: CancellationToken::new(),
            tracker: None,
        }
    }
}

impl<B: Backplane, W, R> AcceptLoop<B, W, R> {
    /// Runs `wrap` on every admitted connection before serving HTTP on it (default:
    /// [`PlainTcp`]).
    pub fn wrap<W2: WrapStream>(self, wrap: W2) -> AcceptLoop<B, W2, R> {
        AcceptLoop {
            transport: self.transport,
            listener: self.listener,
            wrap,
            routes: self.routes,
            stop: self.stop,
            tracker: self.tracker,
        }
    }

    /// Answers every request but `/ws` with `routes` (default: [`NotFound`]).
    pub fn routes<R2: Routes>(self, routes: R2) -> AcceptLoop<B, W, R2> {
        AcceptLoop {
            transport: self.transport,
            listener: self.listener,
            wrap: self.wrap,
            routes,
            stop: self.stop,
            tracker: self.tracker,
        }
    }

    /// Stops the loop, and shuts its connections down gracefully, when `stop` is cancelled
    /// (default: never).
    pub fn stop(mut self, stop: CancellationToken) -> Self {
        self.stop = stop;
        self
    }

    /// Runs each connection as a task of `tracker`, so that the host can wait for them
    /// after the stop (default: untracked tasks).
    pub fn track(mut self, tracker: TaskTracker) -> Self {
        self.tracker = Some(tracker);
        self
    }
}

impl<B: Backplane, W: WrapStream, R: Routes> AcceptLoop<B, W, R> {
    /// Accepts connections until the stop signal, serving each in a task of its own.
    ///
    /// # Errors
    /// None today: a failed accept concerns one connection, so it is logged and the loop
    /// goes on. The result leaves room for a failure that would end the loop.
    pub async fn run(self) -> io::Result<()> {
        let Self {
            transport,
            listener,
            wrap,
            routes,
            stop,
            tracker,
        } = self;
        let wrap = Arc::new(wrap);
        loop {
            let (stream, peer) = tokio::select! {
                accepted = listener.accept() => match accepted {
                    Ok(accepted) => accepted,
                    Err(err) => {
                        // Per-connection failures (a reset before accept, descriptor pressure)
                        // must not stop the server; a pause keeps EMFILE from spinning, and the
                        // log gets at most a line a second.
                        tokio::time::sleep(transport.accept_failed(&err)).await;
                        continue;
                    }
                },
                () = stop.cancelled() => return Ok(()),
            };
            // Counted from accept: over the caps, refused before anything is read.
            let admission = match transport.admit(peer) {
                Ok(admission) => admission,
                Err(refused) => {
                    if wrap.is_plain() {
                        transport.refuse(refused, &stream);
                    }
                    continue;
                }
            };
            let _ = stream.set_nodelay(true);
            let connection = {
                let transport = transport.clone();
                let wrap = Arc::clone(&wrap);
                let routes = routes.clone();
                let stop = stop.clone();
                async move {
                    // For plain TCP the step is ready at once: the timer is never armed.
                    let timeout = transport.config().handshake_timeout;
                    match tokio::time::timeout(timeout, wrap.wrap(stream, peer)).await {
                        Ok(Ok(io)) => transport.serve_http(io, peer, routes, &stop).await,
                        Ok(Err(err)) => tracing::debug!(%peer, %err, "handshake failed"),
                        Err(_) => tracing::debug!(%peer, "handshake timed out"),
                    }
                    drop(admission);
                }
            };
            match &tracker {
                Some(tracker) => drop(tracker.spawn(connection)),
                None => drop(tokio::spawn(connection)),
            }
        }
    }
}

impl<B: Backplane> Transport<B> {
    /// The accept loop on `listener`, serving `/ws` and answering every other path 404
    /// until configured otherwise: see [`AcceptLoop`]. [`serve`](Self::serve) is this loop
    /// stopped by [`shutdown`](Self::shutdown).
    pub fn accept_loop(&self, listener: TcpListener) -> AcceptLoop<B> {
        AcceptLoop::new(self.clone(), listener)
    }

    /// Accepts connections on `listener` and serves `/ws` (every other path 404) until
    /// [`Transport::shutdown`] begins: [`accept_loop`](Self::accept_loop) with its
    /// defaults, stopped by the shutdown.
    ///
    /// # Errors
    /// When accepting fails in a way that is not about one connection.
    pub async fn serve(&self, listener: TcpListener) -> std::io::Result<()> {
        self.accept_loop(listener).stop(self.stopping()).run().await
    }

    /// Serves HTTP/1.1 on one accepted connection: `/ws` upgrades, anything else is 404.
    /// `io` may be a TLS stream. The connection is served as [`accept_loop`](Self::accept_loop)
    /// serves its own, but without admission or a stop signal.
    ///
    /// # Errors
    /// When the HTTP connection fails.
    pub async fn serve_connection<I>(&self, io: I, peer: SocketAddr) -> Result<(), hyper::Error>
    where
        I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        self.http1()
            .serve_connection(TokioIo::new(io), http_service(self.clone(), peer, NotFound))
            .with_upgrades()
            .await
    }

    /// Serves HTTP/1.1 (with upgrades) on one connection until it ends or `stop` fires
    /// (then gracefully); logs how a failed connection ended.
    async fn serve_http<I, R>(&self, io: I, peer: SocketAddr, routes: R, stop: &CancellationToken)
    where
        I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
        R: Routes,
    {
        let connection = self
            .http1()
            .serve_connection(TokioIo::new(io), http_service(self.clone(), peer, routes))
            .with_upgrades();
        tokio::pin!(connection);
        let result = tokio::select! {
            result = connection.as_mut() => result,
            () = stop.cancelled() => {
                connection.as_mut().graceful_shutdown();
                connection.await
            }
        };
        if let Err(err) = result {
            tracing::debug!(%peer, %err, "HTTP connection ended with an error");
        }
    }

    /// `/ws`: GET upgrades (HEAD is answered as a malformed upgrade), any other method 405.
    async fn websocket_endpoint(
        &self,
        req: Request<Incoming>,
        peer: SocketAddr,
    ) -> Response<ResponseBody> {
        if req.method() == Method::GET || req.method() == Method::HEAD {
            self.upgrade(req, peer).await
        } else {
            let mut response = reject(
                StatusCode::METHOD_NOT_ALLOWED,
                "method_not_allowed",
                "allowed: GET, HEAD",
            );
            response
                .headers_mut()
                .insert(header::ALLOW, HeaderValue::from_static("GET, HEAD"));
            response
        }
    }
}

/// The HTTP service of one connection from `peer`: `/ws` is `transport`'s, `routes` answers
/// the rest.
pub(crate) fn http_service<B: Backplane, R: Routes>(
    transport: Transport<B>,
    peer: SocketAddr,
    routes: R,
) -> impl hyper::service::Service<
    Request<Incoming>,
    Response = Response<ResponseBody>,
    Error = Infallible,
    Future = impl Future<Output = Result<Response<ResponseBody>, Infallible>> + Send,
> + Send
+ 'static {
    hyper::service::service_fn(move |req: Request<Incoming>| {
        let transport = transport.clone();
        let routes = routes.clone();
        async move {
            Ok::<_, Infallible>(if req.uri().path() == "/ws" {
                transport.websocket_endpoint(req, peer).await
            } else {
                routes.call(req, peer).await
            })
        }
    })
}
