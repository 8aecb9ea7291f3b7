//! The clients' TLS configuration: whom they trust, and which certificate they present.

use std::fmt;
use std::path::PathBuf;
use std::sync::{Arc, OnceLock};

use rustls::RootCertStore;

use super::material::Material;
use super::{TlsError, provider};

/// A TLS client configuration: the roots server certificates must chain to, and optionally a
/// client certificate (mTLS).
///
/// The default trusts Mozilla's root CAs (compiled in from `webpki-roots`: no system files are
/// read, so it behaves the same in any container) and presents no certificate. Add your own CA
/// for servers with private certificates; turn Mozilla's roots off to trust only your CAs.
///
/// ```no_run
/// # fn demo() -> Result<(), Box<dyn std::error::Error>> {
/// use nexus_runtime::tls::TlsClientConfig;
/// use nexus_runtime::transport::HttpTransport;
/// let tls = TlsClientConfig::builder()
///     .root_ca_file("ca.pem")
///     .webpki_roots(false)
///     .identity_files("payments.pem", "payments-key.pem")
///     .build()?;
/// let transport = HttpTransport::builder("https://fraud.internal:7243").tls(tls).build()?;
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct TlsClientConfig {
    config: Arc<rustls::ClientConfig>,
    describe: Arc<str>,
}

impl fmt::Debug for TlsClientConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("TlsClientConfig")
            .field(&self.describe)
            .finish()
    }
}

impl Default for TlsClientConfig {
    fn default() -> Self {
        Self::new()
    }
}

impl TlsClientConfig {
    /// Trusts Mozilla's root CAs, presents no certificate.
    pub fn new() -> Self {
        static DEFAULT: OnceLock<TlsClientConfig> = OnceLock::new();
        DEFAULT
            .get_or_init(|| {
                let config = rustls::ClientConfig::builder_with_provider(provider())
                    .with_safe_default_protocol_versions()
                    .expect("the ring provider supports TLS 1.2 and 1.3")
                    .with_root_certificates(webpki_roots())
                    .with_no_client_auth();
                Self {
                    config: Arc::new(config),
                    describe: "webpki roots".into(),
                }
            })
            .clone()
    }

    /// A builder, starting from Mozilla's roots and no client certificate.
    pub fn builder() -> TlsClientConfigBuilder {
        TlsClientConfigBuilder {
            webpki_roots: true,
            roots: Vec::new(),
            identity: None,
        }
    }

    /// The rustls configuration.
    pub fn rustls_config(&self) -> Arc<rustls::ClientConfig> {
        self.config.clone()
    }
}

fn webpki_roots() -> RootCertStore {
    RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
    }
}

/// Configures a [`TlsClientConfig`].
#[derive(Debug)]
#[must_use = "a builder does nothing until built"]
pub struct TlsClientConfigBuilder {
    webpki_roots: bool,
    roots: Vec<Material>,
    identity: Option<(Material, Material)>,
}

impl TlsClientConfigBuilder {
    /// Whether Mozilla's root CAs are trusted (default yes).
    pub fn webpki_roots(mut self, trust: bool) -> Self {
        self.webpki_roots = trust;
        self
    }

    /// Also trusts the CA certificates of this PEM file.
    pub fn root_ca_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.roots.push(Material::File(path.into()));
        self
    }

    /// Also trusts these PEM CA certificates.
    pub fn root_ca_pem(mut self, pem: impl AsRef<[u8]>) -> Self {
        self.roots.push(Material::Pem(pem.as_ref().into()));
        self
    }

    /// Also trusts this DER CA certificate.
    pub fn root_ca_der(mut self, der: Vec<u8>) -> Self {
        self.roots.push(Material::Der(Arc::from([der])));
        self
    }

    /// Presents this client certificate chain (leaf first) and key, from PEM files (mTLS).
    pub fn identity_files(mut self, chain: impl Into<PathBuf>, key: impl Into<PathBuf>) -> Self {
        self.identity = Some((Material::File(chain.into()), Material::File(key.into())));
        self
    }

    /// Presents this client certificate chain (leaf first) and key, as PEM text (mTLS).
    pub fn identity_pem(mut self, chain: impl AsRef<[u8]>, key: impl AsRef<[u8]>) -> Self {
        self.identity = Some((
            Material::Pem(chain.as_ref().into()),
            Material::Pem(key.as_ref().into()),
        ));
        self
    }

    /// Presents this client certificate chain (leaf first) and key, as DER (mTLS).
    pub fn identity_der(mut self, chain: impl IntoIterator<Item = Vec<u8>>, key: Vec<u8>) -> Self {
        self.identity = Some((
            Material::Der(chain.into_iter().collect()),
            Material::Der(Arc::from([key])),
        ));
        self
    }

    /// Reads and checks the roots and the identity.
    pub fn build(self) -> Result<TlsClientConfig, TlsError> {
        let mut roots = if self.webpki_roots {
            webpki_roots()
        } else {
            RootCertStore::empty()
        };
        for material in &self.roots {
            material.roots("root CA", &mut roots)?;
        }
        if roots.is_empty() {
            return Err(TlsError::new(
                "no root CA to trust: add one, or keep the webpki roots",
            ));
        }
        let builder = rustls::ClientConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .map_err(|e| TlsError::new(format!("cannot set the TLS versions up: {e}")))?
            .with_root_certificates(roots);
        let config = match &self.identity {
            None => builder.with_no_client_auth(),
            Some((chain, key)) => builder
                .with_client_auth_cert(
                    chain.certificates("client certificate chain")?,
                    key.private_key("client private key")?,
                )
                .map_err(|e| {
                    TlsError::new(format!(
                        "the client certificate and key cannot be used together: {e}"
                    ))
                })?,
        };
        let describe = format!(
            "{} extra root(s){}{}",
            self.roots.len(),
            if self.webpki_roots {
                " and webpki roots"
            } else {
                ""
            },
            if self.identity.is_some() {
                ", with a client certificate"
            } else {
                ""
            }
        );
        Ok(TlsClientConfig {
            config: Arc::new(config),
            describe: describe.into(),
        })
    }
}
