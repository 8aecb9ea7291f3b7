//! Shared by the fault tests: a contract whose handler misbehaves on demand, a wire log of what a
//! server was asked and answered (which can also inject 503s), a listener that resets or closes
//! connections before answering, and a TCP peer that accepts and never answers.
#![allow(dead_code, clippy::unwrap_used)]

mod peers;
mod wire;

#[allow(unused_imports)] // not every binary that includes the support module uses them
pub use peers::{Fault, FaultyListener, Silent, head_header};
#[allow(unused_imports)]
pub use wire::{Exchange, Running, WireLog, spawn};

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use nexus_runtime::service::Dispatcher;
use nexus_runtime::{HandlerError, OperationContext, OperationError, OperationResult};
use tokio::sync::{Notify, watch};
use tokio::time::Instant;

/// The contract the fault tests call.
#[nexus_runtime::nexus_service(name = "faults.v1")]
pub trait Faulty {
    /// Sync: UNAVAILABLE while the handler's burst lasts, then the input back (after the
    /// handler's success delay).
    async fn flaky(&self, ctx: OperationContext, input: String) -> OperationResult<String>;
    /// Sync: never answers; its future is dropped at the request deadline.
    async fn hang(&self, ctx: OperationContext, input: String) -> OperationResult<String>;
    /// Async: runs until the caller cancels it (canceled) or the test releases it (the input).
    async fn wait(&self, ctx: OperationContext, input: String) -> OperationResult<String>;
}

/// One start the handler saw.
#[derive(Clone, Debug)]
pub struct SeenStart {
    pub operation: &'static str,
    pub input: String,
    pub request_id: String,
    /// The deadline the handler was given (from `Request-Timeout`), from when it started.
    pub deadline: Option<Duration>,
    pub at: Instant,
    /// When a successful `flaky` answered.
    pub answered: Option<Instant>,
}

/// A hanging handler future that was dropped.
#[derive(Clone, Copy, Debug)]
pub struct Dropped {
    pub started: Instant,
    pub dropped: Instant,
}

#[derive(Default)]
struct State {
    /// UNAVAILABLE answers `flaky` still gives.
    burst: AtomicU32,
    success_delay: Mutex<Duration>,
    /// How long a canceled `wait` takes to clean up before completing as canceled.
    cancel_cleanup: Mutex<Duration>,
    starts: Mutex<Vec<SeenStart>>,
    dropped: Mutex<Vec<Dropped>>,
    /// Inputs of `wait` operations whose work saw the caller's cancellation.
    cancels_seen: Mutex<Vec<String>>,
    changed: Notify,
}

/// The `Faulty` handler and what it saw. Clones share everything.
#[derive(Clone)]
pub struct Handler {
    state: Arc<State>,
    released: watch::Sender<Vec<String>>,
}

impl Default for Handler {
    fn default() -> Self {
        Self::new()
    }
}

impl Handler {
    pub fn new() -> Self {
        let (released, _) = watch::channel(Vec::new());
        Self {
            state: Arc::default(),
            released,
        }
    }

    /// The next `n` `flaky` starts answer UNAVAILABLE.
    pub fn burst(&self, n: u32) {
        self.state.burst.store(n, Ordering::SeqCst);
    }

    /// Successful `flaky` starts answer after `delay`.
    pub fn success_delay(&self, delay: Duration) {
        *self.state.success_delay.lock().unwrap() = delay;
    }

    /// A canceled `wait` completes `delay` after it saw the cancellation.
    pub fn cancel_cleanup(&self, delay: Duration) {
        *self.state.cancel_cleanup.lock().unwrap() = delay;
    }

    /// A dispatcher serving this handler.
    pub fn dispatcher(&self) -> Dispatcher {
        Dispatcher::builder()
            .service(FaultyService::handler(self.clone()))
            .callback_guard(nexus_runtime::security::CallbackGuard::loopback())
            .build()
    }

    pub fn starts(&self) -> Vec<SeenStart> {
        self.state.starts.lock().unwrap().clone()
    }

    pub fn dropped(&self) -> Vec<Dropped> {
        self.state.dropped.lock().unwrap().clone()
    }

    pub fn cancels_seen(&self) -> Vec<String> {
        self.state.cancels_seen.lock().unwrap().clone()
    }

    /// Completes the `wait` operation started with `input`.
    pub fn release(&self, input: &str) {
        self.released.send_modify(|r| r.push(input.to_owned()));
    }

    /// Waits (at most 5 s) until `condition` holds of this handler.
    pub async fn wait_until(&self, what: &str, condition: impl Fn(&Self) -> bool) {
        let waited = tokio::time::timeout(Duration::from_secs(5), async {
            loop {
                let changed = self.state.changed.notified();
                if condition(self) {
                    return;
                }
                changed.await;
            }
        })
        .await;
        assert!(waited.is_ok(), "the handler never saw {what}");
    }

    fn record(&self, operation: &'static str, ctx: &OperationContext, input: &str) -> usize {
        let now = Instant::now();
        let mut starts = self.state.starts.lock().unwrap();
        starts.push(SeenStart {
            operation,
            input: input.to_owned(),
            request_id: ctx.request_id().to_owned(),
            deadline: ctx.deadline().map(|d| d.saturating_duration_since(now)),
            at: now,
            answered: None,
        });
        self.state.changed.notify_waiters();
        starts.len() - 1
    }
}

/// Records its handler future's drop.
struct DropGuard {
    state: Arc<State>,
    started: Instant,
}

impl Drop for DropGuard {
    fn drop(&mut self) {
        self.state.dropped.lock().unwrap().push(Dropped {
            started: self.started,
            dropped: Instant::now(),
        });
        self.state.changed.notify_waiters();
    }
}

impl Faulty for Handler {
    async fn flaky(&self, ctx: OperationContext, input: String) -> OperationResult<String> {
        let index = self.record("flaky", &ctx, &input);
        let burst = self
            .state
            .burst
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1));
        if let Ok(left) = burst {
            return Err(
                HandlerError::unavailable(format!("503 burst: {} more to come", left - 1)).into(),
            );
        }
        let delay = *self.state.success_delay.lock().unwrap();
        tokio::time::sleep(delay).await;
        self.state.starts.lock().unwrap()[index].answered = Some(Instant::now());
        self.state.changed.notify_waiters();
        Ok(input.into())
    }

    async fn hang(&self, ctx: OperationContext, input: String) -> OperationResult<String> {
        self.record("hang", &ctx, &input);
        let _guard = DropGuard {
            state: self.state.clone(),
            started: Instant::now(),
        };
        std::future::pending::<()>().await;
        Ok(input.into())
    }

    async fn wait(&self, ctx: OperationContext, input: String) -> OperationResult<String> {
        self.record("wait", &ctx, &input);
        let state = self.state.clone();
        let mut released = self.released.subscribe();
        ctx.start_async(move |work| async move {
            let canceled = tokio::select! {
                () = work.cancelled() => true,
                _ = released.wait_for(|r| r.contains(&input)) => false,
            };
            if !canceled {
                return Ok(input);
            }
            state.cancels_seen.lock().unwrap().push(input.clone());
            state.changed.notify_waiters();
            let cleanup = *state.cancel_cleanup.lock().unwrap();
            tokio::time::sleep(cleanup).await;
            Err(OperationError::canceled(format!(
                "`{input}` canceled as the caller asked"
            )))
        })
    }
}

/// Milliseconds from `from` to `to`.
pub fn ms(from: Instant, to: Instant) -> u128 {
    to.saturating_duration_since(from).as_millis()
}
