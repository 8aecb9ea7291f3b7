//! The primitives the runtime's files import under `--cfg loom`: loom's, plus a `Notify` with
//! the semantics the queue relies on from Tokio's (`notify_one` leaves one permit when nobody
//! waits; `notified().await` takes it), built on loom's atomics and `AtomicWaker` so that loom
//! sees every step.

use std::future::Future;
use std::task::{Poll, Waker};

pub use loom::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
pub use loom::sync::{Arc, Mutex, MutexGuard};

/// One waiter's notification with a stored permit, as `tokio::sync::Notify` offers it to a
/// single waiter.
#[derive(Debug, Default)]
pub struct Notify {
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    permit: bool,
    waiter: Option<Waker>,
}

impl Notify {
    /// No permit, nobody waiting.
    pub fn new() -> Self {
        Self::default()
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Wakes the waiter, or leaves a permit for the next wait.
    pub fn notify_one(&self) {
        let waiter = {
            let mut state = self.state();
            state.permit = true;
            state.waiter.take()
        };
        if let Some(waker) = waiter {
            waker.wake();
        }
    }

    /// Completes once a permit is there, taking it.
    pub fn notified(&self) -> impl Future<Output = ()> + '_ {
        std::future::poll_fn(move |cx| {
            let mut state = self.state();
            if std::mem::take(&mut state.permit) {
                Poll::Ready(())
            } else {
                state.waiter = Some(cx.waker().clone());
                Poll::Pending
            }
        })
    }
}
