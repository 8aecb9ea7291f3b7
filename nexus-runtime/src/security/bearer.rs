//! Naming the caller from a bearer token (`Authorization: Bearer …`).

use std::fmt;
use std::sync::Arc;

use futures::FutureExt as _;
use futures::future::BoxFuture;
use http::request::Parts;
use sha2::{Digest as _, Sha256};
use subtle::ConstantTimeEq as _;

use super::{AuthenticationError, Authenticator, Principal, PrincipalKind};

/// The challenge of a request without a token.
const CHALLENGE: &str = "Bearer";
/// The challenge of a request with a token that did not verify (RFC 6750).
const INVALID_CHALLENGE: &str = "Bearer error=\"invalid_token\"";

/// Checks a bearer token and names its holder. Implemented by [`StaticTokens`] and, with feature
/// `jwt`, [`JwtVerifier`](super::JwtVerifier); implement it to ask an identity provider.
pub trait TokenVerifier: Send + Sync + 'static {
    /// The name of the caller holding `token`, or why the token is not valid (use
    /// [`AuthenticationError::invalid`]; the challenge is added by the authenticator).
    fn verify<'a>(&'a self, token: &'a str) -> BoxFuture<'a, Result<String, AuthenticationError>>;
}

impl<V: TokenVerifier + ?Sized> TokenVerifier for Arc<V> {
    fn verify<'a>(&'a self, token: &'a str) -> BoxFuture<'a, Result<String, AuthenticationError>> {
        (**self).verify(token)
    }
}

/// Names the caller from the `Authorization: Bearer <token>` header with a [`TokenVerifier`].
///
/// No `Authorization` header is a *missing* credential, answered 401 with
/// `WWW-Authenticate: Bearer`; a header of another scheme, or a token the verifier refuses, is
/// *invalid*, answered 401 with `WWW-Authenticate: Bearer error="invalid_token"`.
///
/// ```
/// use nexus_runtime::security::{BearerAuthenticator, StaticTokens};
/// let authenticator = BearerAuthenticator::new(
///     StaticTokens::new().token("payments", "a-long-random-secret"),
/// );
/// # let _ = authenticator;
/// ```
#[derive(Clone)]
pub struct BearerAuthenticator {
    verifier: Arc<dyn TokenVerifier>,
}

impl fmt::Debug for BearerAuthenticator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BearerAuthenticator")
            .finish_non_exhaustive()
    }
}

impl BearerAuthenticator {
    /// Reads bearer tokens and checks them with `verifier`.
    pub fn new(verifier: impl TokenVerifier) -> Self {
        Self {
            verifier: Arc::new(verifier),
        }
    }
}

/// The token of an `Authorization: Bearer` header (the scheme is case-insensitive).
fn bearer_token(parts: &Parts) -> Result<&str, AuthenticationError> {
    let Some(value) = parts.headers.get(http::header::AUTHORIZATION) else {
        return Err(AuthenticationError::missing("no bearer token").with_challenge(CHALLENGE));
    };
    let invalid = |message: &str| AuthenticationError::invalid(message).with_challenge(CHALLENGE);
    let value = value
        .to_str()
        .map_err(|_| invalid("the `Authorization` header is not visible ASCII"))?;
    let (scheme, token) = value
        .trim()
        .split_once(' ')
        .ok_or_else(|| invalid("the `Authorization` header is not `Bearer <token>`"))?;
    if !scheme.eq_ignore_ascii_case("bearer") {
        return Err(invalid(
            "the `Authorization` header is not `Bearer <token>`",
        ));
    }
    let token = token.trim();
    if token.is_empty() {
        return Err(invalid("the bearer token is empty"));
    }
    Ok(token)
}

impl Authenticator for BearerAuthenticator {
    fn authenticate<'a>(
        &'a self,
        request: &'a Parts,
    ) -> BoxFuture<'a, Result<Principal, AuthenticationError>> {
        async move {
            let token = bearer_token(request)?;
            let name = self.verifier.verify(token).await.map_err(|e| {
                if e.challenge().is_some() {
                    e
                } else {
                    e.with_challenge(INVALID_CHALLENGE)
                }
            })?;
            if name.is_empty() {
                return Err(
                    AuthenticationError::invalid("the bearer token names no caller")
                        .with_challenge(INVALID_CHALLENGE),
                );
            }
            Ok(Principal::new(name, PrincipalKind::Token))
        }
        .boxed()
    }
}

/// Fixed tokens, each naming one caller: for a handful of known callers, with tokens kept as
/// secrets (long and random: `openssl rand -hex 32`).
///
/// Only SHA-256 digests of the tokens are kept, and a presented token's digest is compared with
/// every one of them in constant time, so neither a token's content nor its length leaks through
/// timing. Several tokens may name one caller (to rotate them).
///
/// ```
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// use nexus_runtime::security::{StaticTokens, TokenVerifier};
/// let tokens = StaticTokens::new()
///     .token("payments", "6f1c0d…secret")
///     .token("ledger", "9a7e…");
/// assert_eq!(tokens.verify("6f1c0d…secret").await.unwrap(), "payments");
/// assert!(tokens.verify("guess").await.is_err());
/// # });
/// ```
#[derive(Clone, Default)]
pub struct StaticTokens {
    tokens: Vec<([u8; 32], String)>,
}

impl fmt::Debug for StaticTokens {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<&str> = self.tokens.iter().map(|(_, n)| n.as_str()).collect();
        f.debug_struct("StaticTokens")
            .field("names", &names)
            .finish()
    }
}

impl StaticTokens {
    /// No tokens yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Accepts `token` as the caller `name`.
    ///
    /// # Panics
    /// If `name` or `token` is empty: an empty token would admit anyone.
    #[must_use]
    pub fn token(mut self, name: impl Into<String>, token: impl AsRef<str>) -> Self {
        let name = name.into();
        assert!(!name.is_empty(), "a static token must name a caller");
        assert!(
            !token.as_ref().is_empty(),
            "the static token of `{name}` is empty"
        );
        self.tokens.push((digest(token.as_ref()), name));
        self
    }

    /// How many tokens are accepted.
    pub fn len(&self) -> usize {
        self.tokens.len()
    }

    /// Whether no token is accepted.
    pub fn is_empty(&self) -> bool {
        self.tokens.is_empty()
    }
}

fn digest(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

impl TokenVerifier for StaticTokens {
    fn verify<'a>(&'a self, token: &'a str) -> BoxFuture<'a, Result<String, AuthenticationError>> {
        let presented = digest(token);
        // Compare with every token, without stopping at a match.
        let mut found: Option<&str> = None;
        for (known, name) in &self.tokens {
            if bool::from(known.ct_eq(&presented)) && found.is_none() {
                found = Some(name);
            }
        }
        let result = found
            .map(str::to_owned)
            .ok_or_else(|| AuthenticationError::invalid("the bearer token is not valid"));
        futures::future::ready(result).boxed()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parts(authorization: Option<&str>) -> Parts {
        let mut request = http::Request::builder();
        if let Some(value) = authorization {
            request = request.header(http::header::AUTHORIZATION, value);
        }
        request.body(()).expect("a request").into_parts().0
    }

    #[tokio::test]
    async fn static_tokens() {
        let auth =
            BearerAuthenticator::new(StaticTokens::new().token("a", "t-a").token("b", "t-b"));
        let p = auth.authenticate(&parts(Some("Bearer t-b"))).await.unwrap();
        assert_eq!((p.name(), p.kind()), ("b", PrincipalKind::Token));
        let p = auth
            .authenticate(&parts(Some("bearer  t-a ")))
            .await
            .unwrap();
        assert_eq!(p.name(), "a");

        let e = auth.authenticate(&parts(None)).await.unwrap_err();
        assert!(e.is_missing());
        assert_eq!(e.challenge(), Some("Bearer"));
        for bad in ["Bearer t-c", "Basic dTpw", "Bearer", "Bearer t-a2"] {
            let e = auth.authenticate(&parts(Some(bad))).await.unwrap_err();
            assert!(!e.is_missing(), "{bad}");
            assert!(e.challenge().is_some(), "{bad}");
        }
    }
}
