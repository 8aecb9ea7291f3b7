//! The durable handler tests' service: `jobs.v1`, which counts what it executes, dispatchers
//! serving it with short intervals, start requests for it, and an in-process completion sink.
#![allow(dead_code, clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::FutureExt as _;
use futures::future::BoxFuture;
use nexus_runtime::codec;
use nexus_runtime::completion::{Callback, Completion, CompletionSink};
use nexus_runtime::security::CallbackGuard;
use nexus_runtime::service::{Dispatcher, DurabilityOptions, OutboxOptions};
use nexus_runtime::store::Store;
use nexus_runtime::transport::StartRequest;
use nexus_runtime::{
    HandlerError, OperationContext, OperationError, OperationResult, nexus_service,
};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use tokio::sync::{Semaphore, mpsc};

/// A job for the async operations.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, PartialEq)]
pub struct Job {
    /// Its id.
    pub id: String,
    /// How long its work takes, in milliseconds.
    pub millis: u64,
}

/// A flaky start: fails the first `fail_first` executions of a request id, as `how` says.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, PartialEq)]
pub struct Flaky {
    /// How many executions fail.
    pub fail_first: u32,
    /// `unavailable` (a retryable HandlerError), `panic`, or `stall` (past any deadline).
    pub how: String,
}

/// Jobs, each operation counting its executions.
#[nexus_service(name = "jobs.v1")]
pub trait Jobs {
    /// Sync: twice the input.
    async fn double(&self, ctx: OperationContext, input: u64) -> OperationResult<u64>;
    /// Async and resumable: `"<id> done"` after `millis`, or canceled; resumed, its work takes
    /// 20 ms and answers `"<id> done (resumed)"`.
    async fn process(&self, ctx: OperationContext, input: Job) -> OperationResult<String>;
    /// Async, not resumable: `"<id> transferred"` after `millis`, or canceled.
    async fn transfer(&self, ctx: OperationContext, input: Job) -> OperationResult<String>;
    /// Fails for good: `operation` is an OperationError with details, anything else a
    /// non-retryable BAD_REQUEST.
    async fn refuse(&self, ctx: OperationContext, input: String) -> OperationResult<()>;
    /// See [`Flaky`]; then answers the number of the execution.
    async fn flaky(&self, ctx: OperationContext, input: Flaky) -> OperationResult<u32>;
    /// Waits for [`JobsImpl::release`], then answers the input.
    async fn hold(&self, ctx: OperationContext, input: u64) -> OperationResult<u64>;
}

/// One execution of an operation method.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Execution {
    pub operation: String,
    pub request_id: String,
    pub resumed: bool,
}

/// The implementation: records every execution of a method and every run of async work.
#[derive(Clone)]
pub struct JobsImpl {
    pub executions: Arc<Mutex<Vec<Execution>>>,
    /// `(job id, resumed)` of every run of async work that began.
    pub work_runs: Arc<Mutex<Vec<(String, bool)>>>,
    pub gate: Arc<Semaphore>,
}

impl JobsImpl {
    pub fn new() -> Self {
        Self {
            executions: Arc::default(),
            work_runs: Arc::default(),
            gate: Arc::new(Semaphore::new(0)),
        }
    }

    fn record(&self, ctx: &OperationContext) -> usize {
        let mut executions = self.executions.lock().unwrap();
        executions.push(Execution {
            operation: ctx.operation().to_owned(),
            request_id: ctx.request_id().to_owned(),
            resumed: ctx.resumed(),
        });
        executions
            .iter()
            .filter(|e| e.request_id == ctx.request_id() && e.operation == ctx.operation())
            .count()
    }

    /// Executions of `operation` with `request_id` that were starts (not resumptions).
    pub fn starts(&self, operation: &str, request_id: &str) -> usize {
        self.count(operation, request_id, false)
    }

    /// Executions of `operation` with `request_id` that were resumptions.
    pub fn resumptions(&self, operation: &str, request_id: &str) -> usize {
        self.count(operation, request_id, true)
    }

    fn count(&self, operation: &str, request_id: &str, resumed: bool) -> usize {
        self.executions
            .lock()
            .unwrap()
            .iter()
            .filter(|e| {
                e.operation == operation && e.request_id == request_id && e.resumed == resumed
            })
            .count()
    }

    /// Lets one held start answer.
    pub fn release(&self) {
        self.gate.add_permits(1);
    }

    fn work<F>(&self, ctx: &OperationContext, job: Job, done: F) -> OperationResult<String>
    where
        F: FnOnce(&Job, bool) -> String + Send + 'static,
    {
        let runs = self.work_runs.clone();
        let work = move |work: nexus_runtime::AsyncContext| async move {
            runs.lock().unwrap().push((job.id.clone(), work.resumed()));
            let millis = if work.resumed() { 20 } else { job.millis };
            tokio::select! {
                _ = work.cancelled() => Err(OperationError::canceled(format!("{} canceled", job.id))),
                _ = tokio::time::sleep(Duration::from_millis(millis)) => Ok(done(&job, work.resumed())),
            }
        };
        if ctx.operation() == "process" {
            ctx.start_resumable(work)
        } else {
            ctx.start_async(work)
        }
    }
}

impl Jobs for JobsImpl {
    async fn double(&self, ctx: OperationContext, input: u64) -> OperationResult<u64> {
        self.record(&ctx);
        Ok((input * 2).into())
    }

    async fn process(&self, ctx: OperationContext, input: Job) -> OperationResult<String> {
        self.record(&ctx);
        self.work(&ctx, input, |job, resumed| {
            if resumed {
                format!("{} done (resumed)", job.id)
            } else {
                format!("{} done", job.id)
            }
        })
    }

    async fn transfer(&self, ctx: OperationContext, input: Job) -> OperationResult<String> {
        self.record(&ctx);
        self.work(&ctx, input, |job, _| format!("{} transferred", job.id))
    }

    async fn refuse(&self, ctx: OperationContext, input: String) -> OperationResult<()> {
        self.record(&ctx);
        if input == "operation" {
            Err(OperationError::failed("refused on purpose")
                .with_details(&serde_json::json!({ "why": "policy" }))
                .into())
        } else {
            Err(HandlerError::bad_request(format!("cannot take `{input}`")).into())
        }
    }

    async fn flaky(&self, ctx: OperationContext, input: Flaky) -> OperationResult<u32> {
        let n = self.record(&ctx) as u32;
        if n <= input.fail_first {
            match input.how.as_str() {
                "panic" => panic!("flaky execution {n} panicked"),
                "stall" => tokio::time::sleep(Duration::from_secs(3600)).await,
                _ => return Err(HandlerError::unavailable(format!("execution {n} failed")).into()),
            }
        }
        Ok(n.into())
    }

    async fn hold(&self, ctx: OperationContext, input: u64) -> OperationResult<u64> {
        self.record(&ctx);
        let permit = self.gate.acquire().await.unwrap();
        permit.forget();
        Ok(input.into())
    }
}

/// Durability settings with short intervals, for tests in real time.
pub fn quick_options(owner: &str) -> DurabilityOptions {
    DurabilityOptions::default()
        .owner(owner)
        .lease(Duration::from_millis(600))
        .takeover_interval(Duration::from_millis(100))
        .outbox(quick_outbox())
}

/// An outbox retrying every 50 ms (no jitter), polled every 20 ms.
pub fn quick_outbox() -> OutboxOptions {
    OutboxOptions::default()
        .retry(
            nexus_runtime::machinery::RetryPolicy::default()
                .initial_interval(Duration::from_millis(50))
                .maximum_interval(Duration::from_millis(50))
                .jitter(0.0),
        )
        .poll_interval(Duration::from_millis(20))
        .visibility(Duration::from_secs(2))
}

/// A callback to `url` with a header, as a start request over HTTP gives it.
pub fn url_callback(url: &str) -> Callback {
    Callback::Url {
        url: url.to_owned(),
        headers: BTreeMap::from([("x-caller-operation".to_owned(), "op-1".to_owned())]),
    }
}

/// A dispatcher serving `jobs` on `store`, delivering completions to loopback callbacks.
pub fn dispatcher(
    jobs: &JobsImpl,
    store: Arc<dyn Store>,
    options: DurabilityOptions,
) -> Dispatcher {
    dispatcher_with_guard(jobs, store, options, CallbackGuard::loopback())
}

/// A dispatcher serving `jobs` on `store`, delivering completions where `guard` allows.
pub fn dispatcher_with_guard(
    jobs: &JobsImpl,
    store: Arc<dyn Store>,
    options: DurabilityOptions,
    guard: CallbackGuard,
) -> Dispatcher {
    Dispatcher::builder()
        .service(JobsService::handler(jobs.clone()))
        .callback_guard(guard)
        .store(store)
        .durability(options)
        .build()
}

/// A start request for `jobs.v1/{operation}`.
pub fn start<T: Serialize + 'static>(operation: &str, request_id: &str, input: &T) -> StartRequest {
    StartRequest {
        service: "jobs.v1".into(),
        operation: operation.into(),
        request_id: request_id.into(),
        headers: BTreeMap::from([("x-team".to_owned(), "payments".to_owned())]),
        links: Vec::new(),
        callback: None,
        request_deadline: None,
        operation_timeout: None,
        input: codec::encode(input).unwrap(),
    }
}

/// An in-process completion sink: what the in-process transport hands a handler.
#[derive(Clone)]
pub struct Sink(mpsc::UnboundedSender<Completion>);

impl Sink {
    pub fn new() -> (Self, mpsc::UnboundedReceiver<Completion>) {
        let (tx, rx) = mpsc::unbounded_channel();
        (Self(tx), rx)
    }

    pub fn callback(&self) -> Callback {
        Callback::Local(Arc::new(self.clone()))
    }
}

impl CompletionSink for Sink {
    fn complete(&self, completion: Completion) -> BoxFuture<'static, Result<(), HandlerError>> {
        let _ = self.0.send(completion);
        async { Ok(()) }.boxed()
    }
}

/// The decoded result of a successful completion.
pub fn result_of(completion: &Completion) -> String {
    let content = completion
        .outcome
        .as_ref()
        .unwrap_or_else(|e| panic!("the operation did not succeed: {e:?}"));
    codec::decode(content).unwrap()
}
