//! The shipped authenticators on their own: names from rcgen-made client certificates, and JWTs
//! (HS256 and ES256) valid, expired, for another audience or issuer, or signed with another key.
#![cfg(feature = "jwt")]
#![allow(clippy::unwrap_used)]

use crate::support;

use std::sync::Arc;

use nexus_runtime::security::{
    Authenticator, BearerAuthenticator, CertificateAuthenticator, CertificateName, JwtVerifier,
    PeerCertificates, Principal, PrincipalKind, TokenVerifier,
};
use serde_json::json;
use support::credentials::{certificate, epoch, es256, es256_keys, hs256};

fn with_certificate(der: Option<Vec<u8>>) -> http::request::Parts {
    let mut parts = http::Request::new(()).into_parts().0;
    if let Some(der) = der {
        let chain: Arc<[Vec<u8>]> = Arc::from(vec![der]);
        parts.extensions.insert(PeerCertificates(chain));
    }
    parts
}

async fn name(authenticator: &CertificateAuthenticator, der: Vec<u8>) -> Result<String, String> {
    authenticator
        .authenticate(&with_certificate(Some(der)))
        .await
        .map(|p| {
            assert_eq!(p.kind(), PrincipalKind::Certificate);
            p.name().to_owned()
        })
        .map_err(|e| e.message().to_owned())
}

#[tokio::test]
async fn certificate_names_by_cn_then_uri_then_dns() {
    let default = CertificateAuthenticator::new();
    let all = certificate(
        Some("payments"),
        &["payments.internal.example"],
        &["spiffe://example.org/payments"],
    );
    assert_eq!(name(&default, all.clone()).await.unwrap(), "payments");
    let san_only = certificate(
        None,
        &["payments.internal.example"],
        &["spiffe://example.org/payments"],
    );
    assert_eq!(
        name(&default, san_only).await.unwrap(),
        "spiffe://example.org/payments"
    );
    let dns_only = certificate(None, &["a.example", "b.example"], &[]);
    assert_eq!(name(&default, dns_only).await.unwrap(), "a.example");

    let spiffe_first = CertificateAuthenticator::new()
        .names_from([CertificateName::UriSan, CertificateName::CommonName]);
    assert_eq!(
        name(&spiffe_first, all.clone()).await.unwrap(),
        "spiffe://example.org/payments"
    );
    let dns_only_reader = CertificateAuthenticator::new().names_from([CertificateName::DnsSan]);
    assert_eq!(
        name(&dns_only_reader, all).await.unwrap(),
        "payments.internal.example"
    );
}

#[tokio::test]
async fn certificates_that_name_no_one_or_are_missing_are_refused() {
    let authenticator = CertificateAuthenticator::new();
    let nameless = certificate(None, &[], &[]);
    let e = name(&authenticator, nameless).await.unwrap_err();
    assert!(e.contains("names no caller"), "{e}");
    let e = name(&authenticator, b"not DER".to_vec()).await.unwrap_err();
    assert!(e.contains("cannot be read"), "{e}");

    let e = authenticator
        .authenticate(&with_certificate(None))
        .await
        .unwrap_err();
    assert!(e.is_missing());
    assert_eq!(e.message(), "no verified client certificate");
}

const SECRET: &[u8] = b"a shared secret of at least 32 bytes, for HS256";

fn claims(sub: &str, exp_offset: i64) -> serde_json::Value {
    json!({
        "sub": sub,
        "iss": "https://id.example.com",
        "aud": "fraud-handler",
        "exp": epoch(exp_offset),
        "client_id": format!("client-{sub}"),
    })
}

fn verifier() -> JwtVerifier {
    JwtVerifier::hs256(SECRET)
        .issuer("https://id.example.com")
        .audience("fraud-handler")
}

async fn verify(verifier: &JwtVerifier, token: &str) -> Result<String, String> {
    verifier
        .verify(token)
        .await
        .map_err(|e| e.message().to_owned())
}

#[tokio::test]
async fn hs256_tokens() {
    let v = verifier();
    assert_eq!(
        verify(&v, &hs256(SECRET, &claims("payments", 300))).await,
        Ok("payments".to_owned())
    );
    assert_eq!(
        verify(
            &verifier().name_claim("client_id"),
            &hs256(SECRET, &claims("payments", 300))
        )
        .await,
        Ok("client-payments".to_owned())
    );

    let expired = hs256(SECRET, &claims("payments", -3600));
    assert_eq!(
        verify(&v, &expired).await,
        Err("the bearer token is not valid: it expired".to_owned())
    );
    let mut other_audience = claims("payments", 300);
    other_audience["aud"] = json!("billing-handler");
    assert_eq!(
        verify(&v, &hs256(SECRET, &other_audience)).await,
        Err("the bearer token is not valid: it is for another audience".to_owned())
    );
    let mut no_audience = claims("payments", 300);
    no_audience.as_object_mut().unwrap().remove("aud");
    assert_eq!(
        verify(&v, &hs256(SECRET, &no_audience)).await,
        Err("the bearer token is not valid: it has no `aud` claim".to_owned())
    );
    let mut other_issuer = claims("payments", 300);
    other_issuer["iss"] = json!("https://evil.example.com");
    assert_eq!(
        verify(&v, &hs256(SECRET, &other_issuer)).await,
        Err("the bearer token is not valid: it is from another issuer".to_owned())
    );
    let wrong_key = hs256(
        b"another secret, just as long as the first one",
        &claims("payments", 300),
    );
    assert_eq!(
        verify(&v, &wrong_key).await,
        Err("the bearer token is not valid: its signature does not verify".to_owned())
    );
    let mut no_sub = claims("payments", 300);
    no_sub.as_object_mut().unwrap().remove("sub");
    assert_eq!(
        verify(&v, &hs256(SECRET, &no_sub)).await,
        Err("the bearer token has no `sub` claim naming the caller".to_owned())
    );
    assert_eq!(
        verify(&v, "not.a.jwt").await,
        Err("the bearer token is not valid: it is not a well-formed JWT".to_owned())
    );
    // Without a configured audience, `aud` is not checked.
    let lenient = JwtVerifier::hs256(SECRET);
    assert_eq!(
        verify(&lenient, &hs256(SECRET, &other_audience)).await,
        Ok("payments".to_owned())
    );
}

#[tokio::test]
async fn es256_tokens_and_algorithm_confusion() {
    let (private, public) = es256_keys();
    let (other_private, _) = es256_keys();
    let v = JwtVerifier::es256_pem(public.as_bytes())
        .unwrap()
        .audience("fraud-handler");
    assert_eq!(
        verify(&v, &es256(&private, &claims("ledger", 300))).await,
        Ok("ledger".to_owned())
    );
    assert_eq!(
        verify(&v, &es256(&other_private, &claims("ledger", 300))).await,
        Err("the bearer token is not valid: its signature does not verify".to_owned())
    );
    assert_eq!(
        verify(&v, &es256(&private, &claims("ledger", -3600))).await,
        Err("the bearer token is not valid: it expired".to_owned())
    );
    // An HS256 token "signed" with the public key is refused: only the key's algorithm counts.
    let confused = hs256(public.as_bytes(), &claims("ledger", 300));
    assert_eq!(
        verify(&v, &confused).await,
        Err("the bearer token is not valid: it is signed with another algorithm".to_owned())
    );
    assert!(JwtVerifier::es256_pem(b"not a key").is_err());
    assert!(JwtVerifier::rs256_pem(public.as_bytes()).is_err());
}

#[tokio::test]
async fn the_bearer_authenticator_over_a_jwt_verifier() {
    let authenticator = BearerAuthenticator::new(verifier());
    let token = hs256(SECRET, &claims("payments", 300));
    let parts = http::Request::builder()
        .header("authorization", format!("Bearer {token}"))
        .body(())
        .unwrap()
        .into_parts()
        .0;
    assert_eq!(
        authenticator.authenticate(&parts).await,
        Ok(Principal::new("payments", PrincipalKind::Token))
    );
    let expired = hs256(SECRET, &claims("payments", -3600));
    let parts = http::Request::builder()
        .header("authorization", format!("Bearer {expired}"))
        .body(())
        .unwrap()
        .into_parts()
        .0;
    let e = authenticator.authenticate(&parts).await.unwrap_err();
    assert!(!e.is_missing());
    assert_eq!(e.challenge(), Some("Bearer error=\"invalid_token\""));
}
