//! Handles to started operations.

use std::fmt;
use std::marker::PhantomData;
use std::sync::Arc;

use tokio::sync::watch;
use tokio::time::Instant;

use super::pending::Outcome;
use super::{CancellationType, Client};
use crate::codec;
use crate::error::{CallError, TimeoutKind};
use crate::link::Link;
use crate::operation::Operation;
use crate::transport::CancelRequest;

/// A started operation: its token, its result when it comes, and a way to cancel it.
///
/// Cloning a handle is cheap; all clones see the same operation. Dropping every handle (or the
/// future awaiting the result) *abandons* the operation: no cancel request is sent and the handler
/// keeps running it, as Temporal does for a terminated caller. Call [`cancel`](Self::cancel) to
/// stop it.
pub struct OperationHandle<Op: Operation> {
    shared: Arc<Shared>,
    _op: PhantomData<fn() -> Op>,
}

impl<Op: Operation> Clone for OperationHandle<Op> {
    fn clone(&self) -> Self {
        Self {
            shared: self.shared.clone(),
            _op: PhantomData,
        }
    }
}

pub(crate) struct Shared {
    pub client: Client,
    pub endpoint: String,
    pub service: &'static str,
    pub operation: &'static str,
    pub request_id: String,
    pub token: Option<String>,
    pub start_links: Vec<Link>,
    pub outcome: Arc<watch::Sender<Outcome>>,
    pub pending_id: Option<String>,
    pub deadline: Option<Instant>,
    pub cancellation_type: CancellationType,
}

impl Drop for Shared {
    fn drop(&mut self) {
        if let Some(id) = &self.pending_id {
            self.client.pending().remove(id);
        }
    }
}

impl<Op: Operation> fmt::Debug for OperationHandle<Op> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OperationHandle")
            .field("service", &self.shared.service)
            .field("operation", &self.shared.operation)
            .field("request_id", &self.shared.request_id)
            .field("token", &self.shared.token)
            .finish_non_exhaustive()
    }
}

impl<Op: Operation> OperationHandle<Op> {
    pub(crate) fn new(shared: Shared) -> Self {
        Self {
            shared: Arc::new(shared),
            _op: PhantomData,
        }
    }

    /// The operation token, for an operation the handler runs asynchronously; `None` when it
    /// answered synchronously.
    pub fn token(&self) -> Option<&str> {
        self.shared.token.as_deref()
    }

    /// The request id the operation was started with.
    pub fn request_id(&self) -> &str {
        &self.shared.request_id
    }

    /// Whether the handler answered synchronously (the result is already here).
    pub fn is_sync(&self) -> bool {
        self.shared.token.is_none()
    }

    /// Whether the outcome is known.
    pub fn is_done(&self) -> bool {
        self.shared.outcome.borrow().is_some()
    }

    /// Links the handler returned with the start response.
    pub fn start_links(&self) -> &[Link] {
        &self.shared.start_links
    }

    /// Links the handler sent with the completion, once it arrived.
    pub fn completion_links(&self) -> Vec<Link> {
        self.shared
            .outcome
            .borrow()
            .as_ref()
            .map(|(_, links)| links.clone())
            .unwrap_or_default()
    }

    /// Waits for the result. Returns at once for a sync operation; for an async one, when the
    /// completion arrives, the caller cancels, or the schedule-to-close timeout expires.
    pub async fn result(&self) -> Result<Op::Output, CallError> {
        let mut rx = self.shared.outcome.subscribe();
        let wait = rx.wait_for(Option::is_some);
        let outcome = match self.shared.deadline {
            Some(deadline) => match tokio::time::timeout_at(deadline, wait).await {
                Ok(v) => v,
                Err(_) => {
                    return Err(CallError::Timeout {
                        kind: TimeoutKind::ScheduleToClose,
                        last_failure: None,
                    });
                }
            },
            None => wait.await,
        };
        let content = match outcome {
            Ok(guard) => match guard.as_ref() {
                Some((result, _)) => result.clone()?,
                None => return Err(CallError::Invalid("outcome vanished".into())),
            },
            Err(_) => return Err(CallError::Invalid("the client was dropped".into())),
        };
        codec::decode::<Op::Output>(&content).map_err(|e| {
            CallError::Codec(format!("cannot decode the output of `{}`: {e}", Op::NAME))
        })
    }

    /// Cancels the operation according to its [`CancellationType`]:
    /// - `Abandon`: no request is sent; waiting callers get [`CallError::Canceled`] at once.
    /// - `TryCancel`: a cancel request is sent in the background; waiting callers get
    ///   [`CallError::Canceled`] at once.
    /// - `WaitRequested`: returns once the handler acknowledged the request; waiting callers then
    ///   get [`CallError::Canceled`].
    /// - `WaitCompleted` (default): returns once the handler acknowledged the request; waiting
    ///   callers keep waiting for the operation's completion.
    ///
    /// Canceling an operation that already finished does nothing.
    pub async fn cancel(&self) -> Result<(), CallError> {
        if self.is_done() {
            return Ok(());
        }
        let Some(token) = self.shared.token.clone() else {
            return Ok(());
        };
        let request = CancelRequest {
            service: self.shared.service.to_owned(),
            operation: self.shared.operation.to_owned(),
            token,
            headers: Default::default(),
            request_deadline: None,
        };
        match self.shared.cancellation_type {
            CancellationType::Abandon => {
                self.resolve_canceled();
                Ok(())
            }
            CancellationType::TryCancel => {
                let client = self.shared.client.clone();
                let endpoint = self.shared.endpoint.clone();
                tokio::spawn(async move {
                    if let Err(e) = client.send_cancel(&endpoint, request).await {
                        tracing::warn!(error = %e, "try-cancel request failed");
                    }
                });
                self.resolve_canceled();
                Ok(())
            }
            CancellationType::WaitRequested => {
                self.shared
                    .client
                    .send_cancel(&self.shared.endpoint, request)
                    .await?;
                self.resolve_canceled();
                Ok(())
            }
            CancellationType::WaitCompleted => {
                self.shared
                    .client
                    .send_cancel(&self.shared.endpoint, request)
                    .await
            }
        }
    }

    fn resolve_canceled(&self) {
        self.shared.outcome.send_if_modified(|current| {
            if current.is_none() {
                *current = Some((Err(CallError::Canceled), Vec::new()));
                true
            } else {
                false
            }
        });
        if let Some(id) = &self.shared.pending_id {
            self.shared.client.pending().remove(id);
        }
    }
}
