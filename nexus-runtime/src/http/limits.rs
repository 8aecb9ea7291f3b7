//! Connection-level limits of the servers, against slow, idle and too many clients.

use std::time::Duration;

/// The connection-level limits of a server: how long a client may take, how many may be
/// connected, how large a request head may be. The same options serve the
/// [`HandlerServer`](super::HandlerServer) and the [`CallbackReceiver`](super::CallbackReceiver).
///
/// | limit | default | what happens |
/// |---|---|---|
/// | [`max_connections`](Self::max_connections) | 10,000 | a connection over it is closed at once, with a `warn` log (at most one per 10 s, with the count) |
/// | [`tls_handshake_timeout`](Self::tls_handshake_timeout) | 10 s | a TLS handshake not done by then is dropped |
/// | [`header_read_timeout`](Self::header_read_timeout) | 10 s | a request head not complete this long after its first byte closes the connection |
/// | [`idle_timeout`](Self::idle_timeout) | 60 s | a keep-alive connection with no request for this long is closed |
/// | [`body_read_timeout`](Self::body_read_timeout) | 30 s | a request body not fully received by then is answered 408 REQUEST_TIMEOUT |
/// | [`max_header_bytes`](Self::max_header_bytes) | 64 KiB | a larger request head (request line and headers) is answered 431 and the connection closed |
///
/// The body size limit is per server (`body_limit`, 2 MiB by default). The number of headers is
/// capped at 100 (hyper's limit; more is answered 431).
///
/// ```
/// use std::time::Duration;
/// use nexus_runtime::server::ServerLimits;
/// let mut limits = ServerLimits::default();
/// limits.max_connections = 2_000;
/// limits.idle_timeout = Duration::from_secs(30);
/// assert_eq!(limits.header_read_timeout, Duration::from_secs(10));
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct ServerLimits {
    /// Connections open at once (TLS handshakes included); more are closed as soon as they are
    /// accepted (default 10,000; at least 1). Keep it under the process's file descriptor
    /// limit (`ulimit -n`).
    pub max_connections: usize,
    /// The longest a TLS handshake may take (default 10 s). Ignored without TLS.
    pub tls_handshake_timeout: Duration,
    /// The longest a request head (request line and headers) may take from its first byte to
    /// its end (default 10 s): a client that sends it slower (slowloris) is disconnected.
    pub header_read_timeout: Duration,
    /// How long a connection with no request in flight and no request started is kept open
    /// (default 60 s): from its opening, or from the end of its last response.
    pub idle_timeout: Duration,
    /// The longest reading a request body may take, from the handler's first read to its end
    /// (default 30 s); a slower body is answered 408 REQUEST_TIMEOUT with a Failure naming the
    /// limit.
    pub body_read_timeout: Duration,
    /// The largest request head, request line and headers together, in bytes (default 64 KiB;
    /// at least 8 KiB): larger is answered 431 Request Header Fields Too Large.
    pub max_header_bytes: usize,
}

/// The default [`ServerLimits::max_connections`].
pub const DEFAULT_MAX_CONNECTIONS: usize = 10_000;

impl Default for ServerLimits {
    fn default() -> Self {
        Self {
            max_connections: DEFAULT_MAX_CONNECTIONS,
            tls_handshake_timeout: Duration::from_secs(10),
            header_read_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(60),
            body_read_timeout: Duration::from_secs(30),
            max_header_bytes: 64 * 1024,
        }
    }
}

impl ServerLimits {
    /// hyper's smallest read buffer: a request head limit below it cannot be configured.
    pub(crate) const MIN_HEADER_BYTES: usize = 8 * 1024;

    /// hyper's default read buffer size.
    const DEFAULT_BUFFER: usize = 400 * 1024;

    /// The HTTP/1 connection settings these limits ask for. The timeouts are enforced by the
    /// connection's watchdog, not by hyper (whose header timeout also ends idle connections).
    pub(crate) fn http1(&self) -> hyper::server::conn::http1::Builder {
        let header_bytes = self.max_header_bytes.max(Self::MIN_HEADER_BYTES);
        let mut builder = hyper::server::conn::http1::Builder::new();
        builder
            .header_read_timeout(None)
            .max_header_size(header_bytes)
            .max_buf_size(header_bytes.max(Self::DEFAULT_BUFFER));
        builder
    }
}
