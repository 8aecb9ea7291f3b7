//! Cancel requests: sent to the target that started the operation, through the same breaker and
//! limits as starts, and retried like them.

use std::pin::pin;
use std::sync::Arc;
use std::time::Duration;

use crate::client::record_cell;
use crate::observe::spans::InSpan as _;
use tokio::time::Instant;

use super::Record;
use crate::client::info::{CancelState, CancellationInfo};
use crate::client::key::OperationKey;
use crate::client::{Client, EndpointState};
use crate::error::CallError;
use crate::machinery::{
    Admission, AttemptCall, AttemptError, AttemptResponse, BREAKER_OPEN_REASON, Backing,
    RetryPolicy, RetrySchedule, Try, retry,
};
use crate::observe::{self, TraceContext, outcome, spans};
use crate::operation::Headers;
use crate::transport::CancelRequest;

/// Everything a cancel request needs, owned so it runs beside the driver's other waits.
pub(super) struct CancelLoop {
    pub client: Client,
    pub endpoint: Arc<EndpointState>,
    pub record: record_cell::Sender<Record>,
    pub retry: RetryPolicy,
    pub target: usize,
    pub key: Arc<OperationKey>,
    pub token: String,
    pub headers: Headers,
    pub request_timeout: Duration,
    pub cap: Option<Instant>,
    /// The operation's `nexus.call` span, and the trace context it inherited.
    pub span: tracing::Span,
    pub trace: Option<TraceContext>,
}

impl CancelLoop {
    /// Sends the cancel request until the handler acknowledges it (`Ok`), or it fails with a
    /// non-retryable error or runs out of attempts (`Err`).
    pub async fn run(self) -> Result<(), CallError> {
        let schedule = RetrySchedule::of_policy(&self.retry, self.client.jitter());
        let this = &self;
        retry(
            schedule,
            move |attempt| this.attempt(attempt),
            |backing| this.backing_off(backing),
        )
        .await
        .result
    }

    /// Attempt number `attempt`: waits until the target's breaker admits it, then sends it.
    async fn attempt(&self, attempt: u32) -> Try<(), CallError> {
        let admitted = loop {
            let mut changed = pin!(self.endpoint.targets.changed().notified());
            changed.as_mut().enable();
            match self.endpoint.targets.admit_to(self.target) {
                Admission::Admitted(admitted) => break admitted,
                Admission::Wait { until } => {
                    self.update(|c| c.block(BREAKER_OPEN_REASON, until));
                    match until {
                        Some(at) => tokio::select! {
                            () = changed => {}
                            () = tokio::time::sleep_until(at) => {}
                        },
                        None => changed.await,
                    }
                }
            }
        };
        self.update(|c| {
            c.set_state(CancelState::Scheduled);
            c.next_attempt_at = None;
            c.attempt = attempt;
        });
        let span = spans::cancel_attempt(&self.span, attempt);
        let mut headers = self.headers.clone();
        observe::inject(&span, self.trace.as_ref(), &mut headers);
        let request = CancelRequest {
            service: self.key.service.to_string(),
            operation: self.key.operation.to_string(),
            token: self.token.clone(),
            headers,
            request_deadline: None,
        };
        let result = self
            .endpoint
            .attempt(
                admitted,
                AttemptCall::Cancel(request),
                self.request_timeout,
                self.cap,
                None,
            )
            .in_span(span.clone())
            .await;
        match &result {
            Ok(_) => spans::record(&span, "nexus.outcome", "requested"),
            Err(AttemptError::Overloaded(e)) => {
                spans::record(&span, "nexus.outcome", outcome::HandlerErrorLabel(e));
            }
            Err(AttemptError::Call(e)) => {
                spans::record(&span, "nexus.outcome", outcome::CallErrorLabel(e));
            }
        }
        match result {
            Ok(AttemptResponse::CancelRequested) => Try::Done(()),
            Ok(AttemptResponse::Started(_)) => Try::Fail(CallError::Invalid(
                "the transport answered a cancel request as a start request".into(),
            )),
            // The local queue was full: the request was not sent; try again later.
            Err(AttemptError::Overloaded(e)) => Try::Retry(CallError::Handler(e)),
            Err(AttemptError::Call(e)) if e.is_retryable() => Try::Retry(e),
            Err(AttemptError::Call(e)) => Try::Fail(e),
        }
    }

    /// Shows a failed attempt and when the next one goes.
    fn backing_off(&self, backing: Backing<CallError>) {
        let Backing {
            attempt,
            next,
            error,
            ..
        } = backing;
        tracing::debug!(operation = %self.key.operation, %error, attempt, "cancel attempt failed; backing off");
        self.update(|c| {
            c.set_state(CancelState::BackingOff);
            c.next_attempt_at = Some(next);
            c.last_failure = Some(error);
        });
    }

    fn update(&self, change: impl FnOnce(&mut CancellationInfo)) {
        self.record.send_modify(|record| {
            if let Some(c) = record.info.cancellation.as_mut() {
                change(c);
            }
        });
    }
}
