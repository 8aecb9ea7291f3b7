//! A running server: its address, and how to stop it.

use std::io;
use std::net::SocketAddr;

use std::sync::Arc;

use axum::Router;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::connection::Shared;
use super::limits::ServerLimits;
use super::listen::{Throttle, accept_loop};

/// How a server serves its connections: its limits, and TLS.
#[derive(Clone, Debug, Default)]
pub(crate) struct ServeOptions {
    pub(crate) limits: ServerLimits,
    #[cfg(feature = "tls")]
    pub(crate) tls: Option<crate::tls::TlsServerConfig>,
}

impl ServeOptions {
    /// `https` with TLS, `http` without.
    pub(crate) fn scheme(&self) -> &'static str {
        #[cfg(feature = "tls")]
        if self.tls.is_some() {
            return "https";
        }
        "http"
    }
}

/// A server running in the background on a bound socket.
///
/// It serves HTTP/1.1 (over TLS when configured) with the connection limits of its
/// [`ServerLimits`]; every request carries the peer's address as axum's
/// `ConnectInfo<SocketAddr>` and, over mTLS, the client's verified chain as
/// [`PeerCertificates`](crate::security::PeerCertificates) in its extensions.
///
/// [`shutdown`](Self::shutdown) stops it gracefully: it stops accepting connections, lets
/// requests in flight finish, and closes idle connections. Dropping the handle stops it too.
#[derive(Debug)]
#[must_use = "dropping a ServerHandle stops the server"]
pub struct ServerHandle {
    local_addr: SocketAddr,
    scheme: &'static str,
    stop: CancellationToken,
    task: Option<JoinHandle<io::Result<()>>>,
}

impl ServerHandle {
    /// Serves `router` on `listener` in a background task.
    pub(crate) fn spawn(
        listener: TcpListener,
        router: Router,
        options: &ServeOptions,
    ) -> io::Result<Self> {
        let local_addr = listener.local_addr()?;
        let stop = CancellationToken::new();
        let shared = Arc::new(Shared {
            router,
            http: options.limits.http1(),
            limits: options.limits.clone(),
            #[cfg(feature = "tls")]
            tls: options.tls.clone(),
            warnings: Throttle::default(),
        });
        let task = tokio::spawn(accept_loop(listener, shared, stop.clone()));
        Ok(Self {
            local_addr,
            scheme: options.scheme(),
            stop,
            task: Some(task),
        })
    }

    /// The address the server listens on (with the port the OS chose for port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// `http://{local_addr}`, or `https://{local_addr}` with TLS.
    pub fn url(&self) -> String {
        format!("{}://{}", self.scheme, self.local_addr)
    }

    /// Stops the server gracefully and waits until it has stopped.
    pub async fn shutdown(mut self) -> io::Result<()> {
        self.stop.cancel();
        self.join().await
    }

    /// Waits for the server task to end.
    async fn join(&mut self) -> io::Result<()> {
        match self.task.take() {
            Some(task) => task
                .await
                .map_err(|e| io::Error::other(format!("the server task failed: {e}")))?,
            None => Ok(()),
        }
    }
}

impl Drop for ServerHandle {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}
