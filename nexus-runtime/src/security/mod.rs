//! Security across team boundaries: who is calling ([`Principal`]), what the transport learned
//! about the peer ([`PeerCertificates`]), and the rules a handler applies before it runs anything.
//!
//! The pieces, each in its own module:
//! - TLS and mTLS for the servers and clients (feature `tls`);
//! - authentication: an [`Authenticator`] turns a request into a [`Principal`]
//!   (`CertificateAuthenticator` for mTLS certificates, `BearerAuthenticator` with `StaticTokens`
//!   or a `JwtVerifier` for bearer tokens, [`AnyOf`] for several; features `auth` and `jwt`), and
//!   an [`AccessPolicy`] says which principals may call which services and operations;
//! - the callback guard ([`CallbackGuard`]): where a handler may deliver completions;
//! - completion secrets ([`CallbackSecret`]): a caller accepts a completion only from its
//!   operation's handler, the one given the callback URL that carries the operation's secret.
//!
//! This module is a leaf: it imports nothing else of the crate.

mod access;
mod authn;
#[cfg(feature = "auth")]
mod bearer;
mod callback;
mod callback_secret;
#[cfg(feature = "auth")]
mod certificate;
#[cfg(feature = "jwt")]
mod jwt;
mod principal;

pub use access::AccessPolicy;
pub use authn::{AnyOf, AuthenticationError, Authenticator};
#[cfg(feature = "auth")]
pub use bearer::{BearerAuthenticator, StaticTokens, TokenVerifier};
pub use callback::{
    CallbackGuard, CallbackRefusal, CallbackRule, CheckedCallback, MAX_CALLBACK_HEADER_BYTES,
    MAX_CALLBACK_URL_BYTES, RefusalKind, RuleError, callback_header_refusal, canonical_ip,
    is_public, non_public_kind,
};
pub use callback_secret::{CALLBACK_SECRET_PARAM, CallbackSecret, redact_callback_url};
#[cfg(feature = "auth")]
pub use certificate::{CertificateAuthenticator, CertificateName};
#[cfg(feature = "jwt")]
pub use jwt::{InvalidJwtKey, JwtVerifier};
pub use principal::{PeerCertificates, Principal, PrincipalKind};
