//! Shared by the fault tests: a contract whose handler misbehaves on demand, a wire log of what a
//! server was asked and answered (which can also inject 503s), a listener that resets or closes
//! connections before answering, and a TCP peer that accepts and never answers.
#![allow(dead_code, clippy::unwrap_used)]

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::Request;
use axum::middleware::{Next, from_fn};
use axum::response::{IntoResponse, Response};
use http::StatusCode;
use nexus_runtime::service::Dispatcher;
use nexus_runtime::{HandlerError, OperationContext, OperationError, OperationResult};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Notify, watch};
use tokio::task::JoinHandle;
use tokio::time::Instant;

/// The contract the fault tests call.
#[nexus_runtime::nexus_service(name = "faults.v1")]
pub trait Faulty {
    /// Sync: UNAVAILABLE while the handler's burst lasts, then the input back (after the
    /// handler's success delay).
    async fn flaky(&self, ctx: OperationContext, input: String) -> OperationResult<String>;
    /// Sync: never answers; its future is dropped at the request deadline.
    async fn hang(&self, ctx: OperationContext, input: String) -> OperationResult<String>;
    /// Async: runs until the caller cancels it (canceled) or the test releases it (the input).
    async fn wait(&self, ctx: OperationContext, input: String) -> OperationResult<String>;
}

/// One start the handler saw.
#[derive(Clone, Debug)]
pub struct SeenStart {
    pub operation: &'static str,
    pub input: String,
    pub request_id: String,
    /// The deadline the handler was given (from `Request-Timeout`), from when it started.
    pub deadline: Option<Duration>,
    pub at: Instant,
    /// When a successful `flaky` answered.
    pub answered: Option<Instant>,
}

/// A hanging handler future that was dropped.
#[derive(Clone, Copy, Debug)]
pub struct Dropped {
    pub started: Instant,
    pub dropped: Instant,
}

#[derive(Default)]
struct State {
    /// UNAVAILABLE answers `flaky` still gives.
    burst: AtomicU32,
    success_delay: Mutex<Duration>,
    /// How long a canceled `wait` takes to clean up before completing as canceled.
    cancel_cleanup: Mutex<Duration>,
    starts: Mutex<Vec<SeenStart>>,
    dropped: Mutex<Vec<Dropped>>,
    /// Inputs of `wait` operations whose work saw the caller's cancellation.
    cancels_seen: Mutex<Vec<String>>,
    changed: Notify,
}

/// The `Faulty` handler and what it saw. Clones share everything.
#[derive(Clone)]
pub struct Handler {
    state: Arc<State>,
    released: watch::Sender<Vec<String>>,
}

impl Default for Handler {
    fn default() -> Self {
        Self::new()
    }
}

impl Handler {
    pub fn new() -> Self {
        let (released, _) = watch::channel(Vec::new());
        Self {
            state: Arc::default(),
            released,
        }
    }

    /// The next `n` `flaky` starts answer UNAVAILABLE.
    pub fn burst(&self, n: u32) {
        self.state.burst.store(n, Ordering::SeqCst);
    }

    /// Successful `flaky` starts answer after `delay`.
    pub fn success_delay(&self, delay: Duration) {
        *self.state.success_delay.lock().unwrap() = delay;
    }

    /// A canceled `wait` completes `delay` after it saw the cancellation.
    pub fn cancel_cleanup(&self, delay: Duration) {
        *self.state.cancel_cleanup.lock().unwrap() = delay;
    }

    /// A dispatcher serving this handler.
    pub fn dispatcher(&self) -> Dispatcher {
        Dispatcher::builder()
            .service(FaultyService::handler(self.clone()))
            .build()
    }

    pub fn starts(&self) -> Vec<SeenStart> {
        self.state.starts.lock().unwrap().clone()
    }

    pub fn dropped(&self) -> Vec<Dropped> {
        self.state.dropped.lock().unwrap().clone()
    }

    pub fn cancels_seen(&self) -> Vec<String> {
        self.state.cancels_seen.lock().unwrap().clone()
    }

    /// Completes the `wait` operation started with `input`.
    pub fn release(&self, input: &str) {
        self.released.send_modify(|r| r.push(input.to_owned()));
    }

    /// Waits (at most 5 s) until `condition` holds of this handler.
    pub async fn wait_until(&self, what: &str, condition: impl Fn(&Self) -> bool) {
        let waited = tokio::time::timeout(Duration::from_secs(5), async {
            loop {
                let changed = self.state.changed.notified();
                if condition(self) {
                    return;
                }
                changed.await;
            }
        })
        .await;
        assert!(waited.is_ok(), "the handler never saw {what}");
    }

    fn record(&self, operation: &'static str, ctx: &OperationContext, input: &str) -> usize {
        let now = Instant::now();
        let mut starts = self.state.starts.lock().unwrap();
        starts.push(SeenStart {
            operation,
            input: input.to_owned(),
            request_id: ctx.request_id().to_owned(),
            deadline: ctx.deadline().map(|d| d.saturating_duration_since(now)),
            at: now,
            answered: None,
        });
        self.state.changed.notify_waiters();
        starts.len() - 1
    }
}

/// Records its handler future's drop.
struct DropGuard {
    state: Arc<State>,
    started: Instant,
}

impl Drop for DropGuard {
    fn drop(&mut self) {
        self.state.dropped.lock().unwrap().push(Dropped {
            started: self.started,
            dropped: Instant::now(),
        });
        self.state.changed.notify_waiters();
    }
}

impl Faulty for Handler {
    async fn flaky(&self, ctx: OperationContext, input: String) -> OperationResult<String> {
        let index = self.record("flaky", &ctx, &input);
        let burst = self
            .state
            .burst
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1));
        if let Ok(left) = burst {
            return Err(
                HandlerError::unavailable(format!("503 burst: {} more to come", left - 1)).into(),
            );
        }
        let delay = *self.state.success_delay.lock().unwrap();
        tokio::time::sleep(delay).await;
        self.state.starts.lock().unwrap()[index].answered = Some(Instant::now());
        self.state.changed.notify_waiters();
        Ok(input.into())
    }

    async fn hang(&self, ctx: OperationContext, input: String) -> OperationResult<String> {
        self.record("hang", &ctx, &input);
        let _guard = DropGuard {
            state: self.state.clone(),
            started: Instant::now(),
        };
        std::future::pending::<()>().await;
        Ok(input.into())
    }

    async fn wait(&self, ctx: OperationContext, input: String) -> OperationResult<String> {
        self.record("wait", &ctx, &input);
        let state = self.state.clone();
        let mut released = self.released.subscribe();
        ctx.start_async(move |work| async move {
            let canceled = tokio::select! {
                () = work.cancelled() => true,
                _ = released.wait_for(|r| r.contains(&input)) => false,
            };
            if !canceled {
                return Ok(input);
            }
            state.cancels_seen.lock().unwrap().push(input.clone());
            state.changed.notify_waiters();
            let cleanup = *state.cancel_cleanup.lock().unwrap();
            tokio::time::sleep(cleanup).await;
            Err(OperationError::canceled(format!(
                "`{input}` canceled as the caller asked"
            )))
        })
    }
}

/// One request a [`WireLog`] saw, and the status it was answered with (`None` when the client
/// went away first).
#[derive(Clone, Debug)]
pub struct Exchange {
    pub path: String,
    pub request_id: Option<String>,
    pub request_timeout: Option<String>,
    pub token: Option<String>,
    pub received: Instant,
    pub status: Option<u16>,
    pub answered: Option<Instant>,
}

impl Exchange {
    pub fn is_cancel(&self) -> bool {
        self.path.ends_with("/cancel")
    }
}

/// Wraps a router: records every request with its answer, and answers a bare 503 (as an
/// overloaded proxy would) to the next injected number of requests.
#[derive(Clone, Default)]
pub struct WireLog {
    exchanges: Arc<Mutex<Vec<Exchange>>>,
    fail_cancels: Arc<AtomicU32>,
    fail_any: Arc<AtomicU32>,
    cancel_delay: Arc<Mutex<Duration>>,
    changed: Arc<Notify>,
}

fn header(request: &Request, name: &str) -> Option<String> {
    request
        .headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

impl WireLog {
    /// The next `n` cancel requests get a 503.
    pub fn fail_cancels(&self, n: u32) {
        self.fail_cancels.store(n, Ordering::SeqCst);
    }

    /// The next `n` requests get a 503.
    pub fn fail_any(&self, n: u32) {
        self.fail_any.store(n, Ordering::SeqCst);
    }

    /// Cancel requests are answered `delay` after the handler answered them.
    pub fn delay_cancel_answers(&self, delay: Duration) {
        *self.cancel_delay.lock().unwrap() = delay;
    }

    pub fn exchanges(&self) -> Vec<Exchange> {
        self.exchanges.lock().unwrap().clone()
    }

    /// The statuses of the requests matching `filter` (`0` for no answer).
    pub fn statuses(&self, filter: impl Fn(&Exchange) -> bool) -> Vec<u16> {
        self.exchanges()
            .iter()
            .filter(|e| filter(e))
            .map(|e| e.status.unwrap_or(0))
            .collect()
    }

    /// Waits (at most 5 s) until `condition` holds of the exchanges so far.
    pub async fn wait_until(&self, what: &str, condition: impl Fn(&[Exchange]) -> bool) {
        let waited = tokio::time::timeout(Duration::from_secs(5), async {
            loop {
                let changed = self.changed.notified();
                if condition(&self.exchanges()) {
                    return;
                }
                changed.await;
            }
        })
        .await;
        assert!(
            waited.is_ok(),
            "the wire never showed {what}: {:#?}",
            self.exchanges()
        );
    }

    pub fn wrap(&self, router: Router) -> Router {
        let log = self.clone();
        router.layer(from_fn(move |request: Request, next: Next| {
            let log = log.clone();
            async move { log.exchange(request, next).await }
        }))
    }

    async fn exchange(&self, request: Request, next: Next) -> Response {
        let entry = Exchange {
            path: request.uri().path().to_owned(),
            request_id: header(&request, "nexus-request-id"),
            request_timeout: header(&request, "request-timeout"),
            token: header(&request, "nexus-operation-token"),
            received: Instant::now(),
            status: None,
            answered: None,
        };
        let index = {
            let mut exchanges = self.exchanges.lock().unwrap();
            exchanges.push(entry.clone());
            exchanges.len() - 1
        };
        self.changed.notify_waiters();
        let take = |counter: &AtomicU32| {
            counter
                .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
                .is_ok()
        };
        let inject = take(&self.fail_any) || (entry.is_cancel() && take(&self.fail_cancels));
        let response = if inject {
            (StatusCode::SERVICE_UNAVAILABLE, "injected: overloaded").into_response()
        } else {
            let response = next.run(request).await;
            if entry.is_cancel() {
                let delay = *self.cancel_delay.lock().unwrap();
                tokio::time::sleep(delay).await;
            }
            response
        };
        {
            let mut exchanges = self.exchanges.lock().unwrap();
            exchanges[index].status = Some(response.status().as_u16());
            exchanges[index].answered = Some(Instant::now());
        }
        self.changed.notify_waiters();
        response
    }
}

/// A server task on loopback; aborted when dropped.
pub struct Running {
    pub addr: SocketAddr,
    task: JoinHandle<()>,
}

impl Running {
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Serves `router` on `listener`.
pub fn spawn<L>(listener: L, router: Router) -> Running
where
    L: axum::serve::Listener<Addr = SocketAddr>,
    L::Io: 'static,
{
    let addr = listener.local_addr().unwrap();
    let task = tokio::spawn(async move {
        let _ = axum::serve(listener, router).await;
    });
    Running { addr, task }
}

/// What a [`FaultyListener`] does to a connection instead of serving it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    /// Reads the request, then resets the connection (SO_LINGER 0: an RST).
    Reset,
    /// Reads the request, then closes the connection (a FIN) without answering.
    Close,
}

/// Counts of a [`FaultyListener`].
#[derive(Default)]
pub struct Faults {
    script: Mutex<VecDeque<Fault>>,
    forever: Mutex<Option<Fault>>,
    pub accepted: AtomicU32,
    pub faulted: AtomicU32,
}

impl Faults {
    /// The next connections get these faults, in order; later ones are served.
    pub fn script(&self, faults: impl IntoIterator<Item = Fault>) {
        self.script.lock().unwrap().extend(faults);
    }

    /// Every connection gets this fault.
    pub fn forever(&self, fault: Fault) {
        *self.forever.lock().unwrap() = Some(fault);
    }

    pub fn accepted(&self) -> u32 {
        self.accepted.load(Ordering::SeqCst)
    }

    pub fn faulted(&self) -> u32 {
        self.faulted.load(Ordering::SeqCst)
    }

    fn next(&self) -> Option<Fault> {
        self.script
            .lock()
            .unwrap()
            .pop_front()
            .or(*self.forever.lock().unwrap())
    }
}

/// A loopback listener that faults connections as scripted and hands the others to the server.
pub struct FaultyListener {
    inner: TcpListener,
    faults: Arc<Faults>,
}

impl FaultyListener {
    pub async fn bind() -> (Self, Arc<Faults>) {
        let faults = Arc::new(Faults::default());
        let inner = TcpListener::bind("127.0.0.1:0").await.unwrap();
        (
            Self {
                inner,
                faults: faults.clone(),
            },
            faults,
        )
    }
}

impl axum::serve::Listener for FaultyListener {
    type Io = TcpStream;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (TcpStream, SocketAddr) {
        loop {
            let Ok((stream, addr)) = self.inner.accept().await else {
                tokio::time::sleep(Duration::from_millis(1)).await;
                continue;
            };
            self.faults.accepted.fetch_add(1, Ordering::SeqCst);
            match self.faults.next() {
                None => return (stream, addr),
                Some(fault) => {
                    self.faults.faulted.fetch_add(1, Ordering::SeqCst);
                    tokio::spawn(apply(stream, fault));
                }
            }
        }
    }

    fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.inner.local_addr()
    }
}

async fn apply(stream: TcpStream, fault: Fault) {
    // Wait for the request, so the failure is the answer's, not the connection's.
    let mut buf = [0u8; 4096];
    let _ = tokio::time::timeout(Duration::from_secs(2), read_some(&stream, &mut buf)).await;
    if fault == Fault::Reset {
        stream.set_zero_linger().unwrap();
    }
    drop(stream);
}

/// Reads what is there (tokio's `io-util` is not enabled for the tests).
async fn read_some(stream: &TcpStream, buf: &mut [u8]) -> std::io::Result<usize> {
    loop {
        stream.readable().await?;
        match stream.try_read(buf) {
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => continue,
            result => return result,
        }
    }
}

/// A TCP peer that accepts connections, reads what comes, and never answers. It records each
/// request head and when the client closed each connection.
pub struct Silent {
    pub addr: SocketAddr,
    heads: Arc<Mutex<Vec<(Instant, String)>>>,
    closed: Arc<Mutex<Vec<Instant>>>,
    task: JoinHandle<()>,
}

impl Drop for Silent {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Silent {
    pub async fn bind() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let heads: Arc<Mutex<Vec<(Instant, String)>>> = Arc::default();
        let closed: Arc<Mutex<Vec<Instant>>> = Arc::default();
        let task = tokio::spawn({
            let (heads, closed) = (heads.clone(), closed.clone());
            async move {
                let mut connections = tokio::task::JoinSet::new();
                while let Ok((stream, _)) = listener.accept().await {
                    let (heads, closed) = (heads.clone(), closed.clone());
                    connections.spawn(async move {
                        let mut buf = vec![0u8; 8192];
                        loop {
                            match read_some(&stream, &mut buf).await {
                                Ok(0) | Err(_) => break,
                                Ok(n) => heads.lock().unwrap().push((
                                    Instant::now(),
                                    String::from_utf8_lossy(&buf[..n]).into_owned(),
                                )),
                            }
                        }
                        closed.lock().unwrap().push(Instant::now());
                    });
                }
            }
        });
        Self {
            addr,
            heads,
            closed,
            task,
        }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The requests received (request line and headers, lower-cased names kept as sent).
    pub fn heads(&self) -> Vec<(Instant, String)> {
        self.heads.lock().unwrap().clone()
    }

    /// When the client closed its connections.
    pub fn closed(&self) -> Vec<Instant> {
        self.closed.lock().unwrap().clone()
    }
}

/// The value of header `name` in a raw request head.
pub fn head_header(head: &str, name: &str) -> Option<String> {
    head.lines().find_map(|line| {
        let (n, v) = line.split_once(':')?;
        n.trim()
            .eq_ignore_ascii_case(name)
            .then(|| v.trim().to_owned())
    })
}

/// Milliseconds from `from` to `to`.
pub fn ms(from: Instant, to: Instant) -> u128 {
    to.saturating_duration_since(from).as_millis()
}
