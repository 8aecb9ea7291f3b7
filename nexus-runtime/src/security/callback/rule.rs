//! Callback rules: `[http://|https://]HOST[:PORT]`, with `*` standing for whole host labels or
//! any port.

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

use url::Host;

use super::address::canonical_ip;

/// A rule that is not `[http://|https://]HOST[:PORT]`.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("invalid callback rule `{rule}`: {problem}")]
pub struct RuleError {
    /// The rule as written.
    pub rule: String,
    /// What is wrong with it.
    pub problem: String,
}

/// One allowed callback address: `[http://|https://]HOST[:PORT]`.
///
/// - The scheme: without one, or with `https://`, the rule allows https only; `http://` allows
///   plain http as well (and https).
/// - `HOST`: a host name, an IPv4 address (any form a URL accepts: `127.1`, `0x7f000001`) or an
///   IPv6 address in brackets (`[::1]`). Names are compared case-insensitively, without a trailing
///   dot. In names and IPv4 addresses, `*` stands for whole labels: a leading `*` for one label or
///   more (`*.example.com` matches `a.example.com` and `a.b.example.com`, not `example.com`; a
///   lone `*` matches every host), elsewhere for exactly one (`api.*.example.com`).
/// - `PORT`: a number, or `*` for any; without it, the scheme's default port (443, or 80 for
///   plain http).
///
/// A wildcard never matches a non-public address (see [`CallbackGuard`](super::CallbackGuard)):
/// those need a rule that names them exactly.
///
/// ```
/// use nexus_runtime::security::CallbackRule;
/// let rule: CallbackRule = "http://localhost:*".parse().unwrap();
/// assert!(rule.allows_plain_http());
/// assert!("*.example.com:8443".parse::<CallbackRule>().is_ok());
/// assert!("https://example.com/path".parse::<CallbackRule>().is_err());
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CallbackRule {
    text: String,
    plain_http: bool,
    host: HostPattern,
    port: PortPattern,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum HostPattern {
    /// Exactly this address (canonical form).
    Ip(IpAddr),
    /// Exactly this name (lower case, no trailing dot).
    Name(String),
    /// Labels, some of them `*` (`None`).
    Wildcard(Vec<Option<String>>),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum PortPattern {
    Default,
    Any,
    Exact(u16),
}

/// How a rule matches a host.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum HostMatch {
    No,
    /// Through a `*`.
    Wildcard,
    /// The rule names the host exactly.
    Exact,
}

/// A callback's host as the checks compare it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) enum CanonicalHost {
    Ip(IpAddr),
    /// Lower case, no trailing dot, ASCII (IDNA applied by the URL parser).
    Name(String),
}

impl CanonicalHost {
    /// The host of a parsed URL (or rule): numeric IPv4 forms and IPv4 in IPv6 are unwrapped,
    /// trailing dots removed.
    pub(super) fn from_host(host: Host<&str>) -> Option<Self> {
        match host {
            Host::Ipv4(v4) => Some(Self::Ip(IpAddr::V4(v4))),
            Host::Ipv6(v6) => Some(Self::Ip(canonical_ip(IpAddr::V6(v6)))),
            Host::Domain(name) => {
                let name = name.trim_end_matches('.').to_ascii_lowercase();
                (!name.is_empty()).then_some(Self::Name(name))
            }
        }
    }

    /// The text wildcards are matched against.
    fn text(&self) -> String {
        match self {
            Self::Ip(ip) => ip.to_string(),
            Self::Name(name) => name.clone(),
        }
    }
}

impl fmt::Display for CanonicalHost {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Ip(IpAddr::V6(v6)) => write!(f, "[{v6}]"),
            Self::Ip(ip) => write!(f, "{ip}"),
            Self::Name(name) => f.write_str(name),
        }
    }
}

impl CallbackRule {
    /// Parses a rule (see the type's documentation for the syntax).
    pub fn parse(rule: &str) -> Result<Self, RuleError> {
        let error = |problem: &str| RuleError {
            rule: rule.to_owned(),
            problem: problem.to_owned(),
        };
        let text = rule.trim();
        if text.is_empty() {
            return Err(error("it is empty"));
        }
        let lower = text.to_ascii_lowercase();
        let (plain_http, rest) = if lower.starts_with("http://") {
            (true, &text["http://".len()..])
        } else if lower.starts_with("https://") {
            (false, &text["https://".len()..])
        } else if lower.contains("://") {
            return Err(error("the scheme must be `http://` or `https://`"));
        } else {
            (false, text)
        };
        let rest = rest.strip_suffix('/').unwrap_or(rest);
        if rest.contains(['/', '?', '#', '@', '\\']) {
            return Err(error(
                "a rule is [http://|https://]HOST[:PORT], without path, query or user",
            ));
        }
        let (host, port) = split_port(rest).map_err(|p| error(&p))?;
        let port = match port {
            None => PortPattern::Default,
            Some("*") => PortPattern::Any,
            Some(p) => match p.parse::<u16>() {
                Ok(n) if n > 0 && p.bytes().all(|b| b.is_ascii_digit()) => PortPattern::Exact(n),
                _ => return Err(error(&format!("`{p}` is not a port (1-65535 or `*`)"))),
            },
        };
        let host = parse_host(host).map_err(|p| error(&p))?;
        Ok(Self {
            text: text.to_owned(),
            plain_http,
            host,
            port,
        })
    }

    /// The rule as written.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// Whether the rule allows plain http (it was written with `http://`).
    pub fn allows_plain_http(&self) -> bool {
        self.plain_http
    }

    /// Whether the rule contains a `*` in its host.
    pub fn is_wildcard(&self) -> bool {
        matches!(self.host, HostPattern::Wildcard(_))
    }

    pub(super) fn match_host(&self, host: &CanonicalHost) -> HostMatch {
        match (&self.host, host) {
            (HostPattern::Ip(rule), CanonicalHost::Ip(ip)) if rule == ip => HostMatch::Exact,
            (HostPattern::Name(rule), CanonicalHost::Name(name)) if rule == name => {
                HostMatch::Exact
            }
            (HostPattern::Wildcard(labels), host) if labels_match(labels, &host.text()) => {
                HostMatch::Wildcard
            }
            _ => HostMatch::No,
        }
    }

    /// Whether the rule names `ip` exactly.
    pub(super) fn names_ip(&self, ip: IpAddr) -> bool {
        self.host == HostPattern::Ip(ip)
    }

    pub(super) fn match_port(&self, port: u16, https: bool) -> bool {
        match self.port {
            PortPattern::Any => true,
            PortPattern::Exact(p) => p == port,
            PortPattern::Default => port == if https { 443 } else { 80 },
        }
    }

    pub(super) fn match_scheme(&self, https: bool) -> bool {
        https || self.plain_http
    }
}

impl FromStr for CallbackRule {
    type Err = RuleError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl fmt::Display for CallbackRule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

/// `host[:port]`, with IPv6 addresses in brackets.
fn split_port(rest: &str) -> Result<(&str, Option<&str>), String> {
    if rest.starts_with('[') {
        let end = rest
            .find(']')
            .ok_or("an IPv6 address needs its closing `]`")?;
        let (host, after) = rest.split_at(end + 1);
        return match after {
            "" => Ok((host, None)),
            _ => after
                .strip_prefix(':')
                .map(|p| (host, Some(p)))
                .ok_or_else(|| format!("unexpected `{after}` after the IPv6 address")),
        };
    }
    match rest.rsplit_once(':') {
        Some((host, _)) if host.contains(':') => {
            Err("an IPv6 address must be written in brackets, like `[::1]`".into())
        }
        Some((host, port)) => Ok((host, Some(port))),
        None => Ok((rest, None)),
    }
}

fn parse_host(host: &str) -> Result<HostPattern, String> {
    if host.is_empty() {
        return Err("the host is missing".into());
    }
    if !host.contains('*') {
        let parsed = Host::parse(host).map_err(|e| format!("invalid host `{host}`: {e}"))?;
        let parsed = match &parsed {
            Host::Domain(name) => Host::Domain(name.as_str()),
            Host::Ipv4(v4) => Host::Ipv4(*v4),
            Host::Ipv6(v6) => Host::Ipv6(*v6),
        };
        return match CanonicalHost::from_host(parsed) {
            Some(CanonicalHost::Ip(ip)) => Ok(HostPattern::Ip(ip)),
            Some(CanonicalHost::Name(name)) => Ok(HostPattern::Name(name)),
            None => Err(format!("invalid host `{host}`")),
        };
    }
    if host.starts_with('[') {
        return Err("`*` is not allowed in an IPv6 address".into());
    }
    let trimmed = host.trim_end_matches('.');
    let labels: Vec<&str> = trimmed.split('.').collect();
    if labels.iter().any(|l| l.contains('*') && *l != "*") {
        return Err(format!(
            "`*` stands for whole labels (like `*.example.com`), not part of one: `{host}`"
        ));
    }
    // Validate (and normalise: case, IDNA) the literal labels through the URL host parser, with
    // a placeholder label where the wildcards are.
    let placeholder = "wildcard-label";
    let probe: Vec<&str> = labels
        .iter()
        .map(|l| if *l == "*" { placeholder } else { l })
        .collect();
    let probe = probe.join(".");
    let parsed = match Host::parse(&probe) {
        Ok(Host::Domain(name)) => name,
        _ => return Err(format!("invalid host pattern `{host}`")),
    };
    let normalised: Vec<&str> = parsed.split('.').collect();
    if normalised.len() != labels.len() || normalised.iter().any(|l| l.is_empty()) {
        return Err(format!("invalid host pattern `{host}`"));
    }
    Ok(HostPattern::Wildcard(
        labels
            .iter()
            .zip(normalised)
            .map(|(l, n)| (*l != "*").then(|| n.to_owned()))
            .collect(),
    ))
}

/// Whether `host` (split on dots) matches `pattern`: a leading `*` takes one label or more,
/// every other `*` exactly one.
fn labels_match(pattern: &[Option<String>], host: &str) -> bool {
    let host: Vec<&str> = host.split('.').collect();
    match pattern.split_first() {
        Some((None, rest)) => {
            host.len() > rest.len() && tail_matches(rest, &host[host.len() - rest.len()..])
        }
        _ => pattern.len() == host.len() && tail_matches(pattern, &host),
    }
}

fn tail_matches(pattern: &[Option<String>], host: &[&str]) -> bool {
    pattern
        .iter()
        .zip(host)
        .all(|(p, h)| p.as_deref().is_none_or(|p| p == *h))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(s: &str) -> CallbackRule {
        CallbackRule::parse(s).unwrap_or_else(|e| panic!("{e}"))
    }

    fn name(s: &str) -> CanonicalHost {
        CanonicalHost::Name(s.into())
    }

    fn ip(s: &str) -> CanonicalHost {
        CanonicalHost::Ip(s.parse().unwrap())
    }

    #[test]
    fn parses_schemes_hosts_and_ports() {
        let r = rule("HTTP://LocalHost:*");
        assert!(r.allows_plain_http());
        assert_eq!(r.host, HostPattern::Name("localhost".into()));
        assert_eq!(r.port, PortPattern::Any);
        let r = rule("https://api.example.com:8443/");
        assert!(!r.allows_plain_http());
        assert_eq!(r.port, PortPattern::Exact(8443));
        let r = rule("example.com.");
        assert_eq!(r.host, HostPattern::Name("example.com".into()));
        assert_eq!(r.port, PortPattern::Default);
        assert_eq!(
            rule("0x7f000001").host,
            HostPattern::Ip("127.0.0.1".parse().unwrap())
        );
        assert_eq!(
            rule("http://[::ffff:10.0.0.1]:80").host,
            HostPattern::Ip("10.0.0.1".parse().unwrap())
        );
        assert_eq!(rule("[::1]").host, HostPattern::Ip("::1".parse().unwrap()));
        assert_eq!(
            rule("*.Example.COM").host,
            HostPattern::Wildcard(vec![None, Some("example".into()), Some("com".into())])
        );
        assert!(rule("*").is_wildcard());
    }

    #[test]
    fn refuses_malformed_rules_with_a_reason() {
        for (bad, reason) in [
            ("", "empty"),
            ("  ", "empty"),
            ("ftp://example.com", "scheme"),
            ("example.com/path", "without path"),
            ("user@example.com", "without path"),
            ("example.com?x", "without path"),
            ("example.com:0", "not a port"),
            ("example.com:70000", "not a port"),
            ("example.com:+80", "not a port"),
            ("example.com:", "not a port"),
            ("::1", "brackets"),
            ("[::1", "closing"),
            ("[::1]x", "unexpected"),
            ("[::*]", "IPv6"),
            ("a*.example.com", "whole labels"),
            (":80", "missing"),
            ("exa mple.com", "invalid host"),
            ("*..com", "invalid host pattern"),
        ] {
            let e = CallbackRule::parse(bad).unwrap_err();
            assert!(e.problem.contains(reason), "{bad}: {e}");
            assert!(e.to_string().contains("invalid callback rule"), "{e}");
        }
    }

    #[test]
    fn wildcards_stand_for_whole_labels() {
        let r = rule("*.example.com");
        assert_eq!(r.match_host(&name("a.example.com")), HostMatch::Wildcard);
        assert_eq!(r.match_host(&name("a.b.example.com")), HostMatch::Wildcard);
        assert_eq!(r.match_host(&name("example.com")), HostMatch::No);
        assert_eq!(r.match_host(&name("a.example.org")), HostMatch::No);
        assert_eq!(r.match_host(&name("aexample.com")), HostMatch::No);
        let r = rule("api.*.example.com");
        assert_eq!(
            r.match_host(&name("api.eu.example.com")),
            HostMatch::Wildcard
        );
        assert_eq!(r.match_host(&name("api.a.b.example.com")), HostMatch::No);
        let all = rule("*");
        assert_eq!(all.match_host(&name("x")), HostMatch::Wildcard);
        assert_eq!(all.match_host(&ip("8.8.8.8")), HostMatch::Wildcard);
        assert_eq!(all.match_host(&ip("2606:4700::1")), HostMatch::Wildcard);
        assert_eq!(
            rule("8.8.*.*").match_host(&ip("8.8.4.4")),
            HostMatch::Wildcard
        );
        assert_eq!(
            rule("localhost").match_host(&name("localhost")),
            HostMatch::Exact
        );
        assert_eq!(rule("127.1").match_host(&ip("127.0.0.1")), HostMatch::Exact);
    }

    #[test]
    fn ports_and_schemes() {
        let r = rule("example.com");
        assert!(r.match_port(443, true));
        assert!(!r.match_port(80, true));
        assert!(!r.match_scheme(false));
        let r = rule("http://example.com");
        assert!(r.match_port(80, false));
        assert!(r.match_port(443, true));
        assert!(r.match_scheme(false) && r.match_scheme(true));
        let r = rule("example.com:8443");
        assert!(r.match_port(8443, true) && !r.match_port(443, true));
        assert!(rule("example.com:*").match_port(1, false));
    }
}
