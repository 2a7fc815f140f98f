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
                map.retain(|k, _| !self.keys.contains(&k.to_lowercase()));
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

    /// A redacted copy of `payload`, or the payload itself when nothing is configured.
    ///
    /// With keys configured the payload is always parsed: a key can hide behind JSON escapes
    /// (`"\u0070assword"`), so a textual pre-check would leak it.
    #[must_use]
    pub fn redact_payload(&self, payload: Payload) -> Payload {
        if !self.is_active() {
            return payload;
        }
        let mut value = payload.to_value();
        self.walk(&mut value);
        Payload::from_value(&value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn escaped_keys_are_redacted_too() {
        let r = Redactor::new(["password"]);
        let p = Payload::from_json(r#"{"\u0070assword":"secret","a":1}"#).unwrap();
        assert_eq!(r.redact_payload(p).to_value(), json!({"a": 1}));
    }

    #[test]
    fn inactive_redactor_keeps_the_exact_text() {
        let p = Payload::from_json(r#"{ "password" : 1 }"#).unwrap();
        assert_eq!(Redactor::default().redact_payload(p.clone()), p);
    }
}
