//! Ed25519 keys for policy bundles, in the PEM forms OpenSSL reads and
//! writes: the private key as PKCS#8 (`PRIVATE KEY`), the public key as
//! SubjectPublicKeyInfo (`PUBLIC KEY`). A key made by
//! `openssl genpkey -algorithm ed25519` signs bundles, and
//! `openssl pkey -pubout` of it is a trust anchor.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use ring::rand::SystemRandom;
use ring::signature::{ED25519, Ed25519KeyPair, KeyPair as _, UnparsedPublicKey};

/// The DER of an Ed25519 SubjectPublicKeyInfo up to the key's 32 bytes
/// (RFC 8410: SEQUENCE { SEQUENCE { OID 1.3.101.112 } BIT STRING }).
const SPKI_PREFIX: [u8; 12] = [
    0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00,
];

/// The DER of an Ed25519 PKCS#8 v1 private key up to its 32-byte seed
/// (RFC 8410), the form OpenSSL writes and reads.
const PKCS8_V1_PREFIX: [u8; 16] = [
    0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20,
];

/// Why a key cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// No PEM block of the expected label.
    #[error("no `-----BEGIN {0}-----` block (expected an Ed25519 key in PEM)")]
    NoPem(&'static str),
    /// The PEM block's base64 is broken.
    #[error("the PEM block is not valid base64: {0}")]
    Base64(String),
    /// The DER is not an Ed25519 key.
    #[error(
        "not an Ed25519 {0} (make one with `cordon policy keygen` or `openssl genpkey -algorithm ed25519`)"
    )]
    NotEd25519(&'static str),
    /// The system's random source failed.
    #[error("cannot generate a key: the system random source failed")]
    Random,
}

/// A private key that signs bundles.
pub struct SigningKey {
    pair: Ed25519KeyPair,
    pkcs8: Vec<u8>,
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The secret never reaches a log.
        write!(f, "SigningKey({})", self.public().id())
    }
}

impl SigningKey {
    /// A new key from the system's random source.
    ///
    /// # Errors
    /// The random source failed.
    pub fn generate() -> Result<SigningKey, KeyError> {
        let v2 =
            Ed25519KeyPair::generate_pkcs8(&SystemRandom::new()).map_err(|_| KeyError::Random)?;
        // The v2 document (with the public key) is written as v1 (the seed
        // alone): OpenSSL 3.0 does not read the v2 form ring makes.
        let seed = v2
            .as_ref()
            .get(PKCS8_V1_PREFIX.len()..PKCS8_V1_PREFIX.len() + 32)
            .ok_or(KeyError::NotEd25519("private key"))?;
        let mut pkcs8 = PKCS8_V1_PREFIX.to_vec();
        pkcs8.extend_from_slice(seed);
        let pair = Ed25519KeyPair::from_pkcs8_maybe_unchecked(&pkcs8)
            .map_err(|_| KeyError::NotEd25519("private key"))?;
        let generated = Ed25519KeyPair::from_pkcs8(v2.as_ref())
            .map_err(|_| KeyError::NotEd25519("private key"))?;
        if pair.public_key().as_ref() != generated.public_key().as_ref() {
            return Err(KeyError::NotEd25519("private key"));
        }
        Ok(SigningKey { pair, pkcs8 })
    }

    /// Read a PKCS#8 PEM private key (v1, as OpenSSL writes it, or v2).
    ///
    /// # Errors
    /// Not PEM, or not an Ed25519 private key.
    pub fn from_pem(text: &str) -> Result<SigningKey, KeyError> {
        let der = pem_block(text, "PRIVATE KEY")?;
        let pair = Ed25519KeyPair::from_pkcs8_maybe_unchecked(&der)
            .map_err(|_| KeyError::NotEd25519("private key"))?;
        Ok(SigningKey { pair, pkcs8: der })
    }

    /// The key as PKCS#8 PEM.
    pub fn to_pem(&self) -> String {
        pem("PRIVATE KEY", &self.pkcs8)
    }

    /// Its public half.
    pub fn public(&self) -> PublicKey {
        let mut key = [0u8; 32];
        key.copy_from_slice(self.pair.public_key().as_ref());
        PublicKey(key)
    }

    /// Sign `message`.
    pub fn sign(&self, message: &[u8]) -> [u8; 64] {
        let mut sig = [0u8; 64];
        sig.copy_from_slice(self.pair.sign(message).as_ref());
        sig
    }
}

/// A public key that bundles are verified against.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct PublicKey([u8; 32]);

impl std::fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "PublicKey({})", self.id())
    }
}

impl PublicKey {
    /// Read a SubjectPublicKeyInfo PEM public key.
    ///
    /// # Errors
    /// Not PEM, or not an Ed25519 public key.
    pub fn from_pem(text: &str) -> Result<PublicKey, KeyError> {
        let der = pem_block(text, "PUBLIC KEY")?;
        let key = der
            .strip_prefix(SPKI_PREFIX.as_slice())
            .and_then(|k| <[u8; 32]>::try_from(k).ok())
            .ok_or(KeyError::NotEd25519("public key"))?;
        Ok(PublicKey(key))
    }

    /// The key as SubjectPublicKeyInfo PEM.
    pub fn to_pem(&self) -> String {
        let mut der = SPKI_PREFIX.to_vec();
        der.extend_from_slice(&self.0);
        pem("PUBLIC KEY", &der)
    }

    /// A short name for the key: `ed25519:` and the first 16 hex digits of
    /// the SHA-256 of its 32 bytes.
    pub fn id(&self) -> String {
        let digest = ring::digest::digest(&ring::digest::SHA256, &self.0);
        format!(
            "ed25519:{}",
            hex(digest.as_ref().get(..8).unwrap_or_default())
        )
    }

    /// Whether `signature` is this key's signature of `message`.
    pub fn verifies(&self, message: &[u8], signature: &[u8]) -> bool {
        UnparsedPublicKey::new(&ED25519, &self.0)
            .verify(message, signature)
            .is_ok()
    }
}

/// Lowercase hexadecimal.
pub fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    bytes.iter().fold(String::new(), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

fn pem(label: &str, der: &[u8]) -> String {
    let text = STANDARD.encode(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    for line in text.as_bytes().chunks(64) {
        out.push_str(&String::from_utf8_lossy(line));
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

fn pem_block(text: &str, label: &'static str) -> Result<Vec<u8>, KeyError> {
    let begin = format!("-----BEGIN {label}-----");
    let end = format!("-----END {label}-----");
    let start = text.find(&begin).ok_or(KeyError::NoPem(label))? + begin.len();
    let rest = text.get(start..).unwrap_or_default();
    let stop = rest.find(&end).ok_or(KeyError::NoPem(label))?;
    let body: String = rest
        .get(..stop)
        .unwrap_or_default()
        .chars()
        .filter(|c| !c.is_ascii_whitespace())
        .collect();
    STANDARD
        .decode(body)
        .map_err(|e| KeyError::Base64(e.to_string()))
}
