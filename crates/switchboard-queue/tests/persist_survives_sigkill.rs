//! A child process pushing into a file-backed queue is killed with SIGKILL mid-stream;
//! reopening the file finds every entry whose push returned `Ok`, in order, once.
#![cfg(feature = "persist")]

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::time::Instant;

use switchboard_queue::{DeliveryConfig, DeliveryQueue, Priority, StoreConfig, SyncPolicy};

/// Set in the child's environment to the queue file's path.
const CHILD_ENV: &str = "SWITCHBOARD_QUEUE_SIGKILL_CHILD";
/// Pushes the parent waits to see acknowledged before killing the child.
const KILL_AFTER: usize = 300;
/// The child stops by itself after this many, should the parent never kill it.
const CHILD_LIMIT: u64 = 1_000_000;

fn store() -> StoreConfig {
    StoreConfig::default().with_sync(SyncPolicy::EveryWrite)
}

/// The child's body: a no-op in a normal test run.
#[test]
fn sigkill_child() {
    let Some(path) = std::env::var_os(CHILD_ENV) else {
        return;
    };
    let (mut q, _) = DeliveryQueue::<u64>::open(path, DeliveryConfig::default(), store())
        .expect("child opens the queue");
    let mut stdout = std::io::stdout().lock();
    for n in 0..CHILD_LIMIT {
        // Mixed priorities: the order to check is by id, within and across priorities.
        let priority = Priority::ALL[(n % 3) as usize];
        q.push(n, priority).expect("push");
        writeln!(stdout, "acked {n}").expect("stdout");
        stdout.flush().expect("stdout");
    }
}

#[test]
fn every_push_that_returned_ok_survives_a_sigkill_in_order_once() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("queue.log");
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "sigkill_child",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_ENV, &path)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();

    let mut acked = Vec::new();
    let lines = BufReader::new(child.stdout.take().unwrap()).lines();
    for line in lines {
        // libtest prints "test sigkill_child ... " without a newline before the first one.
        if let Some((_, n)) = line.unwrap().split_once("acked ") {
            acked.push(n.parse::<u64>().unwrap());
            if acked.len() == KILL_AFTER {
                child.kill().unwrap(); // SIGKILL on Unix
                break;
            }
        }
    }
    child.wait().unwrap();
    assert_eq!(
        acked.len(),
        KILL_AFTER,
        "the child died before it was killed"
    );

    let config = DeliveryConfig::default().with_order(switchboard_queue::PopOrder::Fifo);
    let (mut q, _) = DeliveryQueue::<u64>::open(&path, config, store()).unwrap();
    let now = Instant::now();
    let recovered: Vec<u64> = std::iter::from_fn(|| q.pop(now).unwrap())
        .map(|lease| lease.item)
        .collect();

    // In order and once: the pushes were 0, 1, 2, ...; at most the pushes completed after
    // the last line the parent read (before the kill landed) may follow.
    let expected: Vec<u64> = (0..recovered.len() as u64).collect();
    assert_eq!(recovered, expected);
    assert!(recovered.len() >= acked.len(), "lost acknowledged pushes");
    assert_eq!(&recovered[..acked.len()], &acked[..]);
}
