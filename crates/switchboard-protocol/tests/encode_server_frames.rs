//! The exact JSON of server frames, as documented in docs/protocol.md.

use serde_json::json;
use switchboard_protocol::{
    Ack, ChannelName, ErrorCode, ErrorFrame, Member, Pong, PresenceAction, PresenceEvent,
    PresenceList, ServerFrame, Subscribed, Unsubscribed, Welcome,
};

fn json_of(frame: impl Into<ServerFrame>) -> serde_json::Value {
    serde_json::from_slice(frame.into().encode().as_bytes()).unwrap()
}

fn member() -> Member {
    Member {
        connection_id: "c1".into(),
        user_id: Some("alice".into()),
        status: "online".into(),
        current_feature: None,
        meta: None,
        joined_at: 10,
        last_seen: 20,
    }
}

#[test]
fn welcome_carries_connection_user_heartbeat_and_time() {
    let j = json_of(Welcome {
        connection_id: "c1".into(),
        user_id: None,
        heartbeat_ms: 30_000,
        timestamp: 5,
        expires_at: None,
    });
    assert_eq!(
        j,
        json!({"type":"welcome","connectionId":"c1","userId":null,"heartbeatMs":30000,"timestamp":5})
    );
}

#[test]
fn subscribed_omits_a_missing_id_but_always_says_recovered() {
    let j = json_of(Subscribed {
        channel: ChannelName::new("c").unwrap(),
        id: None,
        offset: 3,
        epoch: "e".into(),
        recovered: false,
        server: false,
    });
    assert_eq!(
        j,
        json!({"type":"subscribed","channel":"c","offset":3,"epoch":"e","recovered":false})
    );
    let j = json_of(Subscribed {
        channel: ChannelName::new("c").unwrap(),
        id: None,
        offset: 3,
        epoch: "e".into(),
        recovered: true,
        server: true,
    });
    assert_eq!(
        j,
        json!({"type":"subscribed","channel":"c","offset":3,"epoch":"e","recovered":true,"server":true})
    );
    let j = json_of(Unsubscribed {
        channel: ChannelName::new("c").unwrap(),
        id: Some("u".into()),
        reason: None,
    });
    assert_eq!(j, json!({"type":"unsubscribed","channel":"c","id":"u"}));
    let j = json_of(Unsubscribed {
        channel: ChannelName::new("c").unwrap(),
        id: None,
        reason: Some("forbidden".into()),
    });
    assert_eq!(
        j,
        json!({"type":"unsubscribed","channel":"c","reason":"forbidden"})
    );
}

#[test]
fn pong_echoes_only_what_the_ping_sent() {
    let j = json_of(Pong {
        id: None,
        timestamp: None,
        server_time: 9,
    });
    assert_eq!(j, json!({"type":"pong","serverTime":9}));
    let j = json_of(Pong {
        id: Some("p".into()),
        timestamp: Some(1),
        server_time: 9,
    });
    assert_eq!(
        j,
        json!({"type":"pong","id":"p","timestamp":1,"serverTime":9})
    );
}

#[test]
fn ack_and_presence_frames_have_the_documented_shape() {
    assert_eq!(
        json_of(Ack {
            id: "m".into(),
            offset: 4
        }),
        json!({"type":"ack","id":"m","offset":4})
    );
    let member_json = json!({
        "connectionId":"c1","userId":"alice","status":"online","currentFeature":null,
        "meta":null,"joinedAt":10,"lastSeen":20
    });
    assert_eq!(
        json_of(PresenceList {
            channel: ChannelName::new("c").unwrap(),
            id: None,
            members: vec![member()]
        }),
        json!({"type":"presence","channel":"c","members":[member_json]})
    );
    assert_eq!(
        json_of(PresenceEvent {
            channel: ChannelName::new("c").unwrap(),
            action: PresenceAction::Join,
            member: member(),
            timestamp: 11,
        }),
        json!({"type":"presence-update","channel":"c","action":"join","member":member_json,"timestamp":11})
    );
}

#[test]
fn rate_limited_errors_say_when_to_retry() {
    let j = json_of(ErrorFrame::rate_limited(1500).with_id(Some("m1".into())));
    assert_eq!(j["type"], "error");
    assert_eq!(j["code"], "rate_limited");
    assert_eq!(j["rateLimited"], true);
    assert_eq!(j["retryAfterMs"], 1500);
    assert_eq!(j["id"], "m1");
    // Other errors carry neither field.
    let j = json_of(ErrorFrame::new(ErrorCode::Forbidden, "no"));
    assert_eq!(j, json!({"type":"error","code":"forbidden","message":"no"}));
}
