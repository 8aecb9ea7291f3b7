//! Security: callers authenticated by certificates and tokens (`auth`, `verifiers`), TLS and mTLS
//! (`tls`), the callback guard and completion secrets (`callback_guard`, `callback_secret`), and
//! end-to-end payload encryption (`payload_codec`).

#[path = "../support/mod.rs"]
mod support;

pub mod auth;
pub mod callback_guard;
pub mod callback_secret;
pub mod payload_codec;
pub mod tls;
pub mod verifiers;
