//! What [`HandlerServer::serve`] runs for each request: the answers of
//! [`HandlerServer::router`] with a NOT_FOUND fallback, without axum's router.
//!
//! The answers are the same; what is saved is the router's work on every request: cloning its
//! routes and their state (reference counts that every connection's requests share, so that
//! their cache lines move between the cores serving them), boxing the handler's future, and the
//! routes' pattern matching, which stores each request's path parameters in its extensions for
//! extractors that the handler does not use (it parses the path itself).

use std::future::Future;
use std::sync::Arc;

use axum::extract::Request;
use axum::response::Response;

use super::{HandlerServer, Inner, definitions};
use crate::error::HandlerError;
use crate::http::connection::Routes;
use crate::http::wire;
use crate::protocol::{FailureFormat, Route, RouteShape};

/// The standalone server's routes: the Nexus paths and, when configured, the definitions route.
/// Each connection holds a copy; a request borrows it.
#[derive(Clone)]
pub(super) struct Standalone {
    inner: Arc<Inner>,
}

impl Standalone {
    pub fn new(server: &HandlerServer) -> Self {
        Self {
            inner: server.inner.clone(),
        }
    }
}

impl Routes for Standalone {
    fn call(&self, request: Request) -> impl Future<Output = Response> + Send + '_ {
        dispatch(&self.inner, request)
    }

    /// Only an authenticator may read the peer's address (a custom one may use it); nothing else
    /// on the handler's path does.
    fn reads_peer_address(&self) -> bool {
        self.inner.authenticator.is_some()
    }
}

async fn dispatch(inner: &Inner, request: Request) -> Response {
    let path = request.uri().path();
    if let Some(route) = &inner.definitions
        && path == route.path()
    {
        return definitions::answer(route, request).await;
    }
    match routed(&inner.prefix, path) {
        // Awaited through a pin: the request's future is not moved into the await.
        Routed::Yes(route) => std::pin::pin!(super::serve(inner, request, route)).await,
        Routed::No => not_found(&request),
    }
}

/// Whether a request is for one of the Nexus routes, and its route when finding that out
/// parsed it.
enum Routed {
    Yes(Option<Result<Route, HandlerError>>),
    No,
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
fn routed(prefix: &str, path: &str) -> Routed {
    if prefix.is_empty() {
        return match RouteShape::of(path) {
            Some(shape) => Routed::Yes(Some(shape.route())),
            None => Routed::No,
        };
    }
    let under = path
        .strip_prefix(prefix)
        .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'));
    if under { Routed::Yes(None) } else { Routed::No }
}

#[cfg(test)]
mod tests {
    use super::{Routed, routed};

    fn is_routed(prefix: &str, path: &str) -> bool {
        matches!(routed(prefix, path), Routed::Yes(_))
    }

    #[test]
    fn without_a_prefix_the_route_is_parsed_once_with_its_shape() {
        let Routed::Yes(Some(Ok(route))) = routed("", "/a%2Fb/op") else {
            panic!("a Nexus route, parsed");
        };
        assert_eq!(
            route,
            crate::protocol::Route::Start {
                service: "a/b".into(),
                operation: "op".into()
            }
        );
        assert!(matches!(
            routed("", "/svc%zz/op"),
            Routed::Yes(Some(Err(_)))
        ));
        assert!(matches!(routed("/nexus", "/nexus/s/o"), Routed::Yes(None)));
    }

    #[test]
    fn the_nexus_shaped_paths_are_routed_and_no_others() {
        for path in [
            "/svc/op",
            "/svc/cancel",
            "/svc/op/cancel",
            "/svc/op/tok/cancel",
            "/a%2Fb/op",
        ] {
            assert!(is_routed("", path), "{path}");
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
            assert!(!is_routed("", path), "{path}");
        }
    }

    #[test]
    fn with_a_prefix_everything_under_it_is_routed() {
        for path in ["/nexus", "/nexus/", "/nexus/svc/op", "/nexus//x"] {
            assert!(is_routed("/nexus", path), "{path}");
        }
        for path in ["/", "/nexusx", "/other/svc/op"] {
            assert!(!is_routed("/nexus", path), "{path}");
        }
    }
}
