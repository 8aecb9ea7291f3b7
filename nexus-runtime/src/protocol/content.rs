//! Header maps: `Content-*` headers and [`Content`], the handler's header map, callback headers.

use std::collections::BTreeMap;

use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue};

use super::header::{CALLBACK_PREFIX, CONTENT_PREFIX};
use crate::codec::{Content, ContentHeaders, JSON};
use crate::message::Headers;

/// A header name or value that cannot be sent over HTTP.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("cannot send header `{name}`: {problem}")]
pub struct HeaderError {
    /// The header's name.
    pub name: String,
    /// What is wrong with it.
    pub problem: String,
}

fn insert(headers: &mut HeaderMap, name: &str, value: &str) -> Result<(), HeaderError> {
    // `HeaderName::from_bytes` lower-cases the name itself.
    let header_name = HeaderName::from_bytes(name.as_bytes()).map_err(|_| HeaderError {
        name: name.to_owned(),
        problem: "not a valid header name".into(),
    })?;
    insert_value(headers, header_name, name, value)
}

/// Inserts `value` under `header_name` (`name` as the caller wrote it, for errors).
fn insert_value(
    headers: &mut HeaderMap,
    header_name: HeaderName,
    name: &str,
    value: &str,
) -> Result<(), HeaderError> {
    let header_value = if value == crate::codec::JSON {
        HeaderValue::from_static(crate::codec::JSON)
    } else {
        HeaderValue::from_str(value).map_err(|_| HeaderError {
            name: name.to_owned(),
            problem: format!("value {value:?} is not a valid header value"),
        })?
    };
    headers.insert(header_name, header_value);
    Ok(())
}

/// A header value as text; bytes outside visible ASCII are decoded leniently.
fn text(value: &HeaderValue) -> String {
    value
        .to_str()
        .map(str::to_owned)
        .unwrap_or_else(|_| String::from_utf8_lossy(value.as_bytes()).into_owned())
}

/// The first value of each header whose name passes `keep` (which maps it to the key to use),
/// in one pass over the map (its values of one name come together, the first one first).
fn first_values<'a>(
    headers: &'a HeaderMap,
    keep: impl FnMut(&'a str) -> Option<&'a str>,
) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    each_first_value(headers, keep, |key, value| {
        out.insert(key.to_owned(), text(value));
    });
    out
}

/// Calls `visit` with the key `keep` gives each header name it keeps, and the header's first
/// value.
fn each_first_value<'a>(
    headers: &'a HeaderMap,
    mut keep: impl FnMut(&'a str) -> Option<&'a str>,
    mut visit: impl FnMut(&'a str, &'a HeaderValue),
) {
    let mut previous: Option<&HeaderName> = None;
    for (name, value) in headers {
        if previous == Some(name) {
            continue;
        }
        previous = Some(name);
        if let Some(key) = keep(name.as_str()) {
            visit(key, value);
        }
    }
}

/// First values of the headers whose name starts with `prefix`, keyed by the rest of the name.
fn with_prefix(headers: &HeaderMap, prefix: &str) -> BTreeMap<String, String> {
    first_values(headers, |name| {
        name.strip_prefix(prefix).filter(|key| !key.is_empty())
    })
}

/// The payload of a request or response: the body with its `Content-*` headers, keyed without
/// the prefix (`Content-Type` is `type`).
///
/// `Content-Length` is left out: it is framing, already accounted for by the body, and keeping it
/// would make a payload compare differently after crossing the wire.
pub fn content_from_headers(headers: &HeaderMap, body: Bytes) -> Content {
    let mut content_headers = ContentHeaders::new();
    let keep = |name| content_key(name);
    each_first_value(headers, keep, |key, value| {
        if key == "type" && value.as_bytes() == JSON.as_bytes() {
            // The usual one, without copying it.
            content_headers.set_type(JSON);
        } else {
            content_headers.insert(key.to_owned(), text(value));
        }
    });
    Content {
        headers: content_headers,
        data: body,
    }
}

/// The key of a `Content-*` header a payload keeps (all but `Content-Length`).
fn content_key(name: &str) -> Option<&str> {
    name.strip_prefix(CONTENT_PREFIX)
        .filter(|key| !key.is_empty() && *key != "length")
}

/// Writes the `Content-*` headers of a payload (except `length`, which the HTTP layer derives
/// from the body).
pub fn add_content_headers(content: &Content, headers: &mut HeaderMap) -> Result<(), HeaderError> {
    for (key, value) in &content.headers {
        if key.eq_ignore_ascii_case("length") {
            continue;
        }
        if key == "type" {
            // The usual one, without building its name.
            insert_value(headers, http::header::CONTENT_TYPE, "content-type", value)?;
        } else {
            insert(headers, &format!("{CONTENT_PREFIX}{key}"), value)?;
        }
    }
    Ok(())
}

/// Headers that are framing of this hop, not part of what the handler is told.
const HOP_HEADERS: [&str; 4] = ["host", "transfer-encoding", "connection", "keep-alive"];

/// The header map a handler sees: every header except `Content-*`, `Nexus-Callback-*` and the
/// hop's framing (`Host`, `Transfer-Encoding`, `Connection`, `Keep-Alive`), lower-case names, one
/// value each (the first), as the Go handler builds it.
pub fn handler_headers(headers: &HeaderMap) -> Headers {
    first_values(headers, |n| {
        (!n.starts_with(CONTENT_PREFIX)
            && !n.starts_with(CALLBACK_PREFIX)
            && !HOP_HEADERS.contains(&n))
        .then_some(n)
    })
}

/// The `Nexus-Callback-*` headers of a start request with the prefix removed: what the handler
/// must send back on the completion callback.
pub fn callback_headers(headers: &HeaderMap) -> BTreeMap<String, String> {
    with_prefix(headers, CALLBACK_PREFIX)
}

/// Writes callback headers as `Nexus-Callback-<name>` (start requests).
pub fn add_callback_headers(
    callback: &BTreeMap<String, String>,
    headers: &mut HeaderMap,
) -> Result<(), HeaderError> {
    for (key, value) in callback {
        insert(headers, &format!("{CALLBACK_PREFIX}{key}"), value)?;
    }
    Ok(())
}

/// Writes plain headers as they are (caller headers, or callback headers on a completion).
pub fn add_nexus_headers(
    map: &BTreeMap<String, String>,
    headers: &mut HeaderMap,
) -> Result<(), HeaderError> {
    for (key, value) in map {
        insert(headers, key, value)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(
                HeaderName::from_bytes(k.as_bytes()).unwrap(),
                HeaderValue::from_str(v).unwrap(),
            );
        }
        h
    }

    #[test]
    fn content_headers_map_to_keys_without_prefix() {
        let h = map(&[
            ("content-type", "application/json"),
            ("content-length", "2"),
            ("content-encoding", "gzip"),
            ("content-type", "second/value-ignored"),
            ("x-other", "no"),
        ]);
        let c = content_from_headers(&h, Bytes::from_static(b"{}"));
        assert_eq!(
            c.headers,
            ContentHeaders::from([
                ("type".to_owned(), "application/json".to_owned()),
                ("encoding".to_owned(), "gzip".to_owned())
            ])
        );
        let mut out = HeaderMap::new();
        let mut with_length = c.clone();
        with_length.headers.insert("length".into(), "999".into());
        add_content_headers(&with_length, &mut out).unwrap();
        assert_eq!(out.len(), 2);
        assert_eq!(out["content-type"], "application/json");
        assert_eq!(out["content-encoding"], "gzip");
    }

    #[test]
    fn handler_headers_leave_out_content_callback_and_hop_headers() {
        let h = map(&[
            ("host", "127.0.0.1:1"),
            ("content-type", "application/json"),
            ("nexus-callback-token", "t"),
            ("x-custom-hdr", "abc"),
            ("x-custom-hdr", "second"),
            ("nexus-request-id", "r"),
            ("transfer-encoding", "chunked"),
        ]);
        let got = handler_headers(&h);
        assert_eq!(
            got,
            Headers::from([
                ("nexus-request-id".to_owned(), "r".to_owned()),
                ("x-custom-hdr".to_owned(), "abc".to_owned())
            ])
        );
        assert_eq!(
            callback_headers(&h),
            BTreeMap::from([("token".to_owned(), "t".to_owned())])
        );
    }

    #[test]
    fn invalid_header_names_and_values_are_reported() {
        let mut out = HeaderMap::new();
        let err = add_nexus_headers(&BTreeMap::from([("bad name".into(), "v".into())]), &mut out)
            .unwrap_err();
        assert_eq!(err.name, "bad name");
        let err = add_callback_headers(&BTreeMap::from([("t".into(), "a\nb".into())]), &mut out)
            .unwrap_err();
        assert!(err.to_string().contains("nexus-callback-t"), "{err}");
    }
}
