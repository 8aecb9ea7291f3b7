//! A wire log: wraps a server's router, records every request with its answer, and can inject
//! 503s or hold back cancel answers. And a way to serve a router on loopback.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::Request;
use axum::middleware::{Next, from_fn};
use axum::response::{IntoResponse, Response};
use http::StatusCode;
use tokio::sync::Notify;
use tokio::task::JoinHandle;
use tokio::time::Instant;

/// One request a [`WireLog`] saw, and the status it was answered with (`None` when the client
/// went away first).
#[derive(Clone, Debug)]
pub struct Exchange {
    pub path: String,
    pub request_id: Option<String>,
    pub request_timeout: Option<String>,
    pub token: Option<String>,
    pub received: Instant,
    pub status: Option<u16>,
    pub answered: Option<Instant>,
}

impl Exchange {
    pub fn is_cancel(&self) -> bool {
        self.path.ends_with("/cancel")
    }
}

/// Wraps a router: records every request with its answer, and answers a bare 503 (as an
/// overloaded proxy would) to the next injected number of requests.
#[derive(Clone, Default)]
pub struct WireLog {
    exchanges: Arc<Mutex<Vec<Exchange>>>,
    fail_cancels: Arc<AtomicU32>,
    fail_any: Arc<AtomicU32>,
    cancel_delay: Arc<Mutex<Duration>>,
    changed: Arc<Notify>,
}

fn header(request: &Request, name: &str) -> Option<String> {
    request
        .headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

impl WireLog {
    /// The next `n` cancel requests get a 503.
    pub fn fail_cancels(&self, n: u32) {
        self.fail_cancels.store(n, Ordering::SeqCst);
    }

    /// The next `n` requests get a 503.
    pub fn fail_any(&self, n: u32) {
        self.fail_any.store(n, Ordering::SeqCst);
    }

    /// Cancel requests are answered `delay` after the handler answered them.
    pub fn delay_cancel_answers(&self, delay: Duration) {
        *self.cancel_delay.lock().unwrap() = delay;
    }

    pub fn exchanges(&self) -> Vec<Exchange> {
        self.exchanges.lock().unwrap().clone()
    }

    /// The statuses of the requests matching `filter` (`0` for no answer).
    pub fn statuses(&self, filter: impl Fn(&Exchange) -> bool) -> Vec<u16> {
        self.exchanges()
            .iter()
            .filter(|e| filter(e))
            .map(|e| e.status.unwrap_or(0))
            .collect()
    }

    /// Waits (at most 5 s) until `condition` holds of the exchanges so far.
    pub async fn wait_until(&self, what: &str, condition: impl Fn(&[Exchange]) -> bool) {
        let waited = tokio::time::timeout(Duration::from_secs(5), async {
            loop {
                let changed = self.changed.notified();
                if condition(&self.exchanges()) {
                    return;
                }
                changed.await;
            }
        })
        .await;
        assert!(
            waited.is_ok(),
            "the wire never showed {what}: {:#?}",
            self.exchanges()
        );
    }

    pub fn wrap(&self, router: Router) -> Router {
        let log = self.clone();
        router.layer(from_fn(move |request: Request, next: Next| {
            let log = log.clone();
            async move { log.exchange(request, next).await }
        }))
    }

    async fn exchange(&self, request: Request, next: Next) -> Response {
        let entry = Exchange {
            path: request.uri().path().to_owned(),
            request_id: header(&request, "nexus-request-id"),
            request_timeout: header(&request, "request-timeout"),
            token: header(&request, "nexus-operation-token"),
            received: Instant::now(),
            status: None,
            answered: None,
        };
        let index = {
            let mut exchanges = self.exchanges.lock().unwrap();
            exchanges.push(entry.clone());
            exchanges.len() - 1
        };
        self.changed.notify_waiters();
        let take = |counter: &AtomicU32| {
            counter
                .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
                .is_ok()
        };
        let inject = take(&self.fail_any) || (entry.is_cancel() && take(&self.fail_cancels));
        let response = if inject {
            (StatusCode::SERVICE_UNAVAILABLE, "injected: overloaded").into_response()
        } else {
            let response = next.run(request).await;
            if entry.is_cancel() {
                let delay = *self.cancel_delay.lock().unwrap();
                tokio::time::sleep(delay).await;
            }
            response
        };
        {
            let mut exchanges = self.exchanges.lock().unwrap();
            exchanges[index].status = Some(response.status().as_u16());
            exchanges[index].answered = Some(Instant::now());
        }
        self.changed.notify_waiters();
        response
    }
}

/// A server task on loopback; aborted when dropped.
pub struct Running {
    pub addr: SocketAddr,
    task: JoinHandle<()>,
}

impl Running {
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Serves `router` on `listener`.
pub fn spawn<L>(listener: L, router: Router) -> Running
where
    L: axum::serve::Listener<Addr = SocketAddr>,
    L::Io: 'static,
{
    let addr = listener.local_addr().unwrap();
    let task = tokio::spawn(async move {
        let _ = axum::serve(listener, router).await;
    });
    Running { addr, task }
}
