//! The HTTP servers the benchmarks drive, each run in a process of its own (`nexus-bench serve`).
//!
//! - [`ServerKind::Nexus`]: nexus-rs's `HandlerServer` serving `fraud.v1` (`FraudDesk`);
//! - [`ServerKind::Bare`]: a bare axum endpoint doing the same work as `getQuickScore` (decode the
//!   same JSON input, check it, compute the same score, encode the same output), without Nexus.

use std::io;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use fraud_contract::{FraudService, GetQuickScoreInput, GetQuickScoreOutput};
use nexus_examples::fraud_desk::{FraudDesk, quick_score};
use nexus_runtime::server::HandlerServer;
use nexus_runtime::service::Dispatcher;
use nexus_runtime::store::Store;
use tokio::net::TcpListener;

/// The path of `getQuickScore` on both servers (the nexus server has no prefix).
pub const QUICK_SCORE_PATH: &str = "/fraud.v1/getQuickScore";

/// Which server to run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum ServerKind {
    /// nexus-rs's `HandlerServer` serving `fraud.v1`.
    Nexus,
    /// A bare axum endpoint doing the same work as `getQuickScore`.
    Bare,
}

impl ServerKind {
    /// A name for tables.
    pub fn name(self) -> &'static str {
        match self {
            Self::Nexus => "nexus-rs HandlerServer",
            Self::Bare => "bare axum endpoint",
        }
    }
}

/// The bare endpoint: the same decode, check, score and encode as `FraudDesk::get_quick_score`
/// behind `HandlerServer`, with axum's own request handling and nothing else.
async fn bare_quick_score(body: Bytes) -> Response {
    let input: GetQuickScoreInput = match serde_json::from_slice(&body) {
        Ok(input) => input,
        Err(e) => return (StatusCode::BAD_REQUEST, format!("invalid input: {e}")).into_response(),
    };
    if input.user_id.is_empty() {
        return (StatusCode::BAD_REQUEST, "`userId` must not be empty").into_response();
    }
    let output = GetQuickScoreOutput {
        score: quick_score(&input.user_id),
    };
    match serde_json::to_vec(&output) {
        Ok(json) => (
            [(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            )],
            json,
        )
            .into_response(),
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response(),
    }
}

/// The bare server's routes.
pub fn bare_router() -> Router {
    Router::new().route(QUICK_SCORE_PATH, post(bare_quick_score))
}

/// A dispatcher serving `fraud.v1`, whose async `checkTransaction` takes `check_delay`; durable
/// with `store` (deduplicated starts, recorded operations, completions through the outbox). With
/// a store, call it inside a Tokio runtime. No quota: the memory measurement keeps 100,000
/// operations running for one caller.
pub fn fraud_dispatcher(check_delay: Duration, store: Option<Arc<dyn Store>>) -> Dispatcher {
    let mut builder = Dispatcher::builder()
        .service(FraudService::handler(FraudDesk::new(check_delay)))
        .quota(nexus_runtime::service::Quota::unlimited())
        .callback_guard(nexus_runtime::security::CallbackGuard::loopback());
    if let Some(store) = store {
        builder = builder.store(store);
    }
    builder.build()
}

/// Serves `kind` on `listener` until the process ends (`store`: the nexus server's).
pub async fn serve(
    kind: ServerKind,
    listener: TcpListener,
    check_delay: Duration,
    store: Option<Arc<dyn Store>>,
) -> io::Result<()> {
    match kind {
        ServerKind::Nexus => {
            let running =
                HandlerServer::new(fraud_dispatcher(check_delay, store)).serve(listener)?;
            std::future::pending::<()>().await;
            drop(running);
            Ok(())
        }
        ServerKind::Bare => {
            // Spawned, as HandlerServer spawns its own accept loop.
            tokio::spawn(async move { axum::serve(listener, bare_router()).await })
                .await
                .map_err(io::Error::other)?
        }
    }
}
