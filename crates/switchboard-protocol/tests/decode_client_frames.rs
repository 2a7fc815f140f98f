//! Decoding client frames: what is accepted, and the documented error for everything else.

use switchboard_protocol::{
    ClientFrame, DecodeLimits, ErrorCode, MAX_CHANNEL_LEN, Priority, StreamPosition,
};

fn bad(text: &str) -> switchboard_protocol::DecodeError {
    let err = ClientFrame::decode(text).expect_err(text);
    assert_eq!(err.code(), ErrorCode::BadRequest, "{text}: {err}");
    err
}

#[test]
fn subscribe_with_since_decodes_offset_and_epoch() {
    let frame = ClientFrame::decode(
        r#"{"type":"subscribe","channel":"tasks:updates","id":"s1","since":{"offset":41,"epoch":"e7"}}"#,
    )
    .unwrap();
    let ClientFrame::Subscribe(s) = frame else {
        panic!("{frame:?}")
    };
    assert_eq!(s.channel, "tasks:updates");
    assert_eq!(s.id.as_deref(), Some("s1"));
    assert_eq!(
        s.since,
        Some(StreamPosition {
            offset: 41,
            epoch: "e7".into()
        })
    );
}

#[test]
fn publish_keeps_payload_text_and_drops_unknown_fields() {
    let frame = ClientFrame::decode(
        r#"{"type":"chat.message","channel":"room:1","payload":{"text":"hi"},"status":5,"from":"forged","offset":99}"#,
    )
    .unwrap();
    let ClientFrame::Publish(p) = frame else {
        panic!("{frame:?}")
    };
    assert_eq!(p.payload.get(), r#"{"text":"hi"}"#);
    assert_eq!(p.priority, Priority::Normal);
    assert_eq!(p.id, None);
    // Re-encoding shows that nothing but the publish's own fields survived.
    assert_eq!(
        ClientFrame::Publish(p).encode(),
        r#"{"type":"chat.message","channel":"room:1","payload":{"text":"hi"}}"#
    );
}

#[test]
fn publish_priority_is_parsed_and_validated() {
    let frame = ClientFrame::decode(
        r#"{"type":"alert","channel":"ops","payload":null,"priority":"critical","id":"a1"}"#,
    )
    .unwrap();
    assert!(matches!(frame, ClientFrame::Publish(ref p) if p.priority == Priority::Critical));

    let err = bad(r#"{"type":"alert","channel":"ops","payload":1,"priority":"urgent","id":"a2"}"#);
    assert_eq!(err.id(), Some("a2"));
    assert!(err.message().contains("priority"), "{err}");
}

#[test]
fn publish_requires_channel_and_payload() {
    assert!(
        bad(r#"{"type":"chat","payload":1}"#)
            .message()
            .contains("channel")
    );
    assert!(
        bad(r#"{"type":"chat","channel":"c"}"#)
            .message()
            .contains("payload")
    );
}

#[test]
fn escaped_slashes_in_channel_names_are_accepted() {
    // Some JSON encoders (PHP's json_encode) escape '/' as "\/".
    let frame = ClientFrame::decode(r#"{"type":"subscribe","channel":"user\/42"}"#).unwrap();
    assert!(matches!(frame, ClientFrame::Subscribe(ref s) if s.channel == "user/42"));
}

#[test]
fn ping_echo_fields_are_optional() {
    assert_eq!(
        ClientFrame::decode(r#"{"type":"ping"}"#).unwrap(),
        ClientFrame::Ping(Default::default())
    );
    let frame =
        ClientFrame::decode(r#"{"type":"ping","id":"p","timestamp":1700000000000}"#).unwrap();
    let ClientFrame::Ping(p) = frame else {
        panic!()
    };
    assert_eq!(
        (p.id.as_deref(), p.timestamp),
        (Some("p"), Some(1_700_000_000_000))
    );
    bad(r#"{"type":"ping","timestamp":-1}"#);
    bad(r#"{"type":"ping","timestamp":"now"}"#);
}

#[test]
fn presence_update_channel_is_optional_and_meta_must_be_an_object() {
    let frame = ClientFrame::decode(
        r#"{"type":"presence-update","status":"away","currentFeature":"board","meta":{"tab":2}}"#,
    )
    .unwrap();
    let ClientFrame::PresenceUpdate(u) = frame else {
        panic!()
    };
    assert_eq!(u.channel, None);
    assert_eq!(u.status.as_deref(), Some("away"));
    assert_eq!(u.current_feature.as_deref(), Some("board"));
    assert_eq!(u.meta, Some(serde_json::json!({"tab": 2})));

    bad(r#"{"type":"presence-update","meta":[1]}"#);
}

#[test]
fn oversized_presence_fields_are_too_large() {
    let too_large = |text: &str| {
        let err = ClientFrame::decode(text).unwrap_err();
        assert_eq!(err.code(), ErrorCode::TooLarge, "{text}: {err}");
        err
    };
    too_large(&format!(
        r#"{{"type":"presence-update","status":"{}"}}"#,
        "s".repeat(65)
    ));
    too_large(&format!(
        r#"{{"type":"presence-update","currentFeature":"{}"}}"#,
        "f".repeat(257)
    ));
    let big_meta = format!(
        r#"{{"type":"presence-update","meta":{{"k":"{}"}}}}"#,
        "v".repeat(4096)
    );
    assert!(too_large(&big_meta).message().contains("meta"));
}

#[test]
fn presence_query_and_unsubscribe_need_a_channel() {
    assert!(matches!(
        ClientFrame::decode(r#"{"type":"presence","channel":"c","id":"q"}"#).unwrap(),
        ClientFrame::Presence(ref q) if q.id.as_deref() == Some("q")
    ));
    assert!(matches!(
        ClientFrame::decode(r#"{"type":"unsubscribe","channel":"c"}"#).unwrap(),
        ClientFrame::Unsubscribe(_)
    ));
    assert_eq!(bad(r#"{"type":"presence","id":"q"}"#).id(), Some("q"));
    bad(r#"{"type":"unsubscribe"}"#);
}

#[test]
fn server_only_types_are_bad_requests_carrying_the_id() {
    for t in [
        "welcome",
        "subscribed",
        "unsubscribed",
        "pong",
        "ack",
        "error",
    ] {
        let err = bad(&format!(
            r#"{{"type":"{t}","channel":"c","payload":1,"id":"x"}}"#
        ));
        assert_eq!(err.id(), Some("x"), "{t}");
        assert!(err.message().contains("server"), "{t}: {err}");
    }
}

#[test]
fn malformed_frames_are_bad_requests() {
    for text in [
        "",
        "not json",
        "[1,2]",
        r#""subscribe""#,
        "{",
        r#"{"channel":"c"}"#,
        r#"{"type":5,"channel":"c"}"#,
        r#"{"type":"","channel":"c","payload":1}"#,
        r#"{"type":"has space","channel":"c","payload":1}"#,
        r#"{"type":"subscribe","channel":"c","channel":"d"}"#,
        r#"{"type":"subscribe","channel":7}"#,
        r#"{"type":"subscribe","channel":"c","since":{"offset":"1","epoch":"e"}}"#,
        r#"{"type":"subscribe","channel":"c","since":5}"#,
        r#"{"type":"subscribe","channel":"c"} trailing"#,
    ] {
        bad(text);
    }
}

#[test]
fn channel_names_are_validated_with_the_limit_inclusive() {
    let ok = format!(
        r#"{{"type":"subscribe","channel":"{}"}}"#,
        "a".repeat(MAX_CHANNEL_LEN)
    );
    assert!(ClientFrame::decode(&ok).is_ok());
    let long = format!(
        r#"{{"type":"subscribe","channel":"{}"}}"#,
        "a".repeat(MAX_CHANNEL_LEN + 1)
    );
    bad(&long);
    for name in ["", "a b", "a#b", "ü", "a\\nb"] {
        bad(&format!(
            r#"{{"type":"subscribe","channel":"{name}","id":"i"}}"#
        ));
    }
}

#[test]
fn invalid_ids_are_rejected_without_being_echoed() {
    let err = bad(r#"{"type":"ping","id":5}"#);
    assert_eq!(err.id(), None);
    let err = bad(&format!(r#"{{"type":"ping","id":"{}"}}"#, "x".repeat(129)));
    assert_eq!(err.id(), None);
}

#[test]
fn deep_nesting_is_rejected_before_parsing() {
    let depth = 40;
    let payload = format!("{}{}", "[".repeat(depth), "]".repeat(depth));
    let text = format!(r#"{{"type":"chat","channel":"c","payload":{payload}}}"#);
    assert!(bad(&text).message().contains("nesting"));
    // The limit is configurable.
    assert!(ClientFrame::decode_with(&text, DecodeLimits::default().max_depth(64)).is_ok());
}

#[test]
fn a_too_deep_frame_is_answered_with_its_id() {
    let nested = |depth: usize| {
        let payload = format!("{}{}", "[".repeat(depth), "]".repeat(depth));
        format!(r#"{{"type":"chat","channel":"c","payload":{payload},"id":"deep-1"}}"#)
    };
    let err = ClientFrame::decode(&nested(40)).unwrap_err();
    assert!(err.message().contains("nesting"), "{}", err.message());
    assert_eq!(err.id(), Some("deep-1"));
    // Far deeper than anything is parsed: still refused, never a stack overflow; the id is
    // only read within serde_json's own recursion limit.
    let err = ClientFrame::decode(&nested(100_000)).unwrap_err();
    assert!(err.message().contains("nesting"), "{}", err.message());
}

#[test]
fn invalid_utf8_bytes_are_a_bad_request() {
    let err = ClientFrame::decode_bytes(
        b"{\"type\":\"ping\",\"id\":\"\xff\"}",
        DecodeLimits::default(),
    )
    .unwrap_err();
    assert_eq!(err.code(), ErrorCode::BadRequest);
}

#[test]
fn decode_errors_become_error_frames_with_the_request_id() {
    let err = bad(r#"{"type":"subscribe","channel":"bad name","id":"s-9"}"#);
    let frame = switchboard_protocol::ServerFrame::Error(err.to_frame()).encode();
    let json: serde_json::Value = serde_json::from_slice(frame.as_bytes()).unwrap();
    assert_eq!(json["type"], "error");
    assert_eq!(json["code"], "bad_request");
    assert_eq!(json["id"], "s-9");
    assert!(json["message"].as_str().unwrap().contains("channel"));
}
