//! The HTTP API: publish, presence and history behind PUBLISH_API_KEY.

mod support;

use bytes::Bytes;
use futures_util::stream;
use http_body_util::{Full, StreamBody};
use hyper::body::Frame;
use hyper_util::rt::TokioIo;
use serde_json::json;
use support::{
    API_KEY, api_get, connect, next_of_type, publish, request, send_json, start, start_with_api,
    subscribe, test_config,
};

#[tokio::test]
async fn without_an_api_key_every_api_route_answers_404() {
    let server = start(test_config()).await;
    for path in [
        "/api/publish",
        "/api/broadcast",
        "/api/channels/room/presence",
        "/api/channels/room/history",
        "/api",
    ] {
        let answer = api_get(server.local_addr(), path).await;
        assert_eq!(answer.status, 404, "{path}");
        assert_eq!(answer.json()["error"], "not_found");
    }
    let answer = publish(
        server.local_addr(),
        r#"{"channel":"a","type":"b","payload":1}"#,
    )
    .await;
    assert_eq!(answer.status, 404);
}

#[tokio::test]
async fn publish_without_the_right_key_answers_401() {
    let server = start_with_api().await;
    let body = r#"{"channel":"room","type":"note","payload":1}"#;
    let missing = request(
        server.local_addr(),
        http::Request::post("/api/publish")
            .body(Full::new(Bytes::from(body)))
            .unwrap(),
    )
    .await;
    assert_eq!(missing.status, 401);
    assert_eq!(missing.json()["error"], "unauthorized");
    assert_eq!(missing.header("www-authenticate"), Some("Bearer"));
    let wrong = request(
        server.local_addr(),
        http::Request::post("/api/publish")
            .header("authorization", format!("Bearer {API_KEY}x"))
            .body(Full::new(Bytes::from(body)))
            .unwrap(),
    )
    .await;
    assert_eq!(wrong.status, 401);
    let presence = request(
        server.local_addr(),
        http::Request::get("/api/channels/room/presence")
            .header("authorization", "Bearer nope")
            .body(Full::default())
            .unwrap(),
    )
    .await;
    assert_eq!(presence.status, 401);
}

#[tokio::test]
async fn api_routes_answer_405_with_allow_for_other_methods() {
    let server = start_with_api().await;
    let get_publish = api_get(server.local_addr(), "/api/publish").await;
    assert_eq!(get_publish.status, 405);
    assert_eq!(get_publish.header("allow"), Some("POST"));
    let get_broadcast = api_get(server.local_addr(), "/api/broadcast").await;
    assert_eq!(get_broadcast.status, 405);
    assert_eq!(get_broadcast.header("allow"), Some("POST"));
    let post_history = request(
        server.local_addr(),
        http::Request::post("/api/channels/room/history")
            .header("authorization", format!("Bearer {API_KEY}"))
            .body(Full::default())
            .unwrap(),
    )
    .await;
    assert_eq!(post_history.status, 405);
    assert_eq!(post_history.header("allow"), Some("GET"));
}

#[tokio::test]
async fn publish_delivers_to_websocket_subscribers_as_the_server() {
    let server = start_with_api().await;
    let (mut ws, _) = connect(&server.ws_url()).await;
    subscribe(&mut ws, "tasks:updates").await;

    let answer = publish(
        server.local_addr(),
        r#"{"channel":"tasks:updates","type":"task-status-changed","payload":{"taskId":"t-1","status":"done"},"id":"m-1","priority":"high"}"#,
    )
    .await;
    assert_eq!(answer.status, 200, "{}", answer.text());
    assert_eq!(
        answer.json(),
        json!({"channel": "tasks:updates", "id": "m-1", "offset": 1, "duplicate": false})
    );

    let message = next_of_type(&mut ws, "task-status-changed").await;
    assert_eq!(
        message["payload"],
        json!({"taskId": "t-1", "status": "done"})
    );
    assert_eq!(message["id"], "m-1");
    assert_eq!(message["priority"], "high");
    assert_eq!(message["offset"], 1);
    assert_eq!(
        message["from"],
        json!({"userId": null, "connectionId": "$server"})
    );
}

#[tokio::test]
async fn a_backend_retrying_a_publish_with_its_id_is_delivered_once() {
    let server = start_with_api().await;
    let (mut ws, _) = connect(&server.ws_url()).await;
    subscribe(&mut ws, "jobs").await;
    let body = r#"{"channel":"jobs","type":"job.done","payload":{"job":7},"id":"job-7-done"}"#;
    let first = publish(server.local_addr(), body).await;
    assert_eq!(first.json()["duplicate"], false, "{}", first.text());
    let retry = publish(server.local_addr(), body).await;
    assert_eq!(retry.status, 200, "{}", retry.text());
    assert_eq!(
        retry.json(),
        json!({"channel": "jobs", "id": "job-7-done", "offset": 1, "duplicate": true})
    );
    let other = publish(
        server.local_addr(),
        r#"{"channel":"jobs","type":"job.done","payload":{"job":8},"id":"job-8-done"}"#,
    )
    .await;
    assert_eq!(other.json()["offset"], 2);
    // The subscriber sees job 7 once, then job 8: the retry was never delivered.
    assert_eq!(next_of_type(&mut ws, "job.done").await["id"], "job-7-done");
    assert_eq!(next_of_type(&mut ws, "job.done").await["id"], "job-8-done");
}

#[tokio::test]
async fn publish_parses_the_body_as_json_whatever_its_content_type() {
    let server = start_with_api().await;
    let answer = request(
        server.local_addr(),
        http::Request::post("/api/publish")
            .header("authorization", format!("Bearer {API_KEY}"))
            .header("content-type", "text/plain")
            .body(Full::new(Bytes::from(
                r#"{"channel":"room","type":"note","payload":null}"#,
            )))
            .unwrap(),
    )
    .await;
    assert_eq!(answer.status, 200, "{}", answer.text());
    assert_eq!(answer.json()["offset"], 1);
    assert!(
        answer.json()["id"]
            .as_str()
            .is_some_and(|id| !id.is_empty())
    );
}

#[tokio::test]
async fn publish_rejects_malformed_bodies_and_invalid_names_with_400() {
    let server = start_with_api().await;
    for body in [
        "not json",
        "[1,2]",
        r#"{"channel":"room","type":"note"}"#,
        r#"{"channel":"bad channel","type":"note","payload":1}"#,
        r#"{"channel":"room","type":"bad type","payload":1}"#,
        r#"{"channel":"room","type":"subscribe","payload":1}"#,
        r#"{"channel":"room","type":"welcome","payload":1}"#,
        r#"{"channel":"room","type":"note","payload":1,"priority":"urgent"}"#,
        r#"{"channel":"room","type":"note","payload":1,"id":""}"#,
    ] {
        let answer = publish(server.local_addr(), body).await;
        assert_eq!(answer.status, 400, "{body}: {}", answer.text());
        assert_eq!(answer.json()["error"], "bad_request", "{body}");
    }
}

#[tokio::test]
async fn publish_over_max_message_bytes_answers_413() {
    let server = start(
        test_config()
            .publish_api_key(Some(API_KEY))
            .max_message_bytes(std::num::NonZeroUsize::new(128).unwrap()),
    )
    .await;
    let big = format!(
        r#"{{"channel":"room","type":"note","payload":"{}"}}"#,
        "x".repeat(200)
    );
    let declared = publish(server.local_addr(), &big).await;
    assert_eq!(declared.status, 413);
    assert_eq!(declared.json()["error"], "too_large");

    // Chunked, without a Content-Length: the limit applies while reading.
    let chunks: Vec<Result<Frame<Bytes>, std::convert::Infallible>> = big
        .into_bytes()
        .chunks(32)
        .map(|c| Ok(Frame::data(Bytes::copy_from_slice(c))))
        .collect();
    let stream = tokio::net::TcpStream::connect(server.local_addr())
        .await
        .unwrap();
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .unwrap();
    tokio::spawn(connection);
    let response = sender
        .send_request(
            http::Request::post("/api/publish")
                .header("host", "localhost")
                .header("authorization", format!("Bearer {API_KEY}"))
                .body(StreamBody::new(stream::iter(chunks)))
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(response.status(), 413);

    let exact = format!(
        r#"{{"channel":"room","type":"note","payload":"{}"}}"#,
        "x".repeat(128 - 45)
    );
    assert_eq!(exact.len(), 128);
    assert_eq!(publish(server.local_addr(), &exact).await.status, 200);
}

#[tokio::test]
async fn presence_lists_the_members_of_a_percent_encoded_channel() {
    let server = start_with_api().await;
    let (mut ws, welcome) = connect(&server.ws_url()).await;
    subscribe(&mut ws, "ops:room/1").await;
    send_json(
        &mut ws,
        &json!({"type": "presence-update", "channel": "ops:room/1", "status": "busy"}),
    )
    .await;
    next_of_type(&mut ws, "presence-update").await;

    let answer = api_get(server.local_addr(), "/api/channels/ops%3Aroom%2F1/presence").await;
    assert_eq!(answer.status, 200, "{}", answer.text());
    let body = answer.json();
    assert_eq!(body["channel"], "ops:room/1");
    let members = body["members"].as_array().unwrap();
    assert_eq!(members.len(), 1);
    assert_eq!(members[0]["connectionId"], welcome["connectionId"]);
    assert_eq!(members[0]["status"], "busy");
}

#[tokio::test]
async fn presence_and_history_reject_an_invalid_channel_with_400() {
    let server = start_with_api().await;
    for path in [
        "/api/channels/bad%20name/presence",
        "/api/channels/bad%2/history",
        "/api/channels//presence",
    ] {
        let answer = api_get(server.local_addr(), path).await;
        assert_eq!(answer.status, 400, "{path}: {}", answer.text());
        assert_eq!(answer.json()["error"], "bad_request");
    }
    let bad_since = api_get(server.local_addr(), "/api/channels/room/history?since=x").await;
    assert_eq!(bad_since.status, 400);
}

#[tokio::test]
async fn history_answers_the_messages_after_an_offset_exactly_as_delivered() {
    let server = start_with_api().await;
    let (mut ws, _) = connect(&server.ws_url()).await;
    subscribe(&mut ws, "room").await;
    for n in 1..=3 {
        let body =
            format!(r#"{{"channel":"room","type":"note","payload":{{"n":{n}}},"id":"m{n}"}}"#);
        assert_eq!(publish(server.local_addr(), &body).await.status, 200);
    }
    let mut delivered = Vec::new();
    for _ in 0..3 {
        delivered.push(next_of_type(&mut ws, "note").await);
    }

    let all = api_get(server.local_addr(), "/api/channels/room/history").await;
    assert_eq!(all.status, 200, "{}", all.text());
    let all = all.json();
    assert_eq!(all["channel"], "room");
    assert_eq!(all["offset"], 3);
    assert_eq!(all["recovered"], true);
    assert_eq!(all["messages"].as_array().unwrap(), &delivered);

    let epoch = all["epoch"].as_str().unwrap();
    let after = api_get(
        server.local_addr(),
        &format!("/api/channels/room/history?since=1&epoch={epoch}"),
    )
    .await
    .json();
    assert_eq!(after["recovered"], true);
    assert_eq!(after["messages"].as_array().unwrap(), &delivered[1..]);

    let other_epoch = api_get(
        server.local_addr(),
        "/api/channels/room/history?since=1&epoch=another-epoch",
    )
    .await
    .json();
    assert_eq!(other_epoch["recovered"], false);
    assert_eq!(other_epoch["messages"], json!([]));
    assert_eq!(other_epoch["epoch"], epoch);
}

#[tokio::test]
async fn publish_skips_the_excluded_connections_and_a_websocket_may_exclude_itself() {
    let server = start_with_api().await;
    let (mut a, a_welcome) = connect(&server.ws_url()).await;
    let (mut b, _) = connect(&server.ws_url()).await;
    subscribe(&mut a, "room").await;
    subscribe(&mut b, "room").await;
    let a_id = a_welcome["connectionId"].as_str().unwrap();

    // Offset 1 skips a; offset 2 (a's own, excludeSelf) skips a too; offset 3 reaches both.
    let answer = publish(
        server.local_addr(),
        &format!(r#"{{"channel":"room","type":"said","payload":1,"exclude":["{a_id}","nobody"]}}"#),
    )
    .await;
    assert_eq!(answer.status, 200, "{}", answer.text());
    assert_eq!(answer.json()["offset"], 1);
    send_json(
        &mut a,
        &json!({"type": "said", "channel": "room", "payload": 2, "id": "mine", "excludeSelf": true}),
    )
    .await;
    let answer = publish(
        server.local_addr(),
        r#"{"channel":"room","type":"said","payload":3}"#,
    )
    .await;
    assert_eq!(answer.json()["offset"], 3);

    // `a` reads, in place of each message it was excluded from, where that offset went; its
    // own publish is acknowledged; the only message it gets is offset 3.
    let mut frames = Vec::new();
    loop {
        let frame = support::next_json(&mut a).await;
        let last = frame["type"] == "said";
        frames.push(frame);
        if last {
            break;
        }
    }
    let said = frames.pop().unwrap();
    assert_eq!(said["offset"], 3);
    frames.retain(|f| f["type"] != "pong");
    frames.sort_by_key(|f| {
        (
            f["type"].as_str().unwrap_or("").to_owned(),
            f["offset"].as_u64(),
        )
    });
    assert_eq!(
        frames,
        [
            json!({"type": "ack", "id": "mine", "offset": 2}),
            json!({"type": "excluded", "channel": "room", "offset": 1}),
            json!({"type": "excluded", "channel": "room", "offset": 2}),
        ]
    );
    for offset in 1..=3 {
        assert_eq!(next_of_type(&mut b, "said").await["offset"], offset);
    }
}

#[tokio::test]
async fn publish_refuses_a_malformed_or_oversized_exclude_list_with_400() {
    let server = start_with_api().await;
    let too_many: Vec<String> = (0..65).map(|i| format!("c{i}")).collect();
    for body in [
        r#"{"channel":"room","type":"said","payload":1,"exclude":"c1"}"#.to_owned(),
        r#"{"channel":"room","type":"said","payload":1,"exclude":[1]}"#.to_owned(),
        r#"{"channel":"room","type":"said","payload":1,"excludeSelf":true}"#.to_owned(),
        json!({"channel": "room", "type": "said", "payload": 1, "exclude": too_many}).to_string(),
    ] {
        let answer = publish(server.local_addr(), &body).await;
        assert_eq!(answer.status, 400, "{body}: {}", answer.text());
        assert_eq!(answer.json()["error"], "bad_request");
    }
}

#[tokio::test]
async fn broadcast_publishes_to_each_channel_independently_and_answers_per_channel() {
    let server = start_with_api().await;
    let (mut a, _) = connect(&server.ws_url()).await;
    let (mut b, _) = connect(&server.ws_url()).await;
    subscribe(&mut a, "news:a").await;
    subscribe(&mut b, "news:b").await;
    // `news:b` already has a message, so the channels' offsets differ.
    publish(
        server.local_addr(),
        r#"{"channel":"news:b","type":"x","payload":0}"#,
    )
    .await;

    let body = r#"{"channels":["news:a","news:b","not a channel"],"type":"headline","payload":{"t":"hi"},"id":"h-1"}"#;
    let answer = broadcast(server.local_addr(), body).await;
    assert_eq!(answer.status, 200, "{}", answer.text());
    let results = answer.json()["results"].clone();
    assert_eq!(
        results[0],
        json!({"channel": "news:a", "id": "h-1", "offset": 1, "duplicate": false})
    );
    assert_eq!(
        results[1],
        json!({"channel": "news:b", "id": "h-1", "offset": 2, "duplicate": false})
    );
    assert_eq!(results[2]["channel"], "not a channel");
    assert_eq!(results[2]["error"], "bad_request");
    for ws in [&mut a, &mut b] {
        let message = next_of_type(ws, "headline").await;
        assert_eq!(
            (message["id"].as_str(), &message["payload"]),
            (Some("h-1"), &json!({"t": "hi"}))
        );
    }

    // The payload goes out as the text that came in, as through /api/publish.
    let exact = r#"{"n":12345678901234567890123,"f":1E2}"#;
    let answer = broadcast(
        server.local_addr(),
        &format!(r#"{{"channels":["news:a"],"type":"exact","payload":{exact}}}"#),
    )
    .await;
    assert_eq!(
        answer.json()["results"][0]["offset"],
        2,
        "{}",
        answer.text()
    );
    let text = loop {
        let text = support::next_text(&mut a).await;
        if text.contains(r#""type":"exact""#) {
            break text;
        }
    };
    assert!(text.contains(&format!(r#""payload":{exact}"#)), "{text}");

    // A retry is deduplicated per channel: acknowledged with the first offsets, not sent.
    let retry = broadcast(server.local_addr(), body).await.json()["results"].clone();
    assert_eq!(
        retry[0],
        json!({"channel": "news:a", "id": "h-1", "offset": 1, "duplicate": true})
    );
    assert_eq!(
        retry[1],
        json!({"channel": "news:b", "id": "h-1", "offset": 2, "duplicate": true})
    );
}

#[tokio::test]
async fn broadcast_refuses_a_request_that_names_no_channels_or_no_valid_publish_with_400() {
    let server = start_with_api().await;
    let too_many: Vec<String> = (0..1001).map(|i| format!("c{i}")).collect();
    for body in [
        r#"{"type":"headline","payload":1}"#.to_owned(),
        r#"{"channels":[],"type":"headline","payload":1}"#.to_owned(),
        r#"{"channels":"news","type":"headline","payload":1}"#.to_owned(),
        r#"{"channels":["news"],"type":"subscribe","payload":1}"#.to_owned(),
        r#"{"channels":["news"],"type":"headline"}"#.to_owned(),
        json!({"channels": too_many, "type": "headline", "payload": 1}).to_string(),
    ] {
        let answer = broadcast(server.local_addr(), &body).await;
        assert_eq!(answer.status, 400, "{body}: {}", answer.text());
        assert_eq!(answer.json()["error"], "bad_request");
    }
}

/// `POST /api/broadcast` with the API key.
async fn broadcast(addr: std::net::SocketAddr, body: &str) -> support::Answer {
    support::api_post(addr, "/api/broadcast", body).await
}
