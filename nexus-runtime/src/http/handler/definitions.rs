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

struct Route {
    body: Bytes,
    authenticator: Option<Arc<dyn Authenticator>>,
}

/// The route serving `definition` at `{prefix}/definitions`.
pub(super) fn router(
    prefix: &str,
    definition: &Definition,
    authenticator: Option<Arc<dyn Authenticator>>,
) -> Router {
    let route = Arc::new(Route {
        body: Bytes::from(definition.to_json_pretty()),
        authenticator,
    });
    Router::new()
        .route(&format!("{prefix}{DEFINITIONS_PATH}"), any(serve))
        .with_state(route)
}

async fn serve(State(route): State<Arc<Route>>, request: Request) -> Response {
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
