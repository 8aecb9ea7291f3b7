//! Security across team boundaries: who is calling ([`Principal`]), what the transport learned
//! about the peer ([`PeerCertificates`]), and the rules a handler applies before it runs anything.
//!
//! The pieces, each in its own module:
//! - TLS and mTLS for the servers and clients (feature `tls`);
//! - authentication: an [`Authenticator`] turns a request into a [`Principal`]
//!   (`CertificateAuthenticator` for mTLS certificates, `BearerAuthenticator` with `StaticTokens`
//!   or a `JwtVerifier` for bearer tokens, [`AnyOf`] for several; features `auth` and `jwt`), and
//!   an [`AccessPolicy`] says which principals may call which services and operations;
//! - the callback guard: where a handler may deliver completions;
//! - completion secrets: a caller accepts a completion only from its operation's handler.
//!
//! This module is a leaf: it imports nothing else of the crate.

mod access;
mod authn;
#[cfg(feature = "auth")]
mod bearer;
#[cfg(feature = "auth")]
mod certificate;
#[cfg(feature = "jwt")]
mod jwt;
mod principal;

pub use access::AccessPolicy;
pub use authn::{AnyOf, AuthenticationError, Authenticator};
#[cfg(feature = "auth")]
pub use bearer::{BearerAuthenticator, StaticTokens, TokenVerifier};
#[cfg(feature = "auth")]
pub use certificate::{CertificateAuthenticator, CertificateName};
#[cfg(feature = "jwt")]
pub use jwt::{InvalidJwtKey, JwtVerifier};
pub use principal::{PeerCertificates, Principal, PrincipalKind};
