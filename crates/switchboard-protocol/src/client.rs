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

/// Every field any client frame may carry, borrowed and not yet interpreted. Unknown fields
/// are skipped by serde.
#[derive(Deserialize)]
struct RawFrame<'a> {
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

fn present<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<&'de RawValue>, D::Error> {
    <&'de RawValue>::deserialize(d).map(Some)
}

/// Whether `[`/`{` nest deeper than `limit` in `text`, ignoring brackets inside strings.
/// Stops at the first level past `limit`. String contents are skipped with `memchr`, so
/// text-heavy payloads cost little more than a memory scan.
fn nesting_exceeds(text: &[u8], limit: usize) -> bool {
    // No deeper than the brackets there are: most frames hold a few, and counting them is
    // one branch-free pass, where the walk below must skip every string.
    let brackets = text.iter().filter(|&&b| b == b'{' || b == b'[').count();
    if brackets <= limit {
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

/// The string a raw JSON value holds, or `None` when it is not a string. A string without
/// escapes (the usual case) is borrowed as is: `raw` is already valid JSON, so a value that
/// starts and ends with a quote and holds no backslash is exactly its contents.
fn json_string(raw: &RawValue) -> Option<Cow<'_, str>> {
    let text = raw.get();
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
        raw: Option<&'a RawValue>,
    ) -> Result<Option<Cow<'a, str>>, DecodeError> {
        raw.map(|raw| {
            json_string(raw).ok_or_else(|| self.err(format!("`{name}` must be a string")))
        })
        .transpose()
    }

    fn owned_string(
        &self,
        name: &str,
        raw: Option<&RawValue>,
    ) -> Result<Option<String>, DecodeError> {
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
            Some(s) => ChannelName::new(&s)
                .map(Some)
                .map_err(|e| self.name_err(&e)),
        }
    }

    fn id(&self) -> Option<String> {
        self.id.as_deref().map(str::to_owned)
    }

    fn limited(
        &self,
        name: &str,
        raw: Option<&RawValue>,
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
        let raw: RawFrame<'_> = serde_json::from_str(text)
            .map_err(|e| DecodeError::bad_request(format!("invalid JSON: {e}"), None))?;

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
        let fields = Fields { raw, id };
        let kind = fields
            .string("type", fields.raw.kind)?
            .ok_or_else(|| fields.err("`type` is required"))?;

        match &*kind {
            "subscribe" => {
                let since = match fields.raw.since {
                    None => None,
                    Some(raw) => {
                        let pos: StreamPosition = serde_json::from_str(raw.get()).map_err(|_| {
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
                    Some(raw) => Some(serde_json::from_str::<u64>(raw.get()).map_err(|_| {
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
                        if raw.get().len() > MAX_META_BYTES {
                            return Err(fields.too_large(format!(
                                "`meta` is {} bytes, the limit is {MAX_META_BYTES}",
                                raw.get().len()
                            )));
                        }
                        let value: serde_json::Value = serde_json::from_str(raw.get())
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
                let exclude_self = match fields.raw.exclude_self.map(RawValue::get) {
                    None | Some("false") => false,
                    Some("true") => true,
                    Some(_) => return Err(fields.err("`excludeSelf` must be true or false")),
                };
                Ok(Self::Publish(Publish {
                    event,
                    channel,
                    payload: Payload::from_raw(payload.to_owned()),
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
            assert_eq!(json_string(&raw).map(Cow::into_owned), expected, "{case}");
        }
        // Without escapes, the frame's own bytes are lent out, not copied.
        let raw: Box<RawValue> = serde_json::from_str(r#""plain""#).unwrap();
        assert!(matches!(json_string(&raw), Some(Cow::Borrowed("plain"))));
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
