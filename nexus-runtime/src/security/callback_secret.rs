//! Completion secrets: the per-operation secret a caller puts in the callback URL it gives a
//! handler, so that its callback receiver accepts a completion only from whoever was given that
//! URL.
//!
//! The secret travels in the callback URL's query, as [`CALLBACK_SECRET_PARAM`]: every handler
//! (Temporal included) posts the completion to the callback URL exactly as it was given, so the
//! secret comes back without any cooperation from the handler.

use std::borrow::Cow;
use std::fmt;
use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use subtle::ConstantTimeEq as _;

/// The query parameter of a callback URL that carries its operation's [`CallbackSecret`].
pub const CALLBACK_SECRET_PARAM: &str = "secret";

/// What replaces a secret in logs and `Debug` output.
const REDACTED: &str = "REDACTED";

/// How many random bytes a secret has (256 bits).
const SECRET_BYTES: usize = 32;

/// The secret of one operation's callback: 256 bits from a CSPRNG, as URL-safe base64 (43
/// characters, no padding), so it goes into a URL's query as it is.
///
/// Its `Debug` output never shows it, and comparing it with what a request presents takes the
/// same time wherever the two differ ([`matches`](Self::matches)). Its text is only reachable
/// through [`expose`](Self::expose), for the callback URL and the store.
///
/// ```
/// use nexus_runtime::security::CallbackSecret;
///
/// let secret = CallbackSecret::generate();
/// assert_eq!(format!("{secret:?}"), "CallbackSecret(REDACTED)");
/// assert!(secret.matches(secret.expose()));
/// assert!(!secret.matches("guess"));
/// let url = secret.sign_url("https://caller.example/nexus/callback/42");
/// assert_eq!(url, format!("https://caller.example/nexus/callback/42?secret={}", secret.expose()));
/// ```
#[derive(Clone)]
pub struct CallbackSecret(Arc<str>);

impl CallbackSecret {
    /// A new secret from the thread's CSPRNG (ChaCha, seeded from the operating system).
    pub fn generate() -> Self {
        let bytes: [u8; SECRET_BYTES] = rand::random();
        Self(URL_SAFE_NO_PAD.encode(bytes).into())
    }

    /// A secret as it was stored (its [`expose`](Self::expose)d text); `None` for an empty text.
    pub fn from_stored(text: impl Into<String>) -> Option<Self> {
        let text = text.into();
        (!text.is_empty()).then(|| Self(text.into()))
    }

    /// The secret's text, for the callback URL and the store. Never log it.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Whether `presented` is this secret, compared in constant time (the time taken does not
    /// depend on where the two differ, only on their lengths, which are public).
    pub fn matches(&self, presented: &str) -> bool {
        bool::from(self.0.as_bytes().ct_eq(presented.as_bytes()))
    }

    /// `url` with this secret added to its query as [`CALLBACK_SECRET_PARAM`].
    pub fn sign_url(&self, url: &str) -> String {
        let separator = if url.contains('?') { '&' } else { '?' };
        format!("{url}{separator}{CALLBACK_SECRET_PARAM}={}", self.0)
    }
}

impl PartialEq for CallbackSecret {
    fn eq(&self, other: &Self) -> bool {
        self.matches(&other.0)
    }
}

impl Eq for CallbackSecret {}

impl fmt::Debug for CallbackSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CallbackSecret({REDACTED})")
    }
}

/// `url` with the value of its [`CALLBACK_SECRET_PARAM`] replaced by `REDACTED`, for logs and
/// `Debug` output; borrowed unchanged when it has none.
///
/// ```
/// use nexus_runtime::security::redact_callback_url;
///
/// assert_eq!(
///     redact_callback_url("http://c/nexus/callback/1?secret=abc&x=1"),
///     "http://c/nexus/callback/1?secret=REDACTED&x=1"
/// );
/// assert_eq!(redact_callback_url("http://c/cb?x=1"), "http://c/cb?x=1");
/// ```
pub fn redact_callback_url(url: &str) -> Cow<'_, str> {
    let Some((head, query)) = url.split_once('?') else {
        return Cow::Borrowed(url);
    };
    let (query, fragment) = match query.split_once('#') {
        Some((query, fragment)) => (query, Some(fragment)),
        None => (query, None),
    };
    let is_secret = |pair: &str| pair.split('=').next() == Some(CALLBACK_SECRET_PARAM);
    if !query.split('&').any(is_secret) {
        return Cow::Borrowed(url);
    }
    let mut redacted = String::with_capacity(url.len());
    redacted.push_str(head);
    let mut separator = '?';
    for pair in query.split('&') {
        redacted.push(separator);
        separator = '&';
        if is_secret(pair) {
            redacted.push_str(CALLBACK_SECRET_PARAM);
            redacted.push('=');
            redacted.push_str(REDACTED);
        } else {
            redacted.push_str(pair);
        }
    }
    if let Some(fragment) = fragment {
        redacted.push('#');
        redacted.push_str(fragment);
    }
    Cow::Owned(redacted)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_long_random_and_url_safe() {
        let a = CallbackSecret::generate();
        let b = CallbackSecret::generate();
        assert_ne!(a, b);
        assert_eq!(a.expose().len(), 43, "256 bits of base64 without padding");
        assert!(
            a.expose()
                .bytes()
                .all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_')
        );
        let decoded = URL_SAFE_NO_PAD.decode(a.expose()).unwrap_or_default();
        assert_eq!(decoded.len(), SECRET_BYTES);
    }

    #[test]
    fn matching_needs_the_whole_secret() {
        let secret = CallbackSecret::generate();
        let text = secret.expose();
        assert!(secret.matches(text));
        assert!(!secret.matches(""));
        assert!(!secret.matches(&text[..text.len() - 1]));
        assert!(!secret.matches(&format!("{text}x")));
        let mut flipped = text.to_owned().into_bytes();
        flipped[0] = if flipped[0] == b'A' { b'B' } else { b'A' };
        assert!(!secret.matches(&String::from_utf8(flipped).unwrap_or_default()));
        assert!(!secret.matches(CallbackSecret::generate().expose()));
    }

    #[test]
    fn stored_secrets_round_trip_and_empty_is_none() {
        let secret = CallbackSecret::generate();
        assert_eq!(
            CallbackSecret::from_stored(secret.expose()).as_ref(),
            Some(&secret)
        );
        assert_eq!(CallbackSecret::from_stored(""), None);
    }

    #[test]
    fn debug_never_shows_the_secret() {
        let secret = CallbackSecret::generate();
        let shown = format!("{secret:?} {:?}", Some(&secret));
        assert!(!shown.contains(secret.expose()), "{shown}");
    }

    #[test]
    fn signed_urls_carry_the_secret_and_keep_their_query() {
        let secret = CallbackSecret::generate();
        let signed = secret.sign_url("http://c/cb/1?x=1");
        assert_eq!(
            signed,
            format!("http://c/cb/1?x=1&secret={}", secret.expose())
        );
    }

    #[test]
    fn redaction_hides_only_the_secret() {
        assert_eq!(
            redact_callback_url("http://c/cb/1?x=1&secret=abc#f"),
            "http://c/cb/1?x=1&secret=REDACTED#f"
        );
        assert_eq!(
            redact_callback_url("http://c/cb/1?secretive=1"),
            "http://c/cb/1?secretive=1"
        );
        assert_eq!(redact_callback_url("http://c/cb/1"), "http://c/cb/1");
        let signed = CallbackSecret::generate().sign_url("http://c/cb/1");
        assert!(!redact_callback_url(&signed).contains(&signed[signed.len() - 43..]));
    }
}
