//! How important a message is.

use std::fmt;
use std::str::FromStr;

/// How important a message is. It never reorders a channel's messages; it decides what a
/// full queue evicts first: low, then normal, then high, never critical (a consumer that
/// cannot take a critical message is disconnected with 4008 and recovers from history).
///
/// The order is `Low < Normal < High < Critical`. On the wire (and with the `serde`
/// feature) the names are `"low"`, `"normal"`, `"high"` and `"critical"`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(rename_all = "lowercase"))]
pub enum Priority {
    /// Evicted first.
    Low,
    /// The default.
    #[default]
    Normal,
    /// Evicted only when no normal or low message can make room.
    High,
    /// Never evicted.
    Critical,
}

impl Priority {
    /// Every priority, lowest first; `ALL[p.index()] == p`.
    pub const ALL: [Self; 4] = [Self::Low, Self::Normal, Self::High, Self::Critical];

    /// The name on the wire: `"low"`, `"normal"`, `"high"` or `"critical"`.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Low => "low",
            Self::Normal => "normal",
            Self::High => "high",
            Self::Critical => "critical",
        }
    }

    /// Parses a wire name.
    #[must_use]
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|p| p.as_str() == name)
    }

    /// 0 for `Low` up to 3 for `Critical`: an index into per-priority arrays, and the
    /// compact form of a priority in binary formats (the hub's backplane envelope, the
    /// queue's file store), so these numbers never change.
    #[must_use]
    pub const fn index(self) -> usize {
        self as usize
    }

    /// The priority at `index` (see [`index`](Self::index)); `None` past 3.
    #[must_use]
    pub const fn from_index(index: usize) -> Option<Self> {
        if index < Self::ALL.len() {
            Some(Self::ALL[index])
        } else {
            None
        }
    }
}

impl fmt::Display for Priority {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Priority {
    type Err = UnknownName;

    fn from_str(name: &str) -> Result<Self, Self::Err> {
        Self::from_name(name).ok_or_else(|| UnknownName::new("priority", name))
    }
}

/// A name that is not one of a vocabulary's, from [`FromStr`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownName {
    kind: &'static str,
    name: String,
}

impl UnknownName {
    pub(crate) fn new(kind: &'static str, name: &str) -> Self {
        Self {
            kind,
            name: name.to_owned(),
        }
    }

    /// What was being parsed: `"priority"` or `"error code"`.
    #[must_use]
    pub fn kind(&self) -> &'static str {
        self.kind
    }

    /// The name that was given.
    #[must_use]
    pub fn name(&self) -> &str {
        &self.name
    }
}

impl fmt::Display for UnknownName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "unknown {}: {:?}", self.kind, self.name)
    }
}

impl std::error::Error for UnknownName {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn priorities_order_from_low_to_critical_and_round_trip_by_name_and_index() {
        assert!(Priority::Low < Priority::Normal);
        assert!(Priority::Normal < Priority::High);
        assert!(Priority::High < Priority::Critical);
        assert_eq!(Priority::default(), Priority::Normal);
        for p in Priority::ALL {
            assert_eq!(Priority::from_name(p.as_str()), Some(p));
            assert_eq!(p.as_str().parse::<Priority>(), Ok(p));
            assert_eq!(Priority::from_index(p.index()), Some(p));
        }
        assert_eq!(Priority::from_index(4), None);
        // The compact form is stored and sent between instances: it must never change.
        let indices = Priority::ALL.map(Priority::index);
        assert_eq!(indices, [0, 1, 2, 3]);
        assert_eq!(Priority::Critical.index(), 3);
        let err = "urgent".parse::<Priority>().unwrap_err();
        assert_eq!(err.to_string(), r#"unknown priority: "urgent""#);
    }

    #[cfg(feature = "serde")]
    #[test]
    fn serde_uses_the_wire_names() {
        assert_eq!(
            serde_json::to_string(&Priority::Critical).unwrap(),
            r#""critical""#
        );
        assert_eq!(
            serde_json::from_str::<Priority>(r#""low""#).unwrap(),
            Priority::Low
        );
        assert!(serde_json::from_str::<Priority>(r#""Low""#).is_err());
    }
}
