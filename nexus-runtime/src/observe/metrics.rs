//! Metrics (feature `metrics`), emitted through the `metrics` facade: the application installs
//! the recorder (for example `metrics-exporter-prometheus`), the runtime installs none.
//!
//! Without the feature every function here is an empty inline function: a client or handler
//! that does not export metrics pays nothing. With it, nothing is built either until a recorder
//! is installed (the facade would build a key, with an allocation for its labels, on every
//! emission, even for its no-op recorder; a zero-sized recorder is taken for that one). Names,
//! types and labels are listed in the README ("Traces and metrics") and in [`describe`].
//!
//! Latencies are histograms in seconds. Label names follow Temporal's Nexus metrics:
//! `destination` / `nexus_endpoint` (the caller's endpoint name), `nexus_service`,
//! `nexus_operation`, `method`, `outcome`, `state`.

#[cfg(any(feature = "http", feature = "metrics"))]
use std::time::Duration;

#[cfg(feature = "metrics")]
use ::metrics::{counter, gauge, histogram};

/// Whether a recorder is installed (for this thread, or globally): the no-op recorder the facade
/// falls back to is the only zero-sized one, so nothing is built for it (a key costs an
/// allocation even when nobody records it).
#[cfg(feature = "metrics")]
#[inline]
fn active() -> bool {
    ::metrics::with_recorder(|recorder| std::mem::size_of_val(recorder) != 0)
}

/// Label names and values.
#[cfg(feature = "metrics")]
type Labels<const N: usize> = [(&'static str, String); N];

/// `method` of a start request (Temporal's value).
#[cfg(feature = "metrics")]
pub(crate) const START: &str = "StartOperation";
/// `method` of a cancel request.
#[cfg(feature = "metrics")]
pub(crate) const CANCEL: &str = "CancelOperation";
/// `method` of a start request handled here (Temporal's frontend value).
pub(crate) const HANDLE_START: &str = "StartNexusOperation";
/// `method` of a cancel request handled here.
pub(crate) const HANDLE_CANCEL: &str = "CancelNexusOperation";

/// Registers the description and unit of every metric with the installed recorder (the HELP
/// lines of a Prometheus exposition). Call it once after installing the recorder; the metrics
/// work without it.
pub fn describe() {
    #[cfg(feature = "metrics")]
    {
        use ::metrics::{Unit, describe_counter, describe_gauge, describe_histogram};
        describe_counter!(
            "nexus_outbound_requests",
            "Start and cancel requests sent, by outcome"
        );
        describe_histogram!(
            "nexus_outbound_latency",
            Unit::Seconds,
            "Latency of start and cancel requests sent"
        );
        describe_counter!(
            "nexus_outbound_retries",
            "Start requests that failed and will be retried"
        );
        describe_gauge!(
            "nexus_outbound_in_flight",
            "Start and cancel requests awaiting their answer"
        );
        describe_gauge!(
            "nexus_circuit_breaker_state",
            "Circuit breaker of each target: 0 closed, 1 half-open, 2 open"
        );
        describe_gauge!(
            "nexus_pending_operations",
            "Operations of this client not ended yet, by state"
        );
        describe_counter!("nexus_operation_success", "Operations that succeeded");
        describe_counter!("nexus_operation_fail", "Operations that failed");
        describe_counter!("nexus_operation_cancel", "Operations canceled");
        describe_counter!("nexus_operation_timeout", "Operations that timed out");
        describe_histogram!(
            "nexus_operation_schedule_to_close_latency",
            Unit::Seconds,
            "From scheduling an operation to its end"
        );
        describe_counter!(
            "nexus_completion_requests",
            "Completions received by the callback receiver, by outcome"
        );
        describe_counter!(
            "nexus_requests",
            "Start and cancel requests handled, by outcome"
        );
        describe_histogram!(
            "nexus_latency",
            Unit::Seconds,
            "Latency of start and cancel requests handled"
        );
        describe_gauge!(
            "nexus_running_operations",
            "Async operations running in this dispatcher"
        );
        describe_counter!(
            "callback_outbound_requests",
            "Completion deliveries attempted, by outcome"
        );
        describe_histogram!(
            "callback_outbound_latency",
            Unit::Seconds,
            "Latency of completion deliveries"
        );
        describe_gauge!(
            "nexus_outbox_due",
            "Completions found due in the outbox at its last pass"
        );
        describe_counter!(
            "nexus_outbox_failed_deliveries",
            "Outbox deliveries that failed and will be retried"
        );
        describe_counter!("nexus_outbox_dead_deliveries", "Outbox deliveries given up");
    }
}

/// The outcome label of a caller's request, in Temporal's formats (`successful`, `pending`,
/// `handler-error:<TYPE>`, `operation-unsuccessful:<state>`, `request-timeout`,
/// `transport-error`).
#[cfg(feature = "metrics")]
pub(crate) struct Outbound<'a>(pub Result<bool, &'a crate::error::CallError>);

#[cfg(feature = "metrics")]
impl std::fmt::Display for Outbound<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        use crate::error::CallError;
        match self.0 {
            Ok(true) => f.write_str("pending"),
            Ok(false) => f.write_str("successful"),
            Err(CallError::Handler(e)) => write!(f, "handler-error:{}", e.error_type.as_str()),
            Err(CallError::Operation(e)) => {
                write!(f, "operation-unsuccessful:{}", e.state.as_str())
            }
            Err(CallError::Timeout { .. }) => f.write_str("request-timeout"),
            Err(CallError::Transport(_)) => f.write_str("transport-error"),
            Err(_) => f.write_str("unknown-error"),
        }
    }
}

/// Measures one start or cancel request a caller sends: counted in flight while it lives,
/// then in `nexus_outbound_requests` and `nexus_outbound_latency` by [`finish`](Self::finish).
pub(crate) struct Outgoing {
    #[cfg(feature = "metrics")]
    inner: Option<Box<(InFlight, Labels<4>, tokio::time::Instant)>>,
}

impl Outgoing {
    #[inline]
    pub(crate) fn start(endpoint: &str, call: &crate::machinery::AttemptCall) -> Self {
        #[cfg(feature = "metrics")]
        {
            use crate::machinery::AttemptCall;
            if !active() {
                return Self { inner: None };
            }
            let (service, operation, method) = match call {
                AttemptCall::Start(r) => (&r.service, &r.operation, START),
                AttemptCall::Cancel(r) => (&r.service, &r.operation, CANCEL),
            };
            let labels = [
                ("destination", endpoint.to_owned()),
                ("nexus_service", service.clone()),
                ("nexus_operation", operation.clone()),
                ("method", method.to_owned()),
            ];
            Self {
                inner: Some(Box::new((
                    InFlight::new(endpoint),
                    labels,
                    tokio::time::Instant::now(),
                ))),
            }
        }
        #[cfg(not(feature = "metrics"))]
        {
            let _ = (endpoint, call);
            Self {}
        }
    }

    /// The request got `result` (a request never sent, for a full local queue, is not counted).
    #[inline]
    pub(crate) fn finish(
        self,
        result: &Result<crate::machinery::AttemptResponse, crate::machinery::AttemptError>,
    ) {
        #[cfg(feature = "metrics")]
        {
            use crate::machinery::{AttemptError, AttemptResponse};
            use crate::transport::StartResponse;
            let Some(inner) = self.inner else {
                return;
            };
            let (in_flight, labels, started) = *inner;
            drop(in_flight);
            let outcome = match result {
                Ok(AttemptResponse::Started(StartResponse::Async { .. })) => Outbound(Ok(true)),
                Ok(_) => Outbound(Ok(false)),
                Err(AttemptError::Call(e)) => Outbound(Err(e)),
                Err(AttemptError::Overloaded(_)) => return,
            };
            histogram!("nexus_outbound_latency", &labels).record(started.elapsed().as_secs_f64());
            let [destination, service, operation, method] = labels;
            counter!(
                "nexus_outbound_requests",
                &[
                    destination,
                    service,
                    operation,
                    method,
                    ("outcome", outcome.to_string())
                ]
            )
            .increment(1);
        }
        #[cfg(not(feature = "metrics"))]
        let _ = result;
    }
}

/// A start request failed and will be retried.
#[inline]
pub(crate) fn outbound_retry(endpoint: &str, service: &str, operation: &str) {
    #[cfg(feature = "metrics")]
    if active() {
        counter!(
        "nexus_outbound_retries",
        "destination" => endpoint.to_owned(),
        "nexus_service" => service.to_owned(),
        "nexus_operation" => operation.to_owned(),
        )
        .increment(1);
    }
    #[cfg(not(feature = "metrics"))]
    let _ = (endpoint, service, operation);
}

/// Counts a request in flight to `endpoint` while it lives.
#[cfg(feature = "metrics")]
pub(crate) struct InFlight {
    gauge: ::metrics::Gauge,
}

#[cfg(feature = "metrics")]
impl InFlight {
    pub(crate) fn new(endpoint: &str) -> Self {
        let gauge = gauge!("nexus_outbound_in_flight", "destination" => endpoint.to_owned());
        gauge.increment(1.0);
        Self { gauge }
    }
}

#[cfg(feature = "metrics")]
impl Drop for InFlight {
    fn drop(&mut self) {
        self.gauge.decrement(1.0);
    }
}

/// Counts one operation in `nexus_pending_operations` under its current (non-terminal) state
/// (and uncounts it when dropped); counts its end in `nexus_operation_<outcome>` and
/// `nexus_operation_schedule_to_close_latency` when it reaches a terminal state.
pub(crate) struct Pending {
    /// Its labels, when a recorder was installed as it was scheduled (else it is not counted).
    #[cfg(feature = "metrics")]
    labels: Option<Box<Labels<3>>>,
    #[cfg(feature = "metrics")]
    state: Option<&'static str>,
}

impl Pending {
    #[inline]
    pub(crate) fn new(endpoint: &str, service: &str, operation: &str) -> Self {
        #[cfg(feature = "metrics")]
        return Self {
            labels: active().then(|| {
                Box::new([
                    ("nexus_endpoint", endpoint.to_owned()),
                    ("nexus_service", service.to_owned()),
                    ("nexus_operation", operation.to_owned()),
                ])
            }),
            state: None,
        };
        #[cfg(not(feature = "metrics"))]
        {
            let _ = (endpoint, service, operation);
            Self {}
        }
    }

    /// The operation's record (shown to handles) changed: `read` gives its state and when it
    /// was scheduled (called only with the feature).
    #[inline]
    pub(crate) fn update(
        &mut self,
        read: impl FnOnce() -> (crate::state::OperationState, tokio::time::Instant),
    ) {
        #[cfg(feature = "metrics")]
        {
            if self.labels.is_none() {
                return;
            }
            let (state, scheduled_at) = read();
            let name = (!state.is_terminal()).then(|| state.as_str());
            if name == self.state {
                return;
            }
            if let Some(old) = self.state {
                self.gauge(old).decrement(1.0);
                if name.is_none() {
                    self.ended(state, scheduled_at.elapsed());
                }
            }
            if let Some(new) = name {
                self.gauge(new).increment(1.0);
            }
            self.state = name;
        }
        #[cfg(not(feature = "metrics"))]
        let _ = read;
    }

    #[cfg(feature = "metrics")]
    fn gauge(&self, state: &'static str) -> ::metrics::Gauge {
        let endpoint = self
            .labels
            .as_ref()
            .map_or_else(String::new, |l| l[0].1.clone());
        gauge!(
            "nexus_pending_operations",
            "nexus_endpoint" => endpoint,
            "state" => state,
        )
    }

    #[cfg(feature = "metrics")]
    fn ended(&self, state: crate::state::OperationState, elapsed: Duration) {
        use crate::state::OperationState as S;
        let name = match state {
            S::Succeeded => "nexus_operation_success",
            S::Failed => "nexus_operation_fail",
            S::Canceled => "nexus_operation_cancel",
            S::TimedOut => "nexus_operation_timeout",
            _ => return,
        };
        let Some(labels) = self.labels.as_deref() else {
            return;
        };
        counter!(name, labels).increment(1);
        histogram!("nexus_operation_schedule_to_close_latency", labels)
            .record(elapsed.as_secs_f64());
    }
}

impl Drop for Pending {
    fn drop(&mut self) {
        #[cfg(feature = "metrics")]
        if let Some(old) = self.state.take() {
            self.gauge(old).decrement(1.0);
        }
    }
}

/// The `nexus_circuit_breaker_state` gauge of one target (0 closed, 1 half-open, 2 open).
#[derive(Debug, Default)]
pub(crate) struct BreakerGauge {
    #[cfg(feature = "metrics")]
    gauge: Option<::metrics::Gauge>,
}

impl BreakerGauge {
    /// The gauge of target `target` of `endpoint`, shown closed.
    pub(crate) fn new(endpoint: &str, target: usize) -> Self {
        #[cfg(feature = "metrics")]
        {
            let gauge = gauge!(
                "nexus_circuit_breaker_state",
                "destination" => endpoint.to_owned(),
                "target" => target.to_string(),
            );
            gauge.set(0.0);
            Self { gauge: Some(gauge) }
        }
        #[cfg(not(feature = "metrics"))]
        {
            let _ = (endpoint, target);
            Self {}
        }
    }

    /// The breaker is now closed (0), half-open (1) or open (2).
    #[inline]
    pub(crate) fn set(&self, state: u8) {
        #[cfg(feature = "metrics")]
        if let Some(gauge) = &self.gauge {
            gauge.set(f64::from(state));
        }
        #[cfg(not(feature = "metrics"))]
        let _ = state;
    }
}

/// A completion reached the callback receiver (`success`, or `error_<TYPE>` when refused).
#[inline]
#[cfg(feature = "http")]
pub(crate) fn completion_received(refused: Option<&crate::error::HandlerError>) {
    #[cfg(feature = "metrics")]
    if active() {
        let outcome = match refused {
            None => "success".to_owned(),
            Some(e) => format!("error_{}", e.error_type.as_str()),
        };
        counter!("nexus_completion_requests", "outcome" => outcome).increment(1);
    }
    #[cfg(not(feature = "metrics"))]
    let _ = refused;
}

/// Measures one start or cancel request the dispatcher handles: `nexus_requests` and
/// `nexus_latency` once [`finish`](Self::finish)ed (`outcome`: `sync_success`, `async_success`,
/// `operation_error`, `handler_error:<TYPE>`; `success` for a cancel).
pub(crate) struct Incoming {
    #[cfg(feature = "metrics")]
    inner: Option<Box<(Labels<3>, tokio::time::Instant)>>,
}

impl Incoming {
    #[inline]
    pub(crate) fn start(service: &str, operation: &str, method: &'static str) -> Self {
        #[cfg(feature = "metrics")]
        return Self {
            inner: active().then(|| {
                let labels = [
                    ("nexus_service", service.to_owned()),
                    ("nexus_operation", operation.to_owned()),
                    ("method", method.to_owned()),
                ];
                Box::new((labels, tokio::time::Instant::now()))
            }),
        };
        #[cfg(not(feature = "metrics"))]
        {
            let _ = (service, operation, method);
            Self {}
        }
    }

    /// The answer of a start request.
    #[inline]
    pub(crate) fn started(
        self,
        answer: &Result<crate::transport::StartResponse, crate::error::StartError>,
    ) {
        #[cfg(feature = "metrics")]
        {
            use crate::error::StartError;
            use crate::transport::StartResponse;
            if self.inner.is_none() {
                return;
            }
            let outcome = match answer {
                Ok(StartResponse::Sync { .. }) => "sync_success".to_owned(),
                Ok(StartResponse::Async { .. }) => "async_success".to_owned(),
                Err(StartError::Operation(_)) => "operation_error".to_owned(),
                Err(StartError::Handler(e)) => format!("handler_error:{}", e.error_type.as_str()),
            };
            self.finish(outcome);
        }
        #[cfg(not(feature = "metrics"))]
        let _ = answer;
    }

    /// The answer of a cancel request.
    #[inline]
    pub(crate) fn canceled(self, answer: &Result<(), crate::error::HandlerError>) {
        #[cfg(feature = "metrics")]
        if self.inner.is_some() {
            self.finish(match answer {
                Ok(()) => "success".to_owned(),
                Err(e) => format!("handler_error:{}", e.error_type.as_str()),
            });
        }
        #[cfg(not(feature = "metrics"))]
        let _ = answer;
    }

    #[cfg(feature = "metrics")]
    fn finish(self, outcome: String) {
        let Some(inner) = self.inner else {
            return;
        };
        let (labels, started) = *inner;
        histogram!("nexus_latency", &labels).record(started.elapsed().as_secs_f64());
        let [service, operation, method] = labels;
        counter!(
            "nexus_requests",
            &[service, operation, method, ("outcome", outcome)]
        )
        .increment(1);
    }
}

/// An async operation started running here (`+1`) or stopped (`-1`).
#[inline]
pub(crate) fn running(service: &str, operation: &str, delta: f64) {
    #[cfg(feature = "metrics")]
    if active() {
        gauge!(
            "nexus_running_operations",
            "nexus_service" => service.to_owned(),
            "nexus_operation" => operation.to_owned(),
        )
        .increment(delta);
    }
    #[cfg(not(feature = "metrics"))]
    let _ = (service, operation, delta);
}

/// One delivery of a completion (`outcome`: `success`, `handler-error:<TYPE>`).
#[inline]
#[cfg(feature = "http")]
pub(crate) fn callback_delivered(refused: Option<&crate::error::HandlerError>, latency: Duration) {
    #[cfg(feature = "metrics")]
    {
        let outcome = match refused {
            None => "success".to_owned(),
            Some(e) => format!("handler-error:{}", e.error_type.as_str()),
        };
        counter!("callback_outbound_requests", "outcome" => outcome).increment(1);
        histogram!("callback_outbound_latency").record(latency.as_secs_f64());
    }
    #[cfg(not(feature = "metrics"))]
    let _ = (refused, latency);
}

/// The outbox found `due` deliveries to send.
#[inline]
pub(crate) fn outbox_due(due: usize) {
    #[cfg(feature = "metrics")]
    gauge!("nexus_outbox_due").set(due as f64);
    #[cfg(not(feature = "metrics"))]
    let _ = due;
}

/// An outbox delivery failed and will be retried.
#[inline]
pub(crate) fn outbox_failed() {
    #[cfg(feature = "metrics")]
    counter!("nexus_outbox_failed_deliveries").increment(1);
}

/// An outbox delivery was given up.
#[inline]
pub(crate) fn outbox_dead() {
    #[cfg(feature = "metrics")]
    counter!("nexus_outbox_dead_deliveries").increment(1);
}
