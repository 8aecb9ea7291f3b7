//! The completion sender: POSTs the completion of an async operation to the caller's callback
//! URL, retrying what may succeed later.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use futures::FutureExt as _;
use futures::future::BoxFuture;

mod guarded;

pub use guarded::MAX_ANSWER_BYTES;

use self::guarded::AddressError;
use crate::completion::{Completion, CompletionSender};
use crate::error::{CallError, HandlerError};
use crate::http::client::HttpClientOptions;
use crate::machinery::{self, Backing, Backoff, RetrySchedule, Try};
use crate::observe::spans::InSpan as _;
use crate::observe::{self, outcome, spans};
use crate::protocol::{self, FailureFormat};
use crate::security::{CallbackGuard, CallbackRefusal, CheckedCallback, redact_callback_url};

/// When to try delivering a completion again: exponential backoff, bounded in attempts.
///
/// The delay before retry `n` (1-based) is `initial_interval * multiplier^(n-1)`, capped at
/// `max_interval` (a multiplier below 1 is taken as 1), rounded up to whole milliseconds:
/// the schedule of its [`backoff`](Self::backoff), the crate's one backoff engine. There is no
/// jitter, so schedules are reproducible.
#[derive(Clone, Debug, PartialEq)]
pub struct CompletionRetry {
    /// Delay before the first retry (default 500 ms).
    pub initial_interval: Duration,
    /// Growth of the delay from one retry to the next (default 2).
    pub multiplier: f64,
    /// Largest delay (default 30 s).
    pub max_interval: Duration,
    /// Attempts in all, the first included (default 10; at least 1).
    pub max_attempts: u32,
}

impl Default for CompletionRetry {
    fn default() -> Self {
        Self {
            initial_interval: Duration::from_millis(500),
            multiplier: 2.0,
            max_interval: Duration::from_secs(30),
            max_attempts: 10,
        }
    }
}

impl CompletionRetry {
    /// One attempt, no retries.
    pub fn never() -> Self {
        Self {
            max_attempts: 1,
            ..Self::default()
        }
    }

    /// The delay before retry number `retry` (1 for the first retry).
    ///
    /// ```
    /// use std::time::Duration;
    /// use nexus_runtime::server::CompletionRetry;
    /// let r = CompletionRetry::default();
    /// assert_eq!(r.delay(1), Duration::from_millis(500));
    /// assert_eq!(r.delay(3), Duration::from_secs(2));
    /// assert_eq!(r.delay(20), Duration::from_secs(30));
    /// ```
    pub fn delay(&self, retry: u32) -> Duration {
        self.backoff().delay(retry, 0.0)
    }

    /// The schedule of these retries, without jitter.
    pub fn backoff(&self) -> Backoff {
        Backoff::new(self.initial_interval, self.multiplier, self.max_interval)
    }
}

/// How one delivery attempt ended.
#[derive(Debug)]
pub(crate) enum Attempt {
    /// The receiver answered 2xx.
    Delivered,
    /// The receiver answered an error that may go away (or could not be reached).
    Retryable(HandlerError),
    /// The receiver rejected the completion for good.
    Rejected(HandlerError),
}

/// What happened to a completion.
#[derive(Clone, Debug, PartialEq)]
pub struct DeliveryReport {
    /// Attempts made.
    pub attempts: u32,
    /// `Ok` once delivered; otherwise the last error (non-retryable, or retries ran out).
    pub result: Result<(), HandlerError>,
}

/// Runs attempts under `retry` until one delivers, one is rejected, or attempts run out.
pub(crate) async fn deliver_with_retry<F, Fut>(
    retry: &CompletionRetry,
    mut attempt: F,
) -> DeliveryReport
where
    F: FnMut(u32) -> Fut,
    Fut: Future<Output = Attempt>,
{
    let schedule = RetrySchedule::unjittered(retry.backoff(), retry.max_attempts);
    let retried = machinery::retry(
        schedule,
        |number| {
            let attempt = attempt(number);
            async move {
                match attempt.await {
                    Attempt::Delivered => Try::Done(()),
                    Attempt::Retryable(error) => Try::Retry(error),
                    Attempt::Rejected(error) => Try::Fail(error),
                }
            }
        },
        |Backing {
             attempt,
             delay,
             error,
             ..
         }| {
            tracing::warn!(attempt, ?delay, %error, "completion not delivered; will retry");
        },
    )
    .await;
    DeliveryReport {
        attempts: retried.attempts,
        result: retried.result,
    }
}

/// Delivers completions over HTTP, as Temporal's callback machinery does: every 2xx answer is
/// success; a HandlerError answer is retried when its type (or retry override) says so, as are
/// unreachable receivers, 408 and 5xx answers, and answers that are not valid Nexus; anything else
/// stops delivery: other 4xx answers, redirects (never followed), and callbacks the
/// [`CallbackGuard`] refuses.
///
/// Its retries are in memory. A dispatcher with a store retries through its outbox instead,
/// durably: there, the sender is built with [`CompletionRetry::never`] and each call is one
/// attempt, whose error says whether it is worth retrying
/// ([`HandlerError::is_retryable`]).
///
/// The request carries the callback headers (the start request's `Nexus-Callback-*` with the
/// prefix removed), `Nexus-Operation-State`, `Nexus-Operation-Token`,
/// `Nexus-Operation-Start-Time` (HTTP-date), `Nexus-Operation-Close-Time` (RFC 3339 UTC),
/// `Nexus-Link` headers, and the result with its `Content-*` headers or a Failure JSON.
///
/// **Where it connects** is decided by its [`CallbackGuard`] (default: https to public hosts;
/// the [`HandlerServer`](super::HandlerServer) gives the one of its dispatcher): before every
/// attempt, the URL and callback headers are checked again (records made before a rule changed
/// included), the host is resolved and every address it resolves to is checked, and the client
/// connects only to those checked addresses, so a DNS answer cannot point it elsewhere.
/// Answers are read up to 64 KiB, within the attempt timeout.
///
/// A failed or canceled completion carries the OperationError envelope by default, as the
/// specification says; Temporal 1.32's receiver and this crate's accept both it and the bare
/// cause. [`failure_format`](Self::failure_format) switches to the bare cause for older peers.
#[derive(Clone, Debug)]
pub struct HttpCompletionSender {
    client: Result<reqwest::Client, Arc<str>>,
    guard: CallbackGuard,
    /// How the client is built (TLS); kept so that a new guard rebuilds it with the same.
    options: HttpClientOptions,
    retry: CompletionRetry,
    attempt_timeout: Duration,
    failure_format: FailureFormat,
}

impl Default for HttpCompletionSender {
    fn default() -> Self {
        Self::new()
    }
}

impl HttpCompletionSender {
    /// A sender with the default guard ([`CallbackGuard::default`]: https to public hosts), the
    /// default retry schedule and a 10 s timeout per attempt.
    pub fn new() -> Self {
        let guard = CallbackGuard::default();
        Self {
            client: build_client(&guard, &HttpClientOptions::default()),
            guard,
            options: HttpClientOptions::default(),
            retry: CompletionRetry::default(),
            attempt_timeout: Duration::from_secs(10),
            failure_format: FailureFormat::Envelope,
        }
    }

    /// Delivers only where `guard` allows, with an HTTP client built from
    /// [`client_builder`](Self::client_builder) (replacing one set with
    /// [`http_client`](Self::http_client) before).
    #[must_use]
    pub fn callback_guard(mut self, guard: CallbackGuard) -> Self {
        self.client = build_client(&guard, &self.options);
        self.guard = guard;
        self
    }

    /// Uses this retry schedule.
    #[must_use]
    pub fn retry(mut self, retry: CompletionRetry) -> Self {
        self.retry = retry;
        self
    }

    /// Bounds each attempt, connection, request and answer included (default 10 s).
    #[must_use]
    pub fn attempt_timeout(mut self, timeout: Duration) -> Self {
        self.attempt_timeout = timeout;
        self
    }

    /// Sends failures in this format (default: the envelope).
    #[must_use]
    pub fn failure_format(mut self, format: FailureFormat) -> Self {
        self.failure_format = format;
        self
    }

    /// A client builder for this purpose: its resolver connects only to addresses `guard`
    /// allows, and it follows no redirect and uses no proxy (with the `tls` feature it speaks
    /// TLS with Mozilla's roots). Give the client to [`http_client`](Self::http_client), or
    /// prefer [`tls`](Self::tls), which builds it so.
    pub fn client_builder(guard: &CallbackGuard) -> reqwest::ClientBuilder {
        guarded::guarded(HttpClientOptions::default().builder(), guard)
    }

    /// Speaks TLS with this configuration (extra root CAs, a client certificate for receivers
    /// that require mTLS), under this sender's guard. Without it (and with the `tls` feature),
    /// `https://` callback URLs are verified against Mozilla's roots.
    #[cfg(feature = "tls")]
    pub fn tls(mut self, tls: crate::tls::TlsClientConfig) -> Result<Self, crate::tls::TlsError> {
        self.options.tls = Some(tls);
        self.client = Ok(guarded::guarded(self.options.builder(), &self.guard)
            .build()
            .map_err(|e| {
                crate::tls::TlsError::new(format!("cannot build the HTTP client: {e}"))
            })?);
        Ok(self)
    }

    /// Uses this HTTP client. Build it from [`client_builder`](Self::client_builder) with this
    /// sender's guard: a client of other origin may follow redirects or resolve names to
    /// addresses the guard would refuse (the checks before each attempt still run, but cannot
    /// bind such a client's connections).
    #[must_use]
    pub fn http_client(mut self, client: reqwest::Client) -> Self {
        self.client = Ok(client);
        self
    }

    /// Delivers `completion` to `url`, retrying as configured, and reports what happened.
    ///
    /// Each delivery runs in a `nexus.deliver` span whose parent is the trace context stored
    /// with the callback (see [`observe`](crate::observe)).
    pub async fn deliver(
        &self,
        url: &str,
        callback_headers: &BTreeMap<String, String>,
        completion: &Completion,
    ) -> DeliveryReport {
        let span = spans::deliver(&completion.token, completion.state());
        observe::extract(&span, callback_headers);
        // With OpenTelemetry, the request names the delivery span as its parent.
        let traced = observe::span_context(&span).map(|ctx| {
            let mut headers = callback_headers.clone();
            ctx.write_to(&mut headers);
            headers
        });
        let headers = traced.as_ref().unwrap_or(callback_headers);
        let started = tokio::time::Instant::now();
        let report = self
            .deliver_traced(url, headers, completion)
            .in_span(span.clone())
            .await;
        observe::metrics::callback_delivered(report.result.as_ref().err(), started.elapsed());
        spans::record(&span, "nexus.attempts", report.attempts);
        match &report.result {
            Ok(()) => spans::record(&span, "nexus.outcome", "delivered"),
            Err(e) => spans::record(&span, "nexus.outcome", outcome::HandlerErrorLabel(e)),
        }
        report
    }

    async fn deliver_traced(
        &self,
        url: &str,
        callback_headers: &BTreeMap<String, String>,
        completion: &Completion,
    ) -> DeliveryReport {
        let refused = |error: HandlerError| DeliveryReport {
            attempts: 0,
            result: Err(error),
        };
        let headers = callback_headers
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()));
        let callback = match self.guard.check_callback(url, headers) {
            Ok(callback) => callback,
            Err(e) => {
                tracing::warn!(token = %completion.token, %url, error = %e, "completion refused");
                return refused(refusal(e));
            }
        };
        let request = match protocol::build_completion_request(
            completion,
            callback_headers,
            self.failure_format,
        ) {
            Ok(request) => request,
            Err(e) => {
                // It would fail the same way every time.
                return refused(
                    HandlerError::internal(format!("cannot build the completion request: {e}"))
                        .with_retryable(false),
                );
            }
        };
        let report = deliver_with_retry(&self.retry, |_| {
            let attempt = self.attempt(&callback, request.headers.clone(), request.body.clone());
            async move {
                tokio::time::timeout(self.attempt_timeout, attempt)
                    .await
                    .unwrap_or_else(|_| {
                        Attempt::Retryable(HandlerError::upstream_timeout(format!(
                            "no answer from the callback URL {url} within {:?}",
                            self.attempt_timeout
                        )))
                    })
            }
        })
        .await;
        match &report.result {
            Ok(()) => tracing::debug!(
                token = %completion.token,
                state = completion.state(),
                attempts = report.attempts,
                "completion delivered"
            ),
            // A single-attempt sender reports to its caller (the dispatcher's outbox), which
            // decides whether to retry and logs what it does.
            Err(error) if self.retry.max_attempts <= 1 => tracing::debug!(
                token = %completion.token,
                url = %redact_callback_url(url),
                %error,
                "completion attempt failed"
            ),
            Err(error) => tracing::error!(
                token = %completion.token,
                url = %redact_callback_url(url),
                attempts = report.attempts,
                %error,
                "completion not delivered"
            ),
        }
        report
    }

    async fn attempt(
        &self,
        callback: &CheckedCallback,
        headers: http::HeaderMap,
        body: bytes::Bytes,
    ) -> Attempt {
        // Named with its secret redacted: these messages are logged and stored.
        let url = redact_callback_url(callback.url().as_str());
        let client = match &self.client {
            Ok(client) => client,
            Err(e) => {
                return Attempt::Rejected(
                    HandlerError::internal(format!(
                        "the completion sender has no HTTP client: {e}"
                    ))
                    .with_retryable(false),
                );
            }
        };
        let checked = match guarded::check_addresses(&self.guard, callback).await {
            Ok(checked) => checked,
            Err(AddressError::Refused(e)) => return Attempt::Rejected(refusal(e)),
            Err(AddressError::Unresolved(e)) => {
                return Attempt::Retryable(HandlerError::unavailable(format!(
                    "cannot resolve the host of the callback URL {url}: {e}"
                )));
            }
        };
        let request = client
            .post(callback.url().clone())
            .headers(headers)
            .body(body)
            .timeout(self.attempt_timeout);
        let sent = guarded::with_checked(checked, request.send()).await;
        let response = match sent {
            Ok(response) => response,
            Err(e) => {
                let e = e.without_url();
                return Attempt::Retryable(HandlerError::unavailable(format!(
                    "cannot reach the callback URL {url}: {e}{}",
                    std::error::Error::source(&e)
                        .map(|s| format!(": {s}"))
                        .unwrap_or_default()
                )));
            }
        };
        let status = response.status();
        if status.is_success() {
            return Attempt::Delivered;
        }
        let headers = response.headers().clone();
        if status.is_redirection() {
            let location = headers
                .get(http::header::LOCATION)
                .and_then(|l| l.to_str().ok())
                .map(|l| format!(" to `{}`", l.chars().take(200).collect::<String>()))
                .unwrap_or_default();
            return Attempt::Rejected(HandlerError::bad_request(format!(
                "the callback receiver at {url} answered {status}{location}: completions do not \
                 follow redirects"
            )));
        }
        let body = guarded::read_bounded(response, MAX_ANSWER_BYTES).await;
        match protocol::error_from_response(status, &headers, &body) {
            CallError::Handler(e) if e.is_retryable() => Attempt::Retryable(e),
            CallError::Handler(e) => Attempt::Rejected(e),
            // Other client errors will not go away (as Temporal's callbacks judge them); 408 may.
            CallError::Transport(e)
                if status.is_client_error() && status != http::StatusCode::REQUEST_TIMEOUT =>
            {
                Attempt::Rejected(HandlerError::bad_request(format!(
                    "the callback receiver at {url} answered: {e}"
                )))
            }
            CallError::Transport(e) => Attempt::Retryable(HandlerError::unavailable(format!(
                "the callback receiver at {url} answered: {e}"
            ))),
            other => Attempt::Rejected(HandlerError::bad_request(format!(
                "the callback receiver at {url} answered: {other}"
            ))),
        }
    }
}

fn build_client(
    guard: &CallbackGuard,
    options: &HttpClientOptions,
) -> Result<reqwest::Client, Arc<str>> {
    guarded::guarded(options.builder(), guard)
        .build()
        .map_err(|e| Arc::from(e.to_string()))
}

/// A guard's refusal, as the delivery's (non-retryable) error.
fn refusal(e: CallbackRefusal) -> HandlerError {
    HandlerError::bad_request(e.to_string())
}

impl CompletionSender for HttpCompletionSender {
    fn send(
        &self,
        url: String,
        headers: BTreeMap<String, String>,
        completion: Completion,
    ) -> BoxFuture<'static, Result<(), HandlerError>> {
        let sender = self.clone();
        async move { sender.deliver(&url, &headers, &completion).await.result }.boxed()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;
    use tokio::time::Instant;

    /// Replays scripted attempt outcomes and records when each attempt started.
    async fn run(retry: CompletionRetry, script: Vec<Attempt>) -> (DeliveryReport, Vec<Duration>) {
        let start = Instant::now();
        let script = Arc::new(Mutex::new(script.into_iter()));
        let times = Arc::new(Mutex::new(Vec::new()));
        let report = deliver_with_retry(&retry, |_| {
            times.lock().unwrap().push(start.elapsed());
            let next = script.lock().unwrap().next();
            async move { next.unwrap_or(Attempt::Delivered) }
        })
        .await;
        let times = times.lock().unwrap().clone();
        (report, times)
    }

    fn unavailable() -> Attempt {
        Attempt::Retryable(HandlerError::unavailable("down"))
    }

    #[tokio::test(start_paused = true)]
    async fn retries_follow_the_exponential_schedule() {
        let retry = CompletionRetry {
            initial_interval: Duration::from_secs(1),
            multiplier: 2.0,
            max_interval: Duration::from_secs(3),
            max_attempts: 10,
        };
        let (report, times) = run(
            retry,
            vec![
                unavailable(),
                unavailable(),
                unavailable(),
                Attempt::Delivered,
            ],
        )
        .await;
        assert_eq!(
            report,
            DeliveryReport {
                attempts: 4,
                result: Ok(())
            }
        );
        let secs: Vec<u64> = times.iter().map(Duration::as_secs).collect();
        // Delays 1 s, 2 s, then capped at 3 s.
        assert_eq!(secs, [0, 1, 3, 6]);
    }

    #[tokio::test(start_paused = true)]
    async fn non_retryable_answers_stop_at_once() {
        let (report, times) = run(
            CompletionRetry::default(),
            vec![
                unavailable(),
                Attempt::Rejected(HandlerError::not_found("gone")),
            ],
        )
        .await;
        assert_eq!(report.attempts, 2);
        assert_eq!(report.result.unwrap_err().message, "gone");
        assert_eq!(times, [Duration::ZERO, Duration::from_millis(500)]);
    }

    #[tokio::test(start_paused = true)]
    async fn attempts_are_bounded() {
        let retry = CompletionRetry {
            max_attempts: 3,
            ..CompletionRetry::default()
        };
        let (report, times) = run(retry, (0..10).map(|_| unavailable()).collect()).await;
        assert_eq!(report.attempts, 3);
        assert_eq!(report.result.unwrap_err().message, "down");
        assert_eq!(times.last(), Some(&Duration::from_millis(1500)));
        let (once, _) = run(CompletionRetry::never(), vec![unavailable()]).await;
        assert_eq!(once.attempts, 1);
    }
}
