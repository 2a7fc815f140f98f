//! What the hub stores in the backplane for each message, and how it reads it back.

use bytes::Bytes;
use switchboard_protocol::{DraftParts, EncodedDraft, EncodedFrame, Priority};

use crate::ids::IdGenerator;

/// Length of the header the hub puts before each draft in the backplane.
const HEADER_LEN: usize = 9;

/// The bit of the first byte that says a list of excluded connections follows the header.
const EXCLUDES: u8 = 0x80;

/// The most connections one message may exclude (ids are at most 255 bytes each).
pub(crate) const MAX_EXCLUDED: usize = 64;

/// What the hub stores in the backplane: a header of one priority byte and the publish time
/// (µs since the epoch, 8 bytes big-endian), then the encoded draft. Both travel outside the
/// JSON so fan-out never parses it, and the receiving instance can measure backplane lag
/// and message latency. The draft is encoded straight after the header: one buffer, sized
/// once.
///
/// A message that skips some connections (`excludeSelf`, the API's `exclude`) sets the
/// priority byte's top bit, and the header is followed by the count of connection ids
/// (one byte) and each id (a length byte, then the id). Every instance reads the list and
/// skips the ids it gave. At most [`MAX_EXCLUDED`] ids of at most 255 bytes: callers check.
pub(crate) fn encode_envelope(
    draft: &DraftParts<'_>,
    priority: Priority,
    published_us: u64,
    exclude: &[&str],
) -> Bytes {
    debug_assert!(exclude.len() <= MAX_EXCLUDED);
    let listed: usize = exclude.iter().map(|id| 1 + id.len()).sum();
    let mut buf = Vec::with_capacity(
        HEADER_LEN + usize::from(!exclude.is_empty()) + listed + draft.encoded_len_hint(),
    );
    let flag = if exclude.is_empty() { 0 } else { EXCLUDES };
    // The priority's compact form (0 low … 3 critical), which every instance reads back.
    let index = u8::try_from(priority.index()).unwrap_or(u8::MAX);
    buf.push(flag | index);
    buf.extend_from_slice(&published_us.to_be_bytes());
    if !exclude.is_empty() {
        buf.push(u8::try_from(exclude.len()).unwrap_or(u8::MAX));
        for id in exclude {
            let len = u8::try_from(id.len()).unwrap_or(u8::MAX);
            buf.push(len);
            buf.extend_from_slice(&id.as_bytes()[..usize::from(len)]);
        }
    }
    draft.encode_into(&mut buf);
    Bytes::from(buf)
}

/// A message as the hub reads it back from the backplane.
pub(crate) struct Delivery {
    pub(crate) frame: EncodedFrame,
    pub(crate) priority: Priority,
    /// When it was published, in µs since the epoch.
    pub(crate) published_us: u64,
    /// The keys of this hub's connections the message skips (usually none: no allocation).
    pub(crate) exclude: Vec<u64>,
}

/// The delivered frame of an envelope, or `None` for data no hub wrote. `ids` are this
/// hub's: an excluded connection of another instance is not in [`Delivery::exclude`].
pub(crate) fn decode_envelope(data: &Bytes, offset: u64, ids: &IdGenerator) -> Option<Delivery> {
    if data.len() < HEADER_LEN {
        return None;
    }
    let priority = Priority::from_index(usize::from(data[0] & !EXCLUDES))?;
    let published_us = published_us(u64::from_be_bytes(data[1..HEADER_LEN].try_into().ok()?));
    let mut at = HEADER_LEN;
    let mut exclude = Vec::new();
    if data[0] & EXCLUDES != 0 {
        let count = *data.get(at)?;
        at += 1;
        for _ in 0..count {
            let len = usize::from(*data.get(at)?);
            let id = std::str::from_utf8(data.get(at + 1..at + 1 + len)?).ok()?;
            at += 1 + len;
            exclude.extend(ids.local_key(id));
        }
    }
    Some(Delivery {
        frame: EncodedDraft::from_bytes(data.slice(at..)).finish(offset),
        priority,
        published_us,
        exclude,
    })
}

/// Hubs before 0.1's message-latency metric wrote the publish time in milliseconds, and
/// such envelopes stay in history for its TTL and arrive from not yet upgraded instances.
/// The two are told apart by size: a time in milliseconds stays below 10^14 until the year
/// 5138; one in microseconds is above it since 1973.
const MICROSECONDS_FROM: u64 = 100_000_000_000_000;

/// A header's publish time in microseconds, whichever unit it was written in.
fn published_us(raw: u64) -> u64 {
    if raw < MICROSECONDS_FROM {
        raw.saturating_mul(1000)
    } else {
        raw
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use switchboard_protocol::{ChannelName, EventType, MessageDraft, Payload, Sender};

    fn draft() -> MessageDraft {
        MessageDraft {
            event: EventType::new("e").unwrap(),
            payload: Payload::from_value(&serde_json::json!({"a": 1})),
            id: "m1".into(),
            timestamp: 7,
            priority: Priority::High,
            from: Sender {
                user_id: None,
                connection_id: "c".into(),
            },
            channel: ChannelName::new("ch").unwrap(),
        }
    }

    #[test]
    fn excluded_connections_travel_with_the_message_and_each_hub_reads_its_own() {
        let here = IdGenerator::new();
        let there = IdGenerator::new();
        let (mine, theirs) = (here.connection_id(5), there.connection_id(9));
        let at = 1_764_800_000_123_456;
        let plain = decode_envelope(
            &encode_envelope(&draft().borrowed(), Priority::High, at, &[]),
            3,
            &here,
        )
        .unwrap();
        let data = encode_envelope(&draft().borrowed(), Priority::High, at, &[&mine, &theirs]);
        let at_here = decode_envelope(&data, 3, &here).unwrap();
        let at_there = decode_envelope(&data, 3, &there).unwrap();
        assert_eq!(at_here.exclude, [5]);
        assert_eq!(at_there.exclude, [9]);
        // The same frame and header either way.
        for delivery in [&at_here, &at_there] {
            assert_eq!(delivery.frame.as_bytes(), plain.frame.as_bytes());
            assert_eq!(delivery.priority, Priority::High);
            assert_eq!(delivery.published_us, at);
        }
        // A list cut short is refused, not misread.
        assert!(decode_envelope(&data.slice(..HEADER_LEN + 3), 3, &here).is_none());
    }

    #[test]
    fn a_publish_time_in_milliseconds_from_an_older_hub_is_read_in_microseconds() {
        let here = IdGenerator::new();
        let read = |written: u64| {
            decode_envelope(
                &encode_envelope(&draft().borrowed(), Priority::Low, written, &[]),
                1,
                &here,
            )
            .unwrap()
            .published_us
        };
        let now = std::time::SystemTime::now();
        let unix_us = switchboard_protocol::unix_us;
        assert_eq!(read(unix_us(now)), unix_us(now));
        let ms = switchboard_protocol::unix_ms(now);
        assert_eq!(read(ms), ms * 1000);
        assert!(unix_us(now).abs_diff(read(ms)) < 1000);
    }
}
