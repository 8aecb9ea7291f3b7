//! Payloads on the wire: a body with its `Content-*` headers, and the codec between them and Rust
//! values.
//!
//! - Any `Serialize`/`Deserialize` type travels as `application/json`.
//! - `()` travels as an empty body with no `Content-Type` (Nexus's "no value").
//! - [`RawBytes`] travels as `application/octet-stream`, untouched.
//!
//! Decoding errors name the offending field, so a handler can answer BAD_REQUEST with a message
//! the caller can act on.
//!
//! Between this serde layer and the wire, a [`PayloadCodec`] may transform the encoded payloads
//! end to end (encryption, compression): see [`payload`], and [`aes_gcm`] (feature `aes-gcm`) for
//! AES-256-GCM encryption with rotating keys.

use std::any::{Any, TypeId};
use std::borrow::Cow;
use std::fmt;

use base64::Engine as _;
use bytes::Bytes;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

#[cfg(feature = "aes-gcm")]
pub mod aes_gcm;
pub mod details;
mod headers;
pub mod payload;

pub use headers::{ContentHeaders, Iter as ContentHeadersIter};
pub use payload::{CodecChain, PayloadCodec};

/// Media type of JSON payloads.
pub const JSON: &str = "application/json";
/// Media type of raw byte payloads.
pub const OCTET_STREAM: &str = "application/octet-stream";

/// A payload and its content headers.
///
/// Header keys are lower-case and without the `content-` prefix: an HTTP `Content-Type` header is
/// the key `type`, `Content-Encoding` is `encoding`, and so on.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Content {
    /// Content headers (`type`, `encoding`, ...), keys lower-case without the `content-` prefix.
    pub headers: ContentHeaders,
    /// The body.
    pub data: Bytes,
}

impl Content {
    /// A payload with a content type (a `&'static str` is borrowed, not copied).
    pub fn new(content_type: impl Into<Cow<'static, str>>, data: impl Into<Bytes>) -> Self {
        Self {
            headers: ContentHeaders::with_type(content_type),
            data: data.into(),
        }
    }

    /// An empty payload without content headers (Nexus's "no value").
    pub fn empty() -> Self {
        Self::default()
    }

    /// The `type` header (HTTP `Content-Type`), if any.
    pub fn content_type(&self) -> Option<&str> {
        self.headers.get("type")
    }

    /// Whether the content type is JSON (or absent, which JSON callers commonly send).
    pub fn is_json(&self) -> bool {
        self.content_type().is_none_or(is_json_media_type)
    }
}

/// Whether a media type is JSON: `application/json` or `*/*+json`, with any parameters.
pub fn is_json_media_type(media_type: &str) -> bool {
    let essence = media_type.split(';').next().unwrap_or("").trim();
    let starts = |prefix: &str| {
        essence
            .get(..prefix.len())
            .is_some_and(|s| s.eq_ignore_ascii_case(prefix))
    };
    let ends = |suffix: &str| {
        essence
            .len()
            .checked_sub(suffix.len())
            .and_then(|at| essence.get(at..))
            .is_some_and(|s| s.eq_ignore_ascii_case(suffix))
    };
    essence.eq_ignore_ascii_case(JSON) || (starts("application/") && ends("+json"))
}

/// A payload that could not be encoded or decoded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CodecError {
    message: String,
}

impl CodecError {
    /// An error with `message`, which names the problem (for a payload codec's decode error on the
    /// handler side, it is sent to the caller in a BAD_REQUEST).
    pub fn new(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
        }
    }
}

impl fmt::Display for CodecError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for CodecError {}

/// Raw bytes: a payload sent as `application/octet-stream` without any JSON encoding. Inside a
/// JSON document (a field of another type) it is written as a base64 string.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct RawBytes(pub Bytes);

impl From<Vec<u8>> for RawBytes {
    fn from(v: Vec<u8>) -> Self {
        Self(v.into())
    }
}

impl From<&'static [u8]> for RawBytes {
    fn from(v: &'static [u8]) -> Self {
        Self(Bytes::from_static(v))
    }
}

impl Serialize for RawBytes {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&base64::engine::general_purpose::STANDARD.encode(&self.0))
    }
}

impl<'de> Deserialize<'de> for RawBytes {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        base64::engine::general_purpose::STANDARD
            .decode(text)
            .map(|v| Self(v.into()))
            .map_err(serde::de::Error::custom)
    }
}

impl schemars::JsonSchema for RawBytes {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "RawBytes".into()
    }

    fn inline_schema() -> bool {
        true
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "type": "string",
            "contentEncoding": "base64",
            "contentMediaType": OCTET_STREAM,
        })
    }
}

fn is<T: 'static, U: 'static>() -> bool {
    TypeId::of::<T>() == TypeId::of::<U>()
}

/// Whether `T` is Nexus's "no value" (`()`).
pub fn is_no_value<T: 'static + ?Sized>() -> bool {
    TypeId::of::<T>() == TypeId::of::<()>()
}

/// Encodes a value as a payload.
///
/// ```
/// use nexus_runtime::codec::{self, Content, RawBytes};
///
/// assert_eq!(codec::encode(&()).unwrap(), Content::empty());
/// let json = codec::encode(&serde_json::json!({"a": 1})).unwrap();
/// assert_eq!(json.content_type(), Some("application/json"));
/// let raw = codec::encode(&RawBytes::from(vec![0xff, 0])).unwrap();
/// assert_eq!(raw.content_type(), Some("application/octet-stream"));
/// assert_eq!(&raw.data[..], &[0xff, 0]);
/// ```
pub fn encode<T: Serialize + 'static>(value: &T) -> Result<Content, CodecError> {
    if is::<T, ()>() {
        return Ok(Content::empty());
    }
    if let Some(raw) = (value as &dyn Any).downcast_ref::<RawBytes>() {
        return Ok(Content::new(OCTET_STREAM, raw.0.clone()));
    }
    // Room for a typical small payload up front: growing a Vec from empty reallocates.
    let mut data = Vec::with_capacity(128);
    serde_json::to_writer(&mut data, value).map_err(|e| CodecError::new(e.to_string()))?;
    Ok(Content::new(JSON, data))
}

/// Decodes a payload into a value. Errors name the field at fault, for example
/// ``at `amount`: invalid type: string "ten", expected f64``.
///
/// ```
/// use nexus_runtime::codec::{self, Content};
///
/// #[derive(serde::Deserialize, Debug)]
/// struct Input { amount: f64 }
/// let bad = Content::new("application/json", r#"{"amount": "ten"}"#);
/// let err = codec::decode::<Input>(&bad).unwrap_err();
/// assert!(err.to_string().starts_with("at `amount`: invalid type: string \"ten\", expected f64"), "{err}");
/// ```
pub fn decode<T: DeserializeOwned + 'static>(content: &Content) -> Result<T, CodecError> {
    if is::<T, RawBytes>() {
        let raw: Box<dyn Any> = Box::new(RawBytes(content.data.clone()));
        return raw
            .downcast::<T>()
            .map(|b| *b)
            .map_err(|_| CodecError::new("internal: raw bytes downcast failed"));
    }
    if !content.is_json() {
        return Err(CodecError::new(format!(
            "unsupported content type `{}`; expected {JSON}",
            content.content_type().unwrap_or_default()
        )));
    }
    let data: &[u8] = if content.data.iter().all(u8::is_ascii_whitespace) {
        // An empty body is Nexus's "no value": decode it as JSON null, which `()` and `Option`
        // accept and anything else rejects with a clear message.
        b"null"
    } else {
        &content.data
    };
    // The plain decoder first: tracking the path costs on every field. Only a payload that does
    // not decode is decoded again, with the path tracked, to say where it went wrong.
    if let Ok(value) = serde_json::from_slice::<T>(data) {
        return Ok(value);
    }
    let de = &mut serde_json::Deserializer::from_slice(data);
    let value: T = serde_path_to_error::deserialize(de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        if path == "." {
            CodecError::new(inner.to_string())
        } else {
            CodecError::new(format!("at `{path}`: {inner}"))
        }
    })?;
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Serialize, Deserialize, Debug, PartialEq)]
    #[serde(rename_all = "camelCase")]
    struct Input {
        user_id: String,
        nested: Option<Nested>,
    }

    #[derive(Serialize, Deserialize, Debug, PartialEq)]
    struct Nested {
        values: Vec<u32>,
    }

    #[test]
    fn json_round_trip() {
        let v = Input {
            user_id: "u1".into(),
            nested: Some(Nested { values: vec![1] }),
        };
        assert_eq!(decode::<Input>(&encode(&v).unwrap()).unwrap(), v);
    }

    #[test]
    fn errors_name_nested_fields_and_missing_fields() {
        let c = Content::new(JSON, r#"{"userId":"u","nested":{"values":[1,"x"]}}"#);
        let msg = decode::<Input>(&c).unwrap_err().to_string();
        assert!(
            msg.starts_with("at `nested.values[1]`: invalid type: string"),
            "{msg}"
        );
        let c = Content::new(JSON, r#"{"nested":null}"#);
        let msg = decode::<Input>(&c).unwrap_err().to_string();
        assert!(msg.contains("missing field `userId`"), "{msg}");
        let c = Content::new(JSON, "{not json");
        assert!(
            decode::<Input>(&c)
                .unwrap_err()
                .to_string()
                .contains("key must be a string")
        );
    }

    #[test]
    fn empty_body_is_no_value() {
        decode::<()>(&Content::empty()).unwrap();
        assert_eq!(decode::<Option<u8>>(&Content::empty()).unwrap(), None);
        let msg = decode::<Input>(&Content::empty()).unwrap_err().to_string();
        assert!(msg.contains("invalid type: null"), "{msg}");
    }

    #[test]
    fn content_types() {
        assert!(is_json_media_type("application/json; charset=utf-8"));
        assert!(is_json_media_type(
            "application/json; format=protobuf; message-type=\"x\""
        ));
        assert!(is_json_media_type("application/problem+json"));
        assert!(is_json_media_type(" Application/JSON ; charset=utf-8"));
        assert!(is_json_media_type("APPLICATION/Vnd.Api+JSON"));
        assert!(!is_json_media_type("text/plain"));
        assert!(!is_json_media_type("text/x+json"));
        assert!(!is_json_media_type("application/"));
        assert!(!is_json_media_type("+json"));
        assert!(!is_json_media_type("applicatión/json"));
        let c = Content::new("text/plain", "hi");
        let msg = decode::<String>(&c).unwrap_err().to_string();
        assert_eq!(
            msg,
            "unsupported content type `text/plain`; expected application/json"
        );
    }

    #[test]
    fn raw_bytes_pass_through_any_content_type() {
        let c = Content::new("image/png", vec![1u8, 2, 3]);
        assert_eq!(
            decode::<RawBytes>(&c).unwrap(),
            RawBytes::from(vec![1, 2, 3])
        );
        let json = serde_json::to_string(&RawBytes::from(vec![1, 2, 3])).unwrap();
        assert_eq!(json, "\"AQID\"");
        assert_eq!(
            serde_json::from_str::<RawBytes>(&json).unwrap(),
            RawBytes::from(vec![1, 2, 3])
        );
    }
}
