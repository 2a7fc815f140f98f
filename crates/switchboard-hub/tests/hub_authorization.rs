//! Claims decide who may subscribe, publish and list presence.

mod support;

use support::{Client, hub};
use switchboard_hub::Identity;

#[tokio::test]
async fn subscribing_outside_the_channels_claim_is_forbidden_with_the_request_id() {
    let hub = hub();
    let mut c = Client::connect(&hub, Identity::user("u").with_channels(["tasks:*"]));
    c.send(r#"{"type":"subscribe","channel":"admin:notifications","id":"s1"}"#)
        .await;
    let err = c.next().await;
    assert_eq!(err["type"], "error");
    assert_eq!(err["code"], "forbidden");
    assert_eq!(err["id"], "s1");
    assert_eq!(hub.subscriber_count("admin:notifications"), 0);
    c.subscribe("tasks:team/1").await;
}

#[tokio::test]
async fn publishing_outside_the_publish_claim_is_forbidden_and_not_delivered() {
    let hub = hub();
    let mut reader = Client::connect(&hub, Identity::anonymous());
    reader.subscribe("announcements").await;
    let mut c = Client::connect(
        &hub,
        Identity::user("u")
            .with_channels(["*"])
            .with_publish(["chat:*"]),
    );
    c.send(r#"{"type":"t","channel":"announcements","payload":1,"id":"p1"}"#)
        .await;
    let err = c.next().await;
    assert_eq!(
        (err["code"].as_str(), err["id"].as_str()),
        (Some("forbidden"), Some("p1"))
    );
    assert!(reader.is_quiet().await, "a forbidden publish was delivered");
}

#[tokio::test]
async fn the_channels_claim_governs_publishing_when_there_is_no_publish_claim() {
    let hub = hub();
    let mut c = Client::connect(&hub, Identity::user("u").with_channels(["room:*"]));
    c.send(r#"{"type":"t","channel":"room:1","payload":1,"id":"ok"}"#)
        .await;
    assert_eq!(c.next().await["type"], "ack");
    c.send(r#"{"type":"t","channel":"lobby","payload":1,"id":"no"}"#)
        .await;
    assert_eq!(c.next().await["code"], "forbidden");
}

#[tokio::test]
async fn a_custom_authorizer_replaces_the_claims_policy() {
    use switchboard_hub::{Action, Hub};
    let hub = Hub::builder(support::memory())
        .authorizer(
            |_: &Identity, action: Action, channel: &switchboard_protocol::ChannelName| {
                action != Action::Publish || channel.starts_with("open:")
            },
        )
        .build();
    let mut c = Client::connect(&hub, Identity::anonymous());
    c.send(r#"{"type":"t","channel":"closed","payload":1,"id":"x"}"#)
        .await;
    assert_eq!(c.next().await["code"], "forbidden");
}

#[tokio::test]
async fn the_subscription_cap_per_connection_is_enforced() {
    use std::num::NonZeroUsize;
    use switchboard_hub::{Hub, HubConfig};
    let hub = Hub::builder(support::memory())
        .config(
            HubConfig::default().max_subscriptions_per_connection(NonZeroUsize::new(2).unwrap()),
        )
        .build();
    let mut c = Client::connect(&hub, Identity::anonymous());
    c.subscribe("a").await;
    c.subscribe("b").await;
    c.send(r#"{"type":"subscribe","channel":"c","id":"third"}"#)
        .await;
    let err = c.next().await;
    assert_eq!(err["code"], "bad_request");
    assert_eq!(err["id"], "third");
    assert!(err["message"].as_str().unwrap().contains("at most 2"));
}
