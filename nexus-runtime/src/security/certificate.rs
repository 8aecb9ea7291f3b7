//! Naming the caller from its verified mTLS client certificate.

use futures::FutureExt as _;
use futures::future::BoxFuture;
use http::request::Parts;
use x509_parser::prelude::{FromDer as _, GeneralName, X509Certificate};

use super::{AuthenticationError, Authenticator, PeerCertificates, Principal, PrincipalKind};

/// Where in a client certificate the caller's name is read.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum CertificateName {
    /// The subject's common name (CN), such as `payments`.
    CommonName,
    /// The first URI subject alternative name, such as `spiffe://example.org/payments`.
    UriSan,
    /// The first DNS subject alternative name, such as `payments.internal.example`.
    DnsSan,
}

/// Names the caller from the leaf of the [`PeerCertificates`] the TLS server put into the
/// request's extensions (present only when the client sent a certificate that verified against
/// the server's client CA: this authenticator trusts that verification and does not repeat it).
///
/// The name is taken from the first of these that the certificate has, in this order by default:
/// the subject's common name (CN), the first URI subject alternative name, the first DNS subject
/// alternative name; [`names_from`](Self::names_from) sets another order, or fewer sources. No
/// certificate is a *missing* credential (so [`AnyOf`](super::AnyOf) tries the next
/// authenticator); a certificate that cannot be parsed or names no one is *invalid*.
///
/// ```
/// use nexus_runtime::security::{CertificateAuthenticator, CertificateName};
/// // SPIFFE identities first, then the common name.
/// let authenticator = CertificateAuthenticator::new()
///     .names_from([CertificateName::UriSan, CertificateName::CommonName]);
/// # let _ = authenticator;
/// ```
#[derive(Clone, Debug)]
pub struct CertificateAuthenticator {
    order: Vec<CertificateName>,
}

impl Default for CertificateAuthenticator {
    fn default() -> Self {
        Self {
            order: vec![
                CertificateName::CommonName,
                CertificateName::UriSan,
                CertificateName::DnsSan,
            ],
        }
    }
}

impl CertificateAuthenticator {
    /// Names callers by CN, else the first URI SAN, else the first DNS SAN.
    pub fn new() -> Self {
        Self::default()
    }

    /// Reads the name from these sources, the first one present winning.
    #[must_use]
    pub fn names_from(mut self, order: impl IntoIterator<Item = CertificateName>) -> Self {
        self.order = order.into_iter().collect();
        self
    }

    /// The caller's name in the DER certificate `der`, as this authenticator reads it.
    pub fn name_of(&self, der: &[u8]) -> Result<String, AuthenticationError> {
        let (_, certificate) = X509Certificate::from_der(der).map_err(|e| {
            AuthenticationError::invalid(format!("the client certificate cannot be read: {e}"))
        })?;
        let alternative = certificate.subject_alternative_name().map_err(|e| {
            AuthenticationError::invalid(format!(
                "the client certificate's subject alternative names cannot be read: {e}"
            ))
        })?;
        let names = alternative
            .map(|ext| ext.value.general_names.as_slice())
            .unwrap_or_default();
        for source in &self.order {
            let found = match source {
                CertificateName::CommonName => certificate
                    .subject()
                    .iter_common_name()
                    .find_map(|cn| cn.as_str().ok()),
                CertificateName::UriSan => names.iter().find_map(|n| match n {
                    GeneralName::URI(uri) => Some(*uri),
                    _ => None,
                }),
                CertificateName::DnsSan => names.iter().find_map(|n| match n {
                    GeneralName::DNSName(dns) => Some(*dns),
                    _ => None,
                }),
            };
            if let Some(name) = found.map(str::trim).filter(|n| !n.is_empty()) {
                return Ok(name.to_owned());
            }
        }
        Err(AuthenticationError::invalid(
            "the client certificate names no caller (no common name or subject alternative \
             name that this server reads)",
        ))
    }
}

impl Authenticator for CertificateAuthenticator {
    fn authenticate<'a>(
        &'a self,
        request: &'a Parts,
    ) -> BoxFuture<'a, Result<Principal, AuthenticationError>> {
        let result = request
            .extensions
            .get::<PeerCertificates>()
            .and_then(PeerCertificates::leaf)
            .ok_or_else(|| AuthenticationError::missing("no verified client certificate"))
            .and_then(|leaf| self.name_of(leaf))
            .map(|name| Principal::new(name, PrincipalKind::Certificate));
        futures::future::ready(result).boxed()
    }
}
