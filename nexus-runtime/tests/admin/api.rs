//! The admin router over real loopback HTTP: authentication, listings of both sides, cancel,
//! redeliver, `/metrics`, and its safety rules.
#![cfg(all(feature = "admin", feature = "auth"))]
#![allow(clippy::unwrap_used)]

use crate::support;

use std::time::Duration;

use nexus_runtime::admin::{Admin, AdminError};
use nexus_runtime::client::OperationState;
use nexus_runtime::store::{DeliveryState, OutboxStore};
use serde_json::Value;
use support::admin::{HOSTILE, TOKEN, World};

async fn get(world: &World, path: &str, token: Option<&str>) -> (u16, Value) {
    send(reqwest::Method::GET, world, path, token).await
}

async fn send(
    method: reqwest::Method,
    world: &World,
    path: &str,
    token: Option<&str>,
) -> (u16, Value) {
    let mut request = support::raw_client().request(method, world.url(path));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let text = response.text().await.unwrap();
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

#[tokio::test]
async fn the_api_lists_both_sides_and_cancels_and_redelivers_behind_the_token() {
    let world = World::new().await;

    // Without credentials, or with wrong ones: 401, before anything is read.
    for token in [None, Some("wrong")] {
        for path in ["/api/operations", "/api/deliveries", "/metrics"] {
            let (status, body) = get(&world, path, token).await;
            assert_eq!(status, 401, "{path}: {body}");
        }
        let (status, _) = send(
            reqwest::Method::POST,
            &world,
            &format!("/api/deliveries/{}/redeliver", world.dead),
            token,
        )
        .await;
        assert_eq!(status, 401);
    }
    // The page itself holds no data and needs none.
    let page = support::raw_client()
        .get(world.url("/ops"))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 200);
    let csp = page.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(csp.contains("default-src 'none'") && csp.contains("script-src 'self'"));
    assert!(!page.text().await.unwrap().contains("<script>"));

    // The caller's pending operations, as their handles show them.
    let token = Some(TOKEN);
    let (status, body) = get(&world, "/api/operations?state=pending", token).await;
    assert_eq!(status, 200, "{body}");
    let items = body["items"].as_array().unwrap();
    assert_eq!(items.len(), 3);
    let ids: Vec<String> = world
        .started
        .iter()
        .map(|h| h.operation_id().to_string())
        .chain([world.backing_off.operation_id().to_string()])
        .collect();
    assert_eq!(
        items
            .iter()
            .map(|o| o["id"].as_str().unwrap())
            .collect::<Vec<_>>(),
        ids
    );
    assert_eq!(items[0]["state"], "started");
    assert_eq!(
        items[0]["start_links"][0]["url"],
        "https://handler.example/runs/1"
    );
    assert_eq!(
        items[0]["sent_links"][0]["url"],
        format!("http://payments.example/api/operations/{}", ids[0])
    );
    let token_hint = items[0]["token"].as_str().unwrap();
    assert!(token_hint.starts_with('…'), "{token_hint}");
    let flaky = &items[2];
    assert_eq!(flaky["state"], "backing_off");
    assert_eq!(flaky["attempt"], 1);
    assert!(
        flaky["last_failure"]
            .as_str()
            .unwrap()
            .contains("the ledger is down")
    );
    assert!(flaky["next_attempt_at"].is_string());
    // One by id; filters; paging.
    let (status, one) = get(&world, &format!("/api/operations/{}", ids[2]), token).await;
    assert_eq!((status, &one["state"]), (200, &Value::from("backing_off")));
    let (_, by_endpoint) = get(&world, "/api/operations?endpoint=ledger", token).await;
    assert_eq!(by_endpoint["items"].as_array().unwrap().len(), 1);
    let (_, first) = get(&world, "/api/operations?limit=2", token).await;
    let cursor = first["next_cursor"].as_str().unwrap();
    let (_, second) = get(
        &world,
        &format!("/api/operations?limit=2&cursor={cursor}"),
        token,
    )
    .await;
    assert_eq!(second["items"][0]["id"], ids[2].as_str());
    assert_eq!(second["next_cursor"], Value::Null);
    // Bad input: 400 with a reason.
    for path in [
        "/api/operations?state=sleeping",
        "/api/operations?limit=100000",
        "/api/operations?cursor=nope",
        "/api/operations?color=red",
        "/api/handler/operations?cursor=1.99999",
        "/api/operations/not-an-id",
    ] {
        let (status, body) = get(&world, path, token).await;
        assert_eq!(status, 400, "{path}: {body}");
        assert!(body["error"].is_string());
    }

    // The handler's running operations: tokens shortened, callback secrets redacted, no headers.
    let (status, body) = get(&world, "/api/handler/operations?state=running", token).await;
    assert_eq!(status, 200, "{body}");
    let running = body["items"].as_array().unwrap();
    assert_eq!(running.len(), 3, "{body}");
    let text = body.to_string();
    assert!(!text.contains("do-not-show"), "{text}");
    let hostile = running
        .iter()
        .find(|o| o["request_id"] == "req-tok-running-hostile")
        .unwrap();
    assert_eq!(hostile["principal"], "local:payments");
    assert_eq!(hostile["token"], "…ostile");
    assert_eq!(hostile["links"][0]["url"], "javascript:alert(1)");
    // Paging without whole tokens: every operation once.
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            Some(c) => format!("/api/handler/operations?limit=2&cursor={c}"),
            None => "/api/handler/operations?limit=2".to_owned(),
        };
        let (status, page) = get(&world, &path, token).await;
        assert_eq!(status, 200, "{page}");
        for item in page["items"].as_array().unwrap() {
            seen.push(item["request_id"].as_str().unwrap().to_owned());
        }
        match page["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => break,
        }
    }
    assert_eq!(seen.len(), 5, "{seen:?}");
    seen.sort();
    seen.dedup();
    assert_eq!(seen.len(), 5, "{seen:?}");

    // Deliveries that failed: the dead one and the one waiting for its retry.
    let (_, failed) = get(&world, "/api/deliveries?failed=true", token).await;
    let failed = failed["items"].as_array().unwrap().clone();
    assert_eq!(failed.len(), 2);
    assert_eq!(failed[0]["id"], world.dead.to_string());
    assert_eq!(failed[0]["state"], "dead");
    assert_eq!(failed[0]["last_error"], format!("410 Gone {HOSTILE}"));
    assert_eq!(
        failed[0]["url"],
        "http://127.0.0.1:9/callback/1?secret=REDACTED"
    );
    assert_eq!(failed[1]["state"], "pending");
    assert_eq!(failed[1]["attempts"], 1);

    // Redeliver the dead one: pending again, due now; again is a conflict.
    let redeliver = format!("/api/deliveries/{}/redeliver", world.dead);
    let (status, body) = send(reqwest::Method::POST, &world, &redeliver, token).await;
    assert_eq!(status, 200, "{body}");
    let delivery = world
        .handler_store
        .get_delivery(world.dead)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(delivery.state, DeliveryState::Pending);
    let (status, _) = send(reqwest::Method::POST, &world, &redeliver, token).await;
    assert_eq!(status, 409);

    // Cancel a started operation: it ends canceled.
    let cancel = format!("/api/operations/{}/cancel", ids[0]);
    let (status, body) = send(reqwest::Method::POST, &world, &cancel, token).await;
    assert!(status == 200 || status == 202, "{status} {body}");
    let info = tokio::time::timeout(
        Duration::from_secs(10),
        world.started[0].wait_for(|info| info.state.is_terminal()),
    )
    .await
    .unwrap();
    assert_eq!(info.state, OperationState::Canceled);
    let (_, pending) = get(&world, "/api/operations?state=pending", token).await;
    assert_eq!(pending["items"].as_array().unwrap().len(), 2);
    let (status, _) = send(
        reqwest::Method::POST,
        &world,
        &format!("/api/operations/{}/cancel", uuid::Uuid::nil()),
        token,
    )
    .await;
    assert_eq!(status, 404);

    // Metrics: the handle's text.
    let response = support::raw_client()
        .get(world.url("/metrics"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain")
    );
    let text = response.text().await.unwrap();
    assert!(
        text.contains("nexus_test_requests_total{side=\"caller\"} 3"),
        "{text}"
    );
}

#[tokio::test]
async fn without_an_authenticator_the_router_is_refused_or_loopback_only() {
    let world = World::new().await;
    let refused = Admin::builder().client(world.client.clone()).build();
    assert!(matches!(refused, Err(AdminError::Unauthenticated)));
    let local = Admin::builder()
        .client(world.client.clone())
        .allow_unauthenticated_loopback()
        .build()
        .unwrap();
    assert!(matches!(
        local.bind("0.0.0.0:0").await,
        Err(AdminError::NotLoopback(_))
    ));
    let running = local.bind("127.0.0.1:0").await.unwrap();
    let body = support::raw_client()
        .get(format!("{}/api/operations", running.url()))
        .send()
        .await
        .unwrap();
    assert_eq!(body.status(), 200);
    // A read-only router serves no cancel route.
    let read_only = Admin::builder()
        .client(world.client.clone())
        .read_only()
        .build()
        .unwrap()
        .bind("127.0.0.1:0")
        .await
        .unwrap();
    let id = world.started[1].operation_id();
    let response = support::raw_client()
        .post(format!("{}/api/operations/{id}/cancel", read_only.url()))
        .send()
        .await
        .unwrap();
    assert!(matches!(response.status().as_u16(), 404 | 405));
    assert_eq!(world.started[1].state(), OperationState::Started);
    // Metrics can be made public while the rest stays behind the token.
    let public = Admin::builder()
        .metrics(world.metrics.handle())
        .client(world.client.clone())
        .authenticator(nexus_runtime::security::BearerAuthenticator::new(
            nexus_runtime::security::StaticTokens::new().token("operator", TOKEN),
        ))
        .public_metrics()
        .build()
        .unwrap()
        .bind("127.0.0.1:0")
        .await
        .unwrap();
    let metrics = support::raw_client()
        .get(format!("{}/metrics", public.url()))
        .send()
        .await
        .unwrap();
    assert_eq!(metrics.status(), 200);
    let api = support::raw_client()
        .get(format!("{}/api/operations", public.url()))
        .send()
        .await
        .unwrap();
    assert_eq!(api.status(), 401);
}

#[tokio::test]
async fn the_router_nests_under_a_prefix() {
    let world = World::new().await;
    let admin = Admin::builder()
        .client(world.client.clone())
        .authenticator(nexus_runtime::security::BearerAuthenticator::new(
            nexus_runtime::security::StaticTokens::new().token("operator", TOKEN),
        ))
        .build()
        .unwrap();
    let app = axum::Router::new().nest("/admin", admin.router());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let running = nexus_runtime::server::ServeOptions::new()
        .serve(listener, app)
        .unwrap();
    let http = support::raw_client();
    let base = format!("{}/admin", running.url());
    for (path, status) in [
        ("/ops", 200),
        ("/ops/ops.js", 200),
        ("/ops/ops.css", 200),
        ("/api/operations", 401),
    ] {
        let response = http.get(format!("{base}{path}")).send().await.unwrap();
        assert_eq!(response.status(), status, "{path}");
    }
    let listed = http
        .get(format!("{base}/api/operations?state=started"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(listed.status(), 200);
    let body: Value = serde_json::from_str(&listed.text().await.unwrap()).unwrap();
    assert_eq!(body["items"].as_array().unwrap().len(), 2);
    // The page names its files and the API relatively, so they resolve under the prefix.
    let page = http
        .get(format!("{base}/ops"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains("src=\"ops/ops.js\""), "{page}");
}
