//! The router [`HandlerServer::serve`] runs: every request under one fallback handler, which
//! serves the paths that [`HandlerServer::router`]'s routes match and answers the others with a
//! NOT_FOUND Failure, as that router with a NOT_FOUND fallback would.
//!
//! The answers are the same; what is saved is the routes' pattern matching, which stores each
//! request's path parameters in its extensions for extractors that the handler does not use (it
//! parses the path itself).

use std::sync::Arc;

use axum::Router;
use axum::extract::{Request, State};
use axum::response::Response;

use super::{HandlerServer, Inner};
use crate::error::HandlerError;
use crate::http::wire;
use crate::protocol::{FailureFormat, RouteShape};

/// The standalone server's router: the Nexus paths and, when configured, the definitions route.
pub(super) fn router(server: &HandlerServer) -> Router {
    let inner = &server.inner;
    let router = Router::new().fallback(dispatch).with_state(inner.clone());
    match &inner.definitions {
        Some(definition) => router.merge(super::definitions::router(
            &inner.prefix,
            definition,
            inner.authenticator.clone(),
        )),
        None => router,
    }
}

async fn dispatch(State(inner): State<Arc<Inner>>, request: Request) -> Response {
    if routed(&inner.prefix, request.uri().path()) {
        super::serve(State(inner), request).await
    } else {
        not_found(&request)
    }
}

/// The NOT_FOUND Failure for a path that is not a Nexus route.
fn not_found(request: &Request) -> Response {
    let format = FailureFormat::negotiate(request.headers());
    wire::handler_error(
        &HandlerError::not_found(format!("no Nexus route at `{}`", request.uri().path())),
        format,
    )
}

/// Whether one of [`HandlerServer::router`]'s routes matches `path`. Without a prefix: a path
/// with the shape of a Nexus route ([`RouteShape`], which the request's route is then parsed
/// from); with one, the prefix and every path under it.
fn routed(prefix: &str, path: &str) -> bool {
    if prefix.is_empty() {
        return RouteShape::of(path).is_some();
    }
    path.strip_prefix(prefix)
        .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
}

#[cfg(test)]
mod tests {
    use super::routed;

    #[test]
    fn the_nexus_shaped_paths_are_routed_and_no_others() {
        for path in [
            "/svc/op",
            "/svc/cancel",
            "/svc/op/cancel",
            "/svc/op/tok/cancel",
            "/a%2Fb/op",
        ] {
            assert!(routed("", path), "{path}");
        }
        for path in [
            "/",
            "",
            "/svc",
            "/svc/",
            "//op",
            "/svc/op/",
            "/svc/op/x",
            "/svc//cancel",
            "/svc/op/tok/x",
            "/svc/op/tok/cancel/x",
            "/a/b/c/d/cancel",
        ] {
            assert!(!routed("", path), "{path}");
        }
    }

    #[test]
    fn with_a_prefix_everything_under_it_is_routed() {
        for path in ["/nexus", "/nexus/", "/nexus/svc/op", "/nexus//x"] {
            assert!(routed("/nexus", path), "{path}");
        }
        for path in ["/", "/nexusx", "/other/svc/op"] {
            assert!(!routed("/nexus", path), "{path}");
        }
    }
}
