//! Frames the server sends, encoded once into shared bytes.

use std::fmt;

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use crate::Priority;
use crate::codes::ErrorCode;
use crate::name::{ChannelName, EventType};
use crate::payload::Payload;
use crate::position::StreamPosition;

/// `welcome`: the first frame of every connection.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Welcome {
    /// This connection's id, unique across instances.
    pub connection_id: String,
    /// The authenticated user (`sub` claim), or `null` in open mode.
    pub user_id: Option<String>,
    /// How often the server pings, in ms.
    pub heartbeat_ms: u64,
    /// Server time, ms since the epoch.
    pub timestamp: u64,
    /// When the connection's credentials expire, ms since the epoch (the token's `exp`):
    /// refresh before it (`refresh`), or the connection closes with 4001. Absent when they
    /// do not expire.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<u64>,
}

/// `subscribed`: the answer to `subscribe`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Subscribed {
    /// The channel.
    pub channel: ChannelName,
    /// The request's id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// The channel's current offset (of its latest message; 0 when empty).
    pub offset: u64,
    /// The channel's history epoch.
    pub epoch: String,
    /// `true` only when `since` was given and every missed message follows this frame.
    pub recovered: bool,
    /// `true` when the server subscribed the connection itself (the server API's
    /// `POST /api/users/{user}/subscribe`), not in answer to a `subscribe`. Absent otherwise.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub server: bool,
}

impl Subscribed {
    /// The stream position this answer reports.
    #[must_use]
    pub fn position(&self) -> StreamPosition {
        StreamPosition {
            offset: self.offset,
            epoch: self.epoch.clone(),
        }
    }
}

/// `unsubscribed`: the answer to `unsubscribe`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Unsubscribed {
    /// The channel.
    pub channel: ChannelName,
    /// The request's id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// Why the server ended the subscription itself: `"forbidden"` when refreshed
    /// credentials no longer allow it, `"server"` when the server API unsubscribed the
    /// user (`POST /api/users/{user}/unsubscribe`). Absent in the answer to a client's
    /// `unsubscribe`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// `refreshed`: the answer to `refresh`; the connection now runs on the new credentials.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Refreshed {
    /// The request's id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// When the new credentials expire, ms since the epoch; absent when they do not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<u64>,
}

/// `pong`: the answer to `ping`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Pong {
    /// The ping's id, when it had one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// The ping's timestamp, echoed, when it had one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timestamp: Option<u64>,
    /// Server time, ms since the epoch.
    pub server_time: u64,
}

/// `excluded`: the message at `offset` in `channel` was published without this connection
/// (`excludeSelf`, or the API's `exclude`). It keeps the connection's offsets contiguous, so a
/// client tells a skipped offset from a lost one and does not recover it from history.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Excluded {
    /// The channel.
    pub channel: ChannelName,
    /// The offset this connection skips.
    pub offset: u64,
}

/// `ack`: confirms a publish that carried an id.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ack {
    /// The publish's id.
    pub id: String,
    /// The offset the message was given in its channel.
    pub offset: u64,
}

/// One presence member.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Member {
    /// The member's connection.
    pub connection_id: String,
    /// The member's user, or `null` in open mode.
    pub user_id: Option<String>,
    /// Status (default `"online"`).
    pub status: String,
    /// What the member is looking at.
    pub current_feature: Option<String>,
    /// Application data (a JSON object), or `null`.
    pub meta: Option<serde_json::Value>,
    /// When the member joined, ms since the epoch.
    pub joined_at: u64,
    /// Last activity, ms since the epoch.
    pub last_seen: u64,
}

/// `presence`: the answer to a presence query.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PresenceList {
    /// The channel.
    pub channel: ChannelName,
    /// The request's id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// The members.
    pub members: Vec<Member>,
}

/// What happened to a presence member.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PresenceAction {
    /// The member announced presence for the first time.
    Join,
    /// The member left (unsubscribe, disconnect or TTL expiry).
    Leave,
    /// The member changed its status, feature or meta.
    Update,
}

/// `presence-update` broadcast to a channel's subscribers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PresenceEvent {
    /// The channel.
    pub channel: ChannelName,
    /// What happened.
    pub action: PresenceAction,
    /// The member after the change.
    pub member: Member,
    /// When it happened, ms since the epoch.
    pub timestamp: u64,
}

/// `error`: a request was refused, or something went wrong.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ErrorFrame {
    /// What kind of error.
    pub code: ErrorCode,
    /// A human-readable explanation.
    pub message: String,
    /// The id of the request this answers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// `true` on `rate_limited` errors.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate_limited: Option<bool>,
    /// On `rate_limited` errors: when the next frame will be accepted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_after_ms: Option<u64>,
}

impl ErrorFrame {
    /// An error with `code` and `message`.
    #[must_use]
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
            id: None,
            rate_limited: None,
            retry_after_ms: None,
        }
    }

    /// A `rate_limited` error that says when to retry.
    #[must_use]
    pub fn rate_limited(retry_after_ms: u64) -> Self {
        Self {
            rate_limited: Some(true),
            retry_after_ms: Some(retry_after_ms),
            ..Self::new(
                ErrorCode::RateLimited,
                format!("rate limit exceeded, retry in {retry_after_ms} ms"),
            )
        }
    }

    /// Sets the id of the request this error answers.
    #[must_use]
    pub fn with_id(mut self, id: Option<String>) -> Self {
        self.id = id;
        self
    }
}

/// Who published a message.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Sender {
    /// The publisher's user, or `null` (open mode, or the server itself).
    pub user_id: Option<String>,
    /// The publisher's connection; `"$server"` for server-side publishes.
    pub connection_id: String,
}

impl Sender {
    /// The connection id of messages published by the server itself.
    pub const SERVER_CONNECTION_ID: &'static str = "$server";

    /// The sender of server-side publishes: `{"userId": null, "connectionId": "$server"}`.
    #[must_use]
    pub fn server() -> Self {
        Self {
            user_id: None,
            connection_id: Self::SERVER_CONNECTION_ID.to_owned(),
        }
    }
}

/// An application message as delivered to subscribers.
///
/// `offset` is serialized last, so the bytes of a message are exactly the bytes of its
/// [`MessageDraft`] finished with that offset ([`EncodedDraft::finish`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Message {
    /// The application event type.
    #[serde(rename = "type")]
    pub event: EventType,
    /// The channel.
    pub channel: ChannelName,
    /// The payload.
    pub payload: Payload,
    /// The publisher's id for the message, or one the server generated.
    pub id: String,
    /// When the server received it, ms since the epoch.
    pub timestamp: u64,
    /// The priority.
    #[serde(default)]
    pub priority: Priority,
    /// Who published it.
    pub from: Sender,
    /// Its position in the channel (ascending, starting at 1).
    pub offset: u64,
}

impl Message {
    /// Encodes the message once; every subscriber gets a clone of the same bytes.
    #[must_use]
    pub fn encode(&self) -> EncodedFrame {
        EncodedFrame::json(self)
    }

    /// The message as it was before its offset was assigned.
    #[must_use]
    pub fn into_draft(self) -> (MessageDraft, u64) {
        (
            MessageDraft {
                event: self.event,
                channel: self.channel,
                payload: self.payload,
                id: self.id,
                timestamp: self.timestamp,
                priority: self.priority,
                from: self.from,
            },
            self.offset,
        )
    }
}

/// A message before the backplane has given it an offset.
///
/// The server encodes the draft once, the backplane assigns the channel's next offset while
/// appending the draft's bytes to history, and every instance finishes the bytes with that
/// offset ([`EncodedDraft::finish`]) — no JSON is parsed or serialized again on the way.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MessageDraft {
    /// The application event type.
    #[serde(rename = "type")]
    pub event: EventType,
    /// The channel.
    pub channel: ChannelName,
    /// The payload.
    pub payload: Payload,
    /// The message id.
    pub id: String,
    /// When the server received it, ms since the epoch.
    pub timestamp: u64,
    /// The priority.
    pub priority: Priority,
    /// Who published it.
    pub from: Sender,
}

impl MessageDraft {
    /// Encodes the draft: the message's JSON object without its closing brace.
    #[must_use]
    pub fn encode(&self) -> EncodedDraft {
        let mut json = Vec::with_capacity(self.encoded_len_hint());
        self.encode_into(&mut json);
        EncodedDraft(Bytes::from(json))
    }

    /// Appends the bytes [`encode`](Self::encode) makes to `out`, for a caller that puts
    /// something before them (a header of its own) without copying the draft again.
    pub fn encode_into(&self, out: &mut Vec<u8>) {
        self.borrowed().encode_into(out);
    }

    /// About how many bytes the encoded draft takes (exact unless strings need escaping):
    /// the capacity to reserve so that encoding does not grow its buffer.
    #[must_use]
    pub fn encoded_len_hint(&self) -> usize {
        self.borrowed().encoded_len_hint()
    }

    /// The draft's fields, borrowed.
    #[must_use]
    pub fn borrowed(&self) -> DraftParts<'_> {
        DraftParts {
            event: &self.event,
            channel: &self.channel,
            payload: &self.payload,
            id: &self.id,
            timestamp: self.timestamp,
            priority: self.priority,
            user_id: self.from.user_id.as_deref(),
            connection_id: &self.from.connection_id,
        }
    }

    /// The message with its assigned offset.
    #[must_use]
    pub fn with_offset(self, offset: u64) -> Message {
        Message {
            event: self.event,
            channel: self.channel,
            payload: self.payload,
            id: self.id,
            timestamp: self.timestamp,
            priority: self.priority,
            from: self.from,
            offset,
        }
    }
}

/// The fields of a [`MessageDraft`], borrowed: what a server encodes a publish from without
/// first gathering owned copies of the publisher's ids. Encodes to the same bytes as the
/// draft it describes.
///
/// ```
/// use switchboard_protocol::{ChannelName, DraftParts, EventType, Payload, Priority};
///
/// let (event, channel) = (EventType::new("note").unwrap(), ChannelName::new("news").unwrap());
/// let payload = Payload::from_json(r#"{"text":"hi"}"#).unwrap();
/// let parts = DraftParts {
///     event: &event,
///     channel: &channel,
///     payload: &payload,
///     id: "m1",
///     timestamp: 1,
///     priority: Priority::Normal,
///     user_id: None,
///     connection_id: "c1",
/// };
/// let mut json = Vec::new();
/// parts.encode_into(&mut json);
/// json.push(b'}');
/// assert_eq!(
///     std::str::from_utf8(&json).unwrap(),
///     r#"{"type":"note","channel":"news","payload":{"text":"hi"},"id":"m1","timestamp":1,"priority":"normal","from":{"userId":null,"connectionId":"c1"}}"#,
/// );
/// ```
#[derive(Debug, Clone, Copy)]
pub struct DraftParts<'a> {
    /// The application event type.
    pub event: &'a EventType,
    /// The channel.
    pub channel: &'a ChannelName,
    /// The payload.
    pub payload: &'a Payload,
    /// The message id.
    pub id: &'a str,
    /// When the server received it, ms since the epoch.
    pub timestamp: u64,
    /// The priority.
    pub priority: Priority,
    /// The publisher's user, if any.
    pub user_id: Option<&'a str>,
    /// The publisher's connection ([`Sender::SERVER_CONNECTION_ID`] for the server).
    pub connection_id: &'a str,
}

impl DraftParts<'_> {
    /// Appends the draft's JSON object without its closing brace to `out`: the bytes
    /// [`MessageDraft::encode`] makes. Written field by field, every field in the order
    /// and the escaping `serde_json` gives the draft: one pass, no serializer state.
    pub fn encode_into(&self, out: &mut Vec<u8>) {
        out.reserve(self.encoded_len_hint());
        // Channel names and event types are validated to characters JSON never escapes.
        out.extend_from_slice(b"{\"type\":\"");
        out.extend_from_slice(self.event.as_str().as_bytes());
        out.extend_from_slice(b"\",\"channel\":\"");
        out.extend_from_slice(self.channel.as_str().as_bytes());
        out.extend_from_slice(b"\",\"payload\":");
        out.extend_from_slice(self.payload.get().as_bytes());
        out.extend_from_slice(b",\"id\":");
        json_string(out, self.id);
        out.extend_from_slice(b",\"timestamp\":");
        push_decimal(out, self.timestamp);
        out.extend_from_slice(b",\"priority\":\"");
        out.extend_from_slice(self.priority.as_str().as_bytes());
        out.extend_from_slice(b"\",\"from\":{\"userId\":");
        match self.user_id {
            Some(user) => json_string(out, user),
            None => out.extend_from_slice(b"null"),
        }
        out.extend_from_slice(b",\"connectionId\":");
        json_string(out, self.connection_id);
        out.push(b'}');
    }

    /// About how many bytes the encoded draft takes (exact unless strings need escaping):
    /// the capacity to reserve so that encoding does not grow its buffer.
    #[must_use]
    pub fn encoded_len_hint(&self) -> usize {
        // `{"type":"","channel":"","payload":,"id":"","timestamp":,"priority":"",`
        // `"from":{"userId":"","connectionId":""}` and the numbers and priority name.
        const FIXED: usize = 140;
        FIXED
            + self.event.as_str().len()
            + self.channel.as_str().len()
            + self.payload.get().len()
            + self.id.len()
            + self.user_id.map_or(0, str::len)
            + self.connection_id.len()
    }
}

/// The decimal digits of `n`, written from the end of the array (at most 20 for a `u64`),
/// and where they start.
fn decimal(n: u64) -> ([u8; 20], usize) {
    let mut digits = [0u8; 20];
    let mut at = digits.len();
    let mut rest = n;
    loop {
        at -= 1;
        digits[at] = b'0' + (rest % 10) as u8;
        rest /= 10;
        if rest == 0 {
            return (digits, at);
        }
    }
}

/// Appends `n` in decimal.
fn push_decimal(out: &mut Vec<u8>, n: u64) {
    let (digits, at) = decimal(n);
    out.extend_from_slice(&digits[at..]);
}

/// The bytes a JSON string escapes: control characters, `"` and `\`. A table, so that the
/// check costs one load per byte of the ids every message carries.
const ESCAPED: [bool; 256] = {
    let mut table = [false; 256];
    let mut b = 0;
    while b < 0x20 {
        table[b] = true;
        b += 1;
    }
    table[b'"' as usize] = true;
    table[b'\\' as usize] = true;
    table
};

/// Appends `text` as a JSON string, escaped exactly as `serde_json` escapes it. Ids rarely
/// hold a character that needs escaping: those are copied as they are.
fn json_string(out: &mut Vec<u8>, text: &str) {
    if text.bytes().any(|b| ESCAPED[usize::from(b)]) {
        serde_json::to_writer(&mut *out, text).expect("strings always serialize");
    } else {
        out.push(b'"');
        out.extend_from_slice(text.as_bytes());
        out.push(b'"');
    }
}

/// The bytes of an encoded [`MessageDraft`]: a JSON object missing its `offset` field and
/// closing brace. What the backplane stores and carries between instances.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct EncodedDraft(Bytes);

impl EncodedDraft {
    /// Wraps bytes produced by [`MessageDraft::encode`] (for example read back from a
    /// backplane). Nothing is validated: the bytes are trusted as the server's own.
    #[must_use]
    pub fn from_bytes(bytes: Bytes) -> Self {
        Self(bytes)
    }

    /// The draft bytes.
    #[must_use]
    pub fn bytes(&self) -> &Bytes {
        &self.0
    }

    /// The draft bytes, by value.
    #[must_use]
    pub fn into_bytes(self) -> Bytes {
        self.0
    }

    /// The delivered message's bytes: the draft with `"offset":<offset>}` appended, framed
    /// as a WebSocket text frame ([`EncodedFrame::wire`]) in the same single allocation.
    #[must_use]
    pub fn finish(&self, offset: u64) -> EncodedFrame {
        const KEY: &[u8] = b",\"offset\":";
        let (digits, at) = decimal(offset);
        let digits = &digits[at..];
        let json_len = self.0.len() + KEY.len() + digits.len() + 1;
        let header = WsHeader::text(json_len);
        let mut out = Vec::with_capacity(header.len() + json_len);
        out.extend_from_slice(header.as_bytes());
        out.extend_from_slice(&self.0);
        out.extend_from_slice(KEY);
        out.extend_from_slice(digits);
        out.push(b'}');
        EncodedFrame::from_wire(Bytes::from(out), header.len())
    }
}

impl fmt::Debug for EncodedDraft {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("EncodedDraft")
            .field(&String::from_utf8_lossy(&self.0))
            .finish()
    }
}

/// A frame sent by the server.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ServerFrame {
    /// `welcome`.
    Welcome(Welcome),
    /// `subscribed`.
    Subscribed(Subscribed),
    /// `unsubscribed`.
    Unsubscribed(Unsubscribed),
    /// `pong`.
    Pong(Pong),
    /// `ack`.
    Ack(Ack),
    /// `presence`.
    Presence(PresenceList),
    /// `presence-update`.
    PresenceUpdate(PresenceEvent),
    /// `error`.
    Error(ErrorFrame),
    /// `excluded`.
    Excluded(Excluded),
    /// `refreshed`.
    Refreshed(Refreshed),
    /// An application message.
    Message(Message),
}

#[derive(Serialize)]
#[serde(tag = "type", rename_all = "kebab-case")]
enum Tagged<'a> {
    Welcome(&'a Welcome),
    Subscribed(&'a Subscribed),
    Unsubscribed(&'a Unsubscribed),
    Pong(&'a Pong),
    Ack(&'a Ack),
    Presence(&'a PresenceList),
    PresenceUpdate(&'a PresenceEvent),
    Error(&'a ErrorFrame),
    Excluded(&'a Excluded),
    Refreshed(&'a Refreshed),
}

impl Serialize for ServerFrame {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Self::Welcome(f) => Tagged::Welcome(f).serialize(serializer),
            Self::Subscribed(f) => Tagged::Subscribed(f).serialize(serializer),
            Self::Unsubscribed(f) => Tagged::Unsubscribed(f).serialize(serializer),
            Self::Pong(f) => Tagged::Pong(f).serialize(serializer),
            Self::Ack(f) => Tagged::Ack(f).serialize(serializer),
            Self::Presence(f) => Tagged::Presence(f).serialize(serializer),
            Self::PresenceUpdate(f) => Tagged::PresenceUpdate(f).serialize(serializer),
            Self::Error(f) => Tagged::Error(f).serialize(serializer),
            Self::Excluded(f) => Tagged::Excluded(f).serialize(serializer),
            Self::Refreshed(f) => Tagged::Refreshed(f).serialize(serializer),
            Self::Message(f) => f.serialize(serializer),
        }
    }
}

/// Why a server frame could not be decoded (client side).
#[derive(Debug, thiserror::Error)]
#[error("invalid server frame: {0}")]
pub struct ServerDecodeError(#[from] serde_json::Error);

impl ServerFrame {
    /// Encodes the frame once into shared bytes.
    #[must_use]
    pub fn encode(&self) -> EncodedFrame {
        EncodedFrame::json(self)
    }

    /// Decodes a frame received from a server.
    ///
    /// # Errors
    /// When the text is not a server frame of Protocol v1.
    pub fn decode(text: &str) -> Result<Self, ServerDecodeError> {
        #[derive(Deserialize)]
        struct Head<'a> {
            #[serde(rename = "type", borrow)]
            kind: std::borrow::Cow<'a, str>,
        }
        let head: Head<'_> = serde_json::from_str(text)?;
        Ok(match &*head.kind {
            "welcome" => Self::Welcome(serde_json::from_str(text)?),
            "subscribed" => Self::Subscribed(serde_json::from_str(text)?),
            "unsubscribed" => Self::Unsubscribed(serde_json::from_str(text)?),
            "pong" => Self::Pong(serde_json::from_str(text)?),
            "ack" => Self::Ack(serde_json::from_str(text)?),
            "presence" => Self::Presence(serde_json::from_str(text)?),
            "presence-update" => Self::PresenceUpdate(serde_json::from_str(text)?),
            "error" => Self::Error(serde_json::from_str(text)?),
            "excluded" => Self::Excluded(serde_json::from_str(text)?),
            "refreshed" => Self::Refreshed(serde_json::from_str(text)?),
            _ => Self::Message(serde_json::from_str(text)?),
        })
    }
}

macro_rules! into_server_frame {
    ($($ty:ident => $variant:ident),*) => {$(
        impl From<$ty> for ServerFrame {
            fn from(f: $ty) -> Self {
                Self::$variant(f)
            }
        }
    )*};
}

into_server_frame!(
    Welcome => Welcome,
    Subscribed => Subscribed,
    Unsubscribed => Unsubscribed,
    Pong => Pong,
    Ack => Ack,
    PresenceList => Presence,
    PresenceEvent => PresenceUpdate,
    ErrorFrame => Error,
    Excluded => Excluded,
    Refreshed => Refreshed,
    Message => Message
);

/// A frame encoded once, as the whole WebSocket text frame a server sends (RFC 6455 header,
/// unmasked, then the JSON text), in one reference-counted buffer: cloning it for each
/// subscriber costs a reference count, not a copy, and a transport writes
/// [`wire`](EncodedFrame::wire) to every subscriber's socket as it is.
///
/// ```
/// use switchboard_protocol::{ServerFrame, Unsubscribed, ChannelName};
///
/// let frame = ServerFrame::Unsubscribed(Unsubscribed {
///     channel: ChannelName::new("chat").unwrap(),
///     id: None,
///     reason: None,
/// })
/// .encode();
/// assert_eq!(frame.as_bytes(), br#"{"type":"unsubscribed","channel":"chat"}"#);
/// // FIN + text opcode, then the 7-bit length: the JSON follows as is.
/// assert_eq!(&frame.wire()[..2], &[0x81, 40]);
/// assert_eq!(&frame.wire()[2..], frame.as_bytes());
/// ```
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct EncodedFrame {
    /// Header, then JSON.
    wire: Bytes,
    /// Where the JSON starts (2, 4 or 10).
    json_at: u8,
}

/// Room left before the JSON for the longest header (2 + 8 bytes).
const MAX_HEADER: usize = 10;

/// The header of an unmasked, final WebSocket text frame (RFC 6455, section 5.2).
#[derive(Clone, Copy)]
struct WsHeader {
    bytes: [u8; MAX_HEADER],
    len: u8,
}

impl WsHeader {
    /// FIN set, opcode 0x1 (text), no mask, and the payload length in the shortest form.
    fn text(payload_len: usize) -> Self {
        let mut bytes = [0u8; MAX_HEADER];
        bytes[0] = 0x81;
        let len = if payload_len < 126 {
            // Fits in the 7-bit field.
            bytes[1] = payload_len as u8;
            2
        } else if let Ok(short) = u16::try_from(payload_len) {
            bytes[1] = 126;
            bytes[2..4].copy_from_slice(&short.to_be_bytes());
            4
        } else {
            bytes[1] = 127;
            bytes[2..10].copy_from_slice(&(payload_len as u64).to_be_bytes());
            10
        };
        Self { bytes, len }
    }

    fn len(&self) -> usize {
        usize::from(self.len)
    }

    fn as_bytes(&self) -> &[u8] {
        &self.bytes[..self.len()]
    }
}

impl EncodedFrame {
    fn json<T: Serialize + ?Sized>(value: &T) -> Self {
        // Serialize after room for the longest header, then put the real one right before
        // the JSON: one allocation, no copy.
        let mut buf = vec![0u8; MAX_HEADER];
        // Server frames hold only strings, integers, booleans and already-valid JSON, so
        // serialization cannot fail.
        serde_json::to_writer(&mut buf, value).expect("server frames always serialize");
        let header = WsHeader::text(buf.len() - MAX_HEADER);
        let start = MAX_HEADER - header.len();
        buf[start..MAX_HEADER].copy_from_slice(header.as_bytes());
        Self::from_wire(Bytes::from(buf).slice(start..), header.len())
    }

    fn from_wire(wire: Bytes, json_at: usize) -> Self {
        debug_assert!(json_at <= MAX_HEADER);
        Self {
            wire,
            json_at: json_at as u8,
        }
    }

    /// The JSON text as bytes (always valid UTF-8).
    #[must_use]
    pub fn as_bytes(&self) -> &[u8] {
        &self.wire[usize::from(self.json_at)..]
    }

    /// The JSON text as a shared buffer (no copy).
    #[must_use]
    pub fn json_bytes(&self) -> Bytes {
        self.wire.slice(usize::from(self.json_at)..)
    }

    /// The JSON text as a shared buffer, by value (no copy).
    #[must_use]
    pub fn into_bytes(self) -> Bytes {
        self.json_bytes()
    }

    /// The whole WebSocket frame: an unmasked, final text frame whose payload is the JSON,
    /// exactly the bytes a server writes to the socket.
    #[must_use]
    pub fn wire(&self) -> &Bytes {
        &self.wire
    }

    /// The whole WebSocket frame, by value.
    #[must_use]
    pub fn into_wire(self) -> Bytes {
        self.wire
    }

    /// The JSON text's length in bytes.
    #[must_use]
    pub fn len(&self) -> usize {
        self.wire.len() - usize::from(self.json_at)
    }

    /// Whether the JSON text is empty (never, for a real frame).
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl fmt::Debug for EncodedFrame {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("EncodedFrame")
            .field(&String::from_utf8_lossy(self.as_bytes()))
            .finish()
    }
}

impl AsRef<[u8]> for EncodedFrame {
    fn as_ref(&self) -> &[u8] {
        self.as_bytes()
    }
}

impl From<EncodedFrame> for Bytes {
    fn from(f: EncodedFrame) -> Self {
        f.into_bytes()
    }
}
