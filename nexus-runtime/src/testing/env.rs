//! [`TestEnv`]: a dispatcher and a client wired together in one process.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use crate::client::{Client, EndpointConfig};
use crate::machinery::Jitter;
use crate::service::{Dispatcher, DispatcherBuilder, ServiceHandler};
use crate::store::MemoryStore;
use crate::transport::InProcessTransport;

/// The endpoint name a [`TestEnv`]'s client calls its dispatcher by, unless
/// [`TestEnvBuilder::endpoint`] says otherwise.
const DEFAULT_ENDPOINT: &str = "test";

/// How many times [`TestEnv::settle`] lets the other tasks run.
const SETTLE_YIELDS: usize = 64;

/// A dispatcher serving some services and a client calling them in-process, with seeded jitter
/// (reproducible retry schedules) and, optionally, one [`MemoryStore`] shared by both sides.
///
/// Calls go through the whole runtime: the client's machinery (retries, breaker, timeouts,
/// cancellation), the in-process transport, the dispatcher (decoding, deadlines, panics, async
/// work and its completion). Build it inside a Tokio runtime; with
/// `#[tokio::test(start_paused = true)]`, time stands still unless the test moves it
/// ([`advance`](Self::advance)) or every task waits on a timer, so retry schedules and timeouts
/// take no real time.
///
/// ```
/// use std::time::Duration;
/// use nexus_runtime::testing::TestEnv;
/// use nexus_runtime::{OperationContext, OperationResult, nexus_service};
///
/// #[nexus_service(name = "echo.v1")]
/// pub trait Echo {
///     async fn echo(&self, ctx: OperationContext, text: String) -> OperationResult<String>;
/// }
/// struct Parrot;
/// impl Echo for Parrot {
///     async fn echo(&self, ctx: OperationContext, text: String) -> OperationResult<String> {
///         // Answers later: an async operation completed by the runtime.
///         ctx.start_async(move |_| async move {
///             tokio::time::sleep(Duration::from_secs(60)).await;
///             Ok(text)
///         })
///     }
/// }
///
/// # #[tokio::main(flavor = "current_thread", start_paused = true)]
/// # async fn main() {
/// let env = TestEnv::builder().service(EchoService::handler(Parrot)).memory_store().build();
/// let echo = EchoClient::new(env.client(), env.endpoint());
/// let handle = echo.echo("hi".into()).start().await.unwrap();
/// assert!(handle.token().is_some(), "answered asynchronously");
/// env.advance(Duration::from_secs(60)).await; // instantly, on the paused clock
/// assert_eq!(handle.result().await.unwrap(), "hi");
/// # }
/// ```
pub struct TestEnv {
    dispatcher: Dispatcher,
    client: Client,
    endpoint: String,
    store: Option<Arc<MemoryStore>>,
}

impl fmt::Debug for TestEnv {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TestEnv")
            .field("endpoint", &self.endpoint)
            .field("services", &self.dispatcher.service_names())
            .field("store", &self.store.is_some())
            .finish_non_exhaustive()
    }
}

impl TestEnv {
    /// An environment serving `service` (such as `FraudService::handler(desk)` or a
    /// [`MockService`](super::MockService)), without a store.
    pub fn new(service: impl ServiceHandler) -> Self {
        Self::builder().service(service).build()
    }

    /// A builder, for several services, a store or endpoint settings.
    pub fn builder() -> TestEnvBuilder {
        TestEnvBuilder {
            dispatcher: Dispatcher::builder(),
            endpoint: DEFAULT_ENDPOINT.to_owned(),
            configure: None,
            store: false,
            jitter_seed: 0,
        }
    }

    /// The client: give it to a generated stub, `FraudClient::new(env.client(), env.endpoint())`.
    pub fn client(&self) -> Client {
        self.client.clone()
    }

    /// The name of the endpoint the client calls the dispatcher by.
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// The dispatcher serving the services.
    pub fn dispatcher(&self) -> &Dispatcher {
        &self.dispatcher
    }

    /// The store both sides record their operations in, if the environment has one.
    pub fn store(&self) -> Option<&Arc<MemoryStore>> {
        self.store.as_ref()
    }

    /// Lets time pass: every timer due within `by` fires, in order, with the tasks it wakes run
    /// in between, as if `by` had passed (retries, backoff delays, timeouts, handler work that
    /// sleeps); then the tasks woken last run too ([`settle`](Self::settle)).
    ///
    /// On Tokio's paused clock (`#[tokio::test(start_paused = true)]`) this takes no real time;
    /// on a running clock it waits for real.
    pub async fn advance(&self, by: Duration) {
        tokio::time::sleep(by).await;
        self.settle().await;
    }

    /// Lets the tasks that are ready run (the client's drivers, async work, completions) without
    /// moving the clock. On a current-thread runtime, what a call set in motion and can do now
    /// is done when this returns.
    pub async fn settle(&self) {
        for _ in 0..SETTLE_YIELDS {
            tokio::task::yield_now().await;
        }
    }

    /// Stops the client and the dispatcher (running work is dropped).
    pub async fn shutdown(self) {
        self.client.shutdown().await;
        self.dispatcher.shutdown().await;
    }
}

/// Configures a [`TestEnv`].
pub struct TestEnvBuilder {
    dispatcher: DispatcherBuilder,
    endpoint: String,
    configure: Option<Box<dyn FnOnce(EndpointConfig) -> EndpointConfig>>,
    store: bool,
    jitter_seed: u64,
}

impl fmt::Debug for TestEnvBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TestEnvBuilder")
            .field("endpoint", &self.endpoint)
            .field("store", &self.store)
            .field("jitter_seed", &self.jitter_seed)
            .finish_non_exhaustive()
    }
}

impl TestEnvBuilder {
    /// Serves `service` (several may be served).
    #[must_use]
    pub fn service(mut self, service: impl ServiceHandler) -> Self {
        self.dispatcher = self.dispatcher.service(service);
        self
    }

    /// Records both sides' operations in one [`MemoryStore`]: starts are deduplicated by request
    /// id, completions go through the dispatcher's outbox, and the client's operations outlive
    /// their handles, as with a real store.
    #[must_use]
    pub fn memory_store(mut self) -> Self {
        self.store = true;
        self
    }

    /// The endpoint name the client calls the dispatcher by (default `test`).
    #[must_use]
    pub fn endpoint(mut self, name: impl Into<String>) -> Self {
        self.endpoint = name.into();
        self
    }

    /// Adjusts the endpoint's configuration: retry policy, breaker, limits, timeouts.
    ///
    /// ```
    /// # use nexus_runtime::testing::TestEnv;
    /// use std::time::Duration;
    /// use nexus_runtime::machinery::RetryPolicy;
    /// let builder = TestEnv::builder().configure_endpoint(|endpoint| {
    ///     endpoint
    ///         .retry(RetryPolicy::default().maximum_attempts(3))
    ///         .schedule_to_close_timeout(Duration::from_secs(30))
    /// });
    /// # let _ = builder;
    /// ```
    #[must_use]
    pub fn configure_endpoint(
        mut self,
        configure: impl FnOnce(EndpointConfig) -> EndpointConfig + 'static,
    ) -> Self {
        self.configure = Some(Box::new(configure));
        self
    }

    /// The seed of the client's backoff jitter (default 0): the same seed, the same retry
    /// schedule.
    #[must_use]
    pub fn jitter_seed(mut self, seed: u64) -> Self {
        self.jitter_seed = seed;
        self
    }

    /// Builds the environment. Call it inside a Tokio runtime.
    pub fn build(self) -> TestEnv {
        let store = self.store.then(|| Arc::new(MemoryStore::new()));
        let mut dispatcher = self.dispatcher;
        if let Some(store) = &store {
            dispatcher = dispatcher.store(store.clone());
        }
        let dispatcher = dispatcher.build();
        let mut endpoint = EndpointConfig::new(InProcessTransport::new(dispatcher.clone()));
        if let Some(configure) = self.configure {
            endpoint = configure(endpoint);
        }
        let mut client = Client::builder()
            .endpoint(self.endpoint.clone(), endpoint)
            .jitter(Jitter::seeded(self.jitter_seed));
        if let Some(store) = &store {
            client = client.store(store.clone());
        }
        TestEnv {
            dispatcher,
            client: client.build(),
            endpoint: self.endpoint,
            store,
        }
    }
}
