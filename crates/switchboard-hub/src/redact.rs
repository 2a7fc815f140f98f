//! Removal of sensitive fields before anything leaves the server.

use std::collections::HashSet;

use serde_json::Value;
use switchboard_protocol::Payload;

/// Removes configured keys, compared case-insensitively, at any depth of a JSON value.
/// Keys are removed, not masked.
///
/// ```
/// use switchboard_hub::Redactor;
/// use serde_json::json;
///
/// let r = Redactor::new(["password", "SSN"]);
/// let mut v = json!({"user": {"name": "ada", "Password": "x", "ids": [{"ssn": 1, "k": 2}]}});
/// r.redact_value(&mut v);
/// assert_eq!(v, json!({"user": {"name": "ada", "ids": [{"k": 2}]}}));
/// ```
#[derive(Debug, Clone, Default)]
pub struct Redactor {
    keys: HashSet<String>,
}

impl Redactor {
    /// A redactor for `keys` (case-insensitive).
    #[must_use]
    pub fn new<I, S>(keys: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        Self {
            keys: keys
                .into_iter()
                .map(|k| k.as_ref().trim().to_lowercase())
                .filter(|k| !k.is_empty())
                .collect(),
        }
    }

    /// Whether any key is configured.
    #[must_use]
    pub fn is_active(&self) -> bool {
        !self.keys.is_empty()
    }

    /// Removes the configured keys from `value`, recursively.
    pub fn redact_value(&self, value: &mut Value) {
        if !self.is_active() {
            return;
        }
        self.walk(value);
    }

    fn walk(&self, value: &mut Value) {
        match value {
            Value::Object(map) => {
                map.retain(|k, _| !self.matches(k));
                for v in map.values_mut() {
                    self.walk(v);
                }
            }
            Value::Array(items) => {
                for v in items {
                    self.walk(v);
                }
            }
            _ => {}
        }
    }

    /// A redacted copy of `payload`, or the payload itself when nothing is configured or
    /// nothing matched.
    ///
    /// Works on the JSON text and never re-serializes it: every byte that is not part of a
    /// removed member is delivered exactly as published (numbers beyond `f64` such as
    /// `12345678901234567890123` or `1e400`, exponents such as `1E2`, whitespace, key order
    /// and escapes keep their text). A member is removed with the separator next to it, so
    /// the result is valid JSON. Keys are compared after decoding their escapes: a key cannot
    /// hide behind `"\u0070assword"`.
    #[must_use]
    pub fn redact_payload(&self, payload: Payload) -> Payload {
        if !self.is_active() {
            return payload;
        }
        let text = payload.get();
        let mut out = String::with_capacity(text.len());
        let mut scanner = Scanner {
            src: text,
            pos: 0,
            keys: &self.keys,
            removed: false,
        };
        match scanner.document(&mut out) {
            Some(()) if !scanner.removed => payload,
            Some(()) => Payload::from_json(&out).unwrap_or_else(|_| fail_closed(text)),
            None => fail_closed(text),
        }
    }

    fn matches(&self, key: &str) -> bool {
        matches_key(&self.keys, key)
    }
}

fn matches_key(keys: &HashSet<String>, key: &str) -> bool {
    if key.bytes().any(|b| b.is_ascii_uppercase() || !b.is_ascii()) {
        keys.contains(&key.to_lowercase())
    } else {
        keys.contains(key)
    }
}

/// What a payload becomes if the scanner ever failed on it. A payload always holds valid JSON,
/// which the scanner reads whole, so this is a bug guard: it drops the payload rather than
/// deliver fields it could not check.
#[cold]
fn fail_closed(text: &str) -> Payload {
    tracing::error!(
        bytes = text.len(),
        "redaction could not read a payload; delivering null in its place"
    );
    Payload::null()
}

/// Reads JSON text (valid, as every [`Payload`] holds) and copies it to `out`, leaving out
/// the members whose keys are redacted. Recursion follows the value's nesting, which JSON
/// validation bounds (128 levels).
struct Scanner<'a> {
    src: &'a str,
    pos: usize,
    keys: &'a HashSet<String>,
    /// Whether anything was left out.
    removed: bool,
}

impl Scanner<'_> {
    fn peek(&self) -> Option<u8> {
        self.src.as_bytes().get(self.pos).copied()
    }

    fn skip_ws(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.pos += 1;
        }
    }

    /// Copies `src[from..self.pos]` when `emit`.
    fn copy(&self, from: usize, emit: bool, out: &mut String) -> Option<()> {
        if emit {
            out.push_str(self.src.get(from..self.pos)?);
        }
        Some(())
    }

    /// The whole text: whitespace, one value, whitespace.
    fn document(&mut self, out: &mut String) -> Option<()> {
        let start = self.pos;
        self.skip_ws();
        self.copy(start, true, out)?;
        self.value(true, out)?;
        let start = self.pos;
        self.skip_ws();
        self.copy(start, true, out)?;
        (self.pos == self.src.len()).then_some(())
    }

    /// One value at `pos`, copied to `out` (redacted) when `emit`, else only skipped.
    fn value(&mut self, emit: bool, out: &mut String) -> Option<()> {
        match self.peek()? {
            b'{' => self.object(emit, out),
            b'[' => self.array(emit, out),
            b'"' => {
                let start = self.pos;
                self.string()?;
                self.copy(start, emit, out)
            }
            _ => {
                // A number, `true`, `false` or `null`: copied as written.
                let start = self.pos;
                while !matches!(
                    self.peek(),
                    None | Some(b',' | b']' | b'}' | b' ' | b'\t' | b'\n' | b'\r')
                ) {
                    self.pos += 1;
                }
                (self.pos > start).then_some(())?;
                self.copy(start, emit, out)
            }
        }
    }

    /// Moves past a string (at its opening quote).
    fn string(&mut self) -> Option<()> {
        self.pos += 1;
        loop {
            match self.peek()? {
                b'\\' => self.pos += 2,
                b'"' => {
                    self.pos += 1;
                    return Some(());
                }
                _ => self.pos += 1,
            }
        }
    }

    fn array(&mut self, emit: bool, out: &mut String) -> Option<()> {
        let start = self.pos;
        self.pos += 1;
        self.skip_ws();
        self.copy(start, emit, out)?;
        if self.peek()? == b']' {
            self.pos += 1;
            return self.copy(self.pos - 1, emit, out);
        }
        loop {
            self.value(emit, out)?;
            let start = self.pos;
            self.skip_ws();
            match self.peek()? {
                b',' => {
                    self.pos += 1;
                    self.skip_ws();
                    self.copy(start, emit, out)?;
                }
                b']' => {
                    self.pos += 1;
                    return self.copy(start, emit, out);
                }
                _ => return None,
            }
        }
    }

    /// An object: kept members with the separators that preceded them, removed ones left
    /// out entirely (the first kept member takes the place of the first member).
    fn object(&mut self, emit: bool, out: &mut String) -> Option<()> {
        let start = self.pos;
        self.pos += 1;
        self.skip_ws();
        // `{` and the whitespace before the first member.
        self.copy(start, emit, out)?;
        if self.peek()? == b'}' {
            self.pos += 1;
            return self.copy(self.pos - 1, emit, out);
        }
        let mut kept_any = false;
        // The separator (`,` and whitespace) before the current member.
        let mut separator = (self.pos, self.pos);
        loop {
            let key_start = self.pos;
            (self.peek()? == b'"').then_some(())?;
            self.string()?;
            let raw_key = self.src.get(key_start..self.pos)?;
            self.skip_ws();
            (self.peek()? == b':').then_some(())?;
            self.pos += 1;
            self.skip_ws();
            let removed = emit && self.is_redacted(raw_key)?;
            if removed {
                self.removed = true;
                self.value(false, out)?;
            } else {
                if emit && kept_any {
                    out.push_str(self.src.get(separator.0..separator.1)?);
                }
                // The key, the colon and the whitespace around it, as written.
                self.copy(key_start, emit, out)?;
                self.value(emit, out)?;
                kept_any = true;
            }
            let after = self.pos;
            self.skip_ws();
            match self.peek()? {
                b',' => {
                    self.pos += 1;
                    self.skip_ws();
                    separator = (after, self.pos);
                }
                b'}' => {
                    self.pos += 1;
                    return self.copy(after, emit, out);
                }
                _ => return None,
            }
        }
    }

    /// Whether a key (its JSON text, quotes included) names a redacted field.
    fn is_redacted(&self, raw_key: &str) -> Option<bool> {
        let inner = raw_key.get(1..raw_key.len().checked_sub(1)?)?;
        if inner.contains('\\') {
            let decoded: String = serde_json::from_str(raw_key).ok()?;
            Some(matches_key(self.keys, &decoded))
        } else {
            Some(matches_key(self.keys, inner))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    fn redact(keys: &[&str], json: &str) -> String {
        let p = Payload::from_json(json).unwrap();
        Redactor::new(keys).redact_payload(p).get().to_owned()
    }

    #[test]
    fn escaped_keys_are_redacted_too() {
        let r = Redactor::new(["password"]);
        let p = Payload::from_json(r#"{"\u0070assword":"secret","a":1}"#).unwrap();
        assert_eq!(r.redact_payload(p).get(), r#"{"a":1}"#);
    }

    #[test]
    fn inactive_redactor_keeps_the_exact_text() {
        let p = Payload::from_json(r#"{ "password" : 1 }"#).unwrap();
        assert_eq!(Redactor::default().redact_payload(p.clone()), p);
    }

    #[test]
    fn numbers_beyond_f64_and_their_spelling_are_delivered_as_written() {
        assert_eq!(
            redact(
                &["password"],
                r#"{"n":12345678901234567890123,"e":1E2,"password":"x","big":-1e400,"f":1.50}"#
            ),
            r#"{"n":12345678901234567890123,"e":1E2,"big":-1e400,"f":1.50}"#
        );
        // Nothing to remove: the very same text.
        assert_eq!(redact(&["password"], "[1e400, 1E2]"), "[1e400, 1E2]");
    }

    #[test]
    fn whitespace_order_and_escapes_outside_removed_members_are_kept() {
        assert_eq!(
            redact(
                &["password", "ssn"],
                "{ \"b\" : 1 ,\n  \"Password\": {\"x\": [1, 2]} , \"a\":[ {\"SSN\":1, \"k\" : \"\\\"q\\u00e9\"} ] }"
            ),
            "{ \"b\" : 1 , \"a\":[ {\"k\" : \"\\\"q\\u00e9\"} ] }"
        );
    }

    #[test]
    fn the_first_the_last_or_every_member_can_go() {
        let keys = ["p", "q"];
        assert_eq!(redact(&keys, r#"{"p":1,"a":2}"#), r#"{"a":2}"#);
        assert_eq!(redact(&keys, r#"{"a":2,"p":1}"#), r#"{"a":2}"#);
        assert_eq!(redact(&keys, r#"{"a":1,"p":2,"q":3}"#), r#"{"a":1}"#);
        assert_eq!(redact(&keys, r#"{"p":1,"q":2,"a":3}"#), r#"{"a":3}"#);
        assert_eq!(redact(&keys, r#"{"p":1,"q":{"a":[]}}"#), "{}");
        assert_eq!(redact(&keys, r#"[{"p":1},{},[],"p"]"#), r#"[{},{},[],"p"]"#);
    }

    #[test]
    fn keys_inside_string_values_are_not_members() {
        let json = r#"{"note":"{\"password\":1}","list":["password"]}"#;
        assert_eq!(redact(&["password"], json), json);
    }

    fn json_value() -> impl Strategy<Value = serde_json::Value> {
        let key = prop::sample::select(vec!["a", "B", "password", "PassWord", "ssn", "k", "é"]);
        let leaf = prop_oneof![
            Just(serde_json::Value::Null),
            any::<bool>().prop_map(serde_json::Value::from),
            any::<i64>().prop_map(serde_json::Value::from),
            (-1e9f64..1e9).prop_map(serde_json::Value::from),
            "[a-z\"\\\\ ]{0,6}".prop_map(serde_json::Value::from),
        ];
        leaf.prop_recursive(4, 40, 6, move |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..5).prop_map(serde_json::Value::Array),
                prop::collection::vec((key.clone(), inner), 0..5).prop_map(|members| {
                    serde_json::Value::Object(
                        members
                            .into_iter()
                            .map(|(k, v)| (k.to_owned(), v))
                            .collect(),
                    )
                }),
            ]
        })
    }

    proptest! {
        /// The text-level redaction agrees with removing the keys from the parsed tree, for
        /// compact and pretty-printed text alike, and always yields valid JSON.
        #[test]
        fn text_redaction_matches_tree_redaction(value in json_value(), pretty in any::<bool>()) {
            let r = Redactor::new(["password", "ssn"]);
            let text = if pretty {
                serde_json::to_string_pretty(&value).unwrap()
            } else {
                serde_json::to_string(&value).unwrap()
            };
            let redacted = r.redact_payload(Payload::from_json(&text).unwrap());
            // Parsed from the same text: serde_json's float parsing need not round-trip.
            let mut expected: serde_json::Value = serde_json::from_str(&text).unwrap();
            r.redact_value(&mut expected);
            prop_assert_eq!(redacted.to_value().unwrap(), expected);
        }
    }

    #[test]
    fn the_tree_redactor_removes_keys_at_any_depth() {
        let r = Redactor::new(["password"]);
        let mut v = json!({"a": [{"PASSWORD": 1, "b": 2}], "password": 3});
        r.redact_value(&mut v);
        assert_eq!(v, json!({"a": [{"b": 2}]}));
    }
}
