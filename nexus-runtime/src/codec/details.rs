//! Application details of an operation's failure through the payload codec.
//!
//! [`OperationError::with_details`] puts application data in the `details` of the error's causes;
//! a handler with a payload codec encodes each of them as a payload, and a caller with one decodes
//! them. An encoded `details` is the JSON object `{"headers": {...}, "data": "<base64>"}` (the
//! encoded payload's content headers and bytes), and its Failure carries the metadata
//! `details-encoding: payload-codec`. The messages, and the error envelope itself, stay readable:
//! they are the protocol's.

use std::collections::BTreeMap;

use base64::Engine as _;
use serde::{Deserialize, Serialize};

use super::{CodecError, Content, JSON, PayloadCodec};
use crate::error::OperationError;

/// The metadata key that marks encoded details.
pub const ENCODED_DETAILS_KEY: &str = "details-encoding";
/// Its value.
pub const ENCODED_DETAILS: &str = "payload-codec";

/// Encoded details, as they travel.
#[derive(Serialize, Deserialize)]
struct Encoded {
    headers: BTreeMap<String, String>,
    data: String,
}

/// Encodes the details of every cause of `error` that has some.
pub(crate) fn encode_details(
    codec: &dyn PayloadCodec,
    error: &mut OperationError,
) -> Result<(), CodecError> {
    let mut next = error.cause.as_deref_mut();
    while let Some(failure) = next {
        let is_encoded = failure.metadata.contains_key(ENCODED_DETAILS_KEY);
        if let (Some(details), false) = (&failure.details, is_encoded) {
            let data = serde_json::to_vec(details)
                .map_err(|e| CodecError::new(format!("cannot write the details: {e}")))?;
            let encoded = codec.encode(Content::new(JSON, data))?;
            let encoded = Encoded {
                headers: encoded.headers.into(),
                data: base64::engine::general_purpose::STANDARD.encode(&encoded.data),
            };
            failure.details = Some(
                serde_json::to_value(encoded)
                    .map_err(|e| CodecError::new(format!("cannot write the details: {e}")))?,
            );
            failure
                .metadata
                .insert(ENCODED_DETAILS_KEY.to_owned(), ENCODED_DETAILS.to_owned());
        }
        next = failure.cause.as_deref_mut();
    }
    Ok(())
}

/// Decodes the encoded details of every cause of `error`.
pub(crate) fn decode_details(
    codec: &dyn PayloadCodec,
    error: &mut OperationError,
) -> Result<(), CodecError> {
    let mut next = error.cause.as_deref_mut();
    while let Some(failure) = next {
        if failure
            .metadata
            .get(ENCODED_DETAILS_KEY)
            .map(String::as_str)
            == Some(ENCODED_DETAILS)
        {
            let malformed = |problem: &str| {
                CodecError::new(format!(
                    "the encoded failure details are malformed: {problem}"
                ))
            };
            let encoded: Encoded = failure
                .details
                .clone()
                .map(serde_json::from_value)
                .transpose()
                .map_err(|e| malformed(&e.to_string()))?
                .ok_or_else(|| malformed("they are missing"))?;
            let data = base64::engine::general_purpose::STANDARD
                .decode(encoded.data)
                .map_err(|e| malformed(&e.to_string()))?;
            let decoded = codec.decode(Content {
                headers: encoded.headers.into(),
                data: data.into(),
            })?;
            let details = serde_json::from_slice(&decoded.data)
                .map_err(|e| malformed(&format!("not JSON once decoded: {e}")))?;
            failure.details = Some(details);
            failure.metadata.remove(ENCODED_DETAILS_KEY);
        }
        next = failure.cause.as_deref_mut();
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::Failure;

    /// Reverses the bytes and marks them so; refuses unmarked payloads.
    struct Reverse;

    fn reversed(data: &[u8]) -> bytes::Bytes {
        data.iter().rev().copied().collect::<Vec<u8>>().into()
    }

    impl PayloadCodec for Reverse {
        fn encode(&self, mut content: Content) -> Result<Content, CodecError> {
            content.data = reversed(&content.data);
            content.headers.insert("x-reversed".into(), "1".into());
            Ok(content)
        }

        fn decode(&self, mut content: Content) -> Result<Content, CodecError> {
            if content.headers.remove("x-reversed").is_none() {
                return Err(CodecError::new("not reversed"));
            }
            content.data = reversed(&content.data);
            Ok(content)
        }
    }

    #[test]
    fn details_of_every_cause_round_trip_and_messages_stay_readable() {
        let error = OperationError::failed("declined").with_cause(
            Failure::new("outer")
                .with_details(serde_json::json!({"code": 51}))
                .with_cause(Failure::new("inner").with_details(serde_json::json!([1]))),
        );
        let mut wire = error.clone();
        encode_details(&Reverse, &mut wire).unwrap();
        let outer = wire.cause.as_deref().unwrap();
        assert_eq!(outer.message, "outer");
        assert_eq!(outer.metadata[ENCODED_DETAILS_KEY], ENCODED_DETAILS);
        assert_eq!(
            outer.details.as_ref().unwrap()["headers"],
            serde_json::json!({"type": "application/json", "x-reversed": "1"})
        );
        assert!(wire.details::<serde_json::Value>().unwrap().unwrap()["code"].is_null());
        // Encoding twice does not encode again.
        let mut twice = wire.clone();
        encode_details(&Reverse, &mut twice).unwrap();
        assert_eq!(twice, wire);
        decode_details(&Reverse, &mut wire).unwrap();
        assert_eq!(wire, error);
        assert_eq!(
            wire.details::<serde_json::Value>().unwrap(),
            Some(serde_json::json!({"code": 51}))
        );
    }

    #[test]
    fn undecodable_details_are_errors() {
        let mut wire = OperationError::failed("x").with_details(&7);
        encode_details(&Reverse, &mut wire).unwrap();
        let mut broken = wire.clone();
        if let Some(cause) = broken.cause.as_deref_mut() {
            cause.details = Some(serde_json::json!({"headers": {}, "data": "%%"}));
        }
        let err = decode_details(&Reverse, &mut broken)
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("the encoded failure details are malformed"),
            "{err}"
        );
        if let Some(cause) = wire.cause.as_deref_mut() {
            cause.details = Some(serde_json::json!({"headers": {}, "data": ""}));
        }
        let err = decode_details(&Reverse, &mut wire).unwrap_err().to_string();
        assert_eq!(err, "not reversed");
        // Details nobody encoded are left alone.
        let mut plain = OperationError::failed("x").with_details(&7);
        decode_details(&Reverse, &mut plain).unwrap();
        assert_eq!(plain.details::<u8>().unwrap(), Some(7));
    }
}
