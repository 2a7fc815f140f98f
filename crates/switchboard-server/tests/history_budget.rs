//! `HISTORY_MAX_BYTES` against a real server: history across all channels stays within the
//! budget by trimming the least recently published channels' oldest messages; live delivery
//! is untouched, and recovery past a trimmed message answers `recovered: false`.

mod support;

use serde_json::Value;
use support::{API_KEY, api_get, connect, next_of_type, publish, start, subscribe, test_config};

async fn history(server: &switchboard_server::Server, query: &str) -> Value {
    let answer = api_get(server.local_addr(), &format!("/api/channels/{query}")).await;
    assert_eq!(answer.status, 200, "{}", answer.text());
    answer.json()
}

#[tokio::test]
async fn over_the_budget_old_channels_lose_their_oldest_history_and_recovery_says_so() {
    let server = start(
        test_config()
            .history_max_bytes(20_000)
            .publish_api_key(Some(API_KEY)),
    )
    .await;
    let (mut ws, _) = connect(&server.ws_url()).await;
    subscribe(&mut ws, "early").await;
    subscribe(&mut ws, "late").await;
    let padding = "x".repeat(1000);
    for (channel, count) in [("early", 10), ("late", 20)] {
        for n in 1..=count {
            let body = format!(
                r#"{{"channel":"{channel}","type":"note","id":"{channel}{n}","payload":{{"n":{n},"pad":"{padding}"}}}}"#
            );
            let answer = publish(server.local_addr(), &body).await;
            assert_eq!(answer.status, 200, "{}", answer.text());
        }
    }
    // Live delivery is not history: every accepted message arrived.
    for (channel, n) in (1..=10)
        .map(|n| ("early", n))
        .chain((1..=20).map(|n| ("late", n)))
    {
        let message = next_of_type(&mut ws, "note").await;
        assert_eq!(
            (message["channel"].as_str(), message["offset"].as_u64()),
            (Some(channel), Some(n))
        );
    }

    // 30 messages of over 1 KB each do not fit in 20,000 bytes: the least recently
    // published channel lost its history first, and says so.
    let early = history(&server, "early/history").await;
    let epoch = early["epoch"].as_str().unwrap().to_owned();
    let from_start = history(&server, &format!("early/history?since=0&epoch={epoch}")).await;
    assert_eq!(from_start["recovered"], false, "{from_start}");
    assert_eq!(from_start["messages"], serde_json::json!([]));

    // The channel published last keeps its newest messages, recoverable exactly.
    let late = history(&server, "late/history").await;
    let epoch = late["epoch"].as_str().unwrap().to_owned();
    let recent = history(&server, &format!("late/history?since=15&epoch={epoch}")).await;
    assert_eq!(recent["recovered"], true, "{recent}");
    let offsets: Vec<u64> = recent["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["offset"].as_u64().unwrap())
        .collect();
    assert_eq!(offsets, [16, 17, 18, 19, 20]);
    let kept = late["messages"].as_array().unwrap().len();
    assert!(
        kept < 20,
        "the budget held: {kept} of late's 20 messages kept"
    );
}
