//! Message payloads and priorities.

use std::fmt;

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

/// A message payload: any JSON value, kept as the exact text it arrived as.
///
/// Keeping the raw text means a publish is forwarded without being parsed into a tree and
/// serialized again; [`Payload::to_value`] parses it when a caller needs to look inside
/// (for example to redact fields). Two payloads are equal when their JSON text is equal.
///
/// It serializes as the JSON value it holds, not as a string (through serde_json's
/// [`RawValue`]), and deserializes from any JSON value, keeping its text.
#[derive(Clone)]
pub struct Payload(Box<str>);

impl Payload {
    /// The JSON `null` payload.
    #[must_use]
    pub fn null() -> Self {
        Self("null".into())
    }

    /// A payload holding `value`.
    #[must_use]
    pub fn from_value(value: &serde_json::Value) -> Self {
        Self(value.to_string().into_boxed_str())
    }

    /// A payload holding any serializable value.
    ///
    /// # Errors
    /// When `value`'s `Serialize` implementation fails (for example a map with non-string
    /// keys).
    pub fn from_serialize<T: Serialize + ?Sized>(value: &T) -> Result<Self, serde_json::Error> {
        serde_json::value::to_raw_value(value).map(Self::from_raw)
    }

    /// A payload from JSON text.
    ///
    /// # Errors
    /// When `json` is not one valid JSON value.
    pub fn from_json(json: &str) -> Result<Self, serde_json::Error> {
        RawValue::from_string(json.to_owned()).map(Self::from_raw)
    }

    /// A payload holding a raw JSON value serde_json has validated.
    #[must_use]
    pub fn from_raw(raw: Box<RawValue>) -> Self {
        Self(raw.into())
    }

    /// A payload of text the decoder has validated as one JSON value.
    pub(crate) fn from_valid(json: &str) -> Self {
        Self(json.into())
    }

    /// The JSON text.
    #[must_use]
    pub fn get(&self) -> &str {
        &self.0
    }

    /// Parses the payload into a JSON tree.
    ///
    /// # Errors
    /// When the JSON holds a number that `serde_json::Value` cannot represent (beyond
    /// `f64`, such as `1e400`): valid JSON, accepted and delivered as written, but not
    /// representable in the tree.
    pub fn to_value(&self) -> Result<serde_json::Value, serde_json::Error> {
        serde_json::from_str(&self.0)
    }

    /// Deserializes the payload into `T`.
    ///
    /// # Errors
    /// When the JSON does not fit `T`.
    pub fn parse<'a, T: Deserialize<'a>>(&'a self) -> Result<T, serde_json::Error> {
        serde_json::from_str(&self.0)
    }
}

impl Serialize for Payload {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        // The text is valid JSON, so this read cannot fail; it is what lets serde_json's
        // serializer write the text as it stands.
        let raw: &RawValue = serde_json::from_str(&self.0).map_err(serde::ser::Error::custom)?;
        raw.serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for Payload {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Box::<RawValue>::deserialize(deserializer).map(Self::from_raw)
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

    #[test]
    fn payload_serializes_as_the_json_it_holds() {
        #[derive(Serialize, Deserialize)]
        struct Frame {
            payload: Payload,
        }
        let text = r#"{"payload":{"b": [1e400, "\u00e9"],"a":null}}"#;
        let frame: Frame = serde_json::from_str(text).unwrap();
        assert_eq!(frame.payload.get(), r#"{"b": [1e400, "\u00e9"],"a":null}"#);
        assert_eq!(
            serde_json::to_string(&frame).unwrap(),
            r#"{"payload":{"b": [1e400, "\u00e9"],"a":null}}"#
        );
        assert_eq!(Payload::null().get(), "null");
        let value = serde_json::json!({"k": [1, "x"]});
        assert_eq!(Payload::from_value(&value).to_value().unwrap(), value);
        assert_eq!(
            Payload::from_serialize(&value).unwrap(),
            Payload::from_value(&value)
        );
    }
}
