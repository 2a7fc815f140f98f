//! Connection and message ids, unique across instances.

use std::sync::atomic::{AtomicU64, Ordering};

/// Characters of a connection id's unguessable tag (6 bits each).
const TAG_CHARS: usize = 8;

/// Generates ids as `<node><kind><counter>`: the node part is random per hub, so ids from
/// different instances never collide, and the counter keeps them short. Connection ids add
/// 48 unguessable bits ([`connection_id`](Self::connection_id)).
#[derive(Debug)]
pub(crate) struct IdGenerator {
    node: String,
    /// `<node>m`: how every message id starts.
    message_prefix: [u8; MESSAGE_PREFIX_LEN],
    next: AtomicU64,
    /// A secret SipHash key (random per process and generator): a keyed hash of the counter
    /// cannot be predicted from ids seen before.
    secret: std::collections::hash_map::RandomState,
}

impl IdGenerator {
    pub(crate) fn new() -> Self {
        use std::hash::{BuildHasher, Hasher};
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_u128(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos()),
        );
        let node = format!("{:08x}", h.finish() as u32);
        let mut message_prefix = [b'm'; MESSAGE_PREFIX_LEN];
        // Eight digits, always: `{:08x}` of a `u32`.
        message_prefix[..8].copy_from_slice(node.as_bytes());
        Self {
            node,
            message_prefix,
            next: AtomicU64::new(1),
            secret: std::collections::hash_map::RandomState::new(),
        }
    }

    pub(crate) fn node(&self) -> &str {
        &self.node
    }

    /// The next message id, `<node>m<counter>`, kept inline: made on every publish that
    /// brings no id of its own, and only written into the message (a `String` only when
    /// one is asked for).
    pub(crate) fn next_message(&self) -> MessageId {
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        let (digits, at) = hex(n);
        let counter = &digits[at..];
        let len = MESSAGE_PREFIX_LEN + counter.len();
        let mut bytes = [0; MESSAGE_ID_LEN];
        bytes[..MESSAGE_PREFIX_LEN].copy_from_slice(&self.message_prefix);
        bytes[MESSAGE_PREFIX_LEN..len].copy_from_slice(counter);
        MessageId {
            bytes,
            len: len as u8,
        }
    }

    /// The id of the connection registered under `key` (unique in this hub): the node,
    /// `c`, the key in hexadecimal, then 8 characters (48 bits) of a keyed hash of the key —
    /// unique (the key part), and no id can be guessed from the ones seen before. Short on
    /// purpose: connection ids travel in every delivered message's `from`. The hub reads the
    /// key back with [`local_key`](Self::local_key).
    pub(crate) fn connection_id(&self, key: u64) -> String {
        let mut id = String::with_capacity(self.node.len() + 1 + 16 + TAG_CHARS);
        id.push_str(&self.node);
        id.push('c');
        push_hex(&mut id, key);
        self.push_tag(&mut id, key);
        id
    }

    fn push_tag(&self, id: &mut String, key: u64) {
        use std::hash::BuildHasher;
        const ALPHABET: &[u8; 64] =
            b"0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ-_";
        let mut tag = self.secret.hash_one(key);
        for _ in 0..TAG_CHARS {
            id.push(char::from(ALPHABET[(tag & 63) as usize]));
            tag >>= 6;
        }
    }

    /// The key of one of this hub's connections from its id; `None` for an id this hub
    /// did not give (another instance's, or made up).
    pub(crate) fn local_key(&self, id: &str) -> Option<u64> {
        let rest = id.strip_prefix(self.node.as_str())?.strip_prefix('c')?;
        let hex = rest.get(..rest.len().checked_sub(TAG_CHARS)?)?;
        if hex.is_empty() || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            return None;
        }
        let key = u64::from_str_radix(hex, 16).ok()?;
        let mut expected = String::with_capacity(TAG_CHARS);
        self.push_tag(&mut expected, key);
        (rest[hex.len()..] == expected).then_some(key)
    }
}

/// Appends `n` in lower-case hexadecimal without leading zeros (`0` for zero), as `{n:x}`
/// would, without the formatting machinery: message ids are made on every publish.
fn push_hex(out: &mut String, n: u64) {
    let (digits, at) = hex(n);
    for &digit in &digits[at..] {
        out.push(char::from(digit));
    }
}

/// `n`'s lower-case hexadecimal digits, written from the end of the array, and where they
/// start.
fn hex(n: u64) -> ([u8; 16], usize) {
    const HEX_DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut buf = [0u8; 16];
    let mut at = buf.len();
    let mut rest = n;
    loop {
        at -= 1;
        buf[at] = HEX_DIGITS[(rest & 15) as usize];
        rest >>= 4;
        if rest == 0 {
            return (buf, at);
        }
    }
}

/// A message id's `<node>m`: an 8-digit node, then `m`.
const MESSAGE_PREFIX_LEN: usize = 8 + 1;

/// The longest generated message id: `<node>m`, a 16-digit counter.
const MESSAGE_ID_LEN: usize = MESSAGE_PREFIX_LEN + 16;

/// A generated message id ([`IdGenerator::next_message`]), inline.
#[derive(Debug, Clone, Copy)]
pub(crate) struct MessageId {
    bytes: [u8; MESSAGE_ID_LEN],
    len: u8,
}

impl MessageId {
    pub(crate) fn as_str(&self) -> &str {
        std::str::from_utf8(&self.bytes[..usize::from(self.len)]).expect("generated ids are ASCII")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_counters_read_as_format_would_write_them() {
        for n in [0, 1, 9, 10, 15, 16, 255, 256, 0xdead_beef, u64::MAX] {
            let mut out = String::from("x");
            push_hex(&mut out, n);
            assert_eq!(out, format!("x{n:x}"));
        }
        let ids = IdGenerator::new();
        assert_eq!(ids.next_message().as_str(), format!("{}m1", ids.node()));
        assert_eq!(ids.next_message().as_str(), format!("{}m2", ids.node()));
        ids.next.store(u64::MAX, Ordering::Relaxed);
        let longest = ids.next_message();
        assert_eq!(longest.as_str(), format!("{}m{:x}", ids.node(), u64::MAX));
        assert_eq!(longest.as_str().len(), MESSAGE_ID_LEN);
    }

    #[test]
    fn unguessable_ids_are_unique_and_not_a_sequence() {
        let ids = IdGenerator::new();
        let made: Vec<String> = (1..=1000).map(|key| ids.connection_id(key)).collect();
        let distinct: std::collections::HashSet<_> = made.iter().collect();
        assert_eq!(distinct.len(), made.len());
        // The tails of consecutive ids share no simple relation: about half their bits differ.
        let tail = |id: &str| {
            id[id.len() - TAG_CHARS..].bytes().fold(0u64, |acc, b| {
                let v = match b {
                    b'0'..=b'9' => b - b'0',
                    b'a'..=b'z' => b - b'a' + 10,
                    b'A'..=b'Z' => b - b'A' + 36,
                    b'-' => 62,
                    _ => 63,
                };
                (acc << 6) | u64::from(v)
            })
        };
        let differing: u32 = made
            .windows(2)
            .map(|w| (tail(&w[0]) ^ tail(&w[1])).count_ones())
            .sum();
        let mean = f64::from(differing) / 999.0;
        assert!((18.0..30.0).contains(&mean), "mean differing bits {mean}");
        // Another generator (another instance) draws other tails for the same counters.
        let other = IdGenerator::new();
        assert_ne!(tail(&other.connection_id(1)), tail(&made[0]));
    }

    #[test]
    fn a_hub_reads_the_key_back_from_its_own_connection_ids_only() {
        let ids = IdGenerator::new();
        for key in [1, 2, 255, 0xdead_beef, u64::MAX] {
            assert_eq!(ids.local_key(&ids.connection_id(key)), Some(key));
        }
        let id = ids.connection_id(42);
        // Another instance's id, a forged tag, a message id, junk: not ours.
        assert_eq!(IdGenerator::new().local_key(&id), None);
        let mut forged = id.clone();
        forged.pop();
        forged.push(if id.ends_with('x') { 'y' } else { 'x' });
        assert_eq!(ids.local_key(&forged), None);
        assert_eq!(ids.local_key(ids.next_message().as_str()), None);
        assert_eq!(
            ids.local_key(&format!(
                "{}c+2a{}",
                ids.node(),
                &id[id.len() - TAG_CHARS..]
            )),
            None
        );
        assert_eq!(ids.local_key(""), None);
        assert_eq!(ids.local_key(ids.node()), None);
    }
}
