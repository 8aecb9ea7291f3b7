//! Certificates and keys from where the user keeps them: PEM files, PEM in memory, or DER.

use std::path::PathBuf;
use std::sync::Arc;

use rustls::RootCertStore;
use rustls_pki_types::pem::PemObject as _;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

use super::TlsError;

/// Where certificates (a chain or a bundle) or a key come from. Files are read each time the
/// material is loaded, so a reload sees their new content.
#[derive(Clone, Debug)]
pub(crate) enum Material {
    /// A PEM file.
    File(PathBuf),
    /// PEM text.
    Pem(Arc<[u8]>),
    /// DER: certificates (leaf first) or one key.
    Der(Arc<[Vec<u8>]>),
}

impl Material {
    fn describe(&self, what: &str) -> String {
        match self {
            Self::File(path) => format!("{what} file `{}`", path.display()),
            Self::Pem(_) => format!("in-memory {what} PEM"),
            Self::Der(_) => format!("in-memory {what} DER"),
        }
    }

    fn pem(&self, what: &str) -> Result<Option<Arc<[u8]>>, TlsError> {
        match self {
            Self::File(path) => std::fs::read(path).map(|b| Some(b.into())).map_err(|e| {
                TlsError::new(format!("cannot read the {}: {e}", self.describe(what)))
            }),
            Self::Pem(pem) => Ok(Some(pem.clone())),
            Self::Der(_) => Ok(None),
        }
    }

    /// The certificates (at least one), in order.
    pub(crate) fn certificates(
        &self,
        what: &str,
    ) -> Result<Vec<CertificateDer<'static>>, TlsError> {
        let certificates = match (self.pem(what)?, self) {
            (Some(pem), _) => CertificateDer::pem_slice_iter(&pem)
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| TlsError::new(format!("invalid {}: {e}", self.describe(what))))?,
            (None, Self::Der(ders)) => ders
                .iter()
                .map(|der| CertificateDer::from(der.clone()))
                .collect(),
            (None, _) => Vec::new(),
        };
        if certificates.is_empty() {
            return Err(TlsError::new(format!(
                "the {} holds no certificate (expected `-----BEGIN CERTIFICATE-----`)",
                self.describe(what)
            )));
        }
        Ok(certificates)
    }

    /// The private key (PKCS#8, PKCS#1 or SEC1).
    pub(crate) fn private_key(&self, what: &str) -> Result<PrivateKeyDer<'static>, TlsError> {
        match (self.pem(what)?, self) {
            (Some(pem), _) => PrivateKeyDer::from_pem_slice(&pem).map_err(|e| {
                TlsError::new(format!(
                    "the {} holds no usable private key ({e}; expected PKCS#8, PKCS#1 or SEC1 PEM)",
                    self.describe(what)
                ))
            }),
            (None, Self::Der(ders)) => ders
                .first()
                .ok_or("no key given")
                .and_then(|der| PrivateKeyDer::try_from(der.clone()))
                .map_err(|e| TlsError::new(format!("invalid {}: {e}", self.describe(what)))),
            (None, _) => Err(TlsError::new(format!(
                "the {} holds no private key",
                self.describe(what)
            ))),
        }
    }

    /// The certificates as trust anchors.
    pub(crate) fn roots(&self, what: &str, roots: &mut RootCertStore) -> Result<(), TlsError> {
        for certificate in self.certificates(what)? {
            roots.add(certificate).map_err(|e| {
                TlsError::new(format!(
                    "a certificate of the {} is not a usable CA: {e}",
                    self.describe(what)
                ))
            })?;
        }
        Ok(())
    }
}
