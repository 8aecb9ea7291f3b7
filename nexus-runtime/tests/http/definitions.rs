//! The handler server's optional definitions route over loopback HTTP: off unless given a
//! definition, `GET {prefix}/definitions` answering it, other methods refused, behind the
//! server's authenticator; and `HttpTransport::fetch_definition` reading it.
#![cfg(all(feature = "http", feature = "auth"))]
#![allow(clippy::unwrap_used)]

use crate::support;

use std::time::Duration;

use nexus_runtime::definition::Definition;
use nexus_runtime::error::HandlerErrorType;
use nexus_runtime::security::{BearerAuthenticator, StaticTokens};
use nexus_runtime::server::HandlerServer;
use nexus_runtime::service::Dispatcher;
use nexus_runtime::transport::HttpTransport;
use nexus_runtime::{CallError, OperationContext, OperationResult, nexus_service};

/// Echoes its input.
#[nexus_service(name = "echo.v1")]
pub trait Echo {
    /// Echoes `input`.
    async fn echo(&self, ctx: OperationContext, input: String) -> OperationResult<String>;
}

struct Impl;

impl Echo for Impl {
    async fn echo(&self, _: OperationContext, input: String) -> OperationResult<String> {
        Ok(input.into())
    }
}

fn dispatcher() -> Dispatcher {
    Dispatcher::builder()
        .service(EchoService::handler(Impl))
        .build()
}

const WAIT: Duration = Duration::from_secs(10);

#[tokio::test]
async fn the_definition_is_served_only_when_given_and_behind_the_authenticator() {
    // Off by default: under a prefix the path is answered as any other GET (Nexus uses POST).
    let plain = HandlerServer::builder(dispatcher())
        .prefix("/nexus")
        .build();
    let running = plain.bind("127.0.0.1:0").await.unwrap();
    let base = format!("{}/nexus", running.url());
    let err = HttpTransport::new(&base)
        .unwrap()
        .fetch_definition(WAIT)
        .await
        .unwrap_err();
    assert!(
        matches!(&err, CallError::Handler(e) if e.error_type == HandlerErrorType::BadRequest),
        "{err:?}"
    );

    // Given: GET answers it, as JSON; POST is refused.
    let served = HandlerServer::builder(dispatcher())
        .prefix("/nexus")
        .definitions(Definition::of::<EchoService>())
        .build();
    let running = served.bind("127.0.0.1:0").await.unwrap();
    let base = format!("{}/nexus", running.url());
    let fetched = HttpTransport::new(&base)
        .unwrap()
        .fetch_definition(WAIT)
        .await
        .unwrap();
    assert_eq!(fetched, Definition::of::<EchoService>());
    let post = support::raw_client()
        .post(format!("{base}/definitions"))
        .send()
        .await
        .unwrap();
    assert_eq!(post.status(), 400);

    // With an authenticator: 401 without credentials, the definition with them.
    let guarded = HandlerServer::builder(dispatcher())
        .definitions(Definition::of::<EchoService>())
        .authenticator(BearerAuthenticator::new(
            StaticTokens::new().token("payments", "secret-token"),
        ))
        .build();
    let running = guarded.bind("127.0.0.1:0").await.unwrap();
    let err = HttpTransport::new(running.url())
        .unwrap()
        .fetch_definition(WAIT)
        .await
        .unwrap_err();
    assert!(
        matches!(&err, CallError::Handler(e) if e.error_type == HandlerErrorType::Unauthenticated),
        "{err:?}"
    );
    let fetched = HttpTransport::builder(running.url())
        .bearer_token("secret-token")
        .build()
        .unwrap()
        .fetch_definition(WAIT)
        .await
        .unwrap();
    assert_eq!(fetched.services.keys().collect::<Vec<_>>(), ["echo.v1"]);
}
