use crate::Priority;

/// An entry a push evicted to make room. Evictions are never silent: every one is handed
/// back to the caller and counted in [`QueueStats::evicted`](crate::QueueStats::evicted).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Evicted<T> {
    /// The evicted entry's priority (always strictly below the pushed entry's).
    pub priority: Priority,
    /// The evicted item.
    pub item: T,
}

/// The entries one push evicted, oldest of the lowest priority first. Usually none; at most
/// one when only the count is bounded; possibly several when a byte bound is set.
///
/// Holds up to one eviction without allocating.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Evictions<T>(Repr<T>);

#[derive(Debug, Clone, PartialEq, Eq)]
enum Repr<T> {
    None,
    One(Evicted<T>),
    Many(Vec<Evicted<T>>),
}

impl<T> Default for Evictions<T> {
    fn default() -> Self {
        Self(Repr::None)
    }
}

impl<T> Evictions<T> {
    pub(crate) fn add(&mut self, priority: Priority, item: T) {
        let evicted = Evicted { priority, item };
        self.0 = match std::mem::replace(&mut self.0, Repr::None) {
            Repr::None => Repr::One(evicted),
            Repr::One(first) => Repr::Many(vec![first, evicted]),
            Repr::Many(mut all) => {
                all.push(evicted);
                Repr::Many(all)
            }
        };
    }

    /// How many entries were evicted.
    #[must_use]
    pub fn len(&self) -> usize {
        match &self.0 {
            Repr::None => 0,
            Repr::One(_) => 1,
            Repr::Many(all) => all.len(),
        }
    }

    /// Whether the push evicted nothing.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The evicted entries, in eviction order.
    pub fn iter(&self) -> std::slice::Iter<'_, Evicted<T>> {
        match &self.0 {
            Repr::None => [].iter(),
            Repr::One(one) => std::slice::from_ref(one).iter(),
            Repr::Many(all) => all.iter(),
        }
    }
}

impl<T> IntoIterator for Evictions<T> {
    type Item = Evicted<T>;
    type IntoIter = std::vec::IntoIter<Evicted<T>>;

    fn into_iter(self) -> Self::IntoIter {
        match self.0 {
            Repr::None => Vec::new().into_iter(),
            Repr::One(one) => vec![one].into_iter(),
            Repr::Many(all) => all.into_iter(),
        }
    }
}

impl<'a, T> IntoIterator for &'a Evictions<T> {
    type Item = &'a Evicted<T>;
    type IntoIter = std::slice::Iter<'a, Evicted<T>>;

    fn into_iter(self) -> Self::IntoIter {
        self.iter()
    }
}
