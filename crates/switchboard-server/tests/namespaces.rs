//! Channel namespaces from the configuration file, enforced by the running server on every
//! path: WebSocket frames, the HTTP API and recovery.

mod support;

use std::collections::HashMap;
use std::time::Duration;

use serde_json::json;
use support::{
    API_KEY, api_get, connect, next_json, next_of_type, publish, send_json, start, subscribe,
};
use switchboard_server::ServerConfig;

const FILE: &str = r#"
history_size = 5

[namespaces.chat]
history_size = 2
client_publish = false

[namespaces.feed]
recover = false
presence = false
history_ttl_ms = 60000
"#;

fn config() -> ServerConfig {
    let file = tempfile::Builder::new().suffix(".toml").tempfile().unwrap();
    std::fs::write(file.path(), FILE).unwrap();
    let env: HashMap<&str, &str> = HashMap::from([("PUBLISH_API_KEY", API_KEY)]);
    ServerConfig::load_from(
        [
            "switchboard",
            "--config",
            file.path().to_str().unwrap(),
            "--port",
            "0",
        ],
        |name| env.get(name).map(|v| (*v).to_owned()),
    )
    .unwrap()
    .drain_window(Duration::from_millis(50))
}

#[tokio::test]
async fn the_file_loads_each_namespace_and_leaves_the_rest_unset() {
    let config = config();
    assert_eq!(config.namespaces.len(), 2);
    let chat = &config.namespaces["chat"];
    assert_eq!((chat.history_size, chat.history_ttl), (Some(2), None));
    assert_eq!(chat.options.client_publish, Some(false));
    assert_eq!(chat.options.presence, None);
    let feed = &config.namespaces["feed"];
    assert_eq!(feed.history_ttl, Some(Duration::from_secs(60)));
    assert_eq!(
        (feed.options.recover, feed.options.presence),
        (Some(false), Some(false))
    );
}

#[tokio::test]
async fn a_namespace_bounds_history_and_refuses_what_it_turned_off_on_every_path() {
    let server = start(config()).await;
    let addr = server.local_addr();
    for channel in ["chat:lobby", "feed:news", "lobby"] {
        for i in 1..=6 {
            let body = json!({"channel": channel, "type": "m", "payload": i}).to_string();
            assert_eq!(
                publish(addr, &body).await.status,
                200,
                "the API may publish anywhere"
            );
        }
    }
    // History: chat keeps 2, feed (no size of its own) and the rest keep the global 5.
    for (channel, kept) in [("chat:lobby", 2), ("feed:news", 5), ("lobby", 5)] {
        let history = api_get(addr, &format!("/api/channels/{channel}/history?since=0")).await;
        assert_eq!(
            history.json()["recovered"],
            false,
            "{channel}: offset 1 is gone"
        );
        let since = 6 - kept;
        let history = api_get(
            addr,
            &format!("/api/channels/{channel}/history?since={since}"),
        )
        .await;
        assert_eq!(
            history.json()["messages"].as_array().map(Vec::len),
            Some(kept),
            "{channel}"
        );
    }

    let (mut ws, _) = connect(&server.ws_url()).await;
    // chat: clients may not publish.
    send_json(
        &mut ws,
        &json!({"type": "m", "channel": "chat:lobby", "payload": 1, "id": "p"}),
    )
    .await;
    let refused = next_json(&mut ws).await;
    assert_eq!(
        (&refused["code"], &refused["id"]),
        (&json!("forbidden"), &json!("p"))
    );

    // feed: a subscribe with `since` is answered as a fresh one; presence is off, here and
    // through the API.
    let epoch = api_get(addr, "/api/channels/feed:news/history")
        .await
        .json()["epoch"]
        .clone();
    send_json(
        &mut ws,
        &json!({"type": "subscribe", "channel": "feed:news", "since": {"offset": 4, "epoch": epoch}}),
    )
    .await;
    let subscribed = next_of_type(&mut ws, "subscribed").await;
    assert_eq!(
        (&subscribed["recovered"], &subscribed["offset"]),
        (&json!(false), &json!(6))
    );
    send_json(
        &mut ws,
        &json!({"type": "presence", "channel": "feed:news", "id": "q"}),
    )
    .await;
    assert_eq!(next_json(&mut ws).await["code"], "unsupported");
    let presence = api_get(addr, "/api/channels/feed:news/presence").await;
    assert_eq!(presence.status, 400);
    assert_eq!(presence.json()["error"], "unsupported");

    // A channel in no namespace keeps everything.
    subscribe(&mut ws, "lobby").await;
    send_json(
        &mut ws,
        &json!({"type": "m", "channel": "lobby", "payload": 7, "id": "ok"}),
    )
    .await;
    assert_eq!(next_of_type(&mut ws, "ack").await["id"], "ok");
    assert_eq!(
        api_get(addr, "/api/channels/lobby/presence").await.status,
        200
    );
}
