//! The client handle and its builder.

use std::num::{NonZeroU32, NonZeroUsize};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use futures_util::Stream;
use parking_lot::Mutex;
use rand::SeedableRng;
use rand::rngs::SmallRng;
use switchboard_protocol::{
    ChannelName, ClientFrame, ClientId, EventType, Payload, PresenceUpdate, Priority, Publish,
};
use switchboard_queue::{DeliveryConfig, DeliveryQueue};
use tokio::sync::{Notify, broadcast, mpsc, oneshot, watch};
use tokio_tungstenite::Connector;
use tokio_tungstenite::tungstenite::http::Uri;

use crate::command::Command;
use crate::connect::{Endpoint, Token};
use crate::driver::{Driver, Settings, Shared};
use crate::publish::{Outbox, PublishOptions, PublishOutcome, QueuedPublish};
use crate::quality::QualityTracker;
use crate::{
    Backoff, ClientError, ConnectionState, DisconnectReason, Heartbeat, PublishHandle, Quality,
    QualityConfig, QueueConfig, RECONNECT_BACKOFF, Result, ServerSubscriptionEvent, Subscription,
};

/// How many publish outcomes [`Client::publish_outcomes`] buffers for a slow receiver.
const OUTCOMES_CAPACITY: usize = 256;

/// A handle to a switchboard connection that reconnects by itself.
///
/// Cheap to clone. A background task owns the socket; it ends when the last handle is
/// dropped or [`Client::close`] is called, and then every [`Subscription`] ends.
#[derive(Clone)]
pub struct Client(Arc<ClientInner>);

struct ClientInner {
    url: String,
    client_id: ClientId,
    shared: Arc<Shared>,
    commands: mpsc::UnboundedSender<Command>,
    next_listener: AtomicU64,
    next_publish: AtomicU64,
    /// Makes this client's publish ids unique among clients (and across restarts of a
    /// file-backed queue).
    id_prefix: String,
    subscription_buffer: usize,
    max_publish_bytes: usize,
}

impl Drop for ClientInner {
    fn drop(&mut self) {
        let _ = self.commands.send(Command::Close { done: None });
    }
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("url", &self.0.url)
            .field("state", &*self.0.shared.state.borrow())
            .field("queue_len", &self.queue_len())
            .finish_non_exhaustive()
    }
}

impl Client {
    /// Starts building a client for `url` (`ws://host:port/ws` or `wss://…`).
    pub fn builder(url: impl Into<String>) -> ClientBuilder {
        ClientBuilder::new(url.into())
    }

    /// The id this client gives for itself on every connection (see
    /// [`ClientBuilder::client_id`]).
    #[must_use]
    pub fn client_id(&self) -> &ClientId {
        &self.0.client_id
    }

    /// The connection state, updated as it changes.
    #[must_use]
    pub fn state(&self) -> watch::Receiver<ConnectionState> {
        self.0.shared.state.subscribe()
    }

    /// Waits until the client is connected.
    ///
    /// # Errors
    /// The reason, when the client stopped for good instead
    /// ([`ConnectionState::is_final`]).
    ///
    /// # Cancel safety
    /// Cancel safe: it only observes.
    pub async fn connected(&self) -> Result<(), DisconnectReason> {
        let mut state = self.state();
        let state = state
            .wait_for(|s| s.is_connected() || s.is_final())
            .await
            .map_err(|_| DisconnectReason::ClientClosed)?;
        match state.reason() {
            Some(reason) => Err(reason.clone()),
            None => Ok(()),
        }
    }

    /// Subscribes to `channel`. The subscription is made as soon as the client is
    /// connected, restored after every reconnect, and dropped with the returned stream.
    /// Several subscriptions to one channel share one server subscription.
    ///
    /// # Errors
    /// [`ClientError::InvalidName`] for an invalid channel name, [`ClientError::Closed`]
    /// once the client has stopped.
    pub fn subscribe(&self, channel: &str) -> Result<Subscription> {
        let channel = ChannelName::new(channel)?;
        let id = self.0.next_listener.fetch_add(1, Ordering::Relaxed);
        let (subscription, listener) = Subscription::new(
            channel.clone(),
            id,
            self.0.subscription_buffer,
            self.0.commands.clone(),
        );
        if self.is_closed()
            || self
                .0
                .commands
                .send(Command::Subscribe { channel, listener })
                .is_err()
        {
            return Err(ClientError::Closed);
        }
        Ok(subscription)
    }

    /// Publishes `payload` as an `event` on `channel`. The publish goes into the offline
    /// queue with an id of its own, is sent when the client is connected (most important
    /// first), and is retried until the server acknowledges it, up to
    /// [`QueueConfig::max_attempts`]. The handle resolves to the acknowledgement or to
    /// why there was none.
    ///
    /// A retry after a lost acknowledgement carries the same id, and the server answers a
    /// repeated id with the first publish's offset instead of delivering it again (see the
    /// crate documentation for the window), so a publish is delivered once.
    ///
    /// # Errors
    /// [`ClientError::InvalidName`] for an invalid channel or event type,
    /// [`ClientError::TooLarge`] for a publish larger than the server accepts,
    /// [`ClientError::QueueFull`] when nothing less important can be evicted,
    /// [`ClientError::Queue`] when a file-backed queue cannot record it,
    /// [`ClientError::Closed`] once the client has stopped.
    pub fn publish(
        &self,
        channel: &str,
        event: &str,
        payload: impl Into<Payload>,
        priority: Priority,
    ) -> Result<PublishHandle> {
        self.publish_with(
            channel,
            event,
            payload,
            PublishOptions::default().priority(priority),
        )
    }

    /// [`publish`](Self::publish) with every option: the priority, and whether this
    /// connection's own subscription skips the message
    /// ([`PublishOptions::exclude_self`]).
    ///
    /// # Errors
    /// As [`publish`](Self::publish).
    pub fn publish_with(
        &self,
        channel: &str,
        event: &str,
        payload: impl Into<Payload>,
        options: PublishOptions,
    ) -> Result<PublishHandle> {
        let PublishOptions {
            priority,
            exclude_self,
        } = options;
        let channel = ChannelName::new(channel)?;
        let event = EventType::new(event)?;
        if self.is_closed() {
            return Err(ClientError::Closed);
        }
        let n = self.0.next_publish.fetch_add(1, Ordering::Relaxed);
        let id = format!("{}-{n}", self.0.id_prefix);
        let frame = ClientFrame::Publish(Publish {
            event,
            channel,
            payload: payload.into(),
            id: Some(id.clone()),
            priority,
            exclude_self,
        })
        .encode();
        let max = self.0.max_publish_bytes;
        if frame.len() > max {
            return Err(ClientError::TooLarge {
                bytes: frame.len(),
                max,
            });
        }
        let handle = self
            .0
            .shared
            .outbox
            .lock()
            .push(QueuedPublish { id, frame }, priority)?;
        self.0.shared.wake.notify_one();
        Ok(handle)
    }

    /// Announces this connection's presence in every channel it is subscribed to (now or
    /// later; `update.channel` set: in that channel only). A presence without a channel is
    /// announced again after every reconnect.
    ///
    /// # Errors
    /// [`ClientError::Closed`] once the client has stopped.
    pub fn set_presence(&self, update: PresenceUpdate) -> Result<()> {
        self.0
            .commands
            .send(Command::Presence(update))
            .map_err(|_| ClientError::Closed)
    }

    /// Publishes in the offline queue, in any state (waiting, sent, waiting for a retry).
    #[must_use]
    pub fn queue_len(&self) -> usize {
        self.0.shared.outbox.lock().len()
    }

    /// The offline queue's length, updated as it changes.
    #[must_use]
    pub fn watch_queue_len(&self) -> watch::Receiver<usize> {
        self.0.shared.outbox.lock().watch_len()
    }

    /// Removes every publish from the offline queue (and its file); their handles resolve
    /// to [`PublishError::Cleared`](crate::PublishError::Cleared). Returns how many there
    /// were. A publish already sent may still reach the server.
    ///
    /// # Errors
    /// [`ClientError::Queue`] when a file-backed queue cannot be rewritten; nothing is
    /// removed.
    pub fn clear_queue(&self) -> Result<usize> {
        self.0.shared.outbox.lock().clear()
    }

    /// Every publish's outcome, as it happens, including publishes restored from a queue
    /// file. A receiver that falls more than 256 outcomes behind gets
    /// `RecvError::Lagged`.
    #[must_use]
    pub fn publish_outcomes(&self) -> broadcast::Receiver<PublishOutcome> {
        self.0.shared.outcomes.subscribe()
    }

    /// The subscriptions the server makes for this connection, and their messages, from
    /// now on (see [`ServerSubscriptionEvent`]). A receiver that falls more than 256 events
    /// behind gets `RecvError::Lagged`: some messages were missed, and the channel's state
    /// should be refetched.
    #[must_use]
    pub fn server_subscriptions(&self) -> broadcast::Receiver<ServerSubscriptionEvent> {
        self.0.shared.server_events.subscribe()
    }

    /// The connection quality, updated after every ping, timeout and state change.
    #[must_use]
    pub fn quality(&self) -> watch::Receiver<Quality> {
        self.0.shared.quality.subscribe()
    }

    /// The connection quality as a stream: the current value first, then every change. A
    /// slow reader skips to the latest value.
    pub fn quality_updates(&self) -> impl Stream<Item = Quality> + Send + Unpin + 'static {
        let mut receiver = self.quality();
        receiver.mark_changed();
        Box::pin(futures_util::stream::unfold(
            receiver,
            |mut receiver| async move {
                receiver.changed().await.ok()?;
                let quality = receiver.borrow_and_update().clone();
                Some((quality, receiver))
            },
        ))
    }

    /// Closes the connection (with close code 1000) and stops the client. Publishes not
    /// yet acknowledged resolve to [`PublishError::Closed`](crate::PublishError::Closed);
    /// a file-backed queue keeps them for the next client. Returns once the state is
    /// [`ConnectionState::Disconnected`] (or immediately if the client had already
    /// stopped).
    pub async fn close(&self) {
        let (done, finished) = oneshot::channel();
        if self
            .0
            .commands
            .send(Command::Close { done: Some(done) })
            .is_ok()
        {
            let _ = finished.await;
        }
    }

    fn is_closed(&self) -> bool {
        self.0.shared.closed.load(Ordering::Acquire)
    }
}

/// Where `wss://` server certificates are checked against.
#[cfg(feature = "tls")]
#[derive(Debug)]
enum TlsRoots {
    Webpki,
    Store(rustls::RootCertStore),
    Pem(Vec<u8>),
    Config(Arc<rustls::ClientConfig>),
}

/// Builds a [`Client`]. Every setting has a documented default; only the URL is needed.
#[must_use]
pub struct ClientBuilder {
    url: String,
    token: Token,
    connect_timeout: Duration,
    backoff: Backoff,
    max_reconnect_attempts: Option<NonZeroU32>,
    heartbeat: Heartbeat,
    quality: QualityConfig,
    queue: QueueConfig,
    seed: Option<u64>,
    client_id: Option<ClientId>,
    subscription_buffer: NonZeroUsize,
    max_message_bytes: usize,
    max_publish_bytes: usize,
    #[cfg(feature = "persist")]
    queue_file: Option<std::path::PathBuf>,
    #[cfg(feature = "tls")]
    tls: TlsRoots,
}

impl std::fmt::Debug for ClientBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientBuilder")
            .field("url", &self.url)
            .field("token", &self.token)
            .field("connect_timeout", &self.connect_timeout)
            .field("backoff", &self.backoff)
            .field("max_reconnect_attempts", &self.max_reconnect_attempts)
            .field("heartbeat", &self.heartbeat)
            .field("quality", &self.quality)
            .field("queue", &self.queue)
            .finish_non_exhaustive()
    }
}

impl ClientBuilder {
    fn new(url: String) -> Self {
        Self {
            url,
            token: Token::None,
            connect_timeout: Duration::from_secs(10),
            backoff: RECONNECT_BACKOFF,
            max_reconnect_attempts: None,
            heartbeat: Heartbeat::default(),
            quality: QualityConfig::default(),
            queue: QueueConfig::default(),
            seed: None,
            client_id: None,
            subscription_buffer: NonZeroUsize::new(1024).expect("1024 is not zero"),
            max_message_bytes: 1 << 20,
            max_publish_bytes: switchboard_protocol::DEFAULT_MAX_MESSAGE_BYTES,
            #[cfg(feature = "persist")]
            queue_file: None,
            #[cfg(feature = "tls")]
            tls: TlsRoots::Webpki,
        }
    }

    /// A JWT sent as `Authorization: Bearer …` with every connection attempt. Default none
    /// (open mode). It never appears in `Debug` output. A token that expires ends the
    /// connection (4001) and every later attempt is refused: use
    /// [`token_source`](Self::token_source) for tokens that expire.
    pub fn token(mut self, token: impl Into<String>) -> Self {
        self.token = Token::Fixed(token.into());
        self
    }

    /// Where tokens come from: `source` is called for every connection attempt, and again
    /// before the token in use expires — at four fifths of its remaining lifetime, as the
    /// server's `expiresAt` says — whose result is sent as a `refresh` on the open
    /// connection, so it never closes for an expired token (Protocol v1 `refresh`). `None`
    /// means no token now: an attempt goes without one, a refresh is tried again 5 s later.
    /// Replaces [`token`](Self::token).
    ///
    /// ```
    /// # async fn login() -> Option<String> { Some("a.jwt.token".into()) }
    /// let builder = switchboard_client::Client::builder("ws://127.0.0.1:5200/ws")
    ///     .token_source(|| async { login().await });
    /// ```
    pub fn token_source<F, Fut>(mut self, source: F) -> Self
    where
        F: Fn() -> Fut + Send + Sync + 'static,
        Fut: std::future::Future<Output = Option<String>> + Send + 'static,
    {
        self.token = Token::Source(Arc::new(move || Box::pin(source())));
        self
    }

    /// How long one attempt may take, from TCP connect to the `welcome` frame; also the
    /// longest a write may block. Default 10 s.
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// When to reconnect: the delay before reconnect attempt `n` is
    /// [`backoff.delay(n, r)`](Backoff::delay) with `r` drawn from the client's generator
    /// (see [`seed`](Self::seed)). Default [`RECONNECT_BACKOFF`] (1 s × 1.5 up to 30 s, full
    /// jitter).
    pub fn backoff(mut self, backoff: Backoff) -> Self {
        self.backoff = backoff;
        self
    }

    /// Reconnect attempts in a row after which the client gives up
    /// ([`ConnectionState::Error`]); `None` (the default) never gives up.
    pub fn max_reconnect_attempts(mut self, attempts: Option<NonZeroU32>) -> Self {
        self.max_reconnect_attempts = attempts;
        self
    }

    /// The application-level heartbeat. Default [`Heartbeat::default`].
    pub fn heartbeat(mut self, heartbeat: Heartbeat) -> Self {
        self.heartbeat = heartbeat;
        self
    }

    /// What connection quality is computed over. Default [`QualityConfig::default`].
    pub fn quality(mut self, quality: QualityConfig) -> Self {
        self.quality = quality;
        self
    }

    /// The offline publish queue. Default [`QueueConfig::default`].
    pub fn queue(mut self, queue: QueueConfig) -> Self {
        self.queue = queue;
        self
    }

    /// Seeds the random generators of the reconnect and retry jitter, for reproducible
    /// delays in tests. Default: seeded by the operating system.
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = Some(seed);
        self
    }

    /// The id this client gives for itself on every connection (the `client` query
    /// parameter): the scope in which the server recognises a retried publish id. Default:
    /// a random one per client — kept in a file beside the [`queue_file`](Self::queue_file)
    /// when there is one, so publishes restored after a restart keep their scope. Set it to
    /// keep the scope across processes some other way; never share one between clients.
    pub fn client_id(mut self, id: ClientId) -> Self {
        self.client_id = Some(id);
        self
    }

    /// Events buffered per subscription before it counts as lagging
    /// ([`SubscriptionEvent::Lagged`](crate::SubscriptionEvent::Lagged)). Default 1024.
    pub fn subscription_buffer(mut self, events: NonZeroUsize) -> Self {
        self.subscription_buffer = events;
        self
    }

    /// The largest message accepted from the server, in bytes; a larger one ends the
    /// connection. Default 1 MiB.
    pub fn max_message_bytes(mut self, bytes: usize) -> Self {
        self.max_message_bytes = bytes;
        self
    }

    /// The largest publish frame the server accepts, in bytes: larger publishes are refused
    /// by [`Client::publish`] ([`ClientError::TooLarge`]) instead of closing the connection
    /// at every attempt. Default 64 KiB, the server's default.
    pub fn max_publish_bytes(mut self, bytes: usize) -> Self {
        self.max_publish_bytes = bytes;
        self
    }

    /// Keeps the offline queue in this file (created if missing), so publishes survive a
    /// restart of the application — the analogue of a browser's localStorage. Publishes
    /// restored from it are sent once connected; their outcomes go to
    /// [`Client::publish_outcomes`]. Only one client may use a file at a time.
    #[cfg(feature = "persist")]
    pub fn queue_file(mut self, path: impl Into<std::path::PathBuf>) -> Self {
        self.queue_file = Some(path.into());
        self
    }

    /// Checks `wss://` servers against these roots instead of the webpki roots.
    #[cfg(feature = "tls")]
    pub fn tls_roots(mut self, roots: rustls::RootCertStore) -> Self {
        self.tls = TlsRoots::Store(roots);
        self
    }

    /// Checks `wss://` servers against the certificates in this PEM text (for a private
    /// CA or a self-signed server) instead of the webpki roots. Parsed by
    /// [`build`](Self::build).
    #[cfg(feature = "tls")]
    pub fn tls_roots_pem(mut self, pem: impl Into<Vec<u8>>) -> Self {
        self.tls = TlsRoots::Pem(pem.into());
        self
    }

    /// Uses this rustls configuration for `wss://` as is (client certificates, ALPN, a
    /// custom verifier).
    #[cfg(feature = "tls")]
    pub fn tls_config(mut self, config: Arc<rustls::ClientConfig>) -> Self {
        self.tls = TlsRoots::Config(config);
        self
    }

    /// Starts the client: its background task connects right away and keeps connecting.
    ///
    /// # Errors
    /// [`ClientError::InvalidUrl`], [`ClientError::Tls`] for unusable TLS settings,
    /// [`ClientError::Queue`] when the queue file cannot be opened,
    /// [`ClientError::NoRuntime`] outside a Tokio runtime.
    pub fn build(self) -> Result<Client> {
        let runtime = tokio::runtime::Handle::try_current().map_err(|_| ClientError::NoRuntime)?;
        let connector = self.connector()?;
        let delivery = DeliveryConfig::default()
            .with_capacity(self.queue.capacity)
            .with_lease_timeout(self.queue.ack_timeout)
            .with_max_attempts(self.queue.max_attempts)
            .with_backoff(self.queue.retry_backoff)
            .with_seed(self.seed);
        let queue = self.open_queue(delivery)?;
        let client_id = self.resolve_client_id()?;
        let (outcomes, _) = broadcast::channel(OUTCOMES_CAPACITY);
        let (server_events, _) = broadcast::channel(OUTCOMES_CAPACITY);
        let (state, _) = watch::channel(ConnectionState::Connecting { attempt: 0 });
        let (quality, _) = watch::channel(Quality::offline());
        let shared = Arc::new(Shared {
            state,
            quality,
            outbox: Mutex::new(Outbox::new(queue, outcomes.clone())),
            wake: Notify::new(),
            outcomes,
            server_events,
            closed: AtomicBool::new(false),
        });
        let settings = Arc::new(Settings {
            endpoint: Endpoint {
                url: with_client_param(&self.url, &client_id),
                token: self.token,
                connect_timeout: self.connect_timeout,
                max_message_bytes: self.max_message_bytes,
                connector,
            },
            backoff: self.backoff,
            max_reconnect_attempts: self.max_reconnect_attempts,
            heartbeat: self.heartbeat,
            queue: self.queue,
        });
        let rng = match self.seed {
            Some(seed) => SmallRng::seed_from_u64(seed),
            None => rand::make_rng::<SmallRng>(),
        };
        let (commands, receiver) = mpsc::unbounded_channel();
        let tracker = QualityTracker::new(self.quality, self.heartbeat.timeout);
        let driver = Driver::new(settings, Arc::clone(&shared), receiver, tracker, rng);
        runtime.spawn(driver.run());
        Ok(Client(Arc::new(ClientInner {
            url: self.url,
            client_id,
            shared,
            commands,
            next_listener: AtomicU64::new(0),
            next_publish: AtomicU64::new(1),
            id_prefix: format!("{:032x}", rand::random::<u128>()),
            subscription_buffer: self.subscription_buffer.get(),
            max_publish_bytes: self.max_publish_bytes,
        })))
    }

    /// The id given, else the one kept beside the queue file (created on first use), else a
    /// new random one.
    fn resolve_client_id(&self) -> Result<ClientId> {
        if let Some(id) = &self.client_id {
            return Ok(id.clone());
        }
        #[cfg(feature = "persist")]
        if let Some(queue_file) = &self.queue_file {
            let mut path = queue_file.clone().into_os_string();
            path.push(".client-id");
            let path = std::path::PathBuf::from(path);
            let failed = |source| ClientError::ClientIdFile {
                path: path.clone(),
                source,
            };
            match std::fs::read_to_string(&path) {
                Ok(text) => {
                    if let Ok(id) = ClientId::new(text.trim()) {
                        return Ok(id);
                    }
                    tracing::warn!(path = %path.display(), "not a client id; replacing it");
                }
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(failed(e)),
            }
            let id = random_client_id();
            std::fs::write(&path, id.as_str()).map_err(failed)?;
            return Ok(id);
        }
        Ok(random_client_id())
    }

    fn open_queue(&self, config: DeliveryConfig) -> Result<DeliveryQueue<QueuedPublish>> {
        #[cfg(feature = "persist")]
        if let Some(path) = &self.queue_file {
            let (queue, recovery) =
                DeliveryQueue::open(path, config, switchboard_queue::StoreConfig::default())?;
            tracing::debug!(path = %path.display(), ?recovery, "offline queue restored");
            return Ok(queue);
        }
        Ok(DeliveryQueue::new(config))
    }

    fn connector(&self) -> Result<Connector> {
        let invalid = |reason: &str| ClientError::InvalidUrl {
            url: self.url.clone(),
            reason: reason.to_owned(),
        };
        let uri: Uri = self.url.parse().map_err(|_| invalid("not a URL"))?;
        if uri.host().is_none_or(str::is_empty) {
            return Err(invalid("no host"));
        }
        match uri.scheme_str() {
            Some("ws") => Ok(Connector::Plain),
            #[cfg(feature = "tls")]
            Some("wss") => self.rustls().map(Connector::Rustls),
            #[cfg(not(feature = "tls"))]
            Some("wss") => Err(invalid("wss:// needs the `tls` feature")),
            _ => Err(invalid("the scheme must be ws or wss")),
        }
    }

    #[cfg(feature = "tls")]
    fn rustls(&self) -> Result<Arc<rustls::ClientConfig>> {
        use rustls_pki_types::CertificateDer;
        use rustls_pki_types::pem::PemObject;

        let roots = match &self.tls {
            TlsRoots::Config(config) => return Ok(Arc::clone(config)),
            TlsRoots::Webpki => webpki_roots::TLS_SERVER_ROOTS.iter().cloned().collect(),
            TlsRoots::Store(store) => store.clone(),
            TlsRoots::Pem(pem) => {
                let mut store = rustls::RootCertStore::empty();
                for cert in CertificateDer::pem_slice_iter(pem) {
                    let cert = cert.map_err(|e| ClientError::Tls(format!("PEM: {e}")))?;
                    store
                        .add(cert)
                        .map_err(|e| ClientError::Tls(format!("root certificate: {e}")))?;
                }
                if store.is_empty() {
                    return Err(ClientError::Tls("no certificate in the PEM text".into()));
                }
                store
            }
        };
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| ClientError::Tls(e.to_string()))?
            .with_root_certificates(roots)
            .with_no_client_auth();
        Ok(Arc::new(config))
    }
}

/// A random client id: 128 bits as 22 base64url characters.
fn random_client_id() -> ClientId {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut bits = rand::random::<u128>();
    let text: String = (0..22)
        .map(|_| {
            let c = ALPHABET[(bits & 63) as usize];
            bits >>= 6;
            char::from(c)
        })
        .collect();
    ClientId::new(&text).expect("base64url characters make a valid client id")
}

/// `url` with `client=<id>` added to its query (ids need no escaping).
fn with_client_param(url: &str, id: &ClientId) -> String {
    let separator = if url.contains('?') { '&' } else { '?' };
    format!("{url}{separator}client={id}")
}
