//! The admin router (feature `admin`): what an operator needs to see and fix pending work.
//!
//! - `GET /metrics`: the Prometheus text of the [`PrometheusHandle`] given to the builder;
//! - `GET /api/operations`: the client's operations ([`Client::operations`]), filtered by
//!   `state` (comma-separated stored names, or `pending`), `endpoint`, `service`, paged by
//!   `limit` (at most [`MAX_LIMIT`]) and `cursor`; `GET /api/operations/{id}` one of them;
//!   `POST /api/operations/{id}/cancel` cancels one ([`Client::cancel_operation`]);
//! - `GET /api/handler/operations`: the dispatcher's async operations (`state`, `service`,
//!   `limit`, `cursor`);
//! - `GET /api/deliveries`: the outbox's deliveries (`state`, `failed=true`, `limit`, `cursor`);
//!   `POST /api/deliveries/{id}/redeliver` sends a dead one again ([`Dispatcher::redeliver`]);
//! - `GET /ops`: a page of pending operations, failing and dead deliveries (state, attempt, last
//!   failure, next attempt, blocked reason, links) with cancel and redeliver buttons. It is
//!   self-contained (its script and style are served here; nothing from elsewhere), renders what
//!   it reads as text (never as HTML), links only `http(s)` URLs, and is sent with a strict
//!   Content-Security-Policy. It names its script, style and the API by relative URLs, so the
//!   router also works nested under a prefix (`Router::new().nest("/admin", admin.router())`
//!   serves the page at `/admin/ops`).
//!
//! **Safe by default.** With an [authenticator](AdminBuilder::authenticator) (a bearer token, a
//! client certificate...) every route but the page's static files needs credentials; the page
//! reads a bearer token from its URL fragment (`/ops#token=…`, never sent to a server) or from
//! its token field, and sends it with its requests. Without one, [`AdminBuilder::build`] refuses
//! a router that can cancel or redeliver, unless
//! [`allow_unauthenticated_loopback`](AdminBuilder::allow_unauthenticated_loopback) is given: then
//! every request must come from a loopback address (others get 403), and
//! [`Admin::bind`] refuses any other address. A [`read_only`](AdminBuilder::read_only) router
//! without an authenticator also serves loopback only. Tokens of async operations are shown
//! shortened, callback URLs with their secret redacted, and no request or callback header is
//! shown. Listings are capped at [`MAX_LIMIT`] records a page.
//!
//! ```no_run
//! # async fn demo(client: nexus_runtime::Client, dispatcher: nexus_runtime::service::Dispatcher)
//! # -> Result<(), Box<dyn std::error::Error>> {
//! use nexus_runtime::admin::Admin;
//! use nexus_runtime::security::{BearerAuthenticator, StaticTokens};
//!
//! let metrics = metrics_exporter_prometheus::PrometheusBuilder::new().install_recorder()?;
//! let admin = Admin::builder()
//!     .client(client)
//!     .dispatcher(dispatcher)
//!     .metrics(metrics)
//!     .authenticator(BearerAuthenticator::new(StaticTokens::new().token("ops", "s3cret")))
//!     .build()?;
//! let running = admin.bind("0.0.0.0:9100").await?;
//! println!("the page: {}/ops#token=s3cret", running.url());
//! # Ok(()) }
//! ```

mod api;
mod guard;
mod page;
mod views;

use std::fmt;
use std::io;
use std::sync::Arc;

use axum::Router;
use axum::routing::{get, post};
use metrics_exporter_prometheus::PrometheusHandle;
use tokio::net::{TcpListener, ToSocketAddrs};

use crate::Client;
use crate::http::{ServeOptions, ServerHandle};
use crate::security::Authenticator;
use crate::service::Dispatcher;

/// The most records one page of the admin API holds.
pub const MAX_LIMIT: usize = 200;

/// Why [`AdminBuilder::build`] or [`Admin::bind`] refused.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AdminError {
    /// A router that can cancel and redeliver needs an authenticator (or the explicit
    /// loopback-only allowance).
    #[error(
        "the admin router can cancel operations and redeliver completions: give it an \
         authenticator, make it read-only, or allow unauthenticated use from loopback explicitly"
    )]
    Unauthenticated,
    /// A router without an authenticator serves loopback addresses only.
    #[error("an admin router without an authenticator serves loopback only, not {0}")]
    NotLoopback(String),
    /// Binding failed.
    #[error(transparent)]
    Io(#[from] io::Error),
}

/// Builds an [`Admin`] router.
#[derive(Default)]
pub struct AdminBuilder {
    client: Option<Client>,
    dispatcher: Option<Dispatcher>,
    metrics: Option<PrometheusHandle>,
    authenticator: Option<Arc<dyn Authenticator>>,
    loopback_unauthenticated: bool,
    read_only: bool,
    public_metrics: bool,
    serve: ServeOptions,
}

impl fmt::Debug for AdminBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AdminBuilder")
            .field("client", &self.client.is_some())
            .field("dispatcher", &self.dispatcher.is_some())
            .field("metrics", &self.metrics.is_some())
            .field("authenticated", &self.authenticator.is_some())
            .field("loopback_unauthenticated", &self.loopback_unauthenticated)
            .field("read_only", &self.read_only)
            .field("public_metrics", &self.public_metrics)
            .finish_non_exhaustive()
    }
}

impl AdminBuilder {
    /// Shows (and cancels) this client's operations.
    #[must_use]
    pub fn client(mut self, client: Client) -> Self {
        self.client = Some(client);
        self
    }

    /// Shows this dispatcher's async operations and outbox (and redelivers); it needs a store.
    #[must_use]
    pub fn dispatcher(mut self, dispatcher: Dispatcher) -> Self {
        self.dispatcher = Some(dispatcher);
        self
    }

    /// Serves `/metrics` from this handle (from
    /// `PrometheusBuilder::new().install_recorder()`); without one `/metrics` is 404.
    #[must_use]
    pub fn metrics(mut self, handle: PrometheusHandle) -> Self {
        self.metrics = Some(handle);
        self
    }

    /// Authenticates every request but the page's static files (see the module docs).
    #[must_use]
    pub fn authenticator(mut self, authenticator: impl Authenticator) -> Self {
        self.authenticator = Some(Arc::new(authenticator));
        self
    }

    /// Allows a router without an authenticator, for loopback only: every request from another
    /// address gets 403, and [`Admin::bind`] refuses other addresses. For a developer's machine.
    #[must_use]
    pub fn allow_unauthenticated_loopback(mut self) -> Self {
        self.loopback_unauthenticated = true;
        self
    }

    /// Serves no cancel or redeliver route (the page shows no buttons).
    #[must_use]
    pub fn read_only(mut self) -> Self {
        self.read_only = true;
        self
    }

    /// Serves `/metrics` without credentials (for a scraper that sends none), even with an
    /// authenticator; the rest stays behind it.
    #[must_use]
    pub fn public_metrics(mut self) -> Self {
        self.public_metrics = true;
        self
    }

    /// How [`Admin::serve`] treats connections (limits, TLS).
    #[must_use]
    pub fn serve_options(mut self, options: ServeOptions) -> Self {
        self.serve = options;
        self
    }

    /// The router, or [`AdminError::Unauthenticated`] for one that could cancel and redeliver
    /// without an authenticator and without the explicit loopback allowance.
    pub fn build(self) -> Result<Admin, AdminError> {
        if self.authenticator.is_none() && !self.read_only && !self.loopback_unauthenticated {
            return Err(AdminError::Unauthenticated);
        }
        Ok(Admin {
            inner: Arc::new(Inner {
                client: self.client,
                dispatcher: self.dispatcher,
                metrics: self.metrics,
                guard: guard::Guard::new(self.authenticator, self.public_metrics),
                read_only: self.read_only,
            }),
            serve: self.serve,
        })
    }
}

/// What the routes share.
pub(crate) struct Inner {
    pub client: Option<Client>,
    pub dispatcher: Option<Dispatcher>,
    pub metrics: Option<PrometheusHandle>,
    pub guard: guard::Guard,
    pub read_only: bool,
}

/// The admin router: see the module docs.
#[derive(Clone)]
pub struct Admin {
    inner: Arc<Inner>,
    serve: ServeOptions,
}

impl fmt::Debug for Admin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Admin")
            .field("client", &self.inner.client.is_some())
            .field("dispatcher", &self.inner.dispatcher.is_some())
            .field("metrics", &self.inner.metrics.is_some())
            .field("authenticated", &self.inner.guard.is_authenticated())
            .field("read_only", &self.inner.read_only)
            .finish()
    }
}

impl Admin {
    /// A builder.
    pub fn builder() -> AdminBuilder {
        AdminBuilder::default()
    }

    /// The routes, to serve alone ([`serve`](Self::serve)) or merge into an application's
    /// router. Requests must carry their peer address (`ConnectInfo<SocketAddr>`, as this
    /// crate's servers and `into_make_service_with_connect_info` give) for the loopback check of
    /// a router without an authenticator; without it they are refused.
    pub fn router(&self) -> Router {
        let mut router = Router::new()
            .route("/metrics", get(api::metrics))
            .route("/api/info", get(api::info))
            .route("/api/operations", get(api::operations))
            .route("/api/operations/{id}", get(api::operation))
            .route("/api/handler/operations", get(api::handler_operations))
            .route("/api/deliveries", get(api::deliveries));
        if !self.inner.read_only {
            router = router
                .route("/api/operations/{id}/cancel", post(api::cancel))
                .route("/api/deliveries/{id}/redeliver", post(api::redeliver));
        }
        router
            .layer(axum::middleware::from_fn_with_state(
                self.inner.clone(),
                guard::check,
            ))
            .merge(page::routes())
            .with_state(self.inner.clone())
    }

    /// Serves on `listener` in the background (with the builder's
    /// [`serve_options`](AdminBuilder::serve_options)). Without an authenticator, only a loopback
    /// listener is accepted.
    pub fn serve(&self, listener: TcpListener) -> Result<ServerHandle, AdminError> {
        let addr = listener.local_addr()?;
        if !self.inner.guard.is_authenticated() && !addr.ip().is_loopback() {
            return Err(AdminError::NotLoopback(addr.to_string()));
        }
        let router = self.router().fallback(api::not_found);
        Ok(self.serve.serve(listener, router)?)
    }

    /// Binds `addr` (port 0 lets the OS choose) and serves in the background (see
    /// [`serve`](Self::serve)).
    pub async fn bind(&self, addr: impl ToSocketAddrs) -> Result<ServerHandle, AdminError> {
        self.serve(TcpListener::bind(addr).await?)
    }
}
