//! Graceful stop of a server's connections, without state that every connection touches at
//! every poll.
//!
//! When the server stops, each connection is told to finish: an idle one closes at once, one
//! with a request in flight closes once its answer is sent. The server's stop then waits until
//! every connection has ended.
//!
//! A connection learns of the stop from a flag that changes once (so its cache line stays
//! shared between the cores, read-only) and keeps the waker to call in a cell of its own. The
//! server's list of those cells is touched when a connection opens or ends and when the server
//! stops, never by a request. (A `watch` channel's `changed()` polled with each connection, as
//! `hyper_util`'s graceful shutdown does, takes the channel's lock at every poll: with
//! connections served on several worker threads, that lock's cache line moves between the cores
//! at every request.)

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};

use futures::task::AtomicWaker;
use hyper_util::server::graceful::GracefulConnection;
use tokio::sync::watch;

/// A server's open connections, and its stop.
pub(crate) struct Connections {
    shared: Arc<Registry>,
    /// Closed when the last connection's [`Watch`] is dropped (each holds a receiver).
    drained: watch::Sender<()>,
}

struct Registry {
    stopping: AtomicBool,
    wakers: Mutex<Wakers>,
}

#[derive(Default)]
struct Wakers {
    next: u64,
    by_connection: HashMap<u64, Arc<AtomicWaker>>,
}

impl Connections {
    pub(crate) fn new() -> Self {
        Self {
            shared: Arc::new(Registry {
                stopping: AtomicBool::new(false),
                wakers: Mutex::default(),
            }),
            drained: watch::Sender::new(()),
        }
    }

    /// Registers a new connection: its [`Watch`], to hold until it ends.
    pub(crate) fn watch(&self) -> Watch {
        let waker = Arc::new(AtomicWaker::new());
        let key = {
            let mut wakers = self.shared.lock();
            let key = wakers.next;
            wakers.next += 1;
            wakers.by_connection.insert(key, waker.clone());
            key
        };
        Watch {
            shared: self.shared.clone(),
            key,
            waker,
            _open: self.drained.subscribe(),
        }
    }

    /// Tells every connection to finish (see the module's documentation), and returns once every
    /// one has ended.
    pub(crate) async fn stop(self) {
        self.shared.stopping.store(true, Ordering::SeqCst);
        let wakers: Vec<_> = self.shared.lock().by_connection.values().cloned().collect();
        for waker in wakers {
            waker.wake();
        }
        self.drained.closed().await;
    }
}

impl Registry {
    fn lock(&self) -> std::sync::MutexGuard<'_, Wakers> {
        self.wakers.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// One connection's place in [`Connections`], held until it ends.
pub(crate) struct Watch {
    shared: Arc<Registry>,
    key: u64,
    waker: Arc<AtomicWaker>,
    _open: watch::Receiver<()>,
}

impl Watch {
    /// `connection`, told to finish gracefully when the server stops.
    pub(crate) fn watch<C: GracefulConnection>(self, connection: C) -> Graceful<C> {
        Graceful {
            connection,
            watch: self,
            told: false,
        }
    }

    /// Whether the server is stopping; if not, the task of `cx` is woken when it starts to.
    fn stopping(&self, cx: &Context<'_>) -> bool {
        self.waker.register(cx.waker());
        self.shared.stopping.load(Ordering::SeqCst)
    }
}

impl Drop for Watch {
    fn drop(&mut self) {
        self.shared.lock().by_connection.remove(&self.key);
    }
}

pin_project_lite::pin_project! {
    /// A connection that finishes gracefully when its server stops (see [`Watch::watch`]).
    pub(crate) struct Graceful<C> {
        #[pin]
        connection: C,
        watch: Watch,
        told: bool,
    }
}

impl<C: GracefulConnection> Future for Graceful<C> {
    type Output = C::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut this = self.project();
        if !*this.told && this.watch.stopping(cx) {
            *this.told = true;
            this.connection.as_mut().graceful_shutdown();
        }
        this.connection.poll(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn stop_returns_once_every_watch_is_dropped() {
        let connections = Connections::new();
        let first = connections.watch();
        let second = connections.watch();
        assert_eq!(connections.shared.lock().by_connection.len(), 2);
        drop(first);
        assert_eq!(connections.shared.lock().by_connection.len(), 1);
        let shared = connections.shared.clone();
        let stopping = tokio::spawn(connections.stop());
        tokio::task::yield_now().await;
        assert!(!stopping.is_finished());
        assert!(shared.stopping.load(Ordering::SeqCst));
        drop(second);
        stopping.await.unwrap();
        assert!(shared.lock().by_connection.is_empty());
    }

    #[tokio::test]
    async fn a_connection_waiting_is_woken_by_the_stop() {
        let connections = Connections::new();
        let watch = connections.watch();
        let waiting = tokio::spawn(async move {
            std::future::poll_fn(|cx| {
                if watch.stopping(cx) {
                    Poll::Ready(())
                } else {
                    Poll::Pending
                }
            })
            .await;
        });
        tokio::task::yield_now().await;
        assert!(!waiting.is_finished());
        connections.stop().await;
        waiting.await.unwrap();
    }
}
