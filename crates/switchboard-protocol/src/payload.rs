//! Message payloads and priorities.

use std::fmt;

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

/// A message payload: any JSON value, kept as the exact text it arrived as.
///
/// Keeping the raw text means a publish is forwarded without being parsed into a tree and
/// serialized again; [`Payload::to_value`] parses it when a caller needs to look inside
/// (for example to redact fields). Two payloads are equal when their JSON text is equal.
#[derive(Clone, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Payload(Box<RawValue>);

impl Payload {
    /// The JSON `null` payload.
    #[must_use]
    pub fn null() -> Self {
        Self(RawValue::from_string("null".to_owned()).expect("null is valid JSON"))
    }

    /// A payload holding `value`.
    #[must_use]
    pub fn from_value(value: &serde_json::Value) -> Self {
        Self(serde_json::value::to_raw_value(value).expect("a Value always serializes"))
    }

    /// A payload holding any serializable value.
    ///
    /// # Errors
    /// When `value`'s `Serialize` implementation fails (for example a map with non-string
    /// keys).
    pub fn from_serialize<T: Serialize + ?Sized>(value: &T) -> Result<Self, serde_json::Error> {
        serde_json::value::to_raw_value(value).map(Self)
    }

    /// A payload from JSON text.
    ///
    /// # Errors
    /// When `json` is not one valid JSON value.
    pub fn from_json(json: &str) -> Result<Self, serde_json::Error> {
        RawValue::from_string(json.to_owned()).map(Self)
    }

    /// Wraps an already validated raw JSON value.
    #[must_use]
    pub fn from_raw(raw: Box<RawValue>) -> Self {
        Self(raw)
    }

    /// The JSON text.
    #[must_use]
    pub fn get(&self) -> &str {
        self.0.get()
    }

    /// The raw JSON value.
    #[must_use]
    pub fn as_raw(&self) -> &RawValue {
        &self.0
    }

    /// Parses the payload into a JSON tree.
    ///
    /// # Errors
    /// When the JSON holds a number that `serde_json::Value` cannot represent (beyond
    /// `f64`, such as `1e400`): valid JSON, accepted and delivered as written, but not
    /// representable in the tree.
    pub fn to_value(&self) -> Result<serde_json::Value, serde_json::Error> {
        serde_json::from_str(self.0.get())
    }

    /// Deserializes the payload into `T`.
    ///
    /// # Errors
    /// When the JSON does not fit `T`.
    pub fn parse<'a, T: Deserialize<'a>>(&'a self) -> Result<T, serde_json::Error> {
        serde_json::from_str(self.0.get())
    }
}

impl PartialEq for Payload {
    fn eq(&self, other: &Self) -> bool {
        self.get() == other.get()
    }
}

impl Eq for Payload {}

impl fmt::Debug for Payload {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.get())
    }
}

impl From<serde_json::Value> for Payload {
    fn from(value: serde_json::Value) -> Self {
        Self::from_value(&value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payload_keeps_the_exact_json_text() {
        let p = Payload::from_json(r#"{"a": [1, 2.50]}"#).unwrap();
        assert_eq!(p.get(), r#"{"a": [1, 2.50]}"#);
        assert_eq!(p.to_value().unwrap(), serde_json::json!({"a": [1, 2.5]}));
        assert!(Payload::from_json("{").is_err());
    }
}
