//! Who is subscribed to what, each channel's offset counter, and the ids the server makes up.
//! Everything runs on one thread, so this is plain data behind one `RefCell`.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::hash::{BuildHasher, RandomState};
use std::rc::Rc;

use crate::peer::Peer;

/// One channel: its subscribers and the offset of its latest message (0 when none yet).
/// Kept after its last subscriber leaves, so offsets keep counting, as in the other peers.
#[derive(Debug, Default)]
pub(crate) struct Channel {
    pub(crate) subscribers: Vec<Rc<Peer>>,
    pub(crate) offset: u64,
}

/// Every channel, and the counters behind generated ids.
#[derive(Debug)]
pub(crate) struct Channels {
    channels: HashMap<String, Channel>,
    /// Random per process, so ids differ between runs (`c-<prefix><n>`, `m-<prefix>-<n>`).
    id_prefix: String,
    next_connection: u64,
    next_message: u64,
}

impl Channels {
    pub(crate) fn new() -> Self {
        let random = RandomState::new().hash_one(std::process::id());
        Self {
            channels: HashMap::new(),
            id_prefix: format!("{:06x}", random & 0xFF_FFFF),
            next_connection: 0,
            next_message: 0,
        }
    }

    /// A new connection id, `c-<prefix><n in base 36>`.
    pub(crate) fn connection_id(&mut self) -> String {
        let mut id = format!("c-{}", self.id_prefix);
        push_base36(&mut id, self.next_connection);
        self.next_connection += 1;
        id
    }

    /// A new message id for a publish without one, `m-<prefix>-<n in base 36>`.
    pub(crate) fn message_id(&mut self) -> String {
        let mut id = String::with_capacity(24);
        let _ = write!(id, "m-{}-", self.id_prefix);
        push_base36(&mut id, self.next_message);
        self.next_message += 1;
        id
    }

    /// The channel's latest offset (0 when it has had no message).
    pub(crate) fn offset(&self, channel: &str) -> u64 {
        self.channels.get(channel).map_or(0, |c| c.offset)
    }

    /// The channel, created when new.
    pub(crate) fn channel_mut(&mut self, channel: &str) -> &mut Channel {
        if !self.channels.contains_key(channel) {
            self.channels.insert(channel.to_owned(), Channel::default());
        }
        self.channels.get_mut(channel).expect("inserted above")
    }

    pub(crate) fn subscribe(&mut self, channel: &str, peer: &Rc<Peer>) {
        self.channel_mut(channel).subscribers.push(Rc::clone(peer));
    }

    pub(crate) fn unsubscribe(&mut self, channel: &str, peer: &Rc<Peer>) {
        if let Some(c) = self.channels.get_mut(channel)
            && let Some(i) = c.subscribers.iter().position(|p| Rc::ptr_eq(p, peer))
        {
            c.subscribers.swap_remove(i);
        }
    }
}

fn push_base36(out: &mut String, mut n: u64) {
    const DIGITS: &[u8; 36] = b"0123456789abcdefghijklmnopqrstuvwxyz";
    let mut buf = [0u8; 13];
    let mut at = buf.len();
    loop {
        at -= 1;
        buf[at] = DIGITS[(n % 36) as usize];
        n /= 36;
        if n == 0 {
            break;
        }
    }
    out.extend(buf[at..].iter().map(|&b| char::from(b)));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_count_in_base_36() {
        let mut c = Channels::new();
        let prefix = c.id_prefix.clone();
        assert_eq!(c.message_id(), format!("m-{prefix}-0"));
        c.next_message = 36 * 36 + 35;
        assert_eq!(c.message_id(), format!("m-{prefix}-10z"));
        assert_eq!(c.connection_id(), format!("c-{prefix}0"));
    }
}
