//! The identity of a delivery-queue entry.

/// Identifies an entry of a [`DeliveryQueue`](crate::DeliveryQueue) from its push to its removal. Ids increase in
/// push order and survive a reopen of the queue file; the id of an entry that has left the
/// queue may be given again after a reopen.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct EntryId(pub(crate) u64);

impl EntryId {
    /// The number behind the id.
    #[must_use]
    pub const fn get(self) -> u64 {
        self.0
    }
}

impl std::fmt::Display for EntryId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "#{}", self.0)
    }
}
