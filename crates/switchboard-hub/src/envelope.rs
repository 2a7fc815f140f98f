//! What the hub stores in the backplane for each message, and how it reads it back.

use bytes::Bytes;
use switchboard_protocol::{EncodedDraft, EncodedFrame, MessageDraft, Priority};

/// Length of the header the hub puts before each draft in the backplane.
const HEADER_LEN: usize = 9;

/// What the hub stores in the backplane: a header of one priority byte and the publish time
/// (ms since the epoch, 8 bytes big-endian), then the encoded draft. Both travel outside the
/// JSON so fan-out never parses it, and the receiving instance can measure backplane lag.
/// The draft is encoded straight after the header: one buffer, sized once.
pub(crate) fn encode_envelope(
    draft: &MessageDraft,
    priority: Priority,
    published_ms: u64,
) -> Bytes {
    let mut buf = Vec::with_capacity(HEADER_LEN + draft.encoded_len_hint());
    buf.push(match priority {
        Priority::Low => 0,
        Priority::Normal => 1,
        Priority::High => 2,
        Priority::Critical => 3,
    });
    buf.extend_from_slice(&published_ms.to_be_bytes());
    draft.encode_into(&mut buf);
    Bytes::from(buf)
}

/// A message as the hub reads it back from the backplane.
pub(crate) struct Delivery {
    pub(crate) frame: EncodedFrame,
    pub(crate) priority: Priority,
    pub(crate) published_ms: u64,
}

/// The delivered frame of an envelope, or `None` for data no hub wrote.
pub(crate) fn decode_envelope(data: &Bytes, offset: u64) -> Option<Delivery> {
    if data.len() < HEADER_LEN {
        return None;
    }
    let priority = match data[0] {
        0 => Priority::Low,
        1 => Priority::Normal,
        2 => Priority::High,
        3 => Priority::Critical,
        _ => return None,
    };
    let published_ms = u64::from_be_bytes(data[1..HEADER_LEN].try_into().ok()?);
    Some(Delivery {
        frame: EncodedDraft::from_bytes(data.slice(HEADER_LEN..)).finish(offset),
        priority,
        published_ms,
    })
}
