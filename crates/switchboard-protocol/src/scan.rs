//! One pass over a client frame's top-level object: what serde's derived visitor would find,
//! without its machinery, for the frames clients actually send.
//!
//! The scan is conservative: it answers only for frames it can vouch for, and `None` for
//! anything unusual (a key with an escape, a repeated known key, a control character, a
//! value nested deeper than allowed, invalid JSON). The caller then decodes with serde,
//! which gives the exact error. So for every frame the scan accepts, serde accepts it too
//! and finds the same values; a test in `client.rs` checks that over generated frames.

use serde::Deserialize;
use serde_json::value::RawValue;

use crate::client::{RawFrame, nesting_exceeds};
use crate::json::{self, skip_whitespace};

/// Values deeper than this are left to serde, whose own recursion limit (128) then decides,
/// as it does for the whole frame.
const SCAN_DEPTH: usize = 100;

/// The fields of `text` when it is a JSON object the scan can vouch for, nested no deeper
/// than `max_depth` (the object itself included).
pub(crate) fn frame(text: &str, max_depth: usize) -> Option<RawFrame<'_>> {
    let bytes = text.as_bytes();
    // Every value sits one level inside the frame's object.
    let value_depth = max_depth.min(SCAN_DEPTH).checked_sub(1)?;
    let mut raw = RawFrame::default();
    let mut at = skip_whitespace(bytes, 0);
    if bytes.get(at) != Some(&b'{') {
        return None;
    }
    at = skip_whitespace(bytes, at + 1);
    if bytes.get(at) == Some(&b'}') {
        return end(bytes, at + 1).then_some(raw);
    }
    loop {
        // A key: a plain string.
        let close = plain_string(bytes, at)?;
        let key = &bytes[at + 1..close];
        at = skip_whitespace(bytes, close + 1);
        if bytes.get(at) != Some(&b':') {
            return None;
        }
        at = skip_whitespace(bytes, at + 1);
        let (value, next) = value(text, at, value_depth)?;
        if !raw.set(key, value) {
            return None;
        }
        at = skip_whitespace(bytes, next);
        match bytes.get(at) {
            Some(b',') => at = skip_whitespace(bytes, at + 1),
            Some(b'}') => return end(bytes, at + 1).then_some(raw),
            _ => return None,
        }
    }
}

/// The value starting at `at` (after whitespace) and where it ends: checked by
/// [`json::value_end`], or, when that refuses it, parsed by serde, which validates it as it
/// would inside the frame and so decides what is invalid.
fn value(text: &str, at: usize, depth: usize) -> Option<(&str, usize)> {
    if let Some(end) = json::value_end(text.as_bytes(), at, depth) {
        return Some((text.get(at..end)?, end));
    }
    let rest = text.get(at..)?;
    let mut de = serde_json::Deserializer::from_str(rest);
    let raw = <&RawValue>::deserialize(&mut de).ok()?;
    let json = raw.get();
    // Valid JSON nested deeper than `depth` holds at least `depth + 1` bracket pairs: a
    // shorter value cannot be, and most payloads are short.
    if matches!(json.as_bytes().first(), Some(b'{' | b'['))
        && json.len() >= depth.saturating_add(1).saturating_mul(2)
        && nesting_exceeds(json.as_bytes(), depth)
    {
        return None;
    }
    // Where the value ends: its text is a slice of `rest`.
    let start = json.as_ptr().addr().checked_sub(rest.as_ptr().addr())?;
    Some((json, at + start + json.len()))
}

/// Where the string starting at `at` closes, when it is a plain one: no escape, no control
/// character (then its bytes are exactly its contents, and valid JSON as they stand).
fn plain_string(bytes: &[u8], at: usize) -> Option<usize> {
    if bytes.get(at) != Some(&b'"') {
        return None;
    }
    let close = json::string_stop(bytes, at + 1)?;
    (bytes[close] == b'"').then_some(close)
}

/// Whether only whitespace follows `at`.
fn end(bytes: &[u8], at: usize) -> bool {
    skip_whitespace(bytes, at) == bytes.len()
}
