//! The started phase: an async operation waits for its completion, and carries out the caller's
//! cancellation according to its cancellation type.

use std::future::Future;
use std::ops::ControlFlow;
use std::pin::Pin;

use super::cancel::CancelLoop;
use super::{Driver, Event, Step};
use crate::client::CancellationType;
use crate::client::info::CancelState;
use crate::error::CallError;

type CancelFuture = Pin<Box<dyn Future<Output = Result<(), CallError>> + Send>>;

impl Driver {
    /// Waits for the completion, and carries out cancellations. The transitions that end the
    /// wait are boxed: the future of a pending operation is mostly this wait, and should not
    /// hold room for the larger state of a transition being recorded.
    pub(super) async fn started_phase(&mut self, target: usize) {
        let mut cancel: Option<CancelFuture> = None;
        if self.cancel_requested {
            // Canceled while the start request was in flight.
            cancel = Box::pin(self.begin_cancel(target)).await;
            if cancel.is_none() {
                return;
            }
        }
        loop {
            let step = match cancel.as_mut() {
                Some(future) => self.race(future.as_mut()).await,
                None => {
                    let mut idle = std::pin::pin!(std::future::pending::<Result<(), CallError>>());
                    self.race(idle.as_mut()).await
                }
            };
            // Handled by a future of its own: a step (and the error it may carry) kept across
            // the awaits that handle it would take room in this wait's future, which is most of
            // a pending operation's task.
            let handle = Box::pin(self.on_step(step, &mut cancel, target));
            if handle.await.is_break() {
                return;
            }
        }
    }

    /// Carries out what the wait returned; `Break` once the started phase is over.
    async fn on_step(
        &mut self,
        step: Step<Result<(), CallError>>,
        cancel: &mut Option<CancelFuture>,
        target: usize,
    ) -> ControlFlow<()> {
        match step {
            Step::Done(result) => {
                *cancel = None;
                self.cancel_finished(result).await;
                if self.is_resolved() {
                    return ControlFlow::Break(());
                }
                if !self.commands_open {
                    // Nobody waits for the completion any more.
                    self.abandon().await;
                    return ControlFlow::Break(());
                }
            }
            Step::Event(Event::Timeout(kind)) => {
                self.time_out(kind).await;
                return ControlFlow::Break(());
            }
            Step::Event(Event::Completion(stored)) => {
                self.complete(*stored);
                return ControlFlow::Break(());
            }
            Step::Event(Event::Halted) => return ControlFlow::Break(()),
            Step::Event(Event::Abandoned) => {
                if cancel.is_none() {
                    self.abandon().await;
                    return ControlFlow::Break(());
                }
            }
            Step::Event(Event::Cancel(waiter)) => {
                let first = !self.cancel_requested;
                self.note_cancel_request(waiter).await;
                let acknowledged = self
                    .record
                    .borrow()
                    .info
                    .cancellation
                    .as_ref()
                    .is_some_and(|c| c.state == CancelState::Succeeded);
                if acknowledged {
                    // Already requested and acknowledged (WaitCompleted): nothing more to do.
                    for waiter in self.take_cancel_waiters() {
                        let _ = waiter.send(Ok(()));
                    }
                } else if first || cancel.is_none() {
                    *cancel = self.begin_cancel(target).await;
                    if cancel.is_none() {
                        return ControlFlow::Break(());
                    }
                }
            }
        }
        ControlFlow::Continue(())
    }

    /// Starts carrying out a cancellation of the started operation; `None` when it ended the
    /// operation at once (abandon).
    async fn begin_cancel(&mut self, target: usize) -> Option<CancelFuture> {
        match self.spec.cancellation_type {
            CancellationType::Abandon => {
                self.resolve_canceled(Some(CancelState::NotSent)).await;
                return None;
            }
            CancellationType::TryCancel => self.resolve_canceled(None).await,
            CancellationType::WaitRequested | CancellationType::WaitCompleted => {}
        }
        let token = self.record.borrow().info.token.clone().unwrap_or_default();
        let cancel = CancelLoop {
            client: self.client.clone(),
            endpoint: self.endpoint.clone(),
            record: self.record.clone(),
            retry: (*self.spec.retry).clone(),
            target,
            key: self.key.clone(),
            token,
            headers: self.spec.headers.clone(),
            request_timeout: self.deadlines.request,
            cap: self.deadlines.next().map(|(at, _)| at),
            span: crate::observe::spans::current_call(),
            trace: self.spec.trace.as_deref().cloned(),
        };
        Some(Box::pin(cancel.run()))
    }

    /// The cancel request was acknowledged, or failed for good.
    async fn cancel_finished(&mut self, result: Result<(), CallError>) {
        match result {
            Ok(()) => {
                self.set_cancel_state(CancelState::Succeeded).await;
                if self.spec.cancellation_type == CancellationType::WaitRequested {
                    self.resolve_canceled(None).await;
                }
                for waiter in self.take_cancel_waiters() {
                    let _ = waiter.send(Ok(()));
                }
            }
            Err(error) => {
                tracing::warn!(
                    operation = %self.key.operation,
                    %error,
                    "cancel request failed"
                );
                self.set_cancel_state(CancelState::Failed).await;
                self.publish(|record| {
                    if let Some(c) = record.info.cancellation.as_mut() {
                        c.last_failure = Some(error.clone());
                    }
                })
                .await;
                for waiter in self.take_cancel_waiters() {
                    let _ = waiter.send(Err(error.clone()));
                }
                // A later cancel() tries again.
                self.cancel_requested = false;
            }
        }
    }
}
