//! The handler server: serves a [`Dispatcher`] as Nexus RPC over HTTP.

mod definitions;
mod request;
mod standalone;

pub use definitions::DEFINITIONS_PATH;

use std::fmt;
use std::io;
use std::sync::Arc;

use axum::Router;
use axum::extract::{Request, State};
use axum::response::Response;
use axum::routing::any;
use http::{HeaderMap, HeaderValue, Method, StatusCode};
use tokio::net::{TcpListener, ToSocketAddrs};

use super::completion::{CompletionRetry, HttpCompletionSender};
use super::handle::{ServeOptions, ServerHandle};
use super::limits::ServerLimits;
use super::wire::{self, DEFAULT_BODY_LIMIT};
use crate::codec::JSON;
use crate::completion::CompletionSender;
use crate::definition::Definition;
use crate::error::HandlerError;
use crate::protocol::{self, FailureFormat, OperationInfo, Route};
use crate::security::{AuthenticationError, Authenticator, Principal};
use crate::service::Dispatcher;
use crate::transport::StartResponse;

/// Serves the services of a [`Dispatcher`] as Nexus RPC over HTTP, under a path prefix.
///
/// Routes, relative to the prefix:
/// - `POST /{service}/{operation}[?callback=URL]` starts an operation: 200 with the result, 201
///   `{"token":…,"state":"running"}`, 424 with `Nexus-Operation-State` when the operation failed
///   or was canceled, or a HandlerError's status;
/// - `POST /{service}/{operation}/cancel` (token in `Nexus-Operation-Token` or `?token=`) and the
///   deprecated `POST /{service}/{operation}/{token}/cancel` cancel one: 202;
/// - `GET /definitions` answers the services' definition, only when one was given to
///   [`HandlerServerBuilder::definitions`] (off by default).
///
/// Names are percent-escaped per path segment. Every problem is answered with a Failure whose
/// message names it: a method other than POST, a malformed header or callback URL, or a body over
/// the limit is BAD_REQUEST (400), an unknown path NOT_FOUND (404). Failures are sent in the
/// format the request negotiates (see [`FailureFormat`]).
///
/// What the handler sees: `Nexus-Request-Id` as the request id (empty when the caller sent none,
/// as on Temporal's task-queue route); `Request-Timeout` as the request deadline (at which the
/// dispatcher drops the handler's future and answers UPSTREAM_TIMEOUT) and `Operation-Timeout` as
/// the operation deadline; `Nexus-Link`s; every other header except `Content-*`,
/// `Nexus-Callback-*` and the hop's framing; the body with its `Content-*` headers.
///
/// **Who is calling.** With an [authenticator](HandlerServerBuilder::authenticator), every
/// request under the prefix is authenticated first, before its path or body is looked at: missing
/// or invalid credentials are answered 401 with an UNAUTHENTICATED Failure (and
/// `WWW-Authenticate` when the authenticator gives a challenge), which says nothing about what is
/// served. The principal it names goes to the dispatcher with the request: the dispatcher's
/// access policy is checked before the body is read (403 UNAUTHORIZED), request ids are scoped by
/// it, only it may cancel the operations it started, and its quota applies. Without an
/// authenticator every request is [`Principal::anonymous`]. With one, the `Authorization` header
/// is kept from the handler's headers (and so from the store).
///
/// [`serve`](Self::serve) and [`bind`](Self::bind) run it with the builder's
/// [`limits`](HandlerServerBuilder::limits) and, with the `tls` feature, its `tls`
/// configuration (HTTPS, mTLS).
///
/// Async operations deliver their completions with an [`HttpCompletionSender`], installed in the
/// dispatcher unless it already has a completion sender. When the dispatcher has a store, the
/// sender makes one attempt per call and the dispatcher's outbox does the retrying (completions
/// survive restarts); otherwise the sender retries by itself, in memory.
///
/// ```no_run
/// # async fn demo(dispatcher: nexus_runtime::service::Dispatcher) -> std::io::Result<()> {
/// use nexus_runtime::server::HandlerServer;
/// // Standalone:
/// let server = HandlerServer::builder(dispatcher.clone()).prefix("/nexus").build();
/// let running = server.bind("127.0.0.1:0").await?;
/// println!("serving on {}/nexus", running.url());
/// // Or inside an axum app of your own:
/// let app = axum::Router::new()
///     .route("/health", axum::routing::get(|| async { "ok" }))
///     .merge(HandlerServer::new(dispatcher).router());
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct HandlerServer {
    inner: Arc<Inner>,
}

struct Inner {
    dispatcher: Dispatcher,
    prefix: String,
    body_limit: usize,
    authenticator: Option<Arc<dyn Authenticator>>,
    serve: ServeOptions,
    definitions: Option<Arc<definitions::Route>>,
}

impl fmt::Debug for HandlerServer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HandlerServer")
            .field("prefix", &self.inner.prefix)
            .field("body_limit", &self.inner.body_limit)
            .field("authenticated", &self.inner.authenticator.is_some())
            .field("serve", &self.inner.serve)
            .field("dispatcher", &self.inner.dispatcher)
            .finish()
    }
}

/// Configures a [`HandlerServer`].
pub struct HandlerServerBuilder {
    dispatcher: Dispatcher,
    prefix: String,
    body_limit: usize,
    serve: ServeOptions,
    completion_sender: Option<Arc<dyn CompletionSender>>,
    authenticator: Option<Arc<dyn Authenticator>>,
    completion_base: Option<HttpCompletionSender>,
    definitions: Option<Definition>,
}

impl fmt::Debug for HandlerServerBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HandlerServerBuilder")
            .field("prefix", &self.prefix)
            .field("body_limit", &self.body_limit)
            .field("serve", &self.serve)
            .finish_non_exhaustive()
    }
}

impl HandlerServerBuilder {
    /// The path the services are served under (default `/`), such as `/nexus`. Leading and
    /// trailing slashes are normalised.
    #[must_use]
    pub fn prefix(mut self, prefix: impl AsRef<str>) -> Self {
        let trimmed = prefix.as_ref().trim_matches('/');
        self.prefix = if trimmed.is_empty() {
            String::new()
        } else {
            format!("/{trimmed}")
        };
        self
    }

    /// The largest request body accepted, in bytes (default 2 MiB).
    #[must_use]
    pub fn body_limit(mut self, bytes: usize) -> Self {
        self.body_limit = bytes;
        self
    }

    /// The connection-level limits (timeouts, connection cap, head size) of the server that
    /// [`serve`](HandlerServer::serve) and [`bind`](HandlerServer::bind) run; the body read
    /// timeout also applies to [`router`](HandlerServer::router) served by other means.
    #[must_use]
    pub fn limits(mut self, limits: ServerLimits) -> Self {
        self.serve = self.serve.limits(limits);
        self
    }

    /// Serves HTTPS with this certificate (and, with a client CA, mTLS): see
    /// [`TlsServerConfig`](crate::tls::TlsServerConfig). Applies to
    /// [`serve`](HandlerServer::serve) and [`bind`](HandlerServer::bind).
    #[cfg(feature = "tls")]
    #[must_use]
    pub fn tls(mut self, tls: crate::tls::TlsServerConfig) -> Self {
        self.serve = self.serve.tls(tls);
        self
    }

    /// Delivers completions over TLS with this configuration (extra root CAs, a client
    /// certificate for receivers that require mTLS), in the default [`HttpCompletionSender`].
    /// Ignored with [`completion_sender`](Self::completion_sender). Without it, `https://`
    /// callback URLs are verified against Mozilla's roots.
    #[cfg(feature = "tls")]
    pub fn completion_tls(
        mut self,
        tls: crate::tls::TlsClientConfig,
    ) -> Result<Self, crate::tls::TlsError> {
        self.completion_base = Some(HttpCompletionSender::new().tls(tls)?);
        Ok(self)
    }

    /// Delivers completions with this sender instead of a default [`HttpCompletionSender`]
    /// (ignored if the dispatcher was built with a completion sender). With a store, each call is
    /// one attempt of the outbox: give it no retries ([`CompletionRetry::never`]). An
    /// [`HttpCompletionSender`] should get the dispatcher's guard
    /// ([`callback_guard`](HttpCompletionSender::callback_guard)), or it allows public https
    /// hosts only.
    #[must_use]
    pub fn completion_sender(mut self, sender: impl CompletionSender) -> Self {
        self.completion_sender = Some(Arc::new(sender));
        self
    }

    /// Authenticates every request with `authenticator` (see the server's documentation): for
    /// example a [`CertificateAuthenticator`](crate::security::CertificateAuthenticator) behind
    /// mTLS, a [`BearerAuthenticator`](crate::security::BearerAuthenticator), or both in an
    /// [`AnyOf`](crate::security::AnyOf). Default: none, every request is anonymous.
    #[must_use]
    pub fn authenticator(mut self, authenticator: impl Authenticator) -> Self {
        self.authenticator = Some(Arc::new(authenticator));
        self
    }

    /// Serves `definition` (the nexus-rpc-gen document of the hosted services, for example
    /// `Definition::of::<MyService>()`) as JSON at `GET {prefix}/definitions`, for tools that
    /// read a running handler's contract (`nexus definition export`). Off by default; behind the
    /// [authenticator](Self::authenticator) when there is one (any authenticated caller may read
    /// it, whatever the access policy: a definition names operations and types, never data).
    #[must_use]
    pub fn definitions(mut self, definition: Definition) -> Self {
        self.definitions = Some(definition);
        self
    }

    /// Builds the server and installs its completion sender in the dispatcher: an
    /// [`HttpCompletionSender`] under the dispatcher's
    /// [callback guard](crate::service::DispatcherBuilder::callback_guard); with a store, one
    /// that makes one attempt per call, for the dispatcher's outbox (which retries, across
    /// restarts); without one, one that retries by itself.
    pub fn build(self) -> HandlerServer {
        let sender = self.completion_sender.unwrap_or_else(|| {
            let mut sender = self
                .completion_base
                .unwrap_or_default()
                .callback_guard(self.dispatcher.callback_guard().clone());
            if self.dispatcher.has_store() {
                sender = sender.retry(CompletionRetry::never());
            }
            Arc::new(sender)
        });
        self.dispatcher.set_default_completion_sender(sender);
        let definitions = self.definitions.map(|definition| {
            Arc::new(definitions::Route::new(
                &self.prefix,
                &definition,
                self.authenticator.clone(),
            ))
        });
        HandlerServer {
            inner: Arc::new(Inner {
                dispatcher: self.dispatcher,
                prefix: self.prefix,
                body_limit: self.body_limit,
                authenticator: self.authenticator,
                serve: self.serve,
                definitions,
            }),
        }
    }
}

impl HandlerServer {
    /// A server for `dispatcher` with the default settings (prefix `/`, 2 MiB bodies).
    pub fn new(dispatcher: Dispatcher) -> Self {
        Self::builder(dispatcher).build()
    }

    /// A builder.
    pub fn builder(dispatcher: Dispatcher) -> HandlerServerBuilder {
        HandlerServerBuilder {
            dispatcher,
            prefix: String::new(),
            body_limit: DEFAULT_BODY_LIMIT,
            serve: ServeOptions::default(),
            completion_sender: None,
            authenticator: None,
            completion_base: None,
            definitions: None,
        }
    }

    /// The prefix the services are served under (`""` for the root).
    pub fn prefix(&self) -> &str {
        &self.inner.prefix
    }

    /// The routes of this server, to serve or to mount in an application's router.
    ///
    /// Without a prefix, only Nexus-shaped paths are routed: `/{service}/{operation}`,
    /// `/{service}/{operation}/cancel` and `/{service}/{operation}/{token}/cancel`. The router
    /// has no `/` route, no catch-all and no fallback, so it can be merged into an application
    /// that has its own `/`, `/health` or fallback, and nested with [`Router::nest`] (the
    /// handler reads the path relative to where it is nested). With a prefix, every path under
    /// the prefix is routed, and those that are not Nexus routes get a NOT_FOUND Failure.
    ///
    /// ```
    /// # async fn demo(dispatcher: nexus_runtime::service::Dispatcher) {
    /// use axum::{Router, routing::get};
    /// use nexus_runtime::server::HandlerServer;
    ///
    /// let nexus = HandlerServer::new(dispatcher);
    /// // Services at `/{service}/{operation}`, beside the application's own routes:
    /// let merged: Router = Router::new()
    ///     .route("/", get(|| async { "home" }))
    ///     .route("/health", get(|| async { "ok" }))
    ///     .merge(nexus.router());
    /// // Or everything Nexus under `/nexus` (`/nexus/{service}/{operation}`):
    /// let nested: Router = Router::new()
    ///     .route("/", get(|| async { "home" }))
    ///     .nest("/nexus", nexus.router());
    /// # let _ = (merged, nested);
    /// # }
    /// ```
    pub fn router(&self) -> Router {
        let prefix = &self.inner.prefix;
        let router = if prefix.is_empty() {
            Router::new()
                .route("/{service}/{operation}", any(serve_state))
                .route("/{service}/{operation}/cancel", any(serve_state))
                .route("/{service}/{operation}/{token}/cancel", any(serve_state))
        } else {
            Router::new()
                .route(prefix, any(serve_state))
                .route(&format!("{prefix}/"), any(serve_state))
                .route(&format!("{prefix}/{{*path}}"), any(serve_state))
        };
        let router = router.with_state(self.inner.clone());
        match &self.inner.definitions {
            Some(route) => router.merge(definitions::router(route)),
            None => router,
        }
    }

    /// Serves on `listener` in the background, with the builder's limits and TLS. Requests
    /// outside the prefix get a NOT_FOUND Failure.
    pub fn serve(&self, listener: TcpListener) -> io::Result<ServerHandle> {
        self.inner
            .serve
            .serve_routes(listener, standalone::Standalone::new(self))
    }

    /// Binds `addr` (port 0 lets the OS choose) and serves in the background.
    pub async fn bind(&self, addr: impl ToSocketAddrs) -> io::Result<ServerHandle> {
        self.serve(TcpListener::bind(addr).await?)
    }
}

/// [`serve`] as an axum handler.
async fn serve_state(State(inner): State<Arc<Inner>>, request: Request) -> Response {
    serve(&inner, request, None).await
}

/// Answers a request on one of the Nexus routes. `route` is the request's path parsed already
/// (by the standalone server, which routes on it), or `None` to parse it here; either way it is
/// looked at only once the request is authenticated.
async fn serve(
    inner: &Inner,
    request: Request,
    route: Option<Result<Route, HandlerError>>,
) -> Response {
    let format = FailureFormat::negotiate(request.headers());
    if request.method() != Method::POST {
        return wire::wrong_method(request.method(), format);
    }
    let (principal, request) = match authenticate(inner, request).await {
        Ok(authenticated) => authenticated,
        Err(e) => return unauthenticated(&e, format),
    };
    let route = route.unwrap_or_else(|| {
        let path = request.uri().path();
        protocol::parse_route(path.strip_prefix(inner.prefix.as_str()).unwrap_or(path))
    });
    let route = match route {
        Ok(route) => route,
        Err(e) => return wire::handler_error(&e, format),
    };
    let result = match route {
        Route::Start { service, operation } => {
            // Awaited through a pin: the start's future is not moved into the await.
            std::pin::pin!(start(
                inner, &principal, request, format, service, operation
            ))
            .await
        }
        Route::Cancel {
            service,
            operation,
            token,
        } => {
            cancel(
                inner, &principal, request, format, service, operation, token,
            )
            .await
        }
    };
    result.unwrap_or_else(|answer| answer)
}

/// The principal of `request` (anonymous without an authenticator), and the request back.
async fn authenticate(
    inner: &Inner,
    request: Request,
) -> Result<(Principal, Request), AuthenticationError> {
    let Some(authenticator) = &inner.authenticator else {
        return Ok((Principal::anonymous(), request));
    };
    let (parts, body) = request.into_parts();
    let principal = authenticator.authenticate(&parts).await;
    match principal {
        Ok(principal) => Ok((principal, Request::from_parts(parts, body))),
        Err(e) => {
            // Invalid credentials are worth an operator's attention; missing ones are routine.
            let path = parts.uri.path();
            if e.is_missing() {
                tracing::debug!(error = %e, %path, "request without credentials refused");
            } else {
                tracing::info!(error = %e, %path, "request with invalid credentials refused");
            }
            Err(e)
        }
    }
}

/// 401 with an UNAUTHENTICATED Failure, and the authenticator's challenge.
pub(super) fn unauthenticated(error: &AuthenticationError, format: FailureFormat) -> Response {
    let mut response = wire::handler_error(
        &HandlerError::unauthenticated(error.message().to_owned()),
        format,
    );
    if let Some(challenge) = error
        .challenge()
        .and_then(|c| HeaderValue::from_str(c).ok())
    {
        response
            .headers_mut()
            .insert(http::header::WWW_AUTHENTICATE, challenge);
    }
    response
}

async fn start(
    inner: &Inner,
    principal: &Principal,
    request: Request,
    format: FailureFormat,
    service: String,
    operation: String,
) -> Result<Response, Response> {
    let reject = |e: HandlerError| wire::handler_error(&e, format);
    // Refused callers are answered before their body is read.
    inner
        .dispatcher
        .check_access(principal, &service, &operation)
        .map_err(reject)?;
    let (parts, body) = request.into_parts();
    let mut start_request = request::start(&parts, service, operation).map_err(reject)?;
    if inner.authenticator.is_some() {
        // The credentials were for this server: the handler (and the store) never see them.
        start_request
            .headers
            .remove(http::header::AUTHORIZATION.as_str());
    }
    let timeout = inner.serve.server_limits().body_read_timeout;
    let data = wire::read_body(body, &parts.headers, inner.body_limit, timeout)
        .await
        .map_err(reject)?;
    start_request.input = protocol::content_from_headers(&parts.headers, data);
    tracing::debug!(
        service = %start_request.service,
        operation = %start_request.operation,
        request_id = %start_request.request_id,
        %principal,
        "nexus start"
    );
    let starting = std::pin::pin!(inner.dispatcher.start_as(principal, start_request));
    let response = starting
        .await
        .map_err(|e| wire::error_response(protocol::start_error_response(&e, format)))?;
    let internal = |what: String| reject(HandlerError::internal(what));
    let mut headers = HeaderMap::new();
    match response {
        StartResponse::Sync { output, links } => {
            protocol::add_links_to_headers(&links, &mut headers)
                .map_err(|e| internal(format!("the handler returned an invalid link: {e}")))?;
            protocol::add_content_headers(&output, &mut headers).map_err(|e| {
                internal(format!(
                    "the handler's result has an invalid content header: {e}"
                ))
            })?;
            Ok(wire::response(StatusCode::OK, headers, output.data))
        }
        StartResponse::Async { token, links } => {
            protocol::add_links_to_headers(&links, &mut headers)
                .map_err(|e| internal(format!("the handler returned an invalid link: {e}")))?;
            headers.insert(http::header::CONTENT_TYPE, HeaderValue::from_static(JSON));
            let info = OperationInfo {
                token: Some(token),
                id: None,
                state: Some("running".into()),
            };
            let body = serde_json::to_vec(&info)
                .map_err(|e| internal(format!("cannot encode the operation info: {e}")))?;
            Ok(wire::response(StatusCode::CREATED, headers, body.into()))
        }
    }
}

async fn cancel(
    inner: &Inner,
    principal: &Principal,
    request: Request,
    format: FailureFormat,
    service: String,
    operation: String,
    path_token: Option<String>,
) -> Result<Response, Response> {
    let reject = |e: HandlerError| wire::handler_error(&e, format);
    let (parts, _body) = request.into_parts();
    let mut cancel_request =
        request::cancel(&parts, service, operation, path_token).map_err(reject)?;
    if inner.authenticator.is_some() {
        cancel_request
            .headers
            .remove(http::header::AUTHORIZATION.as_str());
    }
    tracing::debug!(
        service = %cancel_request.service,
        operation = %cancel_request.operation,
        token = %cancel_request.token,
        %principal,
        "nexus cancel"
    );
    inner
        .dispatcher
        .cancel_as(principal, cancel_request)
        .await
        .map_err(reject)?;
    Ok(wire::empty(StatusCode::ACCEPTED))
}
