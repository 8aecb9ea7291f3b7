//! The one place HTTP clients are built: the transport's and the completion sender's.

use std::time::Duration;

/// How to build a `reqwest::Client`. With the `tls` feature every client speaks TLS through
/// rustls: with the given configuration, or Mozilla's roots by default.
#[derive(Clone, Debug)]
pub(crate) struct HttpClientOptions {
    /// How long to wait for a connection to open.
    pub(crate) connect_timeout: Option<Duration>,
    /// How long an idle pooled connection is kept.
    pub(crate) pool_idle_timeout: Option<Duration>,
    /// Whom to trust and which certificate to present.
    #[cfg(feature = "tls")]
    pub(crate) tls: Option<crate::tls::TlsClientConfig>,
}

impl Default for HttpClientOptions {
    fn default() -> Self {
        Self {
            connect_timeout: None,
            pool_idle_timeout: Some(Duration::from_secs(90)),
            #[cfg(feature = "tls")]
            tls: None,
        }
    }
}

impl HttpClientOptions {
    /// The client: no proxy (Nexus peers are addressed directly), the timeouts, TLS.
    pub(crate) fn build(&self) -> reqwest::Result<reqwest::Client> {
        self.builder().build()
    }

    /// The builder of [`build`](Self::build), for a client that needs more settings.
    pub(crate) fn builder(&self) -> reqwest::ClientBuilder {
        let mut builder = reqwest::Client::builder()
            .no_proxy()
            .pool_idle_timeout(self.pool_idle_timeout);
        if let Some(timeout) = self.connect_timeout {
            builder = builder.connect_timeout(timeout);
        }
        #[cfg(feature = "tls")]
        {
            let tls = self.tls.clone().unwrap_or_default();
            builder = builder.tls_backend_preconfigured((*tls.rustls_config()).clone());
        }
        builder
    }
}
