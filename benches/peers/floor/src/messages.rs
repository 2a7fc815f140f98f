//! The JSON frames, with the shapes of switchboard's (and the Node and Bun peers'): what a
//! client sends, read without copying its payload, and each server frame, encoded straight
//! into a whole WebSocket frame.

use std::borrow::Cow;
use std::time::{SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::value::RawValue;

use crate::websocket::{finish_text, text_buffer};

/// `heartbeatMs` in `welcome` (this server sends no heartbeats; the field is for the shape).
const HEARTBEAT_MS: u64 = 30_000;
/// Types a client may not send.
const SERVER_ONLY: [&str; 6] = [
    "welcome",
    "subscribed",
    "unsubscribed",
    "ack",
    "pong",
    "error",
];

/// A client frame. Fields other than `type` are kept as raw JSON and checked where used, so a
/// field of the wrong type gets the same answer as in the other peers, and so `null` stays
/// apart from a missing field.
#[derive(Debug, Deserialize)]
pub(crate) struct Incoming<'a> {
    #[serde(rename = "type", borrow)]
    pub(crate) kind: Cow<'a, str>,
    #[serde(default, borrow, deserialize_with = "present")]
    pub(crate) channel: Option<&'a RawValue>,
    #[serde(default, borrow, deserialize_with = "present")]
    pub(crate) id: Option<&'a RawValue>,
    #[serde(default, borrow, deserialize_with = "present")]
    pub(crate) payload: Option<&'a RawValue>,
    #[serde(default, borrow, deserialize_with = "present")]
    pub(crate) priority: Option<&'a RawValue>,
    #[serde(default, borrow, deserialize_with = "present")]
    pub(crate) timestamp: Option<&'a RawValue>,
}

/// A field that is present, `null` included (a plain `Option` would read `null` as absent).
fn present<'de, D: Deserializer<'de>>(d: D) -> Result<Option<&'de RawValue>, D::Error> {
    <&RawValue>::deserialize(d).map(Some)
}

/// Reads a text frame's payload.
///
/// # Errors
///
/// The `bad_request` message when it is not JSON, or not an object with a string `type`.
pub(crate) fn parse(text: &[u8]) -> Result<Incoming<'_>, &'static str> {
    let value: Incoming<'_> = serde_json::from_slice(text).map_err(|e| {
        if e.is_syntax() || e.is_eof() {
            "invalid JSON"
        } else {
            r#"a frame is a JSON object with a string "type""#
        }
    })?;
    Ok(value)
}

impl Incoming<'_> {
    pub(crate) fn is_server_only(&self) -> bool {
        SERVER_ONLY.contains(&self.kind.as_ref())
    }

    /// The channel when it is a string of 1 to 255 UTF-16 units (JavaScript's `length`).
    pub(crate) fn channel(&self) -> Option<Cow<'_, str>> {
        let channel = json_string(self.channel?)?;
        (!channel.is_empty() && channel.encode_utf16().count() <= 255).then_some(channel)
    }

    /// A publish's id: `Ok(None)` when absent, `Err` when not a string of 1 to 128 units.
    pub(crate) fn publish_id(&self) -> Result<Option<Cow<'_, str>>, ()> {
        let Some(raw) = self.id else { return Ok(None) };
        match json_string(raw) {
            Some(id) if !id.is_empty() && id.encode_utf16().count() <= 128 => Ok(Some(id)),
            _ => Err(()),
        }
    }

    /// The priority when it is one of the four, else `normal`.
    pub(crate) fn priority(&self) -> &'static str {
        match self.priority.map(RawValue::get) {
            Some(r#""critical""#) => "critical",
            Some(r#""high""#) => "high",
            Some(r#""low""#) => "low",
            _ => "normal",
        }
    }
}

/// The string a raw JSON value holds, borrowed when it has no escapes.
fn json_string(raw: &RawValue) -> Option<Cow<'_, str>> {
    let text = raw.get();
    let inner = text.strip_prefix('"')?.strip_suffix('"')?;
    if inner.contains('\\') {
        serde_json::from_str::<String>(text).ok().map(Cow::Owned)
    } else {
        Some(Cow::Borrowed(inner))
    }
}

/// Milliseconds since the Unix epoch, as JavaScript's `Date.now()`.
pub(crate) fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// Encodes `frame` as one whole WebSocket text frame.
fn encode(frame: &impl Serialize, capacity: usize) -> Bytes {
    let mut buf = text_buffer(capacity);
    serde_json::to_writer(&mut buf, frame).expect("serializing to a Vec cannot fail");
    finish_text(buf)
}

/// The message every subscriber receives, encoded once per publish.
#[derive(Debug, Serialize)]
pub(crate) struct Delivery<'a> {
    #[serde(rename = "type")]
    pub(crate) kind: &'a str,
    pub(crate) channel: &'a str,
    pub(crate) payload: &'a RawValue,
    pub(crate) id: &'a str,
    pub(crate) timestamp: u64,
    pub(crate) priority: &'static str,
    pub(crate) from: Publisher<'a>,
    pub(crate) offset: u64,
}

/// The publisher of a delivery.
#[derive(Debug, Serialize)]
pub(crate) struct Publisher<'a> {
    #[serde(rename = "userId")]
    pub(crate) user_id: Option<&'a str>,
    #[serde(rename = "connectionId")]
    pub(crate) connection_id: &'a str,
}

impl Delivery<'_> {
    pub(crate) fn encode(&self) -> Bytes {
        encode(self, 160 + self.payload.get().len() + self.channel.len())
    }
}

#[derive(Serialize)]
#[serde(tag = "type", rename_all = "camelCase")]
enum Reply<'a> {
    #[serde(rename_all = "camelCase")]
    Welcome {
        connection_id: &'a str,
        user_id: Option<&'a str>,
        heartbeat_ms: u64,
        timestamp: u64,
    },
    Subscribed {
        channel: &'a str,
        #[serde(skip_serializing_if = "Option::is_none")]
        id: Option<&'a RawValue>,
        offset: u64,
        epoch: &'a str,
        recovered: bool,
    },
    Unsubscribed {
        channel: &'a str,
        #[serde(skip_serializing_if = "Option::is_none")]
        id: Option<&'a RawValue>,
    },
    Ack {
        id: &'a str,
        offset: u64,
    },
    #[serde(rename_all = "camelCase")]
    Pong {
        #[serde(skip_serializing_if = "Option::is_none")]
        id: Option<&'a RawValue>,
        #[serde(skip_serializing_if = "Option::is_none")]
        timestamp: Option<&'a RawValue>,
        server_time: u64,
    },
    Error {
        code: &'a str,
        message: &'a str,
        #[serde(skip_serializing_if = "Option::is_none")]
        id: Option<&'a RawValue>,
    },
}

pub(crate) fn welcome(connection_id: &str) -> Bytes {
    let reply = Reply::Welcome {
        connection_id,
        user_id: None,
        heartbeat_ms: HEARTBEAT_MS,
        timestamp: now_ms(),
    };
    encode(&reply, 128)
}

pub(crate) fn subscribed(channel: &str, id: Option<&RawValue>, offset: u64) -> Bytes {
    let reply = Reply::Subscribed {
        channel,
        id,
        offset,
        epoch: "peer",
        recovered: false,
    };
    encode(&reply, 128 + channel.len())
}

pub(crate) fn unsubscribed(channel: &str, id: Option<&RawValue>) -> Bytes {
    encode(&Reply::Unsubscribed { channel, id }, 96 + channel.len())
}

pub(crate) fn ack(id: &str, offset: u64) -> Bytes {
    encode(&Reply::Ack { id, offset }, 64 + id.len())
}

pub(crate) fn pong(id: Option<&RawValue>, timestamp: Option<&RawValue>) -> Bytes {
    let reply = Reply::Pong {
        id,
        timestamp,
        server_time: now_ms(),
    };
    encode(&reply, 128)
}

pub(crate) fn error(code: &str, message: &str, id: Option<&RawValue>) -> Bytes {
    encode(&Reply::Error { code, message, id }, 96 + message.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The payload of a server frame shorter than 64 KiB.
    fn body(frame: &Bytes) -> &[u8] {
        &frame[if frame[1] == 126 { 4 } else { 2 }..]
    }

    fn json(frame: &Bytes) -> serde_json::Value {
        serde_json::from_slice(body(frame)).unwrap()
    }

    #[test]
    fn a_null_payload_is_present_and_a_missing_one_is_not() {
        let with_null = parse(br#"{"type":"t","channel":"c","payload":null}"#).unwrap();
        assert_eq!(with_null.payload.map(RawValue::get), Some("null"));
        let without = parse(br#"{"type":"t","channel":"c"}"#).unwrap();
        assert!(without.payload.is_none());
    }

    #[test]
    fn bad_frames_are_told_apart() {
        assert_eq!(parse(b"{not json").unwrap_err(), "invalid JSON");
        assert!(parse(br#"{"channel":"c"}"#).unwrap_err().contains("type"));
        assert!(parse(br#"[1]"#).is_err());
    }

    #[test]
    fn channel_and_id_are_checked_like_the_other_peers() {
        let f = parse(br#"{"type":"t","channel":"a\"b","id":7}"#).unwrap();
        assert_eq!(f.channel().as_deref(), Some("a\"b"));
        assert!(f.publish_id().is_err());
        let f = parse(br#"{"type":"t","channel":"","id":"x"}"#).unwrap();
        assert!(f.channel().is_none());
        assert_eq!(f.publish_id().unwrap().as_deref(), Some("x"));
    }

    #[test]
    fn replies_omit_an_absent_id() {
        let v = json(&subscribed("c", None, 0));
        assert_eq!(
            v,
            serde_json::json!({"type":"subscribed","channel":"c","offset":0,"epoch":"peer","recovered":false})
        );
        let id = RawValue::from_string("\"u1\"".to_owned()).unwrap();
        let v = json(&unsubscribed("c", Some(&id)));
        assert_eq!(
            v,
            serde_json::json!({"type":"unsubscribed","channel":"c","id":"u1"})
        );
    }

    #[test]
    fn a_delivery_keeps_the_payload_bytes_verbatim() {
        let payload =
            RawValue::from_string(r#"{"seq":7,"c":0,"t":1,"pad":"xx"}"#.to_owned()).unwrap();
        let frame = Delivery {
            kind: "bench",
            channel: "fanout",
            payload: &payload,
            id: "m-1",
            timestamp: 5,
            priority: "normal",
            from: Publisher {
                user_id: None,
                connection_id: "c-1",
            },
            offset: 8,
        }
        .encode();
        assert_eq!(
            body(&frame),
            br#"{"type":"bench","channel":"fanout","payload":{"seq":7,"c":0,"t":1,"pad":"xx"},"id":"m-1","timestamp":5,"priority":"normal","from":{"userId":null,"connectionId":"c-1"},"offset":8}"#
        );
    }
}
