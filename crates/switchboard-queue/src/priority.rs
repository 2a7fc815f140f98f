/// How important an entry is. Decides which entry a full queue evicts, and, under
/// [`PopOrder::Priority`], which entry comes out first.
///
/// The order is `Low < Normal < High < Critical`. The names and meanings match
/// `switchboard_protocol::Priority`; this crate keeps its own copy so it depends on no other
/// switchboard crate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub enum Priority {
    /// Evicted first.
    Low,
    /// The default.
    #[default]
    Normal,
    /// Evicted only when no normal or low entry can make room.
    High,
    /// Never evicted. A push that cannot fit is rejected and the caller decides (the server
    /// closes the connection with 4008).
    Critical,
}

impl Priority {
    /// Every priority, lowest first.
    pub const ALL: [Self; 4] = [Self::Low, Self::Normal, Self::High, Self::Critical];

    /// The lowercase name (`"low"`, `"normal"`, `"high"`, `"critical"`), as on the wire.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Low => "low",
            Self::Normal => "normal",
            Self::High => "high",
            Self::Critical => "critical",
        }
    }

    /// Parses a lowercase name.
    #[must_use]
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|p| p.as_str() == name)
    }

    /// 0 for `Low` up to 3 for `Critical`: an index into per-priority arrays such as
    /// [`QueueStats::evicted`](crate::QueueStats::evicted).
    #[must_use]
    pub const fn index(self) -> usize {
        self as usize
    }

    pub(crate) const fn from_index(index: usize) -> Self {
        Self::ALL[index]
    }
}

impl std::fmt::Display for Priority {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

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
