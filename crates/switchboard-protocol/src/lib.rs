#![doc = include_str!("../README.md")]

mod client;
mod codes;
mod json;
mod name;
mod payload;
mod position;
mod scan;
mod server;
mod time;

pub use client::{
    ClientFrame, DecodeError, DecodeLimits, MAX_EPOCH_LEN, MAX_FEATURE_LEN, MAX_META_BYTES,
    MAX_STATUS_LEN, Ping, PresenceQuery, PresenceUpdate, Publish, Refresh, Subscribe, Unsubscribe,
};
pub use codes::{CloseCode, ErrorCode};
pub use name::{
    ChannelName, ClientId, EventType, MAX_CHANNEL_LEN, MAX_CLIENT_ID_LEN, MAX_EVENT_TYPE_LEN,
    MAX_ID_LEN, NameError, validate_id,
};
pub use payload::Payload;
pub use position::StreamPosition;
pub use server::{
    Ack, DraftParts, EncodedDraft, EncodedFrame, ErrorFrame, Excluded, Member, Message,
    MessageDraft, Pong, PresenceAction, PresenceEvent, PresenceList, Refreshed, Sender,
    ServerDecodeError, ServerFrame, Subscribed, Unsubscribed, Welcome,
};
pub use switchboard_types::Priority;
pub use time::{now_ms, unix_ms, unix_us};

/// The default largest inbound message, in bytes (64 KiB). A message of exactly this size is
/// accepted; a larger one closes the connection with [`CloseCode::TooLarge`].
pub const DEFAULT_MAX_MESSAGE_BYTES: usize = 64 * 1024;

/// The protocol version this crate implements.
pub const PROTOCOL_VERSION: u32 = 1;
