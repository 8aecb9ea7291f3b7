//! The HTTP side of delivering completions safely: a client that resolves callback hosts through
//! the [`CallbackGuard`], the addresses checked before each attempt, and bounded reads of answers.

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use reqwest::dns::{Addrs, Name, Resolve, Resolving};

use crate::security::{CallbackGuard, CallbackRefusal, CheckedCallback};

/// The most bytes of a callback receiver's answer that are read; the rest is left unread and the
/// connection dropped.
pub const MAX_ANSWER_BYTES: usize = 64 * 1024;

tokio::task_local! {
    /// The addresses checked for the attempt running in this task, which the resolver hands to
    /// the client instead of asking DNS again.
    static CHECKED: Checked;
}

/// Addresses a callback host resolved to, each allowed by the guard for this callback.
#[derive(Clone, Debug, Default)]
pub(super) struct Checked {
    /// The host as the URL spells it (what the client asks the resolver for).
    host: String,
    addrs: Arc<[IpAddr]>,
}

/// Why the addresses of a callback cannot be used.
pub(super) enum AddressError {
    /// The guard refuses one of them.
    Refused(CallbackRefusal),
    /// The host could not be resolved (may work later).
    Unresolved(io::Error),
}

/// Resolves `callback`'s host (unless the URL names an address) and checks every address with
/// `guard`: one refused address refuses the callback, so a DNS answer mixing public and internal
/// addresses cannot reach the internal one.
pub(super) async fn check_addresses(
    guard: &CallbackGuard,
    callback: &CheckedCallback,
) -> Result<Checked, AddressError> {
    if let Some(ip) = callback.ip() {
        guard
            .check_address(callback, ip)
            .map_err(AddressError::Refused)?;
        return Ok(Checked::default());
    }
    let host = callback.url().host_str().unwrap_or_default().to_owned();
    let addrs = lookup(&host).await.map_err(AddressError::Unresolved)?;
    for ip in &addrs {
        guard
            .check_address(callback, *ip)
            .map_err(AddressError::Refused)?;
    }
    Ok(Checked {
        host,
        addrs: addrs.into(),
    })
}

/// Runs `send` with `checked` as the addresses its client connects to.
pub(super) async fn with_checked<F: Future>(checked: Checked, send: F) -> F::Output {
    CHECKED.scope(checked, send).await
}

async fn lookup(host: &str) -> io::Result<Vec<IpAddr>> {
    let addrs: Vec<IpAddr> = tokio::net::lookup_host((host, 0))
        .await?
        .map(|a| a.ip())
        .collect();
    if addrs.is_empty() {
        return Err(io::Error::new(
            io::ErrorKind::NotFound,
            format!("`{host}` resolves to no address"),
        ));
    }
    Ok(addrs)
}

/// The client's resolver: the addresses checked for the current attempt when there are some;
/// otherwise (a connection made outside an attempt's task) the system resolver's answer, every
/// address of which the guard must allow for the host whatever the port.
#[derive(Clone, Debug)]
struct GuardedResolver {
    guard: CallbackGuard,
}

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let host = name.as_str().to_owned();
        let checked = CHECKED
            .try_with(Checked::clone)
            .ok()
            .filter(|c| !c.addrs.is_empty() && c.host.eq_ignore_ascii_case(&host));
        let guard = self.guard.clone();
        Box::pin(async move {
            let addrs = match checked {
                Some(checked) => checked.addrs.to_vec(),
                None => {
                    let addrs = lookup(&host).await?;
                    for ip in &addrs {
                        guard.check_resolved(&host, *ip)?;
                    }
                    addrs
                }
            };
            let addrs: Addrs = Box::new(addrs.into_iter().map(|ip| SocketAddr::new(ip, 0)));
            Ok(addrs)
        })
    }
}

/// `builder`, made fit for delivering completions under `guard`: its resolver lets it connect
/// only to addresses the guard allows, it follows no redirect, and it uses no proxy (a proxy
/// would resolve the host itself).
pub(super) fn guarded(
    builder: reqwest::ClientBuilder,
    guard: &CallbackGuard,
) -> reqwest::ClientBuilder {
    builder
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .dns_resolver(GuardedResolver {
            guard: guard.clone(),
        })
}

/// Reads at most `limit` bytes of `response`'s body; the rest is not read (dropping the response
/// then closes the connection). A body that fails midway gives what was read.
pub(super) async fn read_bounded(mut response: reqwest::Response, limit: usize) -> Bytes {
    let mut body = BytesMut::new();
    while let Ok(Some(chunk)) = response.chunk().await {
        let room = limit - body.len();
        if chunk.len() >= room {
            body.extend_from_slice(&chunk[..room]);
            break;
        }
        body.extend_from_slice(&chunk);
    }
    body.freeze()
}
