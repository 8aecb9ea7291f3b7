//! Nexus RPC over HTTP, caller side: the [`HttpTransport`] (feature `http`).

mod definitions;
mod request;

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use futures::FutureExt as _;
use futures::future::BoxFuture;
use http::HeaderMap;
use reqwest::Url;

use crate::error::{CallError, TransportError, TransportErrorKind};
use crate::http::client::HttpClientOptions;
use crate::protocol;
use crate::transport::{CancelRequest, StartRequest, StartResponse, Transport};

/// A base URL that an [`HttpTransport`] cannot use.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("invalid Nexus endpoint URL `{url}`: {problem}")]
pub struct InvalidEndpointUrl {
    /// The URL as given.
    pub url: String,
    /// What is wrong with it.
    pub problem: String,
}

/// Calls a Nexus handler over HTTP, as Temporal and the Go SDK do.
///
/// The base URL is where the handler is mounted: `http://host:port/prefix` for a nexus-rs
/// [`HandlerServer`](crate::http::HandlerServer), or
/// `http://host:port/nexus/endpoints/{endpoint-id}/services` for a Temporal endpoint. A start is
/// `POST {base}/{service}/{operation}` with each name escaped as one path segment; a cancel is
/// `POST {base}/{service}/{operation}/cancel` with the token in `Nexus-Operation-Token`.
///
/// Every request carries `Nexus-Request-Id`, `Request-Timeout` (from the request deadline, in
/// milliseconds), `Temporal-Nexus-Failure-Support: true` (this transport reads HandlerError and
/// OperationError envelopes as well as bare failures) and the caller's headers; a start also
/// carries `Operation-Timeout`, its links, its payload's `Content-*` headers, and the callback
/// URL as the `callback` query parameter with the callback's headers as `Nexus-Callback-*`.
///
/// Connections are pooled. One call is one attempt: retries are the client's job. A peer that
/// cannot be reached is a retryable [`TransportErrorKind::Connect`] error; an answer that is not
/// valid Nexus is a [`TransportErrorKind::Protocol`] error.
///
/// ```
/// use nexus_runtime::transport::HttpTransport;
/// let transport = HttpTransport::new("http://127.0.0.1:7243/nexus").unwrap();
/// assert_eq!(transport.base_url(), "http://127.0.0.1:7243/nexus");
/// assert!(HttpTransport::new("ftp://example.com").is_err());
/// ```
#[derive(Clone)]
pub struct HttpTransport {
    inner: Arc<Inner>,
}

struct Inner {
    base: String,
    client: reqwest::Client,
    /// `Authorization: Bearer …`, sent with every request.
    authorization: Option<http::HeaderValue>,
}

impl fmt::Debug for HttpTransport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HttpTransport")
            .field("base_url", &self.inner.base)
            .finish_non_exhaustive()
    }
}

/// Configures an [`HttpTransport`].
#[derive(Debug)]
pub struct HttpTransportBuilder {
    base_url: String,
    client: Option<reqwest::Client>,
    options: HttpClientOptions,
    bearer_token: Option<String>,
}

impl HttpTransportBuilder {
    /// Sends `Authorization: Bearer <token>` with every start and cancel request, for a handler
    /// that authenticates callers by bearer token. It replaces any `authorization` header among
    /// a request's own headers, and is never logged.
    #[must_use]
    pub fn bearer_token(mut self, token: impl Into<String>) -> Self {
        self.bearer_token = Some(token.into());
        self
    }

    /// Speaks TLS with this configuration: extra root CAs, a client certificate for handlers
    /// that require mTLS. Without it (and with the `tls` feature), `https://` handlers are
    /// verified against Mozilla's roots. Ignored with [`http_client`](Self::http_client).
    #[cfg(feature = "tls")]
    #[must_use]
    pub fn tls(mut self, tls: crate::tls::TlsClientConfig) -> Self {
        self.options.tls = Some(tls);
        self
    }

    /// Uses this HTTP client instead of the default one: the place to configure proxies or DNS.
    /// The default client has no proxy and, with the `tls` feature, speaks TLS as
    /// its `tls` configuration says.
    #[must_use]
    pub fn http_client(mut self, client: reqwest::Client) -> Self {
        self.client = Some(client);
        self
    }

    /// How long to wait for a connection to open (default 10 s). Ignored with
    /// [`http_client`](Self::http_client).
    #[must_use]
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.options.connect_timeout = Some(timeout);
        self
    }

    /// How long an idle pooled connection is kept (default 90 s). Ignored with
    /// [`http_client`](Self::http_client).
    #[must_use]
    pub fn pool_idle_timeout(mut self, timeout: Duration) -> Self {
        self.options.pool_idle_timeout = Some(timeout);
        self
    }

    /// Builds the transport. The base URL must be an absolute `http` or `https` URL with a host
    /// and no query or fragment; `https` needs the `tls` feature; a bearer token must be
    /// visible ASCII.
    pub fn build(self) -> Result<HttpTransport, InvalidEndpointUrl> {
        let base = validate_base_url(&self.base_url)?;
        let authorization = self
            .bearer_token
            .as_deref()
            .map(|token| {
                let token = token.trim();
                let mut value = http::HeaderValue::from_str(&format!("Bearer {token}"))
                    .ok()
                    .filter(|_| !token.is_empty())
                    .ok_or_else(|| InvalidEndpointUrl {
                        url: self.base_url.clone(),
                        problem: "the bearer token is empty or not visible ASCII".into(),
                    })?;
                value.set_sensitive(true);
                Ok(value)
            })
            .transpose()?;
        let client = match self.client {
            Some(client) => client,
            None => self.options.build().map_err(|e| InvalidEndpointUrl {
                url: self.base_url.clone(),
                problem: format!("cannot build the HTTP client: {e}"),
            })?,
        };
        Ok(HttpTransport {
            inner: Arc::new(Inner {
                base,
                client,
                authorization,
            }),
        })
    }
}

fn validate_base_url(raw: &str) -> Result<String, InvalidEndpointUrl> {
    let invalid = |problem: &str| InvalidEndpointUrl {
        url: raw.to_owned(),
        problem: problem.to_owned(),
    };
    if raw.trim().is_empty() {
        return Err(invalid("it is empty"));
    }
    if !raw.contains("://") {
        return Err(invalid(
            "it is not an absolute URL; write it like http://host:port/path",
        ));
    }
    let url = Url::parse(raw).map_err(|e| invalid(&e.to_string()))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(invalid(&format!(
            "the scheme is `{}`; only http and https are supported",
            url.scheme()
        )));
    }
    if url.scheme() == "https" && !cfg!(feature = "tls") {
        return Err(invalid(
            "https needs nexus-runtime's `tls` feature, which this build does not have",
        ));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(invalid("it has no host"));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(invalid(
            "it must not have a query or fragment (service and operation are appended to its path)",
        ));
    }
    Ok(url.as_str().trim_end_matches('/').to_owned())
}

impl HttpTransport {
    /// A transport to the handler mounted at `base_url`, with default settings.
    pub fn new(base_url: impl Into<String>) -> Result<Self, InvalidEndpointUrl> {
        Self::builder(base_url).build()
    }

    /// A builder for a transport to the handler mounted at `base_url`.
    pub fn builder(base_url: impl Into<String>) -> HttpTransportBuilder {
        HttpTransportBuilder {
            base_url: base_url.into(),
            client: None,
            options: HttpClientOptions {
                connect_timeout: Some(Duration::from_secs(10)),
                ..HttpClientOptions::default()
            },
            bearer_token: None,
        }
    }

    /// The base URL, without a trailing `/`.
    pub fn base_url(&self) -> &str {
        &self.inner.base
    }
}

impl Transport for HttpTransport {
    fn start(&self, request: StartRequest) -> BoxFuture<'static, Result<StartResponse, CallError>> {
        let inner = self.inner.clone();
        async move { inner.start(request).await }.boxed()
    }

    fn cancel(&self, request: CancelRequest) -> BoxFuture<'static, Result<(), CallError>> {
        let inner = self.inner.clone();
        async move { inner.cancel(request).await }.boxed()
    }

    fn needs_callback_url(&self) -> bool {
        true
    }
}

impl Inner {
    async fn start(&self, request: StartRequest) -> Result<StartResponse, CallError> {
        let prepared = request::start(&self.base, &request)?;
        let (status, headers, body) = self.send(prepared, request.input.data).await?;
        protocol::parse_start_response(status, &headers, body)
    }

    async fn cancel(&self, request: CancelRequest) -> Result<(), CallError> {
        let prepared = request::cancel(&self.base, &request)?;
        let (status, headers, body) = self.send(prepared, bytes::Bytes::new()).await?;
        protocol::parse_cancel_response(status, &headers, &body)
    }

    async fn send(
        &self,
        mut prepared: request::Prepared,
        body: bytes::Bytes,
    ) -> Result<(http::StatusCode, HeaderMap, bytes::Bytes), CallError> {
        // Named without its query: a start request's query is the caller's callback URL, whose
        // completion secret must not reach logs or error messages.
        let url = prepared
            .url
            .split_once('?')
            .map_or(prepared.url.as_str(), |(path, _)| path)
            .to_owned();
        if let Some(authorization) = &self.authorization {
            prepared
                .headers
                .insert(http::header::AUTHORIZATION, authorization.clone());
        }
        let mut builder = self
            .client
            .post(&prepared.url)
            .headers(prepared.headers)
            .body(body);
        if let Some(timeout) = prepared.timeout {
            builder = builder.timeout(timeout);
        }
        let response = builder.send().await.map_err(|e| transport_error(&url, e))?;
        let status = response.status();
        let headers = response.headers().clone();
        let body = response
            .bytes()
            .await
            .map_err(|e| transport_error(&url, e))?;
        tracing::debug!(%url, %status, "nexus response");
        Ok((status, headers, body))
    }
}

/// Maps a reqwest failure: timeouts and unreachable peers are retryable transport errors.
fn transport_error(url: &str, error: reqwest::Error) -> CallError {
    // reqwest names the full URL (query included); `url` is the one to show.
    let error = error.without_url();
    let mut message = format!("POST {url}: {error}");
    let mut source = std::error::Error::source(&error);
    while let Some(cause) = source {
        message.push_str(&format!(": {cause}"));
        source = cause.source();
    }
    let kind = if error.is_timeout() {
        TransportErrorKind::Timeout
    } else if error.is_builder() {
        TransportErrorKind::Unavailable
    } else {
        // Refused, reset, closed before the answer was complete: the peer may be back soon.
        TransportErrorKind::Connect
    };
    CallError::Transport(TransportError::new(kind, message))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base_urls_are_checked() {
        for ok in [
            "http://127.0.0.1:1",
            #[cfg(feature = "tls")]
            "https://example.com/nexus/",
            "http://h/nexus/endpoints/0b4c/services",
        ] {
            let t = HttpTransport::new(ok).unwrap();
            assert!(!t.base_url().ends_with('/'), "{}", t.base_url());
        }
        for (bad, needle) in [
            ("", "empty"),
            ("127.0.0.1:80", "not an absolute URL"),
            ("ftp://example.com", "only http and https"),
            ("unix:///tmp/sock", "only http and https"),
            ("http://", "empty host"),
            ("http://example.com/?a=b", "query"),
            ("not a url", "not an absolute URL"),
            #[cfg(not(feature = "tls"))]
            ("https://example.com/nexus/", "`tls` feature"),
        ] {
            let err = HttpTransport::new(bad).unwrap_err();
            assert!(err.to_string().contains(needle), "{bad}: {err}");
        }
    }
}
