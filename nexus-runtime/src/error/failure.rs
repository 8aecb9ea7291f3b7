//! The Nexus `Failure` JSON: how every error crosses the wire.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

/// `metadata.type` of a Failure that carries a [`HandlerError`](super::HandlerError).
pub const HANDLER_ERROR_TYPE: &str = "nexus.HandlerError";
/// `metadata.type` of a Failure that carries an [`OperationError`](super::OperationError).
pub const OPERATION_ERROR_TYPE: &str = "nexus.OperationError";

/// A serializable error, as defined by the Nexus specification.
///
/// Every field is optional on the wire; empty fields are omitted when serializing, except `message`,
/// which is always written (as the Go reference implementation does). Unknown fields are ignored.
///
/// ```
/// use nexus_runtime::error::Failure;
///
/// let failure = Failure::new("card declined")
///     .with_metadata("type", "payments.Declined")
///     .with_details(serde_json::json!({"code": 51}))
///     .with_cause(Failure::new("issuer said no"));
/// let json = serde_json::to_string(&failure).unwrap();
/// assert_eq!(serde_json::from_str::<Failure>(&json).unwrap(), failure);
/// ```
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Failure {
    /// A human-readable description of the failure.
    #[serde(default)]
    pub message: String,
    /// A stack trace, if the failing side chose to share one.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub stack_trace: String,
    /// String key-value pairs; `type` names the kind of failure.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub metadata: BTreeMap<String, String>,
    /// Structured details, whose shape depends on `metadata.type`. Details that are JSON `null`
    /// are `Some(Value::Null)`, as written: only absent details are `None`.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "present"
    )]
    pub details: Option<serde_json::Value>,
    /// The failure that caused this one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cause: Option<Box<Failure>>,
}

/// A field that is present, even as `null` (which `Option`'s own reading would make `None`).
fn present<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<serde_json::Value>, D::Error> {
    serde_json::Value::deserialize(deserializer).map(Some)
}

impl Failure {
    /// A failure with just a message.
    pub fn new(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            ..Self::default()
        }
    }

    /// Adds a metadata entry.
    #[must_use]
    pub fn with_metadata(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.metadata.insert(key.into(), value.into());
        self
    }

    /// Sets the structured details.
    #[must_use]
    pub fn with_details(mut self, details: serde_json::Value) -> Self {
        self.details = Some(details);
        self
    }

    /// Sets the stack trace.
    #[must_use]
    pub fn with_stack_trace(mut self, stack_trace: impl Into<String>) -> Self {
        self.stack_trace = stack_trace.into();
        self
    }

    /// Sets the cause.
    #[must_use]
    pub fn with_cause(mut self, cause: Failure) -> Self {
        self.cause = Some(Box::new(cause));
        self
    }

    /// `metadata.type`, if present.
    pub fn failure_type(&self) -> Option<&str> {
        self.metadata.get("type").map(String::as_str)
    }

    /// Iterates over this failure and its causes, outermost first.
    pub fn chain(&self) -> impl Iterator<Item = &Failure> {
        std::iter::successors(Some(self), |f| f.cause.as_deref())
    }

    /// Reads a field of `details` when details is a JSON object.
    pub(crate) fn detail_str(&self, key: &str) -> Option<&str> {
        self.details.as_ref()?.get(key)?.as_str()
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)?;
        let mut cause = self.cause.as_deref();
        while let Some(c) = cause {
            if !c.message.is_empty() {
                write!(f, ": {}", c.message)?;
            }
            cause = c.cause.as_deref();
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn empty_fields_are_omitted_but_message_is_kept() {
        let json = serde_json::to_value(Failure::new("")).unwrap();
        assert_eq!(json, json!({"message": ""}));
    }

    #[test]
    fn full_failure_round_trips() {
        let failure = Failure::new("outer")
            .with_stack_trace("at foo\nat bar")
            .with_metadata("type", "x.Y")
            .with_details(json!({"a": [1, 2, {"b": null}]}))
            .with_cause(Failure::new("inner").with_cause(Failure::new("root")));
        let text = serde_json::to_string(&failure).unwrap();
        let value: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(value["stackTrace"], "at foo\nat bar");
        assert_eq!(value["cause"]["cause"]["message"], "root");
        assert_eq!(serde_json::from_str::<Failure>(&text).unwrap(), failure);
        assert_eq!(failure.chain().count(), 3);
        assert_eq!(failure.to_string(), "outer: inner: root");
    }

    #[test]
    fn unknown_fields_are_ignored_and_missing_ones_default() {
        let f: Failure =
            serde_json::from_str(r#"{"extra": 1, "metadata": {"type": "t"}}"#).unwrap();
        assert_eq!(f.message, "");
        assert_eq!(f.failure_type(), Some("t"));
        assert!(f.details.is_none());
    }

    #[test]
    fn null_details_are_kept() {
        let failure = Failure::new("m").with_details(serde_json::Value::Null);
        let text = serde_json::to_string(&failure).unwrap();
        assert_eq!(text, r#"{"message":"m","details":null}"#);
        assert_eq!(serde_json::from_str::<Failure>(&text).unwrap(), failure);
        let absent: Failure = serde_json::from_str(r#"{"message":"m"}"#).unwrap();
        assert_eq!(absent.details, None);
    }

    #[test]
    fn temporal_failure_shape_parses() {
        let body = r#"{"message":"operation canceled","metadata":{"type":"temporal.api.failure.v1.Failure"},"details":{"canceledFailureInfo":{}}}"#;
        let f: Failure = serde_json::from_str(body).unwrap();
        assert_eq!(f.failure_type(), Some("temporal.api.failure.v1.Failure"));
        assert_eq!(f.details, Some(json!({"canceledFailureInfo": {}})));
    }
}
