//! The `/ops` page: a static document, its script and its style, sent with a strict
//! Content-Security-Policy (nothing but this origin's script, style and API; no inline code, no
//! frames, no forms posting elsewhere). The script renders what the API returns as text.

use std::sync::Arc;

use axum::Router;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use http::{HeaderValue, header};

use super::Inner;

const PAGE: &str = include_str!("page.html");
const SCRIPT: &str = include_str!("ops.js");
const STYLE: &str = include_str!("ops.css");

const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; \
                   img-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

fn asset(content_type: &'static str, body: &'static str) -> Response {
    let mut response = body.into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// The page's routes (no credentials needed: they hold no data).
pub(crate) fn routes() -> Router<Arc<Inner>> {
    Router::new()
        .route(
            "/ops",
            get(|| async { asset("text/html; charset=utf-8", PAGE) }),
        )
        .route(
            "/ops/ops.js",
            get(|| async { asset("text/javascript; charset=utf-8", SCRIPT) }),
        )
        .route(
            "/ops/ops.css",
            get(|| async { asset("text/css; charset=utf-8", STYLE) }),
        )
}
