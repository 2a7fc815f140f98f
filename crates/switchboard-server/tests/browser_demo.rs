//! The demo page in a real headless Chromium: it connects, shows connection quality, and two
//! pages see each other's presence and chat messages, with delivery receipts.

mod support;
mod webdriver;

use support::{start, test_config};
use webdriver::ChromeDriver;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_demo_pages_see_each_others_presence_and_messages() {
    let server = start(test_config()).await;
    let base = server.base_url();
    let driver = ChromeDriver::start().await;
    let alice = driver.session().await;
    let bob = driver.session().await;
    alice
        .goto(&format!("{base}/?name=Alice&pingIntervalMs=500"))
        .await;
    bob.goto(&format!("{base}/?name=Bob")).await;

    for page in [&alice, &bob] {
        page.wait_until(
            "document.querySelector('#status').dataset.state === 'open'",
            "the page to connect",
        )
        .await;
        page.wait_until(
            "['Alice', 'Bob'].every(n => document.querySelector(`#presence li[data-name='${n}']`))",
            "both people in the presence list",
        )
        .await;
    }
    let since = alice
        .wait_until(
            "document.querySelector(\"#presence li[data-name='Bob'] .since\").textContent",
            "time online",
        )
        .await;
    assert!(since.as_str().unwrap().starts_with("online "), "{since}");

    let quality = alice
        .wait_until(
            "document.querySelector('#quality').dataset.class !== 'offline' && \
             document.querySelector('#quality-text').textContent.includes(' ms') && \
             document.querySelector('#quality-text').textContent",
            "a connection quality measurement",
        )
        .await;
    assert!(quality.as_str().unwrap().contains(" ms"), "{quality}");

    alice
        .find("#chat-input")
        .await
        .type_text("hello from Alice")
        .await;
    alice.find("#chat-send").await.click().await;
    bob.wait_until(
        "[...document.querySelectorAll('#messages li .text')].some(e => e.textContent === 'hello from Alice')",
        "Bob to receive Alice's message",
    )
    .await;
    let receipt = alice
        .wait_until(
            "document.querySelector('#messages li.mine[data-status=delivered] .receipt')?.textContent",
            "the delivery receipt",
        )
        .await;
    assert!(
        receipt.as_str().unwrap().starts_with("delivered"),
        "{receipt}"
    );
    bob.wait_until(
        "document.querySelector('#events').textContent.includes('message from Alice')",
        "the event feed to show the message",
    )
    .await;

    alice.quit().await;
    bob.wait_until(
        "!document.querySelector(\"#presence li[data-name='Alice']\")",
        "Alice to leave Bob's presence list",
    )
    .await;
    bob.quit().await;
    assert!(server.shutdown().await);
}
