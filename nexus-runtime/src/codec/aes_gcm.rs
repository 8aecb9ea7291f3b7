//! End-to-end payload encryption with AES-256-GCM (feature `aes-gcm`): a [`PayloadCodec`] that
//! encrypts every payload with the current key of a [`Keyring`] and decrypts with any of its keys,
//! found by the key id the payload carries.
//!
//! ## The envelope
//!
//! An encrypted payload has two content headers, and its data is the envelope:
//!
//! | content header (HTTP header) | value |
//! |---|---|
//! | `type` (`Content-Type`) | `application/x-nexus-encrypted` ([`ENCRYPTED`]) |
//! | `key-id` (`Content-Key-Id`) | the id of the key it is encrypted with ([`KEY_ID`]) |
//!
//! ```text
//! data      = version (1 byte, 0x01) || nonce (12 bytes) || ciphertext || tag (16 bytes)
//! plaintext = n (4 bytes, big-endian) || headers (n bytes) || original data
//! headers   = the original content headers as a JSON object of strings,
//!             e.g. {"type":"application/json"} ({} for a payload without any)
//! aad       = version (1 byte, 0x01) || key id (UTF-8)
//! ```
//!
//! `ciphertext || tag` is AES-256-GCM of `plaintext` with the key named by the key id, the nonce,
//! and `aad` as associated data. The nonce is 96 random bits from the operating system's CSPRNG,
//! new for every payload. The original content headers are inside the ciphertext, so they are
//! both hidden and authenticated, and so are the version and the key id (through `aad`): a payload
//! whose bytes, key id or version were changed fails authentication. Decoding gives back the
//! original payload exactly (headers and data).
//!
//! ## Keys and rotation
//!
//! A [`Keyring`] has one *current* key, which encrypts, and any number of older (or upcoming) keys
//! that only decrypt. To rotate: give every caller and handler the new key as a decryption key;
//! once all have it, make it the current key everywhere (payloads in flight, and results recorded
//! in the stores, still name the old one, which still decrypts them); remove the old key once no
//! stored operation can still need it (the stores' retention). With random nonces, rotate a key
//! before it has encrypted about 2^32 payloads.
//!
//! ```
//! use nexus_runtime::codec::aes_gcm::{AesGcmCodec, Keyring, ENCRYPTED};
//! use nexus_runtime::codec::{Content, PayloadCodec};
//!
//! let keyring = Keyring::new("2026-12", &[7u8; 32])?.with_decryption_key("2026-11", &[3u8; 32])?;
//! let codec = AesGcmCodec::new(keyring);
//! let plain = Content::new("application/json", r#"{"amount":10}"#);
//! let wire = codec.encode(plain.clone())?;
//! assert_eq!(wire.content_type(), Some(ENCRYPTED));
//! assert_eq!(&wire.headers["key-id"], "2026-12");
//! assert_eq!(codec.decode(wire)?, plain);
//! # Ok::<(), nexus_runtime::codec::CodecError>(())
//! ```

use std::collections::{BTreeMap, HashMap};
use std::fmt;

use aes_gcm::aead::{Aead, Generate, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Key};
use bytes::Bytes;

use super::{CodecError, Content, PayloadCodec};

/// The content type of an encrypted payload.
pub const ENCRYPTED: &str = "application/x-nexus-encrypted";
/// The content header that names the key of an encrypted payload (HTTP `Content-Key-Id`).
pub const KEY_ID: &str = "key-id";
/// The envelope's version byte.
const VERSION: u8 = 1;
const NONCE_LEN: usize = 12;
const TAG_LEN: usize = 16;
/// The longest key id, in bytes.
pub const MAX_KEY_ID_LEN: usize = 128;

type Nonce = aes_gcm::aead::Nonce<Aes256Gcm>;

/// Keys by id: one current key that encrypts, and keys that only decrypt. Key bytes are wiped
/// from memory when the keyring is dropped; neither `Debug` nor errors show them.
pub struct Keyring {
    current: String,
    keys: HashMap<String, Aes256Gcm>,
}

impl Keyring {
    /// A keyring whose current key is `key` (32 bytes), named `key_id`.
    ///
    /// A key id is 1 to 128 characters among `A-Z a-z 0-9 - _ . : /` (it travels in a header).
    pub fn new(key_id: &str, key: &[u8]) -> Result<Self, CodecError> {
        let mut keys = HashMap::new();
        keys.insert(checked_id(key_id)?.to_owned(), cipher(key_id, key)?);
        Ok(Self {
            current: key_id.to_owned(),
            keys,
        })
    }

    /// Adds a key that decrypts payloads naming `key_id` but does not encrypt.
    pub fn with_decryption_key(mut self, key_id: &str, key: &[u8]) -> Result<Self, CodecError> {
        if self.keys.contains_key(key_id) {
            return Err(CodecError::new(format!(
                "the keyring has key id `{key_id}` already"
            )));
        }
        self.keys
            .insert(checked_id(key_id)?.to_owned(), cipher(key_id, key)?);
        Ok(self)
    }

    /// The id of the key that encrypts.
    pub fn current_key_id(&self) -> &str {
        &self.current
    }

    /// The ids of all keys, sorted.
    pub fn key_ids(&self) -> Vec<&str> {
        let mut ids: Vec<&str> = self.keys.keys().map(String::as_str).collect();
        ids.sort_unstable();
        ids
    }
}

impl fmt::Debug for Keyring {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Keyring")
            .field("current", &self.current)
            .field("key_ids", &self.key_ids())
            .finish()
    }
}

fn checked_id(key_id: &str) -> Result<&str, CodecError> {
    let allowed = |b: u8| b.is_ascii_alphanumeric() || b"-_.:/".contains(&b);
    if key_id.is_empty() || key_id.len() > MAX_KEY_ID_LEN || !key_id.bytes().all(allowed) {
        return Err(CodecError::new(format!(
            "invalid key id {key_id:?}: 1 to {MAX_KEY_ID_LEN} characters among A-Z a-z 0-9 - _ . : /"
        )));
    }
    Ok(key_id)
}

fn cipher(key_id: &str, key: &[u8]) -> Result<Aes256Gcm, CodecError> {
    let key = <&[u8; 32]>::try_from(key).map_err(|_| {
        CodecError::new(format!(
            "key `{key_id}` is {} bytes; an AES-256 key is 32 bytes",
            key.len()
        ))
    })?;
    Ok(Aes256Gcm::new(&Key::<Aes256Gcm>::from(*key)))
}

/// The associated data of an envelope: the version and the key id.
fn aad(key_id: &str) -> Vec<u8> {
    let mut aad = Vec::with_capacity(1 + key_id.len());
    aad.push(VERSION);
    aad.extend_from_slice(key_id.as_bytes());
    aad
}

/// Encrypts payloads with AES-256-GCM (see the [module documentation](self) for the envelope).
///
/// Decoding refuses a payload that is not encrypted, unless
/// [`allow_plaintext`](Self::allow_plaintext) was set. To roll encryption out between running
/// callers and handlers without refusing anything:
/// 1. everywhere, `allow_plaintext(true).encrypting(false)`: every side reads both, sends
///    plaintext;
/// 2. everywhere, `allow_plaintext(true)`: every side sends ciphertext, still reads both;
/// 3. everywhere, the default: plaintext is refused.
pub struct AesGcmCodec {
    keyring: Keyring,
    allow_plaintext: bool,
    encrypting: bool,
}

impl AesGcmCodec {
    /// A codec with `keyring`.
    pub fn new(keyring: Keyring) -> Self {
        Self {
            keyring,
            allow_plaintext: false,
            encrypting: true,
        }
    }

    /// Whether `encode` encrypts (default: yes). Without it, payloads are sent as they are while
    /// encrypted ones are still decrypted: the first step of a rollout (see above).
    #[must_use]
    pub fn encrypting(mut self, encrypting: bool) -> Self {
        self.encrypting = encrypting;
        self
    }

    /// Whether `decode` lets payloads that are not encrypted through as they are (default: no,
    /// they are refused).
    #[must_use]
    pub fn allow_plaintext(mut self, allow: bool) -> Self {
        self.allow_plaintext = allow;
        self
    }

    /// The keyring.
    pub fn keyring(&self) -> &Keyring {
        &self.keyring
    }
}

impl fmt::Debug for AesGcmCodec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AesGcmCodec")
            .field("keyring", &self.keyring)
            .field("allow_plaintext", &self.allow_plaintext)
            .field("encrypting", &self.encrypting)
            .finish()
    }
}

impl PayloadCodec for AesGcmCodec {
    fn encode(&self, content: Content) -> Result<Content, CodecError> {
        if !self.encrypting {
            return Ok(content);
        }
        let key_id = self.keyring.current.as_str();
        let cipher = self
            .keyring
            .keys
            .get(key_id)
            .ok_or_else(|| CodecError::new("internal: the current key is missing"))?;
        let headers = serde_json::to_vec(&content.headers)
            .map_err(|e| CodecError::new(format!("cannot write the content headers: {e}")))?;
        let headers_len = u32::try_from(headers.len())
            .map_err(|_| CodecError::new("the content headers are too large to encrypt"))?;
        let mut plaintext = Vec::with_capacity(4 + headers.len() + content.data.len());
        plaintext.extend_from_slice(&headers_len.to_be_bytes());
        plaintext.extend_from_slice(&headers);
        plaintext.extend_from_slice(&content.data);
        let nonce = Nonce::try_generate().map_err(|e| {
            CodecError::new(format!("the operating system's random source failed: {e}"))
        })?;
        let aad = aad(key_id);
        let sealed = cipher
            .encrypt(
                &nonce,
                Payload {
                    msg: &plaintext,
                    aad: &aad,
                },
            )
            .map_err(|_| CodecError::new("the payload is too large to encrypt"))?;
        let mut data = Vec::with_capacity(1 + NONCE_LEN + sealed.len());
        data.push(VERSION);
        data.extend_from_slice(&nonce);
        data.extend_from_slice(&sealed);
        let mut out = Content::new(ENCRYPTED, data);
        out.headers.insert(KEY_ID.to_owned(), key_id.to_owned());
        Ok(out)
    }

    fn decode(&self, content: Content) -> Result<Content, CodecError> {
        if !content.content_type().is_some_and(is_encrypted_type) {
            if self.allow_plaintext {
                return Ok(content);
            }
            return Err(CodecError::new(format!(
                "the payload is not encrypted (content type `{}`): expected `{ENCRYPTED}`",
                content.content_type().unwrap_or_default()
            )));
        }
        let key_id = content.headers.get(KEY_ID).ok_or_else(|| {
            CodecError::new("the encrypted payload has no `Content-Key-Id` header")
        })?;
        let cipher = self.keyring.keys.get(key_id).ok_or_else(|| {
            CodecError::new(format!(
                "unknown encryption key id `{}`",
                key_id.escape_debug()
            ))
        })?;
        let data = &content.data[..];
        if data.len() < 1 + NONCE_LEN + TAG_LEN {
            return Err(CodecError::new(format!(
                "the encrypted payload is truncated ({} bytes)",
                data.len()
            )));
        }
        if data[0] != VERSION {
            return Err(CodecError::new(format!(
                "unsupported encrypted payload version {}",
                data[0]
            )));
        }
        let (nonce, sealed) = data[1..].split_at(NONCE_LEN);
        let nonce = Nonce::try_from(nonce)
            .map_err(|_| CodecError::new("internal: the nonce has the wrong length"))?;
        let aad = aad(key_id);
        let plaintext = cipher
            .decrypt(
                &nonce,
                Payload {
                    msg: sealed,
                    aad: &aad,
                },
            )
            .map_err(|_| {
                CodecError::new(format!(
                    "the encrypted payload failed authentication with key `{key_id}`: \
                     it was altered, or encrypted with another key"
                ))
            })?;
        open_plaintext(plaintext)
    }
}

/// Whether a content type is [`ENCRYPTED`] (parameters and case aside).
fn is_encrypted_type(content_type: &str) -> bool {
    content_type
        .split(';')
        .next()
        .is_some_and(|essence| essence.trim().eq_ignore_ascii_case(ENCRYPTED))
}

/// The original payload from a decrypted (so authentic) plaintext.
fn open_plaintext(plaintext: Vec<u8>) -> Result<Content, CodecError> {
    let malformed = || CodecError::new("the encrypted payload's plaintext is malformed");
    let (len, rest) = plaintext.split_first_chunk::<4>().ok_or_else(malformed)?;
    let len = usize::try_from(u32::from_be_bytes(*len)).map_err(|_| malformed())?;
    if rest.len() < len {
        return Err(malformed());
    }
    let (headers, _) = rest.split_at(len);
    let headers: BTreeMap<String, String> =
        serde_json::from_slice(headers).map_err(|_| malformed())?;
    let data = Bytes::from(plaintext).slice(4 + len..);
    Ok(Content {
        headers: headers.into(),
        data,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn codec() -> AesGcmCodec {
        AesGcmCodec::new(Keyring::new("k2", &[2; 32]).unwrap())
    }

    #[test]
    fn payloads_round_trip_with_their_headers_and_a_fresh_nonce_each() {
        let codec = codec();
        let mut plain = Content::new("application/json", r#"{"secret":"s3cr3t"}"#);
        plain.headers.insert("encoding".into(), "identity".into());
        let a = codec.encode(plain.clone()).unwrap();
        let b = codec.encode(plain.clone()).unwrap();
        assert_ne!(a.data, b.data, "a new nonce for every payload");
        assert_eq!(a.content_type(), Some(ENCRYPTED));
        assert_eq!(&a.headers[KEY_ID], "k2");
        assert_eq!(a.headers.len(), 2, "the original headers are inside");
        assert!(!a.data.windows(6).any(|w| w == b"s3cr3t"));
        assert_eq!(a.data[0], VERSION);
        assert_eq!(codec.decode(a).unwrap(), plain);
        for empty in [Content::empty(), Content::new("text/plain", "")] {
            let wire = codec.encode(empty.clone()).unwrap();
            assert_eq!(codec.decode(wire).unwrap(), empty);
        }
    }

    #[test]
    fn older_keys_decrypt_and_the_current_one_encrypts() {
        let old = AesGcmCodec::new(Keyring::new("k1", &[1; 32]).unwrap());
        let rotated = AesGcmCodec::new(
            Keyring::new("k2", &[2; 32])
                .unwrap()
                .with_decryption_key("k1", &[1; 32])
                .unwrap(),
        );
        let plain = Content::new("application/json", "1");
        let from_old = old.encode(plain.clone()).unwrap();
        assert_eq!(rotated.decode(from_old).unwrap(), plain);
        let from_new = rotated.encode(plain.clone()).unwrap();
        assert_eq!(&from_new.headers[KEY_ID], "k2");
        let err = old.decode(from_new).unwrap_err().to_string();
        assert_eq!(err, "unknown encryption key id `k2`");
        assert_eq!(rotated.keyring().key_ids(), ["k1", "k2"]);
        assert_eq!(rotated.keyring().current_key_id(), "k2");
    }

    #[test]
    fn altered_payloads_are_refused() {
        let codec = codec();
        let wire = codec
            .encode(Content::new("application/json", "42"))
            .unwrap();
        for at in [0, 1, 13, wire.data.len() - 1] {
            let mut data = wire.data.to_vec();
            data[at] ^= 1;
            let altered = Content {
                headers: wire.headers.clone(),
                data: data.into(),
            };
            let err = codec.decode(altered).unwrap_err().to_string();
            assert!(
                err.contains("failed authentication") || err.contains("version"),
                "{at}: {err}"
            );
        }
        // The same key under another id: the id is authenticated.
        let twin = AesGcmCodec::new(
            Keyring::new("k2", &[2; 32])
                .unwrap()
                .with_decryption_key("k3", &[2; 32])
                .unwrap(),
        );
        let mut renamed = wire.clone();
        renamed.headers.insert(KEY_ID.into(), "k3".into());
        let err = twin.decode(renamed).unwrap_err().to_string();
        assert!(err.contains("failed authentication with key `k3`"), "{err}");
        let mut short = wire.clone();
        short.data = short.data.slice(..20);
        let err = codec.decode(short).unwrap_err().to_string();
        assert_eq!(err, "the encrypted payload is truncated (20 bytes)");
        let mut anonymous = wire;
        anonymous.headers.remove(KEY_ID);
        let err = codec.decode(anonymous).unwrap_err().to_string();
        assert!(err.contains("no `Content-Key-Id`"), "{err}");
    }

    #[test]
    fn plaintext_is_refused_unless_allowed() {
        let plain = Content::new("application/json", "{}");
        let err = codec().decode(plain.clone()).unwrap_err().to_string();
        assert_eq!(
            err,
            "the payload is not encrypted (content type `application/json`): expected \
             `application/x-nexus-encrypted`"
        );
        let lenient = codec().allow_plaintext(true);
        assert_eq!(lenient.decode(plain.clone()).unwrap(), plain);
        let wire = lenient.encode(plain.clone()).unwrap();
        assert_eq!(lenient.decode(wire.clone()).unwrap(), plain);
        // The first step of a rollout: plaintext out, both in.
        let first = codec().allow_plaintext(true).encrypting(false);
        assert_eq!(first.encode(plain.clone()).unwrap(), plain);
        assert_eq!(first.decode(wire).unwrap(), plain);
        assert_eq!(first.decode(plain.clone()).unwrap(), plain);
    }

    #[test]
    fn keys_and_ids_are_checked() {
        let err = Keyring::new("k", &[0; 16]).unwrap_err().to_string();
        assert_eq!(err, "key `k` is 16 bytes; an AES-256 key is 32 bytes");
        for bad in ["", "a b", "é", &"x".repeat(129)] {
            assert!(Keyring::new(bad, &[0; 32]).is_err(), "{bad:?}");
        }
        let err = Keyring::new("k", &[0; 32])
            .unwrap()
            .with_decryption_key("k", &[1; 32])
            .unwrap_err()
            .to_string();
        assert!(err.contains("already"), "{err}");
        let debug = format!("{:?}", codec());
        assert!(debug.contains("k2") && !debug.contains("[2, 2"), "{debug}");
    }

    mod properties {
        use super::*;
        use proptest::prelude::*;
        use proptest::test_runner::{Config, RngSeed};

        fn config() -> Config {
            Config {
                cases: 256,
                rng_seed: RngSeed::Fixed(0xae5),
                failure_persistence: None,
                ..Config::default()
            }
        }

        proptest! {
            #![proptest_config(config())]

            /// Whatever arrives, decoding answers without panicking, and only a payload this
            /// keyring encrypted decodes.
            #[test]
            fn decoding_arbitrary_payloads_never_panics(
                data in proptest::collection::vec(any::<u8>(), 0..96),
                key_id in prop_oneof![Just("k2".to_owned()), "\\PC{0,8}"],
                version in any::<u8>(),
            ) {
                let mut content = Content::new(ENCRYPTED, data.clone());
                content.headers.insert(KEY_ID.into(), key_id);
                prop_assert!(codec().decode(content).is_err());
                // A well-formed envelope around random bytes fails authentication.
                let mut envelope = vec![version];
                envelope.extend_from_slice(&data);
                let mut content = Content::new(ENCRYPTED, envelope);
                content.headers.insert(KEY_ID.into(), "k2".into());
                prop_assert!(codec().decode(content).is_err());
            }

            #[test]
            fn every_payload_round_trips(
                headers in proptest::collection::btree_map("\\PC{0,8}", "\\PC{0,8}", 0..4),
                data in proptest::collection::vec(any::<u8>(), 0..256),
            ) {
                let plain = Content { headers: headers.into(), data: data.into() };
                let codec = codec();
                prop_assert_eq!(codec.decode(codec.encode(plain.clone()).unwrap()).unwrap(), plain);
            }
        }
    }
}
