//! The frames the server writes as pre-encoded bytes are RFC 6455 frames: tungstenite, as the
//! reading peer, decodes them at every length-encoding boundary, back to back in one stream.

use std::io::Cursor;

use switchboard_protocol::{
    Ack, ChannelName, EncodedFrame, EventType, MessageDraft, Payload, Priority, Sender, ServerFrame,
};
use tokio_tungstenite::tungstenite::protocol::{Role, WebSocket, WebSocketConfig};
use tokio_tungstenite::tungstenite::{Message, Utf8Bytes};

/// A frame whose JSON text is exactly `len` bytes long: an `ack` (encoded whole) below 1 KB,
/// a delivered message (a draft finished with its offset) above.
fn message_of_len(len: usize) -> EncodedFrame {
    if len < 1024 {
        let ack = |pad: usize| {
            ServerFrame::Ack(Ack {
                id: "i".repeat(pad),
                offset: 3,
            })
            .encode()
        };
        let frame = ack(len - ack(0).len());
        assert_eq!(frame.len(), len);
        return frame;
    }
    let draft = |pad: usize| MessageDraft {
        event: EventType::new("t").unwrap(),
        channel: ChannelName::new("c").unwrap(),
        payload: Payload::from_json(&format!("\"{}\"", "x".repeat(pad))).unwrap(),
        id: "m1".into(),
        timestamp: 1,
        priority: Priority::Normal,
        from: Sender::server(),
    };
    let base = draft(0).encode().finish(7).len();
    let frame = draft(len - base).encode().finish(7);
    assert_eq!(frame.len(), len);
    frame
}

/// Reads every message tungstenite finds in `wire`, as a client would.
fn read_all(wire: Vec<u8>) -> Vec<Message> {
    let mut config = WebSocketConfig::default();
    config.max_message_size = None;
    config.max_frame_size = None;
    let mut ws = WebSocket::from_raw_socket(Cursor::new(wire), Role::Client, Some(config));
    let mut out = Vec::new();
    loop {
        match ws.read() {
            Ok(message) => out.push(message),
            Err(tokio_tungstenite::tungstenite::Error::Io(e))
                if e.kind() == std::io::ErrorKind::UnexpectedEof
                    || e.kind() == std::io::ErrorKind::WouldBlock =>
            {
                return out;
            }
            // The end of the bytes, without a close frame.
            Err(tokio_tungstenite::tungstenite::Error::Protocol(
                tokio_tungstenite::tungstenite::error::ProtocolError::ResetWithoutClosingHandshake,
            )) => return out,
            Err(err) => panic!("tungstenite rejected the server's bytes: {err}"),
        }
    }
}

#[test]
fn text_frames_at_every_length_boundary_decode_back_to_back() {
    // 125: the largest 7-bit length; 126: the first 16-bit one; 65,535: the largest 16-bit
    // one; 65,536: the first 64-bit one.
    let lengths = [125, 126, 65_535, 65_536];
    let frames: Vec<EncodedFrame> = lengths.iter().map(|&n| message_of_len(n)).collect();
    let wire: Vec<u8> = frames.iter().flat_map(|f| f.wire().to_vec()).collect();
    let messages = read_all(wire);
    assert_eq!(messages.len(), frames.len());
    for (message, frame) in messages.iter().zip(&frames) {
        match message {
            Message::Text(text) => assert_eq!(text.as_bytes(), frame.as_bytes()),
            other => panic!("expected a text message, got {other:?}"),
        }
    }
}

#[test]
fn the_header_uses_the_shortest_length_form() {
    assert_eq!(&message_of_len(125).wire()[..2], &[0x81, 125]);
    assert_eq!(&message_of_len(126).wire()[..4], &[0x81, 126, 0, 126]);
    assert_eq!(
        &message_of_len(65_535).wire()[..4],
        &[0x81, 126, 0xff, 0xff]
    );
    assert_eq!(
        &message_of_len(65_536).wire()[..10],
        &[0x81, 127, 0, 0, 0, 0, 0, 1, 0, 0]
    );
    for n in [125, 126, 65_535, 65_536] {
        let frame = message_of_len(n);
        let header = frame.wire().len() - frame.len();
        assert_eq!(&frame.wire()[header..], frame.as_bytes());
    }
}

#[test]
fn a_reply_is_one_text_frame_of_its_json() {
    let ack = ServerFrame::Ack(Ack {
        id: "a".into(),
        offset: 3,
    })
    .encode();
    let messages = read_all(ack.wire().to_vec());
    assert_eq!(
        messages,
        vec![Message::Text(Utf8Bytes::from(
            r#"{"type":"ack","id":"a","offset":3}"#
        ))]
    );
}
