//! A live delivery-queue entry as the journal and the file store see it: the one shape both
//! write records from, so neither needs the other's types.

/// A live entry, as the journal sees it.
// Without a store nothing reads it; building it anyway keeps one code path.
#[cfg_attr(not(feature = "persist"), allow(dead_code))]
pub(crate) struct EntryView<'a, T> {
    pub(crate) id: u64,
    pub(crate) priority: crate::Priority,
    pub(crate) failures: u32,
    pub(crate) dead: bool,
    pub(crate) key: Option<&'a str>,
    pub(crate) item: &'a T,
}
