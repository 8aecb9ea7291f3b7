//! Who may use the admin routes: an authenticated, named principal; or, without an
//! authenticator, a loopback peer.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::{ConnectInfo, Request, State};
use axum::middleware::Next;
use axum::response::Response;
use http::StatusCode;

use super::Inner;
use super::api::error;
use crate::security::Authenticator;

pub(crate) struct Guard {
    authenticator: Option<Arc<dyn Authenticator>>,
    public_metrics: bool,
}

impl Guard {
    pub fn new(authenticator: Option<Arc<dyn Authenticator>>, public_metrics: bool) -> Self {
        Self {
            authenticator,
            public_metrics,
        }
    }

    pub fn is_authenticated(&self) -> bool {
        self.authenticator.is_some()
    }
}

/// Lets a request through, or answers 401 (no or bad credentials, or an anonymous principal) or
/// 403 (no authenticator, and the peer is not on loopback).
pub(crate) async fn check(
    State(inner): State<Arc<Inner>>,
    request: Request,
    next: Next,
) -> Response {
    let guard = &inner.guard;
    if guard.public_metrics && request.uri().path() == "/metrics" {
        return next.run(request).await;
    }
    let Some(authenticator) = &guard.authenticator else {
        let peer = request
            .extensions()
            .get::<ConnectInfo<SocketAddr>>()
            .map(|ConnectInfo(addr)| *addr);
        return match peer {
            Some(addr) if addr.ip().to_canonical().is_loopback() => next.run(request).await,
            _ => error(
                StatusCode::FORBIDDEN,
                "this admin router has no authenticator and answers loopback peers only",
            ),
        };
    };
    let (parts, body) = request.into_parts();
    match authenticator.authenticate(&parts).await {
        Ok(principal) if !principal.is_anonymous() => {
            tracing::debug!(%principal, path = %parts.uri.path(), "admin request");
            next.run(Request::from_parts(parts, body)).await
        }
        Ok(_) => error(StatusCode::UNAUTHORIZED, "credentials are required"),
        Err(e) => {
            tracing::info!(error = %e, path = %parts.uri.path(), "admin request refused");
            let mut response = error(StatusCode::UNAUTHORIZED, e.message());
            if let Some(challenge) = e
                .challenge()
                .and_then(|c| http::HeaderValue::from_str(c).ok())
            {
                response
                    .headers_mut()
                    .insert(http::header::WWW_AUTHENTICATE, challenge);
            }
            response
        }
    }
}
