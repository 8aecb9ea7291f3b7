//! Property tests of every parser that reads the network (`protocol`): none panics on arbitrary
//! input, and what is written reads back as the same value. Seeded, 256 cases per property.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use nexus_runtime::codec::Content;
use nexus_runtime::completion::Completion;
use nexus_runtime::error::{
    Failure, HandlerError, HandlerErrorType, OperationError, OperationErrorState,
};
use nexus_runtime::protocol::{
    self, FailureFormat, Route, add_content_headers, build_completion_request, callback_headers,
    cancel_path, content_from_headers, decode_link, encode_link, error_from_response,
    escape_segment, format_duration, format_http_date, format_rfc3339, handler_error_response,
    handler_headers, links_from_headers, parse_cancel_response, parse_completion, parse_duration,
    parse_http_date, parse_rfc3339, parse_route, parse_start_response, query_param,
    start_error_response, start_path,
};
use nexus_runtime::{CallError, Link};
use proptest::prelude::*;
use proptest::test_runner::{Config, FileFailurePersistence, RngSeed};

fn config() -> Config {
    Config {
        cases: 256,
        rng_seed: RngSeed::Fixed(0x006e_6578_7573),
        failure_persistence: Some(Box::new(FileFailurePersistence::WithSource(
            "proptest-regressions",
        ))),
        ..Config::default()
    }
}

/// The last second both timestamp formats can write (end of year 9999).
const LAST_SECOND: u64 = 253_402_300_799;

// ---------------------------------------------------------------------------------------------
// Strategies.

/// Text that looks like what a header or path could carry, weighted towards the characters the
/// parsers treat specially, plus arbitrary Unicode.
fn wire_text() -> impl Strategy<Value = String> {
    prop_oneof![
        "[ -~]{0,40}",
        "[<>;=\",%:/.?#a-z0-9 TZtz+-]{0,40}",
        any::<String>(),
    ]
}

/// A short string: printable Unicode, or the characters JSON escapes.
fn short_text() -> impl Strategy<Value = String> {
    prop_oneof!["\\PC{0,12}", "[\\x00-\\x1f\"\\\\/]{0,4}"]
}

/// A header value: any bytes `http` accepts in one (visible ASCII, tab, obs-text).
fn header_value() -> impl Strategy<Value = HeaderValue> {
    prop_oneof![
        wire_text().prop_filter_map("a header value", |s| HeaderValue::from_str(&s).ok()),
        proptest::collection::vec(any::<u8>(), 0..40)
            .prop_filter_map("a header value", |b| HeaderValue::from_bytes(&b).ok()),
        prop::sample::select(vec![
            "succeeded",
            "failed",
            "canceled",
            "application/json",
            "application/x-nexus-encrypted",
            "Mon, 23 Nov 2026 13:01:53 GMT",
            "2026-11-23T13:01:54.355519283Z",
            "1970-01-01T00:00:00+01:00",
            "<https://a.example/b?c=d>; type=\"x.Y\"",
            "<a:b>; type=T, <c:d>; type=\"U\"",
            "true",
            "1500ms",
        ])
        .prop_map(HeaderValue::from_static),
    ]
}

/// A header map with the protocol's headers (and a few others), arbitrary values.
fn header_map() -> impl Strategy<Value = HeaderMap> {
    let names = prop_oneof![
        prop::sample::select(vec![
            "content-type",
            "content-length",
            "content-encoding",
            "content-key-id",
            "nexus-operation-state",
            "nexus-operation-token",
            "nexus-operation-id",
            "nexus-operation-start-time",
            "nexus-operation-close-time",
            "nexus-link",
            "nexus-callback-token",
            "nexus-request-retryable",
            "nexus-request-id",
            "request-timeout",
            "host",
            "transfer-encoding",
        ])
        .prop_map(HeaderName::from_static),
        "[a-z][a-z0-9-]{0,20}".prop_map(|n| HeaderName::from_bytes(n.as_bytes()).unwrap()),
    ];
    proptest::collection::vec((names, header_value()), 0..8).prop_map(|pairs| {
        let mut headers = HeaderMap::new();
        for (name, value) in pairs {
            headers.append(name, value);
        }
        headers
    })
}

/// A JSON value, a few levels deep.
fn json_value() -> impl Strategy<Value = serde_json::Value> {
    let leaf = prop_oneof![
        Just(serde_json::Value::Null),
        any::<bool>().prop_map(serde_json::Value::from),
        any::<i64>().prop_map(serde_json::Value::from),
        short_text().prop_map(serde_json::Value::from),
    ];
    leaf.prop_recursive(3, 16, 4, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..4).prop_map(serde_json::Value::from),
            proptest::collection::btree_map(short_text(), inner, 0..4)
                .prop_map(|m| serde_json::Value::Object(m.into_iter().collect())),
        ]
    })
}

/// A Failure without a cause.
fn failure_leaf() -> impl Strategy<Value = Failure> {
    (
        short_text(),
        short_text(),
        proptest::collection::btree_map(short_text(), short_text(), 0..3),
        proptest::option::of(json_value()),
    )
        .prop_map(|(message, stack_trace, metadata, details)| Failure {
            message,
            stack_trace,
            metadata,
            details,
            cause: None,
        })
}

/// A Failure with a chain of causes.
fn failure() -> impl Strategy<Value = Failure> {
    failure_leaf().prop_recursive(4, 4, 1, |inner| {
        (failure_leaf(), inner).prop_map(|(mut outer, cause)| {
            outer.cause = Some(Box::new(cause));
            outer
        })
    })
}

/// A body: arbitrary bytes, a Failure's JSON, or JSON of another shape.
fn body() -> impl Strategy<Value = Bytes> {
    prop_oneof![
        proptest::collection::vec(any::<u8>(), 0..64).prop_map(Bytes::from),
        failure().prop_map(|f| Bytes::from(serde_json::to_vec(&f).unwrap())),
        json_value().prop_map(|v| Bytes::from(serde_json::to_vec(&v).unwrap())),
    ]
}

/// A link the protocol can carry: an absolute, percent-encoded URL without `,` (nor `;` in the
/// query) and a `[A-Za-z0-9_./]+` type.
fn valid_link() -> impl Strategy<Value = Link> {
    (
        "[a-z][a-z0-9+.-]{0,8}",
        "[A-Za-z0-9/._~!$&'()*+=:@-]{0,30}",
        proptest::option::of("[A-Za-z0-9/._~!$&'()*+=:@?-]{0,20}"),
        proptest::option::of("[A-Za-z0-9/._~;,-]{0,10}"),
        proptest::collection::vec(any::<u8>(), 0..4),
        "[A-Za-z0-9_./]{1,30}",
    )
        .prop_map(|(scheme, path, query, fragment, escaped, link_type)| {
            let mut url = format!("{scheme}:{path}");
            for b in escaped {
                url.push_str(&format!("%{b:02X}"));
            }
            if let Some(q) = query {
                url.push('?');
                url.push_str(&q);
            }
            if let Some(f) = fragment {
                // The fragment may hold a `;`, not a `,`.
                url.push('#');
                url.push_str(&f.replace(',', ""));
            }
            Link::new(url, link_type)
        })
}

/// A time the timestamp formats can write.
fn writable_time() -> impl Strategy<Value = SystemTime> {
    (0..=LAST_SECOND, 0..1_000_000_000u32).prop_map(|(s, n)| UNIX_EPOCH + Duration::new(s, n))
}

/// A content header key the HTTP mapping keeps (`length` is framing) and a value it can send
/// (no surrounding whitespace: HTTP drops it).
fn content_headers() -> impl Strategy<Value = BTreeMap<String, String>> {
    proptest::collection::btree_map(
        "[a-z0-9][a-z0-9-]{0,15}".prop_filter("not framing", |k| k != "length"),
        prop_oneof![
            "[!-~]([ -~]{0,30}[!-~])?",
            Just("application/json".to_owned())
        ],
        0..4,
    )
}

fn completion() -> impl Strategy<Value = Completion> {
    let outcome = prop_oneof![
        (
            content_headers(),
            proptest::collection::vec(any::<u8>(), 0..64)
        )
            .prop_map(|(headers, data)| Ok(Content {
                headers: headers.into(),
                data: data.into()
            })),
        (
            prop::sample::select(vec![
                OperationErrorState::Failed,
                OperationErrorState::Canceled
            ]),
            any::<String>(),
            proptest::option::of(json_value()),
        )
            .prop_map(|(state, message, details)| {
                let mut e = match state {
                    OperationErrorState::Canceled => OperationError::canceled(message),
                    _ => OperationError::failed(message),
                };
                if let Some(details) = details {
                    e = e.with_details(&details);
                }
                Err(e)
            }),
    ];
    (
        "[!-~]{1,30}",
        outcome,
        proptest::collection::vec(valid_link(), 0..3),
        proptest::option::of(0..=LAST_SECOND),
        proptest::option::of(writable_time()),
    )
        .prop_map(|(token, outcome, links, start, close_time)| Completion {
            token,
            outcome,
            links,
            // An HTTP-date has whole seconds.
            start_time: start.map(|s| UNIX_EPOCH + Duration::from_secs(s)),
            close_time,
        })
}

// ---------------------------------------------------------------------------------------------
// Properties.

proptest! {
    #![proptest_config(config())]

    #[test]
    fn durations_never_panic(text in wire_text(), digits in "[0-9]{1,25}(\\.[0-9]{1,25})?(ms|s|m)") {
        let _ = parse_duration(&text);
        let _ = parse_duration(&digits);
    }

    #[test]
    fn durations_round_trip(ms in any::<u64>()) {
        let d = Duration::from_millis(ms);
        prop_assert_eq!(parse_duration(&format_duration(d)).unwrap(), d);
    }

    #[test]
    fn durations_read_every_unit(n in 0..1_000_000u64) {
        prop_assert_eq!(parse_duration(&format!("{n}ms")).unwrap(), Duration::from_millis(n));
        prop_assert_eq!(parse_duration(&format!("{n}s")).unwrap(), Duration::from_secs(n));
        prop_assert_eq!(parse_duration(&format!("{n}m")).unwrap(), Duration::from_secs(n * 60));
        prop_assert_eq!(
            parse_duration(&format!("{n}.5s")).unwrap(),
            Duration::from_millis(n * 1000 + 500)
        );
    }

    #[test]
    fn timestamps_never_panic(
        text in prop_oneof![
            wire_text(),
            // Near misses of both formats, at the ends of the range too.
            "(19[67][0-9]|20[0-9]{2}|99[0-9]{2}|[0-9]{4})-[0-9]{2}-[0-9]{2}[Tt ][0-9]{2}:[0-9]{2}:[0-9]{2}(\\.[0-9]{0,12})?([Zz]|[+-][0-9]{2}:[0-9]{2}|[+-][0-9:]{0,6})?",
            "(Mon|Fri|Sunday), [0-9]{1,2}[ -](Jan|Dec)[ -][0-9]{2,4} [0-9]{2}:[0-9]{2}:[0-9]{2} GMT",
        ]
    ) {
        // Whatever parses can be written back.
        if let Ok(t) = parse_http_date(&text) {
            let _ = format_http_date(t);
        }
        if let Ok(t) = parse_rfc3339(&text) {
            prop_assert_eq!(parse_rfc3339(&format_rfc3339(t)).unwrap(), t);
        }
    }

    #[test]
    fn timestamp_formatters_never_panic(secs in any::<u64>(), before in any::<bool>()) {
        let t = if before {
            UNIX_EPOCH.checked_sub(Duration::from_secs(secs)).unwrap_or(UNIX_EPOCH)
        } else {
            UNIX_EPOCH.checked_add(Duration::from_secs(secs)).unwrap_or(UNIX_EPOCH)
        };
        let _ = parse_http_date(&format_http_date(t)).unwrap();
        let _ = parse_rfc3339(&format_rfc3339(t)).unwrap();
    }

    #[test]
    fn timestamps_round_trip(t in writable_time()) {
        prop_assert_eq!(parse_rfc3339(&format_rfc3339(t)).unwrap(), t);
        let whole = UNIX_EPOCH + Duration::from_secs(t.duration_since(UNIX_EPOCH).unwrap().as_secs());
        prop_assert_eq!(parse_http_date(&format_http_date(t)).unwrap(), whole);
    }

    #[test]
    fn rfc3339_offsets_shift_to_utc(t in writable_time(), minutes in 0..(24 * 60u64), east in any::<bool>()) {
        // The same instant written in local time with an offset.
        let shift = Duration::from_secs(minutes * 60);
        let local = if east { t.checked_add(shift) } else { t.checked_sub(shift) };
        let Some(local) = local.filter(|l| *l >= UNIX_EPOCH && *l <= UNIX_EPOCH + Duration::from_secs(LAST_SECOND)) else {
            return Ok(());
        };
        let text = format_rfc3339(local);
        let sign = if east { '+' } else { '-' };
        let text = format!("{}{sign}{:02}:{:02}", text.trim_end_matches('Z'), minutes / 60, minutes % 60);
        prop_assert_eq!(parse_rfc3339(&text).unwrap(), t, "{}", text);
    }

    #[test]
    fn links_never_panic(text in wire_text(), headers in header_map()) {
        let _ = decode_link(&text);
        let _ = links_from_headers(&headers);
        let _ = encode_link(&Link::new(text.clone(), text));
    }

    #[test]
    fn links_round_trip(links in proptest::collection::vec(valid_link(), 1..4)) {
        for link in &links {
            prop_assert_eq!(&decode_link(&encode_link(link).unwrap()).unwrap(), link);
        }
        let mut headers = HeaderMap::new();
        protocol::add_links_to_headers(&links, &mut headers).unwrap();
        prop_assert_eq!(links_from_headers(&headers).unwrap(), links.clone());
        // Several links in one value, comma-separated, as other senders write them.
        let joined: Vec<String> = links.iter().map(|l| encode_link(l).unwrap()).collect();
        let mut one = HeaderMap::new();
        one.insert(protocol::header::LINK, HeaderValue::from_str(&joined.join(", ")).unwrap());
        prop_assert_eq!(links_from_headers(&one).unwrap(), links);
    }

    #[test]
    fn failures_never_panic(status in 100..600u16, headers in header_map(), body in body()) {
        let _ = serde_json::from_slice::<Failure>(&body);
        let status = StatusCode::from_u16(status).unwrap();
        let _ = error_from_response(status, &headers, &body);
        let _ = parse_start_response(status, &headers, body.clone());
        let _ = parse_cancel_response(status, &headers, &body);
    }

    #[test]
    fn failures_round_trip(f in failure()) {
        let json = serde_json::to_vec(&f).unwrap();
        prop_assert_eq!(serde_json::from_slice::<Failure>(&json).unwrap(), f.clone());
        // Whatever a Failure carries, reading it as an error does not panic.
        let _ = HandlerError::from_failure(&f);
        let _ = OperationError::from_failure(&f);
    }

    #[test]
    fn handler_errors_cross_the_wire(
        kind in prop::sample::select(HandlerErrorType::ALL.to_vec()),
        message in any::<String>(),
        retryable in proptest::option::of(any::<bool>()),
        format in prop::sample::select(vec![FailureFormat::Envelope, FailureFormat::CauseIfPresent]),
    ) {
        let mut error = HandlerError::new(kind.clone(), message.clone());
        error.retryable_override = retryable;
        let response = handler_error_response(&error, format);
        let back = error_from_response(response.status, &response.headers, &response.body());
        let CallError::Handler(back) = back else {
            return Err(TestCaseError::fail(format!("{back:?}")));
        };
        prop_assert_eq!(back.error_type, kind);
        prop_assert_eq!(back.message, message);
        prop_assert_eq!(back.retryable_override, retryable);
    }

    #[test]
    fn operation_errors_cross_the_wire(message in any::<String>(), canceled in any::<bool>(), details in proptest::option::of(json_value())) {
        let mut error = if canceled { OperationError::canceled(message) } else { OperationError::failed(message) };
        if let Some(details) = &details {
            error = error.with_details(details);
        }
        let response = start_error_response(&error.clone().into(), FailureFormat::Envelope);
        let back = error_from_response(response.status, &response.headers, &response.body());
        prop_assert_eq!(back, CallError::Operation(error));
    }

    #[test]
    fn routes_never_panic(path in wire_text(), query in proptest::option::of(wire_text()), name in wire_text()) {
        let _ = parse_route(&path);
        let _ = parse_route(&format!("/{path}"));
        let _ = query_param(query.as_deref(), &name);
    }

    #[test]
    fn routes_round_trip(service in any::<String>(), operation in any::<String>()) {
        prop_assume!(!service.is_empty() && !operation.is_empty());
        prop_assert_eq!(
            parse_route(&start_path(&service, &operation)).unwrap(),
            Route::Start { service: service.clone(), operation: operation.clone() }
        );
        prop_assert_eq!(
            parse_route(&cancel_path(&service, &operation)).unwrap(),
            Route::Cancel { service: service.clone(), operation: operation.clone(), token: None }
        );
        // The deprecated form carries the token in the path.
        let token = format!("{service}{operation}");
        let deprecated = format!("{}/{}/cancel", start_path(&service, &operation), escape_segment(&token));
        prop_assert_eq!(
            parse_route(&deprecated).unwrap(),
            Route::Cancel { service, operation, token: Some(token) }
        );
    }

    #[test]
    fn content_headers_never_panic(headers in header_map(), body in body(), keys in proptest::collection::btree_map(wire_text(), wire_text(), 0..4)) {
        let _ = content_from_headers(&headers, body);
        let _ = handler_headers(&headers);
        let _ = callback_headers(&headers);
        let mut out = HeaderMap::new();
        let _ = add_content_headers(&Content { headers: keys.clone().into(), data: Bytes::new() }, &mut out);
        let _ = protocol::add_callback_headers(&keys, &mut out);
        let _ = protocol::add_nexus_headers(&keys, &mut out);
    }

    #[test]
    fn content_round_trips(headers in content_headers(), data in proptest::collection::vec(any::<u8>(), 0..64)) {
        let content = Content { headers: headers.into(), data: data.into() };
        let mut map = HeaderMap::new();
        add_content_headers(&content, &mut map).unwrap();
        prop_assert_eq!(content_from_headers(&map, content.data.clone()), content);
    }

    #[test]
    fn completions_never_panic(headers in header_map(), body in body()) {
        // Whatever is accepted can be sent on.
        if let Ok(completion) = parse_completion(&headers, body) {
            let _ = build_completion_request(&completion, &BTreeMap::new(), FailureFormat::Envelope);
        }
    }

    #[test]
    fn completions_round_trip(completion in completion()) {
        let request = build_completion_request(&completion, &BTreeMap::new(), FailureFormat::Envelope).unwrap();
        prop_assert_eq!(parse_completion(&request.headers, request.body).unwrap(), completion);
    }
}
