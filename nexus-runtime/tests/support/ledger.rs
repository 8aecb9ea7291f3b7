//! Shared by the durable caller tests over HTTP: a small async service whose handler can be taken
//! down (UNAVAILABLE) and whose work completes when the test opens a gate, served by a real
//! handler server on loopback.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use nexus_runtime::server::{CompletionRetry, HandlerServer, HttpCompletionSender, ServerHandle};
use nexus_runtime::service::Dispatcher;
use nexus_runtime::{HandlerError, OperationContext, OperationResult, nexus_service};
use tokio::sync::watch;

/// Settles payments, asynchronously.
#[nexus_service(name = "ledger.v1")]
pub trait Ledger {
    /// Settles one payment; completes once the desk's gate is open.
    async fn settle(&self, ctx: OperationContext, input: String) -> OperationResult<String>;
}

/// The operation descriptor.
pub type Settle = ledger::Settle;

/// The handler: records every start's request id, answers UNAVAILABLE while down, and completes
/// each operation with `settled {input}` once the gate is open.
#[derive(Clone)]
pub struct Desk {
    pub seen: Arc<Mutex<Vec<String>>>,
    pub down: Arc<AtomicBool>,
    gate: watch::Receiver<bool>,
    gate_tx: Arc<watch::Sender<bool>>,
}

impl Desk {
    /// A desk whose gate is open (`true`) or closed.
    pub fn new(open: bool) -> Self {
        let (tx, rx) = watch::channel(open);
        Self {
            seen: Arc::default(),
            down: Arc::default(),
            gate: rx,
            gate_tx: Arc::new(tx),
        }
    }

    /// Lets every operation (waiting or to come) complete.
    pub fn open(&self) {
        self.gate_tx.send_replace(true);
    }

    pub fn set_down(&self, down: bool) {
        self.down.store(down, Ordering::SeqCst);
    }

    /// The request ids of the starts received, in order.
    pub fn seen(&self) -> Vec<String> {
        self.seen.lock().unwrap().clone()
    }
}

impl Ledger for Desk {
    async fn settle(&self, ctx: OperationContext, input: String) -> OperationResult<String> {
        self.seen.lock().unwrap().push(ctx.request_id().to_owned());
        if self.down.load(Ordering::SeqCst) {
            return Err(HandlerError::unavailable("the ledger is down").into());
        }
        let mut gate = self.gate.clone();
        ctx.start_async(move |_work| async move {
            let _ = gate.wait_for(|open| *open).await;
            Ok(format!("settled {input}"))
        })
    }
}

/// Serves `desk` on `addr`; completions are retried quickly (every 100 ms to 400 ms, 50 times).
pub async fn serve(desk: &Desk, addr: &str) -> ServerHandle {
    let sender = HttpCompletionSender::new()
        .callback_guard(nexus_runtime::security::CallbackGuard::loopback())
        .retry(CompletionRetry {
            initial_interval: Duration::from_millis(100),
            multiplier: 2.0,
            max_interval: Duration::from_millis(400),
            max_attempts: 50,
        });
    let dispatcher = Dispatcher::builder()
        .service(LedgerService::handler(desk.clone()))
        .callback_guard(nexus_runtime::security::CallbackGuard::loopback())
        .completion_sender(sender)
        .build();
    HandlerServer::builder(dispatcher)
        .build()
        .bind(addr)
        .await
        .expect("bind the handler")
}
