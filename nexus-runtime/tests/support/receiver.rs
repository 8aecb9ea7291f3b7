//! A callback receiver over loopback HTTP: records every completion it accepts (parsed as the
//! protocol says) and answers as its mode says.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::{Request, State};
use axum::response::{IntoResponse, Response};
use http::StatusCode;
use nexus_runtime::HandlerError;
use nexus_runtime::completion::Completion;
use nexus_runtime::protocol::{self, FailureFormat};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// How the receiver answers.
#[derive(Clone, Debug, PartialEq)]
pub enum Mode {
    /// 200.
    Accept,
    /// This HandlerError (a 503 UNAVAILABLE is retried by senders, a 400 BAD_REQUEST is not).
    Answer(HandlerError),
}

#[derive(Default)]
struct Shared {
    mode: Mutex<Option<Mode>>,
    accepted: Mutex<Vec<Completion>>,
    headers: Mutex<Vec<(String, http::HeaderMap)>>,
    requests: Mutex<u32>,
}

/// A running receiver.
pub struct Receiver {
    addr: SocketAddr,
    shared: Arc<Shared>,
    stop: CancellationToken,
    task: JoinHandle<()>,
}

async fn receive(State(shared): State<Arc<Shared>>, request: Request) -> Response {
    *shared.requests.lock().unwrap() += 1;
    let mode = shared.mode.lock().unwrap().clone().unwrap_or(Mode::Accept);
    if let Mode::Answer(error) = mode {
        let response = protocol::handler_error_response(&error, FailureFormat::Envelope);
        let body = response.body();
        return (response.status, response.headers, body).into_response();
    }
    let (parts, body) = request.into_parts();
    let body = axum::body::to_bytes(body, 1 << 20).await.unwrap();
    match protocol::parse_completion(&parts.headers, body) {
        Ok(completion) => {
            let token = completion.token.clone();
            shared.headers.lock().unwrap().push((token, parts.headers));
            shared.accepted.lock().unwrap().push(completion);
            StatusCode::OK.into_response()
        }
        Err(e) => {
            let response = protocol::handler_error_response(&e, FailureFormat::Envelope);
            let body = response.body();
            (response.status, response.headers, body).into_response()
        }
    }
}

impl Receiver {
    /// Binds `addr` (port 0 for any).
    pub async fn bind(addr: &str) -> Self {
        Self::serve(TcpListener::bind(addr).await.unwrap(), Arc::default())
    }

    /// Serves on a socket bound earlier (say, before the runtime existed).
    pub fn from_std(listener: std::net::TcpListener) -> Self {
        listener.set_nonblocking(true).unwrap();
        Self::serve(TcpListener::from_std(listener).unwrap(), Arc::default())
    }

    fn serve(listener: TcpListener, shared: Arc<Shared>) -> Self {
        let addr = listener.local_addr().unwrap();
        let stop = CancellationToken::new();
        let router = Router::new()
            .route("/callback", axum::routing::post(receive))
            .with_state(shared.clone());
        let signal = stop.clone().cancelled_owned();
        let task = tokio::spawn(async move {
            axum::serve(listener, router)
                .with_graceful_shutdown(signal)
                .await
                .unwrap();
        });
        Self {
            addr,
            shared,
            stop,
            task,
        }
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The callback URL.
    pub fn url(&self) -> String {
        format!("http://{}/callback?caller=test", self.addr)
    }

    pub fn set_mode(&self, mode: Mode) {
        *self.shared.mode.lock().unwrap() = Some(mode);
    }

    /// Completion requests received (accepted or not).
    pub fn requests(&self) -> u32 {
        *self.shared.requests.lock().unwrap()
    }

    /// The completions accepted so far.
    pub fn accepted(&self) -> Vec<Completion> {
        self.shared.accepted.lock().unwrap().clone()
    }

    /// The request headers of the accepted completion for `token`.
    pub fn headers_of(&self, token: &str) -> http::HeaderMap {
        let headers = self.shared.headers.lock().unwrap();
        let found = headers.iter().find(|(t, _)| t == token);
        found.map(|(_, h)| h.clone()).unwrap_or_default()
    }

    /// Waits (real time) until a completion for `token` is accepted.
    pub async fn completion(&self, token: &str, within: Duration) -> Completion {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            if let Some(c) = self.accepted().into_iter().find(|c| c.token == token) {
                return c;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "no completion for `{token}` within {within:?}; received: {:?}",
                self.accepted()
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// Stops serving (connections refused from now on) and waits until it has stopped.
    pub async fn stop(mut self) -> SocketAddr {
        self.stop.cancel();
        let _ = (&mut self.task).await;
        self.addr
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}
