//! Cancel requests: sent to the target that started the operation, through the same breaker and
//! limits as starts, and retried like them.

use std::pin::pin;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tokio::time::Instant;
use tracing::Instrument as _;

use super::Record;
use crate::client::info::{CancelState, CancellationInfo};
use crate::client::{Client, EndpointState};
use crate::error::CallError;
use crate::machinery::{
    Admission, AttemptCall, AttemptError, AttemptResponse, BREAKER_OPEN_REASON, RetryPolicy,
};
use crate::observe::{self, TraceContext, outcome, spans};
use crate::operation::Headers;
use crate::transport::CancelRequest;

/// Everything a cancel request needs, owned so it runs beside the driver's other waits.
pub(super) struct CancelLoop {
    pub client: Client,
    pub endpoint: Arc<EndpointState>,
    pub record: Arc<watch::Sender<Record>>,
    pub retry: RetryPolicy,
    pub target: usize,
    pub service: Arc<str>,
    pub operation: Arc<str>,
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
        let mut attempt: u32 = 0;
        loop {
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
            attempt += 1;
            self.update(|c| {
                c.set_state(CancelState::Scheduled);
                c.next_attempt_at = None;
            });
            self.record.send_modify(|record| {
                if let Some(c) = record.info.cancellation.as_mut() {
                    c.attempt = attempt;
                }
            });
            let span = spans::cancel_attempt(&self.span, attempt);
            let mut headers = self.headers.clone();
            observe::inject(&span, self.trace.as_ref(), &mut headers);
            let request = CancelRequest {
                service: self.service.to_string(),
                operation: self.operation.to_string(),
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
                .instrument(span.clone())
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
            let error = match result {
                Ok(AttemptResponse::CancelRequested) => return Ok(()),
                Ok(AttemptResponse::Started(_)) => {
                    return Err(CallError::Invalid(
                        "the transport answered a cancel request as a start request".into(),
                    ));
                }
                // The local queue was full: the request was not sent; try again later.
                Err(AttemptError::Overloaded(e)) => CallError::Handler(e),
                Err(AttemptError::Call(e)) if e.is_retryable() => e,
                Err(AttemptError::Call(e)) => return Err(e),
            };
            if !self.retry.allows_attempt(attempt + 1) {
                return Err(error);
            }
            let next = Instant::now()
                + self
                    .retry
                    .delay(attempt, self.client.jitter().next_fraction());
            tracing::debug!(operation = %self.operation, %error, attempt, "cancel attempt failed; backing off");
            self.record.send_modify(|record| {
                if let Some(c) = record.info.cancellation.as_mut() {
                    c.set_state(CancelState::BackingOff);
                    c.next_attempt_at = Some(next);
                    c.last_failure = Some(error);
                }
            });
            tokio::time::sleep_until(next).await;
        }
    }

    fn update(&self, change: impl FnOnce(&mut CancellationInfo)) {
        self.record.send_modify(|record| {
            if let Some(c) = record.info.cancellation.as_mut() {
                change(c);
            }
        });
    }
}
