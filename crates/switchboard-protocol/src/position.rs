//! Where a subscriber is in a channel's stream: what `subscribe` recovers from and what
//! every `message` carries.

use serde::{Deserialize, Serialize};

/// A position in a channel's stream: the offset of the last message seen, and the epoch it
/// belongs to.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct StreamPosition {
    /// Offset of the last message seen (0: none).
    pub offset: u64,
    /// The channel's history epoch when that message was seen.
    pub epoch: String,
}
