//! The identity of a caller, as a handler sees it.

use std::fmt;
use std::sync::Arc;

/// How a [`Principal`] was established.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum PrincipalKind {
    /// No credentials were checked: the handler has no authenticator, or the request came
    /// in-process without one.
    Anonymous,
    /// From a verified mTLS client certificate.
    Certificate,
    /// From a verified bearer token.
    Token,
    /// Set in-process by the application (for example on an in-process transport).
    Local,
}

impl PrincipalKind {
    /// A short lower-case name: `anonymous`, `certificate`, `token`, `local`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Anonymous => "anonymous",
            Self::Certificate => "certificate",
            Self::Token => "token",
            Self::Local => "local",
        }
    }

    /// Parses a name [`as_str`](Self::as_str) gives.
    pub fn parse(name: &str) -> Option<Self> {
        [Self::Anonymous, Self::Certificate, Self::Token, Self::Local]
            .into_iter()
            .find(|k| k.as_str() == name)
    }
}

/// Who is calling: an authenticated name and how it was established.
///
/// Handlers see it on the operation context; allowlists match on [`name`](Self::name); request
/// ids are scoped by it (the same request id from two principals is two operations).
///
/// ```
/// use nexus_runtime::security::{Principal, PrincipalKind};
/// let p = Principal::new("payments", PrincipalKind::Certificate);
/// assert_eq!(p.name(), "payments");
/// assert!(!p.is_anonymous());
/// assert!(Principal::anonymous().is_anonymous());
/// ```
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Principal {
    name: Arc<str>,
    kind: PrincipalKind,
}

impl Principal {
    /// The name under which anonymous callers are recorded (the empty string, so records made
    /// before authentication existed keep matching).
    pub const ANONYMOUS_NAME: &'static str = "";

    /// A principal named `name`, established as `kind`.
    pub fn new(name: impl Into<Arc<str>>, kind: PrincipalKind) -> Self {
        Self {
            name: name.into(),
            kind,
        }
    }

    /// The anonymous principal: what every request is when no authenticator is configured.
    pub fn anonymous() -> Self {
        // One shared name: requests without an authenticator allocate nothing for it.
        static ANONYMOUS: std::sync::LazyLock<Principal> = std::sync::LazyLock::new(|| {
            Principal::new(Principal::ANONYMOUS_NAME, PrincipalKind::Anonymous)
        });
        ANONYMOUS.clone()
    }

    /// A principal set in-process by the application.
    pub fn local(name: impl Into<Arc<str>>) -> Self {
        Self::new(name, PrincipalKind::Local)
    }

    /// The authenticated name (empty for the anonymous principal).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// How it was established.
    pub fn kind(&self) -> PrincipalKind {
        self.kind
    }

    /// Whether no credentials were checked.
    pub fn is_anonymous(&self) -> bool {
        self.kind == PrincipalKind::Anonymous
    }
}

impl Default for Principal {
    fn default() -> Self {
        Self::anonymous()
    }
}

impl fmt::Debug for Principal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Principal({}:{:?})", self.kind.as_str(), &*self.name)
    }
}

impl fmt::Display for Principal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_anonymous() {
            f.write_str("anonymous")
        } else {
            write!(f, "{}:{}", self.kind.as_str(), self.name)
        }
    }
}

/// The certificate chain a client presented over TLS, leaf first, each certificate in DER.
///
/// The TLS server puts it into each request's extensions (`http::Extensions`) when the client
/// sent one and it verified against the configured client CA; an authenticator reads it from
/// there to name the caller.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PeerCertificates(pub Arc<[Vec<u8>]>);

impl PeerCertificates {
    /// The leaf (the client's own certificate), if any.
    pub fn leaf(&self) -> Option<&[u8]> {
        self.0.first().map(Vec::as_slice)
    }
}
