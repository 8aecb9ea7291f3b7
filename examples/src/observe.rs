//! Watching a handler from outside: an event log of the starts a service receives and the
//! completions it sends, and injected unavailability to exercise callers' retries.
//!
//! `fraud-handler --event-log FILE --unavailable-first N` uses it; the Temporal interop test
//! (`interop/run.sh`) reads the log to check what the Rust handler saw of Temporal's requests.
//!
//! The log has one JSON object per line:
//! - `{"event":"start","service":..,"operation":..,"requestId":..,"attempt":N,"answer":A}` for
//!   each start request, where `attempt` counts the starts seen with that request id (from 1) and
//!   `answer` is `unavailable` (injected), `sync`, `async` or `error` (with an `error` field);
//! - `{"event":"completion","token":..,"state":..,"delivered":true|false}` for each completion of
//!   an async operation sent to a callback URL, `state` being `succeeded`, `failed` or
//!   `canceled` (a `canceled` completion is the handler's answer to a cancel request).

use std::collections::{BTreeMap, HashMap};
use std::fs::File;
use std::io::{self, Write as _};
use std::path::Path;
use std::sync::{Arc, Mutex};

use futures::FutureExt as _;
use futures::future::BoxFuture;
use nexus_runtime::codec::Content;
use nexus_runtime::completion::{Completion, CompletionSender};
use nexus_runtime::service::{RawStart, ServiceHandler, StartFuture};
use nexus_runtime::{HandlerError, OperationContext, StartError};
use serde_json::{Value, json};

/// An append-only JSON-lines file of handler events, shared by the wrappers of this module.
#[derive(Clone, Debug)]
pub struct EventLog {
    file: Arc<Mutex<File>>,
}

impl EventLog {
    /// Creates (or truncates) the log at `path`.
    pub fn create(path: impl AsRef<Path>) -> io::Result<Self> {
        Ok(Self {
            file: Arc::new(Mutex::new(File::create(path)?)),
        })
    }

    /// Appends one event as a line. A failed write is reported on the tracing log and otherwise
    /// ignored: watching the handler must not break it.
    pub fn record(&self, event: &Value) {
        let line = format!("{event}\n");
        let written = match self.file.lock() {
            Ok(mut file) => file.write_all(line.as_bytes()),
            Err(_) => Err(io::Error::other("the event log's lock is poisoned")),
        };
        if let Err(e) = written {
            tracing::warn!(error = %e, "cannot write the event log");
        }
    }
}

/// How many request ids [`Observed`] counts attempts of before it starts afresh.
pub const MAX_TRACKED: usize = 10_000;

/// Wraps a [`ServiceHandler`]: logs every start request at debug level (with its request id),
/// records it in the event log if there is one, and answers UNAVAILABLE (503, retryable) to the
/// first `unavailable_first` attempts of each request id. When none of these is asked for,
/// starts go straight to the wrapped service.
///
/// Whether starts are logged at debug level is decided when the wrapper is made, from the
/// tracing subscriber installed then (so install it first); a request costs no check of the
/// log's filters.
///
/// Starts without a request id are never refused: a caller that sends none cannot retry one.
pub struct Observed<H> {
    inner: H,
    unavailable_first: u32,
    log: Option<EventLog>,
    debug_log: bool,
    attempts: Mutex<HashMap<String, u32>>,
}

impl<H: ServiceHandler> Observed<H> {
    /// Observes `inner`, refusing nothing and logging to the tracing log only.
    pub fn new(inner: H) -> Self {
        Self {
            inner,
            unavailable_first: 0,
            log: None,
            debug_log: tracing::enabled!(tracing::Level::DEBUG),
            attempts: Mutex::default(),
        }
    }

    /// Answers UNAVAILABLE to the first `n` attempts of each request id.
    #[must_use]
    pub fn unavailable_first(mut self, n: u32) -> Self {
        self.unavailable_first = n;
        self
    }

    /// Also records every start in `log`.
    #[must_use]
    pub fn event_log(mut self, log: EventLog) -> Self {
        self.log = Some(log);
        self
    }

    /// Whether starts are watched at all: refused on purpose, recorded in an event log, or
    /// logged at debug level.
    fn watching(&self) -> bool {
        self.unavailable_first > 0 || self.log.is_some() || self.debug_log
    }

    /// Counts this attempt of `request_id`: 1 for the first. The counts are forgotten after
    /// [`MAX_TRACKED`] request ids, so a long-running handler does not grow without bound.
    fn attempt(&self, request_id: &str) -> u32 {
        let Ok(mut attempts) = self.attempts.lock() else {
            return 1;
        };
        if attempts.len() >= MAX_TRACKED && !attempts.contains_key(request_id) {
            attempts.clear();
        }
        let n = attempts.entry(request_id.to_owned()).or_insert(0);
        *n += 1;
        *n
    }
}

impl<H> std::fmt::Debug for Observed<H> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Observed")
            .field("unavailable_first", &self.unavailable_first)
            .finish_non_exhaustive()
    }
}

impl<H: ServiceHandler> ServiceHandler for Observed<H> {
    fn name(&self) -> &str {
        self.inner.name()
    }

    fn operation_names(&self) -> Vec<&str> {
        self.inner.operation_names()
    }

    fn start(&self, operation: &str, ctx: OperationContext, input: Content) -> Option<StartFuture> {
        if !self.watching() || !self.inner.operation_names().contains(&operation) {
            // Nothing to log or refuse (or an unknown operation, which the dispatcher answers
            // NOT_FOUND whatever the attempt): the request goes straight through, at no cost.
            return self.inner.start(operation, ctx, input);
        }
        let request_id = ctx.request_id().to_owned();
        let attempt = self.attempt(&request_id);
        let event = json!({
            "event": "start",
            "service": self.inner.name(),
            "operation": operation,
            "requestId": request_id,
            "attempt": attempt,
        });
        let log = self.log.clone();
        let record = move |mut event: Value, answer: &str, error: Option<String>| {
            tracing::debug!(
                operation = %event["operation"].as_str().unwrap_or_default(),
                request_id = %event["requestId"].as_str().unwrap_or_default(),
                attempt = %event["attempt"],
                answer,
                "start"
            );
            if let Some(log) = &log {
                event["answer"] = answer.into();
                if let Some(error) = error {
                    event["error"] = error.into();
                }
                log.record(&event);
            }
        };
        if !request_id.is_empty() && attempt <= self.unavailable_first {
            record(event, "unavailable", None);
            let error = HandlerError::unavailable(format!(
                "unavailable on purpose: attempt {attempt} of request {request_id} (the first {} \
                 attempts of each request are refused)",
                self.unavailable_first
            ));
            return Some(std::future::ready(Err(error.into())).boxed());
        }
        let started = self.inner.start(operation, ctx, input)?;
        Some(
            async move {
                let answer = started.await;
                match &answer {
                    Ok(RawStart::Sync(_)) => record(event, "sync", None),
                    Ok(RawStart::Async(_)) => record(event, "async", None),
                    Err(e) => record(event, "error", Some(start_error_message(e))),
                }
                answer
            }
            .boxed(),
        )
    }
}

fn start_error_message(error: &StartError) -> String {
    match error {
        StartError::Handler(e) => format!("{}: {}", e.error_type, e.message),
        StartError::Operation(e) => format!("{}: {}", e.state.as_str(), e.message),
    }
}

/// Wraps a [`CompletionSender`]: logs every completion it sends (token, state, delivered).
pub struct LoggedCompletions<S> {
    inner: Arc<S>,
    log: Option<EventLog>,
}

impl<S: CompletionSender> LoggedCompletions<S> {
    /// Logs the completions `inner` sends to the tracing log, and to `log` if given.
    pub fn new(inner: S, log: Option<EventLog>) -> Self {
        Self {
            inner: Arc::new(inner),
            log,
        }
    }
}

impl<S> std::fmt::Debug for LoggedCompletions<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoggedCompletions").finish_non_exhaustive()
    }
}

impl<S: CompletionSender> CompletionSender for LoggedCompletions<S> {
    fn send(
        &self,
        url: String,
        headers: BTreeMap<String, String>,
        completion: Completion,
    ) -> BoxFuture<'static, Result<(), HandlerError>> {
        let token = completion.token.clone();
        let state = completion.state();
        let sent = self.inner.send(url, headers, completion);
        let log = self.log.clone();
        async move {
            let result = sent.await;
            tracing::debug!(%token, state, delivered = result.is_ok(), "completion");
            if let Some(log) = &log {
                log.record(&json!({
                    "event": "completion",
                    "token": token,
                    "state": state,
                    "delivered": result.is_ok(),
                }));
            }
            result
        }
        .boxed()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use fraud_contract::FraudService;
    use nexus_runtime::codec::encode;
    use nexus_runtime::error::HandlerErrorType;
    use nexus_runtime::service::Dispatcher;
    use nexus_runtime::transport::{StartRequest, StartResponse};

    use crate::fraud_desk::{FraudDesk, quick_score};

    fn score_request(request_id: &str) -> StartRequest {
        StartRequest {
            service: "fraud.v1".into(),
            operation: "getQuickScore".into(),
            request_id: request_id.into(),
            headers: Default::default(),
            links: Vec::new(),
            callback: None,
            request_deadline: None,
            operation_timeout: None,
            input: encode(&json!({"userId": "user-ada"})).unwrap(),
        }
    }

    fn events(path: &Path) -> Vec<Value> {
        std::fs::read_to_string(path)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }

    #[tokio::test]
    async fn refuses_the_first_attempts_of_each_request_id_and_logs_every_start() {
        let dir = scratch_dir();
        let path = dir.join("events.jsonl");
        let log = EventLog::create(&path).unwrap();
        let handler = Observed::new(FraudService::handler(FraudDesk::new(Default::default())))
            .unavailable_first(2)
            .event_log(log);
        let dispatcher = Dispatcher::builder().service(handler).build();

        for attempt in 1..=2 {
            let err = dispatcher.start(score_request("r-1")).await.unwrap_err();
            let StartError::Handler(e) = err else {
                panic!("expected a HandlerError, got {err:?}")
            };
            assert_eq!(e.error_type, HandlerErrorType::Unavailable);
            assert!(e.is_retryable());
            assert!(
                e.message
                    .contains(&format!("attempt {attempt} of request r-1")),
                "{}",
                e.message
            );
        }
        let StartResponse::Sync { output, .. } =
            dispatcher.start(score_request("r-1")).await.unwrap()
        else {
            panic!("expected a sync answer")
        };
        let score: Value = serde_json::from_slice(&output.data).unwrap();
        assert_eq!(score["score"], quick_score("user-ada"));
        // Another request id is counted on its own; an empty one is never refused; an unknown
        // operation is NOT_FOUND at once, and not logged.
        assert!(dispatcher.start(score_request("r-2")).await.is_err());
        assert!(dispatcher.start(score_request("")).await.is_ok());
        let mut unknown = score_request("r-3");
        unknown.operation = "noSuchOperation".into();
        let Err(StartError::Handler(e)) = dispatcher.start(unknown).await else {
            panic!("expected a HandlerError")
        };
        assert_eq!(e.error_type, HandlerErrorType::NotFound);

        let seen: Vec<(String, u64, String)> = events(&path)
            .iter()
            .map(|e| {
                assert_eq!(e["event"], "start");
                assert_eq!(e["operation"], "getQuickScore");
                (
                    e["requestId"].as_str().unwrap().to_owned(),
                    e["attempt"].as_u64().unwrap(),
                    e["answer"].as_str().unwrap().to_owned(),
                )
            })
            .collect();
        let expected = [
            ("r-1", 1, "unavailable"),
            ("r-1", 2, "unavailable"),
            ("r-1", 3, "sync"),
            ("r-2", 1, "unavailable"),
            ("", 1, "sync"),
        ]
        .map(|(id, n, a)| (id.to_owned(), n, a.to_owned()));
        assert_eq!(seen, expected);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[tokio::test]
    async fn logs_each_completion_with_its_token_state_and_delivery() {
        struct Refuses;
        impl CompletionSender for Refuses {
            fn send(
                &self,
                _url: String,
                _headers: BTreeMap<String, String>,
                completion: Completion,
            ) -> BoxFuture<'static, Result<(), HandlerError>> {
                let answer = match completion.outcome {
                    Ok(_) => Ok(()),
                    Err(_) => Err(HandlerError::not_found("no such operation")),
                };
                std::future::ready(answer).boxed()
            }
        }
        let dir = scratch_dir();
        let path = dir.join("events.jsonl");
        let sender = LoggedCompletions::new(Refuses, Some(EventLog::create(&path).unwrap()));
        let completion = |token: &str, outcome| Completion {
            token: token.into(),
            outcome,
            links: Vec::new(),
            start_time: None,
            close_time: None,
        };
        let url = "http://127.0.0.1:1/cb".to_owned();
        sender
            .send(
                url.clone(),
                BTreeMap::new(),
                completion("t-1", Ok(Content::empty())),
            )
            .await
            .unwrap();
        let canceled = nexus_runtime::OperationError::canceled("canceled on request");
        sender
            .send(url, BTreeMap::new(), completion("t-2", Err(canceled)))
            .await
            .unwrap_err();
        assert_eq!(
            events(&path),
            vec![
                json!({"event": "completion", "token": "t-1", "state": "succeeded", "delivered": true}),
                json!({"event": "completion", "token": "t-2", "state": "canceled", "delivered": false}),
            ]
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// A fresh scratch directory for one test.
    fn scratch_dir() -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!(
            "nexus-observe-test-{}-{}",
            std::process::id(),
            uuid::Uuid::new_v4()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }
}
