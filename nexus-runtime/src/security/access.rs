//! Allowlists: which principals may call which services and operations.

use std::collections::BTreeMap;
use std::fmt;

use super::Principal;

/// One entry of an allowlist: an exact principal name, or a prefix pattern ending in `*`
/// (`team-*` matches `team-a`; `*` alone matches every authenticated name).
#[derive(Clone, PartialEq, Eq)]
enum NamePattern {
    Exact(String),
    Prefix(String),
}

impl NamePattern {
    fn parse(pattern: &str) -> Self {
        match pattern.strip_suffix('*') {
            Some(prefix) => Self::Prefix(prefix.to_owned()),
            None => Self::Exact(pattern.to_owned()),
        }
    }

    fn matches(&self, name: &str) -> bool {
        match self {
            Self::Exact(exact) => exact == name,
            Self::Prefix(prefix) => name.starts_with(prefix.as_str()),
        }
    }
}

impl fmt::Debug for NamePattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Exact(name) => write!(f, "{name:?}"),
            Self::Prefix(prefix) => write!(f, "\"{prefix}*\""),
        }
    }
}

/// Who may call one service, or one operation.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
struct Rule {
    /// Open to every caller, the anonymous one included.
    everyone: bool,
    names: Vec<NamePattern>,
}

impl Rule {
    fn add(&mut self, names: impl IntoIterator<Item = impl AsRef<str>>) {
        for name in names {
            let pattern = NamePattern::parse(name.as_ref());
            if !self.names.contains(&pattern) {
                self.names.push(pattern);
            }
        }
    }

    fn allows(&self, principal: &Principal) -> bool {
        if self.everyone {
            return true;
        }
        // An anonymous principal never matches a name, not even `*`.
        !principal.is_anonymous() && self.names.iter().any(|p| p.matches(principal.name()))
    }
}

/// Caller allowlists, per service and optionally per operation, in the model of Temporal's
/// endpoint allowlists: once any rule is set, everything is denied that no rule allows.
///
/// - [`allow`](Self::allow) names the principals that may call every operation of a service;
/// - [`allow_operation`](Self::allow_operation) names those that may call one operation: for that
///   operation it **replaces** the service's list (the most specific rule decides), so an
///   operation can be narrowed to fewer callers, or opened to others;
/// - names are exact, or prefix patterns ending in `*` (`*` alone: any authenticated caller);
/// - an anonymous principal matches no name and no pattern; only
///   [`allow_everyone`](Self::allow_everyone) lets it in;
/// - a service with no rule is denied to every caller once the policy has any rule. An empty
///   policy (the default) allows everything.
///
/// A [`Dispatcher`](crate::service::Dispatcher) checks it on every start and cancel, whatever the
/// transport, before it looks the service up: a refused caller learns nothing about what is
/// served (the answer is UNAUTHORIZED, 403, naming the caller and what it asked for).
///
/// ```
/// use nexus_runtime::security::{AccessPolicy, Principal, PrincipalKind};
/// let policy = AccessPolicy::new()
///     .allow("fraud.v1", ["payments", "risk-*"])
///     .allow_operation("fraud.v1", "flagUser", ["admin"]);
/// let payments = Principal::new("payments", PrincipalKind::Certificate);
/// let admin = Principal::new("admin", PrincipalKind::Token);
/// assert!(policy.allows(&payments, "fraud.v1", "getQuickScore"));
/// assert!(!policy.allows(&payments, "fraud.v1", "flagUser"));
/// assert!(policy.allows(&admin, "fraud.v1", "flagUser"));
/// assert!(policy.allows(&Principal::local("risk-eu"), "fraud.v1", "getQuickScore"));
/// assert!(!policy.allows(&Principal::anonymous(), "fraud.v1", "getQuickScore"));
/// assert!(!policy.allows(&payments, "billing.v1", "charge"));
/// assert!(AccessPolicy::new().allows(&Principal::anonymous(), "any", "thing"));
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AccessPolicy {
    services: BTreeMap<String, Rule>,
    operations: BTreeMap<(String, String), Rule>,
}

impl AccessPolicy {
    /// An empty policy: everything is allowed until a rule is added.
    pub fn new() -> Self {
        Self::default()
    }

    /// Lets the principals `names` (exact names or `prefix*` patterns) call every operation of
    /// `service` that has no rule of its own. Repeated calls add names.
    #[must_use]
    pub fn allow(
        mut self,
        service: impl Into<String>,
        names: impl IntoIterator<Item = impl AsRef<str>>,
    ) -> Self {
        self.services.entry(service.into()).or_default().add(names);
        self
    }

    /// Lets the principals `names` call `operation` of `service`; for this operation the list
    /// replaces the service's. Repeated calls add names.
    #[must_use]
    pub fn allow_operation(
        mut self,
        service: impl Into<String>,
        operation: impl Into<String>,
        names: impl IntoIterator<Item = impl AsRef<str>>,
    ) -> Self {
        self.operations
            .entry((service.into(), operation.into()))
            .or_default()
            .add(names);
        self
    }

    /// Opens every operation of `service` without its own rule to every caller, the anonymous
    /// one included (for a public service next to restricted ones).
    #[must_use]
    pub fn allow_everyone(mut self, service: impl Into<String>) -> Self {
        self.services.entry(service.into()).or_default().everyone = true;
        self
    }

    /// Whether the policy has no rule (and so allows everything).
    pub fn is_empty(&self) -> bool {
        self.services.is_empty() && self.operations.is_empty()
    }

    /// Whether `principal` may call `operation` of `service`: the operation's rule if it has one,
    /// else the service's; nothing if neither has one (unless the policy is empty).
    pub fn allows(&self, principal: &Principal, service: &str, operation: &str) -> bool {
        if self.is_empty() {
            return true;
        }
        let rule = self
            .operations
            .get(&(service.to_owned(), operation.to_owned()))
            .or_else(|| self.services.get(service));
        rule.is_some_and(|rule| rule.allows(principal))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::security::PrincipalKind;

    fn named(name: &str) -> Principal {
        Principal::new(name, PrincipalKind::Token)
    }

    #[test]
    fn operation_rules_replace_service_rules() {
        let policy = AccessPolicy::new()
            .allow("svc", ["a"])
            .allow_operation("svc", "op", ["b"]);
        assert!(policy.allows(&named("a"), "svc", "other"));
        assert!(!policy.allows(&named("a"), "svc", "op"));
        assert!(policy.allows(&named("b"), "svc", "op"));
        assert!(!policy.allows(&named("b"), "svc", "other"));
    }

    #[test]
    fn an_operation_rule_alone_denies_the_rest_of_its_service() {
        let policy = AccessPolicy::new().allow_operation("svc", "op", ["b"]);
        assert!(policy.allows(&named("b"), "svc", "op"));
        assert!(!policy.allows(&named("b"), "svc", "other"));
    }

    #[test]
    fn patterns_and_the_anonymous_principal() {
        let policy = AccessPolicy::new()
            .allow("svc", ["*"])
            .allow("team", ["team-*"]);
        assert!(policy.allows(&named("anyone"), "svc", "op"));
        assert!(!policy.allows(&Principal::anonymous(), "svc", "op"));
        assert!(policy.allows(&named("team-a"), "team", "op"));
        assert!(!policy.allows(&named("team"), "team", "op"));
        assert!(!policy.allows(&named("xteam-a"), "team", "op"));
    }

    #[test]
    fn everyone_includes_the_anonymous_principal() {
        let policy = AccessPolicy::new()
            .allow_everyone("public")
            .allow("private", ["a"]);
        assert!(policy.allows(&Principal::anonymous(), "public", "op"));
        assert!(!policy.allows(&Principal::anonymous(), "private", "op"));
    }
}
