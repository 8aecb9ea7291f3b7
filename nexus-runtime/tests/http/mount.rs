//! The handler server's router mounted in an application of its own: merged beside the
//! application's `/` and `/health` routes, and nested under `/nexus`.
#![cfg(feature = "http")]
#![allow(clippy::unwrap_used)]

use crate::support;

use axum::Router;
use axum::routing::get;
use nexus_runtime::server::HandlerServer;
use nexus_runtime::service::Dispatcher;
use support::probe::{Probe, failure};
use support::raw_client;
use tokio::net::TcpListener;

/// Serves `app` on loopback port 0 in the background; returns its base URL.
async fn serve(app: Router) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    url
}

/// An application with its own routes and fallback, and a Nexus handler server without a prefix.
fn application(probe: &Probe) -> (Router, HandlerServer) {
    let dispatcher = Dispatcher::builder()
        .service(probe.clone())
        .callback_guard(nexus_runtime::security::CallbackGuard::loopback())
        .build();
    let app = Router::new()
        .route("/", get(|| async { "home" }))
        .route("/health", get(|| async { "ok" }))
        .route("/users/{id}", get(|| async { "a user" }));
    (app, HandlerServer::new(dispatcher))
}

async fn get_text(url: String) -> (u16, String) {
    let response = raw_client().get(url).send().await.unwrap();
    (response.status().as_u16(), response.text().await.unwrap())
}

async fn post(url: String, body: &'static str) -> reqwest::Response {
    raw_client()
        .post(url)
        .header("content-type", "application/json")
        .header("nexus-request-id", "mount-1")
        .body(body)
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn merged_beside_the_applications_own_routes() {
    let probe = Probe::new("svc");
    let (app, nexus) = application(&probe);
    let app = app
        .merge(nexus.router())
        .fallback(|| async { (http::StatusCode::NOT_FOUND, "the app's fallback") });
    let url = serve(app).await;

    assert_eq!(get_text(format!("{url}/")).await, (200, "home".into()));
    assert_eq!(get_text(format!("{url}/health")).await, (200, "ok".into()));
    assert_eq!(
        get_text(format!("{url}/users/7")).await,
        (200, "a user".into())
    );

    let response = post(format!("{url}/svc/echo"), r#"{"n":1}"#).await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.text().await.unwrap(), r#"{"n":1}"#);
    assert_eq!(probe.last().request_id, "mount-1");

    // A Nexus-shaped path the dispatcher does not know gets a Nexus Failure...
    let response = post(format!("{url}/svc/nothing"), "{}").await;
    assert_eq!(response.status(), 404);
    let f = failure(&response.bytes().await.unwrap());
    assert!(
        f.message.contains("has no operation `nothing`"),
        "{}",
        f.message
    );
    // ...and any other path stays the application's.
    assert_eq!(
        get_text(format!("{url}/no/such/page/here")).await,
        (404, "the app's fallback".into())
    );
}

#[tokio::test]
async fn nested_under_a_path() {
    let probe = Probe::new("svc");
    let (app, nexus) = application(&probe);
    let url = serve(app.nest("/nexus", nexus.router())).await;

    assert_eq!(get_text(format!("{url}/")).await, (200, "home".into()));
    assert_eq!(get_text(format!("{url}/health")).await, (200, "ok".into()));

    let response = post(format!("{url}/nexus/svc/echo"), r#"{"n":2}"#).await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.text().await.unwrap(), r#"{"n":2}"#);
    let seen = probe.last();
    assert_eq!(
        (seen.service.as_str(), seen.operation.as_str()),
        ("svc", "echo")
    );

    // Async start and cancel through the nested routes.
    let response = raw_client()
        .post(format!(
            "{url}/nexus/svc/hang-async?callback=http%3A%2F%2F127.0.0.1%3A9%2Fcb"
        ))
        .header("content-type", "application/json")
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    let info: serde_json::Value = serde_json::from_slice(&response.bytes().await.unwrap()).unwrap();
    let token = info["token"].as_str().unwrap().to_owned();
    let response = raw_client()
        .post(format!("{url}/nexus/svc/hang-async/cancel"))
        .header("nexus-operation-token", &token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 202);

    // Not under the nest: not Nexus.
    let response = post(format!("{url}/svc/echo"), "{}").await;
    assert_eq!(response.status(), 404);
}

#[tokio::test]
async fn a_prefixed_router_merges_beside_a_root_route() {
    let probe = Probe::new("svc");
    let dispatcher = Dispatcher::builder()
        .service(probe.clone())
        .callback_guard(nexus_runtime::security::CallbackGuard::loopback())
        .build();
    let nexus = HandlerServer::builder(dispatcher)
        .prefix("/api/nexus")
        .build();
    let app = Router::new()
        .route("/", get(|| async { "home" }))
        .merge(nexus.router());
    let url = serve(app).await;

    assert_eq!(get_text(format!("{url}/")).await, (200, "home".into()));
    let response = post(format!("{url}/api/nexus/svc/echo"), r#"{"n":3}"#).await;
    assert_eq!(response.status(), 200);
    // Under its prefix, the server answers every path, with a Failure naming the problem.
    let response = post(format!("{url}/api/nexus/svc"), "{}").await;
    assert_eq!(response.status(), 404);
    let f = failure(&response.bytes().await.unwrap());
    assert!(f.message.contains("no Nexus route"), "{}", f.message);
}
