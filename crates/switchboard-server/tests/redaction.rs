//! `REDACT_FIELDS` against a real server: fields are removed from what subscribers receive,
//! and everything else is delivered as published, byte for byte — numbers no `f64` holds
//! included — over WebSocket and the HTTP publish API alike.

mod support;

use futures_util::SinkExt as _;
use serde_json::Value;
use support::{API_KEY, Ws, connect, next_text, publish, start, subscribe, test_config};
use tokio_tungstenite::tungstenite::Message;

/// The next frame whose `type` is `kind`, as sent.
async fn next_text_of_type(ws: &mut Ws, kind: &str) -> String {
    let needle = format!(r#""type":"{kind}""#);
    loop {
        let text = next_text(ws).await;
        if text.contains(&needle) {
            return text;
        }
    }
}

const PAYLOAD: &str =
    r#"{"password":"hunter2","big":1e400,"n":12345678901234567890123,"e":1E2,"s":"é"}"#;
const DELIVERED: &str = r#""payload":{"big":1e400,"n":12345678901234567890123,"e":1E2,"s":"é"}"#;

#[tokio::test]
async fn redaction_removes_the_field_and_delivers_every_other_byte_as_published() {
    let server = start(
        test_config()
            .redact_fields(vec!["password".to_owned()])
            .publish_api_key(Some(API_KEY)),
    )
    .await;
    let (mut subscriber, _) = connect(&server.ws_url()).await;
    subscribe(&mut subscriber, "room").await;
    let (mut publisher, _) = connect(&server.ws_url()).await;

    // Over WebSocket: acknowledged, and the publisher's connection stays up.
    publisher
        .send(Message::text(format!(
            r#"{{"type":"note","channel":"room","id":"m1","payload":{PAYLOAD}}}"#
        )))
        .await
        .unwrap();
    let ack: Value = serde_json::from_str(&next_text_of_type(&mut publisher, "ack").await).unwrap();
    assert_eq!(
        (ack["id"].as_str(), ack["offset"].as_u64()),
        (Some("m1"), Some(1))
    );
    let message = next_text_of_type(&mut subscriber, "note").await;
    assert!(message.contains(DELIVERED), "{message}");
    assert!(!message.contains("hunter2"), "{message}");

    // Over the HTTP API: the same.
    let answer = publish(
        server.local_addr(),
        &format!(r#"{{"channel":"room","type":"note","id":"h1","payload":{PAYLOAD}}}"#),
    )
    .await;
    assert_eq!(answer.status, 200, "{}", answer.text());
    let message = next_text_of_type(&mut subscriber, "note").await;
    assert!(message.contains(DELIVERED), "{message}");
    assert!(!message.contains("hunter2"), "{message}");

    // The publisher is still served.
    publisher
        .send(Message::text(
            r#"{"type":"note","channel":"room","id":"m2","payload":{"password":1,"ok":true}}"#,
        ))
        .await
        .unwrap();
    let ack: Value = serde_json::from_str(&next_text_of_type(&mut publisher, "ack").await).unwrap();
    assert_eq!(ack["offset"], 3);
    let message = next_text_of_type(&mut subscriber, "note").await;
    assert!(message.contains(r#""payload":{"ok":true}"#), "{message}");
}
