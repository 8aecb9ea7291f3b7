//! Authentication: turning a request into a [`Principal`].

use std::fmt;
use std::sync::Arc;

use futures::FutureExt as _;
use futures::future::BoxFuture;
use http::request::Parts;

use super::Principal;

/// Why a request was not authenticated. The handler server answers it with 401 and an
/// UNAUTHENTICATED Failure carrying [`message`](Self::message), plus a `WWW-Authenticate` header
/// when it has a [`challenge`](Self::challenge). It never says what is served.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuthenticationError {
    missing: bool,
    message: String,
    challenge: Option<String>,
}

impl AuthenticationError {
    /// The request carries no credentials this authenticator reads (a combinator then tries the
    /// next one).
    pub fn missing(message: impl Into<String>) -> Self {
        Self {
            missing: true,
            message: message.into(),
            challenge: None,
        }
    }

    /// The request carries credentials, and they are not valid.
    pub fn invalid(message: impl Into<String>) -> Self {
        Self {
            missing: false,
            message: message.into(),
            challenge: None,
        }
    }

    /// Sets the `WWW-Authenticate` value of the answer, such as `Bearer`.
    #[must_use]
    pub fn with_challenge(mut self, challenge: impl Into<String>) -> Self {
        self.challenge = Some(challenge.into());
        self
    }

    /// Whether no credentials were found (rather than invalid ones).
    pub fn is_missing(&self) -> bool {
        self.missing
    }

    /// What is wrong, for the caller.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// The `WWW-Authenticate` value of the answer, if any.
    pub fn challenge(&self) -> Option<&str> {
        self.challenge.as_deref()
    }
}

impl fmt::Display for AuthenticationError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for AuthenticationError {}

/// Names the caller of a request, from its headers (a bearer token) or its extensions (the
/// [`PeerCertificates`](super::PeerCertificates) a TLS server puts there, and the peer's
/// address as `axum::extract::ConnectInfo<SocketAddr>`, which the handler server puts there
/// when it has an authenticator).
///
/// Set one on the handler server (`HandlerServerBuilder::authenticator`); every request is then
/// authenticated before anything else happens, and its [`Principal`] goes with it to the
/// dispatcher (allowlists, request-id scope, cancel rights, quotas) and to the operation
/// (`OperationContext::principal`). Shipped: `CertificateAuthenticator` and `BearerAuthenticator`
/// (feature `auth`), and [`AnyOf`] to accept several kinds of credentials.
///
/// Return a named principal, or an [`AuthenticationError`]; returning
/// [`Principal::anonymous`] lets the request through as anonymous.
///
/// ```
/// use futures::FutureExt as _;
/// use futures::future::BoxFuture;
/// use nexus_runtime::security::{AuthenticationError, Authenticator, Principal, PrincipalKind};
///
/// /// Trusts a header set by a proxy in front of the server, and nothing else.
/// struct ProxyHeader;
///
/// impl Authenticator for ProxyHeader {
///     fn authenticate<'a>(
///         &'a self,
///         request: &'a http::request::Parts,
///     ) -> BoxFuture<'a, Result<Principal, AuthenticationError>> {
///         let name = request
///             .headers
///             .get("x-authenticated-caller")
///             .and_then(|v| v.to_str().ok())
///             .map(str::to_owned);
///         async move {
///             name.map(|n| Principal::new(n, PrincipalKind::Local))
///                 .ok_or_else(|| AuthenticationError::missing("no authenticated caller"))
///         }
///         .boxed()
///     }
/// }
/// ```
pub trait Authenticator: Send + Sync + 'static {
    /// The principal of `request`, or why it has none.
    fn authenticate<'a>(
        &'a self,
        request: &'a Parts,
    ) -> BoxFuture<'a, Result<Principal, AuthenticationError>>;
}

impl<A: Authenticator + ?Sized> Authenticator for Arc<A> {
    fn authenticate<'a>(
        &'a self,
        request: &'a Parts,
    ) -> BoxFuture<'a, Result<Principal, AuthenticationError>> {
        (**self).authenticate(request)
    }
}

/// Tries several authenticators in order; the first that names the caller wins (for example a
/// client certificate, else a bearer token).
///
/// When none does, the answer is the first *invalid*-credentials error (a wrong token is
/// reported as such even if no certificate was sent), else a *missing* error joining what each
/// one expected, with the first challenge any of them gave.
///
/// ```
/// # #[cfg(feature = "auth")] {
/// use nexus_runtime::security::{
///     AnyOf, BearerAuthenticator, CertificateAuthenticator, StaticTokens,
/// };
/// let authenticator = AnyOf::new()
///     .or(CertificateAuthenticator::new())
///     .or(BearerAuthenticator::new(StaticTokens::new().token("payments", "s3cret-token")));
/// # let _ = authenticator;
/// # }
/// ```
#[derive(Clone, Default)]
pub struct AnyOf {
    authenticators: Vec<Arc<dyn Authenticator>>,
}

impl fmt::Debug for AnyOf {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AnyOf")
            .field("authenticators", &self.authenticators.len())
            .finish()
    }
}

impl AnyOf {
    /// No authenticator yet (which refuses every request as missing credentials).
    pub fn new() -> Self {
        Self::default()
    }

    /// Tries `authenticator` after those added before.
    #[must_use]
    pub fn or(mut self, authenticator: impl Authenticator) -> Self {
        self.authenticators.push(Arc::new(authenticator));
        self
    }
}

impl Authenticator for AnyOf {
    fn authenticate<'a>(
        &'a self,
        request: &'a Parts,
    ) -> BoxFuture<'a, Result<Principal, AuthenticationError>> {
        async move {
            let mut invalid: Option<AuthenticationError> = None;
            let mut missing: Vec<String> = Vec::new();
            let mut challenge: Option<String> = None;
            for authenticator in &self.authenticators {
                match authenticator.authenticate(request).await {
                    Ok(principal) => return Ok(principal),
                    Err(e) => {
                        if challenge.is_none() {
                            challenge = e.challenge.clone();
                        }
                        if e.missing {
                            missing.push(e.message);
                        } else if invalid.is_none() {
                            invalid = Some(e);
                        }
                    }
                }
            }
            let error = match invalid {
                Some(e) => e,
                None if missing.is_empty() => {
                    AuthenticationError::missing("no authenticator is configured")
                }
                None => AuthenticationError::missing(missing.join("; ")),
            };
            Err(match (error.challenge.is_none(), challenge) {
                (true, Some(c)) => error.with_challenge(c),
                (_, _) => error,
            })
        }
        .boxed()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::security::PrincipalKind;

    struct Fixed(Result<Principal, AuthenticationError>);

    impl Authenticator for Fixed {
        fn authenticate<'a>(
            &'a self,
            _request: &'a Parts,
        ) -> BoxFuture<'a, Result<Principal, AuthenticationError>> {
            futures::future::ready(self.0.clone()).boxed()
        }
    }

    fn parts() -> Parts {
        http::Request::new(()).into_parts().0
    }

    #[tokio::test]
    async fn the_first_success_wins_and_invalid_beats_missing() {
        let ok = Principal::new("a", PrincipalKind::Token);
        let any = AnyOf::new()
            .or(Fixed(Err(AuthenticationError::missing("no certificate"))))
            .or(Fixed(Ok(ok.clone())));
        assert_eq!(any.authenticate(&parts()).await, Ok(ok));

        let any = AnyOf::new()
            .or(Fixed(Err(AuthenticationError::missing("no certificate"))))
            .or(Fixed(Err(AuthenticationError::invalid("bad token")
                .with_challenge("Bearer error=\"invalid_token\""))));
        let e = any.authenticate(&parts()).await.unwrap_err();
        assert!(!e.is_missing());
        assert_eq!(e.message(), "bad token");
        assert_eq!(e.challenge(), Some("Bearer error=\"invalid_token\""));

        let any = AnyOf::new()
            .or(Fixed(Err(AuthenticationError::missing("no certificate"))))
            .or(Fixed(Err(
                AuthenticationError::missing("no token").with_challenge("Bearer")
            )));
        let e = any.authenticate(&parts()).await.unwrap_err();
        assert!(e.is_missing());
        assert_eq!(e.message(), "no certificate; no token");
        assert_eq!(e.challenge(), Some("Bearer"));
    }
}
