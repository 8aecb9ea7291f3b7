//! [`MockService`]: another team's service, answered by the test's closures.

use std::any::Any;
use std::collections::HashMap;
use std::fmt;
use std::marker::PhantomData;
use std::sync::{Arc, Mutex, MutexGuard};

use serde::de::DeserializeOwned;

use super::reply::{Reply, StartQueue, Started};
use crate::codec::{self, CodecError, Content};
use crate::error::HandlerError;
use crate::operation::{Headers, Operation, OperationContext};
use crate::service::{Service, ServiceHandler, StartFuture, typed_start};

type Answer = Arc<dyn Fn(OperationContext, Content) -> StartFuture + Send + Sync>;

/// A stand-in for a service, for the tests of its callers: each operation is answered by a
/// closure registered with [`on`](Self::on), typed by the operation's generated descriptor, and
/// every start request it receives is recorded ([`calls`](Self::calls)).
///
/// It is a [`ServiceHandler`]: serve it with a [`TestEnv`](super::TestEnv) (or any dispatcher,
/// even behind an HTTP server). Clones share the answers and the record, so keep one to assert
/// on. Answers registered after it is served apply to the next calls. An operation of the
/// service without an answer is refused with NOT_IMPLEMENTED, naming it.
///
/// ```
/// use nexus_runtime::testing::{MockService, Reply, TestEnv};
/// use nexus_runtime::{OperationContext, OperationResult, nexus_service};
///
/// #[nexus_service(name = "ledger.v1")]
/// pub trait Ledger {
///     async fn post(&self, ctx: OperationContext, amount: i64) -> OperationResult<String>;
/// }
///
/// # #[tokio::main(flavor = "current_thread", start_paused = true)]
/// # async fn main() {
/// let mock = MockService::of::<LedgerService>();
/// let posts = mock.on::<ledger::Post>(|_| Reply::pending()).started::<ledger::Post>();
/// let env = TestEnv::new(mock.clone());
/// let ledger = LedgerClient::new(env.client(), env.endpoint());
///
/// let handle = ledger.post(250).start().await.unwrap(); // 201: a token, no result yet
/// let started = posts.next().await;
/// assert_eq!((started.input(), started.token()), (&250, handle.token().unwrap()));
/// started.complete("entry-1".to_owned()); // when the test says
/// assert_eq!(handle.result().await.unwrap(), "entry-1");
///
/// let call = &mock.calls()[0];
/// assert_eq!(call.operation, "post");
/// assert_eq!(call.input_json(), Some(serde_json::json!(250)));
/// # }
/// ```
#[derive(Clone)]
pub struct MockService {
    inner: Arc<Inner>,
}

struct Inner {
    name: String,
    /// The service's operations, from its definition.
    operations: Vec<String>,
    answers: Mutex<HashMap<String, Answer>>,
    /// One [`StartQueue`] per operation, as `Arc<StartQueue<Op>>`, by wire name.
    queues: Mutex<HashMap<String, Arc<dyn Any + Send + Sync>>>,
    calls: Mutex<Vec<MockCall>>,
}

impl fmt::Debug for MockService {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MockService")
            .field("name", &self.inner.name)
            .field("operations", &self.answered_operations())
            .field("calls", &lock(&self.inner.calls).len())
            .finish()
    }
}

/// One start request a [`MockService`] received.
#[derive(Clone, Debug)]
pub struct MockCall {
    /// The operation's wire name.
    pub operation: String,
    /// The input, as received.
    pub input: Content,
    /// The request headers (lower-case names).
    pub headers: Headers,
    /// The request id (the same on every retry of one call).
    pub request_id: String,
}

impl MockCall {
    /// The input as JSON, if it is JSON.
    pub fn input_json(&self) -> Option<serde_json::Value> {
        codec::decode(&self.input).ok()
    }

    /// The input decoded as `T` (such as the operation's `Input` type).
    pub fn input_as<T: DeserializeOwned + 'static>(&self) -> Result<T, CodecError> {
        codec::decode(&self.input)
    }

    /// One request header, by case-insensitive name.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .get(&name.to_ascii_lowercase())
            .map(String::as_str)
    }
}

impl MockService {
    /// A mock of the service `S` (a generated `<Trait>Service`), with no answers yet: its
    /// operations are refused with NOT_IMPLEMENTED until they get one, and operations that `S`
    /// does not have with NOT_FOUND, as a real handler does.
    pub fn of<S: Service>() -> Self {
        let operations = S::definition()
            .services
            .remove(S::NAME)
            .map(|service| service.operations.into_keys().collect())
            .unwrap_or_default();
        Self {
            inner: Arc::new(Inner {
                name: S::NAME.to_owned(),
                operations,
                answers: Mutex::default(),
                queues: Mutex::default(),
                calls: Mutex::default(),
            }),
        }
    }

    /// Answers the operation `Op` (a generated descriptor, such as `fraud::GetQuickScore`) with
    /// `answer`, called with each start's decoded input; replaces an earlier answer. An input
    /// that does not decode as `Op::Input` is refused with BAD_REQUEST, as a real handler does.
    ///
    /// # Panics
    ///
    /// If `Op` belongs to a service other than the one mocked: a mistake in the test.
    pub fn on<Op: Operation>(
        &self,
        answer: impl Fn(&Op::Input) -> Reply<Op::Output> + Send + Sync + 'static,
    ) -> &Self {
        let service = <Op::Service as Service>::NAME;
        assert!(
            service == self.inner.name,
            "`{}` is an operation of `{service}`, not of the mocked service `{}`",
            Op::NAME,
            self.inner.name
        );
        let answer = Arc::new(answer);
        let queue = self.queue::<Op>();
        let start: Answer = Arc::new(move |ctx, input| {
            let (answer, queue) = (answer.clone(), queue.clone());
            typed_start::<Op, _, _>(ctx, input, move |ctx, input| {
                let reply = answer(&input);
                std::future::ready(reply.answer::<Op>(&ctx, input, queue))
            })
        });
        lock(&self.inner.answers).insert(Op::NAME.to_owned(), start);
        self
    }

    /// The starts of `Op` answered with [`Reply::pending`], for the test to complete, fail or
    /// cancel.
    pub fn started<Op: Operation>(&self) -> Started<Op> {
        Started {
            queue: self.queue::<Op>(),
            _op: PhantomData,
        }
    }

    /// Every start request received, in order (including those refused, and those of
    /// operations the service does not have).
    pub fn calls(&self) -> Vec<MockCall> {
        lock(&self.inner.calls).clone()
    }

    /// The start requests of `Op` received, in order.
    pub fn calls_of<Op: Operation>(&self) -> Vec<MockCall> {
        lock(&self.inner.calls)
            .iter()
            .filter(|call| call.operation == Op::NAME)
            .cloned()
            .collect()
    }

    /// The inputs of the start requests of `Op` received, in order, decoded (those that did not
    /// decode are left out: they were refused).
    pub fn inputs<Op: Operation>(&self) -> Vec<Op::Input> {
        lock(&self.inner.calls)
            .iter()
            .filter(|call| call.operation == Op::NAME)
            .filter_map(|call| call.input_as::<Op::Input>().ok())
            .collect()
    }

    /// Forgets the calls received so far (the answers stay).
    pub fn clear_calls(&self) {
        lock(&self.inner.calls).clear();
    }

    fn queue<Op: Operation>(&self) -> Arc<StartQueue<Op>> {
        let mut queues = lock(&self.inner.queues);
        let entry = queues
            .entry(Op::NAME.to_owned())
            .or_insert_with(|| Arc::new(StartQueue::<Op>::new()));
        match entry.clone().downcast::<StartQueue<Op>>() {
            Ok(queue) => queue,
            // Another descriptor with this wire name (from another service) was registered:
            // `on` refuses that, so this one starts afresh.
            Err(_) => {
                let queue = Arc::new(StartQueue::<Op>::new());
                *entry = queue.clone();
                queue
            }
        }
    }
}

impl ServiceHandler for MockService {
    fn name(&self) -> &str {
        &self.inner.name
    }

    fn operation_names(&self) -> Vec<&str> {
        self.inner.operations.iter().map(String::as_str).collect()
    }

    fn start(&self, operation: &str, ctx: OperationContext, input: Content) -> Option<StartFuture> {
        lock(&self.inner.calls).push(MockCall {
            operation: operation.to_owned(),
            input: input.clone(),
            headers: ctx.headers().clone(),
            request_id: ctx.request_id().to_owned(),
        });
        if !self.inner.operations.iter().any(|known| known == operation) {
            return None;
        }
        let answer = lock(&self.inner.answers).get(operation).cloned();
        Some(match answer {
            Some(answer) => answer(ctx, input),
            None => {
                let error = HandlerError::not_implemented(format!(
                    "the mock of `{}` has no answer for operation `{operation}`; register one \
                     with `MockService::on`",
                    self.inner.name
                ));
                Box::pin(std::future::ready(Err(error.into())))
            }
        })
    }
}

impl MockService {
    /// The wire names of the operations with an answer, sorted.
    pub fn answered_operations(&self) -> Vec<String> {
        let mut names: Vec<String> = lock(&self.inner.answers).keys().cloned().collect();
        names.sort();
        names
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}
