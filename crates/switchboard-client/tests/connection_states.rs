//! The connection state a client reports, from connecting to closing or giving up.

mod support;

use std::time::{Duration, SystemTime};

use support::{
    SECRET, Server, WAIT, fast_client, jwt_auth, transport_config, user_token, wait_state,
};
use switchboard_backplane::MemoryBackplaneConfig;
use switchboard_client::{ConnectionState, DisconnectReason};
use switchboard_transport::{Authenticator, TokenVerifier};

#[tokio::test]
async fn client_connects_then_reports_disconnected_after_close() {
    let server = Server::open().await;
    let client = fast_client(&server.url()).build().unwrap();
    let connected = wait_state(&client, ConnectionState::is_connected).await;
    let ConnectionState::Connected {
        connection_id,
        user_id,
    } = connected
    else {
        unreachable!()
    };
    assert!(!connection_id.is_empty());
    assert_eq!(user_id, None);
    assert_eq!(server.transport.connection_count(), 1);

    client.close().await;
    assert_eq!(
        *client.state().borrow(),
        ConnectionState::Disconnected {
            reason: DisconnectReason::ClientClosed
        }
    );
    assert!(
        client.subscribe("anything").is_err(),
        "a closed client refuses work"
    );
}

#[tokio::test]
async fn client_sends_its_token_and_the_server_knows_the_user() {
    let server = Server::with(
        MemoryBackplaneConfig::default(),
        jwt_auth(),
        transport_config(),
        "127.0.0.1:0".parse().unwrap(),
    )
    .await;
    let client = fast_client(&server.url())
        .token(user_token("alice"))
        .build()
        .unwrap();
    let state = wait_state(&client, ConnectionState::is_connected).await;
    assert!(matches!(state, ConnectionState::Connected { user_id: Some(u), .. } if u == "alice"));
    assert!(!format!("{client:?}").contains(&user_token("alice")[..20]));
}

#[tokio::test]
async fn client_gives_up_with_error_when_the_server_refuses_its_credentials() {
    let server = Server::with(
        MemoryBackplaneConfig::default(),
        jwt_auth(),
        transport_config(),
        "127.0.0.1:0".parse().unwrap(),
    )
    .await;
    let client = fast_client(&server.url()).build().unwrap();
    let state = wait_state(&client, ConnectionState::is_final).await;
    let ConnectionState::Error { reason, attempts } = state else {
        panic!("expected Error, got {state:?}")
    };
    assert_eq!(attempts, 0, "a 401 is not retried");
    assert!(
        matches!(&reason, DisconnectReason::Rejected { status: 401, error: Some(e), .. } if e == "unauthorized"),
        "{reason:?}"
    );
    assert!(!reason.should_reconnect());
    assert_eq!(client.connected().await, Err(reason));
}

#[tokio::test]
async fn client_stays_away_when_the_server_disconnects_its_user() {
    let server = Server::with(
        MemoryBackplaneConfig::default(),
        jwt_auth(),
        transport_config(),
        "127.0.0.1:0".parse().unwrap(),
    )
    .await;
    let client = fast_client(&server.url())
        .token(user_token("alice"))
        .build()
        .unwrap();
    client.connected().await.unwrap();
    let disconnected = server
        .hub
        .disconnect_user("alice", 4003, "disconnected by server")
        .await
        .unwrap();
    assert_eq!(disconnected.value, 1);
    let state = wait_state(&client, ConnectionState::is_final).await;
    let ConnectionState::Error { reason, .. } = state else {
        panic!("expected Error, got {state:?}")
    };
    assert!(
        matches!(&reason, DisconnectReason::Closed { code: 4003, .. }),
        "{reason:?}"
    );
    assert!(!reason.should_reconnect(), "4003 means: do not come back");
}

#[tokio::test]
async fn client_reconnects_by_itself_when_the_server_goes_away() {
    let server = Server::open().await;
    let client = fast_client(&server.url()).build().unwrap();
    client.connected().await.unwrap();

    server.stop().await;
    let state = wait_state(&client, |s| {
        matches!(s, ConnectionState::Reconnecting { .. })
    })
    .await;
    let ConnectionState::Reconnecting { attempt, delay, .. } = state else {
        unreachable!()
    };
    assert!(attempt >= 1);
    assert!(
        delay <= Duration::from_millis(200),
        "capped by the test backoff"
    );

    let _restarted = server.restart();
    tokio::time::timeout(WAIT, client.connected())
        .await
        .expect("reconnected in time")
        .unwrap();
}

#[tokio::test]
async fn a_token_source_refreshes_the_token_on_the_open_connection_before_it_expires() {
    // No leeway: a token that is not refreshed closes the connection at its `exp`.
    let server = Server::with(
        MemoryBackplaneConfig::default(),
        Authenticator::jwt(TokenVerifier::hs256(SECRET).unwrap().leeway(Duration::ZERO)),
        transport_config(),
        "127.0.0.1:0".parse().unwrap(),
    )
    .await;
    // Each token lives 2 s (a whole number of seconds: at least 1 s left when issued).
    let (issued_tx, mut issued) = tokio::sync::mpsc::unbounded_channel();
    let client = fast_client(&server.url())
        .token_source(move || {
            let issued_tx = issued_tx.clone();
            async move {
                let exp = SystemTime::now()
                    .duration_since(SystemTime::UNIX_EPOCH)
                    .unwrap()
                    .as_secs()
                    + 2;
                let _ = issued_tx.send(exp);
                Some(
                    jsonwebtoken::encode(
                        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
                        &serde_json::json!({ "sub": "ada", "exp": exp }),
                        &jsonwebtoken::EncodingKey::from_secret(SECRET.as_bytes()),
                    )
                    .unwrap(),
                )
            }
        })
        .build()
        .unwrap();
    let ConnectionState::Connected { connection_id, .. } =
        wait_state(&client, ConnectionState::is_connected).await
    else {
        unreachable!()
    };
    let mut states = client.state();
    states.mark_unchanged();

    // The token of the attempt, then two refreshes, each issued before the previous one
    // expired: the connection outlives the first two tokens.
    let mut exps = Vec::new();
    for _ in 0..3 {
        exps.push(
            tokio::time::timeout(Duration::from_secs(10), issued.recv())
                .await
                .expect("a token fetched in time")
                .unwrap(),
        );
    }
    // The third token is fetched at four fifths of the second's life, at least 0.4 s after
    // the first one's `exp`, when the server would have closed an unrefreshed connection
    // with 4001.
    assert!(
        !states.has_changed().unwrap(),
        "never disconnected: {:?}",
        *states.borrow()
    );
    let ConnectionState::Connected {
        connection_id: still,
        ..
    } = client.state().borrow().clone()
    else {
        panic!("disconnected")
    };
    assert_eq!(still, connection_id, "the same connection throughout");
    assert!(
        SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap()
            .as_secs()
            >= exps[0],
        "the first token has expired by now: {exps:?}"
    );
    assert_eq!(server.transport.connection_count(), 1);
    client.close().await;
}
