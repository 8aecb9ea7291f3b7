//! A running server: its address, and how to stop it.

use std::io;
use std::net::SocketAddr;

use axum::Router;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// A server running in the background on a bound socket.
///
/// [`shutdown`](Self::shutdown) stops it gracefully: it stops accepting connections, lets
/// requests in flight finish, and closes idle connections. Dropping the handle stops it too.
#[derive(Debug)]
#[must_use = "dropping a ServerHandle stops the server"]
pub struct ServerHandle {
    local_addr: SocketAddr,
    stop: CancellationToken,
    task: Option<JoinHandle<io::Result<()>>>,
}

impl ServerHandle {
    /// Serves `router` on `listener` in a background task.
    pub(crate) fn spawn(listener: TcpListener, router: Router) -> io::Result<Self> {
        let local_addr = listener.local_addr()?;
        let stop = CancellationToken::new();
        let signal = stop.clone().cancelled_owned();
        let task = tokio::spawn(async move {
            axum::serve(listener, router)
                .with_graceful_shutdown(signal)
                .await
        });
        Ok(Self {
            local_addr,
            stop,
            task: Some(task),
        })
    }

    /// The address the server listens on (with the port the OS chose for port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// `http://{local_addr}`.
    pub fn url(&self) -> String {
        format!("http://{}", self.local_addr)
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
