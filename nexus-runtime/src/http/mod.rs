//! Nexus RPC over HTTP, both directions (feature `http`), on axum, hyper and reqwest.
//!
//! Each folder is one concept:
//! - `handler/`: the handler's server, [`HandlerServer`]: serves a
//!   [`Dispatcher`](crate::service::Dispatcher)'s services (start and cancel), standalone or as an
//!   `axum::Router` inside an application; the optional `GET {prefix}/definitions`;
//! - `callback`: the caller's [`CallbackReceiver`], the route that receives completions and hands
//!   them to a [`Client`](crate::Client); [`CallbackListener`] binds it before the client is
//!   built;
//! - `completion/`: the handler's [`HttpCompletionSender`], which delivers async completions to
//!   callback URLs with retries (the handler server installs one), through a guarded resolver and
//!   bounded reads;
//! - `transport/`: the caller's [`HttpTransport`], the caller's half of the wire mapping;
//! - `client`: the one place reqwest clients are built (TLS, timeouts, no proxy);
//! - the serve loop both servers share: `listen` (accept, TLS, connection cap), `connection`
//!   (header and idle timeouts), `limits` ([`ServerLimits`]), `handle` ([`ServeOptions`],
//!   [`ServerHandle`]), and `wire` (bodies, failures and the axum glue both servers use).
//!
//! Both servers serve HTTP/1.1 with their own accept loop on hyper, which puts the peer address
//! (axum's `ConnectInfo<SocketAddr>`) and, over mTLS, the client's
//! [`PeerCertificates`](crate::security::PeerCertificates) into every request's extensions.
//!
//! The same items are also found at their older paths: the servers and the completion sender
//! under [`server`](crate::server), the transport under [`transport`](crate::transport).
//!
//! A handler process:
//!
//! ```no_run
//! # async fn demo(dispatcher: nexus_runtime::service::Dispatcher) -> std::io::Result<()> {
//! use nexus_runtime::http::HandlerServer;
//! let running = HandlerServer::new(dispatcher).bind("127.0.0.1:7243").await?;
//! println!("listening on {}", running.local_addr());
//! // ... until it is time to stop:
//! running.shutdown().await
//! # }
//! ```

mod callback;
pub(crate) mod client;
mod completion;
mod connection;
mod handle;
mod handler;
mod limits;
mod listen;
mod shutdown;
mod transport;
mod wire;

pub use callback::{CallbackListener, CallbackReceiver, DEFAULT_CALLBACK_PATH};
pub use completion::{CompletionRetry, DeliveryReport, HttpCompletionSender, MAX_ANSWER_BYTES};
pub use handle::{ServeOptions, ServerHandle};
pub use handler::{DEFINITIONS_PATH, HandlerServer, HandlerServerBuilder};
pub use limits::{DEFAULT_MAX_CONNECTIONS, ServerLimits};
pub use transport::{HttpTransport, HttpTransportBuilder, InvalidEndpointUrl};
pub use wire::DEFAULT_BODY_LIMIT;
