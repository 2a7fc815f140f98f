//! Turns delivery-queue operations into log records when the queue has a file store, and
//! into nothing when it has none (or the `persist` feature is off).

#[cfg(feature = "persist")]
pub(crate) use with_store::Journal;
#[cfg(not(feature = "persist"))]
pub(crate) use without_store::Journal;

#[cfg(feature = "persist")]
mod with_store {
    use crate::QueueError;
    use crate::entry_view::EntryView;
    use crate::store::{Encode, FileLog};

    pub(crate) struct Journal<T> {
        store: Option<(FileLog, Encode<T>)>,
    }

    impl<T> Journal<T> {
        pub(crate) fn none() -> Self {
            Self { store: None }
        }

        pub(crate) fn file(log: FileLog, encode: Encode<T>) -> Self {
            Self {
                store: Some((log, encode)),
            }
        }

        pub(crate) fn is_persistent(&self) -> bool {
            self.store.is_some()
        }

        pub(crate) fn log(&self) -> Option<&FileLog> {
            self.store.as_ref().map(|(log, _)| log)
        }

        pub(crate) fn push(
            &mut self,
            entry: &EntryView<'_, T>,
            evicted: &[u64],
        ) -> Result<(), QueueError> {
            let Some((log, encode)) = &mut self.store else {
                return Ok(());
            };
            let encode = *encode;
            // The new entry first: if a crash cuts this write short, recovery keeps the entry
            // and possibly some evictees, never loses both.
            log.append(|batch| {
                batch.push(entry, encode)?;
                for &id in evicted {
                    batch.remove(id);
                }
                Ok(())
            })
        }

        pub(crate) fn remove(
            &mut self,
            ids: impl IntoIterator<Item = u64>,
        ) -> Result<(), QueueError> {
            let Some((log, _)) = &mut self.store else {
                return Ok(());
            };
            log.append(|batch| {
                for id in ids {
                    batch.remove(id);
                }
                Ok(())
            })
        }

        pub(crate) fn fail(
            &mut self,
            id: u64,
            failures: u32,
            dead: bool,
        ) -> Result<(), QueueError> {
            let Some((log, _)) = &mut self.store else {
                return Ok(());
            };
            log.append(|batch| {
                batch.fail(id, failures, dead);
                Ok(())
            })
        }

        pub(crate) fn sync(&mut self) -> Result<(), QueueError> {
            match &mut self.store {
                Some((log, _)) => log.sync(),
                None => Ok(()),
            }
        }

        pub(crate) fn wants_compaction(&self, live: usize) -> bool {
            self.store
                .as_ref()
                .is_some_and(|(log, _)| log.wants_compaction(live))
        }

        pub(crate) fn compact<'a>(
            &mut self,
            entries: impl Iterator<Item = EntryView<'a, T>>,
        ) -> Result<(), QueueError>
        where
            T: 'a,
        {
            match &mut self.store {
                Some((log, encode)) => {
                    let encode = *encode;
                    log.compact(entries, encode)
                }
                None => Ok(()),
            }
        }
    }
}

#[cfg(not(feature = "persist"))]
mod without_store {
    use crate::QueueError;
    use crate::entry_view::EntryView;

    pub(crate) struct Journal<T>(std::marker::PhantomData<fn(&T)>);

    impl<T> Journal<T> {
        pub(crate) fn none() -> Self {
            Self(std::marker::PhantomData)
        }

        pub(crate) fn is_persistent(&self) -> bool {
            false
        }

        pub(crate) fn push(
            &mut self,
            _entry: &EntryView<'_, T>,
            _evicted: &[u64],
        ) -> Result<(), QueueError> {
            Ok(())
        }

        pub(crate) fn remove(
            &mut self,
            _ids: impl IntoIterator<Item = u64>,
        ) -> Result<(), QueueError> {
            Ok(())
        }

        pub(crate) fn fail(
            &mut self,
            _id: u64,
            _failures: u32,
            _dead: bool,
        ) -> Result<(), QueueError> {
            Ok(())
        }

        pub(crate) fn wants_compaction(&self, _live: usize) -> bool {
            false
        }

        pub(crate) fn compact<'a>(
            &mut self,
            _entries: impl Iterator<Item = EntryView<'a, T>>,
        ) -> Result<(), QueueError>
        where
            T: 'a,
        {
            Ok(())
        }
    }
}
