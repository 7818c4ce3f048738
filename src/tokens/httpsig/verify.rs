//! The key a signature is verified with, and the three algorithms of the profile, all by
//! `ring`: `ed25519`, `ecdsa-p256-sha256` (the raw 64-byte `r‖s` of RFC 9421 §3.3.4, i.e.
//! `ECDSA_P256_SHA256_FIXED`, never DER) and `hmac-sha256` (constant-time comparison).

use super::keys::PublicKey;
use super::Algorithm;
use ring::{hmac, signature};
use std::fmt;

/// What the caller found for a `keyid`: a validated public key, or an HMAC secret
/// (already decrypted).
#[derive(Clone)]
pub enum VerifyingKey {
    Public(PublicKey),
    Hmac(hmac::Key),
}

impl fmt::Debug for VerifyingKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Public(key) => write!(f, "VerifyingKey::Public({key:?})"),
            Self::Hmac(_) => f.write_str("VerifyingKey::Hmac([redacted])"),
        }
    }
}

impl VerifyingKey {
    /// An HMAC-SHA256 key from the secret's bytes (the decoded 32 bytes of `secret`).
    pub fn hmac(secret: &[u8]) -> Self {
        Self::Hmac(hmac::Key::new(hmac::HMAC_SHA256, secret))
    }

    pub fn algorithm(&self) -> Algorithm {
        match self {
            Self::Public(key) => key.algorithm(),
            Self::Hmac(_) => Algorithm::HmacSha256,
        }
    }

    /// Whether `sig` is this key's signature over `message` (the signature base's bytes).
    pub fn verify(&self, message: &[u8], sig: &[u8]) -> bool {
        match self {
            Self::Hmac(key) => hmac::verify(key, message, sig).is_ok(),
            Self::Public(key) => {
                let alg: &dyn signature::VerificationAlgorithm = match key.algorithm() {
                    Algorithm::Ed25519 => &signature::ED25519,
                    Algorithm::EcdsaP256Sha256 => &signature::ECDSA_P256_SHA256_FIXED,
                    Algorithm::HmacSha256 => return false,
                };
                signature::UnparsedPublicKey::new(alg, key.to_bytes())
                    .verify(message, sig)
                    .is_ok()
            }
        }
    }
}
