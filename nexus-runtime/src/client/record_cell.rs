//! The cell that shows an operation's record: its task writes it, handles read it and wait for it
//! to change.
//!
//! A value, a version and the wakers of the handles waiting, behind one lock, rather than a tokio
//! `watch` channel: the channel's state (a lock, eight notifiers for its receivers and one for its
//! senders) took about 330 bytes per operation beside the record, for a cell that one task writes
//! and that usually has one reader or none. Senders and receivers are counted: the receivers
//! learn when the last sender is gone (the operation's task ended), and the task learns whether
//! anyone else holds the record (then it copies the outcome instead of taking it).
//!
//! Its concurrent paths are model-checked with loom by the `nexus-loom-tests` crate (`loom/`),
//! which compiles this file with `--cfg loom` against loom's primitives.

use std::ops::Deref;
use std::task::{Poll, Waker};

#[cfg(loom)]
use crate::sync::{Arc, AtomicUsize, Mutex, MutexGuard, Ordering};
#[cfg(not(loom))]
use std::sync::{
    Arc, Mutex, MutexGuard,
    atomic::{AtomicUsize, Ordering},
};

struct Shared<T> {
    state: Mutex<State<T>>,
    senders: AtomicUsize,
    receivers: AtomicUsize,
}

struct State<T> {
    value: T,
    /// Bumped by every change a sender shows.
    version: u64,
    /// Every sender is gone.
    closed: bool,
    /// The tasks waiting for a change (one per task: a task polled again replaces nothing).
    waiting: Vec<Waker>,
}

impl<T> Shared<T> {
    fn lock(&self) -> MutexGuard<'_, State<T>> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl<T> State<T> {
    /// Counts a change and takes the wakers to wake once the lock is released.
    fn changed(&mut self) -> Vec<Waker> {
        self.version += 1;
        std::mem::take(&mut self.waiting)
    }

    fn wait(&mut self, waker: &Waker) {
        if !self.waiting.iter().any(|w| w.will_wake(waker)) {
            self.waiting.push(waker.clone());
        }
    }
}

fn wake(wakers: Vec<Waker>) {
    for waker in wakers {
        waker.wake();
    }
}

/// The writing end (the operation's task, and the registry that lets handles subscribe). Clones
/// count as senders; when the last one goes, waiting receivers are woken and told.
pub(crate) struct Sender<T> {
    shared: Arc<Shared<T>>,
}

/// A reading end (a handle).
pub(crate) struct Receiver<T> {
    shared: Arc<Shared<T>>,
    /// The version this receiver has seen.
    seen: u64,
}

/// Every sender is gone: the value will not change any more.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Closed;

/// A cell showing `value`, with a sender and a receiver that has seen it.
pub(crate) fn channel<T>(value: T) -> (Sender<T>, Receiver<T>) {
    let shared = Arc::new(Shared {
        state: Mutex::new(State {
            value,
            version: 0,
            closed: false,
            waiting: Vec::new(),
        }),
        senders: AtomicUsize::new(1),
        receivers: AtomicUsize::new(1),
    });
    (
        Sender {
            shared: shared.clone(),
        },
        Receiver { shared, seen: 0 },
    )
}

/// The value, borrowed under the cell's lock: hold it only for a read, never across an await.
pub(crate) struct Ref<'a, T> {
    guard: MutexGuard<'a, State<T>>,
}

impl<T> Deref for Ref<'_, T> {
    type Target = T;

    fn deref(&self) -> &T {
        &self.guard.value
    }
}

impl<T> Sender<T> {
    /// The value.
    pub fn borrow(&self) -> Ref<'_, T> {
        Ref {
            guard: self.shared.lock(),
        }
    }

    /// Changes the value and wakes the receivers waiting.
    pub fn send_modify(&self, modify: impl FnOnce(&mut T)) {
        self.send_if_modified(|value| {
            modify(value);
            true
        });
    }

    /// Lets `modify` change the value; when it returns `true`, the change is shown (the version
    /// moves on and waiting receivers are woken). Returns what `modify` returned.
    pub fn send_if_modified(&self, modify: impl FnOnce(&mut T) -> bool) -> bool {
        let mut state = self.shared.lock();
        if !modify(&mut state.value) {
            return false;
        }
        let wakers = state.changed();
        drop(state);
        wake(wakers);
        true
    }

    /// Replaces the value, showing the change.
    pub fn send_replace(&self, value: T) {
        self.send_modify(|current| *current = value);
    }

    /// A receiver that has seen the current value. It is counted under the lock, so that a
    /// sender that decides under the lock whether to show a change (see
    /// [`send_if_modified`](Self::send_if_modified) and [`receiver_count`](Self::receiver_count))
    /// either counts it or changed the value before it subscribed.
    pub fn subscribe(&self) -> Receiver<T> {
        let state = self.shared.lock();
        self.shared.receivers.fetch_add(1, Ordering::Relaxed);
        let seen = state.version;
        drop(state);
        Receiver {
            shared: self.shared.clone(),
            seen,
        }
    }

    /// How many receivers there are.
    pub fn receiver_count(&self) -> usize {
        self.shared.receivers.load(Ordering::Acquire)
    }
}

impl<T> Clone for Sender<T> {
    fn clone(&self) -> Self {
        self.shared.senders.fetch_add(1, Ordering::Relaxed);
        Self {
            shared: self.shared.clone(),
        }
    }
}

impl<T> Drop for Sender<T> {
    fn drop(&mut self) {
        if self.shared.senders.fetch_sub(1, Ordering::AcqRel) == 1 {
            let mut state = self.shared.lock();
            state.closed = true;
            let wakers = std::mem::take(&mut state.waiting);
            drop(state);
            wake(wakers);
        }
    }
}

impl<T> Receiver<T> {
    /// The value (without marking it seen).
    pub fn borrow(&self) -> Ref<'_, T> {
        Ref {
            guard: self.shared.lock(),
        }
    }

    /// The value, marking it seen.
    pub fn borrow_and_update(&mut self) -> Ref<'_, T> {
        let guard = self.shared.lock();
        self.seen = guard.version;
        Ref { guard }
    }

    /// Waits for a value this receiver has not seen (and marks it seen); `Err` once every sender
    /// is gone with nothing new to see.
    pub async fn changed(&mut self) -> Result<(), Closed> {
        std::future::poll_fn(|cx| {
            let mut state = self.shared.lock();
            if state.version != self.seen {
                self.seen = state.version;
                return Poll::Ready(Ok(()));
            }
            if state.closed {
                return Poll::Ready(Err(Closed));
            }
            state.wait(cx.waker());
            Poll::Pending
        })
        .await
    }

    /// Waits until the value satisfies `condition` (checking the current one first) and returns
    /// it, marked seen; `Err` once every sender is gone and the last value does not.
    pub async fn wait_for(
        &mut self,
        mut condition: impl FnMut(&T) -> bool,
    ) -> Result<Ref<'_, T>, Closed> {
        let shared = &*self.shared;
        let seen = &mut self.seen;
        std::future::poll_fn(move |cx| {
            let mut state = shared.lock();
            *seen = state.version;
            if condition(&state.value) {
                return Poll::Ready(Ok(Ref { guard: state }));
            }
            if state.closed {
                return Poll::Ready(Err(Closed));
            }
            state.wait(cx.waker());
            Poll::Pending
        })
        .await
    }
}

impl<T> Clone for Receiver<T> {
    fn clone(&self) -> Self {
        self.shared.receivers.fetch_add(1, Ordering::Relaxed);
        Self {
            shared: self.shared.clone(),
            seen: self.seen,
        }
    }
}

impl<T> Drop for Receiver<T> {
    fn drop(&mut self) {
        self.shared.receivers.fetch_sub(1, Ordering::AcqRel);
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_receiver_waits_for_a_change_it_has_not_seen() {
        let (tx, mut rx) = channel(1);
        let waiting = tokio::spawn(async move {
            rx.changed().await.expect("a change");
            let value = *rx.borrow();
            (value, rx)
        });
        tokio::task::yield_now().await;
        tx.send_replace(2);
        let (value, mut rx) = waiting.await.expect("task");
        assert_eq!(value, 2);
        // Seen already: the next wait is for the next change, or the end.
        drop(tx);
        assert_eq!(rx.changed().await, Err(Closed));
    }

    #[tokio::test]
    async fn wait_for_checks_the_current_value_first_and_reports_the_end() {
        let (tx, mut rx) = channel(5);
        assert_eq!(*rx.wait_for(|v| *v == 5).await.expect("current"), 5);
        let second = tx.clone();
        let waiting = tokio::spawn(async move {
            let got = rx.wait_for(|v| *v == 7).await.map(|v| *v);
            (got, rx)
        });
        tokio::task::yield_now().await;
        tx.send_modify(|v| *v = 6);
        drop(tx);
        second.send_if_modified(|v| {
            *v = 7;
            true
        });
        let (got, mut rx) = waiting.await.expect("task");
        assert_eq!(got, Ok(7));
        drop(second);
        assert_eq!(rx.wait_for(|v| *v == 8).await.map(|v| *v), Err(Closed));
        // The value stays readable once every sender is gone.
        assert_eq!(*rx.borrow(), 7);
    }

    #[tokio::test(start_paused = true)]
    async fn an_unshown_change_wakes_nobody_and_receivers_are_counted() {
        let (tx, rx) = channel(0);
        assert_eq!(tx.receiver_count(), 1);
        let mut second = tx.subscribe();
        assert_eq!(tx.receiver_count(), 2);
        assert!(!tx.send_if_modified(|v| {
            *v = 1;
            false
        }));
        // Changed in place but not shown: nothing new to see.
        assert!(
            tokio::time::timeout(std::time::Duration::from_millis(10), second.changed())
                .await
                .is_err()
        );
        drop(rx);
        drop(second);
        assert_eq!(tx.receiver_count(), 0);
    }
}
