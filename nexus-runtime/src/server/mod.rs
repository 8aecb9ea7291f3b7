//! Nexus RPC over HTTP servers (feature `http`), on axum and hyper.
//!
//! - [`HandlerServer`]: serves a [`Dispatcher`](crate::service::Dispatcher)'s services (start and
//!   cancel), standalone or as an `axum::Router` inside an application;
//! - [`HttpCompletionSender`]: the handler side's delivery of async completions to callback URLs,
//!   with retries; the handler server installs one;
//! - [`CallbackReceiver`]: the caller side's route that receives those completions and hands them
//!   to a [`Client`](crate::Client); [`CallbackListener`] binds it before the client is built;
//! - [`ServerLimits`] and [`ServeOptions`]: how the servers treat connections (a connection cap,
//!   header, idle, body and TLS handshake timeouts, a head size limit) and, with the `tls`
//!   feature, HTTPS and mTLS (see the `tls` module). Both servers serve HTTP/1.1 with their own
//!   accept loop on hyper, which puts the peer address (axum's `ConnectInfo<SocketAddr>`) and,
//!   over mTLS, the client's [`PeerCertificates`](crate::security::PeerCertificates) into every
//!   request's extensions.
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
mod callback_http;
mod completion_sender;
mod connection;
mod definitions;
mod handle;
mod handler;
mod limits;
mod listen;
mod request;
mod wire;

pub use callback::{CallbackListener, CallbackReceiver, DEFAULT_CALLBACK_PATH};
pub use callback_http::MAX_ANSWER_BYTES;
pub use completion_sender::{CompletionRetry, DeliveryReport, HttpCompletionSender};
pub use definitions::DEFINITIONS_PATH;
pub use handle::{ServeOptions, ServerHandle};
pub use handler::{HandlerServer, HandlerServerBuilder};
pub use limits::{DEFAULT_MAX_CONNECTIONS, ServerLimits};
pub use wire::DEFAULT_BODY_LIMIT;
