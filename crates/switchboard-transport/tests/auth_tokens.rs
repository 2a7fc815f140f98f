//! Tokens: HS256, ES256, expiry with leeway, wrong algorithms, claims.

mod support;

use serde_json::json;
use support::{Client, SECRET, Server, jwt_verifier, token, unix_now};
use switchboard_transport::{Authenticator, TokenVerifier, TransportConfig};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

async fn status_for(server: &Server, token: &str) -> u16 {
    let mut request = server.url().into_client_request().unwrap();
    request
        .headers_mut()
        .insert("authorization", format!("Bearer {token}").parse().unwrap());
    match Client::try_connect(request).await {
        Ok(_) => 101,
        Err(r) => r.status,
    }
}

fn unsigned(claims: &serde_json::Value, alg: &str) -> String {
    let enc = |v: &serde_json::Value| base64_url::encode(v.to_string().as_bytes());
    format!(
        "{}.{}.",
        enc(&json!({"alg": alg, "typ": "JWT"})),
        enc(claims)
    )
}

mod base64_url {
    pub(super) fn encode(input: &[u8]) -> String {
        const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
        let mut out = String::new();
        for chunk in input.chunks(3) {
            let b = [
                chunk[0],
                *chunk.get(1).unwrap_or(&0),
                *chunk.get(2).unwrap_or(&0),
            ];
            let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
            for i in 0..=chunk.len() {
                out.push(A[((n >> (18 - 6 * i)) & 63) as usize] as char);
            }
        }
        out
    }
}

#[tokio::test]
async fn a_bearer_header_works_like_the_query_parameter() {
    let server = Server::start(TransportConfig::default(), jwt_verifier()).await;
    assert_eq!(
        status_for(
            &server,
            &token(&json!({"sub": "u", "exp": unix_now() + 60}))
        )
        .await,
        101
    );
}

#[tokio::test]
async fn expired_tokens_are_refused_beyond_the_30_second_leeway_only() {
    let server = Server::start(TransportConfig::default(), jwt_verifier()).await;
    let within = token(&json!({"sub": "u", "exp": unix_now() - 10}));
    assert_eq!(status_for(&server, &within).await, 101);
    let beyond = token(&json!({"sub": "u", "exp": unix_now() - 120}));
    assert_eq!(status_for(&server, &beyond).await, 401);
}

#[tokio::test]
async fn an_absurd_exp_is_honoured_as_the_latest_representable_time_not_a_panic() {
    let server = Server::start(TransportConfig::default(), jwt_verifier()).await;
    for exp in [1u64 << 63, u64::MAX, switchboard_transport::MAX_EXP + 1] {
        let absurd = token(&json!({"sub": "u", "exp": exp}));
        // Accepted, and the session works (a panic would drop the connection unanswered).
        let mut request = server.url().into_client_request().unwrap();
        request
            .headers_mut()
            .insert("authorization", format!("Bearer {absurd}").parse().unwrap());
        let mut client = Client::try_connect(request)
            .await
            .unwrap_or_else(|r| panic!("exp {exp}: refused {r:?}"));
        client.send(r#"{"type":"ping","id":"p"}"#).await;
        assert_eq!(client.recv_of("pong").await["id"], "p", "exp {exp}");
    }
    // The server is still there for everyone else.
    assert_eq!(
        status_for(
            &server,
            &token(&json!({"sub": "v", "exp": unix_now() + 60}))
        )
        .await,
        101
    );
}

#[tokio::test]
async fn tokens_without_exp_forged_or_unsigned_are_refused() {
    let server = Server::start(TransportConfig::default(), jwt_verifier()).await;
    assert_eq!(status_for(&server, &token(&json!({"sub": "u"}))).await, 401);
    let forged = jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        &json!({"sub": "u", "exp": unix_now() + 60}),
        &jsonwebtoken::EncodingKey::from_secret(b"another secret"),
    )
    .unwrap();
    assert_eq!(status_for(&server, &forged).await, 401);
    let none = unsigned(&json!({"sub": "admin", "exp": unix_now() + 60}), "none");
    assert_eq!(status_for(&server, &none).await, 401);
    assert_eq!(status_for(&server, "not.a.jwt").await, 401);
}

fn es256_keys() -> (String, String) {
    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    (key.serialize_pem(), key.public_key_pem())
}

#[tokio::test]
async fn es256_tokens_verify_with_the_public_key_and_hs_rs_confusion_is_refused() {
    let (private_pem, public_pem) = es256_keys();
    let verifier = TokenVerifier::hs256(SECRET)
        .unwrap()
        .with_public_key_pem(public_pem.as_bytes())
        .unwrap();
    let server = Server::start(TransportConfig::default(), Authenticator::jwt(verifier)).await;

    let es = jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::ES256),
        &json!({"sub": "svc", "exp": unix_now() + 60}),
        &jsonwebtoken::EncodingKey::from_ec_pem(private_pem.as_bytes()).unwrap(),
    )
    .unwrap();
    assert_eq!(status_for(&server, &es).await, 101);

    // The classic confusion: HS256 "signed" with the public key as the HMAC secret.
    let confused = jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        &json!({"sub": "admin", "exp": unix_now() + 60}),
        &jsonwebtoken::EncodingKey::from_secret(public_pem.as_bytes()),
    )
    .unwrap();
    assert_eq!(status_for(&server, &confused).await, 401);

    // A public-key-only server refuses HS256 outright.
    let only_public = Server::start(
        TransportConfig::default(),
        Authenticator::jwt(TokenVerifier::public_key_pem(public_pem.as_bytes()).unwrap()),
    )
    .await;
    assert_eq!(
        status_for(
            &only_public,
            &token(&json!({"sub": "u", "exp": unix_now() + 60}))
        )
        .await,
        401
    );
    assert_eq!(status_for(&only_public, &es).await, 101);
}

#[tokio::test]
async fn channel_claims_limit_what_the_connection_may_do() {
    let server = Server::start(TransportConfig::default(), jwt_verifier()).await;
    let t = token(&json!({"sub": "u", "exp": unix_now() + 60, "channels": ["tasks:*"]}));
    let mut c = Client::connect(&format!("{}?token={t}", server.url())).await;
    c.send(r#"{"type":"subscribe","channel":"admin:notifications","id":"s"}"#)
        .await;
    let err = c.recv().await;
    assert_eq!(
        (err["code"].as_str(), err["id"].as_str()),
        (Some("forbidden"), Some("s"))
    );
    assert_eq!(c.subscribe("tasks:team/1").await["type"], "subscribed");
}

#[tokio::test]
async fn a_tokens_other_claims_reach_the_authorizer() {
    // Tenants by the token's own `tenant` claim: `t:<tenant>:*`.
    let hub = switchboard_hub::Hub::builder(switchboard_backplane::MemoryBackplane::new(
        switchboard_backplane::MemoryBackplaneConfig::default(),
    ))
    .authorizer(
        |identity: &switchboard_hub::Identity,
         _: switchboard_hub::Action,
         channel: &switchboard_protocol::ChannelName| {
            let tenant = identity.claim("tenant").and_then(|t| t.as_str());
            tenant.is_some_and(|t| channel.starts_with(&format!("t:{t}:")))
        },
    )
    .build();
    let transport =
        switchboard_transport::Transport::new(hub, jwt_verifier(), TransportConfig::default());
    let server = Server::serving(transport).await;
    let t = token(&json!({"sub": "u", "exp": unix_now() + 60, "tenant": "acme", "role": 3}));
    assert_eq!(
        subscribe_answer(&server, &t, "t:acme:orders").await,
        "subscribed"
    );
    assert_eq!(
        subscribe_answer(&server, &t, "t:globex:orders").await,
        "forbidden"
    );
    let without = token(&json!({"sub": "u", "exp": unix_now() + 60}));
    assert_eq!(
        subscribe_answer(&server, &without, "t:acme:orders").await,
        "forbidden"
    );
}

#[test]
fn verified_identities_keep_the_claims_their_fields_do_not_carry() {
    let verifier = TokenVerifier::hs256(SECRET).unwrap();
    let exp = unix_now() + 60;
    let identity = verifier
        .verify(&token(&json!({
            "sub": "u", "exp": exp, "channels": ["a:*"], "tenant": "acme", "roles": ["admin"]
        })))
        .unwrap();
    assert_eq!(identity.user_id.as_deref(), Some("u"));
    let mut kept: Vec<&str> = identity.claims().keys().map(String::as_str).collect();
    kept.sort_unstable();
    assert_eq!(kept, ["roles", "tenant"]);
    assert_eq!(identity.claim("roles"), Some(&json!(["admin"])));
    // A token with nothing else keeps no map.
    let bare = verifier
        .verify(&token(&json!({"sub": "u", "exp": exp})))
        .unwrap();
    assert!(bare.claims().is_empty());
}

/// What a subscribe to `channel` with `token` is answered: `subscribed` or an error code.
async fn subscribe_answer(server: &Server, token: &str, channel: &str) -> String {
    let mut c = Client::connect(&format!("{}?token={token}", server.url())).await;
    c.send(&format!(
        r#"{{"type":"subscribe","channel":"{channel}","id":"s"}}"#
    ))
    .await;
    let answer = c.recv().await;
    match answer["type"].as_str() {
        Some("subscribed") => "subscribed".into(),
        _ => answer["code"].as_str().unwrap_or("?").to_owned(),
    }
}

#[tokio::test]
async fn tokens_without_a_channels_claim_get_the_default_channels_not_everything() {
    let verifier = TokenVerifier::hs256(SECRET)
        .unwrap()
        .default_channels(["public:*"]);
    assert!(!verifier.default_channels_unrestricted());
    let server = Server::start(TransportConfig::default(), Authenticator::jwt(verifier)).await;
    for claims in [
        json!({"sub": "u", "exp": unix_now() + 60}),
        json!({"sub": "u", "exp": unix_now() + 60, "channels": null}),
    ] {
        let t = token(&claims);
        assert_eq!(
            subscribe_answer(&server, &t, "public:lobby").await,
            "subscribed"
        );
        assert_eq!(
            subscribe_answer(&server, &t, "admin:audit").await,
            "forbidden",
            "{claims}"
        );
    }
    // A claim, when present, decides.
    let t = token(&json!({"sub": "u", "exp": unix_now() + 60, "channels": ["admin:*"]}));
    assert_eq!(
        subscribe_answer(&server, &t, "admin:audit").await,
        "subscribed"
    );
    assert_eq!(
        subscribe_answer(&server, &t, "public:lobby").await,
        "forbidden"
    );

    // The default default is everywhere (documented as permissive).
    assert!(
        TokenVerifier::hs256(SECRET)
            .unwrap()
            .default_channels_unrestricted()
    );
}

#[tokio::test]
async fn audience_and_issuer_when_configured_must_match_and_nbf_is_enforced() {
    let verifier = TokenVerifier::hs256(SECRET)
        .unwrap()
        .audience("switchboard")
        .issuer("https://auth.example");
    let server = Server::start(TransportConfig::default(), Authenticator::jwt(verifier)).await;
    let exp = unix_now() + 60;
    let good = json!({"sub": "u", "exp": exp, "aud": "switchboard", "iss": "https://auth.example"});
    assert_eq!(status_for(&server, &token(&good)).await, 101);
    for (bad, why) in [
        (
            json!({"sub": "u", "exp": exp, "iss": "https://auth.example"}),
            "no aud",
        ),
        (
            json!({"sub": "u", "exp": exp, "aud": "other", "iss": "https://auth.example"}),
            "wrong aud",
        ),
        (
            json!({"sub": "u", "exp": exp, "aud": "switchboard"}),
            "no iss",
        ),
        (
            json!({"sub": "u", "exp": exp, "aud": "switchboard", "iss": "https://evil.example"}),
            "wrong iss",
        ),
    ] {
        assert_eq!(status_for(&server, &token(&bad)).await, 401, "{why}");
    }

    // `nbf`, with the same 30 s leeway as `exp`, whether or not aud/iss are required.
    let open = Server::start(TransportConfig::default(), jwt_verifier()).await;
    let not_yet = token(&json!({"sub": "u", "exp": exp, "nbf": unix_now() + 120}));
    assert_eq!(status_for(&open, &not_yet).await, 401);
    let within_leeway = token(&json!({"sub": "u", "exp": exp, "nbf": unix_now() + 10}));
    assert_eq!(status_for(&open, &within_leeway).await, 101);
}

#[tokio::test]
async fn an_expiring_token_closes_the_connection_with_4001() {
    let verifier = TokenVerifier::hs256(SECRET)
        .unwrap()
        .leeway(std::time::Duration::ZERO);
    let server = Server::start(TransportConfig::default(), Authenticator::jwt(verifier)).await;
    let t = token(&json!({"sub": "u", "exp": unix_now() + 1}));
    let mut c = Client::connect(&format!("{}?token={t}", server.url())).await;
    assert_eq!(
        c.closed_within(std::time::Duration::from_secs(4)).await,
        4001
    );
}

/// An upgrade request offering `protocols` in `Sec-WebSocket-Protocol`.
fn offering(
    server: &Server,
    protocols: &str,
) -> tokio_tungstenite::tungstenite::handshake::client::Request {
    let mut request = server.url().into_client_request().unwrap();
    request
        .headers_mut()
        .insert("sec-websocket-protocol", protocols.parse().unwrap());
    request
}

#[tokio::test]
async fn a_browser_can_carry_its_token_in_a_subprotocol_and_only_the_protocol_comes_back() {
    let server = Server::start(TransportConfig::default(), jwt_verifier()).await;
    let jwt = token(&json!({"sub": "ada", "exp": unix_now() + 600}));
    let request = offering(
        &server,
        &format!(
            "switchboard.v1, {}{jwt}",
            switchboard_transport::TOKEN_SUBPROTOCOL_PREFIX
        ),
    );
    let (mut ws, response) = tokio_tungstenite::connect_async(request).await.unwrap();
    let selected: Vec<_> = response
        .headers()
        .get_all("sec-websocket-protocol")
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .collect();
    assert_eq!(selected, [switchboard_transport::SUBPROTOCOL]);
    use futures_util::StreamExt;
    let welcome = ws.next().await.unwrap().unwrap();
    let welcome: serde_json::Value = serde_json::from_str(welcome.to_text().unwrap()).unwrap();
    assert_eq!(welcome["userId"], "ada");

    // A bad token in the subprotocol is refused like any other.
    let refused = Client::try_connect(offering(
        &server,
        &format!(
            "switchboard.v1, {}not-a-jwt",
            switchboard_transport::TOKEN_SUBPROTOCOL_PREFIX
        ),
    ))
    .await
    .err()
    .expect("refused");
    assert_eq!(refused.status, 401);
    // Offering the protocol alone is no token.
    let refused = Client::try_connect(offering(&server, "switchboard.v1"))
        .await
        .err()
        .expect("refused");
    assert_eq!(refused.status, 401);
    assert_eq!(refused.body["error"], "unauthorized");
}

#[tokio::test]
async fn the_protocol_is_selected_only_when_offered() {
    let server = Server::open().await;
    // Offered among others: selected.
    let (_, response) =
        tokio_tungstenite::connect_async(offering(&server, "chat.v2, switchboard.v1"))
            .await
            .unwrap();
    assert_eq!(
        response.headers().get("sec-websocket-protocol").unwrap(),
        switchboard_transport::SUBPROTOCOL
    );
    // Not offered: no header (RFC 6455), and the connection works.
    let (_, response) = tokio_tungstenite::connect_async(server.url())
        .await
        .unwrap();
    assert!(response.headers().get("sec-websocket-protocol").is_none());
}
