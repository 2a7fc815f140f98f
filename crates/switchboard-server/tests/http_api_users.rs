//! The HTTP API's user and channel operations on one instance (memory backplane):
//! disconnect, subscribe and unsubscribe a user's connections, list channels, occupancy.
//! The same across instances over Redis is in tests/tests/e2e_redis_instances.rs.

mod support;

use serde_json::json;
use support::{
    API_KEY, WAIT, Ws, api_get, api_post, close_code, connect, next_json, next_of_type, send_json,
    start, subscribe, test_config,
};
use switchboard_server::Server;

const SECRET: &str = "a-test-secret-that-is-long-enough";

async fn server() -> Server {
    start(
        test_config()
            .publish_api_key(Some(API_KEY))
            .jwt_secret(Some(SECRET)),
    )
    .await
}

/// A connection of `user`.
async fn as_user(server: &Server, user: &str) -> Ws {
    let token = support::user_token(SECRET, user);
    connect(&format!("{}?token={token}", server.ws_url()))
        .await
        .0
}

/// Proves `ws` is open and nothing was queued for it before: a ping's pong is the next frame.
async fn nothing_else(ws: &mut Ws) {
    send_json(ws, &json!({"type": "ping", "id": "probe"})).await;
    let next = next_json(ws).await;
    assert_eq!(
        (&next["type"], &next["id"]),
        (&json!("pong"), &json!("probe")),
        "{next}"
    );
}

#[tokio::test]
async fn disconnect_closes_every_connection_of_the_user_with_the_code_and_reason() {
    let server = server().await;
    let addr = server.local_addr();
    let mut ada1 = as_user(&server, "ada").await;
    let mut ada2 = as_user(&server, "ada").await;
    let mut bob = as_user(&server, "bob").await;

    let answer = api_post(addr, "/api/users/ada/disconnect", "").await;
    assert_eq!(answer.status, 200, "{}", answer.text());
    assert_eq!(answer.json(), json!({"disconnected": 2, "complete": true}));
    assert_eq!(close_code(&mut ada1).await, 4003);
    assert_eq!(close_code(&mut ada2).await, 4003);
    nothing_else(&mut bob).await;

    // A code and reason of the caller's choosing reach the client as sent.
    let answer = api_post(
        addr,
        "/api/users/bob/disconnect",
        r#"{"code":4100,"reason":"account suspended"}"#,
    )
    .await;
    assert_eq!(answer.json()["disconnected"], 1);
    let frame = tokio::time::timeout(WAIT, async {
        use futures_util::StreamExt;
        loop {
            if let tokio_tungstenite::tungstenite::Message::Close(Some(frame)) =
                bob.next().await.unwrap().unwrap()
            {
                return frame;
            }
        }
    })
    .await
    .unwrap();
    assert_eq!(u16::from(frame.code), 4100);
    assert_eq!(frame.reason.as_str(), "account suspended");

    // Nobody left: zero, not an error.
    let answer = api_post(addr, "/api/users/ada/disconnect", "{}").await;
    assert_eq!(answer.json(), json!({"disconnected": 0, "complete": true}));

    // Counted per connection at once, and each close by its reason once its session ended
    // (after the client's closing handshake).
    let has = |metrics: &str, line: &str| metrics.lines().any(|l| l == line);
    let metrics = support::get(addr, "/metrics/prometheus").await.text();
    let ordered = r#"websocket_server_commands_total{action="disconnect"} 3"#;
    assert!(has(&metrics, ordered), "{ordered} missing from\n{metrics}");
    let closed = r#"websocket_disconnections_by_reason_total{reason="server_disconnect"} 3"#;
    tokio::time::timeout(WAIT, async {
        while !has(
            &support::get(addr, "/metrics/prometheus").await.text(),
            closed,
        ) {
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
    })
    .await
    .expect("the three sessions end as disconnected by the server");
}

#[tokio::test]
async fn a_server_subscribe_reaches_each_connection_of_the_user_and_recovers_from_since() {
    let server = server().await;
    let addr = server.local_addr();
    let mut ada1 = as_user(&server, "ada").await;
    let mut ada2 = as_user(&server, "ada").await;
    let mut bob = as_user(&server, "bob").await;
    for i in 1..=3 {
        let published = support::publish(
            addr,
            &format!(r#"{{"channel":"news","type":"story","payload":{i}}}"#),
        )
        .await;
        assert_eq!(published.status, 200);
    }
    let epoch = api_get(addr, "/api/channels/news/history").await.json()["epoch"]
        .as_str()
        .unwrap()
        .to_owned();

    let answer = api_post(
        addr,
        "/api/users/ada/subscribe",
        &json!({"channel": "news", "since": {"offset": 1, "epoch": epoch}}).to_string(),
    )
    .await;
    assert_eq!(answer.status, 200, "{}", answer.text());
    assert_eq!(answer.json(), json!({"subscribed": 2, "complete": true}));
    for ws in [&mut ada1, &mut ada2] {
        let subscribed = next_json(ws).await;
        assert_eq!(subscribed["type"], "subscribed");
        assert_eq!(subscribed["server"], true);
        assert_eq!(subscribed["recovered"], true, "{subscribed}");
        assert_eq!(subscribed["offset"], 3);
        // What it missed, then live messages, as after its own subscribe.
        assert_eq!(next_json(ws).await["payload"], 2);
        assert_eq!(next_json(ws).await["payload"], 3);
    }
    nothing_else(&mut bob).await;
    support::publish(addr, r#"{"channel":"news","type":"story","payload":4}"#).await;
    for ws in [&mut ada1, &mut ada2] {
        assert_eq!(next_of_type(ws, "story").await["payload"], 4);
    }

    // Occupancy and the channel list count them; bob's own subscription counts too.
    subscribe(&mut bob, "news").await;
    let occupancy = api_get(addr, "/api/channels/news/occupancy").await;
    assert_eq!(
        occupancy.json(),
        json!({"channel": "news", "connections": 3, "users": 2, "complete": true})
    );
    subscribe(&mut bob, "newsroom").await;
    subscribe(&mut bob, "sports").await;
    let listed = api_get(addr, "/api/channels?prefix=news").await;
    assert_eq!(
        listed.json(),
        json!({"channels": [
            {"channel": "news", "connections": 3},
            {"channel": "newsroom", "connections": 1},
        ], "complete": true})
    );
    let all = api_get(addr, "/api/channels").await.json();
    assert_eq!(all["channels"].as_array().unwrap().len(), 3);

    // The server unsubscribes her: each of her connections is told, and nothing more comes.
    let answer = api_post(addr, "/api/users/ada/unsubscribe", r#"{"channel":"news"}"#).await;
    assert_eq!(answer.json(), json!({"unsubscribed": 2, "complete": true}));
    for ws in [&mut ada1, &mut ada2] {
        assert_eq!(
            next_json(ws).await,
            json!({"type": "unsubscribed", "channel": "news", "reason": "server"})
        );
    }
    support::publish(addr, r#"{"channel":"news","type":"story","payload":5}"#).await;
    assert_eq!(next_of_type(&mut bob, "story").await["payload"], 5);
    for ws in [&mut ada1, &mut ada2] {
        nothing_else(ws).await;
    }
    let occupancy = api_get(addr, "/api/channels/news/occupancy").await;
    assert_eq!(occupancy.json()["connections"], 1);
}

#[tokio::test]
async fn user_and_channel_routes_need_the_key_the_method_and_valid_input() {
    let server = server().await;
    let addr = server.local_addr();
    let unauthorized = support::request(
        addr,
        http::Request::post("/api/users/ada/disconnect")
            .body(http_body_util::Full::default())
            .unwrap(),
    )
    .await;
    assert_eq!(unauthorized.status, 401);
    let unauthorized = support::request(
        addr,
        http::Request::get("/api/channels")
            .body(http_body_util::Full::default())
            .unwrap(),
    )
    .await;
    assert_eq!(unauthorized.status, 401);

    assert_eq!(api_get(addr, "/api/users/ada/disconnect").await.status, 405);
    assert_eq!(api_post(addr, "/api/channels", "").await.status, 405);
    assert_eq!(api_post(addr, "/api/users/ada/kick", "").await.status, 404);

    for (path, body) in [
        ("/api/users/ada/disconnect", r#"{"code":1000}"#),
        ("/api/users/ada/disconnect", r#"{"code":5000}"#),
        ("/api/users/ada/disconnect", r#"{"reason":"x","extra":1}"#),
        ("/api/users/ada/disconnect", "not json"),
        ("/api/users/ada/subscribe", "{}"),
        ("/api/users/ada/subscribe", r#"{"channel":"bad channel"}"#),
        ("/api/users/ada/unsubscribe", r#"{"channel":""}"#),
        ("/api/users/%ff/subscribe", r#"{"channel":"news"}"#),
    ] {
        let answer = api_post(addr, path, body).await;
        assert_eq!(answer.status, 400, "{path} {body}: {}", answer.text());
        assert_eq!(answer.json()["error"], "bad_request");
    }
    let long_reason = json!({"reason": "r".repeat(124)}).to_string();
    let answer = api_post(addr, "/api/users/ada/disconnect", &long_reason).await;
    assert_eq!(answer.status, 400);
    assert_eq!(
        api_get(addr, "/api/channels/bad%20channel/occupancy")
            .await
            .status,
        400
    );
    assert_eq!(api_get(addr, "/api/channels?prefix=%ff").await.status, 400);
}
