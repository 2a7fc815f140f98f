//! Each session runs in a `session` span (connection id, user, peer address) whose parent is
//! the span current where the host answered the upgrade.

mod support;

use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hyper_util::rt::TokioIo;
use switchboard_backplane::{MemoryBackplane, MemoryBackplaneConfig};
use switchboard_hub::Hub;
use switchboard_limiter::Quota;
use switchboard_transport::{Authenticator, Transport, TransportConfig};
use tokio::net::TcpListener;
use tracing::span::{Attributes, Id};
use tracing::{Event, Subscriber};
use tracing_subscriber::layer::{Context, Layer, SubscriberExt};
use tracing_subscriber::registry::LookupSpan;

/// What the layer saw: each new span (name, parent's name, fields), and each event's
/// enclosing spans, innermost first, with its target.
#[derive(Default)]
struct Seen {
    spans: Vec<(String, Option<String>, String)>,
    events: Vec<(String, Vec<String>)>,
}

#[derive(Clone, Default)]
struct Recorder(Arc<Mutex<Seen>>);

struct Fields(String);

impl tracing::field::Visit for Fields {
    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
        self.0.push_str(&format!("{}={:?} ", field.name(), value));
    }
    fn record_str(&mut self, field: &tracing::field::Field, value: &str) {
        self.0.push_str(&format!("{}={value} ", field.name()));
    }
}

impl<S: Subscriber + for<'a> LookupSpan<'a>> Layer<S> for Recorder {
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        let mut fields = Fields(String::new());
        attrs.record(&mut fields);
        let parent = ctx
            .span(id)
            .and_then(|span| span.parent())
            .map(|parent| parent.name().to_owned());
        self.0
            .lock()
            .unwrap()
            .spans
            .push((attrs.metadata().name().to_owned(), parent, fields.0));
    }

    fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
        let scope = ctx
            .event_scope(event)
            .map(|scope| scope.map(|span| span.name().to_owned()).collect())
            .unwrap_or_default();
        self.0
            .lock()
            .unwrap()
            .events
            .push((event.metadata().target().to_owned(), scope));
    }
}

#[tokio::test]
async fn a_session_runs_in_a_span_whose_parent_is_the_hosts_request_span() {
    let recorder = Recorder::default();
    let subscriber = tracing_subscriber::registry()
        .with(recorder.clone())
        .with(tracing_subscriber::filter::LevelFilter::DEBUG);
    // The test's runtime has one thread: every task of the server runs under this default.
    let _default = tracing::subscriber::set_default(subscriber);

    // One message per hour: the second frame is refused, and the refusal is logged (audit)
    // from inside the session.
    let config =
        TransportConfig::default().rate_limit(Quota::new(1, 1, Duration::from_secs(3600)).unwrap());
    let hub = Hub::new(MemoryBackplane::new(MemoryBackplaneConfig::default()));
    let transport = Transport::new(hub, Authenticator::open(), config);
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    // A host's own HTTP handling: it answers the upgrade inside its request span.
    let host = transport.clone();
    tokio::spawn(async move {
        let (stream, peer) = listener.accept().await.unwrap();
        let service = hyper::service::service_fn(move |req| {
            let transport = host.clone();
            async move {
                let span = tracing::info_span!("host_request", path = "/ws");
                Ok::<_, Infallible>(span.in_scope(|| transport.upgrade(req, peer)).await)
            }
        });
        let _ = hyper::server::conn::http1::Builder::new()
            .serve_connection(TokioIo::new(stream), service)
            .with_upgrades()
            .await;
    });

    let mut client = support::Client::connect(&format!("ws://{addr}/ws")).await;
    let connection_id = client.welcome["connectionId"].as_str().unwrap().to_owned();
    client.send(r#"{"type":"ping","id":"free"}"#).await;
    assert_eq!(client.recv_of("pong").await["id"], "free");
    client
        .send(r#"{"type":"t","channel":"c","payload":1,"id":"one"}"#)
        .await;
    client
        .send(r#"{"type":"t","channel":"c","payload":2,"id":"two"}"#)
        .await;
    assert_eq!(client.recv_of("error").await["code"], "rate_limited");

    let seen = recorder.0.lock().unwrap();
    let sessions: Vec<_> = seen
        .spans
        .iter()
        .filter(|(name, ..)| name == "session")
        .collect();
    assert_eq!(sessions.len(), 1, "{:?}", seen.spans);
    let (_, parent, fields) = sessions[0];
    assert_eq!(parent.as_deref(), Some("host_request"));
    assert!(
        fields.contains(&format!("connection_id={connection_id} ")),
        "{fields}"
    );
    assert!(fields.contains("user=- "), "{fields}");
    assert!(fields.contains("peer=127.0.0.1:"), "{fields}");
    // What the session logs carries the session's context, under the host's.
    let refused = seen
        .events
        .iter()
        .find(|(target, _)| target == "switchboard::audit")
        .expect("the refusal is audited");
    assert_eq!(refused.1, ["session", "host_request"], "{:?}", seen.events);
}
