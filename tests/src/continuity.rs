//! Records of what was published and what each subscriber saw, and the checker that
//! reconciles them: every published message reaches every subscriber exactly once and in
//! order, or the subscriber was told that continuity was lost.
//!
//! # The rule
//!
//! A subscriber's life is a sequence of *chains*. A chain starts with its first
//! `subscribed`, and every later `subscribed` with `recovered: false` (the server saying
//! "I cannot give you what you missed: refetch") starts a new one. A `subscribed` with
//! `recovered: true` continues the chain: the server promised that nothing is missing. A
//! close with 4008 (or any close) is *not* by itself a loss signal when the subscriber
//! then recovers with `recovered: true`; a close the subscriber never recovers from before
//! the end of the observation ends its last chain with a loss.
//!
//! Then, for one subscriber:
//!
//! - **nothing silently missing**: every acknowledged publish on its channel, sent after
//!   its first subscription and before the observation ended, was delivered (accepted by a
//!   conforming client, see below) — or a chain ended with a loss signal at a time `T`
//!   after the publish was sent, and that chain began before the publish was acknowledged
//!   (the message belongs to the stretch the server declared lost);
//! - **no duplicates**: a message id is delivered at most once within a chain (across a
//!   declared loss the client refetches anyway);
//! - **order**: within a chain, each publisher's messages arrive in the order it sent them.
//!
//! A *conforming client* keeps the last offset and epoch it
//! delivered, as the protocol and `switchboard-client` do: it delivers the next offset,
//! drops a message at or below the last one as a duplicate, and treats a jump as a gap to
//! recover with `since`. So a message the server sends with a stale offset after promising
//! recovery is *not* delivered to the application: the checker counts it as missing, and
//! lists the stale frame as a wire anomaly to explain why.

use std::collections::HashMap;
use std::fmt::{self, Write as _};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;
use tokio::sync::watch;

/// One publish, as its publisher saw it.
#[derive(Debug, Clone)]
pub struct PublishRecord {
    /// The publisher's name (the `p` of the payload).
    pub publisher: String,
    /// Its sequence number (the `seq` of the payload), from 1.
    pub seq: u64,
    /// The message id.
    pub id: String,
    /// The channel.
    pub channel: String,
    /// When it was sent.
    pub sent_at: Instant,
    /// When the `ack` arrived, and its offset.
    pub acked: Option<(Instant, u64)>,
    /// The `error` code it got instead, if any.
    pub error: Option<String>,
}

/// Every publish of one or more publishers, shared between the task that publishes and
/// the test.
#[derive(Debug, Clone, Default)]
pub struct PublishLog {
    inner: Arc<Mutex<PublishLogInner>>,
}

#[derive(Debug, Default)]
struct PublishLogInner {
    records: Vec<PublishRecord>,
    by_id: HashMap<String, usize>,
}

impl PublishLog {
    /// An empty log.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Records that `publisher` sent message `seq` with `id` on `channel` now.
    pub fn sent(&self, publisher: &str, seq: u64, id: &str, channel: &str) {
        let mut inner = self.inner.lock().expect("publish log lock");
        let index = inner.records.len();
        inner.records.push(PublishRecord {
            publisher: publisher.to_owned(),
            seq,
            id: id.to_owned(),
            channel: channel.to_owned(),
            sent_at: Instant::now(),
            acked: None,
            error: None,
        });
        inner.by_id.insert(id.to_owned(), index);
    }

    /// Records the `ack` of `id` (the first one counts).
    pub fn acked(&self, id: &str, offset: u64) {
        let mut inner = self.inner.lock().expect("publish log lock");
        if let Some(&i) = inner.by_id.get(id) {
            let record = &mut inner.records[i];
            if record.acked.is_none() {
                record.acked = Some((Instant::now(), offset));
            }
        }
    }

    /// Records an `error` answering `id`.
    pub fn failed(&self, id: &str, code: &str) {
        let mut inner = self.inner.lock().expect("publish log lock");
        if let Some(&i) = inner.by_id.get(id) {
            inner.records[i].error = Some(code.to_owned());
        }
    }

    /// Every record so far.
    #[must_use]
    pub fn records(&self) -> Vec<PublishRecord> {
        self.inner.lock().expect("publish log lock").records.clone()
    }

    /// How many were sent and not (yet) answered.
    #[must_use]
    pub fn unanswered(&self) -> usize {
        let inner = self.inner.lock().expect("publish log lock");
        inner
            .records
            .iter()
            .filter(|r| r.acked.is_none() && r.error.is_none())
            .count()
    }

    /// The highest sequence number acknowledged so far.
    #[must_use]
    pub fn last_acked_seq(&self) -> Option<u64> {
        let inner = self.inner.lock().expect("publish log lock");
        inner
            .records
            .iter()
            .filter(|r| r.acked.is_some())
            .map(|r| r.seq)
            .max()
    }
}

/// One application message a subscriber received.
#[derive(Debug, Clone)]
pub struct Delivery {
    /// When it arrived.
    pub at: Instant,
    /// Its offset.
    pub offset: u64,
    /// Its id.
    pub id: String,
    /// The payload's `p`, when present.
    pub publisher: Option<String>,
    /// The payload's `seq`, when present.
    pub seq: Option<u64>,
    /// The whole frame.
    pub frame: Value,
}

impl Delivery {
    /// Reads a delivered application message.
    #[must_use]
    pub fn from_frame(frame: Value) -> Self {
        Self {
            at: Instant::now(),
            offset: frame["offset"].as_u64().unwrap_or(0),
            id: frame["id"].as_str().unwrap_or_default().to_owned(),
            publisher: frame["payload"]["p"].as_str().map(str::to_owned),
            seq: frame["payload"]["seq"].as_u64(),
            frame,
        }
    }
}

/// What happened to a subscriber, in order.
#[derive(Debug, Clone)]
pub enum SubscriberEvent {
    /// A `subscribed` answer.
    Subscribed {
        /// When it arrived.
        at: Instant,
        /// The `since` the subscribe carried.
        since: Option<(u64, String)>,
        /// The channel's offset then.
        offset: u64,
        /// The channel's epoch then.
        epoch: String,
        /// Whether the server recovered everything after `since`.
        recovered: bool,
    },
    /// An application message, and whether a conforming client delivers it.
    Message {
        /// The message.
        delivery: Delivery,
        /// `Ok` when delivered; otherwise why a conforming client drops it.
        verdict: Result<(), String>,
    },
    /// The connection closed (a close frame's code, or `None` when it just ended).
    Closed {
        /// When.
        at: Instant,
        /// The close code.
        code: Option<u16>,
        /// Why, in words.
        reason: String,
    },
}

impl SubscriberEvent {
    fn at(&self) -> Instant {
        match self {
            Self::Subscribed { at, .. } | Self::Closed { at, .. } => *at,
            Self::Message { delivery, .. } => delivery.at,
        }
    }
}

/// Everything one subscriber saw, shared between its task and the test; waiters are woken
/// on every new event.
#[derive(Debug, Clone)]
pub struct SubscriberLog {
    name: Arc<str>,
    channel: Arc<str>,
    events: Arc<Mutex<Vec<SubscriberEvent>>>,
    changed: watch::Sender<usize>,
}

impl SubscriberLog {
    /// An empty log for subscriber `name` of `channel`.
    #[must_use]
    pub fn new(name: &str, channel: &str) -> Self {
        Self {
            name: name.into(),
            channel: channel.into(),
            events: Arc::default(),
            changed: watch::channel(0).0,
        }
    }

    /// The subscriber's name.
    #[must_use]
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The channel.
    #[must_use]
    pub fn channel(&self) -> &str {
        &self.channel
    }

    /// Appends an event.
    pub fn push(&self, event: SubscriberEvent) {
        let len = {
            let mut events = self.events.lock().expect("subscriber log lock");
            events.push(event);
            events.len()
        };
        self.changed.send_replace(len);
    }

    /// Every event so far.
    #[must_use]
    pub fn events(&self) -> Vec<SubscriberEvent> {
        self.events.lock().expect("subscriber log lock").clone()
    }

    /// Messages a conforming client delivered, in order.
    #[must_use]
    pub fn delivered(&self) -> Vec<Delivery> {
        self.events
            .lock()
            .expect("subscriber log lock")
            .iter()
            .filter_map(|e| match e {
                SubscriberEvent::Message {
                    delivery,
                    verdict: Ok(()),
                } => Some(delivery.clone()),
                _ => None,
            })
            .collect()
    }

    /// The highest `seq` of `publisher` delivered so far.
    #[must_use]
    pub fn max_seq(&self, publisher: &str) -> Option<u64> {
        self.delivered()
            .iter()
            .filter(|d| d.publisher.as_deref() == Some(publisher))
            .filter_map(|d| d.seq)
            .max()
    }

    /// The close codes received so far.
    #[must_use]
    pub fn close_codes(&self) -> Vec<Option<u16>> {
        self.events()
            .iter()
            .filter_map(|e| match e {
                SubscriberEvent::Closed { code, .. } => Some(*code),
                _ => None,
            })
            .collect()
    }

    /// The `subscribed` answers so far: `(since, recovered)` of each.
    #[must_use]
    pub fn subscriptions(&self) -> Vec<(Option<(u64, String)>, bool)> {
        self.events()
            .iter()
            .filter_map(|e| match e {
                SubscriberEvent::Subscribed {
                    since, recovered, ..
                } => Some((since.clone(), *recovered)),
                _ => None,
            })
            .collect()
    }

    /// Waits (at most `within`) until `done` holds for the events.
    ///
    /// # Panics
    /// When it does not, naming `what` and showing the timeline.
    pub async fn wait_until(
        &self,
        what: &str,
        within: Duration,
        done: impl FnMut(&[SubscriberEvent]) -> bool,
    ) {
        if !self.try_wait_until(within, done).await {
            panic!(
                "subscriber {}: {what} did not happen within {within:?}\n{}",
                self.name,
                timeline(&self.events(), None)
            );
        }
    }

    /// Waits (at most `within`) until `done` holds for the events; `false` if it did not.
    pub async fn try_wait_until(
        &self,
        within: Duration,
        mut done: impl FnMut(&[SubscriberEvent]) -> bool,
    ) -> bool {
        let mut changed = self.changed.subscribe();
        let deadline = tokio::time::Instant::now() + within;
        loop {
            if done(&self.events.lock().expect("subscriber log lock")) {
                return true;
            }
            if tokio::time::timeout_at(deadline, changed.changed())
                .await
                .is_err()
            {
                return false;
            }
        }
    }

    /// Whether a message of `publisher` with a `seq` of at least `seq` was delivered.
    #[must_use]
    pub fn has_seq_at_least(events: &[SubscriberEvent], publisher: &str, seq: u64) -> bool {
        events.iter().any(|e| {
            matches!(e, SubscriberEvent::Message { delivery, verdict: Ok(()) }
                if delivery.publisher.as_deref() == Some(publisher)
                    && delivery.seq.is_some_and(|s| s >= seq))
        })
    }

    /// Waits (at most `within`) until a message of `publisher` with a `seq` above `after`
    /// was delivered.
    ///
    /// # Panics
    /// When none is.
    pub async fn wait_for_seq_after(&self, publisher: &str, after: u64, within: Duration) {
        let what = format!("a message from {publisher} after seq {after}");
        self.wait_until(&what, within, |events| {
            Self::has_seq_at_least(events, publisher, after + 1)
        })
        .await;
    }
}

/// The position a conforming client keeps for one channel: the offset and epoch of the
/// last message it delivered.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct ClientPosition {
    position: Option<(u64, String)>,
}

/// What a conforming client does with a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// The next offset: delivered.
    Deliver,
    /// At or below the last delivered offset: dropped as a duplicate.
    Stale { last: u64 },
    /// Past the next offset: a gap, recovered by re-subscribing with `since`.
    Gap { expected: u64 },
}

impl ClientPosition {
    /// The `since` for the next subscribe.
    pub(crate) fn since(&self) -> Option<(u64, String)> {
        self.position.clone()
    }

    /// A `subscribed` answer: after a recovery the replay continues from the client's own
    /// offset (only the epoch is the server's); otherwise the server's position is the
    /// baseline.
    pub(crate) fn subscribed(&mut self, offset: u64, epoch: &str, recovered: bool) {
        match &mut self.position {
            Some(position) if recovered => epoch.clone_into(&mut position.1),
            position => *position = Some((offset, epoch.to_owned())),
        }
    }

    /// Classifies a message at `offset` (and advances on delivery).
    pub(crate) fn on_message(&mut self, offset: u64) -> Verdict {
        let Some(position) = &mut self.position else {
            return Verdict::Stale { last: 0 };
        };
        if offset <= position.0 {
            Verdict::Stale { last: position.0 }
        } else if offset > position.0 + 1 {
            Verdict::Gap {
                expected: position.0 + 1,
            }
        } else {
            position.0 = offset;
            Verdict::Deliver
        }
    }
}

/// Reconciles publish logs with subscriber logs; the rule is in the documentation of the
/// `continuity` module (`tests/src/continuity.rs`).
#[derive(Debug, Clone)]
pub struct Reconciliation {
    publishes: Vec<PublishRecord>,
}

impl Reconciliation {
    /// Over every publish in `logs`.
    #[must_use]
    pub fn new(logs: &[&PublishLog]) -> Self {
        Self {
            publishes: logs.iter().flat_map(|l| l.records()).collect(),
        }
    }

    /// Checks one subscriber, observed until now.
    #[must_use]
    pub fn check(&self, subscriber: &SubscriberLog) -> Report {
        self.check_until(subscriber, Instant::now())
    }

    /// Checks one subscriber, observed until `end`: publishes sent after `end` are not
    /// required.
    #[must_use]
    pub fn check_until(&self, subscriber: &SubscriberLog, end: Instant) -> Report {
        let events = subscriber.events();
        let mut report = Report {
            subscriber: subscriber.name().to_owned(),
            timeline: String::new(),
            required: 0,
            delivered: 0,
            explained: 0,
            loss_signals: 0,
            silently_missing: Vec::new(),
            duplicates: Vec::new(),
            out_of_order: Vec::new(),
            anomalies: Vec::new(),
        };
        let base = events.first().map(SubscriberEvent::at);

        // Chains: their start times, and the time each one ended with a loss signal.
        let mut chain_starts: Vec<Instant> = Vec::new();
        let mut losses: Vec<Instant> = Vec::new();
        let mut chain_of_delivery: Vec<(usize, Delivery)> = Vec::new();
        let mut last_close: Option<Instant> = None;
        let mut live = false;
        for event in &events {
            match event {
                SubscriberEvent::Subscribed {
                    at,
                    since,
                    offset,
                    recovered,
                    ..
                } => {
                    live = true;
                    if chain_starts.is_empty() {
                        chain_starts.push(*at);
                    } else if !recovered {
                        losses.push(*at);
                        chain_starts.push(*at);
                    } else if let Some((from, _)) = since
                        && from > offset
                    {
                        report.anomalies.push(format!(
                            "+{}: recovered: true from offset {from}, but the channel is only at offset {offset}",
                            rel(base, *at)
                        ));
                    }
                }
                SubscriberEvent::Message { delivery, verdict } => match verdict {
                    Ok(()) => chain_of_delivery.push((chain_starts.len() - 1, delivery.clone())),
                    Err(why) => report.anomalies.push(format!(
                        "+{}: not delivered, offset {} id {}: {why}",
                        rel(base, delivery.at),
                        delivery.offset,
                        delivery.id
                    )),
                },
                SubscriberEvent::Closed { at, .. } => {
                    live = false;
                    last_close = Some(*at);
                }
            }
        }
        let Some(&first) = chain_starts.first() else {
            report
                .anomalies
                .push("never subscribed: nothing can be checked".into());
            report.timeline = timeline(&events, None);
            return report;
        };
        // A close never recovered from ends the observation, with a loss.
        let end = match (live, last_close) {
            (false, Some(at)) => {
                losses.push(at);
                at.min(end)
            }
            _ => end,
        };
        report.loss_signals = losses.len();
        report.delivered = chain_of_delivery.len();

        // Duplicates and per-publisher order, within each chain.
        let mut seen: HashMap<(usize, &str), Instant> = HashMap::new();
        let mut last_seq: HashMap<(usize, &str), u64> = HashMap::new();
        for (chain, delivery) in &chain_of_delivery {
            if seen.insert((*chain, &delivery.id), delivery.at).is_some() {
                report.duplicates.push(format!(
                    "+{}: id {} (offset {}) delivered again in chain {chain}",
                    rel(base, delivery.at),
                    delivery.id,
                    delivery.offset
                ));
            }
            if let (Some(publisher), Some(seq)) = (&delivery.publisher, delivery.seq) {
                let last = last_seq.entry((*chain, publisher)).or_insert(0);
                if seq <= *last {
                    report.out_of_order.push(format!(
                        "+{}: {publisher} seq {seq} (offset {}) after seq {last} in chain {chain}",
                        rel(base, delivery.at),
                        delivery.offset
                    ));
                }
                *last = (*last).max(seq);
            }
        }

        // Every acknowledged publish on this channel within the observation.
        let delivered_ids: HashMap<&str, usize> = chain_of_delivery
            .iter()
            .map(|(chain, d)| (d.id.as_str(), *chain))
            .collect();
        for record in &self.publishes {
            let Some((acked_at, offset)) = record.acked else {
                continue;
            };
            if record.channel != subscriber.channel()
                || record.sent_at <= first
                || record.sent_at >= end
            {
                continue;
            }
            report.required += 1;
            if delivered_ids.contains_key(record.id.as_str()) {
                continue;
            }
            // Declared lost: a chain that began before the ack ended with a loss signal
            // after the publish was sent.
            let declared = losses
                .iter()
                .enumerate()
                .any(|(j, &lost_at)| record.sent_at < lost_at && chain_starts[j] <= acked_at);
            if declared {
                report.explained += 1;
            } else {
                report.silently_missing.push(format!(
                    "{} seq {} (id {}, acked offset {offset}), sent +{}, acked +{}",
                    record.publisher,
                    record.seq,
                    record.id,
                    rel(base, record.sent_at),
                    rel(base, acked_at)
                ));
            }
        }
        report.timeline = timeline(&events, Some(&self.publishes));
        report
    }
}

/// The outcome of [`Reconciliation::check`] for one subscriber.
#[derive(Debug, Clone)]
pub struct Report {
    /// The subscriber.
    pub subscriber: String,
    /// Acknowledged publishes it had to account for.
    pub required: usize,
    /// Messages a conforming client delivered.
    pub delivered: usize,
    /// Required messages not delivered but covered by a loss signal.
    pub explained: usize,
    /// Loss signals (`recovered: false`, or a close never recovered from).
    pub loss_signals: usize,
    /// Required messages neither delivered nor covered by a loss signal.
    pub silently_missing: Vec<String>,
    /// Messages delivered twice within one chain.
    pub duplicates: Vec<String>,
    /// A publisher's messages delivered out of its sending order within one chain.
    pub out_of_order: Vec<String>,
    /// Wire-level oddities that explain the above (stale offsets after a recovery…).
    pub anomalies: Vec<String>,
    /// A summary of the subscriber's life, for failure messages.
    pub timeline: String,
}

impl Report {
    /// Nothing missing without a signal, no duplicate, no reordering.
    #[must_use]
    pub fn is_clean(&self) -> bool {
        self.silently_missing.is_empty()
            && self.duplicates.is_empty()
            && self.out_of_order.is_empty()
    }

    /// Panics with the whole report unless [`Report::is_clean`].
    ///
    /// # Panics
    /// When the report is not clean.
    pub fn assert_clean(&self) {
        assert!(self.is_clean(), "{self}");
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "subscriber {}: {} required, {} delivered, {} declared lost ({} loss signals), {} SILENTLY MISSING, {} duplicated, {} out of order",
            self.subscriber,
            self.required,
            self.delivered,
            self.explained,
            self.loss_signals,
            self.silently_missing.len(),
            self.duplicates.len(),
            self.out_of_order.len()
        )?;
        let sections = [
            ("silently missing", &self.silently_missing),
            ("duplicates", &self.duplicates),
            ("out of order", &self.out_of_order),
            ("wire anomalies", &self.anomalies),
        ];
        for (title, items) in sections {
            if items.is_empty() {
                continue;
            }
            writeln!(f, "  {title} ({}):", items.len())?;
            for item in items.iter().take(25) {
                writeln!(f, "    {item}")?;
            }
            if items.len() > 25 {
                writeln!(f, "    … and {} more", items.len() - 25)?;
            }
        }
        write!(f, "{}", self.timeline)
    }
}

/// Milliseconds from `base` to `at`, for messages.
fn rel(base: Option<Instant>, at: Instant) -> String {
    let base = base.unwrap_or(at);
    if at >= base {
        format!("{}ms", at.duration_since(base).as_millis())
    } else {
        format!("-{}ms", base.duration_since(at).as_millis())
    }
}

/// The subscriber's life in a few lines: subscriptions, closes, and runs of messages.
fn timeline(events: &[SubscriberEvent], publishes: Option<&[PublishRecord]>) -> String {
    let base = events.first().map(SubscriberEvent::at);
    let mut out = String::from("  timeline (ms since the first event):\n");
    let mut run: Option<(Instant, u64, u64, usize, usize)> = None;
    let flush = |out: &mut String, run: &mut Option<(Instant, u64, u64, usize, usize)>| {
        if let Some((at, first, last, count, dropped)) = run.take() {
            let _ = writeln!(
                out,
                "    +{} {count} messages delivered, offsets {first}..={last}{}",
                rel(base, at),
                if dropped > 0 {
                    format!(" ({dropped} more dropped by a conforming client)")
                } else {
                    String::new()
                }
            );
        }
    };
    for event in events {
        match event {
            SubscriberEvent::Message { delivery, verdict } => {
                let entry =
                    run.get_or_insert((delivery.at, delivery.offset, delivery.offset, 0, 0));
                if verdict.is_ok() {
                    entry.2 = delivery.offset;
                    entry.3 += 1;
                } else {
                    entry.4 += 1;
                }
            }
            SubscriberEvent::Subscribed {
                at,
                since,
                offset,
                epoch,
                recovered,
            } => {
                flush(&mut out, &mut run);
                let _ = writeln!(
                    out,
                    "    +{} subscribed since {since:?}: offset {offset} epoch {epoch} recovered {recovered}",
                    rel(base, *at)
                );
            }
            SubscriberEvent::Closed { at, code, reason } => {
                flush(&mut out, &mut run);
                let _ = writeln!(
                    out,
                    "    +{} closed: code {code:?} ({reason})",
                    rel(base, *at)
                );
            }
        }
    }
    flush(&mut out, &mut run);
    if let Some(publishes) = publishes {
        let acked = publishes.iter().filter(|p| p.acked.is_some()).count();
        let failed = publishes.iter().filter(|p| p.error.is_some()).count();
        let _ = writeln!(
            out,
            "  publishes: {} sent, {acked} acked, {failed} answered with an error",
            publishes.len()
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn message(log: &SubscriberLog, position: &mut ClientPosition, p: &str, seq: u64, offset: u64) {
        let delivery = Delivery::from_frame(json!({
            "type": "t", "channel": "c", "id": format!("{p}-{seq}"),
            "payload": {"p": p, "seq": seq}, "offset": offset
        }));
        let verdict = match position.on_message(offset) {
            Verdict::Deliver => Ok(()),
            other => Err(format!("{other:?}")),
        };
        log.push(SubscriberEvent::Message { delivery, verdict });
    }

    fn subscribed(
        log: &SubscriberLog,
        position: &mut ClientPosition,
        offset: u64,
        epoch: &str,
        recovered: bool,
    ) {
        let since = position.since();
        position.subscribed(offset, epoch, recovered);
        log.push(SubscriberEvent::Subscribed {
            at: Instant::now(),
            since,
            offset,
            epoch: epoch.into(),
            recovered,
        });
    }

    fn publish(log: &PublishLog, p: &str, seq: u64, offset: u64) {
        let id = format!("{p}-{seq}");
        log.sent(p, seq, &id, "c");
        log.acked(&id, offset);
    }

    #[test]
    fn a_missing_message_is_fine_only_when_a_loss_was_declared_after_it() {
        let publishes = PublishLog::new();
        let log = SubscriberLog::new("s", "c");
        let mut position = ClientPosition::default();
        subscribed(&log, &mut position, 0, "e1", false);
        publish(&publishes, "a", 1, 1);
        message(&log, &mut position, "a", 1, 1);
        publish(&publishes, "a", 2, 2);
        // Lost with a signal: closed, then recovered: false in a new epoch.
        log.push(SubscriberEvent::Closed {
            at: Instant::now(),
            code: Some(4008),
            reason: "slow consumer".into(),
        });
        subscribed(&log, &mut position, 5, "e2", false);
        publish(&publishes, "a", 3, 6);
        message(&log, &mut position, "a", 3, 6);
        let report = Reconciliation::new(&[&publishes]).check(&log);
        assert!(report.is_clean(), "{report}");
        assert_eq!((report.required, report.explained), (3, 1));

        // Lost without a signal: recovered: true, then a stale offset a client drops.
        log.push(SubscriberEvent::Closed {
            at: Instant::now(),
            code: Some(4008),
            reason: "slow consumer".into(),
        });
        publish(&publishes, "a", 4, 7);
        subscribed(&log, &mut position, 7, "e2", true);
        message(&log, &mut position, "a", 4, 6);
        let report = Reconciliation::new(&[&publishes]).check(&log);
        assert!(!report.is_clean());
        assert_eq!(report.silently_missing.len(), 1, "{report}");
        assert!(report.silently_missing[0].contains("a seq 4"), "{report}");
    }

    #[test]
    fn duplicates_and_reordering_within_a_chain_are_reported() {
        let publishes = PublishLog::new();
        let log = SubscriberLog::new("s", "c");
        let mut position = ClientPosition::default();
        subscribed(&log, &mut position, 0, "e", false);
        publish(&publishes, "a", 1, 1);
        publish(&publishes, "a", 2, 2);
        message(&log, &mut position, "a", 2, 1);
        message(&log, &mut position, "a", 1, 2);
        message(&log, &mut position, "a", 1, 3);
        let report = Reconciliation::new(&[&publishes]).check(&log);
        assert_eq!(report.out_of_order.len(), 2, "{report}");
        assert_eq!(report.duplicates.len(), 1, "{report}");
    }

    #[test]
    fn a_conforming_client_drops_stale_offsets_and_sees_gaps() {
        let mut position = ClientPosition::default();
        position.subscribed(4, "e", false);
        assert_eq!(position.on_message(5), Verdict::Deliver);
        assert_eq!(position.on_message(5), Verdict::Stale { last: 5 });
        assert_eq!(position.on_message(7), Verdict::Gap { expected: 6 });
        position.subscribed(9, "e2", true);
        assert_eq!(position.since(), Some((5, "e2".into())));
        position.subscribed(9, "e3", false);
        assert_eq!(position.since(), Some((9, "e3".into())));
    }
}
