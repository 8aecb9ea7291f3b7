//! Verifying JSON Web Tokens (feature `jwt`).

use std::fmt;
use std::time::Duration;

use futures::FutureExt as _;
use futures::future::BoxFuture;
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};

use super::{AuthenticationError, TokenVerifier};

/// A key a [`JwtVerifier`] cannot use.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("invalid JWT verification key: {0}")]
pub struct InvalidJwtKey(String);

/// Verifies JWT bearer tokens signed with one key (HS256 with a shared secret, RS256 or ES256
/// with the issuer's public key) and names the caller from a claim, `sub` by default.
///
/// Checked on every token: the signature and its algorithm (only the key's algorithm is
/// accepted, never `none`), `exp` (required, with 60 s leeway for clock skew by default), `nbf`
/// when present, and, when configured, `iss` and `aud` (then required). The signing backend is
/// jsonwebtoken's pure-Rust one (`rust_crypto`); a build that also enables its `aws_lc_rs`
/// feature must install a provider itself.
///
/// ```
/// use nexus_runtime::security::{BearerAuthenticator, JwtVerifier};
/// let verifier = JwtVerifier::hs256(b"a shared secret of at least 32 bytes!!")
///     .issuer("https://id.example.com")
///     .audience("fraud-handler")
///     .name_claim("client_id");
/// let authenticator = BearerAuthenticator::new(verifier);
/// # let _ = authenticator;
/// ```
#[derive(Clone)]
pub struct JwtVerifier {
    key: DecodingKey,
    validation: Validation,
    name_claim: String,
}

impl fmt::Debug for JwtVerifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JwtVerifier")
            .field("algorithms", &self.validation.algorithms)
            .field("issuer", &self.validation.iss)
            .field("audience", &self.validation.aud)
            .field("name_claim", &self.name_claim)
            .finish_non_exhaustive()
    }
}

impl JwtVerifier {
    fn with_key(key: DecodingKey, algorithm: Algorithm) -> Self {
        let mut validation = Validation::new(algorithm);
        // No audience configured: tokens are accepted whatever their `aud` (see `audience`).
        validation.validate_aud = false;
        validation.validate_nbf = true;
        Self {
            key,
            validation,
            name_claim: "sub".to_owned(),
        }
    }

    /// Tokens signed with HMAC-SHA256 and this shared secret.
    ///
    /// # Panics
    /// If `secret` is empty.
    pub fn hs256(secret: &[u8]) -> Self {
        assert!(!secret.is_empty(), "a JWT secret must not be empty");
        // `from_secret` fails only for an empty secret.
        let key = DecodingKey::from_secret(secret).unwrap_or_else(|e| panic!("{e}"));
        Self::with_key(key, Algorithm::HS256)
    }

    /// Tokens signed with RSASSA-PKCS1-v1_5 SHA-256 by the private key of this PEM public key
    /// (`-----BEGIN PUBLIC KEY-----` or `-----BEGIN RSA PUBLIC KEY-----`).
    pub fn rs256_pem(public_key: &[u8]) -> Result<Self, InvalidJwtKey> {
        let key =
            DecodingKey::from_rsa_pem(public_key).map_err(|e| InvalidJwtKey(e.to_string()))?;
        Ok(Self::with_key(key, Algorithm::RS256))
    }

    /// Tokens signed with ECDSA P-256 SHA-256 by the private key of this PEM public key
    /// (`-----BEGIN PUBLIC KEY-----`).
    pub fn es256_pem(public_key: &[u8]) -> Result<Self, InvalidJwtKey> {
        let key = DecodingKey::from_ec_pem(public_key).map_err(|e| InvalidJwtKey(e.to_string()))?;
        Ok(Self::with_key(key, Algorithm::ES256))
    }

    /// Requires `iss` to be `issuer` (repeat to accept several).
    #[must_use]
    pub fn issuer(mut self, issuer: impl Into<String>) -> Self {
        self.validation
            .iss
            .get_or_insert_with(Default::default)
            .insert(issuer.into());
        self.validation.required_spec_claims.insert("iss".into());
        self
    }

    /// Requires `aud` to name `audience` (repeat to accept several): set it to this handler's
    /// name, so that a token issued for another service is refused.
    #[must_use]
    pub fn audience(mut self, audience: impl Into<String>) -> Self {
        self.validation
            .aud
            .get_or_insert_with(Default::default)
            .insert(audience.into());
        self.validation.validate_aud = true;
        self.validation.required_spec_claims.insert("aud".into());
        self
    }

    /// Names the caller from this claim (a string) instead of `sub`.
    #[must_use]
    pub fn name_claim(mut self, claim: impl Into<String>) -> Self {
        self.name_claim = claim.into();
        self
    }

    /// The clock skew tolerated on `exp` and `nbf` (default 60 s).
    #[must_use]
    pub fn leeway(mut self, leeway: Duration) -> Self {
        self.validation.leeway = leeway.as_secs();
        self
    }

    /// The caller named by `token`, if it verifies.
    pub fn verify_token(&self, token: &str) -> Result<String, AuthenticationError> {
        let data = jsonwebtoken::decode::<serde_json::Map<String, serde_json::Value>>(
            token,
            &self.key,
            &self.validation,
        )
        .map_err(|e| {
            AuthenticationError::invalid(format!(
                "the bearer token is not valid: {}",
                describe(e.kind())
            ))
        })?;
        match data.claims.get(&self.name_claim) {
            Some(serde_json::Value::String(name)) if !name.trim().is_empty() => {
                Ok(name.trim().to_owned())
            }
            _ => Err(AuthenticationError::invalid(format!(
                "the bearer token has no `{}` claim naming the caller",
                self.name_claim
            ))),
        }
    }
}

/// What is wrong with a token, without echoing any of it.
fn describe(kind: &ErrorKind) -> String {
    match kind {
        ErrorKind::ExpiredSignature => "it expired".into(),
        ErrorKind::ImmatureSignature => "it is not valid yet (`nbf`)".into(),
        ErrorKind::InvalidAudience => "it is for another audience".into(),
        ErrorKind::InvalidIssuer => "it is from another issuer".into(),
        ErrorKind::InvalidSignature => "its signature does not verify".into(),
        ErrorKind::InvalidAlgorithm => "it is signed with another algorithm".into(),
        ErrorKind::MissingRequiredClaim(claim) => format!("it has no `{claim}` claim"),
        ErrorKind::InvalidClaimFormat(claim) => format!("its `{claim}` claim is malformed"),
        _ => "it is not a well-formed JWT".into(),
    }
}

impl TokenVerifier for JwtVerifier {
    fn verify<'a>(&'a self, token: &'a str) -> BoxFuture<'a, Result<String, AuthenticationError>> {
        futures::future::ready(self.verify_token(token)).boxed()
    }
}
