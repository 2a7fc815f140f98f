//! The audit log (`switchboard::audit`): every denial a security review looks for is one
//! event with the fields docs/operations.md lists, over real sockets.

mod support;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::json;
use support::{Client, SECRET, Server, token, unix_now};
use switchboard_limiter::Quota;
use switchboard_transport::{Authenticator, TokenVerifier, TransportConfig};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tracing::{Event, Subscriber};
use tracing_subscriber::layer::{Context, Layer, SubscriberExt};

/// The audit events seen: each one's fields, by name (`message` included).
#[derive(Clone, Default)]
struct Audit(Arc<Mutex<Vec<BTreeMap<String, String>>>>);

struct Fields<'a>(&'a mut BTreeMap<String, String>);

impl tracing::field::Visit for Fields<'_> {
    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
        self.0.insert(field.name().to_owned(), format!("{value:?}"));
    }
    fn record_str(&mut self, field: &tracing::field::Field, value: &str) {
        self.0.insert(field.name().to_owned(), value.to_owned());
    }
    fn record_u64(&mut self, field: &tracing::field::Field, value: u64) {
        self.0.insert(field.name().to_owned(), value.to_string());
    }
}

impl<S: Subscriber> Layer<S> for Audit {
    fn on_event(&self, event: &Event<'_>, _: Context<'_, S>) {
        if event.metadata().target() != "switchboard::audit" {
            return;
        }
        let mut fields = BTreeMap::new();
        fields.insert("level".to_owned(), event.metadata().level().to_string());
        event.record(&mut Fields(&mut fields));
        self.0.lock().unwrap().push(fields);
    }
}

impl Audit {
    /// The events named `event`, so far.
    fn named(&self, event: &str) -> Vec<BTreeMap<String, String>> {
        self.0
            .lock()
            .unwrap()
            .iter()
            .filter(|fields| fields.get("event").map(String::as_str) == Some(event))
            .cloned()
            .collect()
    }
}

#[tokio::test]
async fn every_denial_is_one_audit_event_with_who_what_and_why() {
    let audit = Audit::default();
    // The test's runtime has one thread: every task of the server runs under this default.
    let _default =
        tracing::subscriber::set_default(tracing_subscriber::registry().with(audit.clone()));

    // Four frames an hour; an origin allowlist; one connection per address; tokens signed
    // with SECRET.
    let config = TransportConfig::default()
        .rate_limit(Quota::new(4, 1, Duration::from_secs(3600)).unwrap())
        .allowed_origins(Some(vec!["https://app.example".into()]))
        .max_connections_per_ip(std::num::NonZeroU32::new(1));
    let server = Server::start(
        config,
        Authenticator::jwt(TokenVerifier::hs256(SECRET).unwrap()),
    )
    .await;

    // Refused upgrades: a forged token, a foreign origin.
    let forged = jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        &json!({"sub": "eve", "exp": unix_now() + 60}),
        &jsonwebtoken::EncodingKey::from_secret(b"not-the-secret-at-all-not-at-all"),
    )
    .unwrap();
    let refused = Client::try_connect(
        format!("{}?token={forged}", server.url())
            .into_client_request()
            .unwrap(),
    )
    .await;
    assert_eq!(refused.err().map(|r| r.status), Some(401));
    let good = token(&json!({"sub": "ada", "exp": unix_now() + 60, "channels": ["a:*"]}));
    let mut foreign = format!("{}?token={good}", server.url())
        .into_client_request()
        .unwrap();
    foreign
        .headers_mut()
        .insert("origin", "https://evil.example".parse().unwrap());
    assert_eq!(
        Client::try_connect(foreign).await.err().map(|r| r.status),
        Some(403)
    );

    // Ada: a forbidden subscribe, a forbidden publish, a refused and an accepted refresh
    // (four frames: the quota), then five more frames: refused, and the fifth refusal closes
    // with 1008. Meanwhile a second connection from her address is over its cap.
    let mut ada = Client::connect(&format!("{}?token={good}", server.url())).await;
    let connection_id = ada.welcome["connectionId"].as_str().unwrap().to_owned();
    let second = Client::try_connect(
        format!("{}?token={good}", server.url())
            .into_client_request()
            .unwrap(),
    )
    .await;
    assert_eq!(second.err().map(|r| r.status), Some(429));
    ada.send(r#"{"type":"subscribe","channel":"b:1","id":"s"}"#)
        .await;
    assert_eq!(ada.recv().await["code"], "forbidden");
    ada.send(r#"{"type":"said","channel":"b:1","payload":1,"id":"p"}"#)
        .await;
    assert_eq!(ada.recv().await["code"], "forbidden");
    let bob = token(&json!({"sub": "bob", "exp": unix_now() + 60}));
    ada.send(&json!({"type": "refresh", "token": bob, "id": "r"}).to_string())
        .await;
    assert_eq!(ada.recv().await["code"], "unauthorized");
    let renewed = token(&json!({"sub": "ada", "exp": unix_now() + 3600, "channels": ["a:*"]}));
    ada.send(&json!({"type": "refresh", "token": renewed, "id": "r2"}).to_string())
        .await;
    assert_eq!(ada.recv().await["type"], "refreshed");
    for _ in 0..5 {
        ada.send(r#"{"type":"said","channel":"a:1","payload":1}"#)
            .await;
    }
    assert_eq!(ada.closed_with().await, 1008);

    let one = |event: &str| {
        let seen = audit.named(event);
        assert_eq!(seen.len(), 1, "{event}: {seen:?}");
        seen.into_iter().next().unwrap()
    };
    let auth = one("auth_failed");
    assert_eq!(
        (auth["level"].as_str(), auth["reason"].as_str()),
        ("WARN", "bad_signature")
    );
    assert!(auth["peer"].starts_with("127.0.0.1:"), "{auth:?}");
    let origin = one("origin_rejected");
    assert_eq!(origin["origin"], "https://evil.example");
    assert!(origin["peer"].starts_with("127.0.0.1:"), "{origin:?}");

    let forbidden = audit.named("forbidden");
    let actions: Vec<(&str, &str, &str, &str)> = forbidden
        .iter()
        .map(|f| {
            (
                f["connection_id"].as_str(),
                f["user_id"].as_str(),
                f["action"].as_str(),
                f["channel"].as_str(),
            )
        })
        .collect();
    assert_eq!(
        actions,
        [
            (connection_id.as_str(), "ada", "subscribe to", "b:1"),
            (connection_id.as_str(), "ada", "publish to", "b:1"),
        ]
    );
    let refresh = one("refresh_refused");
    assert_eq!(
        (
            refresh["connection_id"].as_str(),
            refresh["user_id"].as_str(),
            refresh["reason"].as_str()
        ),
        (
            connection_id.as_str(),
            "ada",
            "the new token is for another user"
        )
    );
    let refreshed = one("token_refreshed");
    assert_eq!(
        (
            refreshed["connection_id"].as_str(),
            refreshed["user_id"].as_str(),
            refreshed["revoked"].as_str()
        ),
        (connection_id.as_str(), "ada", "0")
    );
    assert!(one("ip_cap")["peer"].starts_with("127.0.0.1:"));
    let limited = audit.named("rate_limited");
    assert_eq!(limited.len(), 5, "{limited:?}");
    assert!(limited.iter().all(|f| f["connection_id"] == connection_id
        && f["retry_after_ms"].parse::<u64>().is_ok_and(|ms| ms > 0)));
    let abuse = one("abuse_disconnect");
    assert_eq!(
        (abuse["connection_id"].as_str(), abuse["user_id"].as_str()),
        (connection_id.as_str(), "ada")
    );
}
