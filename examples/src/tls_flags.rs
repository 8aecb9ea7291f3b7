//! The TLS flags of `fraud-handler` and `payments` (clap argument groups), turned into
//! nexus-runtime TLS configurations. Certificates for a demo: `nexus-certs`.

use std::path::PathBuf;

use nexus_runtime::tls::{ClientAuth, TlsClientConfig, TlsServerConfig};

/// A handler's TLS: its certificate, the CA its callers' certificates must chain to, and the CA
/// of the callback receivers it delivers completions to.
#[derive(Debug, Default, clap::Args)]
pub struct HandlerTlsArgs {
    /// Serve HTTPS with this PEM certificate chain (leaf first; with --tls-key).
    #[arg(long, value_name = "FILE", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// The private key of --tls-cert (PEM: PKCS#8, PKCS#1 or SEC1).
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// Require client certificates signed by a CA of this PEM file (mTLS; with --tls-cert).
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    pub client_ca: Option<PathBuf>,
    /// Trust this PEM CA, besides Mozilla's roots, for https:// callback URLs.
    #[arg(long, value_name = "FILE")]
    pub callback_ca: Option<PathBuf>,
}

impl HandlerTlsArgs {
    /// The server configuration, if --tls-cert was given. On Unix, SIGHUP re-reads the files.
    pub fn server(&self) -> Result<Option<TlsServerConfig>, String> {
        let (Some(cert), Some(key)) = (&self.tls_cert, &self.tls_key) else {
            return Ok(None);
        };
        let mut builder = TlsServerConfig::from_pem_files(cert, key);
        if let Some(ca) = &self.client_ca {
            builder = builder.client_ca_file(ca).client_auth(ClientAuth::Required);
        }
        let config = builder.build().map_err(|e| e.to_string())?;
        reload_on_sighup(config.clone());
        Ok(Some(config))
    }

    /// The client configuration of the completion sender, if --callback-ca was given.
    pub fn completions(&self) -> Result<Option<TlsClientConfig>, String> {
        self.callback_ca
            .as_ref()
            .map(|ca| {
                TlsClientConfig::builder()
                    .root_ca_file(ca)
                    .build()
                    .map_err(|e| e.to_string())
            })
            .transpose()
    }
}

/// A caller's TLS: the CA of the handler, its client certificate, and its callback receiver's
/// certificate.
#[derive(Debug, Default, clap::Args)]
pub struct CallerTlsArgs {
    /// Trust this PEM CA, besides Mozilla's roots, for an https:// endpoint.
    #[arg(long, value_name = "FILE")]
    pub ca: Option<PathBuf>,
    /// Present this PEM client certificate to the handler (mTLS; with --key).
    #[arg(long, value_name = "FILE", requires = "key")]
    pub cert: Option<PathBuf>,
    /// The private key of --cert.
    #[arg(long, value_name = "FILE", requires = "cert")]
    pub key: Option<PathBuf>,
    /// Receive completions over HTTPS with this PEM certificate chain (with
    /// --callback-tls-key); the handler must trust its CA. Without it they arrive over plain
    /// HTTP, which suits a receiver on loopback or a private network only.
    #[arg(long, value_name = "FILE", requires = "callback_tls_key")]
    pub callback_tls_cert: Option<PathBuf>,
    /// The private key of --callback-tls-cert.
    #[arg(long, value_name = "FILE", requires = "callback_tls_cert")]
    pub callback_tls_key: Option<PathBuf>,
}

impl CallerTlsArgs {
    /// The transport's client configuration: Mozilla's roots, --ca, and --cert/--key.
    pub fn client(&self) -> Result<TlsClientConfig, String> {
        let mut builder = TlsClientConfig::builder();
        if let Some(ca) = &self.ca {
            builder = builder.root_ca_file(ca);
        }
        if let (Some(cert), Some(key)) = (&self.cert, &self.key) {
            builder = builder.identity_files(cert, key);
        }
        builder.build().map_err(|e| e.to_string())
    }

    /// The callback receiver's server configuration, if --callback-tls-cert was given.
    pub fn callback(&self) -> Result<Option<TlsServerConfig>, String> {
        let (Some(cert), Some(key)) = (&self.callback_tls_cert, &self.callback_tls_key) else {
            return Ok(None);
        };
        let config = TlsServerConfig::from_pem_files(cert, key)
            .build()
            .map_err(|e| e.to_string())?;
        reload_on_sighup(config.clone());
        Ok(Some(config))
    }
}

/// Re-reads the certificate files of `config` on each SIGHUP (Unix; nothing elsewhere), keeping
/// the certificates in use when the new ones are unusable.
fn reload_on_sighup(config: TlsServerConfig) {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let Ok(mut hangups) = signal(SignalKind::hangup()) else {
            tracing::warn!("cannot watch SIGHUP: certificates will not be reloaded");
            return;
        };
        tokio::spawn(async move {
            while hangups.recv().await.is_some() {
                match config.reload() {
                    Ok(()) => tracing::info!("TLS certificates reloaded"),
                    Err(error) => {
                        tracing::error!(%error, "TLS certificates not reloaded; keeping the old ones");
                    }
                }
            }
        });
    }
    #[cfg(not(unix))]
    drop(config);
}
