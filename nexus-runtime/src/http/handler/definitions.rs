//! The handler server's optional definitions route: `GET {prefix}/definitions` answers the
//! nexus-rpc-gen definition of the services it serves, so tools (such as `nexus definition
//! export`) can read a running handler's contract.
//!
//! Off unless [`HandlerServerBuilder::definitions`](super::HandlerServerBuilder::definitions)
//! is given a document; behind the server's authenticator when it has one (any authenticated
//! caller may read it: a definition names operations and types, never data).

use std::sync::Arc;

use axum::Router;
use axum::extract::{Request, State};
use axum::response::Response;
use axum::routing::any;
use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Method, StatusCode};

use crate::codec::JSON;
use crate::definition::Definition;
use crate::error::HandlerError;
use crate::http::wire;
use crate::protocol::FailureFormat;
use crate::security::Authenticator;

/// The path of the definitions route, relative to the server's prefix.
pub const DEFINITIONS_PATH: &str = "/definitions";

/// The route serving a definition at `{prefix}/definitions`: its path, the document, and who may
/// read it.
pub(super) struct Route {
    path: String,
    body: Bytes,
    authenticator: Option<Arc<dyn Authenticator>>,
}

impl Route {
    /// The route under `prefix` answering `definition`, behind `authenticator` if any.
    pub fn new(
        prefix: &str,
        definition: &Definition,
        authenticator: Option<Arc<dyn Authenticator>>,
    ) -> Self {
        Self {
            path: format!("{prefix}{DEFINITIONS_PATH}"),
            body: Bytes::from(definition.to_json_pretty()),
            authenticator,
        }
    }

    /// `{prefix}/definitions`.
    pub fn path(&self) -> &str {
        &self.path
    }
}

/// The route as an axum router of its own, to merge.
pub(super) fn router(route: &Arc<Route>) -> Router {
    Router::new()
        .route(&route.path, any(serve))
        .with_state(route.clone())
}

async fn serve(State(route): State<Arc<Route>>, request: Request) -> Response {
    answer(&route, request).await
}

/// The route's answer to `request`.
pub(super) async fn answer(route: &Route, request: Request) -> Response {
    let format = FailureFormat::negotiate(request.headers());
    if request.method() != Method::GET {
        return wire::handler_error(
            &HandlerError::bad_request(format!(
                "method {} is not allowed here; the definitions are read with GET",
                request.method()
            )),
            format,
        );
    }
    if let Some(authenticator) = &route.authenticator {
        let (parts, _body) = request.into_parts();
        if let Err(e) = authenticator.authenticate(&parts).await {
            return super::unauthenticated(&e, format);
        }
    }
    let mut headers = HeaderMap::new();
    headers.insert(http::header::CONTENT_TYPE, HeaderValue::from_static(JSON));
    wire::response(StatusCode::OK, headers, route.body.clone())
}
