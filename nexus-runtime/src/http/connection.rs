//! One accepted connection: its TLS handshake, its HTTP/1.1 session, and the watchdog that
//! closes it when the client is too slow or idle too long.
//!
//! hyper's own header timeout starts whenever the connection waits for a request head, idle
//! keep-alive connections included, so it cannot tell a slow head from an idle connection. The
//! watchdog does: it watches the bytes read and written and the requests in flight, and closes
//! the connection when
//! - no request is in flight and a request head started more than `header_read_timeout` ago
//!   (slowloris), or
//! - no request is in flight or started and nothing was read or written for `idle_timeout`.
//!
//! While a request is in flight the connection is the handler's: the body has its own timeout
//! (see `wire::read_body`) and the handler its request deadline.

use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::task::{Context, Poll};

use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use bytes::Bytes;
use http::{Request, Response};
use hyper::body::{Frame, Incoming, SizeHint};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::sync::OwnedSemaphorePermit;
use tokio::time::Instant;
use tower::ServiceExt as _;

use super::limits::ServerLimits;
use super::shutdown::Watch;
use crate::security::PeerCertificates;

/// What a server runs for each request: an axum [`Router`], or a handler called directly.
pub(crate) trait Routes: Clone + Send + Sync + 'static {
    /// Answers `request`. The future may borrow `self`: each connection holds a copy of the
    /// routes of its own, so that a request touches no reference count that the server's
    /// other connections (on other worker threads) touch too.
    fn call(&self, request: Request<Body>) -> impl Future<Output = Response<Body>> + Send + '_;

    /// Whether the routes may read the peer's address (`ConnectInfo<SocketAddr>`) from a
    /// request's extensions. When they do not, it is left out: putting it there allocates the
    /// request's extension map, for every request.
    fn reads_peer_address(&self) -> bool {
        true
    }
}

impl Routes for Router {
    fn call(&self, request: Request<Body>) -> impl Future<Output = Response<Body>> + Send + '_ {
        let router = self.clone();
        async move {
            let Ok(response) = router.oneshot(request).await;
            response
        }
    }
}

/// What a connection task needs, shared by all of a server's connections.
pub(crate) struct Shared<R> {
    pub(crate) routes: R,
    pub(crate) http: hyper::server::conn::http1::Builder,
    pub(crate) limits: ServerLimits,
    #[cfg(feature = "tls")]
    pub(crate) tls: Option<crate::tls::TlsServerConfig>,
    pub(crate) warnings: super::listen::Throttle,
}

/// Serves one accepted connection until it ends, is closed by the watchdog, or the server
/// stops. `permit` is its place under `max_connections`, given back when it ends.
pub(crate) async fn run<R: Routes>(
    stream: TcpStream,
    peer: SocketAddr,
    shared: Arc<Shared<R>>,
    watch: Watch,
    permit: OwnedSemaphorePermit,
) {
    let _permit = permit;
    #[cfg(feature = "tls")]
    if let Some(tls) = &shared.tls {
        let acceptor = tokio_rustls::TlsAcceptor::from(tls.rustls_config());
        let handshake =
            tokio::time::timeout(shared.limits.tls_handshake_timeout, acceptor.accept(stream));
        let stream = match handshake.await {
            Ok(Ok(stream)) => stream,
            Ok(Err(error)) => {
                shared.warnings.warn(|suppressed| {
                    tracing::warn!(%peer, %error, suppressed, "TLS handshake failed");
                });
                return;
            }
            Err(_) => {
                tracing::debug!(%peer, timeout = ?shared.limits.tls_handshake_timeout, "TLS handshake timed out");
                return;
            }
        };
        let certificates = stream
            .get_ref()
            .1
            .peer_certificates()
            .map(|chain| PeerCertificates(chain.iter().map(|c| c.as_ref().to_vec()).collect()));
        return serve_http(stream, peer, certificates, &shared, watch).await;
    }
    serve_http(stream, peer, None, &shared, watch).await;
}

async fn serve_http<I, R>(
    io: I,
    peer: SocketAddr,
    certificates: Option<PeerCertificates>,
    shared: &Shared<R>,
    watch: Watch,
) where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    R: Routes,
{
    let activity = Arc::new(Activity::new());
    let io = TokioIo::new(Watched {
        io,
        activity: activity.clone(),
    });
    // This connection's own copy of the routes, which its requests share.
    let routes = Arc::new(shared.routes.clone());
    let on_request = activity.clone();
    let peer_address = routes.reads_peer_address();
    let service = hyper::service::service_fn(move |request: http::Request<Incoming>| {
        let mut request = request.map(Body::new);
        if peer_address {
            request.extensions_mut().insert(ConnectInfo(peer));
        }
        if let Some(certificates) = &certificates {
            request.extensions_mut().insert(certificates.clone());
        }
        let guard = InFlight::begin(on_request.clone());
        let routes = routes.clone();
        async move {
            // Awaited through a pin: the request's future is not moved into the await.
            let response = std::pin::pin!(routes.call(request)).await;
            // Handed to hyper as it is: boxing it again into a `Body` would cost an allocation
            // and an indirection per request.
            Ok::<_, Infallible>(response.map(|body| Guarded { body, guard }))
        }
    });
    let connection = watch.watch(shared.http.serve_connection(io, service));
    tokio::pin!(connection);
    // The watchdog wakes at its deadline, or after `check` at the latest, and looks again: the
    // request path only stores atomics (no wake-up per request), and a deadline that moved
    // earlier (a request head started) is seen within `check`, which is never longer than the
    // shortest limit, so it is kept exactly.
    let check = shared
        .limits
        .header_read_timeout
        .min(shared.limits.idle_timeout);
    let sleep = tokio::time::sleep(check);
    tokio::pin!(sleep);
    loop {
        tokio::select! {
            ended = &mut connection => {
                if let Err(error) = ended {
                    tracing::debug!(%peer, %error, "connection ended with an error");
                }
                return;
            }
            () = &mut sleep => {
                let now = Instant::now();
                let next = match activity.deadline(&shared.limits) {
                    Some((at, why)) if at <= now => {
                        tracing::debug!(%peer, reason = why.as_str(), "closing the connection");
                        return;
                    }
                    Some((at, _)) => at.min(now + check),
                    None => now + check,
                };
                sleep.as_mut().reset(next);
            }
        }
    }
}

/// Why the watchdog closes a connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Expiry {
    HeaderTimeout,
    Idle,
}

impl Expiry {
    fn as_str(self) -> &'static str {
        match self {
            Self::HeaderTimeout => "the request head was not complete within header_read_timeout",
            Self::Idle => "idle for idle_timeout",
        }
    }
}

/// What the watchdog watches: times in milliseconds since the connection opened.
struct Activity {
    opened: Instant,
    /// The last byte read or written.
    last: AtomicU64,
    /// When the head of the next request started (plus one; zero: not started).
    head_started: AtomicU64,
    /// Requests received and not yet answered in full.
    in_flight: AtomicUsize,
}

impl Activity {
    fn new() -> Self {
        Self {
            opened: Instant::now(),
            last: AtomicU64::new(0),
            head_started: AtomicU64::new(0),
            in_flight: AtomicUsize::new(0),
        }
    }

    fn now(&self) -> u64 {
        u64::try_from(self.opened.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    fn at(&self, millis: u64) -> Instant {
        self.opened + std::time::Duration::from_millis(millis)
    }

    fn read(&self) {
        let now = self.now();
        self.last.store(now, Ordering::Relaxed);
        if self.in_flight.load(Ordering::Relaxed) == 0
            && self.head_started.load(Ordering::Relaxed) == 0
        {
            self.head_started.store(now + 1, Ordering::Relaxed);
        }
    }

    fn wrote(&self) {
        self.last.store(self.now(), Ordering::Relaxed);
    }

    /// When the connection must close, and why: `None` while a request is in flight.
    fn deadline(&self, limits: &ServerLimits) -> Option<(Instant, Expiry)> {
        if self.in_flight.load(Ordering::Relaxed) > 0 {
            return None;
        }
        match self.head_started.load(Ordering::Relaxed) {
            0 => Some((
                self.at(self.last.load(Ordering::Relaxed)) + limits.idle_timeout,
                Expiry::Idle,
            )),
            started => Some((
                self.at(started - 1) + limits.header_read_timeout,
                Expiry::HeaderTimeout,
            )),
        }
    }
}

/// A request in flight, from its head until its response body is sent (or dropped).
struct InFlight(Arc<Activity>);

impl InFlight {
    fn begin(activity: Arc<Activity>) -> Self {
        activity.in_flight.fetch_add(1, Ordering::Relaxed);
        activity.head_started.store(0, Ordering::Relaxed);
        Self(activity)
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        let activity = &self.0;
        activity.last.store(activity.now(), Ordering::Relaxed);
        activity.in_flight.fetch_sub(1, Ordering::Relaxed);
    }
}

pin_project_lite::pin_project! {
    /// A response body that keeps its request in flight until it is sent.
    struct Guarded {
        #[pin]
        body: Body,
        guard: InFlight,
    }
}

impl hyper::body::Body for Guarded {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        self.project().body.poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

pin_project_lite::pin_project! {
    /// The connection's stream, telling the watchdog about every byte read or written.
    struct Watched<I> {
        #[pin]
        io: I,
        activity: Arc<Activity>,
    }
}

impl<I: AsyncRead> AsyncRead for Watched<I> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.project();
        let before = buf.filled().len();
        let result = this.io.poll_read(cx, buf);
        if matches!(result, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            this.activity.read();
        }
        result
    }
}

impl<I: AsyncWrite> AsyncWrite for Watched<I> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.project();
        let result = this.io.poll_write(cx, buf);
        if matches!(result, Poll::Ready(Ok(n)) if n > 0) {
            this.activity.wrote();
        }
        result
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.project();
        let result = this.io.poll_write_vectored(cx, bufs);
        if matches!(result, Poll::Ready(Ok(n)) if n > 0) {
            this.activity.wrote();
        }
        result
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.project().io.poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.project().io.poll_shutdown(cx)
    }
}
