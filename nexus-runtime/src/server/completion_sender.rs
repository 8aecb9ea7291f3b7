//! The completion sender: POSTs the completion of an async operation to the caller's callback
//! URL, retrying what may succeed later.

use std::collections::BTreeMap;
use std::time::Duration;

use futures::FutureExt as _;
use futures::future::BoxFuture;

use crate::completion::{Completion, CompletionSender};
use crate::error::{CallError, HandlerError};
use crate::protocol::{self, FailureFormat};
use crate::transport::http_client::HttpClientOptions;

/// When to try delivering a completion again: exponential backoff, bounded in attempts.
///
/// The delay before retry `n` (1-based) is `initial_interval * multiplier^(n-1)`, capped at
/// `max_interval`. There is no jitter, so schedules are reproducible.
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
        let exponent = retry.saturating_sub(1).min(1024) as i32;
        let secs = self.initial_interval.as_secs_f64() * self.multiplier.powi(exponent);
        if !secs.is_finite() || secs >= self.max_interval.as_secs_f64() {
            self.max_interval
        } else {
            Duration::from_secs_f64(secs.max(0.0))
        }
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
    let max_attempts = retry.max_attempts.max(1);
    let mut number = 1;
    loop {
        let error = match attempt(number).await {
            Attempt::Delivered => {
                return DeliveryReport {
                    attempts: number,
                    result: Ok(()),
                };
            }
            Attempt::Rejected(error) => {
                return DeliveryReport {
                    attempts: number,
                    result: Err(error),
                };
            }
            Attempt::Retryable(error) => error,
        };
        if number >= max_attempts {
            return DeliveryReport {
                attempts: number,
                result: Err(error),
            };
        }
        let delay = retry.delay(number);
        tracing::warn!(attempt = number, ?delay, %error, "completion not delivered; will retry");
        tokio::time::sleep(delay).await;
        number += 1;
    }
}

/// Delivers completions over HTTP, as Temporal's callback machinery does: every 2xx answer is
/// success; a HandlerError answer is retried when its type (or retry override) says so, as are
/// unreachable receivers and answers that are not valid Nexus; anything else stops delivery.
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
/// A failed or canceled completion carries the OperationError envelope by default, as the
/// specification says; Temporal 1.32's receiver and this crate's accept both it and the bare
/// cause. [`failure_format`](Self::failure_format) switches to the bare cause for older peers.
#[derive(Clone, Debug)]
pub struct HttpCompletionSender {
    client: reqwest::Client,
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
    /// A sender with the default retry schedule and a 10 s timeout per attempt.
    pub fn new() -> Self {
        Self {
            client: HttpClientOptions::default().build().unwrap_or_default(),
            retry: CompletionRetry::default(),
            attempt_timeout: Duration::from_secs(10),
            failure_format: FailureFormat::Envelope,
        }
    }

    /// Uses this retry schedule.
    #[must_use]
    pub fn retry(mut self, retry: CompletionRetry) -> Self {
        self.retry = retry;
        self
    }

    /// Bounds each attempt (default 10 s).
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

    /// Speaks TLS with this configuration (extra root CAs, a client certificate for receivers
    /// that require mTLS). Without it (and with the `tls` feature), `https://` callback URLs are
    /// verified against Mozilla's roots.
    #[cfg(feature = "tls")]
    pub fn tls(mut self, tls: crate::tls::TlsClientConfig) -> Result<Self, crate::tls::TlsError> {
        self.client = crate::transport::http_client::with_tls(tls)?;
        Ok(self)
    }

    /// Uses this HTTP client (for proxies, say).
    #[must_use]
    pub fn http_client(mut self, client: reqwest::Client) -> Self {
        self.client = client;
        self
    }

    /// Delivers `completion` to `url`, retrying as configured, and reports what happened.
    pub async fn deliver(
        &self,
        url: &str,
        callback_headers: &BTreeMap<String, String>,
        completion: &Completion,
    ) -> DeliveryReport {
        let request = match protocol::build_completion_request(
            completion,
            callback_headers,
            self.failure_format,
        ) {
            Ok(request) => request,
            Err(e) => {
                // It would fail the same way every time.
                return DeliveryReport {
                    attempts: 0,
                    result: Err(HandlerError::internal(format!(
                        "cannot build the completion request: {e}"
                    ))
                    .with_retryable(false)),
                };
            }
        };
        let report = deliver_with_retry(&self.retry, |_| {
            self.attempt(url, request.headers.clone(), request.body.clone())
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
                %url,
                %error,
                "completion attempt failed"
            ),
            Err(error) => tracing::error!(
                token = %completion.token,
                %url,
                attempts = report.attempts,
                %error,
                "completion not delivered"
            ),
        }
        report
    }

    async fn attempt(&self, url: &str, headers: http::HeaderMap, body: bytes::Bytes) -> Attempt {
        let sent = self
            .client
            .post(url)
            .headers(headers)
            .body(body)
            .timeout(self.attempt_timeout)
            .send()
            .await;
        let response = match sent {
            Ok(response) => response,
            Err(e) => {
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
        let body = response.bytes().await.unwrap_or_default();
        match protocol::error_from_response(status, &headers, &body) {
            CallError::Handler(e) if e.is_retryable() => Attempt::Retryable(e),
            CallError::Handler(e) => Attempt::Rejected(e),
            CallError::Transport(e) => Attempt::Retryable(HandlerError::unavailable(format!(
                "the callback receiver at {url} answered: {e}"
            ))),
            other => Attempt::Rejected(HandlerError::bad_request(format!(
                "the callback receiver at {url} answered: {other}"
            ))),
        }
    }
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
    use std::sync::{Arc, Mutex};
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
