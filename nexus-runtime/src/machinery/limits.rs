//! Per-endpoint limits, as a tower stack: a queue bound in front of tower's
//! [`ConcurrencyLimit`] and a shared rate limit, around the attempt itself.
//!
//! ```text
//! QueueBound (fail past the bound) -> ConcurrencyLimit (in-flight attempts)
//!   -> SharedRateLimit (attempts per period) -> AttemptService (one request, its deadline)
//! ```
//!
//! Every operation drives its own clone of the stack; the clones share the semaphore, the rate
//! window and the count of waiting attempts. An attempt that cannot go out at once waits (FIFO for
//! the concurrency limit); once `queue_bound` attempts wait, the next one fails locally with
//! RESOURCE_EXHAUSTED without being sent.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::sync::Semaphore;
use tower::Service;
use tower::limit::ConcurrencyLimit;
use tower::util::Either;

use super::attempt::{AttemptError, AttemptService};
use super::rate::SharedRateLimit;
use crate::error::HandlerError;

/// Limits on the requests a client sends to one endpoint (all its targets together).
///
/// Defaults: at most 100 attempts in flight (Temporal's outbound-queue concurrency per caller and
/// destination), no rate limit, and up to 10 000 attempts waiting; past that an operation fails
/// locally with RESOURCE_EXHAUSTED. (Temporal's queue is persistent and never fails; ours lives in
/// memory, so it is bounded.)
///
/// ```
/// use std::time::Duration;
/// use nexus_runtime::machinery::Limits;
///
/// let limits = Limits::default()
///     .max_concurrency(8)
///     .rate_limit(50, Duration::from_secs(1))
///     .queue_bound(200);
/// assert_eq!(limits.max_concurrency, Some(8));
/// assert_eq!(Limits::unlimited().max_concurrency, None);
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Limits {
    /// Attempts in flight at once (default 100); `None` for no limit.
    pub max_concurrency: Option<usize>,
    /// At most `.0` attempts per `.1` (fixed windows); `None` (the default) for no limit.
    pub rate_limit: Option<(u64, Duration)>,
    /// Attempts that may wait for a slot (default 10 000); 0 fails at once when at a limit.
    pub queue_bound: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_concurrency: Some(100),
            rate_limit: None,
            queue_bound: 10_000,
        }
    }
}

impl Limits {
    /// The defaults.
    pub fn new() -> Self {
        Self::default()
    }

    /// No concurrency or rate limit.
    pub fn unlimited() -> Self {
        Self {
            max_concurrency: None,
            rate_limit: None,
            queue_bound: 10_000,
        }
    }

    /// Sets the number of attempts in flight at once (at least 1).
    #[must_use]
    pub fn max_concurrency(mut self, attempts: usize) -> Self {
        self.max_concurrency = Some(attempts.max(1));
        self
    }

    /// Allows at most `attempts` attempts per `period` (at least 1 per period).
    #[must_use]
    pub fn rate_limit(mut self, attempts: u64, period: Duration) -> Self {
        self.rate_limit = Some((attempts.max(1), period));
        self
    }

    /// Sets how many attempts may wait for a slot before new ones fail.
    #[must_use]
    pub fn queue_bound(mut self, attempts: usize) -> Self {
        self.queue_bound = attempts;
        self
    }
}

/// The rate limit, if configured, around the attempt.
type Rated = Either<SharedRateLimit<AttemptService>, AttemptService>;

/// The concurrency limit, if configured, around that.
type Limited = Either<ConcurrencyLimit<Rated>, Rated>;

/// An endpoint's stack; clone it per attempt. A concrete type (optional layers are `Either`s)
/// rather than a boxed service: cloning it allocates nothing and its futures are not boxed layer
/// by layer, which took six allocations per attempt.
pub(crate) type AttemptStack = QueueBound<Limited>;

/// Builds the stack of an endpoint.
pub(crate) fn stack(limits: &Limits, endpoint: &str) -> AttemptStack {
    let rated = match limits.rate_limit {
        Some((attempts, period)) => {
            Either::Left(SharedRateLimit::new(AttemptService, attempts, period))
        }
        None => Either::Right(AttemptService),
    };
    let limited = match limits.max_concurrency {
        Some(max) => Either::Left(ConcurrencyLimit::with_semaphore(
            rated,
            Arc::new(Semaphore::new(max.max(1))),
        )),
        None => Either::Right(rated),
    };
    QueueBound {
        inner: limited,
        waiting: Arc::default(),
        bound: limits.queue_bound,
        counted: false,
        endpoint: endpoint.into(),
    }
}

/// Counts the attempts waiting for the inner service to be ready, and refuses more than `bound`.
pub(crate) struct QueueBound<S> {
    inner: S,
    waiting: Arc<AtomicUsize>,
    bound: usize,
    /// Whether this clone is counted among the waiting.
    counted: bool,
    endpoint: Arc<str>,
}

impl<S> QueueBound<S> {
    fn stop_waiting(&mut self) {
        if self.counted {
            self.counted = false;
            self.waiting.fetch_sub(1, Ordering::SeqCst);
        }
    }
}

impl<S: Clone> Clone for QueueBound<S> {
    fn clone(&self) -> Self {
        Self {
            inner: self.inner.clone(),
            waiting: self.waiting.clone(),
            bound: self.bound,
            counted: false,
            endpoint: self.endpoint.clone(),
        }
    }
}

impl<S> Drop for QueueBound<S> {
    fn drop(&mut self) {
        self.stop_waiting();
    }
}

impl<S, R> Service<R> for QueueBound<S>
where
    S: Service<R, Error = AttemptError>,
{
    type Response = S::Response;
    type Error = AttemptError;
    type Future = S::Future;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), AttemptError>> {
        match self.inner.poll_ready(cx) {
            Poll::Ready(result) => {
                self.stop_waiting();
                Poll::Ready(result)
            }
            Poll::Pending if self.counted => Poll::Pending,
            Poll::Pending => {
                let bound = self.bound;
                let joined = self
                    .waiting
                    .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| {
                        (n < bound).then_some(n + 1)
                    })
                    .is_ok();
                if joined {
                    self.counted = true;
                    Poll::Pending
                } else {
                    Poll::Ready(Err(AttemptError::Overloaded(
                        HandlerError::resource_exhausted(format!(
                            "the local queue of endpoint `{}` is full: {bound} attempts already \
                             wait for its concurrency or rate limit (queue bound {bound}); the \
                             request was not sent",
                            self.endpoint
                        )),
                    )))
                }
            }
        }
    }

    fn call(&mut self, request: R) -> Self::Future {
        self.inner.call(request)
    }
}
