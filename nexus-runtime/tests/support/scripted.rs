//! Shared by the machinery tests: a tiny service, and a scripted in-memory transport that answers
//! start and cancel requests from a script and records every request it gets.

#![allow(dead_code)]

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::FutureExt as _;
use futures::future::BoxFuture;
use nexus_runtime::completion::{Callback, Completion};
use nexus_runtime::error::{CallError, HandlerError, OperationError};
use nexus_runtime::transport::{CancelRequest, StartRequest, StartResponse, Transport};
use nexus_runtime::{OperationContext, OperationResult, codec, nexus_service};
use tokio::time::Instant;

/// A service for the tests; the scripted transport answers for it.
#[nexus_service(name = "echo.v1")]
pub trait Echo {
    /// Echoes its input.
    async fn echo(&self, ctx: OperationContext, input: String) -> OperationResult<String>;
}

/// The operation descriptor.
pub type EchoOp = echo::Echo;

/// One scripted answer.
#[derive(Clone, Debug)]
pub enum Answer {
    /// A sync result.
    Sync(String),
    /// An async start with this token.
    Async(String),
    /// This error.
    Fail(CallError),
    /// No answer, ever (the attempt times out).
    Hang,
    /// This answer, after a delay.
    After(Duration, Box<Answer>),
}

impl Answer {
    pub fn unavailable() -> Self {
        Self::Fail(CallError::Handler(HandlerError::unavailable("try later")))
    }

    pub fn after(delay: Duration, answer: Answer) -> Self {
        Self::After(delay, Box::new(answer))
    }
}

/// What the transport received.
#[derive(Clone, Debug)]
pub struct SeenStart {
    pub at: Instant,
    pub request_id: String,
    pub request_deadline: Option<Instant>,
    pub operation_timeout: Option<Duration>,
    pub input: String,
}

#[derive(Default)]
struct State {
    starts: Vec<SeenStart>,
    cancels: Vec<(Instant, String)>,
    start_script: VecDeque<Answer>,
    cancel_script: VecDeque<Answer>,
    callbacks: Vec<(String, Callback)>,
}

/// A transport answering from scripts. When a script runs out, starts answer `Sync(input)` and
/// cancels succeed.
#[derive(Clone, Default)]
pub struct Scripted {
    state: Arc<Mutex<State>>,
    name: &'static str,
}

impl Scripted {
    pub fn new(name: &'static str) -> Self {
        Self {
            state: Arc::default(),
            name,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().expect("lock")
    }

    /// Appends answers to the start script.
    pub fn starts(&self, answers: impl IntoIterator<Item = Answer>) -> &Self {
        self.lock().start_script.extend(answers);
        self
    }

    /// Appends answers to the cancel script (`Sync` or `Async` mean "acknowledged").
    pub fn cancels(&self, answers: impl IntoIterator<Item = Answer>) -> &Self {
        self.lock().cancel_script.extend(answers);
        self
    }

    pub fn seen_starts(&self) -> Vec<SeenStart> {
        self.lock().starts.clone()
    }

    pub fn start_count(&self) -> usize {
        self.lock().starts.len()
    }

    pub fn seen_cancels(&self) -> Vec<(Instant, String)> {
        self.lock().cancels.clone()
    }

    /// Delivers the completion of the async operation `token` to its caller's callback.
    pub async fn complete(&self, token: &str, outcome: Result<String, OperationError>) {
        self.try_complete(token, outcome)
            .await
            .expect("completion refused");
    }

    /// Delivers a completion and returns what the caller answered.
    pub async fn try_complete(
        &self,
        token: &str,
        outcome: Result<String, OperationError>,
    ) -> Result<(), HandlerError> {
        self.try_complete_as(token, token, outcome).await
    }

    /// Completes through the callback of the operation started with token `token`, naming token
    /// `sent` in the completion.
    pub async fn try_complete_as(
        &self,
        token: &str,
        sent: &str,
        outcome: Result<String, OperationError>,
    ) -> Result<(), HandlerError> {
        let callback = self
            .lock()
            .callbacks
            .iter()
            .find(|(t, _)| t == token)
            .map(|(_, c)| c.clone())
            .expect("no callback for this token");
        let Callback::Local(sink) = callback else {
            panic!("expected an in-process callback")
        };
        let completion = Completion {
            token: sent.to_owned(),
            outcome: outcome.map(|s| codec::encode(&s).expect("encode")),
            links: Vec::new(),
            start_time: None,
            close_time: None,
        };
        sink.complete(completion).await
    }
}

fn play<T: Send + 'static>(
    answer: Answer,
    ok: impl FnOnce(Answer) -> Result<T, CallError> + Send + 'static,
) -> BoxFuture<'static, Result<T, CallError>> {
    async move {
        let mut answer = answer;
        loop {
            match answer {
                Answer::After(delay, next) => {
                    tokio::time::sleep(delay).await;
                    answer = *next;
                }
                Answer::Hang => std::future::pending::<()>().await,
                Answer::Fail(e) => return Err(e),
                other => return ok(other),
            }
        }
    }
    .boxed()
}

impl Transport for Scripted {
    fn start(&self, request: StartRequest) -> BoxFuture<'static, Result<StartResponse, CallError>> {
        let input: String = codec::decode(&request.input).expect("decode");
        let mut state = self.lock();
        state.starts.push(SeenStart {
            at: Instant::now(),
            request_id: request.request_id.clone(),
            request_deadline: request.request_deadline,
            operation_timeout: request.operation_timeout,
            input: input.clone(),
        });
        let answer = state
            .start_script
            .pop_front()
            .unwrap_or(Answer::Sync(input));
        let callbacks = self.state.clone();
        let callback = request.callback.clone();
        play(answer, move |answer| match answer {
            Answer::Sync(output) => Ok(StartResponse::Sync {
                output: codec::encode(&output).expect("encode"),
                links: Vec::new(),
            }),
            Answer::Async(token) => {
                if let Some(callback) = callback {
                    callbacks
                        .lock()
                        .expect("lock")
                        .callbacks
                        .push((token.clone(), callback));
                }
                Ok(StartResponse::Async {
                    token,
                    links: Vec::new(),
                })
            }
            _ => unreachable!(),
        })
    }

    fn cancel(&self, request: CancelRequest) -> BoxFuture<'static, Result<(), CallError>> {
        let mut state = self.lock();
        state.cancels.push((Instant::now(), request.token.clone()));
        let answer = state
            .cancel_script
            .pop_front()
            .unwrap_or(Answer::Sync(String::new()));
        play(answer, |_| Ok(()))
    }
}

impl std::fmt::Debug for Scripted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name)
    }
}

/// Seconds since `start`, as a float, for readable assertions.
pub fn secs(start: Instant, at: Instant) -> f64 {
    (at - start).as_secs_f64()
}

/// Lets every spawned task run until all are idle (paused time does not advance while tasks are
/// runnable).
pub async fn settle() {
    for _ in 0..20 {
        tokio::task::yield_now().await;
    }
}

/// The callback secret of operation `id` as `client`'s store keeps it: what a callback URL of the
/// operation carries, for completions delivered as the callback receiver does.
pub async fn callback_secret(client: &nexus_runtime::Client, id: uuid::Uuid) -> String {
    client
        .store()
        .get(id)
        .await
        .expect("read")
        .expect("recorded")
        .callback_secret
        .expect("a callback secret")
        .expose()
        .to_owned()
}

/// Delivers `completion` to operation `id` of `client` as its callback receiver does: with the
/// operation's callback secret.
pub async fn deliver(
    client: &nexus_runtime::Client,
    id: uuid::Uuid,
    completion: Completion,
) -> Result<(), HandlerError> {
    let secret = callback_secret(client, id).await;
    client
        .deliver_completion(&id.to_string(), Some(&secret), completion)
        .await
}
