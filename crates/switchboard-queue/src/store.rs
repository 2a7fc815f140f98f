//! The queue file: an append-only log of checksummed records, its sync policy, compaction
//! and recovery. Works on bytes; `journal.rs` turns queue operations into records.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::num::NonZeroUsize;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::entry_view::EntryView;
use crate::{Priority, QueueError};

/// The first bytes of every queue file: a name and the format version.
const MAGIC: &[u8; 8] = b"SBQLOG\x00\x01";
/// Record framing: body length (u32 LE), the length XOR [`LEN_CHECK`] (u32 LE), CRC-32 of
/// the body (u32 LE). The length check tells a damaged length (corruption) from a record cut
/// short at the end of the file (a torn write).
const FRAME: usize = 12;
const LEN_CHECK: u32 = 0x5351_4C47;

const TAG_PUSH: u8 = 1;
const TAG_REMOVE: u8 = 2;
const TAG_FAIL: u8 = 3;
const NO_KEY: u32 = u32::MAX;

/// When the queue file is flushed to stable storage with `fsync`.
///
/// Every write reaches the operating system before the operation returns, so a crash of the
/// process alone (panic, `SIGKILL`, OOM kill) loses nothing under either policy. The policy
/// only matters when the machine itself stops (power loss, kernel panic).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum SyncPolicy {
    /// `fsync` after every write, before the operation returns: a push that returned `Ok`
    /// survives a power loss. Costs one disk flush per operation (from about 50 µs on NVMe to
    /// several ms on network or spinning disks).
    #[default]
    EveryWrite,
    /// `fsync` on a write when at least this long has passed since the last one, on
    /// [`DeliveryQueue::sync`](crate::DeliveryQueue::sync), and on drop. A power loss may
    /// lose the writes since the last flush: up to the interval's worth, or more if no write
    /// comes along to trigger the flush. Many times the throughput of `EveryWrite` on slow
    /// disks.
    Interval(Duration),
}

/// Settings of a file-backed [`DeliveryQueue`](crate::DeliveryQueue).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct StoreConfig {
    /// When to `fsync`. Default [`SyncPolicy::EveryWrite`].
    pub sync: SyncPolicy,
    /// The log is rewritten with only the live entries once it holds at least this many
    /// records and more than half of them are obsolete (acked, evicted, superseded).
    /// Default 4096.
    pub compact_after: NonZeroUsize,
}

impl Default for StoreConfig {
    fn default() -> Self {
        Self {
            sync: SyncPolicy::EveryWrite,
            compact_after: NonZeroUsize::new(4096).expect("4096 is not zero"),
        }
    }
}

impl StoreConfig {
    /// Sets when to `fsync`.
    #[must_use]
    pub fn with_sync(mut self, sync: SyncPolicy) -> Self {
        self.sync = sync;
        self
    }

    /// Sets how many records the log may hold before an automatic compaction is considered.
    #[must_use]
    pub fn with_compact_after(mut self, records: NonZeroUsize) -> Self {
        self.compact_after = records;
        self
    }
}

/// What opening a queue file found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct Recovery {
    /// Entries restored, dead letters included.
    pub entries: usize,
    /// Of those, dead letters waiting to be taken.
    pub dead_letters: usize,
    /// Records read from the log.
    pub records: usize,
    /// Bytes of a partial record at the end of the file (a write cut short by a crash),
    /// removed. Such a record belonged to an operation that never returned.
    pub truncated_bytes: u64,
}

/// One entry as the log describes it, its item still encoded.
#[derive(Debug)]
pub(crate) struct StoredEntry {
    pub(crate) offset: u64,
    pub(crate) priority: Priority,
    pub(crate) failures: u32,
    pub(crate) dead: bool,
    pub(crate) key: Option<Box<str>>,
    pub(crate) item: Vec<u8>,
}

/// Serializes an item into the end of a buffer.
pub(crate) type Encode<T> = fn(&T, &mut Vec<u8>) -> Result<(), QueueError>;

/// Builds records into one buffer so an operation is one `write`.
#[derive(Default)]
pub(crate) struct Batch {
    buf: Vec<u8>,
    records: usize,
}

impl Batch {
    fn clear(&mut self) {
        self.buf.clear();
        self.records = 0;
    }

    fn record(
        &mut self,
        body: impl FnOnce(&mut Vec<u8>) -> Result<(), QueueError>,
    ) -> Result<(), QueueError> {
        let start = self.buf.len();
        self.buf.extend_from_slice(&[0; FRAME]);
        if let Err(e) = body(&mut self.buf) {
            self.buf.truncate(start);
            return Err(e);
        }
        let body = &self.buf[start + FRAME..];
        let len = u32::try_from(body.len()).map_err(|_| {
            QueueError::Encode("an entry larger than 4 GiB cannot be stored".into())
        })?;
        let crc = crc32fast::hash(body);
        self.buf[start..start + 4].copy_from_slice(&len.to_le_bytes());
        self.buf[start + 4..start + 8].copy_from_slice(&(len ^ LEN_CHECK).to_le_bytes());
        self.buf[start + 8..start + FRAME].copy_from_slice(&crc.to_le_bytes());
        self.records += 1;
        Ok(())
    }

    pub(crate) fn push<T>(
        &mut self,
        entry: &EntryView<'_, T>,
        encode: Encode<T>,
    ) -> Result<(), QueueError> {
        self.record(|buf| {
            buf.push(TAG_PUSH);
            buf.extend_from_slice(&entry.id.to_le_bytes());
            buf.push(entry.priority.index() as u8);
            buf.extend_from_slice(&entry.failures.to_le_bytes());
            buf.push(u8::from(entry.dead));
            match entry.key {
                Some(key) => {
                    let len = u32::try_from(key.len())
                        .ok()
                        .filter(|&len| len != NO_KEY)
                        .ok_or_else(|| QueueError::Encode("key too long".into()))?;
                    buf.extend_from_slice(&len.to_le_bytes());
                    buf.extend_from_slice(key.as_bytes());
                }
                None => buf.extend_from_slice(&NO_KEY.to_le_bytes()),
            }
            encode(entry.item, buf)
        })
    }

    pub(crate) fn remove(&mut self, id: u64) {
        let _infallible = self.record(|buf| {
            buf.push(TAG_REMOVE);
            buf.extend_from_slice(&id.to_le_bytes());
            Ok(())
        });
    }

    pub(crate) fn fail(&mut self, id: u64, failures: u32, dead: bool) {
        let _infallible = self.record(|buf| {
            buf.push(TAG_FAIL);
            buf.extend_from_slice(&id.to_le_bytes());
            buf.extend_from_slice(&failures.to_le_bytes());
            buf.push(u8::from(dead));
            Ok(())
        });
    }
}

/// The open queue file.
pub(crate) struct FileLog {
    file: File,
    path: PathBuf,
    len: u64,
    records: usize,
    config: StoreConfig,
    last_sync: Instant,
    dirty: bool,
    poisoned: bool,
    batch: Batch,
}

impl std::fmt::Debug for FileLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FileLog")
            .field("path", &self.path)
            .field("len", &self.len)
            .field("records", &self.records)
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl FileLog {
    /// Opens or creates the file, repairs a torn tail, and returns what it holds, by id.
    pub(crate) fn open(
        path: &Path,
        config: StoreConfig,
    ) -> Result<(Self, BTreeMap<u64, StoredEntry>, u64, Recovery), QueueError> {
        let mut file = OpenOptions::new()
            .read(true)
            .append(true)
            .create(true)
            .open(path)?;
        let mut data = Vec::new();
        file.read_to_end(&mut data)?;
        let corrupt = |offset: usize, reason: &str| QueueError::Corrupt {
            path: path.to_owned(),
            offset: offset as u64,
            reason: reason.to_owned(),
        };

        let mut recovery = Recovery::default();
        let mut entries = BTreeMap::new();
        let mut next_id = 0;
        if data.len() < MAGIC.len() {
            if !MAGIC.starts_with(&data) {
                return Err(corrupt(0, "not a switchboard queue file"));
            }
            // New, or its creation was cut short: start it over.
            recovery.truncated_bytes = data.len() as u64;
            file.set_len(0)?;
            file.write_all(MAGIC)?;
            file.sync_all()?;
            sync_parent(path)?;
            data.clear();
            data.extend_from_slice(MAGIC);
        } else if &data[..MAGIC.len()] != MAGIC {
            return Err(corrupt(0, "not a switchboard queue file (bad magic)"));
        }

        let mut pos = MAGIC.len();
        while pos < data.len() {
            let rest = &data[pos..];
            if rest.len() < FRAME {
                break;
            }
            let word =
                |at: usize| u32::from_le_bytes(rest[at..at + 4].try_into().expect("4 bytes"));
            let (len, check, crc) = (word(0), word(4), word(8));
            if len ^ LEN_CHECK != check {
                // A file extended by a write that never landed reads as zeros.
                if rest.iter().all(|&b| b == 0) {
                    break;
                }
                return Err(corrupt(pos, "damaged record length"));
            }
            let len = len as usize;
            let Some(body) = rest.get(FRAME..FRAME + len) else {
                break;
            };
            let end = pos + FRAME + len;
            if crc32fast::hash(body) != crc {
                if end == data.len() {
                    break;
                }
                return Err(corrupt(pos, "checksum mismatch"));
            }
            apply(body, pos as u64, &mut entries, &mut next_id)
                .map_err(|reason| corrupt(pos, reason))?;
            recovery.records += 1;
            pos = end;
        }
        if pos < data.len() {
            recovery.truncated_bytes += (data.len() - pos) as u64;
            file.set_len(pos as u64)?;
            file.sync_all()?;
        }
        recovery.entries = entries.len();
        recovery.dead_letters = entries.values().filter(|e| e.dead).count();
        let log = Self {
            file,
            path: path.to_owned(),
            len: pos as u64,
            records: recovery.records,
            config,
            last_sync: Instant::now(),
            dirty: false,
            poisoned: false,
            batch: Batch::default(),
        };
        Ok((log, entries, next_id, recovery))
    }

    /// Appends the records `build` adds, as one write, then syncs per the policy. On error
    /// the file is as before (or the log is poisoned if that cannot be ensured).
    pub(crate) fn append(
        &mut self,
        build: impl FnOnce(&mut Batch) -> Result<(), QueueError>,
    ) -> Result<(), QueueError> {
        if self.poisoned {
            return Err(QueueError::Poisoned);
        }
        let mut batch = std::mem::take(&mut self.batch);
        batch.clear();
        let result = build(&mut batch).and_then(|()| self.write(&batch));
        self.batch = batch;
        result
    }

    fn write(&mut self, batch: &Batch) -> Result<(), QueueError> {
        if batch.records == 0 {
            return Ok(());
        }
        if let Err(e) = self.file.write_all(&batch.buf) {
            // Undo a partial write so the next record does not follow garbage.
            if self.file.set_len(self.len).is_err() {
                self.poisoned = true;
            }
            return Err(e.into());
        }
        self.len += batch.buf.len() as u64;
        self.records += batch.records;
        self.dirty = true;
        let due = match self.config.sync {
            SyncPolicy::EveryWrite => true,
            SyncPolicy::Interval(interval) => self.last_sync.elapsed() >= interval,
        };
        if due { self.sync() } else { Ok(()) }
    }

    /// Flushes written records to stable storage. A failed `fsync` poisons the log: after
    /// one, the kernel may have dropped the data, and only a reopen tells what survived.
    pub(crate) fn sync(&mut self) -> Result<(), QueueError> {
        if self.poisoned {
            return Err(QueueError::Poisoned);
        }
        if !self.dirty {
            return Ok(());
        }
        if let Err(e) = self.file.sync_data() {
            self.poisoned = true;
            return Err(e.into());
        }
        self.dirty = false;
        self.last_sync = Instant::now();
        Ok(())
    }

    /// The file's length in bytes.
    pub(crate) fn len(&self) -> u64 {
        self.len
    }

    /// Whether enough of the log is obsolete to be worth rewriting.
    pub(crate) fn wants_compaction(&self, live: usize) -> bool {
        self.records >= self.config.compact_after.get() && self.records > 2 * live
    }

    /// Rewrites the log with one record per live entry, then atomically replaces the file.
    pub(crate) fn compact<'a, T: 'a>(
        &mut self,
        entries: impl Iterator<Item = EntryView<'a, T>>,
        encode: Encode<T>,
    ) -> Result<(), QueueError> {
        if self.poisoned {
            return Err(QueueError::Poisoned);
        }
        let mut batch = Batch::default();
        batch.buf.extend_from_slice(MAGIC);
        for entry in entries {
            batch.push(&entry, encode)?;
        }
        let mut tmp_path = OsString::from(self.path.as_os_str());
        tmp_path.push(".compact");
        let tmp_path = PathBuf::from(tmp_path);
        let written = (|| -> std::io::Result<()> {
            let mut tmp = File::create(&tmp_path)?;
            tmp.write_all(&batch.buf)?;
            tmp.sync_all()?;
            std::fs::rename(&tmp_path, &self.path)
        })();
        if let Err(e) = written {
            // The old log is untouched and still valid.
            let _ignored = std::fs::remove_file(&tmp_path);
            return Err(e.into());
        }
        // The rename happened; from here on the old handle points at an unlinked file.
        let reopened = sync_parent(&self.path)
            .and_then(|()| OpenOptions::new().read(true).append(true).open(&self.path));
        match reopened {
            Ok(file) => {
                self.file = file;
                self.len = batch.buf.len() as u64;
                self.records = batch.records;
                self.dirty = false;
                self.last_sync = Instant::now();
                Ok(())
            }
            Err(e) => {
                self.poisoned = true;
                Err(e.into())
            }
        }
    }
}

impl Drop for FileLog {
    fn drop(&mut self) {
        if self.dirty && !self.poisoned {
            // Best effort: nobody is left to report a failure to.
            let _ignored = self.file.sync_data();
        }
    }
}

/// Makes a file's creation or rename durable by syncing its directory.
fn sync_parent(path: &Path) -> std::io::Result<()> {
    let parent = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    File::open(parent)?.sync_all()
}

/// Applies one record to the entries being rebuilt.
fn apply(
    body: &[u8],
    offset: u64,
    entries: &mut BTreeMap<u64, StoredEntry>,
    next_id: &mut u64,
) -> Result<(), &'static str> {
    let mut r = Reader(body);
    match r.u8()? {
        TAG_PUSH => {
            let id = r.u64()?;
            let priority = Priority::from_index(usize::from(r.u8()?)).ok_or("unknown priority")?;
            let failures = r.u32()?;
            let dead = r.u8()? != 0;
            let key = match r.u32()? {
                NO_KEY => None,
                len => Some(
                    std::str::from_utf8(r.take(len as usize)?)
                        .map_err(|_| "key is not UTF-8")?
                        .into(),
                ),
            };
            let item = r.0.to_vec();
            let entry = StoredEntry {
                offset,
                priority,
                failures,
                dead,
                key,
                item,
            };
            if entries.insert(id, entry).is_some() {
                return Err("an id pushed twice");
            }
            *next_id = (*next_id).max(id + 1);
        }
        TAG_REMOVE => {
            let id = r.u64()?;
            entries.remove(&id).ok_or("removal of an unknown id")?;
        }
        TAG_FAIL => {
            let id = r.u64()?;
            let failures = r.u32()?;
            let dead = r.u8()? != 0;
            let entry = entries.get_mut(&id).ok_or("failure of an unknown id")?;
            entry.failures = failures;
            entry.dead = dead;
        }
        _ => return Err("unknown record type"),
    }
    Ok(())
}

struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], &'static str> {
        if self.0.len() < n {
            return Err("record too short");
        }
        let (head, tail) = self.0.split_at(n);
        self.0 = tail;
        Ok(head)
    }

    fn u8(&mut self) -> Result<u8, &'static str> {
        Ok(self.take(1)?[0])
    }

    fn u32(&mut self) -> Result<u32, &'static str> {
        Ok(u32::from_le_bytes(
            self.take(4)?.try_into().expect("4 bytes"),
        ))
    }

    fn u64(&mut self) -> Result<u64, &'static str> {
        Ok(u64::from_le_bytes(
            self.take(8)?.try_into().expect("8 bytes"),
        ))
    }
}
