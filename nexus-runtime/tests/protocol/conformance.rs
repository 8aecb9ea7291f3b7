//! The wire rules without sockets, mirroring sdk-go's `api_test.go` (`TestEncodeLink`,
//! `TestDecodeLink`, `TestAddLinksToHeader`, `TestGetLinksFromHeader`, `TestParseDuration`,
//! `TestFailure_JSONMarshalling`), `timestamp_test.go` and `client_test.go`'s `TestNewClient`.

use std::time::{Duration, UNIX_EPOCH};

use http::{HeaderMap, HeaderValue};
use nexus_runtime::Link;
use nexus_runtime::error::{Failure, HandlerError, OperationError};
use nexus_runtime::protocol::{
    add_links_to_headers, decode_link, encode_link, format_duration, format_http_date,
    format_rfc3339, links_from_headers, parse_duration, parse_http_date, parse_rfc3339,
};

const URL: &str = "https://example.com/path/to/something?param1=value1&param2=value2";

#[test]
fn encode_link_cases() {
    let ok = [
        (
            Link::new(URL, "text/plain"),
            format!("<{URL}>; type=\"text/plain\""),
        ),
        (
            Link::new(
                "nexus:///path/to/something?param1=value1",
                "nexus.data_type",
            ),
            "<nexus:///path/to/something?param1=value1>; type=\"nexus.data_type\"".to_owned(),
        ),
    ];
    for (link, expected) in ok {
        assert_eq!(encode_link(&link).unwrap(), expected);
    }
    let bad = [
        ("invalid url empty", Link::new("", "text/plain")),
        (
            "invalid query not percent-encoded",
            Link::new(format!("{URL};"), "text/plain"),
        ),
        ("invalid type empty", Link::new(URL, "")),
        ("invalid type invalid chars", Link::new(URL, "text/plain;")),
    ];
    for (name, link) in bad {
        let err = encode_link(&link).unwrap_err();
        assert!(
            err.to_string().starts_with("cannot encode link"),
            "{name}: {err}"
        );
    }
}

#[test]
fn decode_link_cases() {
    let ok = [
        ("valid", format!("<{URL}>; type=\"text/plain\""), URL, "text/plain"),
        (
            "valid multiple params",
            format!("<{URL}>; type=\"text/plain\"; Param=\"value\""),
            URL,
            "text/plain",
        ),
        (
            "valid param not quoted",
            format!("<{URL}>; type=text/plain"),
            URL,
            "text/plain",
        ),
        (
            "valid custom URL",
            "<nexus:///path/to/something?param=value>; type=\"nexus.data_type\"".to_owned(),
            "nexus:///path/to/something?param=value",
            "nexus.data_type",
        ),
        (
            "valid Temporal link",
            "<temporal:///namespaces/default/workflows/wf/run/history?eventID=5&eventType=NexusOperationScheduled&referenceType=EventReference>; type=\"temporal.api.common.v1.Link.WorkflowEvent\"".to_owned(),
            "temporal:///namespaces/default/workflows/wf/run/history?eventID=5&eventType=NexusOperationScheduled&referenceType=EventReference",
            "temporal.api.common.v1.Link.WorkflowEvent",
        ),
    ];
    for (name, input, url, link_type) in &ok {
        assert_eq!(
            decode_link(input).unwrap(),
            Link::new(*url, *link_type),
            "{name}"
        );
    }
    let bare = "https://example.com/path/to/something?param1=value1&param2=value2";
    let bad = [
        (
            "invalid url",
            "<https://example.com/path/to/something%?param1=value1&param2=value2>".to_owned(),
        ),
        (
            "invalid trailing semi-colon",
            format!("<{URL}>; type=\"text/plain\";"),
        ),
        (
            "invalid empty param part",
            format!("<{URL}>; ; type=\"text/plain"),
        ),
        (
            "invalid no type param trailing semi-colon",
            format!("<{URL}>;"),
        ),
        (
            "invalid url not enclosed",
            format!("{bare}; type=\"text/plain\""),
        ),
        (
            "invalid url missing closing bracket",
            format!("<{bare}; type=\"text/plain\""),
        ),
        (
            "invalid url missing opening bracket",
            format!("{bare}>; type=\"text/plain\""),
        ),
        (
            "invalid param missing quote",
            format!("<{bare}>; type=\"text/plain"),
        ),
        (
            "invalid multiple params missing semi-colon",
            format!("<{bare}>; type=\"text/plain\" Param=value"),
        ),
        (
            "invalid missing semi-colon after url",
            format!("<{bare}> type=\"text/plain\""),
        ),
        ("invalid param missing value", format!("<{bare}>; type")),
        (
            "invalid param missing value with equal sign",
            format!("<{bare}>; type="),
        ),
        ("invalid missing type key", format!("<{URL}>")),
        ("invalid url empty", "<>; type=\"text/plain\"".to_owned()),
        ("invalid empty value", String::new()),
        ("invalid type characters", format!("<{URL}>; type=\"a b\"")),
        (
            "invalid relative url",
            "</relative/path>; type=\"t\"".to_owned(),
        ),
        ("invalid lone quote", format!("<{URL}>; type=\"")),
    ];
    for (name, input) in &bad {
        let err = decode_link(input).unwrap_err();
        assert!(err.to_string().starts_with("invalid link"), "{name}: {err}");
    }
    assert!(ok.len() + bad.len() >= 18);
}

#[test]
fn add_links_to_headers_cases() {
    let mut headers = HeaderMap::new();
    add_links_to_headers(
        &[
            Link::new("https://example.com/path/to/something?param=value", "url"),
            Link::new("https://foo.com/path/to/something?bar=value", "url"),
        ],
        &mut headers,
    )
    .unwrap();
    let values: Vec<_> = headers.get_all("nexus-link").iter().collect();
    assert_eq!(
        values,
        [
            "<https://example.com/path/to/something?param=value>; type=\"url\"",
            "<https://foo.com/path/to/something?bar=value>; type=\"url\"",
        ]
    );
    let err = add_links_to_headers(
        &[Link::new("https://example.com/path?param=value%", "url")],
        &mut HeaderMap::new(),
    )
    .unwrap_err();
    assert!(err.to_string().contains("cannot encode link"), "{err}");
}

#[test]
fn links_from_headers_cases() {
    let one = "<https://example.com/path/to/something?param=value>; type=\"url\"";
    let two = "<https://foo.com/path/to/something?bar=value>; type=\"url\"";
    let expected = [
        Link::new("https://example.com/path/to/something?param=value", "url"),
        Link::new("https://foo.com/path/to/something?bar=value", "url"),
    ];
    let mut single = HeaderMap::new();
    single.append("nexus-link", HeaderValue::from_static(one));
    assert_eq!(links_from_headers(&single).unwrap(), expected[..1]);
    let mut multiple = single.clone();
    multiple.append("nexus-link", HeaderValue::from_static(two));
    assert_eq!(links_from_headers(&multiple).unwrap(), expected);
    let mut one_value = HeaderMap::new();
    one_value.insert(
        "nexus-link",
        HeaderValue::from_str(&format!("{one}, {two}")).unwrap(),
    );
    assert_eq!(links_from_headers(&one_value).unwrap(), expected);
    let mut bad = HeaderMap::new();
    bad.insert(
        "nexus-link",
        HeaderValue::from_static("<https://example.com/path?param=value> type=\"url\""),
    );
    assert!(links_from_headers(&bad).is_err());
    assert_eq!(links_from_headers(&HeaderMap::new()).unwrap(), []);
}

#[test]
fn parse_duration_cases() {
    assert!(
        parse_duration("invalid")
            .unwrap_err()
            .to_string()
            .starts_with("invalid duration")
    );
    assert_eq!(parse_duration("10ms").unwrap(), Duration::from_millis(10));
    assert_eq!(parse_duration("10.1ms").unwrap(), Duration::from_millis(10));
    assert_eq!(parse_duration("1s").unwrap(), Duration::from_secs(1));
    assert_eq!(
        parse_duration("999m").unwrap(),
        Duration::from_secs(999 * 60)
    );
    assert_eq!(parse_duration("1.3s").unwrap(), Duration::from_millis(1300));
    assert_eq!(format_duration(Duration::from_millis(9999)), "9999ms");
}

#[test]
fn timestamps() {
    // Start time: HTTP-date, whole seconds. Close time: RFC 3339 UTC with Z, nanoseconds.
    let t = UNIX_EPOCH + Duration::new(1_795_438_913, 123_456_789);
    assert_eq!(format_http_date(t), "Mon, 23 Nov 2026 13:01:53 GMT");
    assert_eq!(
        parse_http_date("Mon, 23 Nov 2026 13:01:53 GMT").unwrap(),
        UNIX_EPOCH + Duration::from_secs(1_795_438_913)
    );
    assert_eq!(format_rfc3339(t), "2026-11-23T13:01:53.123456789Z");
    for digits in ["", ".123", ".123456", ".123456789"] {
        let text = format!("2026-11-23T13:01:53{digits}Z");
        assert!(parse_rfc3339(&text).is_ok(), "{text}");
    }
    assert_eq!(parse_rfc3339(&format_rfc3339(t)).unwrap(), t);
    assert!(parse_rfc3339("2026-11-23 13:01:53").is_err());
    assert!(parse_http_date("2026-11-23T13:01:53Z").is_err());
}

#[test]
fn failure_json_marshalling() {
    let failure = Failure::new("simple")
        .with_stack_trace("at x")
        .with_metadata("key", "value")
        .with_details(serde_json::json!({"a": [1, "b"]}))
        .with_cause(Failure::new("inner"));
    let json = serde_json::to_value(&failure).unwrap();
    assert_eq!(
        json,
        serde_json::json!({
            "message": "simple",
            "stackTrace": "at x",
            "metadata": {"key": "value"},
            "details": {"a": [1, "b"]},
            "cause": {"message": "inner"}
        })
    );
    assert_eq!(serde_json::from_value::<Failure>(json).unwrap(), failure);
    // The envelopes round-trip through their Failures (failure_test.go).
    let handler = HandlerError::unavailable("later")
        .with_retryable(false)
        .with_cause(Failure::new("original"));
    assert_eq!(
        HandlerError::from_failure(&handler.to_failure()).unwrap(),
        handler
    );
    let operation = OperationError::canceled("stop").with_cause(Failure::new("original"));
    assert_eq!(
        OperationError::from_failure(&operation.to_failure()).unwrap(),
        operation
    );
}

#[cfg(feature = "http")]
#[test]
fn new_transport_rejects_bad_base_urls() {
    use nexus_runtime::transport::HttpTransport;
    assert!(HttpTransport::new("").is_err());
    let err = HttpTransport::new("grpc://example.com").unwrap_err();
    assert!(err.to_string().contains("only http and https"), "{err}");
    assert!(HttpTransport::new("https://example.com/nexus").is_ok());
}
