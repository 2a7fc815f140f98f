//! Properties: no input panics the decoder, every rejection maps to a documented code, and
//! encode → decode round-trips for every frame in both directions.

use proptest::prelude::*;
use switchboard_protocol::{
    Ack, ChannelName, ClientFrame, ErrorCode, ErrorFrame, EventType, Member, Message, Payload,
    Ping, Pong, PresenceAction, PresenceEvent, PresenceList, PresenceQuery, PresenceUpdate,
    Priority, Publish, Sender, ServerFrame, StreamPosition, Subscribe, Subscribed, Unsubscribe,
    Unsubscribed, Welcome,
};

fn arb_json(depth: u32) -> impl Strategy<Value = serde_json::Value> {
    let leaf = prop_oneof![
        Just(serde_json::Value::Null),
        any::<bool>().prop_map(serde_json::Value::from),
        any::<i64>().prop_map(serde_json::Value::from),
        any::<u64>().prop_map(serde_json::Value::from),
        ".{0,12}".prop_map(serde_json::Value::from),
    ];
    leaf.prop_recursive(depth, 32, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..5).prop_map(serde_json::Value::from),
            prop::collection::btree_map("[a-zA-Z_]{1,6}", inner, 0..5)
                .prop_map(|m| serde_json::Value::Object(m.into_iter().collect())),
        ]
    })
}

fn arb_channel() -> impl Strategy<Value = ChannelName> {
    "[A-Za-z0-9_.:@/=-]{1,40}".prop_map(|s| ChannelName::new(&s).unwrap())
}

fn arb_event() -> impl Strategy<Value = EventType> {
    "[A-Za-z0-9_.:/-]{1,30}"
        .prop_filter("not reserved", |s| !EventType::is_reserved(s))
        .prop_map(|s| EventType::new(&s).unwrap())
}

fn arb_id() -> impl Strategy<Value = Option<String>> {
    proptest::option::of("[^\\p{Cc}]{1,20}")
}

fn arb_priority() -> impl Strategy<Value = Priority> {
    prop::sample::select(Priority::ALL.to_vec())
}

fn arb_meta() -> impl Strategy<Value = Option<serde_json::Value>> {
    proptest::option::of(
        prop::collection::btree_map("[a-z]{1,5}", arb_json(2), 0..4)
            .prop_map(|m| serde_json::Value::Object(m.into_iter().collect())),
    )
}

fn arb_client_frame() -> impl Strategy<Value = ClientFrame> {
    prop_oneof![
        (
            arb_channel(),
            arb_id(),
            proptest::option::of((any::<u64>(), "[a-z0-9-]{1,12}"))
        )
            .prop_map(|(channel, id, since)| ClientFrame::Subscribe(Subscribe {
                channel,
                id,
                since: since.map(|(offset, epoch)| StreamPosition { offset, epoch }),
            })),
        (arb_channel(), arb_id())
            .prop_map(|(channel, id)| ClientFrame::Unsubscribe(Unsubscribe { channel, id })),
        (arb_id(), proptest::option::of(any::<u64>()))
            .prop_map(|(id, timestamp)| ClientFrame::Ping(Ping { id, timestamp })),
        (
            proptest::option::of(arb_channel()),
            proptest::option::of(".{0,10}"),
            proptest::option::of(".{0,10}"),
            arb_meta()
        )
            .prop_map(|(channel, status, current_feature, meta)| {
                ClientFrame::PresenceUpdate(PresenceUpdate {
                    channel,
                    status,
                    current_feature,
                    meta,
                })
            }),
        (arb_channel(), arb_id())
            .prop_map(|(channel, id)| ClientFrame::Presence(PresenceQuery { channel, id })),
        (
            arb_event(),
            arb_channel(),
            arb_json(3),
            arb_id(),
            arb_priority(),
            any::<bool>()
        )
            .prop_map(|(event, channel, payload, id, priority, exclude_self)| {
                ClientFrame::Publish(Publish {
                    event,
                    channel,
                    payload: Payload::from_value(&payload),
                    id,
                    priority,
                    exclude_self,
                })
            }),
    ]
}

fn arb_member() -> impl Strategy<Value = Member> {
    (
        "[a-z0-9]{1,8}",
        proptest::option::of("[a-z]{1,8}"),
        ".{0,8}",
        proptest::option::of(".{0,8}"),
        arb_meta(),
        any::<u64>(),
        any::<u64>(),
    )
        .prop_map(
            |(connection_id, user_id, status, current_feature, meta, joined_at, last_seen)| {
                Member {
                    connection_id,
                    user_id,
                    status,
                    current_feature,
                    meta,
                    joined_at,
                    last_seen,
                }
            },
        )
}

fn arb_server_frame() -> impl Strategy<Value = ServerFrame> {
    prop_oneof![
        (
            "[a-z0-9]{1,8}",
            proptest::option::of("[a-z]{1,8}"),
            any::<u64>(),
            any::<u64>()
        )
            .prop_map(|(connection_id, user_id, heartbeat_ms, timestamp)| {
                ServerFrame::Welcome(Welcome {
                    connection_id,
                    user_id,
                    heartbeat_ms,
                    expires_at: timestamp.checked_mul(3),
                    timestamp,
                })
            }),
        (
            arb_channel(),
            arb_id(),
            any::<u64>(),
            "[a-z0-9]{1,8}",
            any::<bool>()
        )
            .prop_map(|(channel, id, offset, epoch, recovered)| {
                ServerFrame::Subscribed(Subscribed {
                    server: id.is_none() && recovered,
                    channel,
                    id,
                    offset,
                    epoch,
                    recovered,
                })
            }),
        (arb_channel(), arb_id()).prop_map(|(channel, id)| ServerFrame::Unsubscribed(
            Unsubscribed {
                reason: id.as_ref().map(|_| "forbidden".to_owned()),
                channel,
                id,
            }
        )),
        (arb_id(), proptest::option::of(any::<u64>()), any::<u64>()).prop_map(
            |(id, timestamp, server_time)| ServerFrame::Pong(Pong {
                id,
                timestamp,
                server_time
            })
        ),
        ("[a-z0-9]{1,8}", any::<u64>())
            .prop_map(|(id, offset)| ServerFrame::Ack(Ack { id, offset })),
        (
            arb_channel(),
            arb_id(),
            prop::collection::vec(arb_member(), 0..3)
        )
            .prop_map(
                |(channel, id, members)| ServerFrame::Presence(PresenceList {
                    channel,
                    id,
                    members
                })
            ),
        (
            arb_channel(),
            prop::sample::select(vec![
                PresenceAction::Join,
                PresenceAction::Leave,
                PresenceAction::Update
            ]),
            arb_member(),
            any::<u64>()
        )
            .prop_map(|(channel, action, member, timestamp)| {
                ServerFrame::PresenceUpdate(PresenceEvent {
                    channel,
                    action,
                    member,
                    timestamp,
                })
            }),
        (
            prop::sample::select(ErrorCode::ALL.to_vec()),
            ".{0,20}",
            arb_id()
        )
            .prop_map(|(code, message, id)| ServerFrame::Error(
                ErrorFrame::new(code, message).with_id(id)
            )),
        (any::<u64>(), arb_id()).prop_map(|(retry, id)| {
            ServerFrame::Error(ErrorFrame::rate_limited(retry).with_id(id))
        }),
        (
            arb_event(),
            arb_channel(),
            arb_json(3),
            // Ids and user ids are the application's: any text, quotes, backslashes,
            // control characters and non-ASCII included, each escaped as serde_json does.
            prop_oneof!["[a-z0-9-]{1,12}", "[a-z\"\\\\\u{1}\u{1f}\u{7f}é/]{1,12}"],
            any::<u64>(),
            arb_priority(),
            any::<u64>(),
            proptest::option::of(prop_oneof!["[a-z]{1,8}", "[a-z\"\\\\\n\u{0}€]{0,8}"]),
            prop_oneof!["[a-z0-9$]{1,8}", "[a-z\"\\\\\t]{1,8}"]
        )
            .prop_map(
                |(
                    event,
                    channel,
                    payload,
                    id,
                    timestamp,
                    priority,
                    offset,
                    user_id,
                    connection_id,
                )| {
                    ServerFrame::Message(Message {
                        event,
                        channel,
                        payload: Payload::from_value(&payload),
                        id,
                        timestamp,
                        priority,
                        offset,
                        from: Sender {
                            user_id,
                            connection_id,
                        },
                    })
                }
            ),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn arbitrary_bytes_never_panic_and_map_to_a_documented_code(bytes in prop::collection::vec(any::<u8>(), 0..256)) {
        if let Err(e) = ClientFrame::decode_bytes(&bytes, Default::default()) {
            prop_assert!(ErrorCode::ALL.contains(&e.code()));
            prop_assert!(!e.message().is_empty());
        }
    }

    #[test]
    fn arbitrary_json_never_panics_and_maps_to_a_documented_code(value in arb_json(6), kind in prop::option::of(prop_oneof![
        Just("subscribe".to_owned()), Just("unsubscribe".to_owned()), Just("ping".to_owned()),
        Just("presence".to_owned()), Just("presence-update".to_owned()), Just("welcome".to_owned()),
        "[a-z.]{1,10}",
    ])) {
        let mut value = value;
        if let (Some(kind), Some(obj)) = (kind, value.as_object_mut()) {
            obj.insert("type".into(), kind.into());
        }
        let text = value.to_string();
        if let Err(e) = ClientFrame::decode(&text) {
            prop_assert!(ErrorCode::ALL.contains(&e.code()));
        }
    }

    #[test]
    fn client_frames_round_trip(frame in arb_client_frame()) {
        let text = frame.encode();
        prop_assert_eq!(ClientFrame::decode(&text).unwrap(), frame);
    }

    #[test]
    fn a_finished_draft_is_byte_identical_to_the_encoded_message(frame in arb_server_frame()) {
        if let ServerFrame::Message(message) = frame {
            let (draft, offset) = message.clone().into_draft();
            prop_assert_eq!(draft.encode().finish(offset), message.encode());
            // Appended after a header: the same bytes after it.
            let mut buf = b"header".to_vec();
            draft.encode_into(&mut buf);
            let encoded = draft.encode();
            prop_assert_eq!(&buf[6..], encoded.bytes().as_ref());
            // The size hint covers the draft unless its strings need escaping.
            let text = std::str::from_utf8(&buf[6..]).unwrap();
            if !text.contains('\\') {
                prop_assert!(buf.len() - 6 <= draft.encoded_len_hint());
            }
        }
    }

    #[test]
    fn server_frames_round_trip(frame in arb_server_frame()) {
        let bytes = frame.encode();
        let text = std::str::from_utf8(bytes.as_bytes()).unwrap();
        prop_assert_eq!(ServerFrame::decode(text).unwrap(), frame);
    }
}
