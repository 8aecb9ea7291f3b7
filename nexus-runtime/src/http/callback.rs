//! The callback receiver: where a caller process receives the completions of its async
//! operations.

use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::extract::{Path, Request, State};
use axum::response::Response;
use axum::routing::any;
use http::{Method, StatusCode};
use tokio::net::{TcpListener, ToSocketAddrs};

use super::handle::{ServeOptions, ServerHandle};
use super::limits::ServerLimits;
use super::wire::{self, DEFAULT_BODY_LIMIT};
use crate::client::Client;
use crate::observe::spans::InSpan as _;
use crate::observe::{self, outcome, spans};
use crate::protocol::{self, FailureFormat};
use crate::security::CALLBACK_SECRET_PARAM;

/// The path completions are received under by default: `POST /nexus/callback/{callback id}`.
pub const DEFAULT_CALLBACK_PATH: &str = "/nexus/callback";

/// Receives completion callbacks and hands them to a [`Client`], which records them in its store
/// and resolves the waiting operation (see [`Client::deliver_completion`]).
///
/// The client gives each async operation the callback URL `{base}/{operation id}`, where `base`
/// is what [`ClientBuilder::callback_url`](crate::client::ClientBuilder::callback_url) was given;
/// this receiver serves `POST {path}/{operation id}`. That URL carries the operation's
/// [`CallbackSecret`](crate::security::CallbackSecret) in its query
/// (`?secret=…`, see [`CALLBACK_SECRET_PARAM`](crate::security::CALLBACK_SECRET_PARAM)); a
/// completion is accepted only with it, compared in constant time. Answers:
/// - 200 once the completion is recorded in the client's store (durably, with a durable store),
///   whether or not the operation's driver runs in this process;
/// - 200 also for the same completion received again (the operation ended with it: its sender
///   missed the first 200, say it died before it could record the delivery), as long as the
///   client keeps the operation's record (with a store, for its retention);
/// - NOT_FOUND (404) for an unknown operation, for a missing or wrong secret (the very answer an
///   unknown operation gets, so a forged or misdirected completion learns nothing, not even
///   whether the operation exists; nothing is recorded), or for an operation that already
///   finished otherwise (another outcome, or it timed out or was canceled first);
/// - BAD_REQUEST (400) for a token other than the start response gave, for a malformed
///   completion, naming the problem (missing or invalid `Nexus-Operation-State`, bad timestamps
///   or links, a failure that is not a JSON Failure, a body over the limit) or a method other
///   than POST;
/// - UNAVAILABLE (503, retryable) when the store cannot record it: the handler sends it again.
///
/// A completion may arrive before the answer to its start request: the operation is recorded
/// before its first attempt. Replicas sharing a store may share one receiver address (see
/// [`CallbackListener::bind_shared`]): any of them records any completion.
///
/// To serve it on its own port, bind a [`CallbackListener`] first (its URL goes into the client),
/// then serve it with the client.
#[derive(Clone)]
pub struct CallbackReceiver {
    inner: Arc<Inner>,
}

struct Inner {
    client: Client,
    path: String,
    body_limit: usize,
    serve: ServeOptions,
}

impl fmt::Debug for CallbackReceiver {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CallbackReceiver")
            .field("path", &self.inner.path)
            .field("body_limit", &self.inner.body_limit)
            .field("serve", &self.inner.serve)
            .finish_non_exhaustive()
    }
}

impl CallbackReceiver {
    /// A receiver for `client` under [`DEFAULT_CALLBACK_PATH`] with a 2 MiB body limit.
    pub fn new(client: Client) -> Self {
        Self::with_options(client, DEFAULT_CALLBACK_PATH, DEFAULT_BODY_LIMIT)
    }

    /// A receiver for `client` under `path` (such as `/callbacks`), accepting bodies of at most
    /// `body_limit` bytes.
    pub fn with_options(client: Client, path: &str, body_limit: usize) -> Self {
        Self {
            inner: Arc::new(Inner {
                client,
                path: normalise(path),
                body_limit,
                serve: ServeOptions::default(),
            }),
        }
    }

    fn with_serve(self, change: impl FnOnce(&mut ServeOptions)) -> Self {
        let mut inner = Inner {
            client: self.inner.client.clone(),
            path: self.inner.path.clone(),
            body_limit: self.inner.body_limit,
            serve: self.inner.serve.clone(),
        };
        change(&mut inner.serve);
        Self {
            inner: Arc::new(inner),
        }
    }

    /// The connection-level limits of the server that [`serve`](Self::serve) runs (see
    /// [`ServerLimits`]); the body read timeout also applies to [`router`](Self::router)
    /// served by other means.
    #[must_use]
    pub fn limits(self, limits: ServerLimits) -> Self {
        self.with_serve(|serve| *serve = serve.clone().limits(limits))
    }

    /// Serves HTTPS with this certificate (and, with a client CA, mTLS: handlers must present
    /// a certificate to deliver completions).
    #[cfg(feature = "tls")]
    #[must_use]
    pub fn tls(self, tls: crate::tls::TlsServerConfig) -> Self {
        self.with_serve(|serve| *serve = serve.clone().tls(tls))
    }

    /// The path completions are received under.
    pub fn path(&self) -> &str {
        &self.inner.path
    }

    /// The route of this receiver, to serve or to merge into an application's router.
    pub fn router(&self) -> Router {
        Router::new()
            .route(
                &format!("{}/{{callback_id}}", self.inner.path),
                any(receive),
            )
            .with_state(self.inner.clone())
    }

    /// Serves on `listener` in the background, with its limits and TLS.
    pub fn serve(&self, listener: TcpListener) -> io::Result<ServerHandle> {
        self.inner.serve.serve(listener, self.router())
    }
}

fn normalise(path: &str) -> String {
    let trimmed = path.trim_matches('/');
    if trimmed.is_empty() {
        String::new()
    } else {
        format!("/{trimmed}")
    }
}

async fn receive(
    State(inner): State<Arc<Inner>>,
    Path(callback_id): Path<String>,
    request: Request,
) -> Response {
    let format = FailureFormat::Envelope;
    if request.method() != Method::POST {
        return wire::wrong_method(request.method(), format);
    }
    let (parts, body) = request.into_parts();
    let secret = protocol::query_param(parts.uri.query(), CALLBACK_SECRET_PARAM);
    let timeout = inner.serve.server_limits().body_read_timeout;
    let body = match wire::read_body(body, &parts.headers, inner.body_limit, timeout).await {
        Ok(body) => body,
        Err(e) => return wire::handler_error(&e, format),
    };
    let delivered = match protocol::parse_completion(&parts.headers, body) {
        Ok(completion) => {
            let span = spans::completion(&callback_id, &completion.token, completion.state());
            observe::extract_http(&span, &parts.headers);
            tracing::debug!(
                parent: &span,
                %callback_id,
                token = %completion.token,
                state = completion.state(),
                "completion received"
            );
            let delivered = inner
                .client
                .deliver_completion(&callback_id, secret.as_deref(), completion)
                .in_span(span.clone())
                .await;
            match &delivered {
                Ok(()) => spans::record(&span, "nexus.outcome", "accepted"),
                Err(e) => spans::record(&span, "nexus.outcome", outcome::HandlerErrorLabel(e)),
            }
            delivered
        }
        Err(e) => Err(e),
    };
    observe::metrics::completion_received(delivered.as_ref().err());
    match delivered {
        Ok(()) => wire::empty(StatusCode::OK),
        Err(e) => {
            tracing::warn!(%callback_id, error = %e, "completion refused");
            wire::handler_error(&e, format)
        }
    }
}

/// A socket bound for a [`CallbackReceiver`] before the client exists, so the client can be
/// built with the receiver's URL.
///
/// ```no_run
/// # async fn demo() -> std::io::Result<()> {
/// use nexus_runtime::{Client, server::CallbackListener, transport::HttpTransport};
/// let listener = CallbackListener::bind_loopback().await?;
/// let client = Client::builder()
///     .endpoint("fraud", HttpTransport::new("http://127.0.0.1:7243").expect("valid URL"))
///     .callback_url(listener.callback_url())
///     .build();
/// let _receiver = listener.serve(client.clone())?; // keep it: dropping it stops the receiver
/// # Ok(()) }
/// ```
///
/// [`limits`](Self::limits) and `tls` (feature `tls`) set up the server it runs; with TLS the
/// callback URL is `https://`.
#[derive(Debug)]
pub struct CallbackListener {
    listener: TcpListener,
    local_addr: SocketAddr,
    path: String,
    serve: ServeOptions,
}

impl CallbackListener {
    /// Binds `127.0.0.1` on a port the OS chooses.
    pub async fn bind_loopback() -> io::Result<Self> {
        Self::bind("127.0.0.1:0").await
    }

    /// Binds `addr`.
    pub async fn bind(addr: impl ToSocketAddrs) -> io::Result<Self> {
        Self::from_listener(TcpListener::bind(addr).await?)
    }

    /// Binds `addr` with `SO_REUSEPORT` (and `SO_REUSEADDR`), so several processes (replicas
    /// sharing a store) can listen on the same address: the kernel spreads connections among
    /// them, and when one stops the others receive everything. Any replica records any
    /// completion in the shared store, and the one driving the operation picks it up.
    #[cfg(unix)]
    pub async fn bind_shared(addr: SocketAddr) -> io::Result<Self> {
        let socket = if addr.is_ipv4() {
            tokio::net::TcpSocket::new_v4()?
        } else {
            tokio::net::TcpSocket::new_v6()?
        };
        socket.set_reuseaddr(true)?;
        socket.set_reuseport(true)?;
        socket.bind(addr)?;
        Self::from_listener(socket.listen(1024)?)
    }

    /// Uses a bound listener.
    pub fn from_listener(listener: TcpListener) -> io::Result<Self> {
        let local_addr = listener.local_addr()?;
        Ok(Self {
            listener,
            local_addr,
            path: DEFAULT_CALLBACK_PATH.to_owned(),
            serve: ServeOptions::default(),
        })
    }

    /// The connection-level limits of the receiver's server (see [`ServerLimits`]).
    #[must_use]
    pub fn limits(mut self, limits: ServerLimits) -> Self {
        self.serve = self.serve.limits(limits);
        self
    }

    /// Serves HTTPS with this certificate (and, with a client CA, mTLS); the callback URL
    /// becomes `https://`. Handlers then need to trust the certificate's CA (see
    /// [`TlsClientConfig`](crate::tls::TlsClientConfig)).
    #[cfg(feature = "tls")]
    #[must_use]
    pub fn tls(mut self, tls: crate::tls::TlsServerConfig) -> Self {
        self.serve = self.serve.tls(tls);
        self
    }

    /// The bound address.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The base callback URL to give [`ClientBuilder::callback_url`](crate::client::ClientBuilder::callback_url):
    /// `http://{addr}/nexus/callback` (`https://` with TLS).
    pub fn callback_url(&self) -> String {
        format!("{}://{}{}", self.serve.scheme(), self.local_addr, self.path)
    }

    /// Serves a [`CallbackReceiver`] for `client` on this socket, in the background.
    pub fn serve(self, client: Client) -> io::Result<ServerHandle> {
        let mut receiver = CallbackReceiver::new(client);
        receiver = receiver.with_serve(|serve| *serve = self.serve);
        receiver.serve(self.listener)
    }
}
