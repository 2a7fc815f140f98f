//! What the hub stores in the backplane for each message, and how it reads it back.

use bytes::{BufMut, Bytes, BytesMut};
use switchboard_protocol::{EncodedDraft, EncodedFrame, Priority};

/// Length of the header the hub puts before each draft in the backplane.
const HEADER_LEN: usize = 9;

/// What the hub stores in the backplane: a header of one priority byte and the publish time
/// (ms since the epoch, 8 bytes big-endian), then the encoded draft. Both travel outside the
/// JSON so fan-out never parses it, and the receiving instance can measure backplane lag.
pub(crate) fn encode_envelope(
    draft: &EncodedDraft,
    priority: Priority,
    published_ms: u64,
) -> Bytes {
    let draft = draft.bytes();
    let mut buf = BytesMut::with_capacity(HEADER_LEN + draft.len());
    buf.put_u8(match priority {
        Priority::Low => 0,
        Priority::Normal => 1,
        Priority::High => 2,
        Priority::Critical => 3,
    });
    buf.put_u64(published_ms);
    buf.extend_from_slice(draft);
    buf.freeze()
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
