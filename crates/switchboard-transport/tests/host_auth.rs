//! A host's own login: an `Authenticate` implementation over the upgrade request, an
//! identity the host resolved itself (`upgrade_with`), host data an `Authorizer` reads, and
//! refusals with the host's status. Real sockets on 127.0.0.1.

mod support;

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use hyper_util::rt::TokioIo;
use serde_json::json;
use support::{Client, WAIT};
use switchboard_backplane::{MemoryBackplane, MemoryBackplaneConfig};
use switchboard_hub::{Action, Hub, Identity};
use switchboard_metrics::Metrics;
use switchboard_transport::{
    AuthRequest, Authenticate, Authenticator, Rejection, Transport, TransportConfig,
};
use tokio::net::TcpListener;
use tokio::sync::Notify;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

/// What the host knows about a user, attached to the identity.
#[derive(Debug)]
struct Account {
    team: &'static str,
    suspended: bool,
}

/// The host's cookie sessions: `session=<user>` is a logged-in user.
struct CookieSessions;

impl Authenticate for CookieSessions {
    async fn authenticate(&self, request: &AuthRequest<'_>) -> Result<Identity, Rejection> {
        let user = request
            .headers()
            .get(http::header::COOKIE)
            .and_then(|c| c.to_str().ok())
            .and_then(|c| c.strip_prefix("session="))
            .ok_or_else(|| Rejection::unauthorized("log in first"))?;
        let account = match user {
            "alice" => Account {
                team: "blue",
                suspended: false,
            },
            "bob" => Account {
                team: "red",
                suspended: false,
            },
            "mallory" => Account {
                team: "red",
                suspended: true,
            },
            _ => return Err(Rejection::unauthorized("unknown session")),
        };
        if account.suspended {
            return Err(Rejection::forbidden("account suspended"));
        }
        Ok(Identity::user(user.to_owned()).with_data(account))
    }
}

/// Channels `team:<name>:*` belong to that team, by the host's data on the identity.
fn team_channels(
    identity: &Identity,
    _: Action,
    channel: &switchboard_protocol::ChannelName,
) -> bool {
    let Some(account) = identity.data::<Account>() else {
        return false;
    };
    channel
        .strip_prefix("team:")
        .and_then(|rest| rest.split_once(':'))
        .is_some_and(|(team, _)| team == account.team)
}

async fn serve(transport: &Transport<MemoryBackplane>) -> String {
    support::Server::serving(transport.clone()).await.url()
}

fn with_cookie(
    url: &str,
    cookie: &str,
) -> tokio_tungstenite::tungstenite::handshake::client::Request {
    let mut request = url.into_client_request().unwrap();
    request
        .headers_mut()
        .insert("cookie", cookie.parse().unwrap());
    request
}

async fn answer(client: &mut Client, channel: &str) -> String {
    client
        .send(&format!(
            r#"{{"type":"subscribe","channel":"{channel}","id":"s"}}"#
        ))
        .await;
    let answer = client.recv().await;
    match answer["type"].as_str() {
        Some("subscribed") => "subscribed".into(),
        _ => answer["code"].as_str().unwrap_or("?").to_owned(),
    }
}

#[tokio::test]
async fn the_hosts_login_reaches_the_authorizer_through_the_identitys_data() {
    let hub = Hub::builder(MemoryBackplane::new(MemoryBackplaneConfig::default()))
        .authorizer(team_channels)
        .build();
    let transport = Transport::new(
        hub,
        Authenticator::new(CookieSessions),
        TransportConfig::default(),
    );
    let url = serve(&transport).await;

    let mut alice = Client::try_connect(with_cookie(&url, "session=alice"))
        .await
        .expect("alice is logged in");
    assert_eq!(alice.welcome["userId"], "alice");
    assert_eq!(answer(&mut alice, "team:blue:board").await, "subscribed");
    assert_eq!(answer(&mut alice, "team:red:board").await, "forbidden");

    let mut bob = Client::try_connect(with_cookie(&url, "session=bob"))
        .await
        .expect("bob is logged in");
    assert_eq!(answer(&mut bob, "team:red:board").await, "subscribed");
    assert_eq!(answer(&mut bob, "team:blue:board").await, "forbidden");
}

#[tokio::test]
async fn the_hosts_refusals_answer_with_its_status_and_message_and_are_counted() {
    let metrics = Metrics::new();
    let hub = Hub::new(MemoryBackplane::new(MemoryBackplaneConfig::default()));
    let transport = Transport::builder(hub)
        .auth(Authenticator::new(CookieSessions))
        .metrics(metrics.clone())
        .build();
    let url = serve(&transport).await;

    let refusal = Client::try_connect(url.as_str().into_client_request().unwrap())
        .await
        .err()
        .expect("no session, no connection");
    assert_eq!(refusal.status, 401);
    assert_eq!(
        refusal.body,
        json!({"error": "unauthorized", "message": "log in first"})
    );

    let refusal = Client::try_connect(with_cookie(&url, "session=mallory"))
        .await
        .err()
        .expect("a suspended account may not connect");
    assert_eq!(refusal.status, 403);
    assert_eq!(
        refusal.body,
        json!({"error": "forbidden", "message": "account suspended"})
    );

    let exposition = metrics.encode_openmetrics().unwrap();
    assert!(
        exposition.contains(r#"websocket_auth_failures_total{reason="rejected"} 2"#),
        "{exposition}"
    );
    assert_eq!(
        transport.connection_count(),
        0,
        "refused upgrades hold no slot"
    );
}

/// Waits until released: a login that needs a round trip to somewhere else.
struct Gate {
    reached: Notify,
    release: Notify,
}

impl Authenticate for Gate {
    async fn authenticate(&self, _: &AuthRequest<'_>) -> Result<Identity, Rejection> {
        self.reached.notify_one();
        self.release.notified().await;
        Ok(Identity::user("late"))
    }
}

/// A transport whose authenticator holds every upgrade until released, and one upgrade
/// started and now waiting in it: the gate, the transport, its URL and the client's task.
async fn upgrade_held_by_the_authenticator(
    config: TransportConfig,
) -> (
    Arc<Gate>,
    Transport<MemoryBackplane>,
    String,
    tokio::task::JoinHandle<Client>,
) {
    let gate = Arc::new(Gate {
        reached: Notify::new(),
        release: Notify::new(),
    });
    let hub = Hub::new(MemoryBackplane::new(MemoryBackplaneConfig::default()));
    let transport = Transport::new(hub, Authenticator::new(Arc::clone(&gate)), config);
    let url = serve(&transport).await;
    let waiting = tokio::spawn({
        let url = url.clone();
        async move { Client::connect(&url).await }
    });
    tokio::time::timeout(WAIT, gate.reached.notified())
        .await
        .expect("the authenticator is called");
    (gate, transport, url, waiting)
}

#[tokio::test]
async fn an_authenticator_may_wait_and_the_connection_counts_against_the_caps_meanwhile() {
    let (gate, _transport, url, first) = upgrade_held_by_the_authenticator(
        TransportConfig::default().max_connections(std::num::NonZeroU32::new(1)),
    )
    .await;
    // While the first upgrade is being authenticated it holds the only slot.
    let refusal = Client::try_connect(url.as_str().into_client_request().unwrap())
        .await
        .err()
        .expect("the cap is taken by the upgrade in progress");
    assert_eq!(refusal.status, 503);

    gate.release.notify_one();
    let first = tokio::time::timeout(WAIT, first)
        .await
        .expect("the upgrade completes once authenticated")
        .unwrap();
    assert_eq!(first.welcome["userId"], "late");
}

#[tokio::test]
async fn an_upgrade_still_being_authenticated_is_not_counted_as_an_open_connection() {
    let (gate, transport, _url, waiting) =
        upgrade_held_by_the_authenticator(TransportConfig::default()).await;
    assert_eq!(
        transport.connection_count(),
        0,
        "an upgrade waiting for its authenticator is no session yet"
    );

    gate.release.notify_one();
    let client = tokio::time::timeout(WAIT, waiting)
        .await
        .expect("the upgrade completes once authenticated")
        .unwrap();
    assert_eq!(client.welcome["type"], "welcome");
    assert_eq!(transport.connection_count(), 1);
}

/// Never answers.
struct Hangs;

impl Authenticate for Hangs {
    async fn authenticate(&self, _: &AuthRequest<'_>) -> Result<Identity, Rejection> {
        std::future::pending().await
    }
}

#[tokio::test]
async fn an_authenticator_that_never_answers_is_cut_off_at_the_handshake_timeout() {
    let hub = Hub::new(MemoryBackplane::new(MemoryBackplaneConfig::default()));
    let transport = Transport::new(
        hub,
        Authenticator::new(Hangs),
        TransportConfig::default().handshake_timeout(Duration::from_millis(200)),
    );
    let url = serve(&transport).await;
    let refusal = Client::try_connect(url.as_str().into_client_request().unwrap())
        .await
        .err()
        .expect("refused");
    assert_eq!(refusal.status, 503);
    assert_eq!(
        refusal.body,
        json!({"error": "unavailable", "message": "authentication timed out"})
    );
    assert_eq!(transport.connection_count(), 0);
}

#[tokio::test]
async fn a_host_that_resolved_the_user_itself_upgrades_with_that_identity() {
    // The transport's own authenticator would refuse everyone: `upgrade_with` does not
    // consult it.
    let hub = Hub::builder(MemoryBackplane::new(MemoryBackplaneConfig::default()))
        .authorizer(team_channels)
        .build();
    let transport = Transport::new(
        hub,
        Authenticator::jwt(switchboard_transport::TokenVerifier::hs256(support::SECRET).unwrap()),
        TransportConfig::default(),
    );
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let host = transport.clone();
    tokio::spawn(async move {
        let (stream, peer) = listener.accept().await.unwrap();
        // The host's own login has already told who this is.
        let service =
            hyper::service::service_fn(move |req: http::Request<hyper::body::Incoming>| {
                let transport = host.clone();
                async move {
                    let account = Account {
                        team: "blue",
                        suspended: false,
                    };
                    let identity = Identity::user("carol").with_data(account);
                    Ok::<_, Infallible>(transport.upgrade_with(req, peer, identity).await)
                }
            });
        let _ = hyper::server::conn::http1::Builder::new()
            .serve_connection(TokioIo::new(stream), service)
            .with_upgrades()
            .await;
    });

    let mut carol = Client::connect(&format!("ws://{addr}/ws")).await;
    assert_eq!(carol.welcome["userId"], "carol");
    assert_eq!(answer(&mut carol, "team:blue:x").await, "subscribed");
    assert_eq!(answer(&mut carol, "team:red:x").await, "forbidden");
}
