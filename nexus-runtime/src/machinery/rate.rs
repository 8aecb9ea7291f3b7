//! A rate limit shared by every clone of a service.
//!
//! tower's `RateLimit` keeps its budget per instance, so sharing it between tasks takes a `Buffer`
//! and its worker task, whose bound is not an exact count of waiting requests. This one keeps the
//! window behind a shared lock, so each operation drives its own clone and the queue bound in front
//! stays exact.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::time::{Instant, Sleep};
use tower::Service;

#[derive(Debug, Default)]
struct Window {
    start: Option<Instant>,
    used: u64,
}

/// Lets at most `attempts` requests through per `period`, in fixed windows opened by the first
/// request after the previous window ended. Readiness reserves a slot.
pub(crate) struct SharedRateLimit<S> {
    inner: S,
    window: Arc<Mutex<Window>>,
    attempts: u64,
    period: Duration,
    reserved: bool,
    sleep: Option<Pin<Box<Sleep>>>,
}

impl<S> SharedRateLimit<S> {
    pub fn new(inner: S, attempts: u64, period: Duration) -> Self {
        Self {
            inner,
            window: Arc::default(),
            attempts: attempts.max(1),
            period,
            reserved: false,
            sleep: None,
        }
    }
}

impl<S: Clone> Clone for SharedRateLimit<S> {
    fn clone(&self) -> Self {
        Self {
            inner: self.inner.clone(),
            window: self.window.clone(),
            attempts: self.attempts,
            period: self.period,
            reserved: false,
            sleep: None,
        }
    }
}

impl<S: Service<R>, R> Service<R> for SharedRateLimit<S> {
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        loop {
            if self.reserved {
                return self.inner.poll_ready(cx);
            }
            if let Some(sleep) = self.sleep.as_mut() {
                if sleep.as_mut().poll(cx).is_pending() {
                    return Poll::Pending;
                }
                self.sleep = None;
            }
            let now = Instant::now();
            let mut window = self.window.lock().unwrap_or_else(|e| e.into_inner());
            let start = match window.start {
                Some(start) if now < start + self.period => start,
                _ => {
                    window.start = Some(now);
                    window.used = 0;
                    now
                }
            };
            if window.used < self.attempts {
                window.used += 1;
                self.reserved = true;
            } else {
                drop(window);
                self.sleep = Some(Box::pin(tokio::time::sleep_until(start + self.period)));
            }
        }
    }

    fn call(&mut self, request: R) -> Self::Future {
        self.reserved = false;
        self.inner.call(request)
    }
}
