//! Paths and query parameters: escaping names as path segments, and recognising the routes.

use std::borrow::Cow;

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, percent_decode_str, utf8_percent_encode};

use crate::error::HandlerError;

/// Everything but RFC 3986's unreserved characters is escaped, so `/`, `?`, `%` and spaces in a
/// name never change the shape of the path.
const SEGMENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

/// Escapes a service or operation name (or a token) as one path segment.
///
/// ```
/// use nexus_runtime::protocol::escape_segment;
/// assert_eq!(escape_segment("Ser/vic e"), "Ser%2Fvic%20e");
/// ```
pub fn escape_segment(name: &str) -> Cow<'_, str> {
    utf8_percent_encode(name, SEGMENT).into()
}

/// The path of a start request, relative to where the handler is mounted.
pub fn start_path(service: &str, operation: &str) -> String {
    format!("/{}/{}", escape_segment(service), escape_segment(operation))
}

/// The path of a cancel request (the token travels in the `Nexus-Operation-Token` header).
pub fn cancel_path(service: &str, operation: &str) -> String {
    format!("{}/cancel", start_path(service, operation))
}

/// What a request path asks for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Route {
    /// `/{service}/{operation}`
    Start {
        /// The service's name, unescaped.
        service: String,
        /// The operation's name, unescaped.
        operation: String,
    },
    /// `/{service}/{operation}/cancel`, or the deprecated `/{service}/{operation}/{token}/cancel`.
    Cancel {
        /// The service's name, unescaped.
        service: String,
        /// The operation's name, unescaped.
        operation: String,
        /// The token from the deprecated path form; `None` for the current form, whose token is
        /// in the `Nexus-Operation-Token` header or the `token` query parameter.
        token: Option<String>,
    },
}

/// Recognises a request path relative to where the handler is mounted (starting with `/`).
///
/// The *escaped* path is split on `/` and each segment is then unescaped, so names may contain
/// any character. Errors: a segment with an invalid escape, or that is not UTF-8 once unescaped,
/// is BAD_REQUEST; any other shape (including an empty name) is NOT_FOUND, naming the path.
///
/// ```
/// use nexus_runtime::protocol::{parse_route, Route};
/// assert_eq!(
///     parse_route("/Ser%2Fvic%20e/i%20need%20to%2Fbe%20escaped").unwrap(),
///     Route::Start { service: "Ser/vic e".into(), operation: "i need to/be escaped".into() },
/// );
/// ```
pub fn parse_route(path: &str) -> Result<Route, HandlerError> {
    let Some(shape) = RouteShape::of(path) else {
        return Err(HandlerError::not_found(format!(
            "no Nexus route at `{path}`: expected `/{{service}}/{{operation}}` to start an \
             operation or `/{{service}}/{{operation}}/cancel` to cancel one"
        )));
    };
    shape.route()
}

/// The segments of a path with the shape of a Nexus route, still escaped: the shape the routes of
/// a handler's router match (each segment one path segment, none empty).
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct RouteShape<'a> {
    pub service: &'a str,
    pub operation: &'a str,
    /// `None` for a start; for a cancel, the token segment of the deprecated form, if any.
    pub cancel: Option<Option<&'a str>>,
}

impl<'a> RouteShape<'a> {
    /// The route `path` has the shape of: `/{service}/{operation}`, `/{service}/{operation}/cancel`
    /// or `/{service}/{operation}/{token}/cancel`; `None` for any other path.
    pub fn of(path: &'a str) -> Option<Self> {
        let rest = path.strip_prefix('/')?;
        // At most five segments matter (a fifth means no route): split by hand, on the bytes,
        // into an array (no `Vec`, and none of a `char` splitter's generality: `/` is ASCII, so
        // every split is at a character boundary).
        let mut parts: [Option<&str>; 5] = [None; 5];
        let mut found = 0;
        let mut start = 0;
        for (i, byte) in rest.bytes().enumerate() {
            if byte == b'/' {
                if found == parts.len() - 1 {
                    return None;
                }
                parts[found] = Some(&rest[start..i]);
                found += 1;
                start = i + 1;
            }
        }
        parts[found] = Some(&rest[start..]);
        if parts.contains(&Some("")) {
            return None;
        }
        let (service, operation, cancel) = match parts {
            [Some(service), Some(operation), None, ..] => (service, operation, None),
            [Some(service), Some(operation), Some("cancel"), None, _] => {
                (service, operation, Some(None))
            }
            [
                Some(service),
                Some(operation),
                Some(token),
                Some("cancel"),
                None,
            ] => (service, operation, Some(Some(token))),
            _ => return None,
        };
        Some(Self {
            service,
            operation,
            cancel,
        })
    }

    /// The route, its segments unescaped; BAD_REQUEST for a segment with an invalid escape or
    /// that is not UTF-8 once unescaped (see [`parse_route`]).
    pub fn route(&self) -> Result<Route, HandlerError> {
        let service = unescape(self.service)?;
        let operation = unescape(self.operation)?;
        Ok(match self.cancel {
            None => Route::Start { service, operation },
            Some(token) => Route::Cancel {
                service,
                operation,
                token: token.map(unescape).transpose()?,
            },
        })
    }
}

fn unescape(segment: &str) -> Result<String, HandlerError> {
    let bytes = segment.as_bytes();
    if !bytes.contains(&b'%') {
        // Nothing escaped (the common case: names are mostly unreserved characters).
        return Ok(segment.to_owned());
    }
    let valid_escapes = bytes.iter().enumerate().all(|(i, b)| {
        *b != b'%'
            || (bytes.get(i + 1).is_some_and(u8::is_ascii_hexdigit)
                && bytes.get(i + 2).is_some_and(u8::is_ascii_hexdigit))
    });
    if !valid_escapes {
        return Err(HandlerError::bad_request(format!(
            "path segment `{segment}` has a `%` that does not start a percent-escape"
        )));
    }
    percent_decode_str(segment)
        .decode_utf8()
        .map(Cow::into_owned)
        .map_err(|_| {
            HandlerError::bad_request(format!(
                "path segment `{segment}` is not UTF-8 once unescaped"
            ))
        })
}

/// The first value of query parameter `name` (form-decoded), if present and non-empty.
///
/// Its string is no larger than it needs be: a callback URL taken from here is kept for the
/// operation's whole life, and decoding grows its buffer as it goes.
pub fn query_param(query: Option<&str>, name: &str) -> Option<String> {
    form_urlencoded::parse(query?.as_bytes())
        .find(|(key, _)| key == name)
        .map(|(_, value)| {
            let mut value = value.into_owned();
            value.shrink_to_fit();
            value
        })
        .filter(|value| !value.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::HandlerErrorType;

    #[test]
    fn names_round_trip_through_escaping() {
        for (service, operation) in [
            ("Ser/vic e", "i need to/be escaped"),
            ("svc", "f/o/o"),
            ("fraud.v1", "checkTransaction"),
            ("ü nicode", "100%?#&"),
        ] {
            assert_eq!(
                parse_route(&start_path(service, operation)).unwrap(),
                Route::Start {
                    service: service.into(),
                    operation: operation.into()
                }
            );
            assert_eq!(
                parse_route(&cancel_path(service, operation)).unwrap(),
                Route::Cancel {
                    service: service.into(),
                    operation: operation.into(),
                    token: None
                }
            );
        }
    }

    #[test]
    fn legacy_cancel_path_carries_the_token() {
        assert_eq!(
            parse_route("/svc/op/a%2Fsync/cancel").unwrap(),
            Route::Cancel {
                service: "svc".into(),
                operation: "op".into(),
                token: Some("a/sync".into())
            }
        );
    }

    #[test]
    fn other_shapes_are_not_found_and_bad_escapes_bad_requests() {
        for path in [
            "/",
            "",
            "/svc",
            "/svc/op/",
            "/svc/op/x",
            "/a/b/c/d",
            "/a/b/c/d/cancel",
            "/a/b/c/d/e/cancel",
            "/svc/op/tok/cancel/x",
            "//op",
            "/svc//cancel",
        ] {
            let err = parse_route(path).unwrap_err();
            assert_eq!(err.error_type, HandlerErrorType::NotFound, "{path}");
            assert!(err.message.contains(path), "{}", err.message);
        }
        for path in ["/svc%zz/op", "/svc/op%", "/svc/%FF"] {
            let err = parse_route(path).unwrap_err();
            assert_eq!(err.error_type, HandlerErrorType::BadRequest, "{path}");
        }
        // An empty token segment matches no route, as in the handler's router.
        assert_eq!(
            parse_route("/s/o//cancel").unwrap_err().error_type,
            HandlerErrorType::NotFound
        );
    }

    /// What [`RouteShape::of`] must answer, written the plain way: split on `/`, match the
    /// segments.
    fn shape_by_split(path: &str) -> Option<RouteShape<'_>> {
        let segments: Vec<&str> = path.strip_prefix('/')?.split('/').collect();
        if segments.contains(&"") {
            return None;
        }
        let (service, operation, cancel) = match segments[..] {
            [service, operation] => (service, operation, None),
            [service, operation, "cancel"] => (service, operation, Some(None)),
            [service, operation, token, "cancel"] => (service, operation, Some(Some(token))),
            _ => return None,
        };
        Some(RouteShape {
            service,
            operation,
            cancel,
        })
    }

    mod property {
        use proptest::prelude::*;
        use proptest::test_runner::{Config, RngSeed};

        use super::*;

        fn config() -> Config {
            Config {
                cases: 2048,
                rng_seed: RngSeed::Fixed(0x9a7),
                failure_persistence: None,
                ..Config::default()
            }
        }

        proptest! {
            #![proptest_config(config())]

            /// The route shape of any path (short segments, empty ones, `cancel`, non-ASCII,
            /// escapes, any number of `/`) is the one splitting it on `/` gives.
            #[test]
            fn the_shape_is_the_one_splitting_on_slashes_gives(
                path in "(/?(a|bc|cancel|%2F|é|/)){0,8}",
            ) {
                prop_assert_eq!(RouteShape::of(&path), shape_by_split(&path));
                for (prefix, _) in path.char_indices() {
                    let prefix = &path[..prefix];
                    prop_assert_eq!(RouteShape::of(prefix), shape_by_split(prefix));
                }
            }
        }
    }

    #[test]
    fn unescaping_copies_plain_segments_and_decodes_escaped_ones() {
        assert_eq!(unescape("plain-name_1.v2~").unwrap(), "plain-name_1.v2~");
        assert_eq!(unescape("ü").unwrap(), "ü");
        assert_eq!(unescape("a%20b%2Fc").unwrap(), "a b/c");
        assert!(unescape("a%2").is_err());
        assert!(unescape("%C3").is_err());
    }

    #[test]
    fn query_params_are_form_decoded() {
        let q = Some(
            "callback=http%3A%2F%2F127.0.0.1%3A17243%2Fnamespaces%2Fdefault%2Fnexus%2Fcallback&x=1",
        );
        assert_eq!(
            query_param(q, "callback").as_deref(),
            Some("http://127.0.0.1:17243/namespaces/default/nexus/callback")
        );
        assert_eq!(query_param(q, "token"), None);
        assert_eq!(query_param(Some("token="), "token"), None);
        assert_eq!(query_param(None, "token"), None);
        assert_eq!(
            query_param(Some("token=a%2Fsync"), "token").as_deref(),
            Some("a/sync")
        );
    }
}
