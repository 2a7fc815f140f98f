//! Surveys over pub/sub: a request published on `Pcontrol` reaches every instance (`PUBLISH`
//! says how many); each answers on the asking instance's `Preply:<node>`, and the asker
//! gathers the replies until it has one per instance or its timeout passes.
//!
//! Wire forms (binary-safe: lengths, not separators, delimit what callers wrote):
//! - request: `<node>:<id>:<data>` (the node id is hex, the id decimal);
//! - reply: `<id>:` followed by each answer as `<len>:<bytes>`.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;
use parking_lot::Mutex;
use tokio::sync::Notify;

/// The request to publish on the control channel.
pub(crate) fn request(node: &str, id: u64, data: &[u8]) -> Vec<u8> {
    let mut out = format!("{node}:{id}:").into_bytes();
    out.extend_from_slice(data);
    out
}

/// A request read back: the asking node, the survey id and the data.
pub(crate) fn parse_request(payload: &Bytes) -> Option<(String, u64, Bytes)> {
    let node_end = payload.iter().position(|&b| b == b':')?;
    let node = std::str::from_utf8(&payload[..node_end]).ok()?;
    let rest = &payload[node_end + 1..];
    let id_end = rest.iter().position(|&b| b == b':')?;
    let id = std::str::from_utf8(&rest[..id_end]).ok()?.parse().ok()?;
    let data = payload.slice(node_end + 1 + id_end + 1..);
    Some((node.to_owned(), id, data))
}

/// The reply carrying `answers` to survey `id`.
pub(crate) fn reply(id: u64, answers: &[Bytes]) -> Vec<u8> {
    let mut out = format!("{id}:").into_bytes();
    for answer in answers {
        out.extend_from_slice(answer.len().to_string().as_bytes());
        out.push(b':');
        out.extend_from_slice(answer);
    }
    out
}

/// A reply read back: the survey id and its answers.
pub(crate) fn parse_reply(payload: &Bytes) -> Option<(u64, Vec<Bytes>)> {
    let id_end = payload.iter().position(|&b| b == b':')?;
    let id = std::str::from_utf8(&payload[..id_end]).ok()?.parse().ok()?;
    let mut at = id_end + 1;
    let mut answers = Vec::new();
    while at < payload.len() {
        let len_end = at + payload[at..].iter().position(|&b| b == b':')?;
        let len: usize = std::str::from_utf8(&payload[at..len_end])
            .ok()?
            .parse()
            .ok()?;
        let start = len_end + 1;
        let end = start.checked_add(len).filter(|&end| end <= payload.len())?;
        answers.push(payload.slice(start..end));
        at = end;
    }
    Some((id, answers))
}

struct Pending {
    answers: Vec<Bytes>,
    replied: usize,
    done: Arc<Notify>,
}

/// The surveys this instance is waiting on.
#[derive(Default)]
pub(crate) struct Surveys {
    next: AtomicU64,
    pending: Mutex<HashMap<u64, Pending>>,
}

impl Surveys {
    /// Opens a survey: replies to its id are gathered until the returned guard is dropped or
    /// finished.
    pub(crate) fn open(&self) -> Open<'_> {
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        let done = Arc::new(Notify::new());
        self.pending.lock().insert(
            id,
            Pending {
                answers: Vec::new(),
                replied: 0,
                done: Arc::clone(&done),
            },
        );
        Open {
            surveys: self,
            id,
            done,
        }
    }

    /// Adds one instance's reply; a reply to a survey no longer open (it timed out) is
    /// dropped.
    pub(crate) fn on_reply(&self, id: u64, answers: Vec<Bytes>) {
        if let Some(pending) = self.pending.lock().get_mut(&id) {
            pending.answers.extend(answers);
            pending.replied += 1;
            pending.done.notify_one();
        }
    }
}

/// An open survey; dropping it (a cancelled caller) forgets it.
pub(crate) struct Open<'a> {
    surveys: &'a Surveys,
    id: u64,
    done: Arc<Notify>,
}

impl Open<'_> {
    pub(crate) fn id(&self) -> u64 {
        self.id
    }

    /// How many instances have replied so far.
    pub(crate) fn replied(&self) -> usize {
        self.surveys
            .pending
            .lock()
            .get(&self.id)
            .map_or(0, |p| p.replied)
    }

    /// Resolves after the next reply (at once when one came since the last call).
    pub(crate) async fn next_reply(&self) {
        self.done.notified().await;
    }

    /// Closes the survey: its answers and how many instances replied.
    pub(crate) fn finish(self) -> (Vec<Bytes>, usize) {
        self.surveys
            .pending
            .lock()
            .remove(&self.id)
            .map_or((Vec::new(), 0), |p| (p.answers, p.replied))
    }
}

impl Drop for Open<'_> {
    fn drop(&mut self) {
        self.surveys.pending.lock().remove(&self.id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_and_replies_keep_their_bytes_including_separators() {
        let data = Bytes::from_static(b"{\"op\":\"x\"}:1:2:");
        let wire = Bytes::from(request("00ff", 42, &data));
        assert_eq!(parse_request(&wire), Some(("00ff".to_owned(), 42, data)));

        let answers = vec![
            Bytes::from_static(b"a:b"),
            Bytes::new(),
            Bytes::from_static(b"12:"),
        ];
        let wire = Bytes::from(reply(7, &answers));
        assert_eq!(parse_reply(&wire), Some((7, answers)));
        assert_eq!(
            parse_reply(&Bytes::from(reply(8, &[]))),
            Some((8, Vec::new()))
        );
    }

    #[test]
    fn a_truncated_reply_is_refused_not_misread() {
        let wire = Bytes::from(reply(7, &[Bytes::from_static(b"hello")]));
        assert_eq!(parse_reply(&wire.slice(..wire.len() - 1)), None);
        assert_eq!(parse_reply(&Bytes::from_static(b"x:")), None);
    }

    #[tokio::test]
    async fn replies_are_gathered_per_survey_and_late_ones_are_dropped() {
        let surveys = Surveys::default();
        let a = surveys.open();
        let b = surveys.open();
        surveys.on_reply(a.id(), vec![Bytes::from_static(b"1")]);
        surveys.on_reply(
            a.id(),
            vec![Bytes::from_static(b"2"), Bytes::from_static(b"3")],
        );
        a.next_reply().await;
        assert_eq!((a.replied(), b.replied()), (2, 0));
        let id = a.id();
        let (answers, replied) = a.finish();
        assert_eq!((answers.len(), replied), (3, 2));
        surveys.on_reply(id, vec![Bytes::from_static(b"late")]);
        let b_id = b.id();
        drop(b);
        surveys.on_reply(b_id, Vec::new());
        assert!(surveys.pending.lock().is_empty());
    }
}
