//! `Nexus-Link` headers: `<URL>; type="T"`, in the syntax of the HTTP `Link` header.
//!
//! As in the Go reference, the decoder accepts several header values and several links in one
//! value separated by commas (so a link URL must never contain a raw `,`), an unquoted `type`, and
//! extra parameters, which it ignores. It rejects a trailing `;`, an empty parameter, an empty
//! `<>`, a URL that is not percent-encoded, and a missing or invalid `type`.

use http::{HeaderMap, HeaderValue};

use super::header;
use crate::link::Link;

/// A link that cannot be encoded, or a `Nexus-Link` value that cannot be decoded.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{problem}")]
pub struct LinkError {
    problem: String,
}

impl LinkError {
    fn new(problem: impl Into<String>) -> Self {
        Self {
            problem: problem.into(),
        }
    }
}

/// Encodes a link as a `Nexus-Link` header value.
///
/// ```
/// use nexus_runtime::{Link, protocol::encode_link};
/// let link = Link::new("https://example.com/a?b=c", "com.example.Thing");
/// assert_eq!(encode_link(&link).unwrap(), r#"<https://example.com/a?b=c>; type="com.example.Thing""#);
/// ```
pub fn encode_link(link: &Link) -> Result<String, LinkError> {
    let fail = |e: LinkError| LinkError::new(format!("cannot encode link: {e}"));
    validate_url(&link.url).map_err(fail)?;
    if link.url.contains(',') {
        return Err(fail(LinkError::new(format!(
            "url `{}` contains a `,`, which Nexus link decoders split on; percent-encode it as %2C",
            link.url
        ))));
    }
    validate_type(&link.link_type).map_err(fail)?;
    Ok(format!("<{}>; type=\"{}\"", link.url, link.link_type))
}

/// Decodes one link from a `Nexus-Link` value (a single link, no commas).
pub fn decode_link(value: &str) -> Result<Link, LinkError> {
    decode(value).map_err(|e| LinkError::new(format!("invalid link `{}`: {e}", value.trim())))
}

fn decode(value: &str) -> Result<Link, LinkError> {
    let value = value.trim();
    if value.is_empty() {
        return Err(LinkError::new("the value is empty"));
    }
    let rest = value
        .strip_prefix('<')
        .ok_or_else(|| LinkError::new("it must start with `<URL>`"))?;
    let (url, params) = rest
        .split_once('>')
        .ok_or_else(|| LinkError::new("the URL has no closing `>`"))?;
    let url = url.trim();
    if url.is_empty() {
        return Err(LinkError::new("the URL is empty"));
    }
    validate_url(url)?;
    let mut params = params.split(';');
    if params
        .next()
        .is_some_and(|before| !before.trim().is_empty())
    {
        return Err(LinkError::new("the URL must be followed by `;`"));
    }
    let mut link_type = None;
    for param in params {
        let param = param.trim();
        if param.is_empty() {
            return Err(LinkError::new("a parameter is empty (stray `;`)"));
        }
        let (key, val) = param
            .split_once('=')
            .ok_or_else(|| LinkError::new(format!("parameter `{param}` has no `=`")))?;
        let val = val.trim();
        let (starts, ends) = (val.starts_with('"'), val.ends_with('"'));
        if starts != ends || (starts && val.len() < 2) {
            return Err(LinkError::new(format!(
                "parameter `{param}` is missing a double quote"
            )));
        }
        let val = if starts { &val[1..val.len() - 1] } else { val };
        if key.trim() == "type" {
            validate_type(val)?;
            link_type = Some(val.to_owned());
        }
    }
    let link_type = link_type.ok_or_else(|| LinkError::new("the `type` parameter is missing"))?;
    Ok(Link::new(url, link_type))
}

/// Decodes every link of every `Nexus-Link` header in `headers`.
pub fn links_from_headers(headers: &HeaderMap) -> Result<Vec<Link>, LinkError> {
    let mut links = Vec::new();
    for value in header::all(headers, &header::LINK) {
        let text = value
            .to_str()
            .map_err(|_| LinkError::new("a Nexus-Link header is not visible ASCII"))?;
        for part in text.split(',') {
            links.push(decode_link(part)?);
        }
    }
    Ok(links)
}

/// Appends one `Nexus-Link` header per link to `headers`.
pub fn add_links_to_headers(links: &[Link], headers: &mut HeaderMap) -> Result<(), LinkError> {
    for link in links {
        let encoded = encode_link(link)?;
        let value = HeaderValue::from_str(&encoded).map_err(|_| {
            LinkError::new(format!(
                "cannot encode link: `{encoded}` is not a valid header value"
            ))
        })?;
        headers.append(header::LINK, value);
    }
    Ok(())
}

/// The URL must be absolute (have a scheme), contain no spaces, controls, `<`, `>` or `"`, and be
/// percent-encoded: every `%` starts an escape, and the query has no `;` (which Go's query parser
/// rejects).
fn validate_url(url: &str) -> Result<(), LinkError> {
    if url.is_empty() {
        return Err(LinkError::new("the URL is empty"));
    }
    let scheme_ok = url.split_once(':').is_some_and(|(scheme, _)| {
        scheme.starts_with(|c: char| c.is_ascii_alphabetic())
            && scheme
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
    });
    if !scheme_ok {
        return Err(LinkError::new(format!(
            "url `{url}` is not absolute (it needs a scheme like `https:`)"
        )));
    }
    if let Some(bad) = url
        .chars()
        .find(|c| !c.is_ascii_graphic() || matches!(c, '<' | '>' | '"'))
    {
        return Err(LinkError::new(format!(
            "url `{url}` contains {bad:?}, which must be percent-encoded"
        )));
    }
    let bytes = url.as_bytes();
    for (i, b) in bytes.iter().enumerate() {
        if *b == b'%'
            && !(bytes.get(i + 1).is_some_and(u8::is_ascii_hexdigit)
                && bytes.get(i + 2).is_some_and(u8::is_ascii_hexdigit))
        {
            return Err(LinkError::new(format!(
                "url `{url}` has a `%` that does not start a percent-escape"
            )));
        }
    }
    let query = url
        .split_once('?')
        .map(|(_, q)| q.split('#').next().unwrap_or(""));
    if query.is_some_and(|q| q.contains(';')) {
        return Err(LinkError::new(format!(
            "url `{url}` has a `;` in its query; percent-encode it as %3B"
        )));
    }
    Ok(())
}

/// The type must be non-empty and made of `[A-Za-z0-9_./]`.
fn validate_type(link_type: &str) -> Result<(), LinkError> {
    if link_type.is_empty() {
        return Err(LinkError::new("the link type is empty"));
    }
    if let Some(bad) = link_type
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '/')))
    {
        return Err(LinkError::new(format!(
            "link type `{link_type}` contains {bad:?}; allowed are letters, digits, `_`, `.` and `/`"
        )));
    }
    Ok(())
}
