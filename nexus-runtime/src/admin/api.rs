//! The JSON API and `/metrics`.

// The error of these helpers is the HTTP answer itself, built at most once per request.
#![allow(clippy::result_large_err)]

use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use http::{HeaderValue, StatusCode, Uri, header};
use serde::Serialize;

use super::views::{DeliveryView, HandlerOperationView, OperationView, Page};
use super::{Inner, MAX_LIMIT};
use crate::client::OperationFilter;
use crate::store::time::{from_micros, to_micros};
use crate::store::{
    AsyncQuery, AsyncState, Cursor, DeliveryQuery, DeliveryState, OperationState, StoreError,
    delivery_cursor,
};

/// How long a cancel request waits for the handler's acknowledgement before answering 202.
const CANCEL_WAIT: Duration = Duration::from_secs(10);

/// At most this many async operations started in the same microsecond are paged through.
const MAX_SKIP: usize = 800;

type Answer = Result<Response, Response>;

/// `{"error": message}` with `status`.
pub(crate) fn error(status: StatusCode, message: impl Into<String>) -> Response {
    #[derive(Serialize)]
    struct Error {
        error: String,
    }
    json_with(
        status,
        &Error {
            error: message.into(),
        },
    )
}

fn json<T: Serialize>(value: &T) -> Response {
    json_with(StatusCode::OK, value)
}

fn json_with<T: Serialize>(status: StatusCode, value: &T) -> Response {
    match serde_json::to_vec(value) {
        Ok(body) => {
            let mut response = (status, body).into_response();
            let headers = response.headers_mut();
            headers.insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            );
            headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            response
        }
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response(),
    }
}

fn store_error(e: StoreError) -> Response {
    match e {
        StoreError::Invalid(message) => error(StatusCode::BAD_REQUEST, message),
        e if e.is_retryable() => error(StatusCode::SERVICE_UNAVAILABLE, e.to_string()),
        e => error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    }
}

fn bad_request(message: impl Into<String>) -> Response {
    error(StatusCode::BAD_REQUEST, message)
}

/// The query parameters of a listing.
struct Params(Vec<(String, String)>);

impl Params {
    const LISTING: &[&str] = &["state", "endpoint", "service", "limit", "cursor", "failed"];

    fn of(uri: &Uri) -> Result<Self, Response> {
        let pairs: Vec<(String, String)> =
            form_urlencoded::parse(uri.query().unwrap_or("").as_bytes())
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect();
        if let Some((name, _)) = pairs
            .iter()
            .find(|(k, _)| !Self::LISTING.contains(&k.as_str()))
        {
            return Err(bad_request(format!(
                "unknown parameter `{name}`; known: {}",
                Self::LISTING.join(", ")
            )));
        }
        Ok(Self(pairs))
    }

    fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .rev()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .filter(|v| !v.is_empty())
    }

    fn limit(&self) -> Result<usize, Response> {
        match self.get("limit") {
            None => Ok(50),
            Some(text) => match text.parse::<usize>() {
                Ok(n) if (1..=MAX_LIMIT).contains(&n) => Ok(n),
                _ => Err(bad_request(format!(
                    "`limit` must be a number from 1 to {MAX_LIMIT}, not `{text}`"
                ))),
            },
        }
    }

    /// The states named by `state` (comma-separated), parsed by `parse`; `pending` stands for
    /// `pending`.
    fn states<T>(
        &self,
        parse: impl Fn(&str) -> Option<T>,
        pending: &[T],
        known: &str,
    ) -> Result<Vec<T>, Response>
    where
        T: Clone,
    {
        let Some(text) = self.get("state") else {
            return Ok(Vec::new());
        };
        let mut states = Vec::new();
        for name in text.split(',').map(str::trim).filter(|n| !n.is_empty()) {
            if name == "pending" {
                states.extend_from_slice(pending);
                continue;
            }
            states.push(parse(name).ok_or_else(|| {
                bad_request(format!("unknown state `{name}`; known: pending, {known}"))
            })?);
        }
        Ok(states)
    }
}

fn caller_known() -> String {
    OperationState::ALL.map(OperationState::as_str).join(", ")
}

fn client(inner: &Inner) -> Result<&crate::Client, Response> {
    inner
        .client
        .as_ref()
        .ok_or_else(|| error(StatusCode::NOT_FOUND, "this admin router shows no client"))
}

fn dispatcher(inner: &Inner) -> Result<&crate::service::Dispatcher, Response> {
    inner
        .dispatcher
        .as_ref()
        .filter(|d| d.has_store())
        .ok_or_else(|| {
            error(
                StatusCode::NOT_FOUND,
                "this admin router shows no dispatcher with a store",
            )
        })
}

fn collect(answer: Answer) -> Response {
    answer.unwrap_or_else(|e| e)
}

/// `GET /metrics`.
pub(crate) async fn metrics(State(inner): State<Arc<Inner>>) -> Response {
    match &inner.metrics {
        Some(handle) => {
            let mut response = handle.render().into_response();
            response.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
            );
            response
        }
        None => error(StatusCode::NOT_FOUND, "this admin router serves no metrics"),
    }
}

/// `GET /api/info`: what this router shows, for the page.
pub(crate) async fn info(State(inner): State<Arc<Inner>>) -> Response {
    #[derive(Serialize)]
    struct Info {
        caller: bool,
        handler: bool,
        metrics: bool,
        mutations: bool,
    }
    json(&Info {
        caller: inner.client.is_some(),
        handler: inner.dispatcher.as_ref().is_some_and(|d| d.has_store()),
        metrics: inner.metrics.is_some(),
        mutations: !inner.read_only,
    })
}

/// `GET /api/operations`.
pub(crate) async fn operations(State(inner): State<Arc<Inner>>, uri: Uri) -> Response {
    collect(
        async {
            let client = client(&inner)?;
            let params = Params::of(&uri)?;
            let pending = OperationFilter::pending().states;
            let filter = OperationFilter {
                states: params.states(OperationState::parse, &pending, &caller_known())?,
                endpoint: params.get("endpoint").map(str::to_owned),
                service: params.get("service").map(str::to_owned),
                limit: params.limit()?,
                cursor: params.get("cursor").map(str::to_owned),
            };
            let page = client.operations(&filter).await.map_err(store_error)?;
            Ok(json(&Page {
                items: page.operations.iter().map(OperationView::from).collect(),
                next_cursor: page.next_cursor,
            }))
        }
        .await,
    )
}

fn operation_id(id: &str) -> Result<crate::store::OperationId, Response> {
    uuid::Uuid::parse_str(id).map_err(|_| bad_request(format!("`{id}` is not an id")))
}

/// `GET /api/operations/{id}`.
pub(crate) async fn operation(State(inner): State<Arc<Inner>>, Path(id): Path<String>) -> Response {
    collect(
        async {
            let client = client(&inner)?;
            let id = operation_id(&id)?;
            let found = client.operation(id).await.map_err(store_error)?;
            match found {
                Some(summary) => Ok(json(&OperationView::from(&summary))),
                None => Err(error(
                    StatusCode::NOT_FOUND,
                    format!("no operation has id {id}"),
                )),
            }
        }
        .await,
    )
}

/// `POST /api/operations/{id}/cancel`.
pub(crate) async fn cancel(State(inner): State<Arc<Inner>>, Path(id): Path<String>) -> Response {
    collect(
        async {
            let client = client(&inner)?;
            let id = operation_id(&id)?;
            #[derive(Serialize)]
            struct Canceled {
                id: String,
                status: &'static str,
            }
            match tokio::time::timeout(CANCEL_WAIT, client.cancel_operation(id)).await {
                Ok(Ok(())) => Ok(json(&Canceled {
                    id: id.to_string(),
                    status: "cancel requested",
                })),
                Ok(Err(crate::CallError::Invalid(message))) => {
                    Err(error(StatusCode::NOT_FOUND, message))
                }
                Ok(Err(e)) => Err(error(
                    StatusCode::BAD_GATEWAY,
                    format!("the cancel request failed: {e}"),
                )),
                Err(_) => Ok(json_with(
                    StatusCode::ACCEPTED,
                    &Canceled {
                        id: id.to_string(),
                        status: "cancel request in progress",
                    },
                )),
            }
        }
        .await,
    )
}

/// `GET /api/handler/operations`. Tokens are not shown whole, so the cursor is the start time
/// of the page's last operation and how many operations started at that time were listed.
pub(crate) async fn handler_operations(State(inner): State<Arc<Inner>>, uri: Uri) -> Response {
    collect(
        async {
            let dispatcher = dispatcher(&inner)?;
            let params = Params::of(&uri)?;
            let known = AsyncState::ALL.map(AsyncState::as_str).join(", ");
            let limit = params.limit()?;
            let (after, skip) = match params.get("cursor") {
                None => (None, 0),
                Some(text) => {
                    let bad = || bad_request(format!("`{text}` is not a cursor"));
                    let (micros, skip) = text.split_once('.').ok_or_else(bad)?;
                    let micros: i64 = micros.parse().map_err(|_| bad())?;
                    let skip: usize = skip.parse().map_err(|_| bad())?;
                    if skip > MAX_SKIP {
                        return Err(bad());
                    }
                    let at = from_micros(micros).map_err(|_| bad())?;
                    (Some((at, micros)), skip)
                }
            };
            let query = AsyncQuery {
                states: params.states(AsyncState::parse, &[AsyncState::Running], &known)?,
                service: params.get("service").map(str::to_owned),
                after: after.map(|(at, _)| Cursor::new(at, "")),
                limit: limit + skip,
            };
            let mut records = dispatcher
                .async_operations(&query)
                .await
                .map_err(store_error)?;
            let at_cursor = |r: &crate::store::AsyncOperationRecord| {
                after.is_some_and(|(_, micros)| to_micros(r.started_at).ok() == Some(micros))
            };
            let skipped = records.iter().take(skip).filter(|r| at_cursor(r)).count();
            records.drain(..skipped);
            records.truncate(limit);
            let next_cursor = match records.last() {
                Some(last) if records.len() == limit => {
                    let micros = to_micros(last.started_at).map_err(store_error)?;
                    let same = records
                        .iter()
                        .filter(|r| to_micros(r.started_at).ok() == Some(micros))
                        .count();
                    let carried = if after.is_some_and(|(_, m)| m == micros) {
                        skip
                    } else {
                        0
                    };
                    let listed = same + carried;
                    (listed <= MAX_SKIP).then(|| format!("{micros}.{listed}"))
                }
                _ => None,
            };
            Ok(json(&Page {
                items: records.iter().map(HandlerOperationView::from).collect(),
                next_cursor,
            }))
        }
        .await,
    )
}

/// `GET /api/deliveries`.
pub(crate) async fn deliveries(State(inner): State<Arc<Inner>>, uri: Uri) -> Response {
    collect(
        async {
            let dispatcher = dispatcher(&inner)?;
            let params = Params::of(&uri)?;
            let known = DeliveryState::ALL.map(DeliveryState::as_str).join(", ");
            let limit = params.limit()?;
            let failed_only = match params.get("failed") {
                None | Some("false") => false,
                Some("true") => true,
                Some(other) => {
                    return Err(bad_request(format!(
                        "`failed` is `true` or `false`, not `{other}`"
                    )));
                }
            };
            let query = DeliveryQuery {
                states: params.states(DeliveryState::parse, &[DeliveryState::Pending], &known)?,
                failed_only,
                after: params
                    .get("cursor")
                    .map(Cursor::decode)
                    .transpose()
                    .map_err(store_error)?,
                limit,
            };
            let page = dispatcher.deliveries(&query).await.map_err(store_error)?;
            let next_cursor = (page.len() == limit)
                .then(|| page.last())
                .flatten()
                .map(|d| delivery_cursor(d.created_at, d.id).encode());
            Ok(json(&Page {
                items: page.iter().map(DeliveryView::from).collect(),
                next_cursor,
            }))
        }
        .await,
    )
}

/// `POST /api/deliveries/{id}/redeliver`.
pub(crate) async fn redeliver(State(inner): State<Arc<Inner>>, Path(id): Path<String>) -> Response {
    collect(
        async {
            let dispatcher = dispatcher(&inner)?;
            let id = operation_id(&id)?;
            #[derive(Serialize)]
            struct Redelivered {
                id: String,
                status: &'static str,
            }
            if dispatcher.redeliver(id).await.map_err(store_error)? {
                Ok(json(&Redelivered {
                    id: id.to_string(),
                    status: "redelivery scheduled",
                }))
            } else {
                Err(error(
                    StatusCode::CONFLICT,
                    format!("delivery {id} is not dead (unknown, pending or delivered)"),
                ))
            }
        }
        .await,
    )
}

/// Anything else.
pub(crate) async fn not_found(uri: Uri) -> Response {
    error(
        StatusCode::NOT_FOUND,
        format!("no admin route at `{}`", uri.path()),
    )
}
