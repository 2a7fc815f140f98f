//! Frames a client sends, and their decoding with validation.

use std::borrow::Cow;

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use crate::Priority;
use crate::codes::ErrorCode;
use crate::name::{ChannelName, EventType, NameError, validate_id};
use crate::payload::Payload;
use crate::position::StreamPosition;
use crate::server::ErrorFrame;

/// The longest presence `status`, in bytes.
pub const MAX_STATUS_LEN: usize = 64;
/// The longest presence `currentFeature`, in bytes.
pub const MAX_FEATURE_LEN: usize = 256;
/// The largest presence `meta` object, in bytes of JSON.
pub const MAX_META_BYTES: usize = 4096;
/// The longest recovery epoch, in bytes.
pub const MAX_EPOCH_LEN: usize = 128;

/// `subscribe`: start receiving a channel, optionally recovering what was missed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Subscribe {
    /// The channel.
    pub channel: ChannelName,
    /// Request id, echoed in the answer.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// Recover every message after this position.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub since: Option<StreamPosition>,
}

/// `unsubscribe`: stop receiving a channel.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Unsubscribe {
    /// The channel.
    pub channel: ChannelName,
    /// Request id, echoed in the answer.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
}

/// `ping`: an application-level round trip (never rate limited).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Ping {
    /// Request id, echoed in the `pong`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// The client's send time in ms since the epoch, echoed in the `pong`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timestamp: Option<u64>,
}

/// `presence-update`: announce or update this connection's presence.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct PresenceUpdate {
    /// The channel; `None` applies to every channel the connection is subscribed to, now or
    /// later.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub channel: Option<ChannelName>,
    /// Free-form status; the server defaults it to `"online"`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    /// What the user is looking at.
    #[serde(rename = "currentFeature", skip_serializing_if = "Option::is_none")]
    pub current_feature: Option<String>,
    /// Application data about the member (a JSON object).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub meta: Option<serde_json::Value>,
}

/// `presence`: list a channel's members.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PresenceQuery {
    /// The channel.
    pub channel: ChannelName,
    /// Request id, echoed in the answer.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
}

/// A publish: any non-reserved `type`, delivered to the channel's subscribers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Publish {
    /// The application event type.
    #[serde(rename = "type")]
    pub event: EventType,
    /// The channel.
    pub channel: ChannelName,
    /// The payload, forwarded as is.
    pub payload: Payload,
    /// Message id; when given the sender receives an `ack`, and it becomes the delivered
    /// message's id.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// Priority (default normal).
    #[serde(skip_serializing_if = "is_normal")]
    pub priority: Priority,
    /// `excludeSelf`: every subscriber but the publishing connection receives it (the
    /// `ack` and the offset are as for any publish).
    #[serde(rename = "excludeSelf", skip_serializing_if = "std::ops::Not::not")]
    pub exclude_self: bool,
}

fn is_normal(p: &Priority) -> bool {
    *p == Priority::Normal
}

/// `refresh`: new credentials for this connection, without reconnecting. They must verify
/// and name the same user; the server answers `refreshed`, or `error` `unauthorized` and
/// the connection keeps its old credentials (and their expiry).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Refresh {
    /// The new token.
    pub token: String,
    /// Request id, echoed in the answer.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
}

/// A frame sent by a client.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ClientFrame {
    /// `subscribe`.
    Subscribe(Subscribe),
    /// `unsubscribe`.
    Unsubscribe(Unsubscribe),
    /// `ping`.
    Ping(Ping),
    /// `presence-update`.
    PresenceUpdate(PresenceUpdate),
    /// `presence`.
    Presence(PresenceQuery),
    /// `refresh`.
    Refresh(Refresh),
    /// Any other type: an application message.
    Publish(Publish),
}

/// Limits applied while decoding, beyond the frame size the transport enforces.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct DecodeLimits {
    /// Deepest nesting of arrays and objects, the frame's own object included (default 32).
    pub max_depth: usize,
}

impl Default for DecodeLimits {
    fn default() -> Self {
        Self { max_depth: 32 }
    }
}

impl DecodeLimits {
    /// Sets [`DecodeLimits::max_depth`].
    #[must_use]
    pub fn max_depth(mut self, depth: usize) -> Self {
        self.max_depth = depth;
        self
    }
}

/// Why a client frame was rejected; it maps to the `error` frame the client receives.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{code}: {message}")]
pub struct DecodeError {
    code: ErrorCode,
    message: String,
    id: Option<String>,
}

impl DecodeError {
    fn bad_request(message: impl Into<String>, id: Option<&str>) -> Self {
        Self {
            code: ErrorCode::BadRequest,
            message: message.into(),
            id: id.map(str::to_owned),
        }
    }

    /// The error code to answer with.
    #[must_use]
    pub fn code(&self) -> ErrorCode {
        self.code
    }

    /// A human-readable explanation.
    #[must_use]
    pub fn message(&self) -> &str {
        &self.message
    }

    /// The request's `id`, when the frame carried a valid one.
    #[must_use]
    pub fn id(&self) -> Option<&str> {
        self.id.as_deref()
    }

    /// The `error` frame that answers the rejected frame.
    #[must_use]
    pub fn to_frame(&self) -> ErrorFrame {
        ErrorFrame::new(self.code, self.message.clone()).with_id(self.id.clone())
    }
}

/// Every field any client frame may carry, as the JSON text of its value, not yet
/// interpreted. Unknown fields are skipped; a field given as `null` is absent, except the
/// payload (`null` is a valid payload). Found by [`scan::frame`](crate::scan::frame), or by
/// serde ([`SerdeFrame`]) for a frame the scan leaves to it.
#[derive(Default)]
pub(crate) struct RawFrame<'a> {
    kind: Option<&'a str>,
    channel: Option<&'a str>,
    id: Option<&'a str>,
    since: Option<&'a str>,
    timestamp: Option<&'a str>,
    status: Option<&'a str>,
    current_feature: Option<&'a str>,
    meta: Option<&'a str>,
    payload: Option<&'a str>,
    priority: Option<&'a str>,
    exclude_self: Option<&'a str>,
    token: Option<&'a str>,
    /// The known fields met so far (bit per field, in declaration order): serde refuses a
    /// repeated one, so the scan leaves such a frame to it.
    seen: u16,
}

impl<'a> RawFrame<'a> {
    /// Records field `key` with `value`; `false` when the frame must go to serde instead
    /// (a known field seen twice).
    pub(crate) fn set(&mut self, key: &[u8], value: &'a str) -> bool {
        let (bit, slot) = match key {
            b"type" => (0, &mut self.kind),
            b"channel" => (1, &mut self.channel),
            b"id" => (2, &mut self.id),
            b"since" => (3, &mut self.since),
            b"timestamp" => (4, &mut self.timestamp),
            b"status" => (5, &mut self.status),
            b"currentFeature" => (6, &mut self.current_feature),
            b"meta" => (7, &mut self.meta),
            b"priority" => (8, &mut self.priority),
            b"excludeSelf" => (9, &mut self.exclude_self),
            b"token" => (10, &mut self.token),
            b"payload" => {
                self.payload = Some(value);
                return self.first(11);
            }
            _ => return true,
        };
        *slot = (value != "null").then_some(value);
        self.first(bit)
    }

    /// Marks field `bit` seen; `false` when it was already.
    fn first(&mut self, bit: u16) -> bool {
        let first = self.seen & (1 << bit) == 0;
        self.seen |= 1 << bit;
        first
    }
}

/// [`RawFrame`] as serde reads it: the reference the scan agrees with, and the decoder of
/// every frame the scan leaves to it.
#[derive(Deserialize)]
struct SerdeFrame<'a> {
    #[serde(rename = "type", borrow)]
    kind: Option<&'a RawValue>,
    #[serde(borrow)]
    channel: Option<&'a RawValue>,
    #[serde(borrow)]
    id: Option<&'a RawValue>,
    #[serde(borrow)]
    since: Option<&'a RawValue>,
    #[serde(borrow)]
    timestamp: Option<&'a RawValue>,
    #[serde(borrow)]
    status: Option<&'a RawValue>,
    #[serde(rename = "currentFeature", borrow)]
    current_feature: Option<&'a RawValue>,
    #[serde(borrow)]
    meta: Option<&'a RawValue>,
    /// `null` is a valid payload, so presence is kept even for `null`.
    #[serde(borrow, default, deserialize_with = "present")]
    payload: Option<&'a RawValue>,
    #[serde(borrow)]
    priority: Option<&'a RawValue>,
    #[serde(rename = "excludeSelf", borrow)]
    exclude_self: Option<&'a RawValue>,
    #[serde(borrow)]
    token: Option<&'a RawValue>,
}

impl<'a> From<SerdeFrame<'a>> for RawFrame<'a> {
    fn from(f: SerdeFrame<'a>) -> Self {
        let text = |raw: Option<&'a RawValue>| raw.map(RawValue::get);
        Self {
            kind: text(f.kind),
            channel: text(f.channel),
            id: text(f.id),
            since: text(f.since),
            timestamp: text(f.timestamp),
            status: text(f.status),
            current_feature: text(f.current_feature),
            meta: text(f.meta),
            payload: text(f.payload),
            priority: text(f.priority),
            exclude_self: text(f.exclude_self),
            token: text(f.token),
            seen: 0,
        }
    }
}

fn present<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<&'de RawValue>, D::Error> {
    <&'de RawValue>::deserialize(d).map(Some)
}

/// Whether `[`/`{` nest deeper than `limit` in `text`, ignoring brackets inside strings.
/// Stops at the first level past `limit`. String contents are skipped with `memchr`, so
/// text-heavy payloads cost little more than a memory scan.
pub(crate) fn nesting_exceeds(text: &[u8], limit: usize) -> bool {
    // No deeper than the brackets there are: most frames hold a few, and finding them is a
    // vectorized search that stops past `limit`, where the walk below must skip every string.
    if memchr::memchr2_iter(b'{', b'[', text).nth(limit).is_none() {
        return false;
    }
    let mut depth = 0usize;
    let mut i = 0;
    while let Some(&b) = text.get(i) {
        i += 1;
        match b {
            b'"' => {
                // To the closing quote: the next `"` not escaped by a `\`.
                loop {
                    // `None` past the end: a backslash was the last byte.
                    let Some(at) = text
                        .get(i..)
                        .and_then(|rest| memchr::memchr2(b'"', b'\\', rest))
                    else {
                        return false;
                    };
                    i += at + 1;
                    if text[i - 1] == b'"' {
                        break;
                    }
                    // A backslash: the byte after it is escaped, whatever it is.
                    i += 1;
                }
            }
            b'[' | b'{' => {
                depth += 1;
                if depth > limit {
                    return true;
                }
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    false
}

/// The string the JSON value `text` holds, or `None` when it is not a string. A string
/// without escapes (the usual case) is borrowed as is: `text` is valid JSON, so a value that
/// starts and ends with a quote and holds no backslash is exactly its contents.
fn json_string(text: &str) -> Option<Cow<'_, str>> {
    if let Some(inner) = text.strip_prefix('"').and_then(|t| t.strip_suffix('"'))
        && memchr::memchr(b'\\', inner.as_bytes()).is_none()
    {
        return Some(Cow::Borrowed(inner));
    }
    serde_json::from_str::<Cow<'_, str>>(text).ok()
}

struct Fields<'a> {
    raw: RawFrame<'a>,
    id: Option<Cow<'a, str>>,
    known: &'a dyn Fn(&str) -> Option<ChannelName>,
}

impl<'a> Fields<'a> {
    fn err(&self, message: impl Into<String>) -> DecodeError {
        DecodeError::bad_request(message, self.id.as_deref())
    }

    fn too_large(&self, message: impl Into<String>) -> DecodeError {
        DecodeError {
            code: ErrorCode::TooLarge,
            message: message.into(),
            id: self.id.as_deref().map(str::to_owned),
        }
    }

    fn name_err(&self, e: &NameError) -> DecodeError {
        self.err(e.to_string())
    }

    fn string(
        &self,
        name: &str,
        raw: Option<&'a str>,
    ) -> Result<Option<Cow<'a, str>>, DecodeError> {
        raw.map(|raw| {
            json_string(raw).ok_or_else(|| self.err(format!("`{name}` must be a string")))
        })
        .transpose()
    }

    fn owned_string(&self, name: &str, raw: Option<&str>) -> Result<Option<String>, DecodeError> {
        match raw {
            None => Ok(None),
            Some(raw) => json_string(raw)
                .map(|s| Some(s.into_owned()))
                .ok_or_else(|| self.err(format!("`{name}` must be a string"))),
        }
    }

    fn channel(&self) -> Result<ChannelName, DecodeError> {
        self.optional_channel()?
            .ok_or_else(|| self.err("`channel` is required"))
    }

    fn optional_channel(&self) -> Result<Option<ChannelName>, DecodeError> {
        match self.string("channel", self.raw.channel)? {
            None => Ok(None),
            Some(s) => match (self.known)(&s).filter(|known| known.as_str() == s) {
                Some(known) => Ok(Some(known)),
                None => ChannelName::new(&s)
                    .map(Some)
                    .map_err(|e| self.name_err(&e)),
            },
        }
    }

    fn id(&self) -> Option<String> {
        self.id.as_deref().map(str::to_owned)
    }

    fn limited(
        &self,
        name: &str,
        raw: Option<&str>,
        max: usize,
    ) -> Result<Option<String>, DecodeError> {
        let value = self.owned_string(name, raw)?;
        if let Some(v) = &value
            && v.len() > max
        {
            return Err(
                self.too_large(format!("`{name}` is {} bytes, the limit is {max}", v.len()))
            );
        }
        Ok(value)
    }
}

impl ClientFrame {
    /// Decodes one text frame with the default [`DecodeLimits`].
    ///
    /// # Errors
    /// A [`DecodeError`] whose [`code`](DecodeError::code) is `bad_request` for malformed JSON,
    /// a missing or invalid field, an invalid channel or type, or a server-only type. It
    /// carries the frame's `id` whenever one could be read.
    pub fn decode(text: &str) -> Result<Self, DecodeError> {
        Self::decode_with(text, DecodeLimits::default())
    }

    /// Decodes a frame given as bytes (which must be UTF-8).
    ///
    /// # Errors
    /// As [`ClientFrame::decode`], and `bad_request` when the bytes are not UTF-8.
    pub fn decode_bytes(bytes: &[u8], limits: DecodeLimits) -> Result<Self, DecodeError> {
        let text = std::str::from_utf8(bytes)
            .map_err(|_| DecodeError::bad_request("frame is not valid UTF-8", None))?;
        Self::decode_with(text, limits)
    }

    /// Decodes one text frame.
    ///
    /// # Errors
    /// As [`ClientFrame::decode`]; also `bad_request` when nesting exceeds
    /// [`DecodeLimits::max_depth`].
    pub fn decode_with(text: &str, limits: DecodeLimits) -> Result<Self, DecodeError> {
        Self::decode_known(text, limits, &|_| None)
    }

    /// [`decode_with`](Self::decode_with), taking a channel name from `known` when it has
    /// it: a name held already (a subscription's, say) is shared rather than validated and
    /// copied again. `known` answers `None` for a name it does not hold; a name it answers
    /// that differs from the frame's is not used. The result is the same frame or the
    /// same error.
    ///
    /// ```
    /// use switchboard_protocol::{ChannelName, ClientFrame, DecodeLimits};
    ///
    /// let news = ChannelName::new("news").unwrap();
    /// let known = |name: &str| (name == news.as_str()).then(|| news.clone());
    /// let text = r#"{"type":"unsubscribe","channel":"news"}"#;
    /// let frame = ClientFrame::decode_known(text, DecodeLimits::default(), &known).unwrap();
    /// assert_eq!(frame, ClientFrame::decode(text).unwrap());
    /// ```
    ///
    /// # Errors
    /// As [`decode_with`](Self::decode_with).
    pub fn decode_known(
        text: &str,
        limits: DecodeLimits,
        known: &dyn Fn(&str) -> Option<ChannelName>,
    ) -> Result<Self, DecodeError> {
        let raw = match crate::scan::frame(text, limits.max_depth) {
            Some(raw) => raw,
            None => Self::parse(text, limits)?,
        };
        Self::interpret(raw, known)
    }

    /// Parses a frame the scan left to serde: the exact error for a malformed one.
    fn parse(text: &str, limits: DecodeLimits) -> Result<RawFrame<'_>, DecodeError> {
        if !text.trim_start().starts_with('{') {
            return Err(DecodeError::bad_request(
                "a frame must be a JSON object with a string `type`",
                None,
            ));
        }
        if nesting_exceeds(text.as_bytes(), limits.max_depth) {
            return Err(DecodeError::bad_request(
                format!("JSON nesting deeper than {} levels", limits.max_depth),
                top_level_id(text).as_deref(),
            ));
        }
        serde_json::from_str::<SerdeFrame<'_>>(text)
            .map(RawFrame::from)
            .map_err(|e| DecodeError::bad_request(format!("invalid JSON: {e}"), None))
    }

    /// Makes a frame of its fields.
    fn interpret<'a>(
        raw: RawFrame<'a>,
        known: &'a dyn Fn(&str) -> Option<ChannelName>,
    ) -> Result<Self, DecodeError> {
        // The id first, so every later error can carry it.
        let id = match raw.id {
            None => None,
            Some(v) => {
                let id = json_string(v)
                    .ok_or_else(|| DecodeError::bad_request("`id` must be a string", None))?;
                validate_id(&id).map_err(|e| DecodeError::bad_request(e.to_string(), None))?;
                Some(id)
            }
        };
        let fields = Fields { raw, id, known };
        let kind = fields
            .string("type", fields.raw.kind)?
            .ok_or_else(|| fields.err("`type` is required"))?;

        match &*kind {
            "subscribe" => {
                let since = match fields.raw.since {
                    None => None,
                    Some(raw) => {
                        let pos: StreamPosition = serde_json::from_str(raw).map_err(|_| {
                            fields.err(
                                "`since` must be {\"offset\": <unsigned integer>, \"epoch\": <string>}",
                            )
                        })?;
                        if pos.epoch.len() > MAX_EPOCH_LEN {
                            return Err(fields.err(format!(
                                "`since.epoch` is longer than {MAX_EPOCH_LEN} bytes"
                            )));
                        }
                        Some(pos)
                    }
                };
                Ok(Self::Subscribe(Subscribe {
                    channel: fields.channel()?,
                    id: fields.id(),
                    since,
                }))
            }
            "unsubscribe" => Ok(Self::Unsubscribe(Unsubscribe {
                channel: fields.channel()?,
                id: fields.id(),
            })),
            "ping" => {
                let timestamp = match fields.raw.timestamp {
                    None => None,
                    Some(raw) => Some(serde_json::from_str::<u64>(raw).map_err(|_| {
                        fields.err("`timestamp` must be a non-negative integer (ms since epoch)")
                    })?),
                };
                Ok(Self::Ping(Ping {
                    id: fields.id(),
                    timestamp,
                }))
            }
            "presence-update" => {
                let meta = match fields.raw.meta {
                    None => None,
                    Some(raw) => {
                        if raw.len() > MAX_META_BYTES {
                            return Err(fields.too_large(format!(
                                "`meta` is {} bytes, the limit is {MAX_META_BYTES}",
                                raw.len()
                            )));
                        }
                        let value: serde_json::Value = serde_json::from_str(raw)
                            .map_err(|e| fields.err(format!("`meta`: {e}")))?;
                        if !value.is_object() {
                            return Err(fields.err("`meta` must be a JSON object"));
                        }
                        Some(value)
                    }
                };
                Ok(Self::PresenceUpdate(PresenceUpdate {
                    channel: fields.optional_channel()?,
                    status: fields.limited("status", fields.raw.status, MAX_STATUS_LEN)?,
                    current_feature: fields.limited(
                        "currentFeature",
                        fields.raw.current_feature,
                        MAX_FEATURE_LEN,
                    )?,
                    meta,
                }))
            }
            "presence" => Ok(Self::Presence(PresenceQuery {
                channel: fields.channel()?,
                id: fields.id(),
            })),
            "refresh" => Ok(Self::Refresh(Refresh {
                token: fields
                    .owned_string("token", fields.raw.token)?
                    .filter(|token| !token.is_empty())
                    .ok_or_else(|| fields.err("`token` is required"))?,
                id: fields.id(),
            })),
            other if EventType::is_reserved(other) => {
                Err(fields.err(format!("type {other:?} is sent by the server only")))
            }
            other => {
                let event = EventType::new(other).map_err(|e| fields.name_err(&e))?;
                let channel = fields.channel()?;
                let payload = fields
                    .raw
                    .payload
                    .ok_or_else(|| fields.err("`payload` is required"))?;
                let priority = match fields.string("priority", fields.raw.priority)? {
                    None => Priority::default(),
                    Some(p) => Priority::from_name(&p).ok_or_else(|| {
                        fields.err(format!(
                            "`priority` must be one of critical, high, normal, low; got {p:?}"
                        ))
                    })?,
                };
                let exclude_self = match fields.raw.exclude_self {
                    None | Some("false") => false,
                    Some("true") => true,
                    Some(_) => return Err(fields.err("`excludeSelf` must be true or false")),
                };
                Ok(Self::Publish(Publish {
                    event,
                    channel,
                    payload: Payload::from_valid(payload),
                    id: fields.id(),
                    priority,
                    exclude_self,
                }))
            }
        }
    }

    /// The frame's request id, if any.
    #[must_use]
    pub fn id(&self) -> Option<&str> {
        match self {
            Self::Subscribe(f) => f.id.as_deref(),
            Self::Unsubscribe(f) => f.id.as_deref(),
            Self::Ping(f) => f.id.as_deref(),
            Self::Presence(f) => f.id.as_deref(),
            Self::Refresh(f) => f.id.as_deref(),
            Self::Publish(f) => f.id.as_deref(),
            Self::PresenceUpdate(_) => None,
        }
    }

    /// The wire `type` of this frame.
    #[must_use]
    pub fn kind(&self) -> &str {
        match self {
            Self::Subscribe(_) => "subscribe",
            Self::Unsubscribe(_) => "unsubscribe",
            Self::Ping(_) => "ping",
            Self::PresenceUpdate(_) => "presence-update",
            Self::Presence(_) => "presence",
            Self::Refresh(_) => "refresh",
            Self::Publish(p) => p.event.as_str(),
        }
    }

    /// Encodes the frame as JSON text (what a client sends).
    #[must_use]
    pub fn encode(&self) -> String {
        #[derive(Serialize)]
        #[serde(tag = "type", rename_all = "kebab-case")]
        enum Tagged<'a> {
            Subscribe(&'a Subscribe),
            Unsubscribe(&'a Unsubscribe),
            Ping(&'a Ping),
            PresenceUpdate(&'a PresenceUpdate),
            Presence(&'a PresenceQuery),
            Refresh(&'a Refresh),
        }
        let result = match self {
            Self::Subscribe(f) => serde_json::to_string(&Tagged::Subscribe(f)),
            Self::Unsubscribe(f) => serde_json::to_string(&Tagged::Unsubscribe(f)),
            Self::Ping(f) => serde_json::to_string(&Tagged::Ping(f)),
            Self::PresenceUpdate(f) => serde_json::to_string(&Tagged::PresenceUpdate(f)),
            Self::Presence(f) => serde_json::to_string(&Tagged::Presence(f)),
            Self::Refresh(f) => serde_json::to_string(&Tagged::Refresh(f)),
            Self::Publish(f) => serde_json::to_string(f),
        };
        result.expect("client frames always serialize")
    }
}

impl From<Refresh> for ClientFrame {
    fn from(f: Refresh) -> Self {
        Self::Refresh(f)
    }
}
impl From<Subscribe> for ClientFrame {
    fn from(f: Subscribe) -> Self {
        Self::Subscribe(f)
    }
}
impl From<Unsubscribe> for ClientFrame {
    fn from(f: Unsubscribe) -> Self {
        Self::Unsubscribe(f)
    }
}
impl From<Ping> for ClientFrame {
    fn from(f: Ping) -> Self {
        Self::Ping(f)
    }
}
impl From<PresenceUpdate> for ClientFrame {
    fn from(f: PresenceUpdate) -> Self {
        Self::PresenceUpdate(f)
    }
}
impl From<PresenceQuery> for ClientFrame {
    fn from(f: PresenceQuery) -> Self {
        Self::Presence(f)
    }
}
impl From<Publish> for ClientFrame {
    fn from(f: Publish) -> Self {
        Self::Publish(f)
    }
}

/// The frame's `id`, read without building the too-deep rest of it, so that the depth error
/// can answer the request like every other error. serde_json skips ignored values with its
/// own recursion limit (128), so a frame nested deeper than that gets its error without one.
fn top_level_id(text: &str) -> Option<String> {
    #[derive(Deserialize)]
    struct IdOnly<'a> {
        #[serde(borrow, default)]
        id: Option<Cow<'a, str>>,
    }
    let id = serde_json::from_str::<IdOnly<'_>>(text).ok()?.id?;
    validate_id(&id).ok()?;
    Some(id.into_owned())
}
#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strings_read_from_raw_values_match_serde() {
        let cases = [
            r#""""#,
            r#""chat.room-1""#,
            r#""caf\u00e9""#,
            r#""a\"b""#,
            r#""tab\tend""#,
            r#""\\""#,
            r#""\ud83d\ude00""#,
            "\"é🙂\"",
            "12",
            "null",
            "true",
            r#"["a"]"#,
            r#"{"a":"b"}"#,
        ];
        for case in cases {
            let raw: Box<RawValue> = serde_json::from_str(case).unwrap();
            let expected = serde_json::from_str::<String>(case).ok();
            assert_eq!(
                json_string(raw.get()).map(Cow::into_owned),
                expected,
                "{case}"
            );
        }
        // Without escapes, the frame's own bytes are lent out, not copied.
        assert!(matches!(
            json_string(r#""plain""#),
            Some(Cow::Borrowed("plain"))
        ));
    }

    #[test]
    fn nesting_ignores_brackets_in_strings() {
        assert!(!nesting_exceeds(br#"{"a":"[[[[[[[["}"#, 2));
        assert!(nesting_exceeds(br#"{"a":[[1]]}"#, 2));
        assert!(!nesting_exceeds(br#"{"a":"\"[[[["}"#, 1));
        assert!(nesting_exceeds(br#"{"a":"\\",[[1]]}"#, 2));
        assert!(!nesting_exceeds(br#"{"a":"\"#, 1));
        assert!(!nesting_exceeds(br#"{"a":"\\"#, 1));
    }

    /// The byte-by-byte definition `nesting_exceeds` must agree with.
    fn nesting_exceeds_bytewise(text: &[u8], limit: usize) -> bool {
        let (mut depth, mut in_string, mut escaped) = (0usize, false, false);
        for &b in text {
            if in_string {
                if escaped {
                    escaped = false;
                } else if b == b'\\' {
                    escaped = true;
                } else if b == b'"' {
                    in_string = false;
                }
                continue;
            }
            match b {
                b'"' => in_string = true,
                b'[' | b'{' => {
                    depth += 1;
                    if depth > limit {
                        return true;
                    }
                }
                b']' | b'}' => depth = depth.saturating_sub(1),
                _ => {}
            }
        }
        false
    }

    /// A frame's fields as comparable text.
    fn fields(raw: &RawFrame<'_>) -> [Option<String>; 12] {
        let own = |s: Option<&str>| s.map(str::to_owned);
        [
            own(raw.kind),
            own(raw.channel),
            own(raw.id),
            own(raw.since),
            own(raw.timestamp),
            own(raw.status),
            own(raw.current_feature),
            own(raw.meta),
            own(raw.payload),
            own(raw.priority),
            own(raw.exclude_self),
            own(raw.token),
        ]
    }

    /// What serde alone makes of `text`: the decoder before the scan.
    fn decode_by_serde(text: &str, limits: DecodeLimits) -> Result<ClientFrame, DecodeError> {
        ClientFrame::parse(text, limits).and_then(|raw| ClientFrame::interpret(raw, &|_| None))
    }

    /// Frames as clients write them, and as they should not: known and unknown keys, keys
    /// repeated or escaped, `null`s, strings with escapes and control characters, nested and
    /// invalid values, odd whitespace, and cuts and stray bytes anywhere.
    fn arb_frame_text() -> impl proptest::strategy::Strategy<Value = String> {
        use proptest::prelude::*;
        let key = prop_oneof![
            4 => proptest::sample::select(vec![
                "type", "channel", "id", "since", "timestamp", "status", "currentFeature",
                "meta", "payload", "priority", "excludeSelf", "token",
            ])
            .prop_map(str::to_owned),
            1 => proptest::sample::select(vec!["other", "Type", "", "ty\\u0070e", "a\\\"b", "c\u{1}d", "é"])
                .prop_map(str::to_owned),
        ];
        let string = prop_oneof![
            proptest::sample::select(vec![
                "subscribe",
                "unsubscribe",
                "ping",
                "presence",
                "presence-update",
                "refresh",
                "chat",
                "bench",
                "room:1",
                "ack",
                "high",
                "low",
                "e-1",
                "m1",
            ])
            .prop_map(|s| format!("\"{s}\"")),
            "[a-z:\\\\\"\u{0}-\u{1f}é🙂 ]{0,12}".prop_map(|s| format!("\"{s}\"")),
            Just("\"caf\\u00e9\"".to_owned()),
            Just("\"\\ud800\"".to_owned()),
        ];
        let scalar = prop_oneof![
            string.clone(),
            proptest::sample::select(vec![
                "null",
                "true",
                "false",
                "0",
                "-1",
                "12",
                "1.5e3",
                "01",
                "1.",
                "-",
                "tru",
                "nul",
                "{\"offset\":3,\"epoch\":\"e\"}",
                "{\"a\":[1,{\"b\":[]}]}",
                "[[[[[1]]]]]",
                "{\"a\":\"]]}}\"}",
                "[1,]",
                "{\"a\" 1}",
                "{}",
                "[]",
            ])
            .prop_map(str::to_owned),
        ];
        let value = prop_oneof![
            3 => scalar,
            1 => arb_value(4).prop_map(|v| v.to_string()),
        ];
        let ws = proptest::sample::select(vec!["", "", " ", "\n\t", "\r ", "\u{a0}"]);
        let member = (key, ws.clone(), ws.clone(), value)
            .prop_map(|(k, a, b, v)| format!("\"{k}\"{a}:{b}{v}"));
        let object = (
            ws.clone(),
            proptest::collection::vec(member, 0..6),
            ws.clone(),
        )
            .prop_map(|(a, members, b)| format!("{a}{{{}}}{b}", members.join(",")));
        (object, 0usize..4, any::<usize>(), any::<u8>()).prop_map(|(text, damage, at, byte)| {
            let mut bytes = text.into_bytes();
            let at = at % (bytes.len() + 1);
            match damage {
                0 => bytes.truncate(at),
                1 => bytes.insert(at, byte),
                _ => {}
            }
            String::from_utf8_lossy(&bytes).into_owned()
        })
    }

    /// JSON values of up to `depth` levels.
    fn arb_value(depth: u32) -> impl proptest::strategy::Strategy<Value = serde_json::Value> {
        use proptest::prelude::*;
        let leaf = prop_oneof![
            Just(serde_json::Value::Null),
            any::<bool>().prop_map(serde_json::Value::Bool),
            any::<i64>().prop_map(Into::into),
            "[a-z\"\\\\\u{0}-\u{1f}é ]{0,8}".prop_map(serde_json::Value::String),
        ];
        leaf.prop_recursive(depth, 32, 4, |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..4).prop_map(serde_json::Value::Array),
                proptest::collection::btree_map("[a-z]{0,3}", inner, 0..4)
                    .prop_map(|m| serde_json::Value::Object(m.into_iter().collect())),
            ]
        })
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(2048))]

        /// The scan vouches only for frames serde reads the same way.
        #[test]
        fn what_the_scan_accepts_serde_reads_alike(text in arb_frame_text(), depth in 1usize..8) {
            if let Some(scanned) = crate::scan::frame(&text, depth) {
                let parsed = ClientFrame::parse(&text, DecodeLimits::default().max_depth(depth));
                proptest::prop_assert!(parsed.is_ok(), "the scan accepted {text:?}, serde: {parsed:?}", parsed = parsed.err());
                proptest::prop_assert_eq!(fields(&scanned), fields(&parsed.unwrap()), "{:?}", text);
            }
        }

        /// Decoding gives exactly what serde alone gives: the same frame, or the same error.
        #[test]
        fn decoding_agrees_with_serde_alone(text in arb_frame_text(), depth in proptest::prop_oneof![1usize..8, proptest::strategy::Just(32)]) {
            let limits = DecodeLimits::default().max_depth(depth);
            proptest::prop_assert_eq!(
                ClientFrame::decode_with(&text, limits),
                decode_by_serde(&text, limits),
                "{:?}", text
            );
        }

        /// A decoder given the names it meets decodes as one without: a name it is handed
        /// is the frame's own, and a wrong one is not used.
        #[test]
        fn names_known_already_decode_alike(text in arb_frame_text()) {
            let limits = DecodeLimits::default();
            let knows_all = |name: &str| ChannelName::new(name).ok();
            let other = ChannelName::new("some-other-channel").unwrap();
            let wrong = |_: &str| Some(other.clone());
            proptest::prop_assert_eq!(
                ClientFrame::decode_known(&text, limits, &knows_all),
                ClientFrame::decode_with(&text, limits),
                "{:?}", text
            );
            proptest::prop_assert_eq!(
                ClientFrame::decode_known(&text, limits, &wrong),
                ClientFrame::decode_with(&text, limits),
                "{:?}", text
            );
        }
    }

    #[test]
    fn a_known_name_is_shared_and_a_wrong_one_ignored() {
        let news = ChannelName::new("news").unwrap();
        let other = ChannelName::new("sports").unwrap();
        let knows = |name: &str| (name == "news").then(|| news.clone());
        for text in [
            r#"{"type":"chat","channel":"news","payload":1}"#,
            r#"{"type":"unsubscribe","channel":"news"}"#,
        ] {
            let limits = DecodeLimits::default();
            let plain = ClientFrame::decode_with(text, limits).unwrap();
            assert_eq!(
                ClientFrame::decode_known(text, limits, &knows).unwrap(),
                plain
            );
            let wrong = |_: &str| Some(other.clone());
            assert_eq!(
                ClientFrame::decode_known(text, limits, &wrong).unwrap(),
                plain
            );
        }
        // Shared: the decoded name is the one handed over, not a copy.
        let text = r#"{"type":"chat","channel":"news","payload":1}"#;
        let ClientFrame::Publish(publish) =
            ClientFrame::decode_known(text, DecodeLimits::default(), &knows).unwrap()
        else {
            panic!("a publish")
        };
        assert!(std::sync::Arc::ptr_eq(
            publish.channel.as_arc(),
            news.as_arc()
        ));
    }

    #[test]
    fn the_scan_reads_the_frames_clients_send() {
        let text = r#"{"type":"chat","channel":"room:1","payload":{"text":"hi","n":[1,2]},"id":"m1","priority":"high","excludeSelf":true}"#;
        let raw = crate::scan::frame(text, 32).expect("scanned");
        assert_eq!(raw.kind, Some(r#""chat""#));
        assert_eq!(raw.channel, Some(r#""room:1""#));
        assert_eq!(raw.payload, Some(r#"{"text":"hi","n":[1,2]}"#));
        assert_eq!(raw.id, Some(r#""m1""#));
        assert_eq!(raw.exclude_self, Some("true"));
        // A `null` field is absent; a `null` payload is a payload.
        let raw = crate::scan::frame(r#" { "type" : "x" , "channel":null, "payload":null } "#, 32)
            .expect("scanned");
        assert_eq!((raw.channel, raw.payload), (None, Some("null")));
        // A value with an escape is read by serde, in place.
        let raw = crate::scan::frame(r#"{"type":"a\"b"}"#, 32).expect("scanned");
        assert_eq!(raw.kind, Some(r#""a\"b""#));
        // Left to serde: a repeated key, an escaped key, a value too deep, trailing bytes.
        for text in [
            r#"{"type":"a","type":"b"}"#,
            r#"{"typ\u0065":"a"}"#,
            r#"{"type":"x","payload":[[1]]}"#,
            r#"{"type":"x"} x"#,
        ] {
            assert!(crate::scan::frame(text, 2).is_none(), "{text}");
        }
    }

    proptest::proptest! {
        #[test]
        fn nesting_agrees_with_the_bytewise_scan(
            text in proptest::collection::vec(
                proptest::sample::select(b"[]{}\"\\ax".to_vec()), 0..64),
            limit in 0usize..6,
        ) {
            proptest::prop_assert_eq!(
                nesting_exceeds(&text, limit),
                nesting_exceeds_bytewise(&text, limit)
            );
        }
    }
}
