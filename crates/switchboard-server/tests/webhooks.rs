//! Webhooks against a real HTTP receiver on 127.0.0.1: signed batches of lifecycle events,
//! retries after failures, the type filter, and the queue file across a restart.

mod support;

use std::collections::VecDeque;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use hmac::{Hmac, Mac};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use parking_lot::Mutex;
use serde_json::{Value, json};
use support::{WAIT, connect, next_of_type, send_json, start, test_config};
use switchboard_server::{Server, WebhookConfig, WebhookEventType};
use tokio::sync::mpsc;

const SECRET: &str = "webhook-secret";

/// One POST the receiver got: its signature header and its body.
struct Delivery {
    signature: Option<String>,
    body: Bytes,
}

/// An HTTP receiver answering each POST with the next status of its script (200 once the
/// script is used up).
struct Receiver {
    addr: SocketAddr,
    deliveries: mpsc::UnboundedReceiver<Delivery>,
}

impl Receiver {
    async fn start(script: &[u16]) -> Self {
        Self::serve(script, None).await
    }

    /// A receiver over TLS with a certificate for `localhost` (trusted through
    /// `WEBHOOK_CA_PATH` by the test).
    async fn start_tls(dir: &std::path::Path) -> (Self, std::path::PathBuf) {
        use rustls::pki_types::pem::PemObject;
        let (_, cert_path, key_path) = support::write_certificate(dir);
        let certs = rustls::pki_types::CertificateDer::pem_file_iter(&cert_path)
            .unwrap()
            .collect::<Result<Vec<_>, _>>()
            .unwrap();
        let key = rustls::pki_types::PrivateKeyDer::from_pem_file(&key_path).unwrap();
        let config = rustls::ServerConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .unwrap();
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
        (Self::serve(&[], Some(acceptor)).await, cert_path)
    }

    async fn serve(script: &[u16], tls: Option<tokio_rustls::TlsAcceptor>) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (tx, deliveries) = mpsc::unbounded_channel();
        let script = Arc::new(Mutex::new(
            script.iter().copied().collect::<VecDeque<u16>>(),
        ));
        tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                let (tx, script, tls) = (tx.clone(), Arc::clone(&script), tls.clone());
                tokio::spawn(async move {
                    let service = service_fn(move |req: http::Request<Incoming>| {
                        let (tx, script) = (tx.clone(), Arc::clone(&script));
                        async move {
                            let signature = req
                                .headers()
                                .get("x-switchboard-signature")
                                .map(|v| v.to_str().unwrap().to_owned());
                            let body = req.into_body().collect().await.unwrap().to_bytes();
                            let status = script.lock().pop_front().unwrap_or(200);
                            if status == 200 {
                                let _ = tx.send(Delivery { signature, body });
                            }
                            Ok::<_, Infallible>(
                                http::Response::builder()
                                    .status(status)
                                    .body(Full::new(Bytes::new()))
                                    .unwrap(),
                            )
                        }
                    });
                    let http = hyper::server::conn::http1::Builder::new();
                    match tls {
                        Some(acceptor) => {
                            let Ok(stream) = acceptor.accept(stream).await else {
                                return;
                            };
                            let _ = http.serve_connection(TokioIo::new(stream), service).await;
                        }
                        None => {
                            let _ = http.serve_connection(TokioIo::new(stream), service).await;
                        }
                    }
                });
            }
        });
        Self { addr, deliveries }
    }

    fn url(&self) -> String {
        format!("http://{}/hooks/switchboard?x=1", self.addr)
    }

    /// Events from accepted deliveries until `done` says enough (within [`WAIT`]).
    async fn events_until(&mut self, done: impl Fn(&[Value]) -> bool) -> Vec<Value> {
        let mut events = Vec::new();
        tokio::time::timeout(WAIT * 3, async {
            while !done(&events) {
                let delivery = self.deliveries.recv().await.unwrap();
                let mut mac = Hmac::<sha2::Sha256>::new_from_slice(SECRET.as_bytes()).unwrap();
                mac.update(&delivery.body);
                let expected: String = mac
                    .finalize()
                    .into_bytes()
                    .iter()
                    .map(|b| format!("{b:02x}"))
                    .collect();
                assert_eq!(delivery.signature, Some(format!("sha256={expected}")));
                let body: Value = serde_json::from_slice(&delivery.body).unwrap();
                events.extend(body["events"].as_array().unwrap().iter().cloned());
            }
        })
        .await
        .expect("the events in time");
        events
    }
}

fn types(events: &[Value]) -> Vec<&str> {
    events.iter().map(|e| e["type"].as_str().unwrap()).collect()
}

async fn server_with(webhook: WebhookConfig) -> Server {
    start(test_config().webhook(Some(webhook))).await
}

#[tokio::test]
async fn a_connections_life_arrives_signed_in_order_with_unique_ids() {
    let mut receiver = Receiver::start(&[]).await;
    // The connection's own events (channel occupancy comes from another task, in its own
    // order: tested below).
    let server = server_with(
        WebhookConfig::new(receiver.url())
            .secret(Some(SECRET))
            .events(Some(
                WebhookEventType::ALL
                    .into_iter()
                    .filter(|t| {
                        !matches!(
                            t,
                            WebhookEventType::ChannelOccupied | WebhookEventType::ChannelVacated
                        )
                    })
                    .collect(),
            )),
    )
    .await;
    let (mut ws, welcome) = connect(&server.ws_url()).await;
    let connection_id = welcome["connectionId"].clone();
    send_json(&mut ws, &json!({"type": "subscribe", "channel": "room"})).await;
    next_of_type(&mut ws, "subscribed").await;
    send_json(
        &mut ws,
        &json!({"type": "presence-update", "channel": "room", "status": "here"}),
    )
    .await;
    next_of_type(&mut ws, "presence-update").await;
    send_json(&mut ws, &json!({"type": "unsubscribe", "channel": "room"})).await;
    next_of_type(&mut ws, "unsubscribed").await;
    drop(ws);

    let events = receiver
        .events_until(|e| types(e).contains(&"disconnected"))
        .await;
    assert_eq!(
        types(&events),
        [
            "connected",
            "subscribed",
            "member_added",
            "member_removed",
            "unsubscribed",
            "disconnected"
        ]
    );
    let mut ids: Vec<&str> = events.iter().map(|e| e["id"].as_str().unwrap()).collect();
    ids.dedup();
    assert_eq!(ids.len(), events.len(), "ids are unique");
    for event in &events {
        assert_eq!(event["connectionId"], connection_id);
        assert!(event["time"].as_u64().unwrap() > 1_700_000_000_000);
    }
    assert_eq!(events[1]["channel"], "room");
    assert_eq!(
        events[5]["code"], 1006,
        "dropped without a close frame: {}",
        events[5]
    );

    let metrics = support::get(server.local_addr(), "/metrics/prometheus")
        .await
        .text();
    assert!(
        metrics.contains(r#"websocket_webhook_events_total{result="delivered"} 6"#),
        "{metrics}"
    );
}

#[tokio::test]
async fn a_failing_receiver_gets_the_same_events_again_and_only_the_chosen_types() {
    // Two failures, then success: the batch is retried after its backoff.
    let mut receiver = Receiver::start(&[500, 503]).await;
    let server = server_with(
        WebhookConfig::new(receiver.url())
            .secret(Some(SECRET))
            .events(Some(vec![WebhookEventType::Connected])),
    )
    .await;
    let (ws, welcome) = connect(&server.ws_url()).await;
    drop(ws);
    let events = receiver.events_until(|e| !e.is_empty()).await;
    assert_eq!(types(&events), ["connected"]);
    assert_eq!(events[0]["connectionId"], welcome["connectionId"]);
    let metrics = support::get(server.local_addr(), "/metrics/prometheus")
        .await
        .text();
    assert!(
        metrics.contains(r#"websocket_webhook_events_total{result="retried"} 2"#),
        "{metrics}"
    );
    // Nothing but `connected` was queued: the disconnect is not sent.
    assert!(
        tokio::time::timeout(Duration::from_millis(300), receiver.deliveries.recv())
            .await
            .is_err()
    );
}

#[tokio::test]
async fn undelivered_events_survive_a_restart_in_the_queue_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("webhooks.queue");
    // Nothing listens at first.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let dead_url = format!("http://{}/hook", closed.local_addr().unwrap());
    drop(closed);
    // A shutdown waits for the receiver only so long (a dead one here).
    let server = start(
        test_config()
            .shutdown_timeout(Duration::from_secs(1))
            .webhook(Some(
                WebhookConfig::new(dead_url)
                    .secret(Some(SECRET))
                    .queue_path(Some(path.clone())),
            )),
    )
    .await;
    let (ws, welcome) = connect(&server.ws_url()).await;
    drop(ws);
    // The connect and the disconnect are queued (and retried) before the restart.
    let queued = || async {
        support::get(server.local_addr(), "/metrics/prometheus")
            .await
            .text()
            .contains("websocket_webhook_queue_depth 2")
    };
    tokio::time::timeout(WAIT, async {
        while !queued().await {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("both events queued");
    server.shutdown().await;

    let mut receiver = Receiver::start(&[]).await;
    let _restarted = server_with(
        WebhookConfig::new(receiver.url())
            .secret(Some(SECRET))
            .queue_path(Some(path)),
    )
    .await;
    let events = receiver.events_until(|e| e.len() >= 2).await;
    assert_eq!(types(&events), ["connected", "disconnected"]);
    assert_eq!(events[0]["connectionId"], welcome["connectionId"]);
}

#[tokio::test]
async fn an_https_receiver_is_verified_against_the_configured_ca() {
    let dir = tempfile::tempdir().unwrap();
    let (mut receiver, ca) = Receiver::start_tls(dir.path()).await;
    let url = format!("https://localhost:{}/hook", receiver.addr.port());
    let server = server_with(
        WebhookConfig::new(url.clone())
            .secret(Some(SECRET))
            .events(Some(vec![WebhookEventType::Connected]))
            .ca_path(Some(ca)),
    )
    .await;
    let (_ws, welcome) = connect(&server.ws_url()).await;
    let events = receiver.events_until(|e| !e.is_empty()).await;
    assert_eq!(events[0]["connectionId"], welcome["connectionId"]);

    // Without the CA the certificate is not trusted: the batch fails and is retried.
    let untrusted = server_with(
        WebhookConfig::new(url)
            .secret(Some(SECRET))
            .events(Some(vec![WebhookEventType::Connected])),
    )
    .await;
    let _ws = connect(&untrusted.ws_url()).await;
    tokio::time::timeout(WAIT, async {
        while !support::get(untrusted.local_addr(), "/metrics/prometheus")
            .await
            .text()
            .contains(r#"websocket_webhook_events_total{result="retried"} 1"#)
        {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("the untrusted receiver's batch fails");
    assert!(
        receiver.deliveries.try_recv().is_err(),
        "nothing reached the receiver"
    );
}

#[tokio::test]
async fn a_channel_is_reported_occupied_by_its_first_subscriber_and_vacated_by_its_last() {
    let mut receiver = Receiver::start(&[]).await;
    let server = server_with(
        WebhookConfig::new(receiver.url())
            .secret(Some(SECRET))
            .events(Some(vec![
                WebhookEventType::ChannelOccupied,
                WebhookEventType::ChannelVacated,
            ])),
    )
    .await;
    let (mut first, _) = connect(&server.ws_url()).await;
    let (mut second, _) = connect(&server.ws_url()).await;
    for ws in [&mut first, &mut second] {
        send_json(ws, &json!({"type": "subscribe", "channel": "room"})).await;
        next_of_type(ws, "subscribed").await;
    }
    let events = receiver.events_until(|e| !e.is_empty()).await;
    assert_eq!(types(&events), ["channel_occupied"]);
    assert_eq!(events[0]["channel"], "room");
    assert!(events[0].get("connectionId").is_none(), "{}", events[0]);
    drop(first);
    drop(second);
    let events = receiver.events_until(|e| !e.is_empty()).await;
    assert_eq!(
        types(&events),
        ["channel_vacated"],
        "once, after the last left"
    );
}

#[tokio::test]
async fn a_graceful_shutdown_delivers_the_sessions_last_events_first() {
    let mut receiver = Receiver::start(&[]).await;
    let server = server_with(
        WebhookConfig::new(receiver.url())
            .secret(Some(SECRET))
            .events(Some(vec![
                WebhookEventType::Connected,
                WebhookEventType::Disconnected,
            ])),
    )
    .await;
    let (_ws, welcome) = connect(&server.ws_url()).await;
    let events = receiver.events_until(|e| !e.is_empty()).await;
    assert_eq!(types(&events), ["connected"]);

    // The queue is in memory: only a drain before the process ends delivers the disconnect.
    server.shutdown().await;
    let delivery = receiver
        .deliveries
        .try_recv()
        .expect("delivered before shutdown returned");
    let body: Value = serde_json::from_slice(&delivery.body).unwrap();
    assert_eq!(body["events"][0]["type"], "disconnected");
    assert_eq!(body["events"][0]["code"], 1001);
    assert_eq!(body["events"][0]["connectionId"], welcome["connectionId"]);
}
