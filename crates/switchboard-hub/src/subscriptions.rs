//! A connection's subscriptions, stored for the common case of a few.

use std::collections::HashMap;

use switchboard_protocol::ChannelName;

/// Up to this many subscriptions are kept in a vector searched in order; more move to a hash
/// map.
const FEW: usize = 8;

/// A map from channel to `V` that costs one slot per entry while it holds few: a hash map's
/// smallest table has four slots plus control bytes (116 bytes for one subscription), and
/// most connections subscribe to one or two channels.
#[derive(Debug)]
pub(crate) enum Subscriptions<V> {
    Few(Vec<(ChannelName, V)>),
    Many(HashMap<ChannelName, V>),
}

impl<V> Default for Subscriptions<V> {
    fn default() -> Self {
        Self::Few(Vec::new())
    }
}

impl<V> Subscriptions<V> {
    pub(crate) fn len(&self) -> usize {
        match self {
            Self::Few(few) => few.len(),
            Self::Many(many) => many.len(),
        }
    }

    pub(crate) fn contains_key(&self, channel: &ChannelName) -> bool {
        self.get(channel).is_some()
    }

    /// The subscribed channel named `channel`, as held here.
    pub(crate) fn name(&self, channel: &str) -> Option<&ChannelName> {
        match self {
            Self::Few(few) => few
                .iter()
                .find(|(c, _)| c.as_str() == channel)
                .map(|(c, _)| c),
            Self::Many(many) => many.get_key_value(channel).map(|(c, _)| c),
        }
    }

    pub(crate) fn get(&self, channel: &ChannelName) -> Option<&V> {
        match self {
            Self::Few(few) => few.iter().find(|(c, _)| c == channel).map(|(_, v)| v),
            Self::Many(many) => many.get(channel),
        }
    }

    pub(crate) fn get_mut(&mut self, channel: &ChannelName) -> Option<&mut V> {
        match self {
            Self::Few(few) => few.iter_mut().find(|(c, _)| c == channel).map(|(_, v)| v),
            Self::Many(many) => many.get_mut(channel),
        }
    }

    /// Sets `channel`'s value, returning the one it replaces.
    pub(crate) fn insert(&mut self, channel: ChannelName, value: V) -> Option<V> {
        match self {
            Self::Few(few) => {
                if let Some((_, slot)) = few.iter_mut().find(|(c, _)| *c == channel) {
                    return Some(std::mem::replace(slot, value));
                }
                if few.len() < FEW {
                    // Grow 1, 2, 4, 8: a vector's first allocation would be four slots.
                    if few.len() == few.capacity() {
                        few.reserve_exact(few.len().max(1));
                    }
                    few.push((channel, value));
                } else {
                    let mut many: HashMap<ChannelName, V> =
                        std::mem::take(few).into_iter().collect();
                    many.insert(channel, value);
                    *self = Self::Many(many);
                }
                None
            }
            Self::Many(many) => many.insert(channel, value),
        }
    }

    pub(crate) fn remove(&mut self, channel: &ChannelName) -> Option<V> {
        match self {
            Self::Few(few) => {
                let at = few.iter().position(|(c, _)| c == channel)?;
                let (_, value) = few.swap_remove(at);
                if few.is_empty() {
                    *few = Vec::new();
                }
                Some(value)
            }
            Self::Many(many) => many.remove(channel),
        }
    }

    pub(crate) fn keys(&self) -> impl Iterator<Item = &ChannelName> {
        let (few, many) = match self {
            Self::Few(few) => (Some(few.iter().map(|(c, _)| c)), None),
            Self::Many(many) => (None, Some(many.keys())),
        };
        few.into_iter().flatten().chain(many.into_iter().flatten())
    }

    pub(crate) fn into_entries(self) -> Vec<(ChannelName, V)> {
        match self {
            Self::Few(few) => few,
            Self::Many(many) => many.into_iter().collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    fn name(i: usize) -> ChannelName {
        ChannelName::new(&format!("ch{i}")).expect("a valid name")
    }

    #[test]
    fn behaves_as_a_map_below_and_above_the_switch() {
        // Against a reference map, through the switch to a hash map and back down.
        let mut subs = Subscriptions::default();
        let mut model = BTreeMap::new();
        let ops = (0..40)
            .map(|i| (i % 13, true))
            .chain((0..40).map(|i| ((i * 7) % 13, i % 3 == 0)));
        for (step, (key, insert)) in ops.enumerate() {
            let channel = name(key);
            if insert {
                assert_eq!(subs.insert(channel.clone(), step), model.insert(key, step));
            } else {
                assert_eq!(subs.remove(&channel), model.remove(&key));
            }
            assert_eq!(subs.len(), model.len());
            for k in 0..13 {
                assert_eq!(subs.get(&name(k)), model.get(&k), "step {step}, key {k}");
                assert_eq!(subs.contains_key(&name(k)), model.contains_key(&k));
                assert_eq!(
                    subs.name(name(k).as_str()).map(ChannelName::as_str),
                    model
                        .contains_key(&k)
                        .then(|| name(k))
                        .as_ref()
                        .map(ChannelName::as_str),
                    "step {step}, key {k}"
                );
            }
            let mut keys: Vec<String> = subs.keys().map(|c| c.as_str().to_owned()).collect();
            keys.sort();
            let mut expected: Vec<String> = model.keys().map(|k| format!("ch{k}")).collect();
            expected.sort();
            assert_eq!(keys, expected);
        }
        if let Some(v) = subs.get_mut(&name(0)) {
            *v = 1000;
        }
        let entries = subs.into_entries();
        assert_eq!(entries.len(), model.len());
    }

    #[test]
    fn one_subscription_takes_one_slot() {
        let mut subs = Subscriptions::default();
        subs.insert(name(1), ());
        match &subs {
            Subscriptions::Few(few) => assert_eq!(few.capacity(), 1),
            Subscriptions::Many(_) => panic!("one entry stays in the vector"),
        }
        subs.remove(&name(1));
        match &subs {
            Subscriptions::Few(few) => assert_eq!(few.capacity(), 0, "nothing kept once empty"),
            Subscriptions::Many(_) => panic!("still a vector"),
        }
    }
}
