//! Decode and encode costs of Protocol v1 frames.
#![allow(missing_docs)]

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use switchboard_protocol::{
    ChannelName, ClientFrame, EventType, Message, Payload, Priority, Sender,
};

const PUBLISH: &str = r#"{"type":"task-status-changed","channel":"tasks:updates","payload":{"taskId":"t-1842","status":"done","progress":100,"assignee":{"id":"u-7","name":"Ada"}},"id":"m-9f1c","priority":"high"}"#;
const SUBSCRIBE: &str = r#"{"type":"subscribe","channel":"tasks:updates","id":"s-1","since":{"offset":41,"epoch":"e-7f3a"}}"#;
const PING: &str = r#"{"type":"ping","id":"p-1","timestamp":1700000000000}"#;

/// A publish whose payload is mostly text (a chat message, a document edit): 1 KiB of it.
fn publish_with_text(len: usize) -> String {
    format!(
        r#"{{"type":"chat.message","channel":"room:42","payload":{{"text":"{}","by":"ada"}},"id":"m-1"}}"#,
        "lorem ipsum ".repeat(len / 12)
    )
}

fn decode(c: &mut Criterion) {
    let mut g = c.benchmark_group("decode");
    let text_1k = publish_with_text(1024);
    for (name, text) in [
        ("publish", PUBLISH),
        ("publish_1k_text", text_1k.as_str()),
        ("subscribe", SUBSCRIBE),
        ("ping", PING),
    ] {
        g.throughput(Throughput::Bytes(text.len() as u64));
        g.bench_function(name, |b| {
            b.iter(|| ClientFrame::decode(black_box(text)).unwrap())
        });
    }
    g.finish();
}

fn encode(c: &mut Criterion) {
    let message = Message {
        event: EventType::new("task-status-changed").unwrap(),
        channel: ChannelName::new("tasks:updates").unwrap(),
        payload: Payload::from_json(
            r#"{"taskId":"t-1842","status":"done","progress":100,"assignee":{"id":"u-7","name":"Ada"}}"#,
        )
        .unwrap(),
        id: "m-9f1c".into(),
        timestamp: 1_700_000_000_000,
        priority: Priority::High,
        offset: 42,
        from: Sender { user_id: Some("u-7".into()), connection_id: "c-5b2e".into() },
    };
    let mut g = c.benchmark_group("encode");
    g.bench_function("message", |b| b.iter(|| black_box(&message).encode()));
    let (draft, offset) = message.clone().into_draft();
    // What the hub pays once per publish: the draft the backplane stores.
    g.bench_function("draft", |b| b.iter(|| black_box(&draft).encode()));
    let mut large = draft.clone();
    large.payload = Payload::from_json(&format!(r#"{{"text":"{}"}}"#, "x".repeat(4096))).unwrap();
    g.bench_function("draft_4k", |b| b.iter(|| black_box(&large).encode()));
    let encoded_draft = draft.encode();
    // What each instance pays per message once the backplane has assigned the offset.
    g.bench_function("finish_draft_with_offset", |b| {
        b.iter(|| black_box(&encoded_draft).finish(black_box(offset)))
    });
    let encoded = message.encode();
    // What fan-out pays per subscriber: a reference-count increment.
    g.bench_function("message_clone_for_fanout", |b| {
        b.iter(|| black_box(&encoded).clone())
    });
    g.finish();
}

criterion_group!(benches, decode, encode);
criterion_main!(benches);
