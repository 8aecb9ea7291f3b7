//! Nexus RPC over HTTP servers (feature `http`): the handler's [`HandlerServer`], the caller's
//! [`CallbackReceiver`], and the [`HttpCompletionSender`] with its limits and options.
//!
//! These are re-exports: the HTTP code of both directions lives in [`http`](crate::http), where
//! its modules are described.
//!
//! ```no_run
//! # async fn demo(dispatcher: nexus_runtime::service::Dispatcher) -> std::io::Result<()> {
//! use nexus_runtime::server::HandlerServer;
//! let running = HandlerServer::new(dispatcher).bind("127.0.0.1:7243").await?;
//! running.shutdown().await
//! # }
//! ```

pub use crate::http::{
    CallbackListener, CallbackReceiver, CompletionRetry, DEFAULT_BODY_LIMIT, DEFAULT_CALLBACK_PATH,
    DEFAULT_MAX_CONNECTIONS, DEFINITIONS_PATH, DeliveryReport, HandlerServer, HandlerServerBuilder,
    HttpCompletionSender, MAX_ANSWER_BYTES, ServeOptions, ServerHandle, ServerLimits,
};
