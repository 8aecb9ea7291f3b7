//! Who may call the fraud handler: `--allow-caller` and `--token` of `fraud-handler`.

use nexus_runtime::security::{
    AccessPolicy, AnyOf, BearerAuthenticator, CertificateAuthenticator, StaticTokens,
};

/// The authenticator and access policy that `--allow-caller NAME` (repeatable) and
/// `--token NAME=TOKEN` (repeatable) ask for, for `service`; `None` when neither is given (every
/// caller is anonymous and allowed, as before).
///
/// With either, callers must authenticate, with a verified client certificate (named by its CN
/// or first URI/DNS SAN; present only when the server verifies client certificates) or one of
/// the static bearer tokens. With `--allow-caller`, only those names may call `service`.
pub fn caller_auth(
    service: &str,
    allowed: &[String],
    tokens: &[String],
) -> Result<Option<(AnyOf, AccessPolicy)>, String> {
    if allowed.is_empty() && tokens.is_empty() {
        return Ok(None);
    }
    let mut verifier = StaticTokens::new();
    for spec in tokens {
        let (name, token) = spec
            .split_once('=')
            .filter(|(name, token)| !name.is_empty() && !token.is_empty())
            .ok_or_else(|| format!("--token `{}…`: expected NAME=TOKEN", prefix(spec)))?;
        verifier = verifier.token(name, token);
    }
    let mut authenticator = AnyOf::new().or(CertificateAuthenticator::new());
    if verifier.is_empty() {
        tracing::warn!(
            "no --token given: callers can authenticate only with a verified client certificate"
        );
    } else {
        authenticator = authenticator.or(BearerAuthenticator::new(verifier));
    }
    let policy = if allowed.is_empty() {
        AccessPolicy::new()
    } else {
        AccessPolicy::new().allow(service, allowed)
    };
    Ok(Some((authenticator, policy)))
}

/// The start of a flag's value, short enough not to echo a whole secret.
fn prefix(spec: &str) -> String {
    spec.chars().take(4).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags() {
        assert!(caller_auth("fraud.v1", &[], &[]).unwrap().is_none());
        let (_, policy) = caller_auth("fraud.v1", &["payments".into()], &["payments=t".into()])
            .unwrap()
            .unwrap();
        let payments = nexus_runtime::security::Principal::local("payments");
        assert!(policy.allows(&payments, "fraud.v1", "getQuickScore"));
        assert!(!policy.allows(
            &nexus_runtime::security::Principal::local("x"),
            "fraud.v1",
            "a"
        ));
        for bad in ["payments", "=t", "payments="] {
            assert!(
                caller_auth("fraud.v1", &[], &[bad.into()]).is_err(),
                "{bad}"
            );
        }
    }
}
