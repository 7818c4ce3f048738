//! Signed requests (RFC 9421 HTTP Message Signatures), the `tradeauth` profile of the
//! contract's "Signed requests (trading bots)" section: pure code, no I/O.
//!
//! Owns the signature base, the parsing of `Signature-Input`/`Signature`/`Content-Digest`,
//! the profile's checks in the contract's order, signature verification with `ring`, and
//! the key material of signing API keys. It must not look up keys, touch storage or keep
//! the replay cache: the caller does those between and after the steps below.
//!
//! How a caller (e.g. `/api/v1/auth/verify`) uses it:
//! 1. [`check`] — the components and parameters (→ `signature_incomplete`), then the
//!    window (→ `signature_expired`). Cheap; nothing is verified yet.
//! 2. The caller finds the key by [`Checked::keyid`] (→ `invalid_api_key`) and applies
//!    `allowed_ips` (→ `ip_not_allowed`).
//! 3. [`Checked::verify`] with the key's [`VerifyingKey`] — `alg` against the key, then the
//!    signature (→ `signature_invalid` with the base the server built).
//! 4. The caller does one set-if-absent of [`Accepted::replay_key`] until
//!    [`Accepted::replay_expires_at_ms`] (→ `signature_replayed`).
//!
//! Layout:
//! - `base`: the request view and the signature base (RFC 9421 §2);
//! - `header`: `Signature-Input` / `Signature` parsing and the tagged member's choice;
//! - `profile`: the checks, their typed outcomes, the accepted result;
//! - `verify`: the verification key and the three algorithms;
//! - `keys`: uploaded public keys (PEM/JWK), thumbprints, HMAC secrets and their AEAD;
//! - `digest`: RFC 9530 `Content-Digest`.

pub mod base;
pub mod digest;
pub mod header;
pub mod keys;
pub mod profile;
pub mod verify;

#[cfg(test)]
mod tests;

pub use base::RequestView;
pub use digest::{ContentDigest, DigestError};
pub use keys::{open_secret, seal_secret, HmacSecret, KeyError, OpenError, PublicKey};
pub use profile::{check, Accepted, Checked, ExpiredReason, InvalidReason, Policy, Rejection};
pub use verify::VerifyingKey;

/// The signature algorithms of signing API keys (RFC 9421 §6.2.2 names).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Algorithm {
    Ed25519,
    EcdsaP256Sha256,
    HmacSha256,
}

impl Algorithm {
    /// The name used in the API (`algorithm`) and in the `alg` signature parameter.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Ed25519 => "ed25519",
            Self::EcdsaP256Sha256 => "ecdsa-p256-sha256",
            Self::HmacSha256 => "hmac-sha256",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "ed25519" => Some(Self::Ed25519),
            "ecdsa-p256-sha256" => Some(Self::EcdsaP256Sha256),
            "hmac-sha256" => Some(Self::HmacSha256),
            _ => None,
        }
    }
}
