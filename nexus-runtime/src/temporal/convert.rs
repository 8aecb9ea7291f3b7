//! Between Temporal's API messages and the runtime's types: payloads and content, links, headers,
//! Go durations, and errors as Temporal failures (the current form and the legacy Nexus form).

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use temporalio_common::protos::temporal::api::common::v1::{Payload, Payloads};
use temporalio_common::protos::temporal::api::enums::v1::NexusHandlerErrorRetryBehavior;
use temporalio_common::protos::temporal::api::failure::v1::{
    self as failure, ApplicationFailureInfo, CanceledFailureInfo, NexusHandlerFailureInfo,
    failure::FailureInfo,
};
use temporalio_common::protos::temporal::api::nexus::v1 as nexus;

use crate::codec::{Content, JSON, OCTET_STREAM};
use crate::error::{Failure, HandlerError, OperationError, OperationErrorState};
use crate::link::Link;
use crate::operation::Headers;

/// `metadata.encoding` of a Temporal payload.
const ENCODING: &str = "encoding";
/// The encodings Temporal's server maps Nexus content to (and back).
const JSON_PLAIN: &str = "json/plain";
const JSON_PROTOBUF: &str = "json/protobuf";
const BINARY_PLAIN: &str = "binary/plain";
const BINARY_NULL: &str = "binary/null";
const UNKNOWN_CONTENT: &str = "unknown/nexus-content";
/// The `ApplicationFailureInfo.type` of a failed operation, as Temporal's SDKs write it.
const OPERATION_ERROR: &str = "OperationError";
/// The type of an application failure made from a Nexus Failure without a `type`.
const NEXUS_FAILURE: &str = "NexusFailure";

/// A task's input payload as content: `json/plain` is JSON, `binary/plain` bytes, `binary/null`
/// nothing, `unknown/nexus-content` the content with the headers Temporal kept in the metadata;
/// any other encoding travels as the payload's bytes with `Content-Type:
/// application/x-temporal-payload-<encoding>`, which a typed operation refuses as BAD_REQUEST.
pub(crate) fn payload_to_content(payload: Option<Payload>) -> Content {
    let Some(payload) = payload else {
        return Content::empty();
    };
    let encoding = payload
        .metadata
        .get(ENCODING)
        .map(|e| String::from_utf8_lossy(e).into_owned())
        .unwrap_or_default();
    match encoding.as_str() {
        JSON_PLAIN | JSON_PROTOBUF => Content::new(JSON, payload.data),
        BINARY_PLAIN => Content::new(OCTET_STREAM, payload.data),
        BINARY_NULL | "" if payload.data.is_empty() => Content::empty(),
        UNKNOWN_CONTENT => {
            let headers = payload
                .metadata
                .iter()
                .filter(|(k, _)| k.as_str() != ENCODING)
                .map(|(k, v)| {
                    let key = k.to_ascii_lowercase();
                    let key = key.strip_prefix("content-").unwrap_or(&key).to_owned();
                    (key, String::from_utf8_lossy(v).into_owned())
                })
                .collect();
            Content {
                headers,
                data: payload.data.into(),
            }
        }
        other => Content::new(
            format!("application/x-temporal-payload-{}", other.replace('/', "-")),
            payload.data,
        ),
    }
}

/// Content as a Temporal payload, the reverse of [`payload_to_content`].
pub(crate) fn content_to_payload(content: Content) -> Payload {
    let metadata = |encoding: &str| HashMap::from([(ENCODING.to_owned(), encoding.into())]);
    if content.data.is_empty() && content.headers.is_empty() {
        return Payload {
            metadata: metadata(BINARY_NULL),
            ..Payload::default()
        };
    }
    let content_type = content.content_type().map(str::to_ascii_lowercase);
    let encoding = match content_type.as_deref() {
        None | Some(JSON) => Some(JSON_PLAIN),
        Some(OCTET_STREAM) if content.headers.len() == 1 => Some(BINARY_PLAIN),
        _ => None,
    };
    match encoding {
        Some(encoding) => Payload {
            metadata: metadata(encoding),
            data: content.data.to_vec(),
            ..Payload::default()
        },
        None => {
            let mut metadata = metadata(UNKNOWN_CONTENT);
            for (key, value) in &content.headers {
                metadata.insert(format!("content-{key}"), value.as_bytes().to_vec());
            }
            Payload {
                metadata,
                data: content.data.to_vec(),
                ..Payload::default()
            }
        }
    }
}

/// A JSON value as a `json/plain` payload.
pub(crate) fn json_payload(value: &serde_json::Value) -> Payload {
    Payload {
        metadata: HashMap::from([(ENCODING.to_owned(), JSON_PLAIN.into())]),
        data: serde_json::to_vec(value).unwrap_or_default(),
        ..Payload::default()
    }
}

/// Nexus links from Temporal's message as the runtime's links.
pub(crate) fn links_from_nexus(links: Vec<nexus::Link>) -> Vec<Link> {
    links
        .into_iter()
        .map(|l| Link::new(l.url, l.r#type))
        .collect()
}

/// The runtime's links as Temporal's Nexus links.
pub(crate) fn links_to_nexus(links: Vec<Link>) -> Vec<nexus::Link> {
    links
        .into_iter()
        .map(|l| nexus::Link {
            url: l.url,
            r#type: l.link_type,
        })
        .collect()
}

/// Header names lower-cased (Temporal's map mixes `Request-Timeout` and `request-timeout`; the
/// first value of a name wins) without the `Content-*` headers, which describe the payload.
pub(crate) fn lower_headers(header: HashMap<String, String>) -> Headers {
    let mut sorted: Vec<(String, String)> = header.into_iter().collect();
    sorted.sort();
    let mut headers = Headers::new();
    for (name, value) in sorted {
        let name = name.to_ascii_lowercase();
        if !name.starts_with("content-") {
            headers.entry(name).or_insert(value);
        }
    }
    headers
}

/// A Go `time.Duration` string, as Temporal writes `Request-Timeout` in tasks: `7.99s`, `29994ms`,
/// `1m30s`, `1h2m3.5s`, `250µs`, `-1.2s`, `0s`. A negative value is zero (the deadline passed);
/// `None` if the value is not a Go duration.
pub(crate) fn parse_go_duration(value: &str) -> Option<Duration> {
    let value = value.trim();
    let (negative, mut rest) = match value.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, value.strip_prefix('+').unwrap_or(value)),
    };
    if rest == "0" {
        return Some(Duration::ZERO);
    }
    if rest.is_empty() {
        return None;
    }
    let mut nanos: f64 = 0.0;
    while !rest.is_empty() {
        let number_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let (number, tail) = rest.split_at(number_len);
        if number.is_empty() || number == "." {
            return None;
        }
        let number: f64 = number.parse().ok()?;
        let unit_len = tail
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(tail.len());
        let (unit, tail) = tail.split_at(unit_len);
        let scale = match unit {
            "ns" => 1.0,
            "us" | "µs" | "μs" => 1e3,
            "ms" => 1e6,
            "s" => 1e9,
            "m" => 60e9,
            "h" => 3600e9,
            _ => return None,
        };
        nanos += number * scale;
        rest = tail;
    }
    if !nanos.is_finite() {
        return None;
    }
    if negative {
        return Some(Duration::ZERO);
    }
    Some(Duration::from_nanos(nanos.min(u64::MAX as f64) as u64))
}

/// A Nexus Failure (an error's cause) as a Temporal application failure: its `type` (or
/// `NexusFailure`), its details as a JSON payload, its causes likewise.
fn cause_to_temporal(cause: &Failure) -> failure::Failure {
    let details = cause.details.as_ref().map(|d| Payloads {
        payloads: vec![json_payload(d)],
    });
    failure::Failure {
        message: cause.message.clone(),
        stack_trace: cause.stack_trace.clone(),
        cause: cause
            .cause
            .as_deref()
            .map(|c| Box::new(cause_to_temporal(c))),
        failure_info: Some(FailureInfo::ApplicationFailureInfo(
            ApplicationFailureInfo {
                r#type: cause.failure_type().unwrap_or(NEXUS_FAILURE).to_owned(),
                non_retryable: true,
                details,
                ..ApplicationFailureInfo::default()
            },
        )),
        ..failure::Failure::default()
    }
}

/// An operation error as Temporal's SDKs report it: a failed operation is a non-retryable
/// application failure of type `OperationError`, a canceled one a canceled failure; the error's
/// cause (with its details) follows.
pub(crate) fn operation_error_to_temporal(error: &OperationError) -> failure::Failure {
    let failure_info = match error.state {
        OperationErrorState::Canceled => {
            FailureInfo::CanceledFailureInfo(CanceledFailureInfo::default())
        }
        _ => FailureInfo::ApplicationFailureInfo(ApplicationFailureInfo {
            r#type: OPERATION_ERROR.to_owned(),
            non_retryable: true,
            ..ApplicationFailureInfo::default()
        }),
    };
    failure::Failure {
        message: error.message.clone(),
        stack_trace: error.stack_trace.clone(),
        cause: error
            .cause
            .as_deref()
            .map(|c| Box::new(cause_to_temporal(c))),
        failure_info: Some(failure_info),
        ..failure::Failure::default()
    }
}

/// The retry behaviour Temporal's API names: the handler's override, or unspecified (the error
/// type's default).
fn retry_behavior(error: &HandlerError) -> NexusHandlerErrorRetryBehavior {
    match error.retryable_override {
        Some(true) => NexusHandlerErrorRetryBehavior::Retryable,
        Some(false) => NexusHandlerErrorRetryBehavior::NonRetryable,
        None => NexusHandlerErrorRetryBehavior::Unspecified,
    }
}

/// A handler error as a Temporal failure carrying `NexusHandlerFailureInfo` (type and retry
/// behaviour).
pub(crate) fn handler_error_to_temporal(error: &HandlerError) -> failure::Failure {
    failure::Failure {
        message: error.message.clone(),
        stack_trace: error.stack_trace.clone(),
        cause: error
            .cause
            .as_deref()
            .map(|c| Box::new(cause_to_temporal(c))),
        failure_info: Some(FailureInfo::NexusHandlerFailureInfo(
            NexusHandlerFailureInfo {
                r#type: error.error_type.as_str().to_owned(),
                retry_behavior: retry_behavior(error) as i32,
            },
        )),
        ..failure::Failure::default()
    }
}

/// A Temporal failure in the legacy Nexus form (for servers that did not announce
/// `temporal_failure_responses`): the message, and the rest of the failure as JSON in `details`
/// with `metadata.type = temporal.api.failure.v1.Failure`.
pub(crate) fn legacy_failure(failure: failure::Failure) -> nexus::Failure {
    let message = failure.message.clone();
    nexus::Failure::try_from(failure).unwrap_or_else(|_| nexus::Failure {
        message,
        ..nexus::Failure::default()
    })
}

/// A handler error in the legacy form: `HandlerError{error_type, failure, retry_behavior}`.
pub(crate) fn legacy_handler_error(error: &HandlerError) -> nexus::HandlerError {
    nexus::HandlerError {
        error_type: error.error_type.as_str().to_owned(),
        failure: Some(legacy_failure(handler_error_to_temporal(error))),
        retry_behavior: retry_behavior(error) as i32,
    }
}

/// An operation error in the legacy form: `UnsuccessfulOperationError{operation_state, failure}`.
pub(crate) fn legacy_operation_error(error: &OperationError) -> nexus::UnsuccessfulOperationError {
    nexus::UnsuccessfulOperationError {
        operation_state: error.state.as_str().to_owned(),
        failure: Some(legacy_failure(operation_error_to_temporal(error))),
    }
}

/// Callback headers with lower-case names (Temporal writes them in either case).
pub(crate) fn callback_headers(header: HashMap<String, String>) -> BTreeMap<String, String> {
    header
        .into_iter()
        .map(|(k, v)| (k.to_ascii_lowercase(), v))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::HandlerErrorType;

    fn payload(encoding: &str, data: &[u8]) -> Payload {
        Payload {
            metadata: HashMap::from([(ENCODING.to_owned(), encoding.as_bytes().to_vec())]),
            data: data.to_vec(),
            ..Payload::default()
        }
    }

    #[test]
    fn go_durations() {
        let ms = Duration::from_millis;
        assert_eq!(
            parse_go_duration("7.997970949s"),
            Some(Duration::from_nanos(7_997_970_949))
        );
        assert_eq!(parse_go_duration("29994ms"), Some(ms(29_994)));
        assert_eq!(parse_go_duration("1m30s"), Some(ms(90_000)));
        assert_eq!(parse_go_duration("1h2m3.5s"), Some(ms(3_723_500)));
        assert_eq!(parse_go_duration("250µs"), Some(Duration::from_micros(250)));
        assert_eq!(parse_go_duration("250us"), Some(Duration::from_micros(250)));
        assert_eq!(parse_go_duration("-1.2s"), Some(Duration::ZERO));
        assert_eq!(parse_go_duration("0"), Some(Duration::ZERO));
        assert_eq!(parse_go_duration("0s"), Some(Duration::ZERO));
        for bad in ["", "10", "s", "1x", "1.2.3s", "-", "ms5"] {
            assert_eq!(parse_go_duration(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn payloads_and_content_map_as_temporals_server_does() {
        let json = payload_to_content(Some(payload(JSON_PLAIN, br#"{"a":1}"#)));
        assert_eq!(json, Content::new(JSON, &br#"{"a":1}"#[..]));
        assert_eq!(content_to_payload(json), payload(JSON_PLAIN, br#"{"a":1}"#));
        let bytes = payload_to_content(Some(payload(BINARY_PLAIN, b"\x00\x01")));
        assert_eq!(bytes, Content::new(OCTET_STREAM, &b"\x00\x01"[..]));
        assert_eq!(
            content_to_payload(bytes),
            payload(BINARY_PLAIN, b"\x00\x01")
        );
        assert_eq!(
            payload_to_content(Some(payload(BINARY_NULL, b""))),
            Content::empty()
        );
        assert_eq!(payload_to_content(None), Content::empty());
        assert_eq!(
            content_to_payload(Content::empty()),
            payload(BINARY_NULL, b"")
        );
        let mut other = payload(UNKNOWN_CONTENT, b"<a/>");
        other
            .metadata
            .insert("content-type".into(), b"application/xml".to_vec());
        let content = payload_to_content(Some(other.clone()));
        assert_eq!(content, Content::new("application/xml", &b"<a/>"[..]));
        assert_eq!(content_to_payload(content), other);
        let strange = payload_to_content(Some(payload("binary/protobuf", b"x")));
        assert!(!strange.is_json());
    }

    #[test]
    fn headers_are_lower_case_and_content_headers_dropped() {
        let headers = lower_headers(HashMap::from([
            ("Request-Timeout".to_owned(), "1s".to_owned()),
            ("request-timeout".to_owned(), "1s".to_owned()),
            ("X-Custom".to_owned(), "v".to_owned()),
            ("Content-Type".to_owned(), JSON.to_owned()),
        ]));
        assert_eq!(
            headers.into_iter().collect::<Vec<_>>(),
            [
                ("request-timeout".to_owned(), "1s".to_owned()),
                ("x-custom".to_owned(), "v".to_owned())
            ]
        );
    }

    #[test]
    fn errors_become_temporal_failures() {
        let failed =
            OperationError::failed("card declined").with_details(&serde_json::json!({"code": 51}));
        let f = operation_error_to_temporal(&failed);
        assert_eq!(f.message, "card declined");
        let Some(FailureInfo::ApplicationFailureInfo(info)) = &f.failure_info else {
            panic!("{f:?}");
        };
        assert_eq!(
            (info.r#type.as_str(), info.non_retryable),
            ("OperationError", true)
        );
        let cause = f.cause.as_deref().unwrap();
        let Some(FailureInfo::ApplicationFailureInfo(info)) = &cause.failure_info else {
            panic!("{cause:?}");
        };
        let details = &info.details.as_ref().unwrap().payloads[0];
        assert_eq!(details, &json_payload(&serde_json::json!({"code": 51})));

        let canceled = operation_error_to_temporal(&OperationError::canceled("stop"));
        assert!(matches!(
            canceled.failure_info,
            Some(FailureInfo::CanceledFailureInfo(_))
        ));

        let bad = HandlerError::bad_request("bad input");
        let f = handler_error_to_temporal(&bad);
        let Some(FailureInfo::NexusHandlerFailureInfo(info)) = &f.failure_info else {
            panic!("{f:?}");
        };
        assert_eq!(info.r#type, "BAD_REQUEST");
        assert_eq!(
            info.retry_behavior,
            NexusHandlerErrorRetryBehavior::Unspecified as i32
        );
        let forced = HandlerError::new(HandlerErrorType::Internal, "x").with_retryable(false);
        let legacy = legacy_handler_error(&forced);
        assert_eq!(legacy.error_type, "INTERNAL");
        assert_eq!(
            legacy.retry_behavior,
            NexusHandlerErrorRetryBehavior::NonRetryable as i32
        );
        let legacy_failure = legacy.failure.unwrap();
        assert_eq!(legacy_failure.message, "x");
        assert_eq!(
            legacy_failure.metadata.get("type").map(String::as_str),
            Some("temporal.api.failure.v1.Failure")
        );
        let op = legacy_operation_error(&OperationError::canceled("stop"));
        assert_eq!(op.operation_state, "canceled");
    }
}
