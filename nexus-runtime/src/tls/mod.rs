//! TLS and mTLS for the HTTP servers and clients (feature `tls`): rustls with the ring
//! provider, no OpenSSL.
//!
//! - [`TlsServerConfig`]: a server certificate chain and key (PEM files, or PEM/DER in memory),
//!   and optionally a CA bundle to verify client certificates against (mTLS), required or
//!   optional ([`ClientAuth`]). Give it to
//!   [`HandlerServerBuilder::tls`](crate::http::HandlerServerBuilder::tls) or
//!   [`CallbackListener::tls`](crate::http::CallbackListener::tls); the servers then put the
//!   verified client chain into every request's extensions as
//!   [`PeerCertificates`](crate::security::PeerCertificates). Certificates read from files can be
//!   re-read without a restart ([`TlsServerConfig::reload`]).
//! - [`TlsClientConfig`]: the roots a client trusts (Mozilla's, compiled in, plus your own CAs)
//!   and optionally a client certificate to present. Give it to
//!   [`HttpTransportBuilder::tls`](crate::http::HttpTransportBuilder::tls),
//!   [`HttpCompletionSender::tls`](crate::http::HttpCompletionSender::tls) or
//!   [`HandlerServerBuilder::completion_tls`](crate::http::HandlerServerBuilder::completion_tls).
//!   With the feature on, `https://` URLs work with no configuration (Mozilla's roots).
//!
//! TLS 1.2 and 1.3 are offered, with rustls's safe default cipher suites.

mod client;
mod error;
mod material;
mod server;

use std::sync::{Arc, OnceLock};

use rustls::crypto::CryptoProvider;

pub use client::{TlsClientConfig, TlsClientConfigBuilder};
pub use error::TlsError;
pub use server::{ClientAuth, TlsServerConfig, TlsServerConfigBuilder};

/// Installs ring as the process's default rustls crypto provider, unless one is installed
/// already; returns whether this call installed it.
///
/// nexus-runtime's own clients and servers never need it: they name their provider. With the
/// `tls` feature, reqwest is built with rustls and no provider of its own, so a
/// `reqwest::Client` that your code builds directly (not through [`TlsClientConfig`]) panics
/// unless the process has a default provider: call this once at startup, or install another
/// provider yourself.
///
/// ```
/// nexus_runtime::tls::install_default_provider();
/// let client = reqwest::Client::new(); // would panic without a default provider
/// # drop(client);
/// ```
pub fn install_default_provider() -> bool {
    CryptoProvider::get_default().is_none()
        && CryptoProvider::install_default((*provider()).clone()).is_ok()
}

/// The crypto provider every config of this crate uses: ring, whatever provider the process
/// installed as its default.
///
/// rustls marks ring's provider deprecated because it has no post-quantum key exchange
/// (X25519MLKEM768 needs aws-lc-rs); ring is kept because it builds with a C compiler alone.
#[allow(deprecated)]
pub(crate) fn provider() -> Arc<CryptoProvider> {
    static PROVIDER: OnceLock<Arc<CryptoProvider>> = OnceLock::new();
    PROVIDER
        .get_or_init(|| Arc::new(rustls::crypto::ring::default_provider()))
        .clone()
}
