//! The dispatcher with a store: starts deduplicated by request id, async operations recorded with
//! leases, completions through an outbox, and resume-or-fail of unfinished operations.
//!
//! - [`dedup`]: the start path (claim the request id, run the handler once, record its answer);
//! - [`retarget`]: a repeated start moves the completion of its async operation to the callback
//!   it names;
//! - [`recovery`]: the keeper task (lease renewal, start-up recovery, takeover of operations whose
//!   owner died) and resume-or-fail;
//! - [`outbox`]: the sender loop that delivers enqueued completions to callback URLs;
//! - [`options`]: [`DurabilityOptions`] and [`OutboxOptions`].

mod cancel;
mod dedup;
mod options;
mod outbox;
mod recovery;
mod retarget;

pub use options::{DurabilityOptions, OutboxOptions};

pub(crate) use cancel::{cancel_recorded, cancel_running};
pub(crate) use dedup::start as start_durable;
pub(crate) use recovery::spawn_keeper;

pub(crate) use outbox::spawn_outbox;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, SystemTime};

use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::completion::Completion;
use crate::error::HandlerError;
use crate::machinery::store_retry;
use crate::store::{CompleteAsync, HandlerStore, Lease, OutboxStore, Store, StoreError};

/// What a dispatcher with a store shares with its background tasks.
pub(crate) struct Durable {
    pub handler: Arc<dyn HandlerStore>,
    pub outbox: Arc<dyn OutboxStore>,
    pub options: DurabilityOptions,
    /// Wakes the outbox sender (a delivery was enqueued, or a sender installed).
    pub wake_outbox: Notify,
    /// Fires when the dispatcher shuts down (or every handle to it is dropped): the background
    /// tasks end and running work is dropped without being completed. Fired by the method
    /// `stop`, which also sets `stopped`.
    pub stop: CancellationToken,
    /// Whether `stop` fired, read by every start: the token's own check takes its lock, which
    /// the runtime's worker threads would all contend for.
    stopped: AtomicBool,
}

impl Durable {
    pub fn new(store: Arc<dyn Store>, options: DurabilityOptions) -> Self {
        Self {
            handler: store.clone(),
            outbox: store,
            options,
            wake_outbox: Notify::new(),
            stop: CancellationToken::new(),
            stopped: AtomicBool::new(false),
        }
    }

    /// Stops the background tasks and refuses new starts (see `stop`).
    pub fn stop(&self) {
        self.stopped.store(true, Ordering::Release);
        self.stop.cancel();
    }

    /// Whether the dispatcher stopped (see the method `stop`).
    pub fn is_stopped(&self) -> bool {
        self.stopped.load(Ordering::Acquire)
    }

    /// This owner's lease from `now`.
    pub fn lease(&self, now: SystemTime) -> Lease {
        Lease::new(self.options.owner.clone(), now + self.options.lease)
    }

    /// Finishes the operation of `completion` and enqueues its delivery, in one transaction.
    /// Retried while the store fails (the completion is never acknowledged before it is
    /// recorded): forever while the store is unavailable, a few times for other errors; `None`
    /// if the dispatcher stopped or the store kept refusing (the operation then stays running in
    /// the store, and is resumed or failed by the next dispatcher).
    pub async fn record_completion(&self, completion: &Completion) -> Option<CompleteAsync> {
        let mut retrying = store_retry(Duration::from_secs(10)).retrying();
        let mut refusals = 0;
        loop {
            match self
                .handler
                .complete_async(completion, crate::clock::now())
                .await
            {
                Ok(outcome) => return Some(outcome),
                Err(e) => {
                    if !e.is_retryable() {
                        refusals += 1;
                        if refusals >= 5 {
                            tracing::error!(
                                token = %completion.token,
                                error = %e,
                                "cannot record the completion; the operation stays running in \
                                 the store until the next start-up"
                            );
                            return None;
                        }
                    }
                    tracing::warn!(
                        token = %completion.token,
                        error = %e,
                        delay = ?retrying.peek(),
                        "cannot record the completion yet; retrying"
                    );
                }
            }
            if !retrying.sleep(&self.stop).await {
                return None;
            }
        }
    }
}

/// The HandlerError a failed store call is answered with: UNAVAILABLE when the store may come
/// back, INTERNAL otherwise (both retryable: the start was not recorded).
pub(crate) fn store_failure(what: &str, error: &StoreError) -> HandlerError {
    if error.is_retryable() {
        HandlerError::unavailable(format!("{what}: {error}"))
    } else {
        HandlerError::internal(format!("{what}: {error}"))
    }
}
