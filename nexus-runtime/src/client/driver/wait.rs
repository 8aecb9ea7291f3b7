//! How a driver waits: for what it awaits (an attempt, a cancel request, nothing), or for
//! whatever interrupts the operation first (a timeout, a cancellation, every handle dropped, the
//! completion, a halt). The wait is where a pending operation spends its life, so it is a
//! hand-polled future holding pointers only.

use std::future::Future;
use std::ops::ControlFlow;
use std::pin::Pin;
use std::task::Poll;

use tokio::time::Instant;

use super::{Command, Driver, Event, Halt, Step};
use crate::client::pending::{Inbound, Wake};
use crate::error::TimeoutKind;

/// What ended a driver's wait, before the driver makes sense of it.
enum Raw<T> {
    Timeout(TimeoutKind),
    Scope,
    Command(Command),
    /// Every handle is gone.
    Abandoned,
    Wake(Wake),
    Poll,
    Done(T),
}

impl Driver {
    /// The next event found without waiting: a halt, or one the store revealed.
    pub(super) fn take_queued(&mut self) -> Option<Event> {
        if self.halt.is_some() {
            return Some(Event::Halted);
        }
        self.backlog.as_mut()?.queued.pop_front()
    }

    /// Whether nothing would interrupt a wait now, as [`race`](Self::race) orders them: no
    /// deadline due, the enclosing scope not canceled, no command or wake queued and no news of
    /// the handles' end to tell.
    fn nothing_interrupts(&self) -> bool {
        self.deadlines
            .next()
            .is_none_or(|(at, _)| Instant::now() < at)
            && !self
                .scope_cancel
                .as_ref()
                .is_some_and(tokio_util::sync::CancellationToken::is_cancelled)
            && self.inbox.would_wait()
    }

    /// Waits for `future`, or for whatever interrupts the operation first: a timeout, a
    /// cancellation (by a handle, the enclosing handler's scope, or recorded in the store), every
    /// handle dropped, the completion, or a halt. On a tie the timeout wins, then cancellation.
    pub(super) async fn race<F: Future + ?Sized>(
        &mut self,
        mut future: Pin<&mut F>,
    ) -> Step<F::Output> {
        loop {
            if let Some(event) = self.take_queued() {
                return Step::Event(event);
            }
            // An answer ready at once (in process) with nothing to interrupt it is what the
            // wait below would return, without setting up its timers.
            if self.nothing_interrupts()
                && let Poll::Ready(out) =
                    std::future::poll_fn(|cx| Poll::Ready(future.as_mut().poll(cx))).await
            {
                return Step::Done(out);
            }
            let raw = self.wait(future.as_mut()).await;
            // Made sense of by a plain function: what the wait returned is not kept across the
            // reconciliation's await, so it takes no room in this future.
            let reconcile = match self.on_wait(raw) {
                ControlFlow::Break(step) => return step,
                ControlFlow::Continue(reconcile) => reconcile,
            };
            if reconcile {
                // Boxed: it reads the store, and only with replicas.
                Box::pin(self.reconcile()).await;
            }
        }
    }

    /// What the wait's answer means: a step to return, or another wait (after reconciling
    /// with the store, when `true`).
    fn on_wait<T>(&mut self, raw: Raw<T>) -> ControlFlow<Step<T>, bool> {
        ControlFlow::Break(match raw {
            Raw::Timeout(kind) => Step::Event(Event::Timeout(kind)),
            Raw::Scope => {
                self.scope_cancel = None;
                tracing::debug!(
                    operation = %self.key.operation,
                    "the enclosing operation was canceled; canceling this call"
                );
                Step::Event(Event::Cancel(None))
            }
            Raw::Command(Command::Cancel(reply)) => Step::Event(Event::Cancel(Some(reply))),
            Raw::Abandoned => {
                self.commands_open = false;
                Step::Event(Event::Abandoned)
            }
            // After the completion, nothing a wake says matters.
            Raw::Wake(_) if !self.wakes_open => return ControlFlow::Continue(false),
            Raw::Wake(Wake::Completed(stored)) => Step::Event(Event::Completion(stored)),
            Raw::Wake(Wake::Claimed(stored)) => {
                self.refresh(&stored);
                return ControlFlow::Continue(false);
            }
            Raw::Wake(Wake::Check) | Raw::Poll => return ControlFlow::Continue(true),
            Raw::Wake(Wake::Stop) => {
                self.halt = Some(Halt::Stopped);
                return ControlFlow::Continue(false);
            }
            Raw::Done(out) => Step::Done(out),
        })
    }

    /// The wait of [`race`](Self::race): the first of the deadline, the enclosing scope's
    /// cancellation, a command or wake (in the order they came), `future`, and the store's poll
    /// interval, in this order when several are ready.
    ///
    /// A future of its own, polled by hand: it is where a pending operation spends its life,
    /// so it holds only pointers (the timers and the scope's signal are boxed, and only when
    /// there is one), where a `select!` kept room for every branch's future.
    fn wait<'a, F: Future + ?Sized>(
        &'a mut self,
        mut future: Pin<&'a mut F>,
    ) -> impl Future<Output = Raw<F::Output>> + 'a {
        let mut timer = self
            .deadlines
            .next()
            .map(|(at, kind)| (Box::pin(tokio::time::sleep_until(at)), kind));
        let mut scope = self
            .scope_cancel
            .clone()
            .map(|token| Box::pin(token.cancelled_owned()));
        // How often to re-read the record while waiting (replicas only).
        let mut polled = (self.client.durability().poll_interval())
            .map(|every| Box::pin(tokio::time::sleep(every)));
        std::future::poll_fn(move |cx| {
            if let Some((sleep, kind)) = timer.as_mut()
                && sleep.as_mut().poll(cx).is_ready()
            {
                return Poll::Ready(Raw::Timeout(*kind));
            }
            if let Some(cancelled) = scope.as_mut()
                && cancelled.as_mut().poll(cx).is_ready()
            {
                return Poll::Ready(Raw::Scope);
            }
            if let Poll::Ready(inbound) = self.inbox.poll_recv(cx) {
                return Poll::Ready(match inbound {
                    Some(Inbound::Command(command)) => Raw::Command(command),
                    Some(Inbound::Wake(wake)) => Raw::Wake(wake),
                    None => Raw::Abandoned,
                });
            }
            if let Poll::Ready(out) = future.as_mut().poll(cx) {
                return Poll::Ready(Raw::Done(out));
            }
            if let Some(sleep) = polled.as_mut()
                && sleep.as_mut().poll(cx).is_ready()
            {
                return Poll::Ready(Raw::Poll);
            }
            Poll::Pending
        })
    }
}
