//! The HTTP endpoints beside /ws, over real sockets.

mod support;

use bytes::Bytes;
use http_body_util::Full;
use support::{connect, get, request, start, test_config};

#[tokio::test]
async fn health_reports_ok_with_the_backplane_connections_and_uptime() {
    let server = start(test_config()).await;
    let (_ws, _) = connect(&server.ws_url()).await;
    let answer = get(server.local_addr(), "/health").await;
    assert_eq!(answer.status, 200);
    assert_eq!(answer.header("content-type"), Some("application/json"));
    let health = answer.json();
    assert_eq!(health["status"], "ok");
    assert_eq!(health["websocket"], "enabled");
    assert_eq!(health["connections"], 1);
    assert_eq!(
        health["backplane"],
        serde_json::json!({"kind": "memory", "state": "up", "detail": ""})
    );
    assert!(health["uptimeSeconds"].is_u64());
    let timestamp = health["timestamp"].as_str().unwrap();
    assert_eq!(
        timestamp.len(),
        "2025-11-22T03:11:00.123Z".len(),
        "{timestamp}"
    );
    assert!(
        timestamp.ends_with('Z') && timestamp.as_bytes()[10] == b'T',
        "{timestamp}"
    );
}

#[tokio::test]
async fn health_counts_the_open_websocket_sessions_and_nothing_else() {
    use tokio::io::AsyncWriteExt as _;

    let server = start(test_config()).await;
    let addr = server.local_addr();
    let mut sessions = Vec::new();
    for _ in 0..3 {
        sessions.push(connect(&server.ws_url()).await.0);
    }
    // Neither a connection that sent nothing nor one halfway through its upgrade request
    // is a WebSocket connection.
    let _silent = tokio::net::TcpStream::connect(addr).await.unwrap();
    let mut halfway = tokio::net::TcpStream::connect(addr).await.unwrap();
    halfway
        .write_all(b"GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n")
        .await
        .unwrap();
    let connections = || async { get(addr, "/health").await.json()["connections"].clone() };
    assert_eq!(connections().await, 3);

    // A session that ends is no longer counted.
    let mut leaving = sessions.pop().unwrap();
    leaving.close(None).await.unwrap();
    tokio::time::timeout(std::time::Duration::from_secs(5), async {
        while connections().await != 2 {
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
    })
    .await
    .expect("the closed session is uncounted");
}

#[tokio::test]
async fn ready_answers_200_when_the_backplane_is_up() {
    let server = start(test_config()).await;
    let answer = get(server.local_addr(), "/ready").await;
    assert_eq!(answer.status, 200);
    assert_eq!(answer.json()["status"], "ready");
}

#[tokio::test]
async fn metrics_prometheus_answers_openmetrics_text_with_its_content_type() {
    let server = start(test_config()).await;
    let (_ws, _) = connect(&server.ws_url()).await;
    let answer = get(server.local_addr(), "/metrics/prometheus").await;
    assert_eq!(answer.status, 200);
    assert_eq!(
        answer.header("content-type"),
        Some(switchboard_metrics::OPENMETRICS_CONTENT_TYPE)
    );
    let text = answer.text();
    assert!(
        text.lines().any(|l| l == "websocket_connections_total 1"),
        "{text}"
    );
    assert!(text.ends_with("# EOF\n"));
}

#[tokio::test]
async fn metrics_answers_the_json_snapshot() {
    let server = start(test_config()).await;
    let (_ws, _) = connect(&server.ws_url()).await;
    let answer = get(server.local_addr(), "/metrics").await;
    assert_eq!(answer.status, 200);
    let snapshot = answer.json();
    assert_eq!(snapshot["gauges"]["websocket_connections_total"], 1);
    assert_eq!(snapshot["counters"]["websocket_connections_count_total"], 1);
}

#[tokio::test]
async fn unknown_paths_answer_404_with_json() {
    let server = start(test_config()).await;
    let answer = get(server.local_addr(), "/no/such/thing").await;
    assert_eq!(answer.status, 404);
    assert_eq!(answer.json()["error"], "not_found");
}

#[tokio::test]
async fn wrong_methods_answer_405_with_allow() {
    let server = start(test_config()).await;
    for path in [
        "/health",
        "/ready",
        "/metrics",
        "/metrics/prometheus",
        "/",
        "/client.js",
        "/ws",
    ] {
        let answer = request(
            server.local_addr(),
            http::Request::post(path)
                .body(Full::new(Bytes::new()))
                .unwrap(),
        )
        .await;
        assert_eq!(answer.status, 405, "{path}");
        assert_eq!(answer.header("allow"), Some("GET, HEAD"), "{path}");
        assert_eq!(answer.json()["error"], "method_not_allowed", "{path}");
    }
}

#[tokio::test]
async fn the_demo_page_and_the_browser_client_are_served() {
    let server = start(test_config()).await;
    let page = get(server.local_addr(), "/").await;
    assert_eq!(page.status, 200);
    assert_eq!(
        page.header("content-type"),
        Some("text/html; charset=utf-8")
    );
    assert_eq!(page.text(), switchboard_server::DEMO_HTML);
    assert!(page.text().contains("/client.js"));
    let client = get(server.local_addr(), "/client.js").await;
    assert_eq!(client.status, 200);
    assert_eq!(
        client.header("content-type"),
        Some("text/javascript; charset=utf-8")
    );
    assert_eq!(client.text(), switchboard_server::CLIENT_JS);
}

#[tokio::test]
async fn ws_upgrades_to_protocol_v1_and_a_plain_get_is_a_bad_request() {
    let server = start(test_config()).await;
    let (_ws, welcome) = connect(&server.ws_url()).await;
    assert_eq!(welcome["userId"], serde_json::Value::Null);
    assert_eq!(welcome["heartbeatMs"], 30000);
    let plain = get(server.local_addr(), "/ws").await;
    assert_eq!(plain.status, 400);
}

#[tokio::test]
async fn cors_origin_restricts_which_browser_origins_may_connect() {
    let server =
        start(test_config().allowed_origins(Some(vec!["https://app.example".to_owned()]))).await;
    let upgrade = |origin: &'static str| {
        http::Request::get("/ws")
            .header("connection", "Upgrade")
            .header("upgrade", "websocket")
            .header("sec-websocket-version", "13")
            .header("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ==")
            .header("origin", origin)
            .body(Full::default())
            .unwrap()
    };
    let refused = request(server.local_addr(), upgrade("https://evil.example")).await;
    assert_eq!(refused.status, 403);
    let allowed = request(server.local_addr(), upgrade("https://app.example")).await;
    assert_eq!(allowed.status, 101);
}

#[tokio::test]
async fn with_a_jwt_secret_connections_need_a_valid_token() {
    let secret = "a-test-secret-that-is-long-enough";
    let server = start(test_config().jwt_secret(Some(secret))).await;
    let refused = tokio_tungstenite::connect_async(server.ws_url()).await;
    assert!(
        matches!(&refused, Err(tokio_tungstenite::tungstenite::Error::Http(r)) if r.status() == 401),
        "{refused:?}"
    );
    let token = support::user_token(secret, "alice");
    let (_ws, welcome) = connect(&format!("{}?token={token}", server.ws_url())).await;
    assert_eq!(welcome["userId"], "alice");
}
