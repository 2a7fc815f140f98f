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
