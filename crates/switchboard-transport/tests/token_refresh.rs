//! `refresh`: new credentials on an open connection (Protocol v1), over real sockets.

mod support;

use std::time::Duration;

use serde_json::json;
use support::{Client, SECRET, Server, token, unix_now};
use switchboard_transport::{Authenticator, TokenVerifier, TransportConfig};

async fn jwt_server(leeway: Duration) -> Server {
    let verifier = TokenVerifier::hs256(SECRET).unwrap().leeway(leeway);
    Server::start(TransportConfig::default(), Authenticator::jwt(verifier)).await
}

async fn connect(server: &Server, token: &str) -> Client {
    Client::connect(&format!("{}?token={token}", server.url())).await
}

fn refresh(token: &str, id: &str) -> String {
    json!({"type": "refresh", "token": token, "id": id}).to_string()
}

#[tokio::test]
async fn a_refresh_swaps_the_credentials_and_drops_the_subscriptions_they_no_longer_allow() {
    let server = jwt_server(Duration::from_secs(30)).await;
    let exp = unix_now() + 60;
    let mut c = connect(
        &server,
        &token(&json!({"sub": "ada", "exp": exp, "channels": ["a:*", "b:*"]})),
    )
    .await;
    assert_eq!(
        c.welcome["expiresAt"],
        exp * 1000,
        "the welcome says when to refresh"
    );
    c.subscribe("a:1").await;
    c.subscribe("b:1").await;

    let new_exp = unix_now() + 3600;
    c.send(&refresh(
        &token(&json!({"sub": "ada", "exp": new_exp, "channels": ["a:*"]})),
        "r1",
    ))
    .await;
    assert_eq!(
        c.recv().await,
        json!({"type": "unsubscribed", "channel": "b:1", "reason": "forbidden"})
    );
    assert_eq!(
        c.recv().await,
        json!({"type": "refreshed", "id": "r1", "expiresAt": new_exp * 1000})
    );
    // The new claims apply from now on; the kept subscription still works.
    c.send(r#"{"type":"subscribe","channel":"b:2","id":"s"}"#)
        .await;
    assert_eq!(c.recv().await["code"], "forbidden");
    c.send(r#"{"type":"said","channel":"a:1","payload":1,"id":"p"}"#)
        .await;
    assert_eq!(c.recv_of("said").await["channel"], "a:1");
}

#[tokio::test]
async fn a_token_for_another_user_or_an_invalid_one_is_refused_and_nothing_changes() {
    let server = jwt_server(Duration::from_secs(30)).await;
    let mut c = connect(
        &server,
        &token(&json!({"sub": "ada", "exp": unix_now() + 60, "channels": ["a:*"]})),
    )
    .await;
    let stranger = token(&json!({"sub": "bob", "exp": unix_now() + 3600, "channels": ["*"]}));
    for (frame, id) in [
        (refresh(&stranger, "r1"), "r1"),
        (refresh("not-a-jwt", "r2"), "r2"),
        (
            refresh(
                &token(&json!({"sub": "ada", "exp": unix_now() - 3600})),
                "r3",
            ),
            "r3",
        ),
    ] {
        c.send(&frame).await;
        let answer = c.recv().await;
        assert_eq!(
            (answer["code"].as_str(), answer["id"].as_str()),
            (Some("unauthorized"), Some(id)),
            "{answer}"
        );
    }
    // Still Ada with her old claims: the stranger's `*` did not apply.
    c.send(r#"{"type":"subscribe","channel":"z:1","id":"s"}"#)
        .await;
    assert_eq!(c.recv().await["code"], "forbidden");
    assert_eq!(c.subscribe("a:1").await["channel"], "a:1");
    // A refresh without a token is malformed.
    c.send(r#"{"type":"refresh","id":"r4"}"#).await;
    assert_eq!(c.recv().await["code"], "bad_request");
}

#[tokio::test]
async fn the_connection_closes_at_the_new_expiry_not_the_old_one() {
    // No leeway: the expiry is the token's `exp`.
    let server = jwt_server(Duration::ZERO).await;
    // At least one second left on the short token, and one more on the long one's new
    // token, whatever fraction of the current second has passed.
    let now = unix_now();
    let mut short = connect(&server, &token(&json!({"sub": "ada", "exp": now + 2}))).await;
    let mut long = connect(&server, &token(&json!({"sub": "ada", "exp": now + 3600}))).await;

    // The short-lived connection extends itself; the long-lived one shortens itself.
    short
        .send(&refresh(
            &token(&json!({"sub": "ada", "exp": now + 3600})),
            "r",
        ))
        .await;
    assert_eq!(short.recv().await["type"], "refreshed");
    long.send(&refresh(
        &token(&json!({"sub": "ada", "exp": now + 3})),
        "r",
    ))
    .await;
    assert_eq!(long.recv().await["type"], "refreshed");

    assert_eq!(long.closed_within(Duration::from_secs(6)).await, 4001);
    // The long one closed at `now + 3`, so the short one's first token (`now + 2`) has
    // expired by now; it is still served.
    short.send(r#"{"type":"ping","id":"p"}"#).await;
    assert_eq!(short.recv().await["type"], "pong");
}

#[tokio::test]
async fn without_tokens_a_refresh_is_unsupported() {
    let server = Server::open().await;
    let mut c = server.connect().await;
    assert!(c.welcome.get("expiresAt").is_none(), "{}", c.welcome);
    c.send(&refresh("anything", "r")).await;
    let answer = c.recv().await;
    assert_eq!(
        (answer["code"].as_str(), answer["id"].as_str()),
        (Some("unsupported"), Some("r"))
    );
}
