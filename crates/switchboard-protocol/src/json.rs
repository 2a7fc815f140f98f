//! A validating scan of one JSON value, accepting exactly what serde_json accepts when it
//! reads a value as a [`RawValue`](serde_json::value::RawValue), and ending where serde
//! ends it.
//!
//! serde reads a raw value through its general machinery (`ignore_value`), which costs
//! more than the rest of a small publish's decoding. The grammar it checks is small (RFC
//! 8259, with serde's reading of it: any `\u` escape with four hex digits, lone surrogates
//! included, and no limit on nesting of its own), so a publish's payload is checked here in
//! one pass instead. The scan calls this first and falls back to serde when it answers
//! `None`, so a value this refuses is still read exactly as serde reads it; what this accepts
//! serde accepts too, with the same extent (tests below compare the two over generated
//! text, valid and damaged).

/// Where the JSON value starting at `at` ends (one past its last byte), when `bytes` holds
/// one there, valid as serde reads it and nested no deeper than `max_depth` levels of arrays
/// and objects (the value's own brackets included). `None` for anything else, including a
/// value that only starts after whitespace.
pub(crate) fn value_end(bytes: &[u8], mut at: usize, max_depth: usize) -> Option<usize> {
    // Bit `level` is set while the container open at that level is an object. The scan's
    // depth limit (31 by default) stays below the stack's 64 levels; past them a value is
    // left to serde, as refused values are.
    let max_depth = max_depth.min(64);
    let mut objects: u64 = 0;
    let mut depth = 0usize;
    loop {
        // A value starts at `at`.
        at = match *bytes.get(at)? {
            b'"' => string_end(bytes, at)?,
            open @ (b'{' | b'[') => {
                if depth == max_depth {
                    return None;
                }
                let object = open == b'{';
                if object {
                    objects |= 1 << depth;
                } else {
                    objects &= !(1 << depth);
                }
                depth += 1;
                at = skip_whitespace(bytes, at + 1);
                let close = if object { b'}' } else { b']' };
                if bytes.get(at) == Some(&close) {
                    depth -= 1;
                    at + 1
                } else {
                    if object {
                        at = member_value(bytes, at)?;
                    }
                    continue;
                }
            }
            b't' => literal_end(bytes, at, b"true")?,
            b'f' => literal_end(bytes, at, b"false")?,
            b'n' => literal_end(bytes, at, b"null")?,
            b'-' | b'0'..=b'9' => number_end(bytes, at)?,
            _ => return None,
        };
        // After a value: close the containers it ends, up to one that goes on.
        loop {
            if depth == 0 {
                return Some(at);
            }
            at = skip_whitespace(bytes, at);
            let object = objects & (1 << (depth - 1)) != 0;
            match *bytes.get(at)? {
                b',' => {
                    at = skip_whitespace(bytes, at + 1);
                    if object {
                        at = member_value(bytes, at)?;
                    }
                    break;
                }
                b'}' if object => {}
                b']' if !object => {}
                _ => return None,
            }
            depth -= 1;
            at += 1;
        }
    }
}

/// Past an object member's key and colon starting at `at`: where its value starts.
fn member_value(bytes: &[u8], at: usize) -> Option<usize> {
    if bytes.get(at) != Some(&b'"') {
        return None;
    }
    let at = skip_whitespace(bytes, string_end(bytes, at)?);
    (bytes.get(at) == Some(&b':')).then(|| skip_whitespace(bytes, at + 1))
}

/// One past the closing quote of the string opening at `at`: no control character inside,
/// and every escape one of JSON's (`\u` with four hex digits, whatever code unit they
/// name, as serde accepts in a raw value).
fn string_end(bytes: &[u8], at: usize) -> Option<usize> {
    let mut from = at + 1;
    loop {
        let stop = string_stop(bytes, from)?;
        from = match bytes[stop] {
            b'"' => return Some(stop + 1),
            b'\\' => match *bytes.get(stop + 1)? {
                b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't' => stop + 2,
                b'u' => {
                    let hex = bytes.get(stop + 2..stop + 6)?;
                    if !hex.iter().all(u8::is_ascii_hexdigit) {
                        return None;
                    }
                    stop + 6
                }
                _ => return None,
            },
            // A control character.
            _ => return None,
        };
    }
}

/// The first position from `at` holding a byte that stops a string's plain run: `"`, `\\`,
/// or a control character. Eight bytes at a time: a byte equal to `c` is a byte of
/// `x ^ (ONES * c)` below 1.
pub(crate) fn string_stop(bytes: &[u8], mut at: usize) -> Option<usize> {
    while let Some(chunk) = bytes.get(at..at + 8) {
        let x = u64::from_le_bytes(chunk.try_into().expect("eight bytes"));
        let marks = below(x ^ (ONES * u64::from(b'"')), 1)
            | below(x ^ (ONES * u64::from(b'\\')), 1)
            | below(x, 0x20);
        if marks != 0 {
            return Some(at + (marks.trailing_zeros() / 8) as usize);
        }
        at += 8;
    }
    let tail = bytes.get(at..)?;
    let found = tail
        .iter()
        .position(|&b| b == b'"' || b == b'\\' || b < 0x20)?;
    Some(at + found)
}

/// One past `word` when it starts at `at`. What follows is the caller's to judge, as for
/// serde (`truex` is `true` followed by a stray `x`).
fn literal_end(bytes: &[u8], at: usize, word: &[u8]) -> Option<usize> {
    let end = at + word.len();
    (bytes.get(at..end)? == word).then_some(end)
}

/// One past the number starting at `at`: `-`, then `0` or a digit run not starting with
/// `0`, then optionally `.` and digits, then optionally `e`/`E`, a sign and digits. A digit
/// right after a leading `0` is an error for serde, not the number's end.
fn number_end(bytes: &[u8], mut at: usize) -> Option<usize> {
    if bytes.get(at) == Some(&b'-') {
        at += 1;
    }
    match *bytes.get(at)? {
        b'0' => {
            at += 1;
            if bytes.get(at).is_some_and(u8::is_ascii_digit) {
                return None;
            }
        }
        b'1'..=b'9' => at = digits_end(bytes, at + 1),
        _ => return None,
    }
    if bytes.get(at) == Some(&b'.') {
        let end = digits_end(bytes, at + 1);
        if end == at + 1 {
            return None;
        }
        at = end;
    }
    if let Some(b'e' | b'E') = bytes.get(at) {
        at += 1;
        if let Some(b'+' | b'-') = bytes.get(at) {
            at += 1;
        }
        let end = digits_end(bytes, at);
        if end == at {
            return None;
        }
        at = end;
    }
    Some(at)
}

/// Eight ones: a byte `n` times this is `n` in every byte of a word.
const ONES: u64 = u64::from_ne_bytes([1; 8]);
/// Each byte's top bit.
const HIGH: u64 = ONES << 7;

/// Marks (in [`HIGH`]'s bits) the bytes of the little-endian word `x` below `n` (`n` ≤
/// 128). Bytes at and above a marked one may be marked wrongly (the subtraction borrows
/// across them); the lowest mark is always right.
fn below(x: u64, n: u8) -> u64 {
    x.wrapping_sub(ONES * u64::from(n)) & !x & HIGH
}

/// Marks the bytes of `x` above `n` (`n` < 128), with [`below`]'s guarantee: the sum
/// carries only out of a byte at or above 0x80, which is marked itself.
fn above(x: u64, n: u8) -> u64 {
    (x.wrapping_add(ONES * u64::from(127 - n)) | x) & HIGH
}

/// The first position from `at` that holds no ASCII digit: eight bytes at a time.
fn digits_end(bytes: &[u8], mut at: usize) -> usize {
    while let Some(chunk) = bytes.get(at..at + 8) {
        let x = u64::from_le_bytes(chunk.try_into().expect("eight bytes"));
        let marks = below(x, b'0') | above(x, b'9');
        if marks != 0 {
            return at + (marks.trailing_zeros() / 8) as usize;
        }
        at += 8;
    }
    while bytes.get(at).is_some_and(u8::is_ascii_digit) {
        at += 1;
    }
    at
}

/// The first position from `at` that is not JSON whitespace.
#[inline]
pub(crate) fn skip_whitespace(bytes: &[u8], mut at: usize) -> usize {
    while let Some(b' ' | b'\n' | b'\r' | b'\t') = bytes.get(at) {
        at += 1;
    }
    at
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use serde::Deserialize;
    use serde_json::value::RawValue;

    use super::*;

    /// Where serde ends the raw value starting at `at`, when it reads one there and it nests
    /// no deeper than `max_depth`.
    fn serde_end(text: &str, at: usize, max_depth: usize) -> Option<usize> {
        let rest = text.get(at..)?;
        if rest.starts_with([' ', '\n', '\r', '\t']) {
            return None;
        }
        let mut de = serde_json::Deserializer::from_str(rest);
        let raw = <&RawValue>::deserialize(&mut de).ok()?;
        let json = raw.get();
        if crate::client::nesting_exceeds(json.as_bytes(), max_depth) {
            return None;
        }
        Some(at + json.len())
    }

    #[test]
    fn reads_every_kind_of_value_to_its_end() {
        for (text, end) in [
            ("null,", 4),
            ("true}", 4),
            ("false ", 5),
            ("0", 1),
            ("-0.5e+10]", 8),
            ("12E3", 4),
            (r#""a\"\\\/\b\f\n\r\t\u00e9\uD800""#, 31),
            (r#"{"a" : [1, {"b":[]}, "c"] , "d":{}}"#, 35),
            ("[ ]x", 3),
            ("\"é🙂\"", 8),
        ] {
            assert_eq!(value_end(text.as_bytes(), 0, 32), Some(end), "{text}");
            assert_eq!(serde_end(text, 0, 32), Some(end), "serde: {text}");
        }
    }

    #[test]
    fn refuses_what_serde_refuses_and_what_nests_too_deep() {
        for text in [
            "",
            " 1",
            "01",
            "-",
            "1.",
            "1e",
            "1e+",
            ".5",
            "+1",
            "tru",
            "nul",
            "[1,]",
            "{\"a\":1,}",
            "{\"a\" 1}",
            "{a:1}",
            "[1 2]",
            "\"a",
            "\"\u{1}\"",
            "\"\\x\"",
            "\"\\x00e9\"",
            "\"\\u12g4\"",
            "\"\\u12\"",
            "[}",
            "{]",
            "[",
            "{\"a\":",
            "'a'",
            "NaN",
        ] {
            assert_eq!(value_end(text.as_bytes(), 0, 32), None, "{text:?}");
            assert_eq!(serde_end(text, 0, 32), None, "serde: {text:?}");
        }
        assert_eq!(value_end(b"[[1]]", 0, 2), Some(5));
        assert_eq!(value_end(b"[[1]]", 0, 1), None);
        assert_eq!(value_end(b"{\"a\":{}}", 0, 1), None);
        assert_eq!(value_end(&[b'['; 200], 0, 128), None);
        assert_eq!(value_end(b"[1]", 0, 128), Some(3));
    }

    /// Text made of JSON's own pieces, mostly valid and often not.
    fn arb_json_ish() -> impl Strategy<Value = String> {
        let piece = proptest::sample::select(vec![
            "{", "}", "[", "]", ",", ":", " ", "\n", "\"", "\"k\"", "\"a b\"", "\\", "\\\"",
            "\\u00e9", "\\ud83d", "\\x", "\\x00e9", ",]", ",}", "\u{1}", "é", "0", "1", "-", ".",
            "e", "E", "+", "07", "12.5", "true", "false", "null", "tru", "x",
        ]);
        proptest::collection::vec(piece, 0..24).prop_map(|pieces| pieces.concat())
    }

    /// JSON values as serde writes them, with whitespace sprinkled in.
    fn arb_valid() -> impl Strategy<Value = String> {
        let leaf = prop_oneof![
            Just(serde_json::Value::Null),
            any::<bool>().prop_map(serde_json::Value::Bool),
            any::<i64>().prop_map(Into::into),
            any::<f64>()
                .prop_filter("finite", |f| f.is_finite())
                .prop_map(Into::into),
            "[a-z\"\\\\\u{0}-\u{1f}é🙂 ]{0,8}".prop_map(serde_json::Value::String),
        ];
        let value = leaf.prop_recursive(5, 48, 5, |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..5).prop_map(serde_json::Value::Array),
                proptest::collection::btree_map("[a-z\"]{0,3}", inner, 0..5)
                    .prop_map(|m| serde_json::Value::Object(m.into_iter().collect())),
            ]
        });
        (value, any::<bool>()).prop_map(|(v, pretty)| {
            if pretty {
                serde_json::to_string_pretty(&v).unwrap()
            } else {
                v.to_string()
            }
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(4096))]

        /// Eight digits at a time end where one at a time ends.
        #[test]
        fn digits_end_where_the_bytewise_search_ends(
            bytes in proptest::collection::vec(
                prop_oneof![4 => proptest::sample::select(b"0123456789/:\x00\x7f\x80\xbf\xff".to_vec()), 1 => any::<u8>()],
                0..40),
            from in 0usize..12,
        ) {
            let bytewise = from + bytes.get(from..).map_or(0, |rest| rest.iter().take_while(|b| b.is_ascii_digit()).count());
            prop_assert_eq!(digits_end(&bytes, from), bytewise, "{:?} from {}", bytes, from);
        }

        /// Eight bytes at a time finds what one at a time finds.
        #[test]
        fn a_string_stops_where_the_bytewise_search_stops(
            bytes in proptest::collection::vec(
                prop_oneof![4 => proptest::sample::select(b"a\"\\\x00\x1f !~\x7f\x80\xff".to_vec()), 1 => any::<u8>()],
                0..40),
            from in 0usize..12,
        ) {
            let bytewise = bytes.get(from..).and_then(|rest| {
                rest.iter().position(|&b| b == b'"' || b == b'\\' || b < 0x20).map(|at| from + at)
            });
            prop_assert_eq!(string_stop(&bytes, from), bytewise, "{:?} from {}", bytes, from);
        }

        /// Over JSON-ish text, and damaged JSON: the scan and serde find the same value, or
        /// none.
        #[test]
        fn agrees_with_serde_on_json_ish_text(text in arb_json_ish(), at in 0usize..4, depth in 0usize..6) {
            let at = at.min(text.len());
            prop_assume!(text.is_char_boundary(at));
            prop_assert_eq!(value_end(text.as_bytes(), at, depth), serde_end(&text, at, depth), "{:?} at {}", text, at);
        }

        #[test]
        fn agrees_with_serde_on_valid_json(text in arb_valid(), cut in any::<prop::sample::Index>(), depth in 1usize..8) {
            prop_assert_eq!(value_end(text.as_bytes(), 0, depth), serde_end(&text, 0, depth), "{:?}", text);
            // Damaged: cut short anywhere.
            let cut = cut.index(text.len() + 1);
            if let Some(short) = text.get(..cut) {
                prop_assert_eq!(value_end(short.as_bytes(), 0, depth), serde_end(short, 0, depth), "{:?}", short);
            }
        }

        #[test]
        fn agrees_with_serde_on_numbers(text in "-?(0|[1-9][0-9]{0,3}|0[0-9])(\\.[0-9]{0,2})?([eE][+-]?[0-9]{0,2})?[,x.eE0-9]?") {
            prop_assert_eq!(value_end(text.as_bytes(), 0, 1), serde_end(&text, 0, 1), "{:?}", text);
        }
    }
}
