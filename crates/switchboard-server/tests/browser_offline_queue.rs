//! The demo page in a real headless Chromium: a message sent while the server is down is
//! queued and delivered after the server comes back.

mod support;
mod webdriver;

use support::test_config;
use switchboard_server::Server;
use webdriver::ChromeDriver;

fn messages_contain(text: &str) -> String {
    format!(
        "[...document.querySelectorAll('#messages li .text')].some(e => e.textContent === '{text}')"
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_sent_while_the_server_is_down_is_delivered_after_it_comes_back() {
    let config = test_config();
    let server = Server::bind(config.clone()).await.unwrap();
    let port = server.local_addr().port();
    let base = server.base_url();
    let driver = ChromeDriver::start().await;
    let alice = driver.session().await;
    let bob = driver.session().await;
    // A short reconnect cap keeps the test quick; the behaviour is the default one.
    alice
        .goto(&format!("{base}/?name=Alice&backoffMaxMs=1000"))
        .await;
    bob.goto(&format!("{base}/?name=Bob&backoffMaxMs=1000"))
        .await;
    for page in [&alice, &bob] {
        page.wait_until(
            "document.querySelectorAll('#presence li').length === 2",
            "both pages to be present",
        )
        .await;
    }

    assert!(server.shutdown().await);
    for page in [&alice, &bob] {
        page.wait_until(
            "document.querySelector('#status').dataset.state === 'reconnecting'",
            "the page to notice the server is gone",
        )
        .await;
    }

    alice
        .find("#chat-input")
        .await
        .type_text("sent while offline")
        .await;
    alice.find("#chat-send").await.click().await;
    alice
        .wait_until(
            "document.querySelector('#messages li.mine[data-status=queued]')",
            "the message to be queued",
        )
        .await;
    let stored = alice
        .execute(
            "return Object.keys(localStorage).filter(k => k.startsWith('switchboard:queue:')).map(k => localStorage.getItem(k)).join('');",
            serde_json::json!([]),
        )
        .await;
    assert!(
        stored.as_str().unwrap().contains("sent while offline"),
        "the queue is persisted: {stored}"
    );

    let server = Server::bind(config.port(port)).await.unwrap();
    bob.wait_until(
        &messages_contain("sent while offline"),
        "Bob to receive the queued message",
    )
    .await;
    alice
        .wait_until(
            "document.querySelector('#messages li.mine[data-status=delivered]')",
            "the queued message to be acknowledged",
        )
        .await;
    let remaining = alice
        .execute(
            "return Object.keys(localStorage).filter(k => k.startsWith('switchboard:queue:')).length;",
            serde_json::json!([]),
        )
        .await;
    assert_eq!(remaining, 0, "the queue is empty once delivered");

    alice.quit().await;
    bob.quit().await;
    assert!(server.shutdown().await);
}

/// The browser client's queue at its capacity (100), offline: a publish evicts the oldest
/// waiting publish of the lowest priority below its own — low first, then normal — never a
/// critical one, and a publish with nothing less important to evict is refused. Each one
/// is reported (`failed` with its reason), and `localStorage` holds exactly what is kept.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_browser_queue_evicts_low_then_normal_never_critical_and_says_so() {
    let server = Server::bind(test_config()).await.unwrap();
    let base = server.base_url();
    let driver = ChromeDriver::start().await;
    let page = driver.session().await;
    page.goto(&format!("{base}/?name=Eve&backoffMaxMs=1000"))
        .await;
    page.wait_until(
        "document.querySelector('#status').dataset.state === 'open'",
        "the page to connect",
    )
    .await;
    assert!(server.shutdown().await);
    page.wait_until(
        "document.querySelector('#status').dataset.state === 'reconnecting'",
        "the page to notice the server is gone",
    )
    .await;

    let outcome = page
        .execute(
            r#"
            const client = window.demo.client;
            const failed = [];
            const off = client.on("failed", (f) => failed.push(f.frame.payload + ":" + f.reason));
            const publish = (priority, n) => {
              for (let i = 0; i < n; i++) client.publish("demo:lobby", "note", priority[0] + i, { priority });
            };
            publish("low", 50);
            publish("normal", 30);
            publish("critical", 20);
            const full = client.queueSize;
            publish("high", 60);      // evicts the 50 lows, then the 10 oldest normals
            publish("critical", 25);  // evicts the 20 other normals, then the 5 oldest highs
            publish("normal", 1);     // nothing below normal is left: refused
            off();
            const stored = Object.keys(localStorage)
              .filter((k) => k.startsWith("switchboard:queue:"))
              .map((k) => JSON.parse(localStorage.getItem(k)))[0];
            const count = (p) => stored.filter((e) => e.frame.priority === p).length;
            return {
              full,
              size: client.queueSize,
              failed,
              stored: { total: stored.length, critical: count("critical"), high: count("high"), normal: count("normal"), low: count("low") },
              firstHighKept: stored.filter((e) => e.frame.priority === "high").map((e) => e.frame.payload).sort((a, b) => a.slice(1) - b.slice(1))[0],
            };
            "#,
            serde_json::json!([]),
        )
        .await;

    assert_eq!(outcome["full"], 100, "{outcome}");
    assert_eq!(outcome["size"], 100, "the queue stays at its capacity");
    let failed: Vec<String> = outcome["failed"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_owned())
        .collect();
    let mut expected: Vec<String> = (0..50).map(|i| format!("l{i}:evicted")).collect();
    expected.extend((0..30).map(|i| format!("n{i}:evicted")));
    expected.extend((0..5).map(|i| format!("h{i}:evicted")));
    expected.push("n0:queue_full".to_owned());
    assert_eq!(failed, expected, "oldest of the lowest priority first");
    assert_eq!(
        outcome["stored"],
        serde_json::json!({"total": 100, "critical": 45, "high": 55, "normal": 0, "low": 0}),
        "localStorage holds exactly what is kept, every critical publish among it"
    );
    assert_eq!(outcome["firstHighKept"], "h5");

    page.quit().await;
}
