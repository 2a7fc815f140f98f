//! Retries, acknowledgements and dead letters, against a scripted server that loses acks
//! on purpose (the real server always acknowledges).

mod support;

use std::num::NonZeroU32;
use std::time::Duration;

use serde_json::json;
use support::{ScriptedServer, fast_client};
use switchboard_client::{Client, Priority, PublishError, QueueConfig};

fn retrying(server: &ScriptedServer) -> Client {
    fast_client(&server.url())
        .queue(
            QueueConfig::default()
                .with_ack_timeout(Duration::from_millis(200))
                .with_max_attempts(NonZeroU32::new(3).unwrap())
                .with_retry_backoff(
                    switchboard_queue::Backoff::default().with_base(Duration::from_millis(20)),
                ),
        )
        .build()
        .unwrap()
}

#[tokio::test]
async fn a_publish_without_an_ack_in_time_is_sent_again_with_the_same_id() {
    let mut server = ScriptedServer::start().await;
    let client = retrying(&server);
    let handle = client
        .publish(
            "jobs:results",
            "job.done",
            json!({"job": 1}),
            Priority::High,
        )
        .unwrap();
    let mut conn = server.accept().await;

    let first = conn.recv_app().await;
    assert_eq!(first["type"], "job.done");
    assert_eq!(first["priority"], "high");
    assert_eq!(first["id"], handle.id());
    // No ack: the attempt times out and the publish comes again.
    let second = conn.recv_app().await;
    assert_eq!(second, first);
    conn.send(json!({"type": "ack", "id": handle.id(), "offset": 41}))
        .await;

    let ack = handle.await.unwrap();
    assert_eq!(ack.offset, 41);
    assert_eq!(client.queue_len(), 0);
}

#[tokio::test]
async fn a_publish_never_acknowledged_fails_after_max_attempts() {
    let mut server = ScriptedServer::start().await;
    let client = retrying(&server);
    let mut outcomes = client.publish_outcomes();
    let handle = client
        .publish("jobs:results", "job.done", json!(null), Priority::Normal)
        .unwrap();
    let id = handle.id().to_owned();
    let mut conn = server.accept().await;
    for _ in 0..3 {
        assert_eq!(conn.recv_app().await["id"], id.as_str());
    }

    assert_eq!(handle.await, Err(PublishError::Failed { attempts: 3 }));
    assert_eq!(client.queue_len(), 0, "the dead letter left the queue");
    let outcome = outcomes.recv().await.unwrap();
    assert_eq!(outcome.id, id);
    assert_eq!(outcome.result, Err(PublishError::Failed { attempts: 3 }));
    // No fourth attempt.
    let extra = tokio::time::timeout(Duration::from_millis(400), conn.recv_app()).await;
    assert!(extra.is_err());
}

#[tokio::test]
async fn a_rate_limited_publish_waits_the_time_asked_then_is_acknowledged() {
    let mut server = ScriptedServer::start().await;
    let client = retrying(&server);
    let handle = client
        .publish("jobs:results", "job.done", json!(1), Priority::Normal)
        .unwrap();
    let mut conn = server.accept().await;
    let first = conn.recv_app().await;
    let refused_at = tokio::time::Instant::now();
    conn.send(json!({
        "type": "error", "code": "rate_limited", "message": "slow down",
        "id": first["id"], "rateLimited": true, "retryAfterMs": 300
    }))
    .await;

    let second = conn.recv_app().await;
    assert_eq!(second["id"], first["id"]);
    assert!(
        refused_at.elapsed() >= Duration::from_millis(250),
        "waited for retryAfterMs"
    );
    conn.send(json!({"type": "ack", "id": first["id"], "offset": 1}))
        .await;
    assert_eq!(handle.await.unwrap().offset, 1);
}

#[tokio::test]
async fn publishes_in_flight_when_the_connection_drops_are_sent_again_after_reconnect() {
    let mut server = ScriptedServer::start().await;
    let client = retrying(&server);
    let handle = client
        .publish("jobs:results", "job.done", json!(1), Priority::Normal)
        .unwrap();
    let mut conn = server.accept().await;
    let sent = conn.recv_app().await;
    drop(conn); // the ack is lost with the connection

    let mut conn = server.accept().await;
    let again = conn.recv_app().await;
    assert_eq!(again, sent, "the same publish, same id");
    conn.send(json!({"type": "ack", "id": sent["id"], "offset": 7}))
        .await;
    assert_eq!(handle.await.unwrap().offset, 7);
}
