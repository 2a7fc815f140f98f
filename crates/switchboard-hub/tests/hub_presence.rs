//! Presence: join, update, leave, listing, and announcements without a channel.

mod support;

use serde_json::json;
use support::{Client, hub};
use switchboard_hub::Identity;

#[tokio::test]
async fn the_first_announcement_joins_and_later_ones_update_for_every_subscriber() {
    let hub = hub();
    let mut alice = Client::connect(&hub, Identity::user("alice"));
    let mut bob = Client::connect(&hub, Identity::user("bob"));
    alice.subscribe("room").await;
    bob.subscribe("room").await;

    alice
        .send(r#"{"type":"presence-update","channel":"room","currentFeature":"board","meta":{"tab":1}}"#)
        .await;
    let mut joined_at = None;
    for c in [&mut alice, &mut bob] {
        let ev = c.next_of("presence-update").await;
        joined_at = ev["member"]["joinedAt"].as_u64();
        assert_eq!(ev["action"], "join");
        assert_eq!(ev["channel"], "room");
        assert_eq!(ev["member"]["userId"], "alice");
        assert_eq!(ev["member"]["status"], "online");
        assert_eq!(ev["member"]["currentFeature"], "board");
        assert_eq!(ev["member"]["meta"], json!({"tab": 1}));
    }

    alice
        .send(r#"{"type":"presence-update","channel":"room","status":"away"}"#)
        .await;
    let ev = bob.next_of("presence-update").await;
    assert_eq!(ev["action"], "update");
    assert_eq!(ev["member"]["status"], "away");
    // Fields not given keep their values.
    assert_eq!(ev["member"]["currentFeature"], "board");
    // An update keeps the time the member joined.
    assert!(joined_at.is_some());
    assert_eq!(ev["member"]["joinedAt"].as_u64(), joined_at);
}

#[tokio::test]
async fn unsubscribe_and_disconnect_broadcast_leave() {
    let hub = hub();
    let mut alice = Client::connect(&hub, Identity::user("alice"));
    let mut bob = Client::connect(&hub, Identity::user("bob"));
    alice.subscribe("room").await;
    bob.subscribe("room").await;
    alice
        .send(r#"{"type":"presence-update","channel":"room"}"#)
        .await;
    bob.next_of("presence-update").await;

    alice
        .send(r#"{"type":"unsubscribe","channel":"room","id":"u"}"#)
        .await;
    assert_eq!(alice.next_of("unsubscribed").await["id"], "u");
    let leave = bob.next_of("presence-update").await;
    assert_eq!(leave["action"], "leave");
    assert_eq!(leave["member"]["userId"], "alice");

    let mut carol = Client::connect(&hub, Identity::user("carol"));
    carol.subscribe("room").await;
    carol
        .send(r#"{"type":"presence-update","channel":"room"}"#)
        .await;
    assert_eq!(bob.next_of("presence-update").await["action"], "join");
    carol
        .conn
        .disconnect(switchboard_hub::DisconnectReason::ClientClosed)
        .await;
    let leave = bob.next_of("presence-update").await;
    assert_eq!(
        (leave["action"].as_str(), leave["member"]["userId"].as_str()),
        (Some("leave"), Some("carol"))
    );
}

#[tokio::test]
async fn presence_without_a_channel_applies_to_current_and_later_subscriptions() {
    let hub = hub();
    let mut watcher = Client::connect(&hub, Identity::user("w"));
    watcher.subscribe("a").await;
    watcher.subscribe("b").await;
    let mut u = Client::connect(&hub, Identity::user("u"));
    u.subscribe("a").await;
    u.send(r#"{"type":"presence-update","status":"busy"}"#)
        .await;
    let ev = watcher.next_of("presence-update").await;
    assert_eq!(
        (ev["channel"].as_str(), ev["action"].as_str()),
        (Some("a"), Some("join"))
    );
    // The sender receives its own join too.
    assert_eq!(u.next_of("presence-update").await["channel"], "a");

    u.subscribe("b").await;
    let ev = watcher.next_of("presence-update").await;
    assert_eq!(ev["channel"], "b");
    assert_eq!(ev["action"], "join");
    assert_eq!(ev["member"]["status"], "busy");
}

#[tokio::test]
async fn announcing_on_a_channel_one_is_not_subscribed_to_is_not_subscribed() {
    let hub = hub();
    let mut c = Client::connect(&hub, Identity::anonymous());
    c.send(r#"{"type":"presence-update","channel":"elsewhere"}"#)
        .await;
    assert_eq!(c.next().await["code"], "not_subscribed");
    c.send(r#"{"type":"unsubscribe","channel":"elsewhere","id":"x"}"#)
        .await;
    let err = c.next().await;
    assert_eq!(
        (err["code"].as_str(), err["id"].as_str()),
        (Some("not_subscribed"), Some("x"))
    );
}

#[tokio::test]
async fn listing_presence_needs_only_the_right_to_subscribe() {
    let hub = hub();
    let mut member = Client::connect(&hub, Identity::user("m"));
    member.subscribe("team:1").await;
    member
        .send(r#"{"type":"presence-update","channel":"team:1","meta":{"password":"x","seat":3}}"#)
        .await;
    member.next_of("presence-update").await;

    let mut viewer = Client::connect(&hub, Identity::user("v").with_channels(["team:*"]));
    viewer
        .send(r#"{"type":"presence","channel":"team:1","id":"q"}"#)
        .await;
    let list = viewer.next().await;
    assert_eq!(list["type"], "presence");
    assert_eq!(list["id"], "q");
    let members = list["members"].as_array().unwrap();
    assert_eq!(members.len(), 1);
    assert_eq!(members[0]["userId"], "m");

    let mut outsider = Client::connect(&hub, Identity::user("o").with_channels(["other"]));
    outsider
        .send(r#"{"type":"presence","channel":"team:1","id":"q2"}"#)
        .await;
    assert_eq!(outsider.next().await["code"], "forbidden");
}

#[tokio::test]
async fn presence_meta_is_redacted() {
    use switchboard_hub::{Hub, HubConfig};
    let hub = Hub::builder(support::memory())
        .config(HubConfig::default().redact_fields(["password"]))
        .build();
    let mut c = Client::connect(&hub, Identity::user("m"));
    c.subscribe("t").await;
    c.send(r#"{"type":"presence-update","channel":"t","meta":{"Password":"x","nested":{"password":1,"k":2}}}"#)
        .await;
    let ev = c.next_of("presence-update").await;
    assert_eq!(ev["member"]["meta"], json!({"nested": {"k": 2}}));
}

#[tokio::test(start_paused = true)]
async fn members_of_a_crashed_instance_expire_by_ttl_and_leave_is_broadcast() {
    use std::time::Duration;
    use switchboard_backplane::{Backplane, MemoryBackplane, MemoryBackplaneConfig};
    let memory = MemoryBackplane::new(
        MemoryBackplaneConfig::default()
            .presence_ttl(Duration::from_secs(60))
            .presence_sweep(Duration::from_secs(10)),
    );
    let hub = switchboard_hub::Hub::new(memory.new_instance());
    let mut watcher = Client::connect(&hub, Identity::user("w"));
    watcher.subscribe("room").await;

    // A member announced by an instance that then crashed: nobody refreshes it.
    let ghost = switchboard_protocol::Member {
        connection_id: "ghost".into(),
        user_id: Some("g".into()),
        status: "online".into(),
        current_feature: None,
        meta: None,
        joined_at: 1,
        last_seen: 1,
    };
    memory
        .presence_set("room", "ghost", serde_json::to_vec(&ghost).unwrap().into())
        .await
        .unwrap();
    assert_eq!(watcher.next_of("presence-update").await["action"], "join");

    tokio::time::advance(Duration::from_secs(75)).await;
    let leave = watcher.next_of("presence-update").await;
    assert_eq!(leave["action"], "leave");
    assert_eq!(leave["member"]["connectionId"], "ghost");
}

#[tokio::test(start_paused = true)]
async fn live_members_are_refreshed_and_never_expire_while_connected() {
    use std::time::Duration;
    use switchboard_backplane::{MemoryBackplane, MemoryBackplaneConfig};
    use switchboard_hub::{Hub, HubConfig};
    let memory = MemoryBackplane::new(
        MemoryBackplaneConfig::default()
            .presence_ttl(Duration::from_secs(60))
            .presence_sweep(Duration::from_secs(10)),
    );
    let hub = Hub::builder(memory)
        .config(HubConfig::default().presence_refresh(Duration::from_secs(20)))
        .build();
    let mut member = Client::connect(&hub, Identity::user("m"));
    member.subscribe("room").await;
    member
        .send(r#"{"type":"presence-update","channel":"room"}"#)
        .await;
    member.next_of("presence-update").await;

    for _ in 0..10 {
        tokio::time::advance(Duration::from_secs(20)).await;
        for _ in 0..50 {
            tokio::task::yield_now().await;
        }
    }
    assert!(member.is_quiet().await, "a live member expired");
    member.send(r#"{"type":"presence","channel":"room"}"#).await;
    assert_eq!(
        member.next_of("presence").await["members"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
}
