//! The start phase: attempts until the operation started, answered synchronously, or failed.

use std::pin::pin;
use std::sync::Arc;

use tokio::time::Instant;

use super::{Driver, Event, Flow, Step};
use crate::client::CancellationType;
use crate::client::info::{CancelState, OperationState};
use crate::client::pending::PendingSink;
use crate::codec::Content;
use crate::completion::Callback;
use crate::error::CallError;
use crate::link::Link;
use crate::machinery::{
    Admission, Admitted, AttemptCall, AttemptError, AttemptResponse, BREAKER_OPEN_REASON,
    RetrySchedule,
};
use crate::observe::spans::InSpan as _;
use crate::observe::{self, outcome, spans};
use crate::transport::{StartRequest, StartResponse};

impl Driver {
    /// Attempts to start the operation; `wait` is when the first attempt may go (a backoff
    /// recorded before a restart).
    pub(super) async fn start_phase(&mut self, mut wait: Option<Instant>) -> Flow {
        loop {
            if let Some(at) = wait.take() {
                let mut sleep = pin!(tokio::time::sleep_until(at));
                if let Step::Event(event) = self.race(sleep.as_mut()).await {
                    return self.on_idle_event(event).await;
                }
            }
            if let Some(event) = self.take_queued() {
                return self.on_idle_event(event).await;
            }
            let admitted = match self.admit().await {
                Ok(admitted) => admitted,
                Err(event) => return self.on_idle_event(event).await,
            };
            let target = admitted.index;
            self.publish(|record| {
                record.info.attempt += 1;
                record.info.set_state(OperationState::Scheduled);
                record.info.next_attempt_at = None;
            })
            .await;
            if self.halt.is_some() {
                return Flow::End;
            }
            let attempt = self.record.borrow().info.attempt;
            let now = Instant::now();
            let span = spans::attempt(&spans::current_call(), attempt);
            let request = self.start_request(target, &span);
            // Pinned where it is made; the span wraps the pin, so the attempt's future is not
            // moved into the wrapper.
            let future = pin!(self.endpoint.attempt(
                admitted,
                AttemptCall::Start(request),
                self.deadlines.request,
                self.deadlines.next().map(|(at, _)| at),
                self.deadlines.operation_deadline(now),
            ));
            let mut future = pin!(future.in_span(span.clone()));
            let result = loop {
                match self.race(future.as_mut()).await {
                    Step::Done(result) => break result,
                    Step::Event(Event::Timeout(kind)) => {
                        self.time_out(kind).await;
                        return Flow::End;
                    }
                    Step::Event(Event::Completion(stored)) => {
                        self.complete(*stored);
                        return Flow::End;
                    }
                    Step::Event(Event::Halted) => return Flow::End,
                    Step::Event(Event::Abandoned) if !self.cancel_requested => {
                        self.abandon().await;
                        return Flow::End;
                    }
                    Step::Event(Event::Abandoned) => {}
                    Step::Event(Event::Cancel(waiter)) => {
                        // An attempt is in flight: it may start the operation, so its answer is
                        // awaited (except when abandoning) to cancel what it started.
                        self.note_cancel_request(waiter).await;
                        match self.spec.cancellation_type {
                            CancellationType::Abandon => {
                                self.resolve_canceled(Some(CancelState::NotSent)).await;
                                return Flow::End;
                            }
                            CancellationType::TryCancel => self.resolve_canceled(None).await,
                            CancellationType::WaitRequested | CancellationType::WaitCompleted => {}
                        }
                    }
                }
            };
            record_attempt(&span, &result);
            let error = match result {
                Ok(AttemptResponse::Started(StartResponse::Sync { output, links })) => {
                    // One transition: started and succeeded at once.
                    let now = Instant::now();
                    let cancel_requested = self.cancel_requested;
                    self.publish(|record| {
                        record.info.start_links = links;
                        record.info.started_at = Some(now);
                        record.info.target = Some(target);
                        record.info.last_failure = None;
                        if cancel_requested && let Some(c) = record.info.cancellation.as_mut() {
                            c.set_state(CancelState::NotSent);
                            c.next_attempt_at = None;
                        }
                        if record.outcome.is_none() {
                            record.outcome = Some(Box::new(Ok(output)));
                            record.info.set_state(OperationState::Succeeded);
                            record.info.next_attempt_at = None;
                            record.info.closed_at = Some(now);
                        }
                    })
                    .await;
                    for waiter in self.take_cancel_waiters() {
                        let _ = waiter.send(Ok(()));
                    }
                    return Flow::End;
                }
                Ok(AttemptResponse::Started(StartResponse::Async { token, links })) => {
                    self.mark_started(target, token, links).await;
                    if self.halt.is_some() {
                        return Flow::End;
                    }
                    return Flow::Started(target);
                }
                Ok(AttemptResponse::CancelRequested) => CallError::Invalid(
                    "the transport answered a start request as a cancel request".into(),
                ),
                Err(AttemptError::Overloaded(e)) => {
                    // The local queue is full: the request was never sent; fail at once.
                    self.fail(CallError::Handler(e)).await;
                    return Flow::End;
                }
                Err(AttemptError::Call(e)) => e,
            };
            if self.cancel_requested {
                self.resolve_canceled(Some(CancelState::NotSent)).await;
                return Flow::End;
            }
            let schedule = RetrySchedule::of_policy(&self.spec.retry, self.client.jitter());
            let Some(delay) = error
                .is_retryable()
                .then(|| schedule.next_delay(attempt))
                .flatten()
            else {
                tracing::debug!(operation = %self.key.operation, %error, attempt, "start failed");
                self.fail(error).await;
                return Flow::End;
            };
            let next = Instant::now() + delay;
            spans::record(&span, "nexus.next_delay_ms", delay.as_millis());
            observe::metrics::outbound_retry(
                &self.endpoint.name,
                &self.key.service,
                &self.key.operation,
            );
            tracing::debug!(
                operation = %self.key.operation,
                %error,
                attempt,
                ?delay,
                "start attempt failed; backing off"
            );
            self.publish(|record| {
                record.info.set_state(OperationState::BackingOff);
                record.info.next_attempt_at = Some(next);
                record.info.last_failure = Some(Box::new(error));
            })
            .await;
            wait = Some(next);
        }
    }

    /// Waits until a target's breaker admits the next attempt, showing the operation as blocked
    /// meanwhile.
    ///
    /// An operation with a deadline is not held back past its last chance: when the time it has
    /// left falls to its attempt timeout (or to half of what it had left on arrival, if less), it
    /// goes through as the probe of an open breaker (see [`BreakerConfig`]).
    ///
    /// [`BreakerConfig`]: crate::machinery::BreakerConfig
    async fn admit(&mut self) -> Result<Admitted, Event> {
        let endpoint = self.endpoint.clone();
        let last_chance = self.deadlines.next().map(|(deadline, _)| {
            let left = deadline.saturating_duration_since(Instant::now());
            deadline - self.deadlines.request.min(left / 2)
        });
        loop {
            let mut changed = pin!(endpoint.targets.changed().notified());
            changed.as_mut().enable();
            let admission = match last_chance {
                Some(at) if Instant::now() >= at => endpoint.targets.admit_last_chance(),
                _ => endpoint.targets.admit(),
            };
            let until = match admission {
                Admission::Admitted(admitted) => return Ok(admitted),
                Admission::Wait { until } => until,
            };
            self.publish(|record| {
                record.info.block(BREAKER_OPEN_REASON, until);
            })
            .await;
            let wake_at = match last_chance.filter(|at| *at > Instant::now()) {
                Some(chance) => Some(until.map_or(chance, |u| u.min(chance))),
                None => until,
            };
            let wake = async move {
                match wake_at {
                    Some(at) => tokio::time::sleep_until(at).await,
                    None => std::future::pending().await,
                }
            };
            let mut woken = pin!(async {
                tokio::select! {
                    () = changed => {}
                    () = wake => {}
                }
            });
            if let Step::Event(event) = self.race(woken.as_mut()).await {
                return Err(event);
            }
        }
    }

    /// The start request of an attempt made inside `span` (its trace context in the headers).
    fn start_request(&self, target: usize, span: &tracing::Span) -> StartRequest {
        let callback = if self.endpoint.targets.needs_callback_url(target) {
            let url = format!(
                "{}/{}",
                self.client.callback_base().unwrap_or_default(),
                self.id
            );
            Callback::Url {
                url: match &self.spec.callback_secret {
                    Some(secret) => secret.sign_url(&url),
                    None => url,
                },
                headers: Default::default(),
            }
        } else {
            Callback::Local(Arc::new(PendingSink {
                inbox: self.client.inbox(),
                id: self.id,
                waker: self.waker.clone(),
            }))
        };
        let body = self.spec.start.as_deref();
        let mut headers = self.spec.headers.clone();
        observe::inject(span, self.spec.trace.as_deref(), &mut headers);
        StartRequest {
            service: self.key.service.to_string(),
            operation: self.key.operation.to_string(),
            request_id: self.key.request_id.to_string(),
            headers,
            links: body.map(|body| body.links.clone()).unwrap_or_default(),
            callback: Some(callback),
            request_deadline: None,
            operation_timeout: None,
            input: body.map_or_else(Content::empty, |body| body.input.clone()),
        }
    }

    async fn mark_started(&mut self, target: usize, token: String, links: Vec<Link>) {
        let now = Instant::now();
        self.deadlines.started = Some(now);
        // No start request follows: the driver's copies of the input and of the links sent with
        // it are not needed any more (the store keeps the operation's).
        self.spec.start = None;
        tracing::debug!(operation = %self.key.operation, %token, "operation started");
        spans::record(&spans::current_call(), "nexus.token", &token);
        self.publish(|record| {
            record.info.start_links = links;
            record.info.token = Some(token);
            record.info.target = Some(target);
            record.info.started_at = Some(now);
            record.info.next_attempt_at = None;
            if record.outcome.is_none() {
                record.info.set_state(OperationState::Started);
            }
        })
        .await;
    }
}

/// Records how an attempt ended on its span.
fn record_attempt(span: &tracing::Span, result: &Result<AttemptResponse, AttemptError>) {
    match result {
        Ok(AttemptResponse::Started(StartResponse::Sync { .. })) => {
            spans::record(span, "nexus.outcome", "sync");
        }
        Ok(AttemptResponse::Started(StartResponse::Async { .. })) => {
            spans::record(span, "nexus.outcome", "async");
        }
        Ok(AttemptResponse::CancelRequested) => spans::record(span, "nexus.outcome", "invalid"),
        Err(AttemptError::Overloaded(e)) => {
            spans::record(span, "nexus.outcome", outcome::HandlerErrorLabel(e));
        }
        Err(AttemptError::Call(e)) => {
            spans::record(span, "nexus.outcome", outcome::CallErrorLabel(e));
        }
    }
}
