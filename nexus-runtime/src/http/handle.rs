//! A running server: its address, and how to stop it.

use std::io;
use std::net::SocketAddr;

use std::sync::Arc;

use axum::Router;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::connection::{Routes, Shared};
use super::limits::ServerLimits;
use super::listen::{Throttle, accept_loop};

/// How a server serves its connections: its [`ServerLimits`] and, with the `tls` feature, TLS.
///
/// [`HandlerServer`](super::HandlerServer) and [`CallbackReceiver`](super::CallbackReceiver)
/// keep one each; [`serve`](Self::serve) runs any axum `Router` the same way, such as an
/// application that merges [`HandlerServer::router`](super::HandlerServer::router) with routes
/// of its own.
///
/// ```no_run
/// # async fn demo(dispatcher: nexus_runtime::service::Dispatcher) -> std::io::Result<()> {
/// use nexus_runtime::server::{HandlerServer, ServeOptions, ServerLimits};
/// let app = axum::Router::new()
///     .route("/health", axum::routing::get(|| async { "ok" }))
///     .merge(HandlerServer::new(dispatcher).router());
/// let listener = tokio::net::TcpListener::bind("0.0.0.0:7243").await?;
/// let running = ServeOptions::new().limits(ServerLimits::default()).serve(listener, app)?;
/// # drop(running); Ok(()) }
/// ```
#[derive(Clone, Debug, Default)]
pub struct ServeOptions {
    limits: ServerLimits,
    #[cfg(feature = "tls")]
    tls: Option<crate::tls::TlsServerConfig>,
}

impl ServeOptions {
    /// The default limits, no TLS.
    pub fn new() -> Self {
        Self::default()
    }

    /// Uses these limits.
    #[must_use]
    pub fn limits(mut self, limits: ServerLimits) -> Self {
        self.limits = limits;
        self
    }

    /// Serves HTTPS with this configuration (and, with a client CA, mTLS).
    #[cfg(feature = "tls")]
    #[must_use]
    pub fn tls(mut self, tls: crate::tls::TlsServerConfig) -> Self {
        self.tls = Some(tls);
        self
    }

    /// The limits.
    pub fn server_limits(&self) -> &ServerLimits {
        &self.limits
    }

    /// `https` with TLS, `http` without.
    pub fn scheme(&self) -> &'static str {
        #[cfg(feature = "tls")]
        if self.tls.is_some() {
            return "https";
        }
        "http"
    }

    /// Serves `router` on `listener` in the background.
    pub fn serve(&self, listener: TcpListener, router: Router) -> io::Result<ServerHandle> {
        ServerHandle::spawn(listener, router, self)
    }

    /// Serves `routes` on `listener` in the background (a server that answers its requests
    /// without axum's router).
    pub(crate) fn serve_routes(
        &self,
        listener: TcpListener,
        routes: impl Routes,
    ) -> io::Result<ServerHandle> {
        ServerHandle::spawn(listener, routes, self)
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
    fn spawn(
        listener: TcpListener,
        routes: impl Routes,
        options: &ServeOptions,
    ) -> io::Result<Self> {
        let local_addr = listener.local_addr()?;
        let stop = CancellationToken::new();
        let shared = Arc::new(Shared {
            routes,
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
