//! Which callback headers a completion request may carry.

/// The most bytes of callback header names and values one callback may carry (as Temporal).
pub const MAX_CALLBACK_HEADER_BYTES: usize = 8 * 1024;

/// Headers that would change how the completion request is framed or routed, refused as
/// callback headers (compared in lower case). `Content-*` and `Proxy-*` are refused as prefixes.
const FRAMING: [&str; 9] = [
    "host",
    "transfer-encoding",
    "connection",
    "upgrade",
    "te",
    "trailer",
    "keep-alive",
    "expect",
    "http2-settings",
];

/// Why callback header `name` (without its `Nexus-Callback-` prefix) may not be forwarded, or
/// `None` when it may. Refused are the headers that would change the completion request's framing
/// or routing (`Host`, `Transfer-Encoding`, `Connection`, `Upgrade`, `TE`, `Trailer`,
/// `Keep-Alive`, `Expect`, `Proxy-*`), `Content-*` (the sender sets them from the completion), and
/// an empty name.
///
/// ```
/// use nexus_runtime::security::callback_header_refusal;
/// assert!(callback_header_refusal("Authorization").is_none());
/// assert!(callback_header_refusal("Content-Length").is_some());
/// assert!(callback_header_refusal("Proxy-Authorization").is_some());
/// ```
pub fn callback_header_refusal(name: &str) -> Option<&'static str> {
    let lower = name.to_ascii_lowercase();
    if lower.is_empty() {
        Some("a callback header needs a name after the `Nexus-Callback-` prefix")
    } else if lower.starts_with("content-") {
        Some("the completion's `Content-*` headers describe its own body")
    } else if lower.starts_with("proxy-") || FRAMING.contains(&lower.as_str()) {
        Some("it would change how the completion request is framed or routed")
    } else {
        None
    }
}
