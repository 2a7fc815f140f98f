//! Exactly once within a connection: duplicates are dropped and a gap in offsets is
//! recovered by resubscribing with `since`. Played by a scripted server, since a correct
//! server only shows these under eviction or a replay overlapping live delivery.

mod support;

use serde_json::{Value, json};
use support::{ScriptedConnection, ScriptedServer, fast_client, next_event, next_offset};
use switchboard_client::SubscriptionEvent;

fn message(offset: u64) -> Value {
    json!({
        "type": "tick", "channel": "ops:feed", "payload": {"n": offset}, "id": format!("m{offset}"),
        "timestamp": 0, "priority": "normal",
        "from": {"userId": null, "connectionId": "$server"}, "offset": offset
    })
}

async fn subscribed(conn: &mut ScriptedConnection, offset: u64, recovered: bool) -> Value {
    let subscribe = conn.recv_of("subscribe").await;
    conn.send(json!({
        "type": "subscribed", "channel": "ops:feed", "id": subscribe["id"],
        "offset": offset, "epoch": "e1", "recovered": recovered
    }))
    .await;
    subscribe
}

#[tokio::test]
async fn duplicates_are_dropped_and_a_gap_is_filled_from_history() {
    let mut server = ScriptedServer::start().await;
    let client = fast_client(&server.url()).build().unwrap();
    let mut feed = client.subscribe("ops:feed").unwrap();
    let mut conn = server.accept().await;

    let first = subscribed(&mut conn, 0, false).await;
    assert_eq!(first.get("since"), None);
    assert!(matches!(
        next_event(&mut feed).await,
        SubscriptionEvent::Subscribed { .. }
    ));

    for offset in [1, 2, 2, 1] {
        conn.send(message(offset)).await;
    }
    // 3 was lost on the way: 4 reveals the gap.
    conn.send(message(4)).await;
    assert_eq!(next_offset(&mut feed).await, 1);
    assert_eq!(next_offset(&mut feed).await, 2);

    assert_eq!(conn.recv_of("unsubscribe").await["channel"], "ops:feed");
    let recovery = subscribed(&mut conn, 4, true).await;
    assert_eq!(recovery["since"], json!({"offset": 2, "epoch": "e1"}));
    for offset in [3, 4, 4, 5] {
        conn.send(message(offset)).await;
    }

    let SubscriptionEvent::Resubscribed {
        recovered,
        position,
    } = next_event(&mut feed).await
    else {
        panic!("expected Resubscribed")
    };
    assert!(recovered);
    assert_eq!(position.offset, 4);
    for expected in [3, 4, 5] {
        assert_eq!(next_offset(&mut feed).await, expected);
    }
}

#[tokio::test]
async fn a_reconnect_resubscribes_since_the_last_delivered_message() {
    let mut server = ScriptedServer::start().await;
    let client = fast_client(&server.url()).build().unwrap();
    let mut feed = client.subscribe("ops:feed").unwrap();
    let mut conn = server.accept().await;
    subscribed(&mut conn, 5, false).await;
    assert!(matches!(
        next_event(&mut feed).await,
        SubscriptionEvent::Subscribed { .. }
    ));
    conn.send(message(6)).await;
    assert_eq!(next_offset(&mut feed).await, 6);
    drop(conn);

    let mut conn = server.accept().await;
    let again = subscribed(&mut conn, 7, true).await;
    assert_eq!(again["since"], json!({"offset": 6, "epoch": "e1"}));
    // The replay overlaps what was already delivered.
    for offset in [6, 7] {
        conn.send(message(offset)).await;
    }
    assert!(matches!(
        next_event(&mut feed).await,
        SubscriptionEvent::Resubscribed {
            recovered: true,
            ..
        }
    ));
    assert_eq!(next_offset(&mut feed).await, 7);
}
