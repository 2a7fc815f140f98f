pub use switchboard_types::Priority;

/// Which entry a pop takes. Both orders share one eviction rule: a push into a full queue
/// evicts the oldest entry of the lowest priority strictly below its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum PopOrder {
    /// Highest priority first, first in first out within a priority.
    #[default]
    Priority,
    /// First in first out across priorities; priority only decides eviction. For streams
    /// whose order must not change, such as one channel's messages in ascending offset.
    Fifo,
}
