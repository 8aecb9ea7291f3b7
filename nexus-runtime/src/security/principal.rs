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
#[derive(Clone)]
pub struct Principal {
    /// `None` for the anonymous principal's empty name: the many requests that carry it share no
    /// reference count (one counter shared by every request would bounce between the cores
    /// serving them) and allocate nothing.
    name: Option<Arc<str>>,
    kind: PrincipalKind,
}

impl Principal {
    /// The name under which anonymous callers are recorded (the empty string, so records made
    /// before authentication existed keep matching).
    pub const ANONYMOUS_NAME: &'static str = "";

    /// A principal named `name`, established as `kind`.
    pub fn new(name: impl Into<Arc<str>>, kind: PrincipalKind) -> Self {
        Self {
            name: Some(name.into()),
            kind,
        }
    }

    /// The anonymous principal: what every request is when no authenticator is configured. It
    /// allocates nothing and shares no counter.
    pub fn anonymous() -> Self {
        Self {
            name: None,
            kind: PrincipalKind::Anonymous,
        }
    }

    /// A principal set in-process by the application.
    pub fn local(name: impl Into<Arc<str>>) -> Self {
        Self::new(name, PrincipalKind::Local)
    }

    /// The authenticated name (empty for the anonymous principal).
    pub fn name(&self) -> &str {
        self.name.as_deref().unwrap_or(Self::ANONYMOUS_NAME)
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

// Compared, hashed and ordered by name, then kind, however the name is held.
impl PartialEq for Principal {
    fn eq(&self, other: &Self) -> bool {
        self.name() == other.name() && self.kind == other.kind
    }
}

impl Eq for Principal {}

impl std::hash::Hash for Principal {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.name().hash(state);
        self.kind.hash(state);
    }
}

impl PartialOrd for Principal {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Principal {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        (self.name(), self.kind).cmp(&(other.name(), other.kind))
    }
}

impl Default for Principal {
    fn default() -> Self {
        Self::anonymous()
    }
}

impl fmt::Debug for Principal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Principal({}:{:?})", self.kind.as_str(), self.name())
    }
}

impl fmt::Display for Principal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_anonymous() {
            f.write_str("anonymous")
        } else {
            write!(f, "{}:{}", self.kind.as_str(), self.name())
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

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;
    use std::hash::{BuildHasher as _, RandomState};

    use super::*;

    #[test]
    fn the_anonymous_principal_is_the_one_read_back_from_a_record() {
        // Stores read principals back with `new`: the anonymous one must be equal, hash and
        // sort the same way, whichever way its name is held.
        let anonymous = Principal::anonymous();
        let read_back = Principal::new(Principal::ANONYMOUS_NAME, PrincipalKind::Anonymous);
        assert_eq!(anonymous, read_back);
        let hasher = RandomState::new();
        assert_eq!(hasher.hash_one(&anonymous), hasher.hash_one(&read_back));
        assert_eq!(anonymous.cmp(&read_back), std::cmp::Ordering::Equal);
        assert_eq!(anonymous.name(), "");
        assert_eq!(
            format!("{anonymous} {anonymous:?}"),
            "anonymous Principal(anonymous:\"\")"
        );
        // Same name, another kind: another principal; names order first.
        let local = Principal::local("");
        assert_ne!(anonymous, local);
        let sorted: Vec<_> =
            BTreeSet::from([Principal::local("b"), local.clone(), anonymous.clone()])
                .into_iter()
                .collect();
        assert_eq!(sorted, [anonymous, local, Principal::local("b")]);
    }
}
