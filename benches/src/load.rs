//! The load generator: `concurrency` workers, each sending one request at a time for a warm-up
//! period and then a measured window, recording the latency of every request started in the
//! window. The same generator drives every server compared, in the same run.
//!
//! Clients ([`ClientKind`]):
//! - `hyper`: a raw HTTP/1.1 client, one keep-alive connection per worker (hyper's connection
//!   API, no pool) — the baseline client;
//! - `reqwest`: one shared reqwest client (a pool, as `HttpTransport` uses);
//! - `nexus`: the generated `fraud.v1` stub over nexus-rs's `HttpTransport` (`getQuickScore`
//!   only).

use std::io;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use fraud_contract::FraudClient;
use http::{Request, StatusCode, header};
use http_body_util::{BodyExt as _, Full};
use hyper::client::conn::http1;
use hyper_util::rt::TokioIo;
use nexus_runtime::Client;
use nexus_runtime::server::CallbackListener;
use nexus_runtime::transport::HttpTransport;
use tokio::net::TcpStream;
use tokio::sync::Barrier;
use tokio::time::Instant;

use crate::stats::LoadSummary;

/// Which client sends the requests.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum ClientKind {
    /// Raw HTTP/1.1 (hyper), one keep-alive connection per worker.
    Hyper,
    /// reqwest, one shared client.
    Reqwest,
    /// The generated stub over `HttpTransport` (`fraud.v1` `getQuickScore` only).
    Nexus,
}

impl ClientKind {
    /// A name for tables.
    pub fn name(self) -> &'static str {
        match self {
            Self::Hyper => "raw hyper client",
            Self::Reqwest => "raw reqwest client",
            Self::Nexus => "nexus-rs stub + HttpTransport",
        }
    }
}

/// What to send, and what a good answer is.
#[derive(Clone, Debug)]
pub struct Target {
    /// `http://host:port`, no trailing slash.
    pub base: String,
    /// The path of every request, such as `/fraud.v1/getQuickScore`.
    pub path: String,
    /// The JSON body of every request.
    pub body: Bytes,
    /// The exact body a good answer has (`None`: any 200 answer is good).
    pub expect: Option<Bytes>,
}

impl Target {
    /// `getQuickScore` of `user-ada` on a server at `base`, whose answer is known.
    pub fn quick_score(base: &str) -> Self {
        let input = crate::bench_input();
        let output = crate::direct_quick_score(&crate::DirectDesk, &input);
        Self {
            base: base.trim_end_matches('/').to_owned(),
            path: crate::servers::QUICK_SCORE_PATH.to_owned(),
            body: serde_json::to_vec(&input).expect("encodes").into(),
            expect: Some(serde_json::to_vec(&output).expect("encodes").into()),
        }
    }

    fn authority(&self) -> &str {
        self.base
            .split_once("://")
            .map_or(self.base.as_str(), |(_, rest)| rest)
    }
}

/// How long and how hard to drive.
#[derive(Clone, Copy, Debug)]
pub struct LoadConfig {
    /// Workers, each with one request in flight.
    pub concurrency: usize,
    /// Time before the measured window (connections are opened, caches warm).
    pub warmup: Duration,
    /// The measured window.
    pub duration: Duration,
    /// The client.
    pub client: ClientKind,
}

/// Drives `target` as configured and summarises the measured window.
pub async fn run(target: &Target, config: LoadConfig) -> io::Result<LoadSummary> {
    let sender = Sender::new(target, config.client).await?;
    // Connections first, so that a server that cannot be reached fails the run at once.
    let mut conns = Vec::with_capacity(config.concurrency);
    for _ in 0..config.concurrency {
        conns.push(sender.connect(target).await?);
    }
    let barrier = Arc::new(Barrier::new(config.concurrency + 1));
    let mut workers = Vec::with_capacity(config.concurrency);
    for (worker, mut conn) in conns.into_iter().enumerate() {
        let sender = sender.clone();
        let target = target.clone();
        let barrier = barrier.clone();
        workers.push(tokio::spawn(async move {
            barrier.wait().await;
            let start = Instant::now();
            let measure_from = start + config.warmup;
            let stop_at = measure_from + config.duration;
            let mut latencies = Vec::with_capacity(4096);
            let mut errors = 0u64;
            let mut n = 0u64;
            let mut completed = 0u64;
            loop {
                let sent = Instant::now();
                if sent >= stop_at {
                    break;
                }
                n += 1;
                let ok = conn.send(&target, worker, n).await;
                let done = Instant::now();
                completed += u64::from(ok.is_ok());
                if sent >= measure_from && done <= stop_at {
                    match ok {
                        Ok(()) => latencies.push(done - sent),
                        Err(_) => errors += 1,
                    }
                }
                if ok.is_err() && conn.is_broken() {
                    conn = sender.connect(&target).await?;
                }
            }
            io::Result::Ok((latencies, errors, completed))
        }));
    }
    barrier.wait().await;
    let mut all = Vec::new();
    let mut errors = 0;
    let mut total = 0;
    for worker in workers {
        let (latencies, worker_errors, completed) = worker.await.map_err(io::Error::other)??;
        all.extend(latencies);
        errors += worker_errors;
        total += completed;
    }
    Ok(LoadSummary::new(all, errors, config.duration, total))
}

/// What the workers share: how to open a connection.
#[derive(Clone)]
enum Sender {
    Hyper,
    Reqwest(reqwest::Client),
    /// The stub, and the callback receiver it was given (kept running while the stub is used).
    Nexus(
        FraudClient,
        #[allow(dead_code)] Arc<nexus_runtime::server::ServerHandle>,
    ),
}

impl Sender {
    async fn new(target: &Target, kind: ClientKind) -> io::Result<Self> {
        Ok(match kind {
            ClientKind::Hyper => Self::Hyper,
            ClientKind::Reqwest => Self::Reqwest({
                nexus_runtime::tls::install_default_provider();
                reqwest::Client::builder()
                    .no_proxy()
                    .build()
                    .map_err(io::Error::other)?
            }),
            ClientKind::Nexus => {
                // HttpTransport needs a callback URL (for async operations) even to make sync
                // calls; a receiver is bound, as a real caller would.
                let listener = CallbackListener::bind_loopback().await?;
                let transport = HttpTransport::new(&target.base).map_err(io::Error::other)?;
                let client = Client::builder()
                    .endpoint("fraud", transport)
                    .callback_url(listener.callback_url())
                    .build();
                let receiver = listener.serve(client.clone())?;
                Self::Nexus(FraudClient::new(client, "fraud"), Arc::new(receiver))
            }
        })
    }

    async fn connect(&self, target: &Target) -> io::Result<Conn> {
        Ok(match self {
            Self::Hyper => {
                let stream = TcpStream::connect(target.authority()).await?;
                stream.set_nodelay(true)?;
                let (sender, connection) = http1::handshake(TokioIo::new(stream))
                    .await
                    .map_err(io::Error::other)?;
                tokio::spawn(async move {
                    let _ = connection.await;
                });
                Conn::Hyper(sender)
            }
            Self::Reqwest(client) => Conn::Reqwest(client.clone()),
            Self::Nexus(fraud, _) => Conn::Nexus(fraud.clone()),
        })
    }
}

/// One worker's way of sending.
enum Conn {
    Hyper(http1::SendRequest<Full<Bytes>>),
    Reqwest(reqwest::Client),
    Nexus(FraudClient),
}

/// Why a request did not get a good answer.
#[derive(Debug)]
pub struct Failed(pub String);

impl Conn {
    /// Whether the connection is gone (an error answer keeps it; a reset does not).
    fn is_broken(&self) -> bool {
        match self {
            Self::Hyper(sender) => sender.is_closed(),
            Self::Reqwest(_) | Self::Nexus(_) => false,
        }
    }

    async fn send(&mut self, target: &Target, worker: usize, n: u64) -> Result<(), Failed> {
        let request_id = format!("bench-{worker}-{n}");
        let (status, body) = match self {
            Self::Hyper(sender) => {
                sender.ready().await.map_err(|e| Failed(e.to_string()))?;
                let request = Request::post(target.path.as_str())
                    .header(header::HOST, target.authority())
                    .header(header::CONTENT_TYPE, "application/json")
                    .header("nexus-request-id", request_id)
                    .body(Full::new(target.body.clone()))
                    .map_err(|e| Failed(e.to_string()))?;
                let response = sender
                    .send_request(request)
                    .await
                    .map_err(|e| Failed(e.to_string()))?;
                let status = response.status();
                let body = response
                    .into_body()
                    .collect()
                    .await
                    .map_err(|e| Failed(e.to_string()))?
                    .to_bytes();
                (status, body)
            }
            Self::Reqwest(client) => {
                let response = client
                    .post(format!("{}{}", target.base, target.path))
                    .header(header::CONTENT_TYPE, "application/json")
                    .header("nexus-request-id", request_id)
                    .body(target.body.clone())
                    .send()
                    .await
                    .map_err(|e| Failed(e.to_string()))?;
                let status = response.status();
                let body = response.bytes().await.map_err(|e| Failed(e.to_string()))?;
                (status, body)
            }
            Self::Nexus(fraud) => {
                // The stub makes up its own request id (a UUID), as callers do.
                drop(request_id);
                let output = fraud
                    .get_quick_score(crate::bench_input())
                    .await
                    .map_err(|e| Failed(e.to_string()))?;
                let body = serde_json::to_vec(&output).map_err(|e| Failed(e.to_string()))?;
                (StatusCode::OK, body.into())
            }
        };
        if status != StatusCode::OK {
            return Err(Failed(format!("status {status}")));
        }
        match &target.expect {
            Some(expected) if *expected != body => Err(Failed(format!(
                "unexpected answer {}",
                String::from_utf8_lossy(&body)
            ))),
            _ => Ok(()),
        }
    }
}
