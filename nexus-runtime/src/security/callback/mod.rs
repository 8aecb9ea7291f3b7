//! The callback guard: where a handler may deliver completions.
//!
//! A start request names a callback URL that the handler later POSTs the completion to. Left
//! unchecked, that makes the handler a proxy into its own network (SSRF): cloud metadata,
//! loopback services, private hosts. The [`CallbackGuard`] decides, from [`CallbackRule`]s,
//! which URLs are accepted at start time and which addresses the completion sender connects to.

mod address;
mod headers;
mod rule;

use std::fmt;
use std::net::IpAddr;
use std::sync::Arc;

use url::Url;

pub use address::{canonical_ip, is_public, non_public_kind};
pub use headers::{MAX_CALLBACK_HEADER_BYTES, callback_header_refusal};
pub use rule::{CallbackRule, RuleError};

use rule::{CanonicalHost, HostMatch};

/// The longest callback URL accepted, in bytes.
pub const MAX_CALLBACK_URL_BYTES: usize = 4096;

/// Why a callback was refused.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum RefusalKind {
    /// Not an absolute http or https URL with a host, or too long.
    InvalidUrl,
    /// The URL carries a user name or password.
    Credentials,
    /// Plain http to a host whose rules allow https only.
    PlainHttp,
    /// No rule allows the host and port.
    NotAllowed,
    /// The host is, or resolves to, a non-public address no rule names.
    NonPublic,
    /// A callback header that may not be forwarded.
    Header,
}

/// A callback URL or header the guard refuses; its message names it and says why.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct CallbackRefusal {
    kind: RefusalKind,
    message: String,
}

impl CallbackRefusal {
    fn url(kind: RefusalKind, url: &str, reason: impl fmt::Display) -> Self {
        Self {
            kind,
            // The query may carry the caller's completion secret: never in a message.
            message: format!(
                "callback URL `{}` is refused: {reason}",
                excerpt(&super::redact_callback_url(url))
            ),
        }
    }

    /// Why.
    pub fn kind(&self) -> &RefusalKind {
        &self.kind
    }

    /// The message, naming the URL or header.
    pub fn message(&self) -> &str {
        &self.message
    }
}

/// At most 200 characters of a URL, for messages.
fn excerpt(url: &str) -> String {
    match url.char_indices().nth(200) {
        Some((end, _)) => format!("{}…", &url[..end]),
        None => url.to_owned(),
    }
}

/// A callback URL the guard accepted: what the sender needs to check the addresses it connects
/// to ([`CallbackGuard::check_address`]).
#[derive(Clone, Debug)]
pub struct CheckedCallback {
    url: Url,
    host: CanonicalHost,
    port: u16,
    https: bool,
    /// Whether a rule names the host exactly (and allows this scheme and port).
    named: bool,
}

impl CheckedCallback {
    /// The parsed URL.
    pub fn url(&self) -> &Url {
        &self.url
    }

    /// The host's address, when the URL names one (in canonical form: IPv4 in IPv6 unwrapped).
    pub fn ip(&self) -> Option<IpAddr> {
        match self.host {
            CanonicalHost::Ip(ip) => Some(ip),
            CanonicalHost::Name(_) => None,
        }
    }

    /// The port connected to (explicit, or the scheme's default).
    pub fn port(&self) -> u16 {
        self.port
    }
}

/// Where a handler may deliver completions: a list of [`CallbackRule`]s, checked at start time
/// against the callback URL and at delivery time against the addresses connected to.
///
/// A URL is allowed when it is an absolute `http` or `https` URL without user name or password,
/// and some rule matches its host and port and allows its scheme (plain `http` needs a rule
/// written with `http://`). Hosts are compared in canonical form: lower case, no trailing dot,
/// IPv4 in any form a URL accepts (`127.1`, `0x7f000001`, `2130706433`, `0177.0.0.1`) and IPv4
/// carried in IPv6 (`[::ffff:127.0.0.1]`) as dotted IPv4.
///
/// **Non-public addresses** (loopback, private ranges, link-local, cloud metadata such as
/// `169.254.169.254` and `fd00:ec2::254`, unspecified, multicast, broadcast, carrier-grade NAT,
/// documentation and reserved ranges; see [`non_public_kind`]) are allowed only by a rule that
/// names them exactly: the address itself (`http://127.0.0.1:*`), or the host name that resolves
/// to them (`http://localhost:*`). A wildcard never opens them, at start time (for URLs naming
/// an address) nor at delivery time (for names resolving to one).
///
/// The default guard ([`public_https`](Self::public_https)) allows https to every public host
/// and nothing else: a handler accepts no callback into its own network until told to.
///
/// ```
/// use nexus_runtime::security::CallbackGuard;
/// let guard = CallbackGuard::default();
/// assert!(guard.check_url("https://caller.example.com/cb").is_ok());
/// assert!(guard.check_url("http://caller.example.com/cb").is_err()); // plain http
/// assert!(guard.check_url("https://169.254.169.254/latest").is_err()); // metadata
/// assert!(guard.check_url("https://0x7f000001/").is_err()); // loopback, disguised
///
/// let dev = CallbackGuard::new(["http://localhost:*", "http://127.0.0.1:*"]).unwrap();
/// assert!(dev.check_url("http://127.0.0.1:7243/callback").is_ok());
/// assert!(dev.check_url("http://127.1:7243/callback").is_ok());
/// assert!(dev.check_url("http://10.0.0.1/callback").is_err());
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct CallbackGuard {
    rules: Arc<[CallbackRule]>,
}

impl Default for CallbackGuard {
    /// [`CallbackGuard::public_https`].
    fn default() -> Self {
        Self::public_https()
    }
}

impl fmt::Debug for CallbackGuard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list()
            .entries(self.rules.iter().map(CallbackRule::as_str))
            .finish()
    }
}

impl CallbackGuard {
    /// A guard with these rules (none: every callback URL is refused).
    pub fn new<I>(rules: I) -> Result<Self, RuleError>
    where
        I: IntoIterator,
        I::Item: AsRef<str>,
    {
        let rules = rules
            .into_iter()
            .map(|r| CallbackRule::parse(r.as_ref()))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self::from_rules(rules))
    }

    /// A guard with these parsed rules.
    pub fn from_rules(rules: impl IntoIterator<Item = CallbackRule>) -> Self {
        Self {
            rules: rules.into_iter().collect(),
        }
    }

    /// Refuses every callback URL (callers in the same process, with in-process callbacks, are
    /// not concerned).
    pub fn deny_all() -> Self {
        Self::from_rules([])
    }

    /// https to any public host and port (the rule `https://*:*`); the default.
    pub fn public_https() -> Self {
        Self::new(["https://*:*"]).unwrap_or_else(|_| Self::deny_all())
    }

    /// Plain http or https to this machine, any port: `localhost`, `127.0.0.1` and `[::1]`. For
    /// development, tests, and a Temporal server on the same machine.
    pub fn loopback() -> Self {
        Self::new(["http://localhost:*", "http://127.0.0.1:*", "http://[::1]:*"])
            .unwrap_or_else(|_| Self::deny_all())
    }

    /// This guard with one more rule.
    pub fn allow(self, rule: CallbackRule) -> Self {
        Self::from_rules(self.rules.iter().cloned().chain([rule]))
    }

    /// The rules.
    pub fn rules(&self) -> &[CallbackRule] {
        &self.rules
    }

    /// Checks a start request's callback: its URL ([`check_url`](Self::check_url)) and the names
    /// of its callback headers ([`callback_header_refusal`]), whose names and values may take
    /// [`MAX_CALLBACK_HEADER_BYTES`] in all.
    pub fn check_callback<'a>(
        &self,
        url: &str,
        headers: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) -> Result<CheckedCallback, CallbackRefusal> {
        let mut total = 0usize;
        for (name, value) in headers {
            if let Some(reason) = callback_header_refusal(name) {
                return Err(CallbackRefusal {
                    kind: RefusalKind::Header,
                    message: format!(
                        "callback header `Nexus-Callback-{name}` is refused: {reason}"
                    ),
                });
            }
            total = total.saturating_add(name.len() + value.len());
        }
        if total > MAX_CALLBACK_HEADER_BYTES {
            return Err(CallbackRefusal {
                kind: RefusalKind::Header,
                message: format!(
                    "the `Nexus-Callback-*` headers take {total} bytes, more than the \
                     {MAX_CALLBACK_HEADER_BYTES} allowed"
                ),
            });
        }
        self.check_url(url)
    }

    /// Checks a callback URL as written, before anything is resolved: the start-time check.
    pub fn check_url(&self, url: &str) -> Result<CheckedCallback, CallbackRefusal> {
        let refuse = |kind, reason: &dyn fmt::Display| CallbackRefusal::url(kind, url, reason);
        if url.len() > MAX_CALLBACK_URL_BYTES {
            let reason = format!("it is longer than {MAX_CALLBACK_URL_BYTES} bytes");
            return Err(refuse(RefusalKind::InvalidUrl, &reason));
        }
        let parsed = Url::parse(url).map_err(|e| refuse(RefusalKind::InvalidUrl, &e))?;
        let https = match parsed.scheme() {
            "https" => true,
            "http" => false,
            _ => {
                let reason = "completions are delivered over http or https";
                return Err(refuse(RefusalKind::InvalidUrl, &reason));
            }
        };
        if !parsed.username().is_empty() || parsed.password().is_some() {
            let reason = "it carries a user name or password; send credentials in \
                          `Nexus-Callback-*` headers instead";
            return Err(refuse(RefusalKind::Credentials, &reason));
        }
        let Some(host) = parsed.host().and_then(CanonicalHost::from_host) else {
            return Err(refuse(RefusalKind::InvalidUrl, &"it has no host"));
        };
        let Some(port) = parsed.port_or_known_default() else {
            return Err(refuse(RefusalKind::InvalidUrl, &"it has no port"));
        };
        let mut named = false;
        let mut allowed = false;
        let mut https_only = false;
        for rule in self.rules.iter() {
            let matched = rule.match_host(&host);
            if matched == HostMatch::No || !rule.match_port(port, https) {
                continue;
            }
            if !rule.match_scheme(https) {
                https_only = true;
                continue;
            }
            allowed = true;
            named |= matched == HostMatch::Exact;
        }
        if let CanonicalHost::Ip(ip) = host
            && !named
            && let Some(kind) = non_public_kind(ip)
        {
            let reason = format!(
                "{host} is a {kind} address, which only a callback rule naming it exactly allows"
            );
            return Err(refuse(RefusalKind::NonPublic, &reason));
        }
        if !allowed {
            let (kind, reason) = if https_only {
                let reason = format!(
                    "plain http to {host}:{port} is not allowed (a rule must be written with \
                     `http://` to allow it)"
                );
                (RefusalKind::PlainHttp, reason)
            } else {
                let reason = format!("{host}:{port} matches no callback rule");
                (RefusalKind::NotAllowed, reason)
            };
            return Err(refuse(kind, &reason));
        }
        Ok(CheckedCallback {
            url: parsed,
            host,
            port,
            https,
            named,
        })
    }

    /// Checks an address the sender is about to connect to for `callback` (an address its host
    /// resolved to, or the address the URL names): the delivery-time check, which a DNS answer
    /// cannot bypass. A public address passes (the URL was allowed); a non-public one only when
    /// a rule naming the host exactly allowed the URL, or a rule names the address exactly (for
    /// this scheme and port).
    pub fn check_address(
        &self,
        callback: &CheckedCallback,
        ip: IpAddr,
    ) -> Result<(), CallbackRefusal> {
        let ip = canonical_ip(ip);
        let Some(kind) = non_public_kind(ip) else {
            return Ok(());
        };
        let named = callback.named
            || self.rules.iter().any(|r| {
                r.names_ip(ip)
                    && r.match_port(callback.port, callback.https)
                    && r.match_scheme(callback.https)
            });
        if named {
            return Ok(());
        }
        Err(CallbackRefusal::url(
            RefusalKind::NonPublic,
            callback.url.as_str(),
            format!(
                "{} resolves to {ip}, a {kind} address, which only a callback rule naming it \
                 exactly allows",
                callback.host
            ),
        ))
    }

    /// Checks an address `host` resolved to, knowing nothing else of the callback (for a
    /// resolver, which sees only names): a non-public address passes only when a rule names the
    /// host or the address exactly, whatever its scheme and port.
    pub fn check_resolved(&self, host: &str, ip: IpAddr) -> Result<(), CallbackRefusal> {
        let ip = canonical_ip(ip);
        let Some(kind) = non_public_kind(ip) else {
            return Ok(());
        };
        let name = CanonicalHost::Name(host.trim_end_matches('.').to_ascii_lowercase());
        if self
            .rules
            .iter()
            .any(|r| r.names_ip(ip) || r.match_host(&name) == HostMatch::Exact)
        {
            return Ok(());
        }
        Err(CallbackRefusal {
            kind: RefusalKind::NonPublic,
            message: format!(
                "callback host `{host}` resolves to {ip}, a {kind} address, which only a \
                 callback rule naming it exactly allows"
            ),
        })
    }
}

#[cfg(test)]
mod tests;
