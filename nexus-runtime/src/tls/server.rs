//! The servers' TLS configuration: their certificate, and how clients are verified.

use std::fmt;
use std::path::PathBuf;
use std::sync::{Arc, RwLock};

use rustls::RootCertStore;
use rustls::server::WebPkiClientVerifier;

use super::material::Material;
use super::{TlsError, provider};

/// Whether a TLS server asks clients for a certificate, once a client CA is configured.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum ClientAuth {
    /// Every client must present a certificate that chains to the client CA; the handshake
    /// fails otherwise (no certificate, an unknown CA, an expired certificate). The default.
    #[default]
    Required,
    /// A client may present no certificate: its requests then carry no
    /// [`PeerCertificates`](crate::security::PeerCertificates) and are anonymous to an
    /// authenticator. A certificate it does present must verify, or the handshake fails.
    Optional,
}

/// A TLS server configuration: the server's certificate chain and key and, for mTLS, the CA
/// bundle that client certificates must chain to.
///
/// Cheap to clone: clones share the configuration, so [`reload`](Self::reload) on one is seen
/// by every server using any of them (new connections get the new certificates; open ones keep
/// theirs).
///
/// ```no_run
/// # fn demo() -> Result<(), nexus_runtime::tls::TlsError> {
/// use nexus_runtime::tls::{ClientAuth, TlsServerConfig};
/// // TLS only:
/// let tls = TlsServerConfig::from_pem_files("server.pem", "server-key.pem").build()?;
/// // mTLS: clients need a certificate signed by ca.pem.
/// let mtls = TlsServerConfig::from_pem_files("server.pem", "server-key.pem")
///     .client_ca_file("ca.pem")
///     .client_auth(ClientAuth::Required)
///     .build()?;
/// // After the files were renewed on disk:
/// mtls.reload()?;
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct TlsServerConfig {
    shared: Arc<Shared>,
}

struct Shared {
    source: Source,
    current: RwLock<Arc<rustls::ServerConfig>>,
}

#[derive(Clone, Debug)]
struct Source {
    chain: Material,
    key: Material,
    client_ca: Option<Material>,
    client_auth: ClientAuth,
}

impl fmt::Debug for TlsServerConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let source = &self.shared.source;
        f.debug_struct("TlsServerConfig")
            .field("chain", &describe(&source.chain))
            .field("client_ca", &source.client_ca.as_ref().map(describe))
            .field("client_auth", &source.client_auth)
            .finish_non_exhaustive()
    }
}

fn describe(material: &Material) -> String {
    match material {
        Material::File(path) => path.display().to_string(),
        Material::Pem(_) => "<PEM in memory>".to_owned(),
        Material::Der(_) => "<DER in memory>".to_owned(),
    }
}

/// Configures a [`TlsServerConfig`].
#[derive(Debug)]
#[must_use = "a builder does nothing until built"]
pub struct TlsServerConfigBuilder {
    source: Source,
}

impl TlsServerConfigBuilder {
    /// Verifies client certificates against the CA certificates of this PEM file (mTLS).
    pub fn client_ca_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.source.client_ca = Some(Material::File(path.into()));
        self
    }

    /// Verifies client certificates against these PEM CA certificates (mTLS).
    pub fn client_ca_pem(mut self, pem: impl AsRef<[u8]>) -> Self {
        self.source.client_ca = Some(Material::Pem(pem.as_ref().into()));
        self
    }

    /// Verifies client certificates against these DER CA certificates (mTLS).
    pub fn client_ca_der(mut self, certificates: impl IntoIterator<Item = Vec<u8>>) -> Self {
        self.source.client_ca = Some(Material::Der(certificates.into_iter().collect()));
        self
    }

    /// Whether a client certificate is required or optional once a client CA is set (default
    /// [`ClientAuth::Required`]). Without a client CA, no certificate is asked for.
    pub fn client_auth(mut self, client_auth: ClientAuth) -> Self {
        self.source.client_auth = client_auth;
        self
    }

    /// Reads and checks everything: the chain and key (and that the key matches the leaf),
    /// the client CA bundle.
    pub fn build(self) -> Result<TlsServerConfig, TlsError> {
        let config = self.source.load()?;
        Ok(TlsServerConfig {
            shared: Arc::new(Shared {
                source: self.source,
                current: RwLock::new(Arc::new(config)),
            }),
        })
    }
}

impl TlsServerConfig {
    /// A server certificate chain (leaf first) and its private key, from PEM files. The key may
    /// be PKCS#8, PKCS#1 (RSA) or SEC1 (EC).
    pub fn from_pem_files(
        chain: impl Into<PathBuf>,
        key: impl Into<PathBuf>,
    ) -> TlsServerConfigBuilder {
        Self::with(Material::File(chain.into()), Material::File(key.into()))
    }

    /// A server certificate chain (leaf first) and its private key, as PEM text.
    pub fn from_pem(chain: impl AsRef<[u8]>, key: impl AsRef<[u8]>) -> TlsServerConfigBuilder {
        Self::with(
            Material::Pem(chain.as_ref().into()),
            Material::Pem(key.as_ref().into()),
        )
    }

    /// A server certificate chain (leaf first) and its private key, as DER.
    pub fn from_der(
        chain: impl IntoIterator<Item = Vec<u8>>,
        key: Vec<u8>,
    ) -> TlsServerConfigBuilder {
        Self::with(
            Material::Der(chain.into_iter().collect()),
            Material::Der(Arc::from([key])),
        )
    }

    fn with(chain: Material, key: Material) -> TlsServerConfigBuilder {
        TlsServerConfigBuilder {
            source: Source {
                chain,
                key,
                client_ca: None,
                client_auth: ClientAuth::default(),
            },
        }
    }

    /// Reads the certificate, key and client CA files again and uses them for new connections.
    /// If anything is wrong (a half-written file, a key that does not match), the error is
    /// returned and the certificates in use stay. Call it when the files were renewed, for
    /// example on SIGHUP or from a timer.
    pub fn reload(&self) -> Result<(), TlsError> {
        let config = Arc::new(self.shared.source.load()?);
        *self
            .shared
            .current
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = config;
        Ok(())
    }

    /// Whether clients are asked for a certificate: `None` without a client CA.
    pub fn client_auth(&self) -> Option<ClientAuth> {
        let source = &self.shared.source;
        source.client_ca.as_ref().map(|_| source.client_auth)
    }

    /// The rustls configuration new connections use now.
    pub fn rustls_config(&self) -> Arc<rustls::ServerConfig> {
        self.shared
            .current
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }
}

impl Source {
    fn load(&self) -> Result<rustls::ServerConfig, TlsError> {
        let chain = self.chain.certificates("certificate chain")?;
        let key = self.key.private_key("private key")?;
        let builder = rustls::ServerConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .map_err(|e| TlsError::new(format!("cannot set the TLS versions up: {e}")))?;
        let builder = match &self.client_ca {
            None => builder.with_no_client_auth(),
            Some(ca) => {
                let mut roots = RootCertStore::empty();
                ca.roots("client CA", &mut roots)?;
                let verifier =
                    WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider());
                let verifier = match self.client_auth {
                    ClientAuth::Required => verifier,
                    ClientAuth::Optional => verifier.allow_unauthenticated(),
                };
                let verifier = verifier.build().map_err(|e| {
                    TlsError::new(format!("cannot verify clients with this CA: {e}"))
                })?;
                builder.with_client_cert_verifier(verifier)
            }
        };
        let mut config = builder.with_single_cert(chain, key).map_err(|e| {
            TlsError::new(format!(
                "the server certificate and key cannot be used together: {e}"
            ))
        })?;
        // The servers speak HTTP/1.1.
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(config)
    }
}
