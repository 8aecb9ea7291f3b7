//! Nexus RPC over HTTP servers (feature `http`), on axum and hyper.
//!
//! - [`HandlerServer`]: serves a [`Dispatcher`](crate::service::Dispatcher)'s services (start and
//!   cancel), standalone or as an `axum::Router` inside an application;
//! - [`HttpCompletionSender`]: the handler side's delivery of async completions to callback URLs,
//!   with retries; the handler server installs one;
//! - [`CallbackReceiver`]: the caller side's route that receives those completions and hands them
//!   to a [`Client`](crate::Client); [`CallbackListener`] binds it before the client is built.
//!
//! A handler process:
//!
//! ```no_run
//! # async fn demo(dispatcher: nexus_runtime::service::Dispatcher) -> std::io::Result<()> {
//! use nexus_runtime::server::HandlerServer;
//! let running = HandlerServer::new(dispatcher).bind("127.0.0.1:7243").await?;
//! println!("listening on {}", running.local_addr());
//! // ... until it is time to stop:
//! running.shutdown().await
//! # }
//! ```

mod callback;
mod completion_sender;
mod connection;
mod handle;
mod handler;
mod limits;
mod listen;
mod request;
mod wire;

pub use callback::{CallbackListener, CallbackReceiver, DEFAULT_CALLBACK_PATH};
pub use completion_sender::{CompletionRetry, DeliveryReport, HttpCompletionSender};
pub use handle::{ServeOptions, ServerHandle};
pub use handler::{HandlerServer, HandlerServerBuilder};
pub use limits::{DEFAULT_MAX_CONNECTIONS, ServerLimits};
pub use wire::DEFAULT_BODY_LIMIT;
