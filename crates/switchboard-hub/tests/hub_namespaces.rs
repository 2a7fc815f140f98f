//! Channel namespaces: what each option turns off, on every path, and that channels in no
//! configured namespace keep everything.

mod support;

use support::{Client, memory};
use switchboard_hub::{Hub, HubConfig, Identity, NamespaceOptions};
use switchboard_protocol::ChannelName;

fn hub_with(name: &str, options: NamespaceOptions) -> Hub<switchboard_backplane::MemoryBackplane> {
    Hub::builder(memory())
        .config(HubConfig::default().namespace(name, options))
        .build()
}

#[tokio::test]
async fn without_client_publish_clients_are_forbidden_and_the_server_still_publishes() {
    let hub = hub_with("news", NamespaceOptions::default().client_publish(false));
    let mut reader = Client::connect(&hub, Identity::anonymous());
    reader.subscribe("news:today").await;
    let mut writer = Client::connect(&hub, Identity::user("ada"));
    writer
        .send(r#"{"type":"story","channel":"news:today","payload":1,"id":"p1"}"#)
        .await;
    let refused = writer.next().await;
    assert_eq!(
        (refused["code"].as_str(), refused["id"].as_str()),
        (Some("forbidden"), Some("p1"))
    );
    assert!(reader.is_quiet().await, "a refused publish was delivered");

    // Server-side publishing is not a client's.
    hub.publish(switchboard_hub::ServerMessage::new(
        ChannelName::new("news:today").unwrap(),
        switchboard_protocol::EventType::new("story").unwrap(),
        switchboard_protocol::Payload::from_value(&serde_json::json!(2)),
    ))
    .await
    .unwrap();
    assert_eq!(reader.next().await["payload"], 2);
    // Other namespaces, and channels in none, are untouched.
    for channel in ["sports:today", "lobby"] {
        writer
            .send(&format!(
                r#"{{"type":"t","channel":"{channel}","payload":1,"id":"ok"}}"#
            ))
            .await;
        assert_eq!(writer.next().await["type"], "ack", "{channel}");
    }
}

#[tokio::test]
async fn without_anonymous_only_signed_in_connections_subscribe_publish_and_list() {
    let hub = hub_with("team", NamespaceOptions::default().anonymous(false));
    let mut guest = Client::connect(&hub, Identity::anonymous());
    for frame in [
        r#"{"type":"subscribe","channel":"team:ops","id":"s"}"#,
        r#"{"type":"t","channel":"team:ops","payload":1,"id":"p"}"#,
        r#"{"type":"presence","channel":"team:ops","id":"q"}"#,
    ] {
        guest.send(frame).await;
        let refused = guest.next().await;
        assert_eq!(refused["code"], "forbidden", "{frame}: {refused}");
    }
    assert_eq!(hub.subscriber_count("team:ops"), 0);
    guest.subscribe("lobby").await;
    let mut member = Client::connect(&hub, Identity::user("ada"));
    member.subscribe("team:ops").await;
}

#[tokio::test]
async fn without_recover_a_subscribe_since_is_answered_as_a_fresh_one() {
    let hub = hub_with("live", NamespaceOptions::default().recover(false));
    let mut c = Client::connect(&hub, Identity::anonymous());
    for channel in ["live:scores", "kept:scores"] {
        for i in 1..=3 {
            c.send(&format!(
                r#"{{"type":"t","channel":"{channel}","payload":{i}}}"#
            ))
            .await;
        }
    }
    let epoch = |channel: &str| {
        let hub = hub.clone();
        let channel = ChannelName::new(channel).unwrap();
        async move { hub.position(&channel).await.unwrap().epoch.to_string() }
    };
    let live = epoch("live:scores").await;
    c.send(&format!(
        r#"{{"type":"subscribe","channel":"live:scores","since":{{"offset":1,"epoch":"{live}"}}}}"#
    ))
    .await;
    let answer = c.next().await;
    assert_eq!(
        (answer["recovered"].as_bool(), answer["offset"].as_u64()),
        (Some(false), Some(3))
    );
    assert!(c.is_quiet().await, "nothing is replayed");

    let kept = epoch("kept:scores").await;
    c.send(&format!(
        r#"{{"type":"subscribe","channel":"kept:scores","since":{{"offset":1,"epoch":"{kept}"}}}}"#
    ))
    .await;
    assert_eq!(c.next().await["recovered"], true);
    assert_eq!(c.next().await["payload"], 2);
}

#[tokio::test]
async fn without_presence_announcing_and_listing_are_unsupported_and_nothing_is_stored() {
    let hub = hub_with("quiet", NamespaceOptions::default().presence(false));
    let mut c = Client::connect(&hub, Identity::user("ada"));
    c.subscribe("quiet:room").await;
    c.subscribe("loud:room").await;
    c.send(r#"{"type":"presence-update","channel":"quiet:room","status":"busy"}"#)
        .await;
    assert_eq!(c.next().await["code"], "unsupported");
    c.send(r#"{"type":"presence","channel":"quiet:room","id":"q"}"#)
        .await;
    let refused = c.next().await;
    assert_eq!(
        (refused["code"].as_str(), refused["id"].as_str()),
        (Some("unsupported"), Some("q"))
    );

    // Presence for every channel reaches only those where it is on.
    c.send(r#"{"type":"presence-update","status":"away"}"#)
        .await;
    let joined = c.next_of("presence-update").await;
    assert_eq!(joined["channel"], "loud:room");
    assert!(c.is_quiet().await);
    assert!(matches!(
        hub.presence(&ChannelName::new("quiet:room").unwrap()).await,
        Err(switchboard_hub::HubError::PresenceOff(namespace)) if namespace == "quiet"
    ));
    assert_eq!(
        hub.presence(&ChannelName::new("loud:room").unwrap())
            .await
            .unwrap()
            .len(),
        1
    );
}

#[tokio::test]
async fn without_join_leave_members_are_listed_but_joins_and_leaves_are_not_sent() {
    let hub = hub_with("big", NamespaceOptions::default().join_leave(false));
    let mut watcher = Client::connect(&hub, Identity::user("w"));
    watcher.subscribe("big:hall").await;
    let mut ada = Client::connect(&hub, Identity::user("ada"));
    ada.subscribe("big:hall").await;
    ada.send(r#"{"type":"presence-update","channel":"big:hall","status":"online"}"#)
        .await;
    // The join is stored (listed) but not announced; a later status change is.
    let channel = ChannelName::new("big:hall").unwrap();
    tokio::time::timeout(std::time::Duration::from_secs(5), async {
        while hub.presence(&channel).await.unwrap().is_empty() {
            tokio::task::yield_now().await;
        }
    })
    .await
    .expect("the member is listed");
    ada.send(r#"{"type":"presence-update","channel":"big:hall","status":"busy"}"#)
        .await;
    let update = watcher.next_of("presence-update").await;
    assert_eq!(update["action"], "update", "{update}");
    ada.send(r#"{"type":"unsubscribe","channel":"big:hall"}"#)
        .await;
    assert_eq!(ada.next_of("unsubscribed").await["channel"], "big:hall");
    assert!(watcher.is_quiet().await, "the leave was announced");
}
