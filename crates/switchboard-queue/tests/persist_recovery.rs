//! A file-backed delivery queue comes back after a reopen exactly as it was left, repairs a
//! torn tail, and reports real damage as an error.
#![cfg(feature = "persist")]

use std::fs::OpenOptions;
use std::io::Write;
use std::num::NonZeroUsize;
use std::path::Path;
use std::time::{Duration, Instant};

use switchboard_queue::{
    DeliveryConfig, DeliveryQueue, Priority, QueueError, StoreConfig, SyncPolicy,
};

type Queue = DeliveryQueue<String>;

fn open(path: &Path) -> (Queue, switchboard_queue::Recovery) {
    DeliveryQueue::open(path, DeliveryConfig::default(), StoreConfig::default()).unwrap()
}

fn drain(q: &mut Queue) -> Vec<(String, u32)> {
    let now = Instant::now();
    let mut out = Vec::new();
    while let Some(lease) = q.pop(now).unwrap() {
        q.ack(lease.id).unwrap();
        out.push((lease.item, lease.attempt));
    }
    out
}

#[test]
fn a_new_file_opens_empty() {
    let dir = tempfile::tempdir().unwrap();
    let (q, recovery) = open(&dir.path().join("queue.log"));
    assert!(q.is_empty());
    assert_eq!((recovery.entries, recovery.truncated_bytes), (0, 0));
}

#[test]
fn reopening_restores_entries_in_order_with_their_attempts() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("queue.log");
    let t0 = Instant::now();
    {
        let (mut q, _) = open(&path);
        q.push("normal-1".into(), Priority::Normal).unwrap();
        q.push("high-1".into(), Priority::High).unwrap();
        q.push("normal-2".into(), Priority::Normal).unwrap();
        let lease = q.pop(t0).unwrap().unwrap();
        q.nack(lease.id, t0).unwrap();
        // Leased at the crash: not a failed attempt.
        q.pop(t0).unwrap().unwrap();
    }
    let (mut q, recovery) = open(&path);
    assert_eq!(recovery.entries, 3);
    assert_eq!(
        drain(&mut q),
        [
            ("high-1".into(), 2),
            ("normal-1".into(), 1),
            ("normal-2".into(), 1)
        ]
    );
}

#[test]
fn acked_and_evicted_entries_stay_gone_after_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("queue.log");
    let config = DeliveryConfig::default().with_capacity(NonZeroUsize::new(2).unwrap());
    {
        let (mut q, _) = Queue::open(&path, config, StoreConfig::default()).unwrap();
        q.push("low".into(), Priority::Low).unwrap();
        let acked = q.push("normal".into(), Priority::Normal).unwrap();
        let pushed = q.push("high".into(), Priority::High).unwrap();
        assert_eq!(pushed.evicted.len(), 1);
        q.ack(acked.id).unwrap();
    }
    let (mut q, _) = Queue::open(&path, config, StoreConfig::default()).unwrap();
    assert_eq!(drain(&mut q), [("high".into(), 1)]);
}

#[test]
fn dedupe_keys_and_dead_letters_survive_a_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("queue.log");
    let config = DeliveryConfig::default()
        .with_max_attempts(1.try_into().unwrap())
        .with_seed(Some(1));
    {
        let (mut q, _) = Queue::open(&path, config, StoreConfig::default()).unwrap();
        q.push_keyed("m-1", "kept".into(), Priority::Normal)
            .unwrap();
        q.push_keyed("m-2", "doomed".into(), Priority::High)
            .unwrap();
        let t0 = Instant::now();
        let lease = q.pop(t0).unwrap().unwrap();
        q.nack(lease.id, t0).unwrap();
        assert_eq!(q.dead_letters_len(), 1);
    }
    let (mut q, recovery) = Queue::open(&path, config, StoreConfig::default()).unwrap();
    assert_eq!((recovery.entries, recovery.dead_letters), (2, 1));
    assert!(
        q.push_keyed("m-1", "again".into(), Priority::Normal)
            .is_err()
    );
    let dead = q.take_dead_letters().unwrap();
    assert_eq!(
        (dead[0].item.as_str(), dead[0].key.as_deref()),
        ("doomed", Some("m-2"))
    );
    drop(q);

    let (q, recovery) = Queue::open(&path, config, StoreConfig::default()).unwrap();
    assert_eq!((recovery.entries, recovery.dead_letters), (1, 0));
    assert_eq!(q.len(), 1);
}

#[test]
fn ids_keep_increasing_across_a_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("queue.log");
    let first = open(&path).0.push("a".into(), Priority::Normal).unwrap().id;
    let second = open(&path).0.push("b".into(), Priority::Normal).unwrap().id;
    assert!(second > first);
}

#[test]
fn a_torn_tail_is_truncated_and_reported() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("queue.log");
    {
        let (mut q, _) = open(&path);
        q.push("whole".into(), Priority::Normal).unwrap();
        q.push("torn".into(), Priority::Normal).unwrap();
    }
    let len = std::fs::metadata(&path).unwrap().len();
    OpenOptions::new()
        .write(true)
        .open(&path)
        .unwrap()
        .set_len(len - 3)
        .unwrap();

    let (mut q, recovery) = open(&path);
    assert!(recovery.truncated_bytes > 0);
    assert_eq!(drain(&mut q), [("whole".into(), 1)]);
    drop(q);
    let (_, recovery) = open(&path);
    assert_eq!(recovery.truncated_bytes, 0, "the repair was written back");
}

#[test]
fn a_final_record_with_a_bad_checksum_is_a_torn_tail() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("queue.log");
    let one_record = {
        let (mut q, _) = open(&path);
        q.push("whole".into(), Priority::Normal).unwrap();
        let len = q.file_len().unwrap();
        q.push("garbled".into(), Priority::Normal).unwrap();
        len
    };
    let mut bytes = std::fs::read(&path).unwrap();
    let total = bytes.len() as u64;
    *bytes.last_mut().unwrap() ^= 0xff;
    std::fs::write(&path, &bytes).unwrap();

    let (q, recovery) = open(&path);
    assert_eq!((q.len(), recovery.truncated_bytes), (1, total - one_record));
}

#[test]
fn a_tail_of_zeros_from_an_unfinished_write_is_a_torn_tail() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("queue.log");
    open(&path)
        .0
        .push("whole".into(), Priority::Normal)
        .unwrap();
    let mut file = OpenOptions::new().append(true).open(&path).unwrap();
    file.write_all(&[0; 40]).unwrap();

    let (q, recovery) = open(&path);
    assert_eq!((q.len(), recovery.truncated_bytes), (1, 40));
}

#[test]
fn a_damaged_length_is_reported_as_corrupt_rather_than_taken_for_a_torn_tail() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("queue.log");
    {
        let (mut q, _) = open(&path);
        q.push("first".into(), Priority::Normal).unwrap();
        q.push("second".into(), Priority::Normal).unwrap();
    }
    let mut bytes = std::fs::read(&path).unwrap();
    bytes[8 + 1] = 0x7f; // the first record's length now points far past the end
    std::fs::write(&path, &bytes).unwrap();

    let err = Queue::open(&path, DeliveryConfig::default(), StoreConfig::default()).unwrap_err();
    assert!(
        matches!(err, QueueError::Corrupt { offset: 8, .. }),
        "{err}"
    );
}

#[test]
fn damage_before_the_tail_is_reported_as_corrupt_not_repaired() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("queue.log");
    {
        let (mut q, _) = open(&path);
        q.push("first".into(), Priority::Normal).unwrap();
        q.push("second".into(), Priority::Normal).unwrap();
    }
    let mut bytes = std::fs::read(&path).unwrap();
    bytes[8 + 12 + 2] ^= 0xff; // inside the first record's body
    std::fs::write(&path, &bytes).unwrap();

    let err = Queue::open(&path, DeliveryConfig::default(), StoreConfig::default()).unwrap_err();
    assert!(
        matches!(err, QueueError::Corrupt { offset: 8, .. }),
        "{err}"
    );
    assert!(!err.is_retryable());
    assert_eq!(
        std::fs::read(&path).unwrap(),
        bytes,
        "left as found, for inspection"
    );
}

#[test]
fn a_file_that_is_not_a_queue_file_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("notes.txt");
    std::fs::write(&path, "shopping list: eggs").unwrap();
    let err = Queue::open(&path, DeliveryConfig::default(), StoreConfig::default()).unwrap_err();
    assert!(
        matches!(err, QueueError::Corrupt { offset: 0, .. }),
        "{err}"
    );
    assert_eq!(
        std::fs::read_to_string(&path).unwrap(),
        "shopping list: eggs"
    );
}

#[test]
fn an_entry_of_another_item_type_is_a_decode_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("queue.log");
    open(&path).0.push("text".into(), Priority::Normal).unwrap();
    let err = DeliveryQueue::<u64>::open(&path, DeliveryConfig::default(), StoreConfig::default())
        .unwrap_err();
    assert!(matches!(err, QueueError::Decode { .. }), "{err}");
}

#[test]
fn compaction_keeps_the_live_entries_and_shrinks_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("queue.log");
    let store = StoreConfig::default().with_compact_after(NonZeroUsize::new(64).unwrap());
    let t0 = Instant::now();
    {
        let (mut q, _) = Queue::open(&path, DeliveryConfig::default(), store).unwrap();
        q.push_keyed("keep", "survivor".into(), Priority::Low)
            .unwrap();
        for i in 0..1000 {
            q.push(format!("transient-{i}"), Priority::High).unwrap();
            let lease = q.pop(t0).unwrap().unwrap();
            q.ack(lease.id).unwrap();
        }
        assert!(q.file_len().unwrap() < 1000, "compacted automatically");
        q.compact().unwrap();
    }
    let (mut q, recovery) = Queue::open(&path, DeliveryConfig::default(), store).unwrap();
    assert_eq!(recovery.records, 1);
    assert!(q.push_keyed("keep", "dup".into(), Priority::Low).is_err());
    assert_eq!(drain(&mut q), [("survivor".into(), 1)]);
}

#[test]
fn clear_leaves_an_empty_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("queue.log");
    {
        let (mut q, _) = open(&path);
        q.push("a".into(), Priority::Normal).unwrap();
        assert_eq!(q.clear().unwrap(), 1);
        assert_eq!(q.file_len(), Some(8));
    }
    assert!(open(&path).0.is_empty());
}

#[test]
fn the_interval_policy_keeps_entries_across_a_reopen_too() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("queue.log");
    let store = StoreConfig::default().with_sync(SyncPolicy::Interval(Duration::from_secs(60)));
    {
        let (mut q, _) = Queue::open(&path, DeliveryConfig::default(), store).unwrap();
        q.push("a".into(), Priority::Normal).unwrap();
        q.sync().unwrap();
        q.push("b".into(), Priority::Normal).unwrap();
    }
    let (mut q, _) = Queue::open(&path, DeliveryConfig::default(), store).unwrap();
    assert_eq!(drain(&mut q), [("a".into(), 1), ("b".into(), 1)]);
}

#[test]
fn an_in_memory_queue_has_no_file() {
    let mut q: Queue = DeliveryQueue::default();
    assert_eq!(q.file_len(), None);
    q.compact().unwrap();
    q.sync().unwrap();
}
