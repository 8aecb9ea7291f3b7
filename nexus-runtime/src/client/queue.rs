//! The light queue into an operation's task: commands from its handles (cancel requests, and the
//! news that every handle is gone), and wakes from the inbox and the caretaker, in one queue.
//!
//! A queue behind a lock that also holds the receiver's waker, rather than a tokio mpsc channel:
//! the channel's cache-padded state and first block of 32 slots took about 800 bytes per
//! operation, for a queue that rarely holds anything. Receiving is a poll ([`Receiver::poll_recv`])
//! that keeps nothing in the waiting future, so a task that waits on it beside its timers holds no
//! waiter state for it (a tokio `Notify` waiter is 64 bytes). Senders are counted, so the
//! receiver learns when the last one is gone (once: what is posted afterwards still arrives); a
//! [`WeakSender`] does not count: it makes a sender only while one exists, and posts whatever the
//! senders (the registry's wakes, for operations that end with their handles).
//!
//! Its concurrent paths are model-checked with loom by the `nexus-loom-tests` crate (`loom/`),
//! which compiles this file with `--cfg loom` against loom's primitives.

use std::collections::VecDeque;
use std::task::{Context, Poll, Waker};

#[cfg(loom)]
use crate::sync::{Arc, AtomicBool, AtomicUsize, Mutex, MutexGuard, Ordering};
#[cfg(not(loom))]
use std::sync::{
    Arc, Mutex, MutexGuard,
    atomic::{AtomicBool, AtomicUsize, Ordering},
};

struct Queue<T> {
    state: Mutex<State<T>>,
    senders: AtomicUsize,
    receiver_gone: AtomicBool,
}

struct State<T> {
    items: VecDeque<T>,
    /// The receiver's task while it waits.
    waiting: Option<Waker>,
}

impl<T> Queue<T> {
    fn lock(&self) -> MutexGuard<'_, State<T>> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Queues `item`, and wakes the receiver if it waits; gives the item back if the receiver is
    /// gone.
    fn push(&self, item: T) -> Result<(), T> {
        let mut state = self.lock();
        if self.receiver_gone.load(Ordering::Acquire) {
            return Err(item);
        }
        state.items.push_back(item);
        let waiting = state.waiting.take();
        drop(state);
        if let Some(waker) = waiting {
            waker.wake();
        }
        Ok(())
    }

    /// Wakes the receiver if it waits. Taken under the lock, woken after it.
    fn wake_receiver(&self) {
        let waiting = self.lock().waiting.take();
        if let Some(waker) = waiting {
            waker.wake();
        }
    }
}

/// A sending end. Clones count as senders.
pub(crate) struct Sender<T> {
    queue: Arc<Queue<T>>,
}

/// A sending end that does not count: [`upgrade`](Self::upgrade) makes a sender while another
/// exists, and [`post`](Self::post) queues an item whatever the senders.
pub(crate) struct WeakSender<T> {
    queue: Arc<Queue<T>>,
}

/// The receiving end (the operation's task).
pub(crate) struct Receiver<T> {
    queue: Arc<Queue<T>>,
    /// It was told that every sender is gone.
    told_ended: bool,
}

/// A new queue.
pub(crate) fn channel<T>() -> (Sender<T>, Receiver<T>) {
    let queue = Arc::new(Queue {
        state: Mutex::new(State {
            items: VecDeque::new(),
            waiting: None,
        }),
        senders: AtomicUsize::new(1),
        receiver_gone: AtomicBool::new(false),
    });
    (
        Sender {
            queue: queue.clone(),
        },
        Receiver {
            queue,
            told_ended: false,
        },
    )
}

impl<T> Sender<T> {
    /// A sender whose receiver is gone: everything sent comes back.
    pub fn closed() -> Self {
        let (sender, receiver) = channel();
        drop(receiver);
        sender
    }

    /// Queues `item`; gives it back if the receiver is gone.
    pub fn send(&self, item: T) -> Result<(), T> {
        self.queue.push(item)
    }

    /// A sender that does not count.
    pub fn downgrade(&self) -> WeakSender<T> {
        WeakSender {
            queue: self.queue.clone(),
        }
    }
}

impl<T> Clone for Sender<T> {
    fn clone(&self) -> Self {
        self.queue.senders.fetch_add(1, Ordering::Relaxed);
        Self {
            queue: self.queue.clone(),
        }
    }
}

impl<T> Drop for Sender<T> {
    fn drop(&mut self) {
        // The count drops before the lock is taken: a receiver that registers its waker under
        // the lock before that is woken here; one that looks after it sees no sender left.
        if self.queue.senders.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.queue.wake_receiver();
        }
    }
}

impl<T> Clone for WeakSender<T> {
    fn clone(&self) -> Self {
        Self {
            queue: self.queue.clone(),
        }
    }
}

impl<T> WeakSender<T> {
    /// Queues `item` whether senders are left or not; gives it back if the receiver is gone.
    pub fn post(&self, item: T) -> Result<(), T> {
        self.queue.push(item)
    }

    /// A sender, unless every sender is gone.
    pub fn upgrade(&self) -> Option<Sender<T>> {
        let mut count = self.queue.senders.load(Ordering::Acquire);
        loop {
            if count == 0 {
                return None;
            }
            match self.queue.senders.compare_exchange_weak(
                count,
                count + 1,
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Ok(_) => {
                    return Some(Sender {
                        queue: self.queue.clone(),
                    });
                }
                Err(now) => count = now,
            }
        }
    }
}

impl<T> Receiver<T> {
    /// Whether [`recv`](Self::recv) would wait now: nothing is queued, and a sender is left or
    /// their end was told already.
    pub fn would_wait(&self) -> bool {
        let state = self.queue.lock();
        state.items.is_empty()
            && (self.told_ended || self.queue.senders.load(Ordering::Acquire) != 0)
    }

    /// The next item; `Ready(None)` once, when every sender is gone and nothing is queued (items
    /// posted afterwards still arrive); `Pending` (with the task's waker kept, to be woken by the
    /// next send or post, or the last sender's exit) otherwise.
    pub fn poll_recv(&mut self, cx: &mut Context<'_>) -> Poll<Option<T>> {
        let mut state = self.queue.lock();
        if let Some(item) = state.items.pop_front() {
            return Poll::Ready(Some(item));
        }
        if !self.told_ended && self.queue.senders.load(Ordering::Acquire) == 0 {
            self.told_ended = true;
            return Poll::Ready(None);
        }
        match &mut state.waiting {
            Some(waker) if waker.will_wake(cx.waker()) => {}
            waiting => *waiting = Some(cx.waker().clone()),
        }
        Poll::Pending
    }

    /// The next item; `None` once, when every sender is gone and nothing is queued.
    pub async fn recv(&mut self) -> Option<T> {
        std::future::poll_fn(|cx| self.poll_recv(cx)).await
    }
}

impl<T> Drop for Receiver<T> {
    fn drop(&mut self) {
        // The flag is set under the lock, so that a send either lands before (and is dropped
        // here: a cancel request's reply channel then tells its handle the task ended) or sees
        // the flag. The items are dropped after the lock is released (their drops may run code).
        let items = {
            let mut state = self.queue.lock();
            self.queue.receiver_gone.store(true, Ordering::Release);
            state.waiting = None;
            std::mem::take(&mut state.items)
        };
        drop(items);
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[tokio::test]
    async fn items_arrive_in_order_then_the_end_of_the_senders() {
        let (tx, mut rx) = channel();
        let second = tx.clone();
        assert!(tx.send(1).is_ok());
        assert!(second.send(2).is_ok());
        assert_eq!(rx.recv().await, Some(1));
        let waiting = tokio::spawn(async move {
            let next = rx.recv().await;
            let end = rx.recv().await;
            (next, end)
        });
        tokio::task::yield_now().await;
        drop(tx);
        tokio::task::yield_now().await;
        drop(second);
        assert_eq!(waiting.await.expect("joined"), (Some(2), None));
    }

    #[tokio::test]
    async fn a_waiting_receiver_is_woken_and_a_gone_receiver_refuses() {
        let (tx, mut rx) = channel();
        let waiting = tokio::spawn(async move { rx.recv().await });
        tokio::task::yield_now().await;
        assert!(tx.send(7).is_ok());
        assert_eq!(waiting.await.expect("joined"), Some(7));
        assert_eq!(tx.send(8), Err(8), "the receiver is gone");
        assert_eq!(Sender::closed().send(9), Err(9));
    }

    #[tokio::test]
    async fn what_is_posted_arrives_before_and_after_the_end_of_the_senders() {
        let (tx, mut rx) = channel::<u8>();
        let weak = tx.downgrade();
        assert!(weak.post(1).is_ok());
        drop(tx);
        assert_eq!(rx.recv().await, Some(1));
        assert_eq!(rx.recv().await, None, "told once");
        assert!(rx.would_wait());
        let waiting = tokio::spawn(async move { (rx.recv().await, rx) });
        tokio::task::yield_now().await;
        assert!(weak.post(2).is_ok());
        let (got, rx) = waiting.await.expect("joined");
        assert_eq!(got, Some(2));
        drop(rx);
        assert_eq!(weak.post(3), Err(3), "the receiver is gone");
    }

    #[tokio::test]
    async fn a_weak_sender_upgrades_only_while_a_sender_exists() {
        let (tx, mut rx) = channel::<u8>();
        let weak = tx.downgrade();
        let upgraded = weak.upgrade().expect("a sender exists");
        drop(tx);
        assert!(upgraded.send(1).is_ok());
        drop(upgraded);
        assert!(weak.upgrade().is_none());
        assert_eq!(rx.recv().await, Some(1));
        assert_eq!(rx.recv().await, None, "weak senders do not count");
    }
}
