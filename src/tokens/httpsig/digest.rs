//! RFC 9530 `Content-Digest`: parsing the field (`sha-256` and `sha-512`; other algorithms
//! are ignored) and checking it against a body's bytes.
//!
//! Owns the digest only; whether `content-digest` had to be covered is `profile`'s rule.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use ring::digest::{digest, SHA256, SHA512};
use sfv::{BareItem, Dictionary, ListEntry, Parser};

/// Why a `Content-Digest` cannot be used, or does not match.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum DigestError {
    #[error("Content-Digest is not a structured dictionary of byte sequences")]
    Malformed,
    #[error("Content-Digest has neither sha-256 nor sha-512")]
    NoSupportedAlgorithm,
    #[error("the body does not match Content-Digest")]
    Mismatch,
}

/// The supported digests a `Content-Digest` field carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContentDigest {
    sha256: Option<Vec<u8>>,
    sha512: Option<Vec<u8>>,
}

impl ContentDigest {
    /// Parses a `Content-Digest` value (§2): a dictionary whose members are byte sequences.
    /// A `sha-256` must be 32 bytes and a `sha-512` 64; at least one must be present.
    pub fn parse(value: &str) -> Result<Self, DigestError> {
        let dict: Dictionary = Parser::new(value)
            .parse()
            .map_err(|_| DigestError::Malformed)?;
        let mut out = Self {
            sha256: None,
            sha512: None,
        };
        for (name, entry) in &dict {
            let ListEntry::Item(item) = entry else {
                return Err(DigestError::Malformed);
            };
            let BareItem::ByteSequence(bytes) = &item.bare_item else {
                return Err(DigestError::Malformed);
            };
            match (name.as_str(), bytes.len()) {
                ("sha-256", 32) => out.sha256 = Some(bytes.clone()),
                ("sha-512", 64) => out.sha512 = Some(bytes.clone()),
                ("sha-256" | "sha-512", _) => return Err(DigestError::Malformed),
                _ => {} // other algorithms (md5, sha, …) are neither trusted nor refused
            }
        }
        if out.sha256.is_none() && out.sha512.is_none() {
            return Err(DigestError::NoSupportedAlgorithm);
        }
        Ok(out)
    }

    /// Whether the body matches every supported digest present.
    pub fn matches(&self, body: &[u8]) -> bool {
        let ok256 = self
            .sha256
            .as_ref()
            .is_none_or(|d| d.as_slice() == digest(&SHA256, body).as_ref());
        let ok512 = self
            .sha512
            .as_ref()
            .is_none_or(|d| d.as_slice() == digest(&SHA512, body).as_ref());
        ok256 && ok512
    }
}

/// Parses `value` and checks `body` against it (what tradeauth does when the proxy
/// forwards the body, and what the upstream does with `X-Auth-Content-Digest`).
pub fn check(value: &str, body: &[u8]) -> Result<(), DigestError> {
    if ContentDigest::parse(value)?.matches(body) {
        Ok(())
    } else {
        Err(DigestError::Mismatch)
    }
}

/// The `Content-Digest` value a client sends for `body`, with SHA-256.
pub fn sha256_field(body: &[u8]) -> String {
    format!("sha-256=:{}:", STANDARD.encode(digest(&SHA256, body)))
}

/// The `Content-Digest` value a client sends for `body`, with SHA-512.
pub fn sha512_field(body: &[u8]) -> String {
    format!("sha-512=:{}:", STANDARD.encode(digest(&SHA512, body)))
}
